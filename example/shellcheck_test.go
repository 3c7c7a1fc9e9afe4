package example

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// TestShellScriptsLint runs shellcheck (warnings and errors) on every shell
// script the project ships or runs: scripts/, the examples, the CI
// pipeline and .ci/run. make test installs shellcheck; without it the test
// skips, and fails in CI.
func TestShellScriptsLint(t *testing.T) {
	shellcheck := testenv.LookPath(t, "shellcheck")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "*.sh", ".ci/run").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	files := strings.Fields(string(out))
	// The hardening script's parts are linted as the rendered script
	// (provisioner/harden TestScriptSyntax).
	var lint []string
	for _, f := range files {
		if !strings.HasPrefix(f, "provisioner/harden/script/") {
			lint = append(lint, f)
		}
	}
	if len(lint) < 15 {
		t.Fatalf("found %d scripts to lint (%v), want the project's 15 or more", len(lint), lint)
	}
	cmd := exec.Command(shellcheck, append([]string{"-S", "warning", "-x"}, lint...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
