package harden

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

func rc(id string, sev Severity, status string) ReportControl {
	return ReportControl{ID: id, Title: id + " title", Tags: map[string]any{"severity": string(sev)}, Status: status,
		Results: []ReportResult{{Status: status, Message: id + " evidence\nline two"}}}
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   []ReportControl
		want int
	}{
		{"all passed", []ReportControl{rc("a", SeverityCritical, StatusPassed), rc("b", SeverityLow, StatusPassed)}, 100},
		{"nothing applicable", []ReportControl{rc("a", SeverityHigh, StatusNotApplicable), rc("b", SeverityLow, StatusWaived)}, 0},
		// 10 passed of 10+5+3+1 = 19: 52.6 rounds down.
		{"weighted", []ReportControl{rc("a", SeverityCritical, StatusPassed), rc("b", SeverityHigh, StatusFailed), rc("c", SeverityMedium, StatusError), rc("d", SeverityLow, StatusFailed)}, 52},
		{"waived and n/a do not count", []ReportControl{rc("a", SeverityLow, StatusPassed), rc("b", SeverityCritical, StatusWaived), rc("c", SeverityCritical, StatusNotApplicable)}, 100},
		// one low failure among 10 criticals: 100/101 floors to 99, never 100.
		{"floor", append(repeat(rc("a", SeverityCritical, StatusPassed), 10), rc("b", SeverityLow, StatusFailed)), 99},
	} {
		if got := Score(tc.cs); got != tc.want {
			t.Errorf("%s: score %d, want %d", tc.name, got, tc.want)
		}
	}
}

func repeat(c ReportControl, n int) []ReportControl {
	var out []ReportControl
	for i := 0; i < n; i++ {
		out = append(out, c)
	}
	return out
}

func report(cs ...ReportControl) *Report {
	r := &Report{Profiles: []ReportProfile{{Name: "baseline", Controls: cs}}}
	r.Phoenix.Phase, r.Phoenix.Profile, r.Phoenix.Distro = "apply", "baseline", "debian-12"
	return r
}

func TestGate(t *testing.T) {
	r := report(rc("crit", SeverityCritical, StatusPassed), rc("hi", SeverityHigh, StatusFailed), rc("med", SeverityMedium, StatusError), rc("low", SeverityLow, StatusPassed))
	if err := Gate(r, 0, "critical"); err != nil {
		t.Errorf("critical gate: %v", err)
	}
	err := Gate(r, 0, "high")
	if err == nil || !strings.Contains(err.Error(), "1 control(s) at or above fail_on \"high\" did not pass:\n  hi (high, failed): hi evidence; line two") || strings.Contains(err.Error(), "med") {
		t.Errorf("high gate: %v", err)
	}
	if err := Gate(r, 0, "medium"); err == nil || !strings.Contains(err.Error(), "med (medium, error): med evidence") {
		t.Errorf("medium gate: %v", err)
	}
	if err := Gate(r, 0, "none"); err != nil {
		t.Errorf("none: %v", err)
	}
	err = Gate(r, 90, "none")
	if err == nil || !strings.Contains(err.Error(), "hardening score 57 is below min_score 90") || !strings.Contains(err.Error(), "med (medium, error): med evidence") {
		t.Errorf("score gate: %v", err)
	}
}

func TestParseReport(t *testing.T) {
	good := `{"platform":{"name":"debian","release":"12"},"profiles":[{"name":"baseline","controls":[
	 {"id":"a","title":"A","impact":0.7,"tags":{"cis":["1"],"devsec":[],"severity":"high"},"status":"passed","changed":true,"apply_log":"changed: x",
	  "results":[{"status":"passed","code_desc":"a: A","message":"ok","run_time":0.01}]}]}],
	 "statistics":{"duration":1.5},"version":"phoenix-harden dev","phoenix":{"phase":"apply","profile":"baseline","distro":"debian-12","score":100,"counts":{"passed":1}}}`
	r, err := ParseReport([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Controls()[0]
	if c.Severity() != SeverityHigh || !c.Changed || c.Evidence() != "ok" || r.Phoenix.Score != 100 || r.Statistics.Duration != 1.5 {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{`{`, `{"profiles":[]}`, `{"profiles":[{"controls":[{"id":"a","status":"skipped"}]}]}`} {
		if _, err := ParseReport([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestJUnit(t *testing.T) {
	r := report(rc("ok", SeverityHigh, StatusPassed), rc("bad", SeverityCritical, StatusFailed), rc("err", SeverityLow, StatusError),
		rc("na", SeverityLow, StatusNotApplicable), rc("waived", SeverityLow, StatusWaived))
	var b bytes.Buffer
	if err := WriteJUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	// A report without a mode is of an apply run (reports before verify mode).
	if !strings.Contains(b.String(), `<property name="mode" value="apply"></property>`) {
		t.Errorf("no mode property:\n%s", b.String())
	}
	if !strings.HasPrefix(b.String(), "<?xml") || len(doc.Suites) != 1 {
		t.Fatalf("shape:\n%s", b.String())
	}
	s := doc.Suites[0]
	if s.Name != "phoenix-harden.baseline" || s.Tests != 5 || s.Failures != 1 || s.Errors != 1 || s.Skipped != 2 {
		t.Errorf("suite counts: %+v", s)
	}
	if s.Cases[1].Name != "bad: bad title" || s.Cases[1].Failure == nil || s.Cases[1].Failure.Text != "bad evidence\nline two" || s.Cases[1].Failure.Message != "bad evidence; line two" {
		t.Errorf("failure case: %+v", s.Cases[1])
	}
	if s.Cases[0].Failure != nil || s.Cases[2].Error == nil || s.Cases[3].Skipped == nil || s.Cases[4].Skipped == nil {
		t.Errorf("cases: %+v", s.Cases)
	}
}

func TestTable(t *testing.T) {
	r := report(rc("ok", SeverityHigh, StatusPassed), rc("bad", SeverityCritical, StatusFailed))
	r.Profiles[0].Controls[0].Changed = true
	r.Phoenix.Counts = map[string]int{"passed": 1, "failed": 1, "changed": 1}
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"STATUS  SEVERITY  CHANGED  CONTROL  EVIDENCE",
		"failed  critical  -        bad      bad evidence; line two",
		"passed  high      yes      ok       ok evidence; line two",
		"score 33/100 on debian-12 (apply, profile baseline): 1 passed, 1 failed, 0 error, 0 not applicable, 0 waived; 1 changed",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}

	// A verify run says so instead of a count of changes.
	v := report(rc("ok", SeverityHigh, StatusPassed), rc("bad", SeverityCritical, StatusFailed))
	v.Phoenix.Phase, v.Phoenix.Mode = PhaseCleanup, ModeVerify
	v.Phoenix.Counts = map[string]int{"passed": 1, "failed": 1}
	b.Reset()
	if err := WriteTable(&b, v); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(b.String()), "\n")
	if last, want := lines[len(lines)-1], "score 33/100 on debian-12 (cleanup, mode verify, profile baseline): 1 passed, 1 failed, 0 error, 0 not applicable, 0 waived; verified, changed nothing"; last != want {
		t.Errorf("verify summary:\n%s\nwant:\n%s", last, want)
	}
}
