package deployer

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// Config is a phoenix.hcl file: environments, each with its access
// settings, targets and strategy.
type Config struct {
	Path         string
	Environments []*Environment
}

// Environment is one `environment "NAME" { … }` block.
type Environment struct {
	Name string
	// Settings are the access settings: region, profile, assume_role,
	// endpoint, keys, max_retries.
	Settings awsconfig.Settings
	Targets  []EnvironmentTarget
	// Strategy is "rolling" (the default) or "blue-green"; Rolling and
	// BlueGreen hold the settings of its strategy block.
	Strategy  string
	Rolling   RollingSettings
	BlueGreen BlueGreenSettings
	// GrantKMS lets deploys to the environment create the KMS grant Auto
	// Scaling's service-linked role needs for the AMI's keys.
	GrantKMS bool
	// KMSKeyID is the environment's KMS key (id, ARN or alias) that
	// phoenix promote encrypts copies of an AMI with when it brings one
	// into the environment's region or account.
	KMSKeyID     string
	PollInterval time.Duration
	// Waves are the order a deploy or promote goes through the targets:
	// each wave's targets in parallel, the next wave once all of the
	// wave's are live and healthy. nil: one target after another, in the
	// file's order.
	Waves [][]string
	// OnWaveFailure is what a failed wave does to the targets deployed
	// before it (and its own that succeeded): "keep" (the default) or
	// "rollback".
	OnWaveFailure string
	// Policy is the environment's admission policy (its policy block,
	// with the older environment-level require_encrypted as one rule);
	// nil when it has none.
	Policy *Policy
	Range  hcl.Range
}

// EnvironmentTarget is one `target "NAME" { … }` block.
type EnvironmentTarget struct {
	Name string
	// Region is the target's region when it is not the environment's.
	Region       string
	ASG          string
	TargetGroups []string
	// PeerASG, Listener and Rule are blue-green's: the second colour's
	// group, and the listener (and rule) whose forward weights say which
	// colour is live.
	PeerASG  string
	Listener string
	Rule     string
	Range    hcl.Range
}

// Target is the deployer's target for t; region is the environment's,
// which the target's own region overrides.
func (t EnvironmentTarget) Target(region string) Target {
	if t.Region != "" {
		region = t.Region
	}
	return Target{Name: t.Name, Region: region, Group: t.ASG, TargetGroupARNs: t.TargetGroups, PeerGroup: t.PeerASG, ListenerARN: t.Listener, RuleARN: t.Rule}
}

type fileSchema struct {
	Environments []*envSchema `hcl:"environment,block"`
}

type envSchema struct {
	Name             string            `hcl:"name,label"`
	Targets          []*targetSchema   `hcl:"target,block"`
	Strategies       []*strategySchema `hcl:"strategy,block"`
	Policies         []*blockSchema    `hcl:"policy,block"`
	RequireEncrypted *bool             `hcl:"require_encrypted,optional"`
	GrantKMS         *bool             `hcl:"grant_kms,optional"`
	KMSKeyID         string            `hcl:"kms_key_id,optional"`
	PollInterval     string            `hcl:"poll_interval,optional"`
	Waves            [][]string        `hcl:"waves,optional"`
	OnWaveFailure    string            `hcl:"on_wave_failure,optional"`
	Access           hcl.Body          `hcl:",remain"`
	DeclRange        hcl.Range         `hcl:",def_range"`
}

// accessSchema is awsconfig.Settings as phoenix.hcl writes it, with an
// optional assume_role block.
type accessSchema struct {
	Region     string                `hcl:"region,optional"`
	Profile    string                `hcl:"profile,optional"`
	AccessKey  string                `hcl:"access_key,optional"`
	SecretKey  string                `hcl:"secret_key,optional"`
	Token      string                `hcl:"token,optional"`
	AssumeRole *awsconfig.AssumeRole `hcl:"assume_role,block"`
	Endpoint   string                `hcl:"endpoint,optional"`
	MaxRetries int                   `hcl:"max_retries,optional"`
}

