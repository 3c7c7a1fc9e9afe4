package harden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func TestPrepareDefaults(t *testing.T) {
	var c Config
	if err := c.Prepare(map[string]interface{}{}); err != nil {
		t.Fatal(err)
	}
	if c.Profile != "baseline" || c.Phase != PhaseApply || c.Mode != ModeApply || c.FailOn != "critical" || c.ExecuteCommand != DefaultExecuteCommand || c.RemoteFolder != "/tmp" {
		t.Errorf("defaults: %+v", c)
	}
	if c.params["install_packages"] != "true" || c.params["allow_ip_forward"] != "false" {
		t.Errorf("params: %v", c.params)
	}
	var cl Config
	if err := cl.Prepare(map[string]interface{}{"phase": "cleanup"}); err != nil {
		t.Fatal(err)
	}
	if cl.Profile != "cleanup" || cl.set.Lookup("cleanup-authorized-keys") == nil {
		t.Errorf("cleanup: %+v", cl)
	}
	// Verify works with either phase and reaches the script.
	for _, phase := range []string{PhaseApply, PhaseCleanup} {
		var v Config
		if err := v.Prepare(map[string]interface{}{"phase": phase, "mode": "verify"}); err != nil {
			t.Fatal(err)
		}
		if in := v.scriptInput("t"); in.Mode != ModeVerify || in.Phase != phase {
			t.Errorf("phase %s, mode verify: script input %+v", phase, in)
		}
	}
}

