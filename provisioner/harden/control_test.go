package harden

import (
	"strings"
	"testing"
)

func TestEmbeddedProfiles(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range []string{"baseline", "cis-level1", "cleanup"} {
		set, err := LoadProfile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(set.Controls) == 0 {
			t.Errorf("%s: no controls", name)
		}
		for _, c := range set.Controls {
			seen[c.ID] = true
			if !c.Severity.valid() {
				t.Errorf("%s: severity %q", c.ID, c.Severity)
			}
			n := 0
			for _, refs := range c.References {
				n += len(refs)
			}
			if n == 0 {
				t.Errorf("%s (%s): no references", c.ID, c.Source)
			}
			if c.Apply == "" && !strings.HasPrefix(c.ID, "accounts-") {
				t.Errorf("%s: no apply", c.ID)
			}
			for _, p := range c.Params {
				if set.Param(p) == nil {
					t.Errorf("%s: param %q is not declared", c.ID, p)
				}
			}
			// EFI system partitions are vfat: disabling it makes instances unbootable.
			if strings.Contains(c.Apply, "vfat") {
				t.Errorf("%s touches vfat", c.ID)
			}
		}
	}
	hardening := 0
	for id := range seen {
		if !strings.HasPrefix(id, "cleanup-") {
			hardening++
		}
	}
	if hardening < 40 {
		t.Errorf("%d unique hardening controls, want at least 40", hardening)
	}
	t.Logf("%d unique controls (%d hardening)", len(seen), hardening)

	base, _ := LoadProfile("baseline")
	cis, _ := LoadProfile("cis-level1")
	for _, c := range base.Controls {
		if cis.Lookup(c.ID) == nil {
			t.Errorf("cis-level1 lacks baseline control %s", c.ID)
		}
	}
}

func TestParseControlsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"syntax", "control \"a\" {\n  title = \"x\"\n  severity = \n}\n", "controls:3,"},
		{"missing check", "control \"a\" {\n  title = \"x\"\n  severity = \"low\"\n}\n", `controls:1,13: Missing required argument; The argument "check" is required`},
		{"unknown attribute", "control \"a\" {\n  title = \"x\"\n  severity = \"low\"\n  check = \"true\"\n  chek = 1\n}\n", "controls:5,3: Unsupported argument"},
		{"bad severity", "\n\ncontrol \"a\" {\n  title = \"x\"\n  severity = \"urgent\"\n  check = \"true\"\n}\n", `controls:3,1: control "a": severity "urgent" is not one of critical`},
		{"bad distro", "control \"a\" {\n  title = \"x\"\n  severity = \"low\"\n  check = \"true\"\n  distros = [\"debian-11\"]\n}\n", `distro "debian-11" is not one of`},
		{"bad id", "control \"A b\" {\n  title = \"x\"\n  severity = \"low\"\n  check = \"true\"\n}\n", "id must match"},
		{"wrong type", "control \"a\" {\n  title = \"x\"\n  severity = \"low\"\n  check = \"true\"\n  distros = 3\n}\n", `controls:5,13: Invalid value for "distros"`},
		{"unknown block", "contrl \"a\" {}\n", "controls:1,1: Unsupported block type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseControls("controls", []byte(tc.src), "template")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestMergeRejectsDuplicates(t *testing.T) {
	set, _ := LoadProfile("baseline")
	extra, err := ParseControls("controls", []byte("control \"ssh-ciphers\" {\n title = \"x\"\n severity = \"low\"\n check = \"true\"\n}\n"), "template")
	if err != nil {
		t.Fatal(err)
	}
	err = set.Merge(extra)
	if err == nil || !strings.Contains(err.Error(), `control "ssh-ciphers" is already defined at profiles/baseline.hcl:`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSeverity(t *testing.T) {
	if !SeverityCritical.AtLeast(SeverityHigh) || SeverityLow.AtLeast(SeverityMedium) || !SeverityMedium.AtLeast(SeverityMedium) {
		t.Error("AtLeast ordering")
	}
	want := map[Severity][2]float64{SeverityCritical: {1.0, 10}, SeverityHigh: {0.7, 5}, SeverityMedium: {0.5, 3}, SeverityLow: {0.3, 1}}
	for s, w := range want {
		if s.Impact() != w[0] || float64(s.Weight()) != w[1] {
			t.Errorf("%s: impact %v weight %d", s, s.Impact(), s.Weight())
		}
	}
}