type targetSchema struct {
	Name         string    `hcl:"name,label"`
	Region       string    `hcl:"region,optional"`
	ASG          string    `hcl:"asg"`
	TargetGroups []string  `hcl:"target_groups,optional"`
	PeerASG      string    `hcl:"peer_asg,optional"`
	Listener     string    `hcl:"listener,optional"`
	Rule         string    `hcl:"rule,optional"`
	DeclRange    hcl.Range `hcl:",def_range"`
}

// blockSchema is a block without a label whose body is decoded on its
// own (so that a setting's problem points at its attribute).
type blockSchema struct {
	Body      hcl.Body  `hcl:",remain"`
	DeclRange hcl.Range `hcl:",def_range"`
}

type strategySchema struct {
	Kind      string    `hcl:"kind,label"`
	Body      hcl.Body  `hcl:",remain"`
	DeclRange hcl.Range `hcl:",def_range"`
}

// kmsKeyPattern matches what KMS accepts as a key: a key id, a key or
// alias ARN, or alias/NAME.
var kmsKeyPattern = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+))$`)

// targetGroupARN matches a target group ARN.
var targetGroupARN = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`)

// CheckTargetGroupARN refuses a value of setting that is not a target
// group ARN, before any AWS call would fail on it.
func CheckTargetGroupARN(setting, arn string) error {
	if !targetGroupARN.MatchString(arn) {
		return fmt.Errorf("%s: %q is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)", setting, arn)
	}
	return nil
}

// LoadConfig reads and checks a phoenix.hcl file. Every problem is
// reported with its file:line.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, refuse("reading %s: %w", path, err)
	}
	return ParseConfig(src, path)
}

// ParseConfig reads phoenix.hcl source; filename is used in messages.
func ParseConfig(src []byte, filename string) (*Config, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	var fs fileSchema
	if diags := gohcl.DecodeBody(f.Body, nil, &fs); diags.HasErrors() {
		return nil, diagError(diags)
	}
	cfg := &Config{Path: filename}
	seen := map[string]hcl.Range{}
	var schemas []*envSchema
	for _, es := range fs.Environments {
		if prev, ok := seen[es.Name]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Duplicate environment %q", es.Name),
				Detail: fmt.Sprintf("Environment %q is already defined at %s.", es.Name, prev), Subject: es.DeclRange.Ptr()})
			continue
		}
		seen[es.Name] = es.DeclRange
		env, ds := decodeEnvironment(es)
		diags = append(diags, ds...)
		cfg.Environments = append(cfg.Environments, env)
		schemas = append(schemas, es)
	}
	for i, env := range cfg.Environments {
		if env.Policy == nil || env.Policy.PromotedFrom == "" {
			continue
		}
		from := env.Policy.PromotedFrom
		var subject hcl.Range
		if len(schemas[i].Policies) > 0 {
			pb := schemas[i].Policies[0]
			subject = pb.DeclRange
			if sb, ok := pb.Body.(*hclsyntax.Body); ok && sb.Attributes["promoted_from"] != nil {
				subject = sb.Attributes["promoted_from"].Expr.Range()
			}
		}
		if _, ok := seen[from]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid promoted_from",
				Detail: fmt.Sprintf("promoted_from %q is not an environment of this file (it has: %s)", from, strings.Join(sortedKeys(seen), ", ")), Subject: &subject})
		} else if from == env.Name {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid promoted_from",
				Detail: fmt.Sprintf("promoted_from %q is the environment itself: name the environment an AMI must have been live in first", from), Subject: &subject})
		}
	}
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	return cfg, nil
}