func TestPrepareParamsAndControls(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "extra.hcl")
	writeFile(t, file, "param \"app_user\" {\n  description = \"x\"\n}\ncontrol \"app-user\" {\n  title = \"the app user exists\"\n  severity = \"high\"\n  params = [\"app_user\"]\n  check = \"grep -q \\\"^$PARAM_app_user:\\\" \\\"$ROOT/etc/passwd\\\"\"\n}\n")
	var c Config
	err := c.Prepare(map[string]interface{}{
		"profile":       "cis-level1",
		"controls_file": file,
		"controls":      "control \"motd\" {\n  title = \"motd exists\"\n  severity = \"low\"\n  check = \"test -f $ROOT/etc/motd\"\n}\n",
		"params":        map[string]string{"allow_ip_forward": "1", "app_user": "web", "disable_squashfs": "TRUE"},
		"skip":          []map[string]interface{}{{"id": "kmod-udf", "reason": "DVD images"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.params["allow_ip_forward"] != "true" || c.params["disable_squashfs"] != "true" || c.params["app_user"] != "web" {
		t.Errorf("params: %v", c.params)
	}
	if c.set.Lookup("motd") == nil || c.set.Lookup("app-user") == nil {
		t.Error("template controls missing")
	}
	in := c.scriptInput("t")
	if in.Waivers["kmod-udf"] != "DVD images" {
		t.Errorf("waivers %v", in.Waivers)
	}
}

func TestPrepareErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{"unknown skip id", map[string]interface{}{"skip": []map[string]interface{}{{"id": "ssh-cipher", "reason": "x"}}},
			[]string{`skip[0]: unknown control id "ssh-cipher" (did you mean "ssh-ciphers"?)`}},
		{"skip without reason", map[string]interface{}{"skip": []map[string]interface{}{{"id": "ssh-ciphers", "reason": " "}}},
			[]string{`skip[0]: reason for skipping "ssh-ciphers" is empty`}},
		{"skip twice", map[string]interface{}{"skip": []map[string]interface{}{{"id": "ssh-ciphers", "reason": "a"}, {"id": "ssh-ciphers", "reason": "b"}}},
			[]string{`skip[1]: control "ssh-ciphers" is skipped twice`}},
		{"malformed control", map[string]interface{}{"controls": "control \"x\" {\n  title = \"t\"\n  severity = \"low\"\n  check = \"true\"\n  apply = <<EOT\n"},
			[]string{"controls: controls:6,1: Unterminated template string"}},
		{"control missing check", map[string]interface{}{"controls": "\ncontrol \"x\" {\n  title = \"t\"\n  severity = \"low\"\n}\n"},
			[]string{`controls: controls:2,13: Missing required argument; The argument "check" is required`}},
		{"duplicate control", map[string]interface{}{"controls": "control \"ssh-ciphers\" {\n  title = \"t\"\n  severity = \"low\"\n  check = \"true\"\n}\n"},
			[]string{`controls: controls:1: control "ssh-ciphers" is already defined at profiles/baseline.hcl:`}},
		{"undeclared param", map[string]interface{}{"controls": "control \"x\" {\n  title = \"t\"\n  severity = \"low\"\n  params = [\"nope\"]\n  check = \"true\"\n}\n"},
			[]string{`control "x" uses param "nope", which no param block declares`}},
		{"min_score high", map[string]interface{}{"min_score": 101}, []string{"min_score: 101 is not between 0 and 100"}},
		{"min_score negative", map[string]interface{}{"min_score": -1}, []string{"min_score: -1 is not between 0 and 100"}},
		{"bad phase", map[string]interface{}{"phase": "verify"}, []string{`phase: "verify" is not "apply" or "cleanup"`}},
		{"bad mode", map[string]interface{}{"mode": "audit"}, []string{`mode: "audit" is not "apply" or "verify"`}},
		{"mode is case-sensitive", map[string]interface{}{"mode": "Verify"}, []string{`mode: "Verify" is not "apply" or "verify"`}},
		{"mode in phase", map[string]interface{}{"phase": "verify", "mode": "verify"}, []string{`phase: "verify" is not "apply" or "cleanup"`}},
		{"bad mode with cleanup", map[string]interface{}{"phase": "cleanup", "mode": "dry-run"}, []string{`mode: "dry-run" is not "apply" or "verify"`}},
		{"bad fail_on", map[string]interface{}{"fail_on": "severe"}, []string{`fail_on: "severe" is not one of critical, high, medium, low, none`}},
		{"bad profile", map[string]interface{}{"profile": "cis-level2"}, []string{`profile: "cis-level2" is not one of baseline, cis-level1, none`}},
		{"profile with cleanup", map[string]interface{}{"phase": "cleanup", "profile": "baseline"}, []string{`profile: must be unset when phase is "cleanup"`}},
		{"unknown param", map[string]interface{}{"params": map[string]string{"allow_ip_forwad": "true"}},
			[]string{`params: unknown param "allow_ip_forwad" (did you mean "allow_ip_forward"?) (known: allow_ip_forward, banner_text, disable_squashfs, install_acct, install_aide, install_auditd, install_packages, install_pam_tmpdir, install_pwquality, install_time_sync, ssh_allow_forwarding, ssh_allow_users, time_servers)`}},
		{"bad bool param", map[string]interface{}{"params": map[string]string{"install_packages": "maybe"}}, []string{`params: install_packages: "maybe" is not a bool`}},
		{"execute_command without path", map[string]interface{}{"execute_command": "sudo sh /tmp/x"}, []string{"execute_command: must contain {{.Path}}"}},
		{"missing controls_file", map[string]interface{}{"controls_file": "/nonexistent/x.hcl"}, []string{"controls_file: open /nonexistent/x.hcl"}},
		{"none with nothing", map[string]interface{}{"profile": "none"}, []string{`profile: "none" with no controls given runs nothing`}},
		{"everything at once", map[string]interface{}{"min_score": 200, "phase": "x", "mode": "z", "fail_on": "y", "skip": []map[string]interface{}{{"id": "nope"}}},
			[]string{"min_score:", "phase:", "mode:", "fail_on:", `reason for skipping "nope" is empty`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := c.Prepare(tc.raw)
			if err == nil {
				t.Fatal("no error")
			}
			if _, ok := err.(*packersdk.MultiError); !ok {
				t.Errorf("error is %T, want *packersdk.MultiError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPrepareReportPathMustBeDirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	var c Config
	if err := c.Prepare(map[string]interface{}{"report_path": f}); err == nil || !strings.Contains(err.Error(), "report_path:") {
		t.Fatalf("err = %v", err)
	}
}
