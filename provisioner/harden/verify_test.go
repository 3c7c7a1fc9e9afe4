package harden

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A verify-mode script holds no apply code: no apply functions, no run
// that calls one, no control's apply text; the mutating helpers are
// replaced after the library so nothing reaches the real ones.
func TestRenderVerifyHasNoApply(t *testing.T) {
	for _, p := range []struct{ profile, phase string }{{"cis-level1", PhaseApply}, {"cleanup", PhaseCleanup}} {
		set, err := LoadProfile(p.profile)
		if err != nil {
			t.Fatal(err)
		}
		withApply := 0
		for _, c := range set.Controls {
			if c.Apply != "" {
				withApply++
			}
		}
		apply := renderProfileMode(t, p.profile, p.phase, ModeApply)
		verify := renderProfileMode(t, p.profile, p.phase, ModeVerify)
		// The same counts on the apply script show what the test looks for.
		if n := strings.Count(apply, "\nph_apply_"); n != withApply || withApply == 0 {
			t.Fatalf("%s apply script: %d apply functions, want %d", p.profile, n, withApply)
		}
		// The runner's call, behind has_apply = 1 and PH_MODE = apply, is
		// the only mention left, and no function it could call exists.
		if n := regexp.MustCompile(`ph_apply_[0-9]`).FindAllString(verify, -1); len(n) != 0 {
			t.Errorf("%s verify script holds apply functions: %v", p.profile, n)
		}
		if n := strings.Count(verify, "ph_apply_"); n != 1 || !strings.Contains(verify, `if [ "$_has_apply" = 1 ] && [ "$PH_MODE" = apply ]; then
		(ph_apply_"$_n")`) {
			t.Errorf("%s verify script mentions ph_apply_ %d times, or not only behind the mode guard", p.profile, n)
		}
		runs := regexp.MustCompile(`(?m)^\tph_run (\d+) .* ([01]) \\$`).FindAllStringSubmatch(verify, -1)
		if len(runs) != len(set.Controls) {
			t.Fatalf("%s verify script: %d ph_run lines, want %d", p.profile, len(runs), len(set.Controls))
		}
		for _, m := range runs {
			if m[2] != "0" {
				t.Errorf("%s verify script: control %s runs with an apply", p.profile, m[1])
			}
		}
		for _, c := range set.Controls {
			// A line of apply that the check does not share must not appear.
			for _, line := range strings.Split(c.Apply, "\n") {
				line = strings.TrimSpace(line)
				if len(line) > 20 && !strings.Contains(c.Check, line) && !strings.Contains(libSh, line) && strings.Contains(verify, line) {
					t.Errorf("%s verify script holds %s's apply line %q", p.profile, c.ID, line)
				}
			}
		}
		if !strings.Contains(verify, "PH_MODE=verify\n") || !strings.Contains(apply, "PH_MODE=apply\n") {
			t.Error("PH_MODE not set")
		}
		// The one path of the image's own directory a check may name: the
		// cleanup check reads (never writes) the audit's package list.
		if !strings.Contains(verify, "PH_DIR=$ROOT/run/phoenix\n") || strings.Contains(strings.ReplaceAll(verify, `f="$ROOT`+AuditPackagesFile+`"`, ""), "/var/lib/phoenix") {
			t.Errorf("%s verify script works outside /run/phoenix", p.profile)
		}
		ctlStart := strings.Index(verify, "# ---- controls")
		for _, f := range mutatingHelpers {
			stub := f + `() { echo "mode verify: ` + f + ` refused`
			if i := strings.Index(verify, stub); i < 0 || i > ctlStart || i < strings.Index(verify, "\n"+f+"() {\n") {
				t.Errorf("%s verify script: %s is not replaced after the library", p.profile, f)
			}
		}
	}
}

