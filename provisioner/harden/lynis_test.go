package harden

import (
	"strings"
	"testing"
)

func TestParseLynisReport(t *testing.T) {
	dat := `# Lynis Report
report_version_major=1
lynis_version=3.0.8
suggestion[]=LYNIS|This release is more than 4 months old.|-|-|
suggestion[]=FILE-6310|To decrease the impact of a full /home file system, place /home on a separate partition|-|-|
suggestion[]=FILE-6310|To decrease the impact of a full /tmp file system, place /tmp on a separate partition|-|-|
warning[]=LOGG-2138|klogd is not running, which could lead to missing kernel messages in log files|-|-|
hardening_index=71
`
	r, err := ParseLynisReport([]byte(dat))
	if err != nil {
		t.Fatal(err)
	}
	if r.Index != 71 || r.Version != "3.0.8" || len(r.Suggestions) != 3 || len(r.Warnings) != 1 {
		t.Errorf("%+v", r)
	}
	if r.Warnings[0] != (LynisFinding{ID: "LOGG-2138", Text: "klogd is not running, which could lead to missing kernel messages in log files"}) {
		t.Errorf("warning %+v", r.Warnings[0])
	}
	if got := strings.Join(r.FindingIDs(), " "); got != "FILE-6310 LOGG-2138 LYNIS" {
		t.Errorf("finding ids %q", got)
	}
	for _, bad := range []string{"lynis_version=3.0.8\nsuggestion[]=X|y|\n", "hardening_index=high\n"} {
		if _, err := ParseLynisReport([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// Every reason names a finding id once, says why, and is not also claimed
// by a control as its Lynis test (a control that passes and a reason for
// the same id would hide a regression).
func TestLynisReasonsAreDistinct(t *testing.T) {
	set := allControls(t)
	claimed := map[string]string{}
	for _, c := range set.Controls {
		for _, id := range c.References["lynis"] {
			claimed[id] = c.ID
		}
	}
	seen := map[string]bool{}
	for _, r := range LynisReasons {
		if seen[r.ID] || strings.TrimSpace(r.Reason) == "" || r.Topic == "" {
			t.Errorf("reason %+v: repeated or empty", r)
		}
		seen[r.ID] = true
		if c, ok := claimed[r.ID]; ok && !r.Booted {
			t.Errorf("%s has a reason and control %s claims it; only findings a chroot cannot clear may have both", r.ID, c)
		}
	}
}
