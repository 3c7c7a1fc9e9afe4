package linuxrt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Addresses in 127.0.0.0/8 are shared by every program on the machine, and
// several sandboxes may run at once (the test packages of one `go test
// ./...` do, each with its own sandbox handing out the same addresses in
// the same order). An instance's host-side relays listen at its address
// only while it runs and some time after its boot began, so "nothing
// listens there now" does not keep another sandbox from choosing the same
// address for an instance of its own: both would then serve one address,
// and a client would reach the other sandbox's instance. A lease is a lock
// on the address that every runtime on the machine honours; the kernel
// drops it when its holder exits, crash included.

// leaseDir holds one lock file per leased address. Files are never
// removed: removing a lock file races with a process about to lock it.
var leaseDir = "/run/phoenix-sandbox/addresses"

// Lease is one program's claim on an address.
type Lease struct {
	f *os.File
}

// LeaseAddress claims ip for the calling program until Release (or until
// the program exits). It fails when another lease on ip is held, by this
// program or another.
func LeaseAddress(ip string) (*Lease, error) {
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return nil, fmt.Errorf("linuxrt: lease: %q is not an IPv4 address", ip)
	}
	dir := leaseDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		// Only root runs instances; a program without root that hands
		// out addresses all the same (a test of the bookkeeping) keeps
		// its leases among programs of its own kind.
		dir = filepath.Join(os.TempDir(), "phoenix-sandbox-addresses")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("linuxrt: lease: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, addr.String()), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("linuxrt: lease: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrAddressLeased
		}
		return nil, fmt.Errorf("linuxrt: lease: %w", err)
	}
	return &Lease{f: f}, nil
}

// ErrAddressLeased is LeaseAddress's answer for an address that is taken.
var ErrAddressLeased = errors.New("linuxrt: the address is leased by another runtime")

// Release gives the address up. It is safe to call more than once.
func (l *Lease) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
}
