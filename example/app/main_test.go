package main

import (
	"os/exec"
	"testing"
)

// The app must build as a static binary: it is copied into a Debian image.
func TestBuildsStatic(t *testing.T) {
	cmd := exec.Command("go", "build", "-o", t.TempDir()+"/app", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}