func decodeEnvironment(es *envSchema) (*Environment, hcl.Diagnostics) {
	env := &Environment{Name: es.Name, Strategy: "rolling", Range: es.DeclRange,
		GrantKMS: es.GrantKMS != nil && *es.GrantKMS}
	var acc accessSchema
	diags := gohcl.DecodeBody(es.Access, nil, &acc)
	env.Settings = awsconfig.Settings{Region: acc.Region, Profile: acc.Profile, AccessKey: acc.AccessKey, SecretKey: acc.SecretKey,
		Token: acc.Token, Endpoint: acc.Endpoint, MaxRetries: acc.MaxRetries}
	if acc.AssumeRole != nil {
		env.Settings.AssumeRole = *acc.AssumeRole
	}
	for _, err := range env.Settings.Validate() {
		diags = append(diags, settingDiag(es.Access, es.DeclRange, firstWord(err.Error()), err))
	}
	if es.KMSKeyID != "" {
		if !kmsKeyPattern.MatchString(es.KMSKeyID) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid kms_key_id",
				Detail: fmt.Sprintf("kms_key_id %q is not a KMS key id, key ARN or alias (alias/NAME)", es.KMSKeyID), Subject: es.DeclRange.Ptr()})
		}
		env.KMSKeyID = es.KMSKeyID
	}
	if es.PollInterval != "" {
		d, err := time.ParseDuration(es.PollInterval)
		if err != nil || d <= 0 {
			diags = append(diags, settingDiag(es.Access, es.DeclRange, "poll_interval", fmt.Errorf("poll_interval %q must be a positive duration (e.g. \"10s\")", es.PollInterval)))
		}
		env.PollInterval = d
	}
	for i, ps := range es.Policies {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "More than one policy",
				Detail: fmt.Sprintf("Environment %q may have one policy block.", es.Name), Subject: ps.DeclRange.Ptr()})
			continue
		}
		pol, ds := decodePolicy(ps)
		diags = append(diags, ds...)
		env.Policy = pol
	}
	if es.RequireEncrypted != nil && *es.RequireEncrypted {
		// The older spelling of the policy's rule.
		env.Policy = env.Policy.Tighten(Policy{RequireEncrypted: true})
	}
	if len(es.Targets) == 0 {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No target",
			Detail: fmt.Sprintf("Environment %q needs at least one target \"NAME\" { asg = \"…\" } block.", es.Name), Subject: es.DeclRange.Ptr()})
	}
	names := map[string]bool{}
	for _, ts := range es.Targets {
		if names[ts.Name] {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Duplicate target %q", ts.Name), Subject: ts.DeclRange.Ptr()})
		}
		names[ts.Name] = true
		if ts.ASG == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty asg", Detail: fmt.Sprintf("Target %q needs the name of its Auto Scaling group in asg.", ts.Name), Subject: ts.DeclRange.Ptr()})
		}
		for _, arn := range ts.TargetGroups {
			if err := CheckTargetGroupARN("target_groups", arn); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid target_groups", Detail: err.Error(), Subject: ts.DeclRange.Ptr()})
			}
		}
		if ts.Region != "" && !awsconfig.RegionPattern.MatchString(ts.Region) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid region",
				Detail: fmt.Sprintf("target %q: region %q is not an AWS region name such as us-east-1", ts.Name, ts.Region), Subject: ts.DeclRange.Ptr()})
		}
		env.Targets = append(env.Targets, EnvironmentTarget{Name: ts.Name, Region: ts.Region, ASG: ts.ASG, TargetGroups: ts.TargetGroups, PeerASG: ts.PeerASG, Listener: ts.Listener, Rule: ts.Rule, Range: ts.DeclRange})
	}
	for i, ss := range es.Strategies {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "More than one strategy",
				Detail: fmt.Sprintf("Environment %q may have one strategy block.", es.Name), Subject: ss.DeclRange.Ptr()})
			continue
		}
		var ds hcl.Diagnostics
		switch ss.Kind {
		case "rolling":
			ds = gohcl.DecodeBody(ss.Body, nil, &env.Rolling)
		case "blue-green":
			ds = gohcl.DecodeBody(ss.Body, nil, &env.BlueGreen)
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Unknown strategy %q", ss.Kind),
				Detail: fmt.Sprintf("Known strategies: %s.", strings.Join(Strategies, ", ")), Subject: ss.DeclRange.Ptr()})
			continue
		}
		env.Strategy = ss.Kind
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		_, _, errs := StrategySettings{Kind: env.Strategy, Rolling: env.Rolling, BlueGreen: env.BlueGreen}.Strategy()
		for _, err := range errs {
			var se *SettingError
			setting := ""
			if errors.As(err, &se) {
				setting = se.Setting
			}
			diags = append(diags, settingDiag(ss.Body, ss.DeclRange, setting, err))
		}
	}
	for _, ts := range es.Targets {
		diags = append(diags, checkTargetStrategy(env.Strategy, ts)...)
	}
	waves, err := checkWaves(es.Waves, env.Targets)
	if err != nil {
		diags = append(diags, settingDiag(es.Access, es.DeclRange, "waves", err))
	}
	env.Waves = waves
	switch es.OnWaveFailure {
	case "", "keep", "rollback":
		env.OnWaveFailure = orText(es.OnWaveFailure, "keep")
	default:
		diags = append(diags, settingDiag(es.Access, es.DeclRange, "on_wave_failure", fmt.Errorf("on_wave_failure %q is not one of keep, rollback", es.OnWaveFailure)))
	}
	if es.OnWaveFailure != "" && len(es.Waves) == 0 {
		diags = append(diags, settingDiag(es.Access, es.DeclRange, "on_wave_failure", fmt.Errorf("on_wave_failure is set without waves: say the order of the targets with waves = [[\"first\"], [\"*\"]]")))
	}
	return env, diags
}

