package harden

import (
	"os"
	"strings"
	"testing"
)

// The committed docs must be what go generate makes from the profiles
// and config.go.
func TestDocsUpToDate(t *testing.T) {
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := GenerateDocs(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/provisioners/harden.mdx")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/provisioners/harden.mdx is stale: run go generate ./provisioner/harden/")
	}
	set := allControls(t)
	for _, c := range set.Controls {
		if !strings.Contains(string(got), "| `"+c.ID+"` |") {
			t.Errorf("docs do not list %s", c.ID)
		}
	}
	for _, f := range []string{"profile", "skip", "params", "min_score", "fail_on", "report_path", "execute_command", "phase", "mode"} {
		if !strings.Contains(string(got), "- `"+f+"` (") {
			t.Errorf("docs do not document %s", f)
		}
	}
}
