// Package linuxrt runs EC2-like instances as real Debian 12 systems inside
// Linux namespaces on the local machine, without virtual machines.
//
// An instance is a stack of read-only layer directories (the base root file
// system built by EnsureBaseRootfs, then image layers) plus a writable upper
// directory of its own, combined with overlayfs. Each instance runs in new
// mount, pid, uts and ipc namespaces but shares the host's network namespace:
// its sshd listens only on the instance's own 127.x.y.z address.
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
// process was started as an instance init.
//
// Everything in this package needs root on Linux.
package linuxrt
