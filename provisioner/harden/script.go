package harden

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

//go:embed script/lib.sh
var libSh string

//go:embed script/run.sh
var runSh string

// Phase names.
const (
	PhaseApply   = "apply"
	PhaseCleanup = "cleanup"
)

// AuditLynis is the auditor the audit setting runs: Lynis, Debian's package.
const AuditLynis = "lynis"

// AuditPackagesFile lists, in the image, the packages the audit installed
// for its run; the cleanup phase removes them (and the file).
const AuditPackagesFile = "/var/lib/phoenix/audit-packages"

// Mode names: apply changes the image, then checks it; verify only checks.
const (
	ModeApply  = "apply"
	ModeVerify = "verify"
)

// Image report paths: hardening.json is what phoenix-ebs turns into tags;
// the cleanup phase writes its own file so it never replaces it.
const (
	ImageReportPath        = "/var/lib/phoenix/hardening.json"
	ImageCleanupReportPath = "/var/lib/phoenix/cleanup.json"
)

// Verify mode changes nothing in the image, so its report and working
// files live in /run, a tmpfs on every systemd distro: not in the AMI's
// snapshot, gone at the next boot. It never touches the image copies above,
// so phoenix-ebs tags the AMI with what the last apply found.
const (
	VerifyDir               = "/run/phoenix"
	VerifyReportPath        = VerifyDir + "/hardening-verify.json"
	VerifyCleanupReportPath = VerifyDir + "/cleanup-verify.json"
	imageDir                = "/var/lib/phoenix"
)

// mutatingHelpers are the runtime library's functions that change the
// system. A verify-mode script replaces them with ones that refuse, so
// that a check which calls one by mistake errors instead of changing the
// image.
var mutatingHelpers = []string{
	"ph_replace_file", "ph_set_kv", "ph_perm_apply", "ph_pkg_run", "ph_pkg_install", "ph_pkg_absent_apply",
	"ph_unit_enable", "ph_sshd_main_set", "ph_sshd_set", "ph_sysctl_apply", "ph_module_disable_apply",
	"ph_remove", "ph_hostkeys_unit", "ph_banner_apply",
}

// ScriptInput is what Render needs: the controls in order, the waivers and
// the params (every declared param has a value, defaults filled in).
type ScriptInput struct {
	Profile  string
	Phase    string
	Mode     string // ModeApply when empty
	Audit    string // AuditLynis: run Lynis after the controls
	Version  string
	Controls []*Control
	Waivers  map[string]string
	Params   map[string]string
}

func (in *ScriptInput) verify() bool { return in.Mode == ModeVerify }

func (in *ScriptInput) mode() string {
	if in.verify() {
		return ModeVerify
	}
	return ModeApply
}

// ReportPath is where the rendered script writes its report: the image
// copy when it applies, a file in /run when it only verifies.
func (in *ScriptInput) ReportPath() string {
	switch {
	case in.verify() && in.Phase == PhaseCleanup:
		return VerifyCleanupReportPath
	case in.verify():
		return VerifyReportPath
	case in.Phase == PhaseCleanup:
		return ImageCleanupReportPath
	}
	return ImageReportPath
}

// workDir holds the script's working files while it runs.
func (in *ScriptInput) workDir() string {
	if in.verify() {
		return VerifyDir
	}
	return imageDir
}

