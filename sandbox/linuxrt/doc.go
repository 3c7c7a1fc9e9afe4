// Package linuxrt runs EC2-like instances as real Debian 12 systems inside
// Linux namespaces on the local machine, without virtual machines.
//
// An instance is a stack of read-only layer directories (the base root file
// system built by EnsureBaseRootfs, then image layers) plus a writable upper
// directory of its own, combined with overlayfs. Each instance runs in new
// mount, pid, uts and ipc namespaces but shares the host's network namespace:
// its sshd listens only on the instance's own 127.x.y.z address.
//
// # Init
//
// The namespace init is the calling program itself, re-executed in a hidden
// mode. Every program that boots instances must therefore call Init as the
// very first thing in main (and tests in TestMain):
//
//	func main() {
//		linuxrt.Init()
//		...
//	}
//
// Init returns immediately in the normal case and never returns when the
// process was started as an instance init. As pid 1 of the instance it
// mounts the overlay in its private mount namespace, pivots into it (the
// host's mounts are detached), mounts /proc, /sys (read-only), /dev, /run,
// sets the host name, writes /etc/hosts, /etc/resolv.conf and the ssh
// listen address, adds the authorized key for user admin, and on the first
// boot of an instance ID regenerates the ssh host keys and runs the user
// data. It then drops capabilities and starts sshd, reaps orphans and
// restarts sshd if it dies. The instance's mounts exist only in its mount
// namespace, so they disappear with its processes, even after a crash.
//
// The init keeps a pipe from the runtime open: when it closes (Stop, or the
// runtime's process dying) the instance shuts down.
//
// # Isolation
//
// Processes of an instance, root included, are limited to Docker's default
// capability set less CAP_MKNOD and CAP_NET_RAW (bounding set included, so
// sudo gets no more). /proc/sys and /sys are read-only, /proc/kcore and
// similar files are masked, the init is not dumpable. There is no seccomp
// filter, no cgroup limit, no user namespace and no network namespace: an
// instance shares the host's loopback, interfaces, ports and abstract unix
// sockets, and a service that binds 0.0.0.0 or 127.0.0.1 in one instance
// conflicts with the same in another. This is a test fixture for trusted
// workloads, not a security boundary.
//
// Everything in this package needs root on Linux.
package linuxrt
