// Package testenv gates tests that need something outside the Go
// toolchain: root, Linux namespaces, Debian's packages, a CLI. Such tests
// skip by default; with PHOENIX_REQUIRE_E2E=1 (set by CI) a skip is a
// failure, so a green CI run really ran them.
package testenv

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// Required reports whether skips of gated tests are failures.
func Required() bool { return os.Getenv("PHOENIX_REQUIRE_E2E") == "1" }

// Skip skips the test, or fails it when gated tests are required.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("required test cannot run: %s (PHOENIX_REQUIRE_E2E=1)", reason)
	}
	t.Skip(reason)
}

// RequireE2E skips unless end-to-end tests are enabled with PHOENIX_E2E=1
// (implied by PHOENIX_REQUIRE_E2E=1).
func RequireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("PHOENIX_E2E") != "1" && !Required() {
		t.Skip("end-to-end test: set PHOENIX_E2E=1 to run it")
	}
}

// RequireRoot skips unless the test runs as root on Linux.
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		Skip(t, "needs root on Linux")
	}
}

// LookPath returns the path of a program, preferring the first of paths
// that exists, then $PATH; it skips (or fails) when none is found.
func LookPath(t testing.TB, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" is not installed")
	}
	return p
}
