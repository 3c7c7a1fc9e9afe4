//go:generate go tool packer-sdc mapstructure-to-hcl2 -type RollingSettings
//go:generate ../scripts/struct-markdown.sh

package deployer

import (
	"errors"
	"fmt"
	"time"
)

// RollingSettings are the rolling strategy's settings as users write them:
// the `strategy "rolling"` block of phoenix.hcl and the phoenix-deploy
// post-processor share them, so a setting means the same in both.
type RollingSettings struct {
	// Percentage of the group's desired capacity that stays in service and
	// healthy while instances are replaced, 0 to 100. Unset, it is not
	// sent: the group's instance maintenance policy governs, or without
	// one Auto Scaling's default, 90.
	MinHealthyPercentage *int `mapstructure:"min_healthy_percentage" hcl:"min_healthy_percentage,optional"`
	// Percentage of the desired capacity the group may grow to while
	// replacing, 100 to 200; above 100 new instances start before old
	// ones stop. Unset, it is not sent: the group's instance maintenance
	// policy governs, or without one Auto Scaling's default, 100.
	MaxHealthyPercentage *int `mapstructure:"max_healthy_percentage" hcl:"max_healthy_percentage,optional"`
	// How long a new instance warms up before it counts as healthy, as a
	// duration ("5m"). Defaults to the group's own warmup.
	InstanceWarmup string `mapstructure:"instance_warmup" hcl:"instance_warmup,optional"`
	// Percentages of the group replaced at which the refresh pauses for
	// checkpoint_delay, ascending, e.g. [20, 50, 100].
	Checkpoints []int `mapstructure:"checkpoints" hcl:"checkpoints,optional"`
	// How long the refresh pauses at each checkpoint, as a duration.
	// Defaults to 1h when checkpoints are set.
	CheckpointDelay string `mapstructure:"checkpoint_delay" hcl:"checkpoint_delay,optional"`
	// Leave instances that already run the new launch template version
	// alone, so that re-running a deploy replaces nothing twice. Defaults
	// to true.
	SkipMatching *bool `mapstructure:"skip_matching" hcl:"skip_matching,optional"`
	// Let Auto Scaling roll the refresh back by itself when it fails.
	// Defaults to true. Phoenix rolls back a failed deploy either way.
	AutoRollback *bool `mapstructure:"auto_rollback" hcl:"auto_rollback,optional"`
	// CloudWatch alarm names that fail the refresh when they go to ALARM.
	Alarms []string `mapstructure:"alarms" hcl:"alarms,optional"`
	// How long the refresh waits after the last replacement before it
	// succeeds, as a duration. Defaults to 0s.
	BakeTime string `mapstructure:"bake_time" hcl:"bake_time,optional"`
	// How long to wait, once the refresh has succeeded, for every target
	// of the group's target groups to be healthy on the new AMI, as a
	// duration. Defaults to 15m.
	HealthTimeout string `mapstructure:"health_timeout" hcl:"health_timeout,optional"`
	// What the refresh does with instances protected from scale in:
	// "Refresh" replaces them, "Ignore" leaves them on the old image (and
	// the health gate leaves them out), "Wait" waits up to an hour for
	// their protection to be removed and then fails. Unset, it is not
	// sent: Auto Scaling's default, Wait.
	ScaleInProtectedInstances string `mapstructure:"scale_in_protected_instances" hcl:"scale_in_protected_instances,optional"`
	// What the refresh does with instances in Standby: "Terminate"
	// terminates them, "Ignore" leaves them on the old image, "Wait"
	// waits up to an hour for them to return to service and then fails.
	// Unset, it is not sent: Auto Scaling's default, Wait.
	StandbyInstances string `mapstructure:"standby_instances" hcl:"standby_instances,optional"`
}

// Override copies every setting o sets onto s.
func (s *RollingSettings) Override(o RollingSettings) {
	if o.MinHealthyPercentage != nil {
		s.MinHealthyPercentage = o.MinHealthyPercentage
	}
	if o.MaxHealthyPercentage != nil {
		s.MaxHealthyPercentage = o.MaxHealthyPercentage
	}
	if o.InstanceWarmup != "" {
		s.InstanceWarmup = o.InstanceWarmup
	}
	if o.Checkpoints != nil {
		s.Checkpoints = o.Checkpoints
	}
	if o.CheckpointDelay != "" {
		s.CheckpointDelay = o.CheckpointDelay
	}
	if o.SkipMatching != nil {
		s.SkipMatching = o.SkipMatching
	}
	if o.AutoRollback != nil {
		s.AutoRollback = o.AutoRollback
	}
	if o.Alarms != nil {
		s.Alarms = o.Alarms
	}
	if o.BakeTime != "" {
		s.BakeTime = o.BakeTime
	}
	if o.HealthTimeout != "" {
		s.HealthTimeout = o.HealthTimeout
	}
	if o.ScaleInProtectedInstances != "" {
		s.ScaleInProtectedInstances = o.ScaleInProtectedInstances
	}
	if o.StandbyInstances != "" {
		s.StandbyInstances = o.StandbyInstances
	}
}

