package benchreport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAddReplacesRowsOfTheSameNameAndKeepsOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench", "results.json")
	if err := AddTo(path, NewRow("bake: wall time", 18, 60, "s", "first"), NewRow("plugin size", 89, 125, "MiB", "")); err != nil {
		t.Fatal(err)
	}
	if err := AddTo(path, NewRow("bake: wall time", 20, 40, "s", "rerun"), NewRow("deploy: calls", 30, 0, "calls", "")); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Name: "bake: wall time", Phoenix: 20, Baseline: 40, Unit: "s", Ratio: 0.5, Note: "rerun"},
		{Name: "plugin size", Phoenix: 89, Baseline: 125, Unit: "MiB", Ratio: 0.712},
		{Name: "deploy: calls", Phoenix: 30, Unit: "calls"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestPathIsTheEnvironmentsOrUnderTheModuleRoot(t *testing.T) {
	t.Setenv(EnvOut, "/somewhere/results.json")
	if p, err := Path(); err != nil || p != "/somewhere/results.json" {
		t.Fatalf("Path() = %q, %v", p, err)
	}
	t.Setenv(EnvOut, "")
	p, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	if p != filepath.Join(root, "bin", "bench", "results.json") {
		t.Fatalf("Path() = %q, want under %s", p, root)
	}
}

func TestReadMissingFileHasNoRowsAndBadFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if rows, err := Read(filepath.Join(dir, "none.json")); err != nil || rows != nil {
		t.Fatalf("missing file: %v %v", rows, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: %v", err)
	}
}

func TestPrintAlignsTheTable(t *testing.T) {
	var b strings.Builder
	rows := []Row{
		NewRow("plugin size", 88.879, 124.8, "MiB", "both -trimpath"),
		NewRow("bake, 1 region: wall time", 18.4148, 60.4638, "s", "poll 1s"),
		NewRow("deploy: calls", 30, 0, "calls", ""),
	}
	if err := Print(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := `benchmark                  phoenix  baseline  unit   ratio  note
bake, 1 region: wall time     18.4      60.5  s       0.30  poll 1s
deploy: calls                   30         0  calls      -
plugin size                   88.9       125  MiB     0.71  both -trimpath
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := PrintMarkdown(&b, rows[:1]); err != nil {
		t.Fatal(err)
	}
	wantMD := `| benchmark | phoenix | baseline | unit | ratio | note |
|---|---:|---:|---|---:|---|
| plugin size | 88.9 | 125 | MiB | 0.71 | both -trimpath |
`
	if b.String() != wantMD {
		t.Errorf("markdown got:\n%s\nwant:\n%s", b.String(), wantMD)
	}
}

func TestAddRefusesFiguresThatAreNotNumbers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	zero := 0.0
	if err := AddTo(path, NewRow("broken", zero/zero, 1, "s", "")); err == nil || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("NaN accepted: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file written for a refused row: %v", err)
	}
}
