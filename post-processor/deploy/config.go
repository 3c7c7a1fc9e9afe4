//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate ../../scripts/struct-markdown.sh

package deploy

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// Config is the phoenix-deploy post-processor's configuration: an
// environment of phoenix.hcl, or the same settings inline. Inline
// settings override the environment's.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`
	awsconfig.Settings  `mapstructure:",squash"`

	// An environment of config_file to deploy to, e.g. "staging". Without
	// it, asg (and a region) must be set here.
	Environment string `mapstructure:"environment"`
	// The phoenix.hcl file that defines environment. Defaults to
	// phoenix.hcl in the directory Packer runs in.
	ConfigFile string `mapstructure:"config_file"`
	// The environment's target to deploy to, when it has several.
	Target string `mapstructure:"target"`
	// The Auto Scaling group to roll the AMI onto (without an environment,
	// or to override the target's).
	ASG string `mapstructure:"asg"`
	// Target group ARNs whose health decides success. Defaults to the
	// target groups attached to the group.
	TargetGroups []string `mapstructure:"target_groups"`
	// The deploy strategy: "rolling" (an instance refresh of asg) or
	// "blue-green" (asg and peer_asg behind listener). Defaults to the
	// environment's, else rolling.
	Strategy string `mapstructure:"strategy"`
	// Blue-green: the second colour's Auto Scaling group.
	PeerASG string `mapstructure:"peer_asg"`
	// Blue-green: the ARN of the listener whose default action (or rule)
	// forwards to both colours' target groups.
	Listener string `mapstructure:"listener"`
	// Blue-green: the ARN of the listener rule that forwards to both
	// colours, when it is not the listener's default action.
	Rule string `mapstructure:"rule"`
	// Blue-green: percentages of the traffic moved to the new colour in
	// turn, ascending and ending with 100, e.g. [10, 50, 100]; bake_time
	// then applies after each step. Defaults to [100].
	Steps []int `mapstructure:"steps"`
	// Blue-green: how long the old colour stays running at weight 0 after
	// the switch, for a rollback in one call, as a duration. Defaults to
	// 0s: it scales to zero at once.
	KeepOldFor string `mapstructure:"keep_old_for"`
	// Blue-green: end every deploy back on `asg` (blue) once the new AMI
	// has passed the gate on `peer_asg`, so the colours' capacities and
	// the rule's weights end as the infrastructure code set them. Defaults
	// to false.
	ReturnHome *bool `mapstructure:"return_home"`
	// Blue-green: turn on the canary judge with its defaults: during each
	// step that splits the traffic, the new colour's target group is
	// compared with the old one's over the same minutes; a step it fails
	// rolls back. Any judge_* setting turns it on too.
	Judge *bool `mapstructure:"judge"`
	// Blue-green: requests the new colour must serve in a step before it
	// is judged. Defaults to 100.
	JudgeMinRequests *int `mapstructure:"judge_min_requests"`
	// Blue-green: percentage points by which the new colour's 5xx share
	// may exceed the old colour's, 0 to 100. Defaults to 1.
	JudgeMax5xxIncrease *float64 `mapstructure:"judge_max_5xx_increase"`
	// Blue-green: the response time statistic the judge compares, "p99"
	// or "Average". Defaults to p99.
	JudgeLatencyStatistic string `mapstructure:"judge_latency_statistic"`
	// Blue-green: how many times the old colour's response time the new
	// colour's may be, 1 to 100. Defaults to 1.5.
	JudgeMaxLatencyRatio *float64 `mapstructure:"judge_max_latency_ratio"`
	// Refuse an AMI with unencrypted EBS snapshots (the policy's
	// require_encrypted; kept here for earlier templates).
	RequireEncrypted bool `mapstructure:"require_encrypted"`
	// The admission policy the AMI must pass, over the environment's: a
	// rule set here adds to the environment's policy, never removes one.
	// See docs/deployer.md, "Policy".
	Policy deployer.PolicySettings `mapstructure:"policy"`
	// Create the KMS grant that Auto Scaling's service-linked role needs
	// to launch from the AMI's encrypted snapshots, when the key policy
	// does not give it the key; without it such a deploy is refused with
	// the fix. Defaults to the environment's grant_kms, else false.
	GrantKMS bool `mapstructure:"grant_kms"`
	// Mean time between the deploy's passes, as a duration. Defaults to
	// 10s, jittered by 20%.
	PollInterval string `mapstructure:"poll_interval"`

	deployer.RollingSettings `mapstructure:",squash"`

	ctx interpolate.Context
}

