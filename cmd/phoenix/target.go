package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/printer"
)

// targetOptions choose what a command works on: an environment of
// phoenix.hcl, or flags alone; flags override the file.
type targetOptions struct {
	Config       string
	Target       string
	Region       string
	Profile      string
	Endpoint     string
	ASG          string
	TargetGroups []string
	PeerASG      string
	Listener     string
	Rule         string
	Output       string
	PollInterval time.Duration

	flags *pflag.FlagSet
}

func (o *targetOptions) AddFlags(cmd *cobra.Command) {
	o.addAccessFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Target, "target", "", "the environment's target (default: its only target, or each in turn)")
	f.StringVar(&o.ASG, "asg", "", "the Auto Scaling group (without an environment, or to override the target's)")
	f.StringSliceVar(&o.TargetGroups, "target-group", nil, "target group ARN to gate on (default: the group's own)")
	f.StringVar(&o.PeerASG, "peer-asg", "", "blue-green: the second colour's Auto Scaling group")
	f.StringVar(&o.Listener, "listener", "", "blue-green: ARN of the listener whose default action (or --rule) forwards to both colours")
	f.StringVar(&o.Rule, "rule", "", "blue-green: ARN of the listener rule that forwards to both colours")
	f.DurationVar(&o.PollInterval, "poll-interval", 0, "mean time between passes (default 10s, jittered by 20%)")
}

// addAccessFlags are the flags of commands that work on a region rather
// than a target: phoenix.hcl, the access flags over its environment's
// settings, and the output format.
func (o *targetOptions) addAccessFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "phoenix.hcl", "the phoenix.hcl file that defines the environment")
	f.StringVar(&o.Region, "region", "", "AWS region (overrides the environment's)")
	f.StringVar(&o.Profile, "profile", "", "AWS profile (overrides the environment's)")
	f.StringVar(&o.Endpoint, "endpoint", "", "endpoint URL for every AWS service, e.g. the phoenix sandbox")
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	o.flags = f
}

// rollingOptions are the strategy's flags (rolling's and blue-green's);
// set ones override phoenix.hcl.
type rollingOptions struct {
	Strategy         string
	Steps            []int
	KeepOldFor       string
	ReturnHome       bool
	MinHealthy       int
	MaxHealthy       int
	InstanceWarmup   string
	Checkpoints      []int
	CheckpointDelay  string
	SkipMatching     bool
	AutoRollback     bool
	Alarms           []string
	BakeTime         string
	HealthTimeout    string
	RequireEncrypted bool
	GrantKMS         bool
	// ScaleInProtected and Standby: what the refresh does with protected
	// and standby instances.
	ScaleInProtected string
	Standby          string
	// The blue-green canary judge.
	Judge               bool
	JudgeMinRequests    int
	JudgeMax5xxIncrease float64
	JudgeLatencyStat    string
	JudgeMaxLatency     float64

	flags *pflag.FlagSet
}

