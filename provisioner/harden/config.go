//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,Skip
//go:generate go run ./internal/gendocs -o ../../docs/provisioners/harden.mdx

package harden

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/didyoumean"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// DefaultExecuteCommand runs the script as root without a password prompt.
const DefaultExecuteCommand = "sudo -n sh '{{.Path}}'"

// Skip waives one control; the reason goes into the report.
type Skip struct {
	// The id of the control to waive, as listed in the docs or the report.
	ID string `mapstructure:"id" required:"true"`
	// Why the control does not apply to this image. Required: the report
	// keeps it next to the waived control.
	Reason string `mapstructure:"reason" required:"true"`
}

// Config is the phoenix-harden provisioner's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// The built-in profile: `baseline` (default; safe on any server),
	// `cis-level1` (baseline plus the CIS Level 1 Server items that can be
	// automated at bake time) or `none` (only the controls given here).
	// Must be unset when `phase` is `cleanup`.
	Profile string `mapstructure:"profile"`
	// More controls, as HCL `control "id" { ... }` blocks (and `param`
	// blocks). Packer and then phoenix each unescape the text once, so a
	// shell `${` is written `$$${` here; `controls_file` avoids that.
	Controls string `mapstructure:"controls"`
	// A file of more controls, like `controls`; read as is, so a shell `${`
	// is written `$${` as in any HCL string.
	ControlsFile string `mapstructure:"controls_file"`
	// Waive controls: `skip { id = "...", reason = "..." }`. An unknown id
	// or an empty reason is an error.
	Skip []Skip `mapstructure:"skip"`
	// Values for the controls' params, e.g. `{ allow_ip_forward = true,
	// ssh_allow_users = "admin" }`. Unknown names are an error.
	Params map[string]string `mapstructure:"params"`
	// Fail the build when the score (0-100) is below this. Default 0.
	MinScore int `mapstructure:"min_score"`
	// Fail the build when a control of this severity or higher fails or
	// errors: `critical` (default), `high`, `medium`, `low` or `none`.
	FailOn string `mapstructure:"fail_on"`
	// A local directory for the JSON report (InSpec's shape) and the JUnit
	// XML. Default: no local files, only the table in the build output.
	ReportPath string `mapstructure:"report_path"`
	// How to run the script; `{{.Path}}` is its remote path. Default
	// `sudo -n sh '{{.Path}}'`. Use `sh '{{.Path}}'` when connected as root.
	ExecuteCommand string `mapstructure:"execute_command"`
	// The remote directory the script is uploaded to. Default `/tmp`. The
	// script removes itself when it ends.
	RemoteFolder string `mapstructure:"remote_folder"`
	// Which controls run: `apply` (default) the hardening profile;
	// `cleanup` the controls that remove host keys, authorized_keys,
	// histories, cloud-init state, machine-id, logs and caches and check
	// they are gone (use it as the last provisioner).
	Phase string `mapstructure:"phase"`
	// `apply` (default): make the image comply, then check it. `verify`:
	// only check and change nothing, with either phase (to audit an image
	// built elsewhere, or fail a build whose base drifted); `min_score` and
	// `fail_on` gate the build the same way, and the report stays out of
	// the image (see Verify only).
	Mode string `mapstructure:"mode"`
	// Run an independent auditor after the controls: `lynis` (Debian's
	// package, installed for the run from the image's apt sources). Its
	// hardening index and findings go into the report and the build output,
	// and phoenix-ebs tags the AMI `phoenix:audit-lynis-index`. The cleanup
	// phase removes the package again and checks it is gone. Needs phase and
	// mode `apply`. Default: no audit.
	Audit string `mapstructure:"audit"`

	ctx interpolate.Context
	// set is the controls to run, in order; params their values.
	set    *ControlSet
	params map[string]string
}

