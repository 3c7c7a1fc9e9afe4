package harden

import (
	"embed"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

//go:embed profiles/*.hcl
var profileFS embed.FS

// Severity ranks a control. Its impact is the value InSpec reports; its
// weight is the control's share of the score.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
)

// Severities in descending order.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow}

// Impact is InSpec's number for the severity.
func (s Severity) Impact() float64 {
	switch s {
	case SeverityCritical:
		return 1.0
	case SeverityHigh:
		return 0.7
	case SeverityMedium:
		return 0.5
	case SeverityLow:
		return 0.3
	}
	return 0
}

// Weight is the severity's weight in the score: a critical control counts
// ten times a low one, so one critical failure costs more than a handful of
// low ones.
func (s Severity) Weight() int {
	switch s {
	case SeverityCritical:
		return 10
	case SeverityHigh:
		return 5
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 1
	}
	return 0
}

func (s Severity) rank() int {
	for i, v := range Severities {
		if v == s {
			return len(Severities) - i
		}
	}
	return 0
}

// AtLeast reports whether s is as severe as o or more.
func (s Severity) AtLeast(o Severity) bool { return s.rank() >= o.rank() }

func (s Severity) valid() bool { return s.rank() > 0 }

// Distros the controls are written for, as "<os-release ID>-<VERSION_ID>".
var Distros = []string{"debian-12", "ubuntu-22.04", "ubuntu-24.04", "amzn-2023"}

// Control is one hardening item: an idempotent apply and a non-destructive
// check, both POSIX sh.
type Control struct {
	ID          string
	Title       string
	Description string
	Severity    Severity
	References  map[string][]string
	Distros     []string
	Params      []string
	Apply       string
	Check       string

	// Source is where the control was defined, "file:line".
	Source string
	// Profile is the profile (or "template") that defined the control.
	Profile string
}

// Param is a value controls read as $PARAM_<name>.
type Param struct {
	Name        string
	Type        string
	Default     string
	Description string
}

// ControlSet is what one or more HCL sources define.
type ControlSet struct {
	Controls []*Control
	Params   []*Param
}

var controlSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "title", Required: true},
	{Name: "description"},
	{Name: "severity", Required: true},
	{Name: "references"},
	{Name: "distros"},
	{Name: "params"},
	{Name: "apply"},
	{Name: "check", Required: true},
}}

var paramSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"},
	{Name: "default"},
	{Name: "description", Required: true},
}}

// decodeBody sets each attribute present in body into the pointer named
// for it, converting to the pointer's type; HCL reports missing required
// and unknown attributes with their ranges.
func decodeBody(body hcl.Body, schema *hcl.BodySchema, into map[string]any) hcl.Diagnostics {
	content, diags := body.Content(schema)
	if diags.HasErrors() {
		return diags
	}
	for name, attr := range content.Attributes {
		v, d := attr.Expr.Value(nil)
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		target := into[name]
		ty, err := gocty.ImpliedType(target)
		if err == nil {
			v, err = convert.Convert(v, ty)
		}
		if err == nil && v.IsNull() {
			continue
		}
		if err == nil {
			err = gocty.FromCtyValue(v, target)
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError,
				Summary: fmt.Sprintf("Invalid value for %q", name), Detail: err.Error(), Subject: attr.Expr.Range().Ptr()})
		}
	}
	return diags
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
var paramPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ParseControls parses HCL text naming it filename in diagnostics, which
// then read "filename:line,col: ...". profile labels the controls.
func ParseControls(filename string, src []byte, profile string) (*ControlSet, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	content, diags := f.Body.Content(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "control", LabelNames: []string{"id"}},
		{Type: "param", LabelNames: []string{"name"}},
	}})
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	set := &ControlSet{}
	var all hcl.Diagnostics
	for _, b := range content.Blocks {
		where := fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line)
		switch b.Type {
		case "control":
			c := &Control{ID: b.Labels[0], Source: where, Profile: profile}
			var sev string
			d := decodeBody(b.Body, controlSchema, map[string]any{
				"title": &c.Title, "description": &c.Description, "severity": &sev,
				"references": &c.References, "distros": &c.Distros, "params": &c.Params,
				"apply": &c.Apply, "check": &c.Check,
			})
			c.Severity = Severity(sev)
			if d.HasErrors() {
				all = append(all, d...)
				continue
			}
			c.Apply, c.Check = trimScript(c.Apply), trimScript(c.Check)
			if err := c.validate(); err != nil {
				all = append(all, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error(), Subject: b.DefRange.Ptr()})
				continue
			}
			set.Controls = append(set.Controls, c)
		case "param":
			prm := &Param{Name: b.Labels[0]}
			if d := decodeBody(b.Body, paramSchema, map[string]any{
				"type": &prm.Type, "default": &prm.Default, "description": &prm.Description,
			}); d.HasErrors() {
				all = append(all, d...)
				continue
			}
			if prm.Type == "" {
				prm.Type = "string"
			}
			if !paramPattern.MatchString(prm.Name) || (prm.Type != "string" && prm.Type != "bool") {
				all = append(all, &hcl.Diagnostic{Severity: hcl.DiagError,
					Summary: fmt.Sprintf("param %q: name must match %s and type be string or bool", prm.Name, paramPattern), Subject: b.DefRange.Ptr()})
				continue
			}
			set.Params = append(set.Params, prm)
		}
	}
	if all.HasErrors() {
		return nil, diagError(all)
	}
	return set, nil
}