func (o *rollingOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Strategy, "strategy", "", "rolling or blue-green (default: the environment's, else rolling)")
	f.IntSliceVar(&o.Steps, "steps", nil, "blue-green: percentages of traffic moved to the new colour in turn, e.g. 10,50,100")
	f.StringVar(&o.KeepOldFor, "keep-old-for", "", "blue-green: keep the old colour warm this long after the switch, e.g. 1h")
	f.BoolVar(&o.ReturnHome, "return-home", false, "blue-green: end on the asg colour, with both colours' capacities as they were (return_home)")
	f.IntVar(&o.MinHealthy, "min-healthy-percentage", 90, "percentage of the group kept in service during the refresh (0-100)")
	f.IntVar(&o.MaxHealthy, "max-healthy-percentage", 100, "percentage the group may grow to during the refresh (100-200)")
	f.StringVar(&o.InstanceWarmup, "instance-warmup", "", "warmup of a new instance, e.g. 5m (default: the group's)")
	f.IntSliceVar(&o.Checkpoints, "checkpoints", nil, "percentages at which the refresh pauses, e.g. 20,50,100")
	f.StringVar(&o.CheckpointDelay, "checkpoint-delay", "", "pause at each checkpoint, e.g. 10m (default 1h)")
	f.BoolVar(&o.SkipMatching, "skip-matching", true, "leave instances already on the new version alone")
	f.BoolVar(&o.AutoRollback, "auto-rollback", true, "let Auto Scaling roll back a failed refresh by itself")
	f.StringSliceVar(&o.Alarms, "alarm", nil, "CloudWatch alarm name whose ALARM state rolls the deploy back (repeatable)")
	f.BoolVar(&o.Judge, "judge", false, "blue-green: judge each step's new colour against the old one (5xx share, response time)")
	f.IntVar(&o.JudgeMinRequests, "judge-min-requests", deployer.DefaultJudgeMinRequests, "blue-green: requests the new colour serves in a step before it is judged")
	f.Float64Var(&o.JudgeMax5xxIncrease, "judge-max-5xx-increase", deployer.DefaultJudgeMax5xxIncrease, "blue-green: percentage points the new colour's 5xx share may exceed the old one's")
	f.StringVar(&o.JudgeLatencyStat, "judge-latency-statistic", deployer.DefaultJudgeLatencyStat, "blue-green: p99 or Average of the response time")
	f.Float64Var(&o.JudgeMaxLatency, "judge-max-latency-ratio", deployer.DefaultJudgeMaxLatencyRatio, "blue-green: how many times the old colour's response time the new one's may be")
	f.StringVar(&o.BakeTime, "bake-time", "", "wait after the last replacement before the refresh succeeds (blue-green: after each step), e.g. 5m")
	f.StringVar(&o.HealthTimeout, "health-timeout", "", "how long every target may take to be healthy on the new AMI (default 15m)")
	f.BoolVar(&o.RequireEncrypted, "require-encrypted", false, "refuse an AMI with unencrypted snapshots")
	f.StringVar(&o.ScaleInProtected, "scale-in-protected-instances", "", "Refresh, Ignore or Wait: what the refresh does with instances protected from scale in (default: Auto Scaling's, Wait)")
	f.StringVar(&o.Standby, "standby-instances", "", "Terminate, Ignore or Wait: what the refresh does with instances in Standby (default: Auto Scaling's, Wait)")
	f.BoolVar(&o.GrantKMS, "grant-kms", false, "create the KMS grant Auto Scaling's service-linked role needs for the AMI's keys, when the key policy does not give it")
	o.flags = f
}

// settings are the flags that were set, as RollingSettings.
func (o *rollingOptions) settings() deployer.RollingSettings {
	var s deployer.RollingSettings
	if o == nil || o.flags == nil {
		return s
	}
	set := o.flags.Changed
	if set("min-healthy-percentage") {
		s.MinHealthyPercentage = &o.MinHealthy
	}
	if set("max-healthy-percentage") {
		s.MaxHealthyPercentage = &o.MaxHealthy
	}
	s.InstanceWarmup, s.CheckpointDelay, s.BakeTime, s.HealthTimeout = o.InstanceWarmup, o.CheckpointDelay, o.BakeTime, o.HealthTimeout
	s.ScaleInProtectedInstances, s.StandbyInstances = o.ScaleInProtected, o.Standby
	if set("checkpoints") {
		s.Checkpoints = o.Checkpoints
	}
	if set("skip-matching") {
		s.SkipMatching = &o.SkipMatching
	}
	if set("auto-rollback") {
		s.AutoRollback = &o.AutoRollback
	}
	if set("alarm") {
		s.Alarms = o.Alarms
	}
	return s
}