// Render makes the one POSIX sh script: runtime library, each control's
// apply and check as functions, and a main that runs them in order and
// writes the report. `sh script [REPORT]` also copies the report to REPORT.
// PHOENIX_ROOT points every path at a fixture tree (tests only). In verify
// mode the script holds no apply code: only checks, with the library's
// mutating helpers replaced by ones that refuse.
func Render(in *ScriptInput) (string, error) {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	w("#!/bin/sh\n")
	w("# phoenix-harden %s: phase %s, mode %s, profile %s, %d controls. Generated; do not edit.\n", in.Version, in.Phase, in.mode(), in.Profile, len(in.Controls))
	w("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\numask 022\n")
	w("ROOT=${PHOENIX_ROOT-}\nROOT=${ROOT%%/}\n")
	w("PH_SELF=$0\nPH_REPORT=${1-}\n")
	w("PH_VERSION=%s\nPH_PHASE=%s\nPH_MODE=%s\nPH_PROFILE=%s\n", shq("phoenix-harden "+in.Version), shq(in.Phase), in.mode(), shq(in.Profile))
	w("PH_DIR=$ROOT%s\nPH_REPORT_FILE=$ROOT%s\n", in.workDir(), in.ReportPath())
	w("PH_DISTROS=%s\n", shq(strings.Join(Distros, " ")))
	w("PH_AUDIT=%s\n", shq(in.Audit))
	if in.Audit != "" {
		w("PH_AUDIT_PACKAGES_FILE=$ROOT%s\n", AuditPackagesFile)
	}
	w("PH_TMP=\n")

	names := make([]string, 0, len(in.Params))
	for k := range in.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !paramPattern.MatchString(k) {
			return "", fmt.Errorf("param name %q is not a shell name", k)
		}
		w("PARAM_%s=%s\n", k, shq(in.Params[k]))
	}

	head, err := json.Marshal(map[string]any{
		"name":    in.Profile,
		"title":   "phoenix-harden " + in.Profile,
		"version": in.Version,
		"supports": func() []map[string]string {
			var s []map[string]string
			for _, d := range Distros {
				s = append(s, map[string]string{"platform": d})
			}
			return s
		}(),
	})
	if err != nil {
		return "", err
	}
	w("PH_PROFILE_HEAD=%s\n\n", shq(strings.TrimSuffix(string(head), "}")))

	b.WriteString(libSh)
	b.WriteString("\n")
	b.WriteString(runSh)
	if in.verify() {
		w("\n# ---- mode verify: helpers that change the system refuse ---------------\n")
		for _, f := range mutatingHelpers {
			w("%s() { echo \"mode verify: %s refused: a check must not change the system\" >&2; return 3; }\n", f, f)
		}
	}
	b.WriteString("\n# ---- controls ------------------------------------------------------------\n")

	for i, c := range in.Controls {
		w("\n# %s (%s) %s\n", c.ID, c.Severity, c.Source)
		if c.Apply != "" && !in.verify() {
			w("ph_apply_%d() {\n%s\n}\n", i, indent(c.Apply))
		}
		w("ph_check_%d() {\n%s\n}\n", i, indent(c.Check))
	}

	w("\nph_main() {\n\tph_begin\n\ttrap ph_cleanup_tmp EXIT\n\ttrap 'exit 130' INT TERM\n")
	if !in.verify() {
		for pass := 1; pass <= 2; pass++ {
			for i, c := range in.Controls {
				if c.Apply != "" {
					w("\tph_pass_apply %d %s %s 1 %d\n", i, shq(strings.Join(c.Distros, " ")), shq(in.Waivers[c.ID]), pass)
				}
			}
		}
	}
	for i, c := range in.Controls {
		headJSON, cdesc, err := controlJSONHead(c)
		if err != nil {
			return "", err
		}
		hasApply := "0"
		if c.Apply != "" && !in.verify() {
			hasApply = "1"
		}
		w("\tph_run %d %s %s %d %s %s %s \\\n\t\t%s \\\n\t\t%s\n", i, shq(c.ID), shq(string(c.Severity)), c.Severity.Weight(),
			shq(strings.Join(c.Distros, " ")), shq(in.Waivers[c.ID]), hasApply, shq(headJSON), shq(cdesc))
	}
	w("\t[ -z \"$PH_AUDIT\" ] || ph_audit\n\tph_end\n}\n\nph_main \"$@\"\n")
	return b.String(), nil
}

// controlJSONHead is the static start of a control's report object (an
// open object the script completes) and its JSON-escaped code_desc.
func controlJSONHead(c *Control) (string, string, error) {
	tags := map[string]any{"severity": string(c.Severity)}
	for k, v := range c.References {
		tags[k] = v
	}
	for _, k := range []string{"cis", "devsec"} {
		if _, ok := tags[k]; !ok {
			tags[k] = []string{}
		}
	}
	head := struct {
		ID             string         `json:"id"`
		Title          string         `json:"title"`
		Desc           string         `json:"desc,omitempty"`
		Impact         float64        `json:"impact"`
		Tags           map[string]any `json:"tags"`
		Refs           []any          `json:"refs"`
		SourceLocation map[string]any `json:"source_location"`
	}{c.ID, c.Title, c.Description, c.Severity.Impact(), tags, []any{}, sourceLocation(c.Source)}
	hb, err := json.Marshal(head)
	if err != nil {
		return "", "", err
	}
	cd, err := json.Marshal(c.ID + ": " + c.Title)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSuffix(string(hb), "}"), strings.Trim(string(cd), `"`), nil
}

func sourceLocation(src string) map[string]any {
	ref, line := src, 0
	if i := strings.LastIndex(src, ":"); i > 0 {
		ref = src[:i]
		fmt.Sscanf(src[i+1:], "%d", &line)
	}
	return map[string]any{"ref": ref, "line": line}
}

// shq quotes s for sh as one word.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "\t" + l
		}
	}
	return strings.Join(lines, "\n")
}
