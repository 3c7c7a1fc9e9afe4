package sandbox

import (
	"io"
	"testing"
)

// ELBTestProxy serves load balancer lbARN of region on addr with the
// linux runtime's HTTP proxy, whatever the runtime, until the test ends.
func (s *Sandbox) ELBTestProxy(t testing.TB, region, lbARN, addr string) {
	t.Helper()
	s.world.mu.Lock()
	lb := s.elbTestRegion(region).LoadBalancers[lbARN]
	if lb == nil {
		s.world.mu.Unlock()
		t.Fatalf("load balancer %s not found", lbARN)
	}
	lb.Address = addr
	s.world.mu.Unlock()
	srv := newLBServer(s.world, io.Discard)
	t.Cleanup(srv.close)
}