// blueGreen are the blue-green flags that were set.
func (o *rollingOptions) blueGreen() deployer.BlueGreenSettings {
	var s deployer.BlueGreenSettings
	if o == nil || o.flags == nil {
		return s
	}
	if o.flags.Changed("steps") {
		s.Steps = o.Steps
	}
	if o.flags.Changed("return-home") {
		s.ReturnHome = &o.ReturnHome
	}
	if o.flags.Changed("alarm") {
		s.Alarms = o.Alarms
	}
	if o.flags.Changed("judge") {
		s.Judge = &o.Judge
	}
	if o.flags.Changed("judge-min-requests") {
		s.JudgeMinRequests = &o.JudgeMinRequests
	}
	if o.flags.Changed("judge-max-5xx-increase") {
		s.JudgeMax5xxIncrease = &o.JudgeMax5xxIncrease
	}
	if o.flags.Changed("judge-latency-statistic") {
		s.JudgeLatencyStatistic = o.JudgeLatencyStat
	}
	if o.flags.Changed("judge-max-latency-ratio") {
		s.JudgeMaxLatencyRatio = &o.JudgeMaxLatency
	}
	s.KeepOldFor, s.BakeTime, s.HealthTimeout = o.KeepOldFor, o.BakeTime, o.HealthTimeout
	return s
}

// blueGreenOnly are the flags rolling has no use for.
var blueGreenOnly = []string{"steps", "keep-old-for", "return-home", "judge", "judge-min-requests", "judge-max-5xx-increase", "judge-latency-statistic", "judge-max-latency-ratio"}

func strategyName(kind string) string {
	if kind == "" {
		return "rolling"
	}
	return kind
}

// rollingOnly are the flags blue-green has no use for.
var rollingOnly = []string{"min-healthy-percentage", "max-healthy-percentage", "instance-warmup", "checkpoints", "checkpoint-delay", "skip-matching", "auto-rollback",
	"scale-in-protected-instances", "standby-instances"}

// flagName is the flag for a phoenix.hcl setting.
func flagName(setting string) string {
	if setting == "alarms" {
		return "--alarm" // repeatable, one name each
	}
	return "--" + strings.ReplaceAll(setting, "_", "-")
}

// deployers builds one Deployer per target the options select.
func deployers(ctx context.Context, args []string, o *targetOptions, ro *rollingOptions, p printer.Printer) ([]*deployer.Deployer, error) {
	sel, err := selectTargets(ctx, args, o, ro, p)
	if err != nil {
		return nil, err
	}
	return sel.Deployers, nil
}

// selection is what a command's options select: the environment (nil
// from flags alone), the AWS access to its region and account, and one
// Deployer per target.
type selection struct {
	Env       *deployer.Environment
	AWS       aws.Config
	Deployers []*deployer.Deployer
	// Configs are each Deployer's AWS access: AWS in the target's own
	// region when it has one.
	Configs []aws.Config
}

// ends are the selection's targets as promote ends.
func (s *selection) ends() map[string]deployer.PromoteEnd {
	out := map[string]deployer.PromoteEnd{}
	for i, d := range s.Deployers {
		e := deployer.PromoteEnd{Deployer: d, Config: s.Configs[i]}
		if s.Env != nil {
			e.Environment, e.KMSKeyID = s.Env.Name, s.Env.KMSKeyID
		}
		out[d.Target.Name] = e
	}
	return out
}

// waves are the selection's targets in the environment's waves, or one
// after another in the file's order.
func (s *selection) waves() [][]deployer.PromoteEnd {
	ends := s.ends()
	var out [][]deployer.PromoteEnd
	if s.Env != nil && len(s.Env.Waves) > 0 {
		for _, w := range s.Env.Waves {
			var wave []deployer.PromoteEnd
			for _, name := range w {
				if e, ok := ends[name]; ok {
					wave = append(wave, e)
				}
			}
			if len(wave) > 0 {
				out = append(out, wave)
			}
		}
		return out
	}
	for _, d := range s.Deployers {
		out = append(out, []deployer.PromoteEnd{ends[d.Target.Name]})
	}
	return out
}

// rollout says whether the selection is deployed as a rollout: several
// targets with waves, or in more than one region (the AMI is copied to
// each first).
func (s *selection) rollout() bool {
	if len(s.Deployers) < 2 {
		return false
	}
	if s.Env != nil && len(s.Env.Waves) > 0 {
		return true
	}
	for _, d := range s.Deployers {
		if d.Target.Region != s.AWS.Region {
			return true
		}
	}
	return false
}

