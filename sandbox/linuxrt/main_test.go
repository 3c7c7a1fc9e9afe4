package linuxrt

import (
	"os"
	"runtime"
	"testing"
)

func TestMain(m *testing.M) {
	Init() // instance inits are this test binary, re-executed
	os.Exit(m.Run())
}

// requireE2E skips t unless it runs as root on Linux with PHOENIX_E2E=1.
// With PHOENIX_REQUIRE_E2E=1 a skip is a failure instead.
func requireE2E(t testing.TB) {
	t.Helper()
	reason := ""
	switch {
	case runtime.GOOS != "linux":
		reason = "needs Linux"
	case os.Geteuid() != 0:
		reason = "needs root"
	case os.Getenv("PHOENIX_E2E") != "1":
		reason = "set PHOENIX_E2E=1 to run"
	}
	if reason == "" {
		return
	}
	if os.Getenv("PHOENIX_REQUIRE_E2E") == "1" {
		t.Fatalf("PHOENIX_REQUIRE_E2E=1 but this test cannot run: %s", reason)
	}
	t.Skip(reason)
}