// Every function of the runtime library is either read-only or listed in
// mutatingHelpers, so a new helper that changes the system cannot slip into
// verify mode unlisted.
func TestLibraryHelpersClassified(t *testing.T) {
	readOnly := map[string]bool{
		"ph_live": true, "ph_has": true, "ph_changed": true, "ph_is_true": true, "ph_json_escape": true, "ph_same": true,
		"ph_get_kv": true, "ph_perm_check": true, "ph_pkg_installed": true, "ph_pkg_absent_check": true, "ph_pkg_present_check": true,
		"ph_unit_file": true, "ph_unit_enabled": true, "ph_sshd_present": true, "ph_sshd": true, "ph_sshd_lines": true,
		"ph_sshd_parse": true, "ph_sshd_origin": true, "ph_sshd_load": true, "ph_sshd_value": true, "ph_sshd_expect": true,
		"ph_sshd_expect_max": true, "ph_sshd_expect_none": true, "ph_sysctl_files": true, "ph_sysctl_persisted": true,
		"ph_sysctl_live_path": true, "ph_sysctl_check": true, "ph_module_disable_check": true, "ph_login_defs_check": true,
		"ph_homes": true, "ph_authorized_keys_files": true, "ph_absent_check": true, "ph_journald_check": true, "ph_audit_rules": true,
		"ph_aide_audit_tools_rules": true, "ph_coredump_check": true, "ph_umask_check": true, "ph_login_homes": true, "ph_opted_in": true, "ph_banner_check": true,
	}
	mutating := map[string]bool{}
	for _, f := range mutatingHelpers {
		mutating[f] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^(ph_[a-z0-9_]+)\(\)`).FindAllStringSubmatch(libSh, -1) {
		f := m[1]
		switch {
		case readOnly[f] && mutating[f]:
			t.Errorf("%s is both read-only and mutating", f)
		case !readOnly[f] && !mutating[f]:
			t.Errorf("lib.sh's %s is not classified: add it to mutatingHelpers if it can change the system, else to this test's read-only list", f)
		case strings.HasSuffix(f, "_apply") && !mutating[f]:
			t.Errorf("%s is an apply helper but not in mutatingHelpers", f)
		}
	}
}

// A check that calls a mutating helper by mistake errors in verify mode,
// and the file stays as it was (runControls compares the whole tree).
func TestFixtureVerifyRefusesMutatingCheck(t *testing.T) {
	set, err := ParseControls("controls", []byte(`
control "sloppy" {
  title    = "a check that writes"
  severity = "medium"
  apply    = "ph_set_kv \"$ROOT/etc/login.defs\" UMASK 027 \" \""
  check    = <<-EOT
    ph_set_kv "$ROOT/etc/login.defs" UMASK 027 " " || exit $?
    ph_login_defs_check UMASK eq 027
  EOT
}
`), "template")
	if err != nil {
		t.Fatal(err)
	}
	root := fixtureRoot(t)
	r, out := runControls(t, root, set.Controls, runOpts{verify: true})
	wantStatus(t, r, "sloppy", StatusError, "check exited 3: mode verify: ph_set_kv refused: a check must not change the system")
	if !strings.Contains(out, "verified, changed nothing; report /run/phoenix/hardening-verify.json") {
		t.Errorf("script output:\n%s", out)
	}
	r, _ = runControls(t, root, set.Controls, runOpts{})
	wantStatus(t, r, "sloppy", StatusPassed, "UMASK 027")
}

// Verify mode through the provisioner: one round trip; a fresh tree fails
// the build with control ids and evidence and stays as it was; after an
// apply it passes with score 100, and the image copy the apply wrote (what
// phoenix-ebs tags the AMI from) is left alone.
func TestProvisionVerifyMode(t *testing.T) {
	root := fixtureRoot(t)
	reports := filepath.Join(t.TempDir(), "reports")
	verify := map[string]interface{}{
		"mode": "verify", "report_path": reports, "params": map[string]string{"install_packages": "false", "install_time_sync": "false", "install_pam_tmpdir": "false", "install_pwquality": "false"},
		"skip": []map[string]interface{}{{"id": "pkg-telnet", "reason": "the fixture cannot remove packages"}},
	}
	before := treeState(t, root)
	comm, ui, err := provision(t, root, copyRaw(verify))
	if err == nil {
		t.Fatalf("verify of a fresh tree passed:\n%s", uiText(ui))
	}
	for _, want := range []string{
		`control(s) at or above fail_on "critical" did not pass:`,
		"ssh-password-authentication (critical, failed): passwordauthentication is 'yes', want 'no'",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 || len(comm.other) > 0 {
		t.Errorf("round trips: %d uploads, %d runs, %d downloads, other %v; want 1, 1, 1", u, s, d, comm.other)
	}
	if diff := diffTree(before, treeState(t, root)); diff != "" {
		t.Errorf("verify changed the tree:\n%s", diff)
	}
	out := uiText(ui)
	for _, want := range []string{
		"Verifying hardening, changing nothing: phase apply, mode verify, profile baseline",
		"(apply, mode verify, profile baseline):", "; verified, changed nothing",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ui lacks %q:\n%s", want, out)
		}
	}
	if row := tableRow(out, "ssh-password-authentication"); row != "failed critical -" {
		t.Errorf("table row %q", row)
	}
	raw := readFile(t, filepath.Join(reports, "web-hardening-verify.json"))
	r, err := ParseReport([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Phoenix.Mode != ModeVerify || r.Phoenix.Counts["changed"] != 0 || r.Phoenix.Score == 100 {
		t.Errorf("verify report: %+v", r.Phoenix)
	}
	var suites struct {
		Suite struct {
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"properties>property"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(readFile(t, filepath.Join(reports, "web-hardening-verify.junit.xml"))), &suites); err != nil {
		t.Fatal(err)
	}
	mode := ""
	for _, p := range suites.Suite.Props {
		if p.Name == "mode" {
			mode = p.Value
		}
	}
	if mode != ModeVerify {
		t.Errorf("junit mode property %q", mode)
	}

	apply := copyRaw(verify)
	apply["mode"] = "apply"
	if _, ui, err := provision(t, root, apply); err != nil {
		t.Fatalf("apply: %v\n%s", err, uiText(ui))
	}
	image := readFile(t, filepath.Join(root, ImageReportPath))
	before = treeState(t, root)
	comm, ui, err = provision(t, root, copyRaw(verify))
	if err != nil {
		t.Fatalf("verify after apply: %v\n%s", err, uiText(ui))
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 {
		t.Errorf("round trips %d %d %d", u, s, d)
	}
	if diff := diffTree(before, treeState(t, root)); diff != "" {
		t.Errorf("verify after apply changed the tree:\n%s", diff)
	}
	if got := readFile(t, filepath.Join(root, ImageReportPath)); got != image {
		t.Error("verify replaced the image copy of the apply's report")
	}
	if !strings.Contains(uiText(ui), "score 100/100 on debian-12 (apply, mode verify, profile baseline)") {
		t.Errorf("ui:\n%s", uiText(ui))
	}
	if _, err := os.Stat(filepath.Join(reports, "web-hardening.json")); err != nil {
		t.Errorf("the apply's local report: %v", err)
	}
}

// The provisioner refuses a report of another mode or phase rather than
// gate the build on it.
func TestProvisionRefusesReportOfOtherMode(t *testing.T) {
	root := fixtureRoot(t)
	writeFile(t, filepath.Join(root, VerifyReportPath), `{"profiles":[{"name":"baseline","controls":[]}],"phoenix":{"phase":"apply","mode":"apply","score":100}}`)
	_, _, err := provision(t, root, map[string]interface{}{
		"mode": "verify", "execute_command": "dash -c 'exit 0' '{{.Path}}'",
	})
	if err == nil || !strings.Contains(err.Error(), "hardening report /run/phoenix/hardening-verify.json is of phase apply, mode apply; want phase apply, mode verify") {
		t.Errorf("err = %v", err)
	}
}
