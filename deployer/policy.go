package deployer

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// Tags the builder writes on every AMI it makes (builder/ebs), which the
// admission policy reads.
const (
	HardeningScoreTag   = "phoenix:hardening-score"
	HardeningProfileTag = "phoenix:hardening-profile"
	BuildTimeTag        = "phoenix:build-time"
)

// Policy is an environment's admission policy: what an AMI must show
// before deploy or promote puts it in the environment. Every rule is
// checked; a deploy of an AMI that fails any is refused (nothing is
// changed) with every failed rule listed. The zero Policy admits any
// available AMI.
type Policy struct {
	// MinHardeningScore is the lowest phoenix:hardening-score admitted
	// (0-100); nil means no minimum.
	MinHardeningScore *float64 `json:"min_hardening_score,omitempty"`
	// HardeningProfile is the phoenix-harden profile the AMI must have
	// been hardened with (phoenix:hardening-profile).
	HardeningProfile string `json:"hardening_profile,omitempty"`
	// RequireEncrypted refuses an AMI with an unencrypted EBS snapshot.
	RequireEncrypted bool `json:"require_encrypted,omitempty"`
	// RequiredTags are tags the AMI must carry: each value is the exact
	// value or a shell pattern (path.Match: *, ?, [a-z]).
	RequiredTags map[string]string `json:"required_tags,omitempty"`
	// MaxAge is the oldest an AMI may be, from its phoenix:build-time tag
	// (which copies keep), else its creation date.
	MaxAge time.Duration `json:"max_age,omitempty"`
	// AllowedOwners are the accounts whose AMIs are admitted.
	AllowedOwners []string `json:"allowed_owners,omitempty"`
	// PromotedFrom names an environment the AMI must be live and healthy
	// in, or have been (a succeeded deploy in its history).
	PromotedFrom string `json:"promoted_from,omitempty"`
}

// Empty reports whether the policy has no rule.
func (p *Policy) Empty() bool {
	return p == nil || (p.MinHardeningScore == nil && p.HardeningProfile == "" && !p.RequireEncrypted && len(p.RequiredTags) == 0 &&
		p.MaxAge == 0 && len(p.AllowedOwners) == 0 && p.PromotedFrom == "")
}

// Validate checks the policy's own settings, each error naming its
// setting.
func (p *Policy) Validate() []error {
	if p == nil {
		return nil
	}
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, &SettingError{setting, fmt.Errorf(format, args...)})
	}
	if s := p.MinHardeningScore; s != nil && (*s < 0 || *s > 100) {
		bad("min_hardening_score", "min_hardening_score %g is out of range: phoenix-harden scores from 0 to 100", *s)
	}
	if p.MaxAge < 0 {
		bad("max_age", "max_age %s must be positive", p.MaxAge)
	}
	for _, k := range sortedKeys(p.RequiredTags) {
		if k == "" {
			bad("required_tags", "required_tags: a tag key is empty")
		}
		if _, err := path.Match(p.RequiredTags[k], ""); err != nil {
			bad("required_tags", "required_tags: the pattern %q for tag %q is not a valid pattern (*, ?, [a-z]): %v", p.RequiredTags[k], k, err)
		}
	}
	for _, o := range p.AllowedOwners {
		if !accountID.MatchString(o) {
			bad("allowed_owners", "allowed_owners: %q is not an AWS account id (12 digits)", o)
		}
	}
	return errs
}

// ParseAge reads max_age: a Go duration ("720h") or a number of days
// ("30d").
func ParseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("max_age %q must be a positive number of days (\"30d\") or a duration (\"720h\")", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("max_age %q must be a positive number of days (\"30d\") or a duration (\"720h\")", s)
	}
	return d, nil
}

// Tighten returns the policy with o's rules added: an override (a flag,
// a post-processor setting) may add requirements, never remove the
// environment's.
func (p *Policy) Tighten(o Policy) *Policy {
	out := Policy{}
	if p != nil {
		out = *p
		out.RequiredTags = map[string]string{}
		for k, v := range p.RequiredTags {
			out.RequiredTags[k] = v
		}
	}
	if o.MinHardeningScore != nil && (out.MinHardeningScore == nil || *o.MinHardeningScore > *out.MinHardeningScore) {
		out.MinHardeningScore = o.MinHardeningScore
	}
	if o.HardeningProfile != "" {
		out.HardeningProfile = o.HardeningProfile
	}
	out.RequireEncrypted = out.RequireEncrypted || o.RequireEncrypted
	for k, v := range o.RequiredTags {
		if out.RequiredTags == nil {
			out.RequiredTags = map[string]string{}
		}
		out.RequiredTags[k] = v
	}
	if o.MaxAge > 0 && (out.MaxAge == 0 || o.MaxAge < out.MaxAge) {
		out.MaxAge = o.MaxAge
	}
	if len(o.AllowedOwners) > 0 && len(out.AllowedOwners) == 0 {
		out.AllowedOwners = o.AllowedOwners
	}
	if o.PromotedFrom != "" {
		out.PromotedFrom = o.PromotedFrom
	}
	if len(out.RequiredTags) == 0 {
		out.RequiredTags = nil
	}
	return &out
}

