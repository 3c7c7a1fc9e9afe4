// Package benchreport collects the side-by-side figures of `make bench`:
// each benchmark that compares phoenix with a baseline adds a row to one
// JSON file, and `go run ./internal/benchreport/cmd` prints the rows as a
// table when the run ends.
package benchreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// EnvOut names the results file; DefaultOut (under the repository root)
// is used when it is empty.
const (
	EnvOut     = "PHOENIX_BENCH_OUT"
	DefaultOut = "bin/bench/results.json"
)

// Row is one comparison: phoenix's figure, the baseline's from the same
// run, and phoenix / baseline.
type Row struct {
	Name     string  `json:"name"`
	Phoenix  float64 `json:"phoenix"`
	Baseline float64 `json:"baseline"`
	Unit     string  `json:"unit"`
	Ratio    float64 `json:"ratio"`
	// Note says what the baseline is and the settings both ran with.
	Note string `json:"note,omitempty"`
}

// NewRow fills in the ratio; it is 0 when the baseline is 0.
func NewRow(name string, phoenix, baseline float64, unit, note string) Row {
	r := Row{Name: name, Phoenix: phoenix, Baseline: baseline, Unit: unit, Note: note}
	if baseline != 0 {
		r.Ratio = phoenix / baseline
	}
	return r
}

// Path returns the results file: $PHOENIX_BENCH_OUT, or DefaultOut under
// the repository root (the nearest directory upwards holding go.mod, so a
// benchmark finds it from its own package directory).
func Path() (string, error) {
	if p := os.Getenv(EnvOut); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, DefaultOut), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory; set %s", EnvOut)
		}
		dir = parent
	}
}

// Add writes rows into the results file at Path, replacing rows of the
// same name (a rerun updates its figures) and keeping the others.
func Add(rows ...Row) error {
	p, err := Path()
	if err != nil {
		return err
	}
	return AddTo(p, rows...)
}

// AddTo is Add for a named file. go test runs benchmark binaries one
// package at a time, so read-modify-write needs no lock; the rename keeps
// a reader from seeing half a file.
func AddTo(path string, rows ...Row) error {
	have, err := Read(path)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if math.IsNaN(r.Phoenix) || math.IsNaN(r.Baseline) || math.IsInf(r.Ratio, 0) {
			return fmt.Errorf("benchmark row %q: figures must be numbers", r.Name)
		}
		replaced := false
		for i := range have {
			if have[i].Name == r.Name {
				have[i], replaced = r, true
			}
		}
		if !replaced {
			have = append(have, r)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(have, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Read returns the rows of a results file; none when it does not exist.
func Read(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("reading benchmark results %s: %w", path, err)
	}
	return rows, nil
}

// Print writes rows as a table in name order: figure, baseline, unit,
// ratio (phoenix / baseline), note. Names, units and notes are aligned
// left, numbers right.
func Print(w io.Writer, rows []Row) error {
	cells := [][]string{{"benchmark", "phoenix", "baseline", "unit", "ratio", "note"}}
	for _, r := range sorted(rows) {
		cells = append(cells, []string{r.Name, figure(r.Phoenix), figure(r.Baseline), r.Unit, ratio(r), r.Note})
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], len(v))
		}
	}
	right := map[int]bool{1: true, 2: true, 4: true}
	for _, c := range cells {
		var b strings.Builder
		for i, v := range c {
			pad := strings.Repeat(" ", width[i]-len(v))
			switch {
			case i == len(c)-1:
				b.WriteString(v)
			case right[i]:
				b.WriteString(pad + v + "  ")
			default:
				b.WriteString(v + pad + "  ")
			}
		}
		if _, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " ")); err != nil {
			return err
		}
	}
	return nil
}

// PrintMarkdown writes rows as a Markdown table, for docs/performance.md.
func PrintMarkdown(w io.Writer, rows []Row) error {
	lines := []string{"| benchmark | phoenix | baseline | unit | ratio | note |", "|---|---:|---:|---|---:|---|"}
	for _, r := range sorted(rows) {
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", r.Name, figure(r.Phoenix), figure(r.Baseline), r.Unit, ratio(r), r.Note))
	}
	_, err := fmt.Fprintln(w, strings.Join(lines, "\n"))
	return err
}

func sorted(rows []Row) []Row {
	rows = append([]Row(nil), rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

func ratio(r Row) string {
	if r.Baseline == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.Ratio)
}

// figure prints whole numbers as they are and others with three
// significant digits or more: 17.5, 61.4, 0.731, 124.8 -> 125.
func figure(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