// Rolling turns the settings into the strategy and the health timeout,
// reporting every problem as a *SettingError.
func (s RollingSettings) Rolling() (*Rolling, time.Duration, []error) {
	r := &Rolling{MinHealthyPercentage: FromGroup, MaxHealthyPercentage: FromGroup, SkipMatching: true, AutoRollback: true, CheckpointDelay: time.Hour, Checkpoints: s.Checkpoints, Alarms: s.Alarms,
		ScaleInProtectedInstances: s.ScaleInProtectedInstances, StandbyInstances: s.StandbyInstances}
	var errs []error
	dur := func(setting, v string, dst *time.Duration) bool { return parseDuration(setting, v, dst, &errs) }
	if s.MinHealthyPercentage != nil {
		r.MinHealthyPercentage = *s.MinHealthyPercentage
	}
	if s.MaxHealthyPercentage != nil {
		r.MaxHealthyPercentage = *s.MaxHealthyPercentage
	}
	var w time.Duration
	if dur("instance_warmup", s.InstanceWarmup, &w) {
		r.InstanceWarmup = &w
	}
	dur("checkpoint_delay", s.CheckpointDelay, &r.CheckpointDelay)
	dur("bake_time", s.BakeTime, &r.BakeTime)
	if s.SkipMatching != nil {
		r.SkipMatching = *s.SkipMatching
	}
	if s.AutoRollback != nil {
		r.AutoRollback = *s.AutoRollback
	}
	timeout := healthTimeout(s.HealthTimeout, &errs)
	for _, err := range r.Validate() {
		errs = append(errs, &SettingError{settingOf(err), err})
	}
	return r, timeout, errs
}

// parseDuration parses a duration setting into dst; an empty value
// leaves dst alone. A malformed one is added to errs, naming the setting.
func parseDuration(setting, v string, dst *time.Duration, errs *[]error) bool {
	if v == "" {
		return false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		*errs = append(*errs, &SettingError{setting, fmt.Errorf("%s %q is not a duration (e.g. \"90s\", \"5m\")", setting, v)})
		return false
	}
	*dst = d
	return true
}

// healthTimeout is the health_timeout setting, DefaultHealthTimeout when
// it is empty; a value out of range is added to errs.
func healthTimeout(v string, errs *[]error) time.Duration {
	timeout := DefaultHealthTimeout
	if parseDuration("health_timeout", v, &timeout, errs) && (timeout <= 0 || timeout > 24*time.Hour) {
		*errs = append(*errs, &SettingError{"health_timeout", fmt.Errorf("health_timeout %s must be more than 0s and at most 24h", v)})
	}
	return timeout
}

// settingOf is the setting a validation message starts with.
func settingOf(err error) string {
	msg := err.Error()
	for i, c := range msg {
		if c == ' ' || c == ':' {
			return msg[:i]
		}
	}
	return msg
}

// joinErrors joins errs, or returns nil.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// BlueGreenSettings are the blue-green strategy's settings as users write
// them: the `strategy "blue-green"` block of phoenix.hcl, the phoenix
// deploy flags and the phoenix-deploy post-processor.
type BlueGreenSettings struct {
	// Percentages of the traffic the new colour gets, one step after
	// another, ascending and ending with 100, e.g. [10, 50, 100]. Defaults
	// to [100]: all traffic at once.
	Steps []int `hcl:"steps,optional"`
	// How long each step holds while the new colour's health is watched,
	// as a duration. Defaults to 0s.
	BakeTime string `hcl:"bake_time,optional"`
	// How long the old colour stays running at weight 0 after the switch,
	// for a rollback in one call, as a duration; a scheduled action scales
	// it to zero afterwards. Defaults to 0s: it scales to zero at once.
	KeepOldFor string `hcl:"keep_old_for,optional"`
	// End every deploy back on the asg colour (blue): once the new image
	// has passed the gate on the other colour, blue comes up on it, takes
	// all traffic back, and the other colour returns to the capacity it
	// had, so each colour's capacity and the rule's weights end as the
	// infrastructure code set them. A second switch per deploy; no
	// keep_old_for. Defaults to false.
	ReturnHome *bool `hcl:"return_home,optional"`
	// How long the new colour may take to be healthy in its target group,
	// as a duration. Defaults to 15m.
	HealthTimeout string `hcl:"health_timeout,optional"`
	// CloudWatch alarm names watched during every step's bake and after
	// the switch; one in ALARM rolls the deploy back. At most 10.
	Alarms []string `hcl:"alarms,optional"`
	// Turn on the canary judge with its defaults: during each step that
	// splits the traffic, the new colour's target group is compared with
	// the old one's over the same minutes; a step it fails rolls back.
	// Setting any judge_* setting turns it on too.
	Judge *bool `hcl:"judge,optional"`
	// Requests the new colour must serve in a step before it is judged;
	// the step does not end before. Defaults to 100.
	JudgeMinRequests *int `hcl:"judge_min_requests,optional"`
	// Percentage points by which the new colour's share of 5xx answers
	// may exceed the old colour's, 0 to 100. Defaults to 1.
	JudgeMax5xxIncrease *float64 `hcl:"judge_max_5xx_increase,optional"`
	// The response time statistic compared: "p99" or "Average". Defaults
	// to p99.
	JudgeLatencyStatistic string `hcl:"judge_latency_statistic,optional"`
	// How many times the old colour's response time the new colour's may
	// be, 1 to 100. Defaults to 1.5.
	JudgeMaxLatencyRatio *float64 `hcl:"judge_max_latency_ratio,optional"`
}