// PolicyVerdict is how an AMI fared against a policy: a line per rule.
type PolicyVerdict struct {
	Admitted bool         `json:"admitted"`
	Rules    []RuleResult `json:"rules"`
}

// RuleResult is one rule's verdict.
type RuleResult struct {
	Rule   string `json:"rule"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// Failed are the rules that failed.
func (v *PolicyVerdict) Failed() []RuleResult {
	var out []RuleResult
	for _, r := range v.Rules {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// Evidence answers the promoted_from rule: whether the AMI whose origin
// is origin (its first region and id) is, or was, live and healthy in
// the environment it names. The phoenix CLI and post-processor build it
// from that environment's targets (EnvironmentEvidence).
type Evidence interface {
	Proves(ctx context.Context, origin ImageOrigin) (bool, string, error)
}

// ImageOrigin is where an AMI came from: the id and region it had before
// phoenix promote copied it (its phoenix:promoted-from tag), or its own.
type ImageOrigin struct {
	Region string
	AMI    string
}

func (o ImageOrigin) String() string { return o.Region + ":" + o.AMI }

// origin is img's origin: its phoenix:promoted-from tag, or itself.
func (img *Image) origin(region string) ImageOrigin {
	if v := img.Tags[PromotedFromTag]; v != "" {
		if r, id, ok := strings.Cut(v, ":"); ok {
			return ImageOrigin{Region: r, AMI: id}
		}
	}
	return ImageOrigin{Region: region, AMI: img.ID}
}

// admit checks img against the policy. evidence answers promoted_from;
// when the policy has that rule and evidence is nil, the rule fails.
func (p *Policy) admit(ctx context.Context, img *Image, region string, now time.Time, evidence Evidence) (*PolicyVerdict, error) {
	v := &PolicyVerdict{Admitted: true}
	add := func(rule string, ok bool, format string, args ...any) {
		v.Rules = append(v.Rules, RuleResult{Rule: rule, Passed: ok, Detail: fmt.Sprintf(format, args...)})
		if !ok {
			v.Admitted = false
		}
	}
	if p.MinHardeningScore != nil {
		min := *p.MinHardeningScore
		raw, ok := img.Tags[HardeningScoreTag]
		score, err := strconv.ParseFloat(raw, 64)
		switch {
		case !ok:
			add("min_hardening_score", false, "%s has no %s tag (not hardened by phoenix-harden), the minimum is %g", img.ID, HardeningScoreTag, min)
		case err != nil:
			add("min_hardening_score", false, "%s's %s tag %q is not a score, the minimum is %g", img.ID, HardeningScoreTag, raw, min)
		default:
			add("min_hardening_score", score >= min, "%s scores %g (%s), the minimum is %g", img.ID, score, HardeningScoreTag, min)
		}
	}
	if want := p.HardeningProfile; want != "" {
		got, ok := img.Tags[HardeningProfileTag]
		if !ok {
			add("hardening_profile", false, "%s has no %s tag, the profile required is %q", img.ID, HardeningProfileTag, want)
		} else {
			add("hardening_profile", got == want, "%s was hardened with %q (%s), the profile required is %q", img.ID, got, HardeningProfileTag, want)
		}
	}
	if p.RequireEncrypted {
		if img.Encrypted {
			add("require_encrypted", true, "every EBS snapshot of %s is encrypted", img.ID)
		} else {
			add("require_encrypted", false, "%s has unencrypted EBS snapshots: deploy an encrypted AMI (phoenix-ebs encrypts by default)", img.ID)
		}
	}
	for _, k := range sortedKeys(p.RequiredTags) {
		want := p.RequiredTags[k]
		got, ok := img.Tags[k]
		if !ok {
			add("required_tags", false, "%s has no tag %s (required: %q)", img.ID, k, want)
			continue
		}
		m, _ := path.Match(want, got)
		add("required_tags", m, "%s's tag %s is %q (required: %q)", img.ID, k, got, want)
	}
	if p.MaxAge > 0 {
		built, from := img.built()
		if built.IsZero() {
			add("max_age", false, "%s has neither a %s tag nor a creation date, so its age is unknown (max_age %s)", img.ID, BuildTimeTag, age(p.MaxAge))
		} else {
			old := now.Sub(built)
			add("max_age", old <= p.MaxAge, "%s was built %s (%s, %s ago), max_age is %s", img.ID, built.UTC().Format(time.RFC3339), from, age(old), age(p.MaxAge))
		}
	}
	if len(p.AllowedOwners) > 0 {
		ok := false
		for _, o := range p.AllowedOwners {
			ok = ok || o == img.Owner
		}
		add("allowed_owners", ok, "%s is owned by account %s (allowed: %s)", img.ID, orText(img.Owner, "unknown"), strings.Join(p.AllowedOwners, ", "))
	}
	if env := p.PromotedFrom; env != "" {
		o := img.origin(region)
		if evidence == nil {
			add("promoted_from", false, "cannot tell whether %s was live in %s: no access to that environment", o, env)
		} else {
			ok, why, err := evidence.Proves(ctx, o)
			if err != nil {
				return nil, fmt.Errorf("promoted_from %q: %w", env, err)
			}
			add("promoted_from", ok, "%s", why)
		}
	}
	return v, nil
}

// built is when img was built: its phoenix:build-time tag, which copies
// keep, else its creation date.
func (img *Image) built() (time.Time, string) {
	if t, err := time.Parse(time.RFC3339, img.Tags[BuildTimeTag]); err == nil {
		return t, BuildTimeTag
	}
	return img.Created, "creation date"
}

// age writes a duration in days and hours, as max_age is usually set.
func age(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// summary is the one line that says an AMI was admitted, each rule with
// its reason.
func (v *PolicyVerdict) summary(ami, env string) string {
	where := "the policy"
	if env != "" {
		where = fmt.Sprintf("environment %s's policy", env)
	}
	var rules []string
	for _, r := range v.Rules {
		rules = append(rules, r.Rule+" ("+r.Detail+")")
	}
	return fmt.Sprintf("%s is admitted by %s: %s", ami, where, strings.Join(rules, "; "))
}

// admitError is the refusal of an AMI the policy does not admit.
func admitError(img *Image, env string, v *PolicyVerdict) error {
	var lines []string
	for _, r := range v.Failed() {
		lines = append(lines, fmt.Sprintf("  %s: %s", r.Rule, r.Detail))
	}
	where := "the policy"
	if env != "" {
		where = fmt.Sprintf("environment %s's policy", env)
	}
	return refuse("AMI %s (%s) is not admitted by %s (%d of %d rules failed):\n%s", img.ID, img.Name, where, len(lines), len(v.Rules), strings.Join(lines, "\n"))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EnvironmentEvidence is the promoted_from rule's evidence from the
// environment it names: its targets' live AMIs and their deploy
// histories.
type EnvironmentEvidence struct {
	Name      string
	Deployers []*Deployer
}

// Proves reports whether origin is live and healthy on a target of the
// environment in origin's region, or has been (a succeeded deploy of it
// in that target's history).
func (e *EnvironmentEvidence) Proves(ctx context.Context, origin ImageOrigin) (bool, string, error) {
	var seen []string
	for _, d := range e.Deployers {
		if d.Target.Region != origin.Region {
			continue
		}
		live, err := d.Live(ctx)
		if err != nil {
			return false, "", fmt.Errorf("reading what %s's target %s serves: %w", e.Name, d.Target.Name, err)
		}
		if live.AMI == origin.AMI && live.Healthy() && live.Health.Healthy > 0 {
			return true, fmt.Sprintf("%s is live and healthy in %s (target %s, %d/%d healthy)", origin, e.Name, d.Target.Name, live.Health.Healthy, live.Health.Total), nil
		}
		recs, err := d.History(ctx)
		if err != nil {
			return false, "", err
		}
		for _, r := range recs {
			if r.Action == "deploy" && r.AMI == origin.AMI && r.Outcome == Succeeded {
				return true, fmt.Sprintf("%s was live and healthy in %s (target %s: deployed %s, succeeded; now %s)", origin, e.Name, d.Target.Name, r.Ended.UTC().Format(time.RFC3339), orText(live.AMI, "nothing")), nil
			}
		}
		seen = append(seen, fmt.Sprintf("target %s serves %s", d.Target.Name, orText(live.AMI, "no AMI")))
	}
	if len(seen) == 0 {
		return false, fmt.Sprintf("%s comes from %s, where %s has no target", origin, origin.Region, e.Name), nil
	}
	return false, fmt.Sprintf("%s was never live and healthy in %s (%s; no succeeded deploy of it in the history): deploy it there first, or promote from there", origin, e.Name, strings.Join(seen, ", ")), nil
}

// Evidence is the promoted_from evidence of the environment called name:
// a Deployer for each of its targets (in the target's own region when it
// has one), with access that load gives for the environment's settings
// (endpoint, when set, over them).
func (c *Config) Evidence(name, endpoint string, load func(awsconfig.Settings) (aws.Config, error)) (*EnvironmentEvidence, error) {
	env, err := c.Environment(name)
	if err != nil {
		return nil, err
	}
	settings := env.Settings
	if endpoint != "" {
		settings.Endpoint = endpoint
	}
	cfg, err := load(settings)
	if err != nil {
		return nil, err
	}
	ev := &EnvironmentEvidence{Name: env.Name}
	for _, t := range env.Targets {
		ev.Deployers = append(ev.Deployers, &Deployer{Clients: NewClients(TargetConfig(cfg, t)), Target: t.Target(cfg.Region), Environment: env.Name})
	}
	return ev, nil
}

// TargetConfig is cfg in t's own region, when it has one.
func TargetConfig(cfg aws.Config, t EnvironmentTarget) aws.Config {
	if t.Region == "" || t.Region == cfg.Region {
		return cfg
	}
	out := cfg.Copy()
	out.Region = t.Region
	return out
}