// diagError keeps only "file:line,col: summary; detail" for each
// diagnostic, which is what a user needs to find the mistake.
func diagError(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		m := d.Summary
		if d.Detail != "" {
			m += "; " + d.Detail
		}
		if d.Subject != nil {
			m = fmt.Sprintf("%s:%d,%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, m)
		}
		msgs = append(msgs, m)
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

// trimScript drops surrounding blank lines so the rendered script stays
// readable.
func trimScript(s string) string { return strings.Trim(s, "\n") }

func (c *Control) validate() error {
	var errs []string
	if !idPattern.MatchString(c.ID) {
		errs = append(errs, fmt.Sprintf("id must match %s", idPattern))
	}
	if strings.TrimSpace(c.Title) == "" {
		errs = append(errs, "title is empty")
	}
	if !c.Severity.valid() {
		errs = append(errs, fmt.Sprintf("severity %q is not one of critical, high, medium, low", c.Severity))
	}
	for _, d := range c.Distros {
		if !contains(Distros, d) {
			errs = append(errs, fmt.Sprintf("distro %q is not one of %s", d, strings.Join(Distros, ", ")))
		}
	}
	for k := range c.References {
		if !paramPattern.MatchString(k) {
			errs = append(errs, fmt.Sprintf("reference kind %q must be lower-case", k))
		}
	}
	if strings.TrimSpace(c.Check) == "" {
		errs = append(errs, "check is empty")
	}
	if len(errs) > 0 {
		return fmt.Errorf("control %q: %s", c.ID, strings.Join(errs, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Profiles lists the built-in profiles. Each profile is its own file plus
// the profiles it extends: cis-level1 is baseline and more.
var Profiles = map[string][]string{
	"baseline":   {"baseline"},
	"cis-level1": {"baseline", "cis-level1"},
	"cleanup":    {"cleanup"},
}

// ProfileNames are the profiles a user may choose for phase "apply".
var ProfileNames = []string{"baseline", "cis-level1", "none"}

// LoadProfile parses the embedded files of a profile ("none": nothing).
func LoadProfile(name string) (*ControlSet, error) {
	set := &ControlSet{}
	if name == "none" {
		return set, nil
	}
	files, ok := Profiles[name]
	if !ok {
		return nil, fmt.Errorf("unknown profile %q", name)
	}
	for _, f := range files {
		fn := path.Join("profiles", f+".hcl")
		src, err := profileFS.ReadFile(fn)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", fn, err)
		}
		s, err := ParseControls(fn, src, f)
		if err != nil {
			return nil, err
		}
		set.Controls = append(set.Controls, s.Controls...)
		set.Params = append(set.Params, s.Params...)
	}
	return set, nil
}

// AllParams are the parameters the built-in profiles declare.
func AllParams() ([]*Param, error) {
	seen := map[string]*Param{}
	for _, files := range Profiles {
		for _, f := range files {
			s, err := LoadProfile(f)
			if err != nil {
				return nil, err
			}
			for _, p := range s.Params {
				seen[p.Name] = p
			}
		}
	}
	out := make([]*Param, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Merge appends other to s: an id or param defined twice is an error,
// so a template cannot silently replace a built-in control.
func (s *ControlSet) Merge(other *ControlSet) error {
	ids := map[string]*Control{}
	for _, c := range s.Controls {
		ids[c.ID] = c
	}
	params := map[string]bool{}
	for _, p := range s.Params {
		params[p.Name] = true
	}
	var errs []string
	for _, c := range other.Controls {
		if prev, ok := ids[c.ID]; ok {
			errs = append(errs, fmt.Sprintf("%s: control %q is already defined at %s; skip it and use a new id", c.Source, c.ID, prev.Source))
			continue
		}
		ids[c.ID] = c
		s.Controls = append(s.Controls, c)
	}
	for _, p := range other.Params {
		if params[p.Name] {
			errs = append(errs, fmt.Sprintf("param %q is already defined", p.Name))
			continue
		}
		params[p.Name] = true
		s.Params = append(s.Params, p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// Lookup returns the control with the id, or nil.
func (s *ControlSet) Lookup(id string) *Control {
	for _, c := range s.Controls {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// IDs lists the control ids in order.
func (s *ControlSet) IDs() []string {
	ids := make([]string, len(s.Controls))
	for i, c := range s.Controls {
		ids[i] = c.ID
	}
	return ids
}

// Param returns the declared param, or nil.
func (s *ControlSet) Param(name string) *Param {
	for _, p := range s.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}