// Prepare decodes the raws, fills in defaults and validates everything,
// returning all problems at once.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         "phoenix-harden",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{"execute_command", "controls"}},
	}, raws...)
	if err != nil {
		return err
	}

	var errs *packersdk.MultiError
	add := func(format string, a ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...)) }

	if c.Phase == "" {
		c.Phase = PhaseApply
	}
	if c.Mode == "" {
		c.Mode = ModeApply
	}
	if c.ExecuteCommand == "" {
		c.ExecuteCommand = DefaultExecuteCommand
	}
	if c.RemoteFolder == "" {
		c.RemoteFolder = "/tmp"
	}
	if c.FailOn == "" {
		c.FailOn = string(SeverityCritical)
	}

	switch c.Phase {
	case PhaseApply:
		if c.Profile == "" {
			c.Profile = "baseline"
		}
		if !contains(ProfileNames, c.Profile) {
			add("profile: %q is not one of %s", c.Profile, strings.Join(ProfileNames, ", "))
		}
	case PhaseCleanup:
		if c.Profile != "" && c.Profile != "cleanup" {
			add("profile: must be unset when phase is %q (it runs the cleanup profile)", PhaseCleanup)
		}
		c.Profile = "cleanup"
	default:
		add("phase: %q is not %q or %q", c.Phase, PhaseApply, PhaseCleanup)
	}
	if c.Mode != ModeApply && c.Mode != ModeVerify {
		add("mode: %q is not %q or %q", c.Mode, ModeApply, ModeVerify)
	}
	switch {
	case c.Audit == "":
	case c.Audit != AuditLynis:
		add("audit: %q is not %q (or unset)", c.Audit, AuditLynis)
	case c.Phase != PhaseApply:
		add("audit: runs in phase %q only (the phase %q removes the auditor)", PhaseApply, PhaseCleanup)
	case c.Mode != ModeApply:
		add("audit: needs mode %q: installing the auditor changes the image", ModeApply)
	}
	if c.MinScore < 0 || c.MinScore > 100 {
		add("min_score: %d is not between 0 and 100", c.MinScore)
	}
	if c.FailOn != "none" && !Severity(c.FailOn).valid() {
		add("fail_on: %q is not one of critical, high, medium, low, none", c.FailOn)
	}
	if !strings.Contains(c.ExecuteCommand, "{{.Path}}") {
		add("execute_command: must contain {{.Path}}")
	}
	if !strings.HasPrefix(c.RemoteFolder, "/") {
		add("remote_folder: %q must be an absolute path", c.RemoteFolder)
	}
	if c.ReportPath != "" {
		if fi, err := os.Stat(c.ReportPath); err == nil && !fi.IsDir() {
			add("report_path: %q is a file; it must be a directory", c.ReportPath)
		}
	}

	// Controls: the profile's, then the template's.
	set := &ControlSet{}
	if contains(ProfileNames, c.Profile) || c.Profile == "cleanup" {
		s, err := LoadProfile(c.Profile)
		if err != nil {
			add("profile: %w", err)
		} else {
			set = s
		}
	}
	extra := []struct{ name, src string }{}
	if strings.TrimSpace(c.Controls) != "" {
		extra = append(extra, struct{ name, src string }{"controls", c.Controls})
	}
	if c.ControlsFile != "" {
		b, err := os.ReadFile(c.ControlsFile)
		if err != nil {
			add("controls_file: %w", err)
		} else {
			extra = append(extra, struct{ name, src string }{c.ControlsFile, string(b)})
		}
	}
	for _, e := range extra {
		s, err := ParseControls(e.name, []byte(e.src), "template")
		if err != nil {
			add("controls: %w", err)
			continue
		}
		if err := set.Merge(s); err != nil {
			add("controls: %w", err)
		}
	}
	if len(set.Controls) == 0 && errs == nil {
		add("profile: %q with no controls given runs nothing; set profile or controls", c.Profile)
	}

	// Params every control uses must be declared.
	for _, ctl := range set.Controls {
		for _, p := range ctl.Params {
			if set.Param(p) == nil {
				add("controls: %s: control %q uses param %q, which no param block declares", ctl.Source, ctl.ID, p)
			}
		}
	}
	c.params = map[string]string{}
	for _, p := range set.Params {
		c.params[p.Name] = p.Default
	}
	known, _ := AllParams()
	var knownNames []string
	for _, p := range known {
		knownNames = append(knownNames, p.Name)
	}
	for _, p := range set.Params {
		if !contains(knownNames, p.Name) {
			knownNames = append(knownNames, p.Name)
		}
	}
	sort.Strings(knownNames)
	for name, v := range c.Params {
		p := set.Param(name)
		if p == nil {
			if contains(knownNames, name) {
				continue // declared by a profile not in use: harmless
			}
			add("params: unknown param %q%s (known: %s)", name, suggest(name, knownNames), strings.Join(knownNames, ", "))
			continue
		}
		if p.Type == "bool" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				add("params: %s: %q is not a bool", name, v)
				continue
			}
			v = strconv.FormatBool(b)
		}
		c.params[name] = v
	}

	// Waivers name known controls and say why.
	seen := map[string]bool{}
	for i, s := range c.Skip {
		switch {
		case strings.TrimSpace(s.ID) == "":
			add("skip[%d]: id is empty", i)
		case set.Lookup(s.ID) == nil && len(set.Controls) > 0:
			add("skip[%d]: unknown control id %q%s", i, s.ID, suggest(s.ID, set.IDs()))
		case seen[s.ID]:
			add("skip[%d]: control %q is skipped twice", i, s.ID)
		}
		if strings.TrimSpace(s.Reason) == "" {
			add("skip[%d]: reason for skipping %q is empty; say why the control does not apply", i, s.ID)
		}
		seen[s.ID] = true
	}
	c.set = set

	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

func suggest(given string, ids []string) string {
	if s := didyoumean.NameSuggestion(given, ids); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// scriptInput is what Render needs for this config.
func (c *Config) scriptInput(version string) *ScriptInput {
	w := map[string]string{}
	for _, s := range c.Skip {
		w[s.ID] = s.Reason
	}
	return &ScriptInput{Profile: c.Profile, Phase: c.Phase, Mode: c.Mode, Audit: c.Audit, Version: version, Controls: c.set.Controls, Waivers: w, Params: c.params}
}