// checkWaves checks waves against the targets: every name a target, none
// twice, "*" (once, alone in its wave) for every target not named; it
// returns the waves with "*" written out.
func checkWaves(waves [][]string, targets []EnvironmentTarget) ([][]string, error) {
	if len(waves) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	var names []string
	for _, t := range targets {
		known[t.Name] = true
		names = append(names, t.Name)
	}
	seen := map[string]bool{}
	star := -1
	for i, w := range waves {
		if len(w) == 0 {
			return nil, fmt.Errorf("waves: wave %d is empty", i+1)
		}
		for _, n := range w {
			switch {
			case n == "*":
				if star >= 0 || len(w) != 1 {
					return nil, fmt.Errorf("waves: \"*\" (every target not named) may appear once, alone in its wave")
				}
				star = i
			case !known[n]:
				return nil, fmt.Errorf("waves: %q is not a target of the environment (it has: %s)", n, strings.Join(names, ", "))
			case seen[n]:
				return nil, fmt.Errorf("waves: target %q is in more than one wave", n)
			}
			seen[n] = true
		}
	}
	var rest []string
	for _, n := range names {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	out := make([][]string, 0, len(waves))
	for i, w := range waves {
		if i == star {
			if len(rest) == 0 {
				continue
			}
			w = rest
		}
		out = append(out, w)
	}
	if star < 0 && len(rest) > 0 {
		return nil, fmt.Errorf("waves: targets %s are in no wave: add them, or a last wave [\"*\"]", strings.Join(rest, ", "))
	}
	return out, nil
}

// decodePolicy reads a policy block.
func decodePolicy(ps *blockSchema) (*Policy, hcl.Diagnostics) {
	var in PolicySettings
	diags := gohcl.DecodeBody(ps.Body, nil, &in)
	if diags.HasErrors() {
		return nil, diags
	}
	p, errs := in.Policy()
	for _, err := range errs {
		var se *SettingError
		setting := ""
		if errors.As(err, &se) {
			setting = se.Setting
		}
		diags = append(diags, settingDiag(ps.Body, ps.DeclRange, setting, err))
	}
	return p, diags
}

var (
	listenerARN = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/(app|net|gwy)/[^/]+/[0-9a-f]+/[0-9a-f]+$`)
	ruleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener-rule/(app|net|gwy)/[^/]+/[0-9a-f]+/[0-9a-f]+/[0-9a-f]+$`)
)

// checkTargetStrategy checks that a target has what its strategy needs
// and nothing of the other's.
func checkTargetStrategy(strategy string, ts *targetSchema) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: ts.DeclRange.Ptr()})
	}
	for _, err := range CheckTarget(strategy, EnvironmentTarget{Name: ts.Name, ASG: ts.ASG, PeerASG: ts.PeerASG, Listener: ts.Listener, Rule: ts.Rule}) {
		var se *SettingError
		if errors.As(err, &se) {
			bad("Invalid "+se.Setting, err.Error())
		} else {
			bad("Invalid target", err.Error())
		}
	}
	return diags
}