// Prepare decodes raws into c and reports every problem at once. It makes
// no AWS call.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         PluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(e error) { errs = packersdk.MultiErrorAppend(errs, e) }
	for _, e := range c.Settings.Validate() {
		add(e)
	}
	if c.Environment == "" && c.ASG == "" {
		add(errors.New("set environment (an environment of config_file) or asg (an Auto Scaling group)"))
	}
	if c.Environment != "" && c.ConfigFile == "" {
		c.ConfigFile = "phoenix.hcl"
	}
	if c.Environment == "" && c.ConfigFile != "" {
		add(errors.New("config_file is set without environment: name the environment to deploy to"))
	}
	for _, arn := range c.TargetGroups {
		if err := deployer.CheckTargetGroupARN("target_groups", arn); err != nil {
			add(err)
		}
	}
	if _, perrs := c.Policy.Policy(); len(perrs) > 0 {
		for _, e := range perrs {
			add(fmt.Errorf("policy: %w", e))
		}
	}
	if c.Policy.PromotedFrom != "" && c.Environment == "" {
		add(errors.New("policy: promoted_from names an environment of config_file: set environment too"))
	}
	if c.PollInterval != "" {
		if d, err := time.ParseDuration(c.PollInterval); err != nil || d <= 0 {
			add(fmt.Errorf("poll_interval %q must be a positive duration (e.g. \"10s\")", c.PollInterval))
		}
	}
	if _, _, rerrs := c.strategy(deployer.StrategySettings{Kind: c.Strategy}).Strategy(); len(rerrs) > 0 {
		for _, e := range rerrs {
			add(e)
		}
	}
	if c.Environment == "" || c.Strategy != "" {
		for _, e := range c.rollingOnly(c.strategyKind("")) {
			add(e)
		}
	}
	if c.Environment == "" {
		for _, e := range deployer.CheckTarget(c.strategyKind(""), deployer.EnvironmentTarget{Name: c.ASG, ASG: c.ASG, PeerASG: c.PeerASG, Listener: c.Listener, Rule: c.Rule}) {
			add(e)
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}

// strategyKind is the strategy: the post-processor's, else the
// environment's, else blue-green when peer_asg is set, else rolling.
func (c *Config) strategyKind(env string) string {
	switch {
	case c.Strategy != "":
		return c.Strategy
	case env != "":
		return env
	case c.PeerASG != "":
		return "blue-green"
	}
	return "rolling"
}

// strategy puts the inline strategy settings over base's. bake_time and
// health_timeout serve both strategies.
func (c *Config) strategy(base deployer.StrategySettings) deployer.StrategySettings {
	base.Kind = c.strategyKind(base.Kind)
	base.Rolling.Override(c.RollingSettings)
	base.BlueGreen.Override(c.blueGreen())
	return base
}

// blueGreen are the inline blue-green settings; alarms serve both
// strategies.
func (c *Config) blueGreen() deployer.BlueGreenSettings {
	return deployer.BlueGreenSettings{Steps: c.Steps, BakeTime: c.BakeTime, KeepOldFor: c.KeepOldFor, ReturnHome: c.ReturnHome, HealthTimeout: c.HealthTimeout,
		Alarms: c.Alarms, Judge: c.Judge, JudgeMinRequests: c.JudgeMinRequests, JudgeMax5xxIncrease: c.JudgeMax5xxIncrease,
		JudgeLatencyStatistic: c.JudgeLatencyStatistic, JudgeMaxLatencyRatio: c.JudgeMaxLatencyRatio}
}

// rollingOnly reports the settings of the other strategy that are set:
// rolling's under blue-green, blue-green's under rolling.
func (c *Config) rollingOnly(kind string) []error {
	if kind != "blue-green" {
		var errs []error
		if c.Steps != nil {
			errs = append(errs, fmt.Errorf("steps is a blue-green setting; the strategy is %s", kind))
		}
		if c.KeepOldFor != "" {
			errs = append(errs, fmt.Errorf("keep_old_for is a blue-green setting; the strategy is %s", kind))
		}
		if c.ReturnHome != nil {
			errs = append(errs, fmt.Errorf("return_home is a blue-green setting; the strategy is %s", kind))
		}
		for _, j := range c.blueGreen().JudgeSettings() {
			errs = append(errs, fmt.Errorf("%s: the canary judge compares two colours and is a blue-green setting; the strategy is %s (use alarms to gate a rolling deploy)", j, kind))
		}
		return errs
	}
	r := c.RollingSettings
	var errs []error
	for _, f := range []struct {
		name string
		set  bool
	}{{"min_healthy_percentage", r.MinHealthyPercentage != nil}, {"max_healthy_percentage", r.MaxHealthyPercentage != nil}, {"instance_warmup", r.InstanceWarmup != ""},
		{"checkpoints", r.Checkpoints != nil}, {"checkpoint_delay", r.CheckpointDelay != ""}, {"skip_matching", r.SkipMatching != nil}, {"auto_rollback", r.AutoRollback != nil},
		{"scale_in_protected_instances", r.ScaleInProtectedInstances != ""}, {"standby_instances", r.StandbyInstances != ""}} {
		if f.set {
			errs = append(errs, fmt.Errorf("%s is a rolling setting; the strategy is blue-green", f.name))
		}
	}
	return errs
}
