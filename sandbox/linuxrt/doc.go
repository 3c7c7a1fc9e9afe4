// Package linuxrt runs EC2-like instances as real Debian 12 systems inside
// Linux namespaces on the local machine, without virtual machines.
//
// An instance is a stack of read-only layer directories (the base root file
// system built by EnsureBaseRootfs, then image layers) plus a writable upper
// directory of its own, combined with overlayfs. Each instance runs in new
// mount, pid, uts, ipc and network namespaces. Its private 127.x.y.z address
// is on its own lo; every TCP port it listens on (0.0.0.0, :: or that
// address) is relayed from the same address on the host, its outbound TCP
// connections are relayed from the host's namespace, DNS goes to
// 169.254.169.253 and the instance metadata service answers at
// 169.254.169.254 (netns_linux.go).
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
// process was started as an instance init (or an instance's watcher). As
// pid 1 of the instance it mounts the overlay in its private mount
// namespace, binds the console (a terminal whose other end the runtime
// appends to the console log), pivots into the overlay (the host's mounts
// are detached), mounts /proc, /sys (read-only), /dev, /run, configures its
// network with the host's ip and iptables, sets the host name, writes
// /etc/hosts and /etc/resolv.conf, adds the authorized key for user admin,
// and on the first boot of an instance ID regenerates the ssh host keys.
//
// An image with systemd (the base root file system has it, as Debian's
// cloud images do) then boots as on EC2: the init enters a cgroup
// namespace rooted at the instance's own cgroup, mounts it, installs the
// user data as a unit in /run (first boot only), drops capabilities and
// executes systemd, which starts the units enabled in the image. Stop asks
// systemd to power off and kills the instance after StopTimeout. A watcher
// process on the host holds the runtime's pipe and does the same when the
// runtime's process dies (systemd_linux.go, watch_linux.go).
//
// An image without systemd keeps phoenix's own init: it starts sshd, runs
// the user data, reaps orphans, restarts sshd if it dies, and stops the
// instance when the runtime's pipe closes. The instance's mounts exist only
// in its mount namespace, so they disappear with its processes, even after
// a crash.
//
// # Isolation
//
// Processes of an instance, root included, are limited to Docker's default
// capability set less CAP_MKNOD and CAP_NET_RAW (bounding set included, so
// sudo gets no more). /proc/sys and /sys are read-only, /proc/kcore and
// similar files are masked, the init is not dumpable. There is no seccomp
// filter, no cgroup limit and no user namespace, and an instance reaches
// whatever the host reaches. This is a test fixture for trusted workloads,
// not a security boundary.
//
// Everything in this package needs root on Linux.
package linuxrt