// judgeSet reports whether any judge setting is set.
func (s BlueGreenSettings) judgeSet() bool {
	return s.Judge != nil && *s.Judge || s.JudgeMinRequests != nil || s.JudgeMax5xxIncrease != nil || s.JudgeLatencyStatistic != "" || s.JudgeMaxLatencyRatio != nil
}

// JudgeSettings names the judge settings that are set (for refusing them
// under the rolling strategy).
func (s BlueGreenSettings) JudgeSettings() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"judge", s.Judge != nil}, {"judge_min_requests", s.JudgeMinRequests != nil}, {"judge_max_5xx_increase", s.JudgeMax5xxIncrease != nil},
		{"judge_latency_statistic", s.JudgeLatencyStatistic != ""}, {"judge_max_latency_ratio", s.JudgeMaxLatencyRatio != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Override copies every setting o sets onto s.
func (s *BlueGreenSettings) Override(o BlueGreenSettings) {
	if o.Steps != nil {
		s.Steps = o.Steps
	}
	if o.BakeTime != "" {
		s.BakeTime = o.BakeTime
	}
	if o.KeepOldFor != "" {
		s.KeepOldFor = o.KeepOldFor
	}
	if o.ReturnHome != nil {
		s.ReturnHome = o.ReturnHome
	}
	if o.HealthTimeout != "" {
		s.HealthTimeout = o.HealthTimeout
	}
	if o.Alarms != nil {
		s.Alarms = o.Alarms
	}
	if o.Judge != nil {
		s.Judge = o.Judge
	}
	if o.JudgeMinRequests != nil {
		s.JudgeMinRequests = o.JudgeMinRequests
	}
	if o.JudgeMax5xxIncrease != nil {
		s.JudgeMax5xxIncrease = o.JudgeMax5xxIncrease
	}
	if o.JudgeLatencyStatistic != "" {
		s.JudgeLatencyStatistic = o.JudgeLatencyStatistic
	}
	if o.JudgeMaxLatencyRatio != nil {
		s.JudgeMaxLatencyRatio = o.JudgeMaxLatencyRatio
	}
}

// BlueGreen turns the settings into the strategy and the health timeout,
// reporting every problem as a *SettingError.
func (s BlueGreenSettings) BlueGreen() (*BlueGreen, time.Duration, []error) {
	b := &BlueGreen{Steps: s.Steps, ReturnHome: s.ReturnHome != nil && *s.ReturnHome, Alarms: s.Alarms}
	if s.judgeSet() {
		j := &Judge{MinRequests: DefaultJudgeMinRequests, Max5xxIncrease: DefaultJudgeMax5xxIncrease, LatencyStatistic: DefaultJudgeLatencyStat, MaxLatencyRatio: DefaultJudgeMaxLatencyRatio}
		if s.JudgeMinRequests != nil {
			j.MinRequests = *s.JudgeMinRequests
		}
		if s.JudgeMax5xxIncrease != nil {
			j.Max5xxIncrease = *s.JudgeMax5xxIncrease
		}
		if s.JudgeLatencyStatistic != "" {
			j.LatencyStatistic = s.JudgeLatencyStatistic
		}
		if s.JudgeMaxLatencyRatio != nil {
			j.MaxLatencyRatio = *s.JudgeMaxLatencyRatio
		}
		b.Judge = j
	}
	var errs []error
	dur := func(setting, v string, dst *time.Duration) bool { return parseDuration(setting, v, dst, &errs) }
	dur("bake_time", s.BakeTime, &b.BakeTime)
	dur("keep_old_for", s.KeepOldFor, &b.KeepOldFor)
	timeout := healthTimeout(s.HealthTimeout, &errs)
	for _, err := range b.Validate() {
		errs = append(errs, &SettingError{settingOf(err), err})
	}
	return b, timeout, errs
}
