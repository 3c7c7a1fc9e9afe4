package linuxrt

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// A lease on an address excludes every other lease on it, in this process
// or another, until it is released or its holder exits.
func TestLeaseAddress(t *testing.T) {
	old := leaseDir
	leaseDir = t.TempDir()
	t.Cleanup(func() { leaseDir = old })

	a, err := LeaseAddress("127.31.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LeaseAddress("127.31.0.5"); !errors.Is(err, ErrAddressLeased) {
		t.Fatalf("second lease of a leased address: %v, want ErrAddressLeased", err)
	}
	b, err := LeaseAddress("127.31.0.6")
	if err != nil {
		t.Fatalf("lease of another address: %v", err)
	}
	defer b.Release()

	// Another process sees the lease: flock(1) cannot take it.
	if flock, err := exec.LookPath("flock"); err == nil {
		cmd := exec.Command(flock, "--nonblock", leaseDir+"/127.31.0.5", "true")
		if err := cmd.Run(); err == nil {
			t.Errorf("another process took the lock of a leased address")
		}
		a.Release()
		a.Release() // twice is fine
		if out, err := exec.Command(flock, "--nonblock", leaseDir+"/127.31.0.5", "true").CombinedOutput(); err != nil {
			t.Errorf("another process cannot lock a released address: %v %s", err, out)
		}
	} else {
		a.Release()
	}
	c, err := LeaseAddress("127.31.0.5")
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	c.Release()

	if _, err := LeaseAddress("not-an-ip"); err == nil {
		t.Errorf("lease of a bad address succeeded")
	}
	if _, err := os.Stat(leaseDir + "/127.31.0.5"); err != nil {
		t.Errorf("lock file: %v", err)
	}
}