// selectTargets reads the environment or the flags and builds the
// Deployers.
func selectTargets(ctx context.Context, args []string, o *targetOptions, ro *rollingOptions, p printer.Printer) (*selection, error) {
	var (
		targets  []deployer.EnvironmentTarget
		strategy deployer.StrategySettings
	)
	env, settings, where, err := environment(args, o)
	if err != nil {
		return nil, err
	}
	switch {
	case env != nil:
		strategy = deployer.StrategySettings{Kind: env.Strategy, Rolling: env.Rolling, BlueGreen: env.BlueGreen}
		if targets, err = env.Select(o.Target); err != nil {
			return nil, err
		}
		if o.ASG != "" || o.PeerASG != "" || o.Listener != "" || o.Rule != "" {
			if len(targets) != 1 {
				return nil, refused("--asg, --peer-asg, --listener and --rule override one target: choose it with --target")
			}
		}
	default:
		if o.ASG == "" {
			return nil, refused("say what to deploy to: an environment of %s (phoenix deploy prod …) or --region and --asg", o.Config)
		}
		targets = []deployer.EnvironmentTarget{{Name: o.ASG}}
	}
	for _, arn := range o.TargetGroups {
		if err := deployer.CheckTargetGroupARN("--target-group", arn); err != nil {
			return nil, refused("%w", err)
		}
	}
	for i := range targets {
		t := &targets[i]
		for _, f := range []struct {
			v   string
			dst *string
		}{{o.ASG, &t.ASG}, {o.PeerASG, &t.PeerASG}, {o.Listener, &t.Listener}, {o.Rule, &t.Rule}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if len(o.TargetGroups) > 0 {
			t.TargetGroups = o.TargetGroups
		}
	}
	if ro != nil && ro.Strategy != "" {
		strategy.Kind = ro.Strategy
	}
	if strategy.Kind == "" && targets[0].PeerASG != "" {
		strategy.Kind = "blue-green"
	}
	if ro != nil && ro.flags != nil {
		only, other := rollingOnly, "rolling"
		if strategy.Kind != "blue-green" {
			only, other = blueGreenOnly, "blue-green"
		}
		for _, name := range only {
			if ro.flags.Changed(name) {
				return nil, refused("--%s is a %s setting; the strategy is %s (set --strategy or the environment's strategy block)", name, other, strategyName(strategy.Kind))
			}
		}
	}
	strategy.Rolling.Override(ro.settings())
	strategy.BlueGreen.Override(ro.blueGreen())
	strat, timeout, errs := strategy.Strategy()
	for _, t := range targets {
		for _, err := range deployer.CheckTarget(strategy.Kind, t) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		for i, err := range errs {
			var se *deployer.SettingError
			if errors.As(err, &se) {
				errs[i] = fmt.Errorf("%w (%s or %s)", err, flagName(se.Setting), o.Config)
			}
		}
		return nil, refused("%w", errors.Join(errs...))
	}
	awsCfg, err := loadAWS(ctx, settings, where)
	if err != nil {
		return nil, err
	}
	poll := o.PollInterval
	grantKMS := ro != nil && ro.GrantKMS
	// The environment's policy is a floor: --require-encrypted may add
	// the rule, never take it away (docs/deployer.md, "Policy").
	var policy *deployer.Policy
	if ro != nil && ro.RequireEncrypted {
		policy = policy.Tighten(deployer.Policy{RequireEncrypted: true})
	}
	var evidence deployer.Evidence
	envName := ""
	if env != nil {
		envName = env.Name
		if poll == 0 {
			poll = env.PollInterval
		}
		if ro == nil || !ro.flags.Changed("grant-kms") {
			grantKMS = env.GrantKMS
		}
		if env.Policy != nil && env.Policy.RequireEncrypted && ro != nil && ro.flags.Changed("require-encrypted") && !ro.RequireEncrypted {
			return nil, refused("--require-encrypted=false: environment %q of %s requires encrypted AMIs (its policy), and a flag may add requirements, never take them away", env.Name, o.Config)
		}
		policy = env.Policy.Tighten(derefPolicy(policy))
		if env.Policy != nil && env.Policy.PromotedFrom != "" {
			if evidence, err = environmentEvidence(ctx, o, env.Policy.PromotedFrom); err != nil {
				return nil, err
			}
		}
	}
	if policy.Empty() {
		policy = nil
	}
	out := &selection{Env: env, AWS: awsCfg}
	for _, t := range targets {
		if o.Region != "" {
			t.Region = "" // --region puts every target in it
		}
		cfg := deployer.TargetConfig(awsCfg, t)
		out.Configs = append(out.Configs, cfg)
		out.Deployers = append(out.Deployers, &deployer.Deployer{
			Clients:       deployer.NewClients(cfg),
			Target:        t.Target(awsCfg.Region),
			Strategy:      strat,
			Policy:        policy,
			Evidence:      evidence,
			Environment:   envName,
			GrantKMS:      grantKMS,
			HealthTimeout: timeout,
			PollInterval:  poll,
			Events:        p.Event,
		})
	}
	return out, nil
}

func derefPolicy(p *deployer.Policy) deployer.Policy {
	if p == nil {
		return deployer.Policy{}
	}
	return *p
}

// environmentEvidence reads the environment a policy's promoted_from
// names, with its own access settings (and --endpoint), for the rule's
// evidence: what its targets serve and their deploy histories.
func environmentEvidence(ctx context.Context, o *targetOptions, name string) (deployer.Evidence, error) {
	cfg, err := deployer.LoadConfig(o.Config)
	if err != nil {
		return nil, err
	}
	return cfg.Evidence(name, o.Endpoint, func(s awsconfig.Settings) (aws.Config, error) {
		return loadAWS(ctx, s, fmt.Sprintf("environment %q of %s (promoted_from)", name, o.Config))
	})
}

// environment reads the environment args names in phoenix.hcl (nil when
// args is empty: flags alone) and returns its access settings with
// --region, --profile and --endpoint over them; where says where they
// came from, for messages.
func environment(args []string, o *targetOptions) (*deployer.Environment, awsconfig.Settings, string, error) {
	var (
		settings awsconfig.Settings
		env      *deployer.Environment
		where    = "flags"
	)
	switch {
	case len(args) > 1:
		return nil, settings, where, refused("one environment at a time, not %s", strings.Join(args, " "))
	case len(args) == 1:
		cfg, err := deployer.LoadConfig(o.Config)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, settings, where, refused("environment %q: %s not found: pass --config or run where phoenix.hcl is", args[0], o.Config)
			}
			return nil, settings, where, err
		}
		if env, err = cfg.Environment(args[0]); err != nil {
			return nil, settings, where, err
		}
		settings = env.Settings
		where = fmt.Sprintf("environment %q of %s", env.Name, o.Config)
	}
	if o.Region != "" {
		settings.Region = o.Region
	}
	if o.Profile != "" {
		settings.Profile = o.Profile
	}
	if o.Endpoint != "" {
		settings.Endpoint = o.Endpoint
	}
	if errs := settings.Validate(); len(errs) > 0 {
		return nil, settings, where, refused("%s: %w", where, errors.Join(errs...))
	}
	return env, settings, where, nil
}

// loadAWS turns access settings into an AWS config.
func loadAWS(ctx context.Context, settings awsconfig.Settings, where string) (aws.Config, error) {
	cfg, err := settings.Load(ctx, "")
	if errors.Is(err, awsconfig.ErrNoRegion) {
		return cfg, refused("%s: %w (set --region or the environment's region)", where, err)
	}
	if err != nil {
		return cfg, refused("%s: %w", where, err)
	}
	return cfg, nil
}

func newPrinter(o *targetOptions, out io.Writer) (printer.Printer, error) {
	p, err := printer.New(o.Output, out)
	if err != nil {
		return nil, refused("--output: %w", err)
	}
	return p, nil
}
