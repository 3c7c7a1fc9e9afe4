//go:build linux

package sandbox

import (
	"net"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

// Two sandboxes on one machine (the test packages of `go test ./...` run
// at once, each with its own) never give one address to two instances or
// load balancers, though each hands addresses out in the same order.
func TestLinuxAddressesAreMachineWide(t *testing.T) {
	a := &linuxRuntime{ips: map[string]*linuxrt.Lease{}}
	b := &linuxRuntime{ips: map[string]*linuxrt.Lease{}}
	const ip = "127.31.254.201"
	if !a.ClaimIP(ip) {
		t.Fatalf("first sandbox cannot claim %s", ip)
	}
	if a.ClaimIP(ip) {
		t.Errorf("one sandbox claimed %s twice", ip)
	}
	if b.ClaimIP(ip) {
		t.Errorf("a second sandbox claimed %s while the first holds it", ip)
	}
	a.ReleaseIP(ip)
	if !b.ClaimIP(ip) {
		t.Errorf("the second sandbox cannot claim %s after the first released it", ip)
	}
	b.ReleaseIP(ip)

	// An address something else listens on is not handed out.
	ln, err := net.Listen("tcp4", ip+":22")
	if err != nil {
		t.Skipf("cannot listen on %s:22 here: %v", ip, err)
	}
	defer ln.Close()
	if a.ClaimIP(ip) {
		t.Errorf("claimed %s while a program listens on its port 22", ip)
	}

	// Load balancer addresses too.
	lbA, lbB := a.LoadBalancerAddress(), b.LoadBalancerAddress()
	if lbA == "" || lbB == "" || lbA == lbB {
		t.Errorf("load balancer addresses of two sandboxes: %q and %q", lbA, lbB)
	}
	a.ReleaseIP(lbA)
	b.ReleaseIP(lbB)
}