// CheckTarget reports what a target lacks for strategy, or has of the
// other strategy, each as a *SettingError naming the setting.
func CheckTarget(strategy string, t EnvironmentTarget) []error {
	var errs []error
	bad := func(setting, format string, args ...any) {
		errs = append(errs, &SettingError{setting, fmt.Errorf(format, args...)})
	}
	if strategy == "blue-green" {
		if t.PeerASG == "" {
			bad("peer_asg", "peer_asg: target %q needs the second colour's Auto Scaling group for blue-green", t.Name)
		} else if t.PeerASG == t.ASG {
			bad("peer_asg", "peer_asg %q is the target's asg: blue-green needs two different groups", t.PeerASG)
		}
		if t.Listener == "" {
			bad("listener", "listener: target %q needs the ARN of the listener that forwards to both colours for blue-green", t.Name)
		} else if !listenerARN.MatchString(t.Listener) {
			bad("listener", "listener %q is not a listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)", t.Listener)
		}
		if t.Rule != "" && !ruleARN.MatchString(t.Rule) {
			bad("rule", "rule %q is not a listener rule ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener-rule/app/NAME/ID/ID/ID)", t.Rule)
		}
		return errs
	}
	for _, kv := range [][2]string{{"peer_asg", t.PeerASG}, {"listener", t.Listener}, {"rule", t.Rule}} {
		if setting, v := kv[0], kv[1]; v != "" {
			bad(setting, "%s is a blue-green setting, but target %q is deployed with the %s strategy: set strategy \"blue-green\" or remove %s", setting, t.Name, strategyOrRolling(strategy), setting)
		}
	}
	return errs
}

func strategyOrRolling(s string) string {
	if s == "" {
		return "rolling"
	}
	return s
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " :."); i > 0 {
		return s[:i]
	}
	return s
}

// settingDiag is a diagnostic on the attribute that holds setting, or on
// the block when it is not there.
func settingDiag(body hcl.Body, block hcl.Range, setting string, err error) *hcl.Diagnostic {
	subject := block
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a, ok := sb.Attributes[setting]; ok {
			subject = a.Expr.Range()
		}
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid " + setting, Detail: err.Error(), Subject: &subject}
}

// diagError turns diagnostics into one refused error, one line per
// problem, each starting with file:line.
func diagError(diags hcl.Diagnostics) error {
	var lines []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := ""
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		line := where + d.Summary
		if d.Detail != "" {
			line += ": " + d.Detail
		}
		lines = append(lines, line)
	}
	return &Error{Outcome: Refused, Err: errors.New(strings.Join(lines, "\n"))}
}

// Environment returns the environment called name.
func (c *Config) Environment(name string) (*Environment, error) {
	var names []string
	for _, e := range c.Environments {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, refuse("%s defines no environment", c.Path)
	}
	return nil, refuse("environment %q is not in %s (it has: %s)", name, c.Path, strings.Join(names, ", "))
}

// Select returns the target called name, or, when name is empty, the
// only target or else all of them (deployed one after another).
func (e *Environment) Select(name string) ([]EnvironmentTarget, error) {
	if name == "" && len(e.Targets) != 1 {
		return e.Targets, nil
	}
	t, err := e.Target(name)
	if err != nil {
		return nil, err
	}
	return []EnvironmentTarget{*t}, nil
}

// Target returns the environment's target called name, or its only
// target when name is empty.
func (e *Environment) Target(name string) (*EnvironmentTarget, error) {
	var names []string
	for i := range e.Targets {
		if e.Targets[i].Name == name {
			return &e.Targets[i], nil
		}
		names = append(names, e.Targets[i].Name)
	}
	if name == "" && len(e.Targets) == 1 {
		return &e.Targets[0], nil
	}
	if name == "" {
		return nil, refuse("environment %q has several targets (%s): choose one with --target", e.Name, strings.Join(names, ", "))
	}
	return nil, refuse("target %q is not in environment %q (it has: %s)", name, e.Name, strings.Join(names, ", "))
}
