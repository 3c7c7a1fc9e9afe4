package deployer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Rolling replaces a group's instances in place: a new numbered launch
// template version with only the AMI changed, then an instance refresh to
// that version. The group itself is never updated first: Auto Scaling
// points it at the new version only when the refresh succeeds, so a
// rollback returns it to the version it had.
type Rolling struct {
	// MinHealthyPercentage of the desired capacity stays in service during
	// the refresh (0-100); FromGroup leaves it to the group's instance
	// maintenance policy.
	MinHealthyPercentage int
	// MaxHealthyPercentage the group may grow to while replacing
	// (100-200); above 100 new instances launch before old ones go.
	// FromGroup leaves it to the group's instance maintenance policy.
	MaxHealthyPercentage int
	// InstanceWarmup before a new instance counts; nil uses the group's.
	InstanceWarmup *time.Duration
	// Checkpoints are percentages at which the refresh pauses for
	// CheckpointDelay.
	Checkpoints     []int
	CheckpointDelay time.Duration
	// SkipMatching leaves instances already on the new version alone.
	SkipMatching bool
	// AutoRollback lets Auto Scaling roll back a refresh that fails.
	AutoRollback bool
	// Alarms are CloudWatch alarm names that fail the refresh; phoenix
	// watches them too (gates.go).
	Alarms []string
	// BakeTime is how long the refresh waits after the last replacement
	// before it succeeds.
	BakeTime time.Duration
	// ScaleInProtectedInstances (Refresh, Ignore, Wait) and
	// StandbyInstances (Terminate, Ignore, Wait) say what the refresh
	// does with such instances; "" is not sent (Auto Scaling: Wait).
	ScaleInProtectedInstances string
	StandbyInstances          string
}

// Name is "rolling".
func (r *Rolling) Name() string { return "rolling" }

// maxSeconds is Auto Scaling's limit for the checkpoint delay and bake
// time: 48 hours.
const maxSeconds = 172800

// Validate reports every option out of range, naming each setting.
func (r *Rolling) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if r.MinHealthyPercentage != FromGroup && (r.MinHealthyPercentage < 0 || r.MinHealthyPercentage > 100) {
		bad("min_healthy_percentage %d must be between 0 and 100", r.MinHealthyPercentage)
	}
	switch {
	case r.MaxHealthyPercentage == FromGroup:
	case r.MaxHealthyPercentage < 100 || r.MaxHealthyPercentage > 200:
		bad("max_healthy_percentage %d must be between 100 and 200", r.MaxHealthyPercentage)
	case r.MinHealthyPercentage != FromGroup && r.MaxHealthyPercentage-r.MinHealthyPercentage > 100:
		bad("max_healthy_percentage %d and min_healthy_percentage %d may be at most 100 apart", r.MaxHealthyPercentage, r.MinHealthyPercentage)
	}
	if r.InstanceWarmup != nil && (*r.InstanceWarmup < 0 || *r.InstanceWarmup > maxSeconds*time.Second) {
		bad("instance_warmup %s must be between 0s and 48h", *r.InstanceWarmup)
	}
	errs = append(errs, checkPercentages("checkpoints", r.Checkpoints, "a refresh whose last checkpoint is below 100 stops there, leaving old instances behind")...)
	if r.CheckpointDelay < 0 || r.CheckpointDelay > maxSeconds*time.Second {
		bad("checkpoint_delay %s must be between 0s and 48h", r.CheckpointDelay)
	}
	if r.BakeTime < 0 || r.BakeTime > maxSeconds*time.Second {
		bad("bake_time %s must be between 0s and 48h", r.BakeTime)
	}
	errs = append(errs, r.validateStates()...)
	return append(errs, validateAlarms(r.Alarms)...)
}

// checkPercentages checks a list of percentages that must rise to 100:
// each 1-100, ascending without repeats, the last 100 (why says what a
// last value below 100 would do).
func checkPercentages(setting string, values []int, why string) []error {
	var errs []error
	prev := 0
	for _, v := range values {
		if v < 1 || v > 100 {
			errs = append(errs, fmt.Errorf("%s: %d must be between 1 and 100", setting, v))
		} else if v <= prev {
			errs = append(errs, fmt.Errorf("%s %v must be ascending without repeats", setting, values))
			break
		}
		prev = v
	}
	if n := len(values); n > 0 && values[n-1] != 100 {
		errs = append(errs, fmt.Errorf("%s %v must end with 100: %s", setting, values, why))
	}
	return errs
}

func secs(d time.Duration) *int32 { return aws.Int32(int32(d / time.Second)) }

func (r *Rolling) preferences(g astypes.AutoScalingGroup, autoRollback bool) *astypes.RefreshPreferences {
	p := &astypes.RefreshPreferences{
		SkipMatching: aws.Bool(r.SkipMatching),
		AutoRollback: aws.Bool(autoRollback),
		BakeTime:     secs(r.BakeTime),
	}
	r.healthyPreferences(g, p)
	r.statesPreferences(p)
	if r.InstanceWarmup != nil {
		p.InstanceWarmup = secs(*r.InstanceWarmup)
	}
	if len(r.Checkpoints) > 0 {
		for _, c := range r.Checkpoints {
			p.CheckpointPercentages = append(p.CheckpointPercentages, int32(c))
		}
		p.CheckpointDelay = secs(r.CheckpointDelay)
	}
	if len(r.Alarms) > 0 {
		p.AlarmSpecification = &astypes.AlarmSpecification{Alarms: r.Alarms}
	}
	return p
}

// summary is the refresh preferences for g in words.
func (r *Rolling) summary(g astypes.AutoScalingGroup) string {
	parts := []string{r.healthySummary(g)}
	if r.InstanceWarmup != nil {
		parts = append(parts, "warmup "+r.InstanceWarmup.String())
	} else {
		parts = append(parts, "warmup: the group's")
	}
	if len(r.Checkpoints) > 0 {
		cps := make([]string, len(r.Checkpoints))
		for i, c := range r.Checkpoints {
			cps[i] = strconv.Itoa(c) + "%"
		}
		parts = append(parts, fmt.Sprintf("checkpoints %s every %s", strings.Join(cps, ","), r.CheckpointDelay))
	}
	parts = append(parts, fmt.Sprintf("skip matching %v", r.SkipMatching), fmt.Sprintf("auto rollback %v", r.AutoRollback))
	if len(r.Alarms) > 0 {
		parts = append(parts, "alarms "+strings.Join(r.Alarms, ","))
	}
	if r.BakeTime > 0 {
		parts = append(parts, "bake "+r.BakeTime.String())
	}
	return strings.Join(parts, ", ")
}

// versionDescription marks versions phoenix creates, naming the version
// they replace so that `phoenix rollback` knows where to go back to.
func versionDescription(ami string, prev *TemplateVersion) string {
	if prev == nil {
		return "phoenix: " + ami
	}
	return fmt.Sprintf("phoenix: %s, previous version %d (%s)", ami, prev.Version, prev.AMI)
}

var previousVersion = regexp.MustCompile(`^phoenix: ami-[0-9a-f]+, previous version (\d+) `)

// Plan says what a rolling deploy would change.
func (r *Rolling) Plan(ctx context.Context, s *Session) ([]Change, error) {
	var ch []Change
	n := len(s.Group.Instances)
	if s.Template != nil && s.Template.AMI == s.AMI.ID {
		return []Change{{Action: "keep", Detail: fmt.Sprintf("%s already runs %s: no new version, no refresh; the deploy only checks health", s.Template, s.AMI.ID)}}, nil
	}
	if s.ActiveRefresh != nil {
		return []Change{{Action: "follow", Detail: fmt.Sprintf("instance refresh %s to %s is %s: the deploy follows it", aws.ToString(s.ActiveRefresh.InstanceRefreshId), s.AMI.ID, s.ActiveRefresh.Status)}}, nil
	}
	if err := r.checkHealthy(s); err != nil {
		return nil, err
	}
	if s.Template != nil {
		ch = append(ch, Change{Action: "create", Detail: fmt.Sprintf("launch template %s version %d: version %d with image %s -> %s", s.Template.ID, s.latestVersion(ctx)+1, s.Template.Version, s.Template.AMI, s.AMI.ID)})
	} else if err := s.checkLCTemplate(ctx); err != nil {
		return nil, err
	} else {
		ch = append(ch, Change{Action: "create", Detail: fmt.Sprintf("launch template phoenix-%s from the group's launch configuration, image %s", s.Target.Group, s.AMI.ID)})
	}
	// The new version does not exist yet, so no instance matches it.
	replace := n
	start := fmt.Sprintf("instance refresh of %q replacing %d instances (%s)", s.Target.Group, replace, r.summary(s.Group))
	if m := mixedSummary(s.Group); m != "" {
		start += "; the desired configuration is " + m + ", only the launch template version changes"
	}
	ch = append(ch, Change{Action: "start", Detail: start})
	ch = append(ch, r.statesChanges(s.instanceStates([]astypes.AutoScalingGroup{s.Group}, nil))...)
	if err := s.requireAlarms(ctx, r.Alarms); err != nil {
		return nil, err
	}
	ch = append(ch, gateChanges(r.Alarms, nil, "watched by the refresh and by phoenix until the refresh ends (its bake_time included)")...)
	ch = append(ch, Change{Action: "wait", Detail: fmt.Sprintf("until the refresh succeeds and every target in %s is healthy on %s (health_timeout %s)", tgNames(s.TargetGroups), s.AMI.ID, s.HealthTimeout())})
	if r.AutoRollback && s.Template != nil {
		ch = append(ch, Change{Action: "on failure", Detail: fmt.Sprintf("roll back the refresh to %s (%s)", s.Template, s.Template.AMI)})
	} else if s.Template != nil {
		ch = append(ch, Change{Action: "on failure", Detail: fmt.Sprintf("cancel the refresh and refresh back to %s (%s)", s.Template, s.Template.AMI)})
	} else {
		ch = append(ch, Change{Action: "on failure", Detail: fmt.Sprintf("cancel the refresh and refresh back to launch configuration %s", aws.ToString(s.Group.LaunchConfigurationName))})
	}
	return ch, nil
}

func tgNames(tgs []TargetGroup) string {
	if len(tgs) == 0 {
		return "the group (no target groups: the group's own health checks)"
	}
	names := make([]string, len(tgs))
	for i, tg := range tgs {
		names[i] = tg.Name
	}
	return strings.Join(names, ", ")
}

// latestVersion is the template's latest version number, for the plan.
func (s *Session) latestVersion(ctx context.Context) int64 {
	tv, err := s.templateVersion(ctx, s.Template.ID, "", "$Latest")
	if err != nil {
		return s.Template.Version
	}
	return tv.Version
}

// rollingRun is one rolling deploy or rollback in flight. It remembers
// only what it made (the version, the refresh ids); everything else is
// read again on every step.
type rollingRun struct {
	r *Rolling
	s *Session

	ami      string           // the AMI the deploy moves to
	previous *TemplateVersion // where a rollback returns
	target   *TemplateVersion // the version with the new AMI
	refresh  string           // the refresh moving to target
	restore  string           // a refresh started to return to previous
	healthy  time.Time        // when the refresh succeeded: health_timeout runs from here
	noop     bool             // the group already runs the AMI
	back     bool             // rolling back: the health timer restarted
	lcAMI    string           // the image of the launch configuration the group was on
	// lcRestore: phoenix rollback of a group on its launch configuration,
	// done as a refresh to the configuration.
	lcRestore bool
	// redeploy: phoenix rollback of a finished deploy, done as a deploy
	// of the previous AMI onto the current version (for a version naming
	// an SSM parameter, of the parameter's previous image).
	redeploy bool
}

// published: a deploy (and a rollback by redeploying the parameter's
// previous AMI) leaves its AMI in place; a failed deploy's rollback
// leaves the parameter where it was.
func (run *rollingRun) published(forward bool) (string, bool) {
	return run.ami, forward || run.redeploy
}

// Begin prepares a rolling deploy.
func (r *Rolling) Begin(ctx context.Context, s *Session) (Execution, error) {
	run := &rollingRun{r: r, s: s, ami: s.AMI.ID, previous: s.Template}
	if s.Template != nil && s.Template.AMI == s.AMI.ID {
		run.target, run.noop = s.Template, true
	}
	if rf := s.ActiveRefresh; rf != nil {
		lt := desiredTemplate(rf.DesiredConfiguration)
		if lt == nil {
			return nil, refuse("instance refresh %s of %q has no launch template in its desired configuration: wait for it to finish", aws.ToString(rf.InstanceRefreshId), s.Target.Group)
		}
		tv, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version))
		if err != nil {
			return nil, err
		}
		run.target, run.refresh = tv, aws.ToString(rf.InstanceRefreshId)
		if m := previousVersion.FindStringSubmatch(tv.Description); m != nil && s.Template != nil {
			if prev, err := s.templateVersion(ctx, tv.ID, "", m[1]); err == nil {
				run.previous = prev
			}
		}
		s.Emit(Event{Kind: EventStep, Step: "refresh", Message: fmt.Sprintf("following instance refresh %s to %s, already %s", run.refresh, s.AMI.ID, rf.Status)})
	}
	if s.Template == nil && s.Group.LaunchConfigurationName == nil {
		return nil, refuse("auto scaling group %q has neither a launch template nor a launch configuration", s.Target.Group)
	}
	if s.Template == nil {
		lc, err := s.readLaunchConfiguration(ctx)
		if err != nil {
			return nil, err
		}
		run.lcAMI = aws.ToString(lc.ImageId)
		if err := s.checkLCTemplate(ctx); err != nil {
			return nil, err
		}
	}
	if run.refresh == "" && !run.noop {
		if err := r.checkHealthy(s); err != nil {
			return nil, err
		}
		if err := s.requireAlarms(ctx, r.Alarms); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// BeginRollback prepares a rollback: of the refresh in progress, or to
// the version the group's current phoenix version replaced.
func (r *Rolling) BeginRollback(ctx context.Context, s *Session) (Execution, error) {
	run := &rollingRun{r: r, s: s}
	if s.Template == nil && s.Group.LaunchConfigurationName != nil {
		lc, err := s.readLaunchConfiguration(ctx)
		if err != nil {
			return nil, err
		}
		run.lcAMI = aws.ToString(lc.ImageId)
	}
	if rf := s.ActiveRefresh; rf != nil {
		run.refresh = aws.ToString(rf.InstanceRefreshId)
		run.previous = s.Template
		if s.Template != nil {
			run.ami = s.Template.AMI
		} else {
			run.ami = run.lcAMI
		}
		if lt := desiredTemplate(rf.DesiredConfiguration); lt != nil {
			if tv, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version)); err == nil {
				run.target = tv
			}
		}
		return run, nil
	}
	if s.Template == nil && run.lcAMI != "" {
		// A group still on its launch configuration after an interrupted
		// first deploy: the instances that deploy launched go.
		run.ami, run.lcRestore = run.lcAMI, true
		return run, nil
	}
	if s.Template == nil {
		return nil, refuse("auto scaling group %q has no launch template to roll back", s.Target.Group)
	}
	if s.Template.Alias != "" && groupTag(s.Group, RefTag) == "" {
		p := parseAlias(s.Template.Alias)
		prev, err := s.previousImage(ctx, p, s.Template.AMI)
		if err != nil {
			return nil, err
		}
		img, err := s.d.readImage(ctx, prev)
		if err != nil {
			return nil, err
		}
		s.AMI = *img
		run.ami, run.previous, run.redeploy = prev, s.Template, true
		s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("%q launches %s, which is %s; rolling back to the image before it in the parameter's history, %s", s.Target.Group, s.Template.Alias, s.Template.AMI, prev)})
		return run, nil
	}
	if groupTag(s.Group, RefTag) != "" {
		// A deploy interrupted on a held group rolled its refresh back:
		// the group already runs its version again, and $Latest is the
		// version that deploy made. Only the reference is left to put
		// back, with $Latest launching the group's version.
		latest, err := s.templateVersion(ctx, s.Template.ID, "", "$Latest")
		if err != nil {
			return nil, err
		}
		if m := previousVersion.FindStringSubmatch(latest.Description); m != nil && m[1] == strconv.FormatInt(s.Template.Version, 10) && latest.AMI != s.Template.AMI {
			run.previous, run.target, run.ami = s.Template, latest, s.Template.AMI
			s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("%q already runs %s (%s) again; the deploy of %s (%s) was rolled back", s.Target.Group, s.Template, s.Template.AMI, latest, latest.AMI)})
			return run, nil
		}
	}
	if a := lcPrevious.FindStringSubmatch(s.Template.Description); a != nil {
		// The template phoenix made from the group's launch configuration:
		// the configuration's image goes onto a new version of it.
		img, err := s.d.readImage(ctx, a[2])
		if err != nil {
			return nil, err
		}
		s.AMI = *img
		run.previous, run.ami, run.redeploy = s.Template, a[2], true
		s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("rolling %q back from %s (%s) to %s, the image of launch configuration %s it ran before, with a new version in which only the image changes", s.Target.Group, s.Template, s.Template.AMI, a[2], a[1])})
		return run, nil
	}
	m := previousVersion.FindStringSubmatch(s.Template.Description)
	if m == nil {
		return nil, refuse("auto scaling group %q runs %s, which phoenix did not create: there is no previous version to roll back to", s.Target.Group, s.Template)
	}
	prevAMI := ""
	if prev, err := s.templateVersion(ctx, s.Template.ID, "", m[1]); err == nil {
		prevAMI = prev.AMI
	} else if a := previousAMI.FindStringSubmatch(s.Template.Description); a != nil {
		prevAMI = a[1]
	} else {
		return nil, err
	}
	// The previous AMI goes onto the current version rather than the
	// group back onto the previous version: whatever infrastructure code
	// changed in the template since the deploy (an instance type, user
	// data) stays.
	img, err := s.d.readImage(ctx, prevAMI)
	if err != nil {
		return nil, err
	}
	s.AMI = *img
	run.previous, run.ami, run.redeploy = s.Template, prevAMI, true
	s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("rolling %q back from %s (%s) to %s, the AMI version %s had, with a new version of the current one in which only the image changes", s.Target.Group, s.Template, s.Template.AMI, prevAMI, m[1])})
	return run, nil
}

// Describe fills in what the run made.
func (run *rollingRun) Describe(res *Result) {
	if run.target != nil && res.AMI != "" {
		res.Template, res.Version = run.target.ID, run.target.Version
	} else if run.previous != nil {
		res.Template, res.Version = run.previous.ID, run.previous.Version
	}
	if run.previous != nil {
		res.Previous = run.previous.AMI
	} else if run.lcAMI != "" {
		res.Previous = run.lcAMI
	}
	if res.AMI == "" {
		res.AMI = run.ami
	}
	res.Refresh = run.refresh
	if run.restore != "" {
		res.Refresh = run.restore
	}
}

// describeRefresh reads one refresh.
func (run *rollingRun) describeRefresh(ctx context.Context, id string) (*astypes.InstanceRefresh, error) {
	s := run.s
	out, err := s.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(s.Target.Group), InstanceRefreshIds: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("describing instance refresh %s: %w", id, err)
	}
	for i := range out.InstanceRefreshes {
		if aws.ToString(out.InstanceRefreshes[i].InstanceRefreshId) == id {
			return &out.InstanceRefreshes[i], nil
		}
	}
	return nil, fmt.Errorf("instance refresh %s of %q not found", id, s.Target.Group)
}

func refreshOf(rf *astypes.InstanceRefresh) *Refresh {
	out := &Refresh{ID: aws.ToString(rf.InstanceRefreshId), Status: string(rf.Status), Percent: int(aws.ToInt32(rf.PercentageComplete)),
		Reason: aws.ToString(rf.StatusReason), Started: aws.ToTime(rf.StartTime).UTC()}
	if rf.EndTime != nil {
		t := rf.EndTime.UTC()
		out.Ended = &t
	}
	if lt := desiredTemplate(rf.DesiredConfiguration); lt != nil {
		out.Template, out.Version = aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.Version)
	}
	return out
}

// createVersion makes the launch template version with the new AMI: from
// the group's version with only the image changed, or a new template from
// the group's launch configuration.
func (run *rollingRun) createVersion(ctx context.Context) (Step, error) {
	s := run.s
	if prev := run.previous; prev != nil {
		left, err := s.leftVersion(ctx, prev.ID, prev.Version, versionDescription(run.ami, prev), run.ami)
		if err != nil {
			return Step{}, err
		}
		if left != nil {
			run.target = left
			return Step{Name: "launch-template", Action: fmt.Sprintf("took up launch template %s version %d, which an interrupted run of this deploy made: version %d with image %s -> %s", prev.ID, left.Version, prev.Version, prev.AMI, run.ami)}, nil
		}
		out, err := s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId: aws.String(prev.ID), SourceVersion: aws.String(strconv.FormatInt(prev.Version, 10)),
			VersionDescription: aws.String(versionDescription(run.ami, prev)),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(run.ami)},
		})
		if err != nil {
			return Step{State: StepFailed, Name: "launch-template", Message: fmt.Sprintf("creating a version of launch template %s: %v", prev.ID, err)}, nil
		}
		v := out.LaunchTemplateVersion
		run.target = &TemplateVersion{ID: prev.ID, Name: prev.Name, Version: aws.ToInt64(v.VersionNumber), AMI: run.ami, Description: aws.ToString(v.VersionDescription)}
		return Step{Name: "launch-template", Action: fmt.Sprintf("created launch template %s version %d: version %d with image %s -> %s", prev.ID, run.target.Version, prev.Version, prev.AMI, run.ami)}, nil
	}
	tv, err := run.templateFromLaunchConfiguration(ctx)
	if err != nil {
		return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, nil
	}
	run.target = tv
	return Step{Name: "launch-template", Action: fmt.Sprintf("created launch template %s (%s) version 1 from launch configuration %s with image %s", tv.Name, tv.ID, aws.ToString(s.Group.LaunchConfigurationName), run.ami)}, nil
}

// startRefresh starts the refresh to version tv.
func (run *rollingRun) startRefresh(ctx context.Context, tv *TemplateVersion, prefs *astypes.RefreshPreferences) (string, error) {
	s := run.s
	out, err := s.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
		AutoScalingGroupName: aws.String(s.Target.Group), Strategy: astypes.RefreshStrategyRolling,
		DesiredConfiguration: desiredConfiguration(s.Group, tv),
		Preferences:          prefs,
	})
	if err != nil {
		return "", fmt.Errorf("starting an instance refresh of %q: %w", s.Target.Group, err)
	}
	return aws.ToString(out.InstanceRefreshId), nil
}

// ownRefresh makes StartInstanceRefresh safe to retry. When its first
// attempt went through but the answer was lost (a 5xx after the fact, a
// dropped connection), the SDK's retry is refused with
// InstanceRefreshInProgress by the very refresh that attempt started. A
// group whose unfinished refresh goes to exactly tv is that case (the
// lock keeps other phoenix deploys out, and tv is the version this deploy
// is moving to), so its id is returned and the deploy follows it instead
// of failing, and rolling back, its own refresh. Anything else returns "".
func (run *rollingRun) ownRefresh(ctx context.Context, err error, tv *TemplateVersion) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InstanceRefreshInProgress" {
		return ""
	}
	rf, rerr := run.s.latestRefresh(ctx, run.s.Target.Group)
	if rerr != nil || rf == nil || !refreshActive[rf.Status] || rf.Status == astypes.InstanceRefreshStatusCancelling || rf.Status == astypes.InstanceRefreshStatusRollbackInProgress {
		return ""
	}
	lt := desiredTemplate(rf.DesiredConfiguration)
	if lt == nil || aws.ToString(lt.LaunchTemplateId) != tv.ID || aws.ToString(lt.Version) != strconv.FormatInt(tv.Version, 10) {
		return ""
	}
	return aws.ToString(rf.InstanceRefreshId)
}

func (run *rollingRun) isNoop() bool { return run.noop }

// settled: on success the group runs the new version; after a rollback
// it runs the previous one, and the new one must not be launched.
func (run *rollingRun) settled(success bool) (good, discard *TemplateVersion) {
	if success {
		return run.target, nil
	}
	return run.previous, run.target
}

// stopRefresh rolls back (or, when Auto Scaling cannot, cancels) the
// refresh this run started, when it is still running. It makes one call.
func (run *rollingRun) stopRefresh(ctx context.Context) (string, error) {
	id := run.refresh
	if run.restore != "" || id == "" {
		return "", nil
	}
	raw, err := run.describeRefresh(ctx, id)
	if err != nil {
		return "", err
	}
	switch raw.Status {
	case astypes.InstanceRefreshStatusPending, astypes.InstanceRefreshStatusInProgress, astypes.InstanceRefreshStatusBaking:
	default:
		return "", nil
	}
	group := aws.String(run.s.Target.Group)
	_, err = run.s.Clients.AutoScaling.RollbackInstanceRefresh(ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: group})
	if err == nil {
		return fmt.Sprintf("rolling back instance refresh %s to %s", id, run.previous), nil
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "IrreversibleInstanceRefresh" {
		return "", fmt.Errorf("rolling back instance refresh %s: %w", id, err)
	}
	if _, err := run.s.Clients.AutoScaling.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: group}); err != nil {
		return "", fmt.Errorf("cancelling instance refresh %s: %w", id, err)
	}
	return fmt.Sprintf("cancelled instance refresh %s", id), nil
}

// canAutoRollback: Auto Scaling rolls back only to a numbered version.
func (run *rollingRun) canAutoRollback() bool { return run.previous != nil }

// gate reads the group and its targets' health against ami.
func (run *rollingRun) gate(ctx context.Context, ami string) (*astypes.AutoScalingGroup, *Health, error) {
	s := run.s
	g, err := s.readGroup(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.gate.exempt = run.exempt(*g)
	h, err := s.gate.read(ctx, *g, s.TargetGroups, ami)
	if err != nil {
		return nil, nil, err
	}
	return g, h, nil
}

// waitHealthy is the health gate once a refresh has put ami in place:
// done when every target is healthy on it, failed after health_timeout.
func (run *rollingRun) waitHealthy(ctx context.Context, name, ami, doneMsg string, rf *Refresh) (Step, error) {
	_, h, err := run.gate(ctx, ami)
	if err != nil {
		return Step{}, err
	}
	st := Step{Name: "health", Refresh: rf, Health: h}
	if h.OK() {
		st.State, st.Message = StepDone, fmt.Sprintf("%s: every target healthy on %s (%d/%d)", doneMsg, ami, h.Healthy, h.Total)
		if kept := run.keptOld(ami); kept != "" {
			st.Message += "; left on their old image: " + kept
		}
		return st, nil
	}
	now := run.s.Now()
	if run.healthy.IsZero() {
		run.healthy = now
	}
	if waited := now.Sub(run.healthy); waited > run.s.HealthTimeout() {
		st.State = StepFailed
		st.Message = fmt.Sprintf("%s, but targets are not all healthy on %s after health_timeout %s: %s", doneMsg, ami, run.s.HealthTimeout(), strings.Join(h.Problems, "; "))
		return st, nil
	}
	st.Name = name
	return st, nil
}

// Step moves a rolling deploy forward by at most one action.
func (run *rollingRun) Step(ctx context.Context) (Step, error) {
	if run.noop {
		return run.waitHealthy(ctx, "health", run.ami, fmt.Sprintf("%q already runs %s", run.s.Target.Group, run.ami), nil)
	}
	if run.target == nil {
		return run.createVersion(ctx)
	}
	if run.refresh == "" {
		autoRollback := run.r.AutoRollback && run.canAutoRollback()
		prefs := run.r.preferences(run.s.Group, autoRollback)
		summary := run.r.summary(run.s.Group)
		if run.r.AutoRollback && !autoRollback {
			// Auto Scaling rolls back only to a numbered launch template
			// version; phoenix's own rollback stands in.
			summary = strings.Replace(summary, "auto rollback true", "auto rollback false (no numbered version to return to: phoenix rolls back itself)", 1)
		}
		if w := run.judgedWarmup(); w > 0 {
			prefs.InstanceWarmup = secs(w)
			summary = strings.Replace(summary, "warmup: the group's", "warmup "+w.String(), 1)
			run.s.Emit(Event{Kind: EventStep, Step: "refresh", Message: fmt.Sprintf("%q uses %s health checks, so the refresh would not wait for the load balancer: its instance warmup is raised to %s, the time the load balancer needs to judge a new target, so that a broken image is caught in the first batch",
				run.s.Target.Group, orText(aws.ToString(run.s.Group.HealthCheckType), "EC2"), w)})
		}
		id, err := run.startRefresh(ctx, run.target, prefs)
		if err != nil {
			if id := run.ownRefresh(ctx, err, run.target); id != "" {
				run.refresh = id
				return Step{Name: "refresh", Action: fmt.Sprintf("started instance refresh %s to %s (%s; the start was retried after an error, and the refresh it started is followed)", id, run.target, summary)}, nil
			}
			return Step{State: StepFailed, Name: "refresh", Message: err.Error()}, nil
		}
		run.refresh = id
		return Step{Name: "refresh", Action: fmt.Sprintf("started instance refresh %s to %s (%s)", id, run.target, summary)}, nil
	}
	raw, err := run.describeRefresh(ctx, run.refresh)
	if err != nil {
		return Step{}, err
	}
	rf := refreshOf(raw)
	// The alarms are watched by phoenix as well as by the refresh: Auto
	// Scaling stops watching them once the refresh is over, and its
	// reason does not say what the alarm measured.
	if firing, err := run.s.firingAlarm(ctx, run.r.Alarms); err != nil {
		return Step{}, err
	} else if firing != "" {
		return Step{State: StepFailed, Name: "alarm", Refresh: rf, Message: fmt.Sprintf("instance refresh %s: %s", rf.ID, firing)}, nil
	}
	switch raw.Status {
	case astypes.InstanceRefreshStatusSuccessful:
		return run.waitHealthy(ctx, "health", run.ami, fmt.Sprintf("instance refresh %s succeeded", rf.ID), rf)
	case astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled:
		return Step{State: StepFailed, Name: "refresh", Refresh: rf, Message: run.failed(ctx, fmt.Sprintf("instance refresh %s %s: %s", rf.ID, strings.ToLower(rf.Status), rf.Reason))}, nil
	case astypes.InstanceRefreshStatusRollbackSuccessful, astypes.InstanceRefreshStatusRollbackFailed, astypes.InstanceRefreshStatusRollbackInProgress:
		reason := rf.Reason
		if raw.RollbackDetails != nil && aws.ToString(raw.RollbackDetails.RollbackReason) != "" {
			reason = aws.ToString(raw.RollbackDetails.RollbackReason)
		}
		return Step{State: StepFailed, Name: "refresh", Refresh: rf, Message: run.failed(ctx, fmt.Sprintf("instance refresh %s is rolling back: %s", rf.ID, reason))}, nil
	}
	g, h, err := run.gate(ctx, run.ami)
	if err != nil {
		return Step{}, err
	}
	if len(h.Failing) > 0 {
		// Auto Scaling goes on with a group on EC2 health checks (its
		// default) whatever the load balancer says: the next batch would
		// get the broken image too.
		return Step{State: StepFailed, Name: "refresh", Refresh: rf, Health: h, Message: fmt.Sprintf("instance refresh %s: a new instance on %s failed its load balancer health checks: %s", rf.ID, run.ami, strings.Join(h.Failing, "; "))}, nil
	}
	return Step{Name: "refresh", Refresh: rf, Health: h, Progress: run.waitingOn(*g, rf)}, nil
}

// judgedWarmup is the instance warmup a refresh of a group on EC2 health
// checks needs so that the load balancer has judged each new target
// before the next batch starts, when the warmup the refresh would use is
// shorter; 0 otherwise. Such a refresh counts an instance as healthy once
// its warmup is over, whatever its target's health:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html
func (run *rollingRun) judgedWarmup() time.Duration {
	g := run.s.Group
	if aws.ToString(g.HealthCheckType) == "ELB" {
		return 0
	}
	var judge time.Duration
	for _, tg := range run.s.TargetGroups {
		judge = max(judge, tg.Judge)
	}
	warmup := time.Duration(aws.ToInt32(g.HealthCheckGracePeriod)) * time.Second
	if g.DefaultInstanceWarmup != nil {
		warmup = time.Duration(aws.ToInt32(g.DefaultInstanceWarmup)) * time.Second
	}
	if run.r.InstanceWarmup != nil {
		warmup = *run.r.InstanceWarmup
	}
	// The deploy reads the verdict up to a poll later.
	judge += run.s.d.PollInterval.Round(time.Second) + time.Second
	if judge <= 2*time.Second || warmup >= judge {
		return 0
	}
	return judge
}

// failed is a failed refresh's message, with the cause of the group's
// failed launches when there were any: Auto Scaling's refresh status
// often says only that instances failed.
func (run *rollingRun) failed(ctx context.Context, msg string) string {
	if lf, err := run.s.launchFailures(ctx, run.s.Target.Group); err == nil && lf.Count > 0 {
		return msg + "; the group's " + lf.String()
	}
	return msg
}

// RollbackStep moves the group back to the previous version by at most
// one action: RollbackInstanceRefresh while the refresh runs and Auto
// Scaling can roll it back, else cancel it and refresh back to the
// previous version.
func (run *rollingRun) RollbackStep(ctx context.Context) (Step, error) {
	if run.redeploy {
		return run.Step(ctx)
	}
	s := run.s
	if !run.back {
		run.back, run.healthy = true, time.Time{}
	}
	if run.previous == nil && run.lcAMI != "" {
		return run.lcRollbackStep(ctx)
	}
	if run.previous == nil {
		return Step{State: StepFailed, Name: "rollback", Message: fmt.Sprintf("%q had no numbered launch template version before the deploy: restore its launch configuration by hand", s.Target.Group)}, nil
	}
	back := run.previous.AMI
	if run.restore != "" {
		raw, err := run.describeRefresh(ctx, run.restore)
		if err != nil {
			return Step{}, err
		}
		rf := refreshOf(raw)
		switch raw.Status {
		case astypes.InstanceRefreshStatusSuccessful:
			return run.waitHealthy(ctx, "rollback", back, fmt.Sprintf("refreshed back to %s", run.previous), rf)
		case astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled, astypes.InstanceRefreshStatusRollbackSuccessful, astypes.InstanceRefreshStatusRollbackFailed:
			return Step{State: StepFailed, Name: "rollback", Refresh: rf, Message: fmt.Sprintf("the refresh back to %s ended %s: %s", run.previous, rf.Status, rf.Reason)}, nil
		}
		_, h, err := run.gate(ctx, back)
		if err != nil {
			return Step{}, err
		}
		return Step{Name: "rollback", Refresh: rf, Health: h}, nil
	}
	if run.refresh == "" {
		// Nothing was started: the group never left its version.
		return run.waitHealthy(ctx, "rollback", back, fmt.Sprintf("%q was not changed", s.Target.Group), nil)
	}
	raw, err := run.describeRefresh(ctx, run.refresh)
	if err != nil {
		return Step{}, err
	}
	rf := refreshOf(raw)
	switch raw.Status {
	case astypes.InstanceRefreshStatusPending, astypes.InstanceRefreshStatusInProgress, astypes.InstanceRefreshStatusBaking:
		if raw.DesiredConfiguration != nil {
			_, err := s.Clients.AutoScaling.RollbackInstanceRefresh(ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: aws.String(s.Target.Group)})
			if err == nil {
				return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("rolling back instance refresh %s to %s", rf.ID, run.previous)}, nil
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "IrreversibleInstanceRefresh" {
				return Step{}, fmt.Errorf("rolling back instance refresh %s: %w", rf.ID, err)
			}
		}
		if _, err := s.Clients.AutoScaling.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String(s.Target.Group)}); err != nil {
			return Step{}, fmt.Errorf("cancelling instance refresh %s: %w", rf.ID, err)
		}
		return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("cancelled instance refresh %s (it cannot be rolled back); the group will be refreshed back to %s", rf.ID, run.previous)}, nil
	case astypes.InstanceRefreshStatusCancelling, astypes.InstanceRefreshStatusRollbackInProgress:
		_, h, err := run.gate(ctx, back)
		if err != nil {
			return Step{}, err
		}
		return Step{Name: "rollback", Refresh: rf, Health: h}, nil
	case astypes.InstanceRefreshStatusRollbackSuccessful:
		return run.waitHealthy(ctx, "rollback", back, fmt.Sprintf("instance refresh %s rolled back to %s", rf.ID, run.previous), rf)
	case astypes.InstanceRefreshStatusRollbackFailed:
		return Step{State: StepFailed, Name: "rollback", Refresh: rf, Message: fmt.Sprintf("Auto Scaling could not roll back instance refresh %s: %s", rf.ID, rf.Reason)}, nil
	}
	// Successful, Failed or Cancelled: some instances may run the new
	// version; a refresh to the previous one replaces just those.
	return run.startRestore(ctx, rf)
}

// startRestore starts a refresh back to the previous version, skipping
// the instances already on it.
func (run *rollingRun) startRestore(ctx context.Context, rf *Refresh) (Step, error) {
	prefs := &astypes.RefreshPreferences{SkipMatching: aws.Bool(true)}
	run.r.healthyPreferences(run.s.Group, prefs)
	run.r.statesPreferences(prefs)
	if run.r.InstanceWarmup != nil {
		prefs.InstanceWarmup = secs(*run.r.InstanceWarmup)
	}
	id, err := run.startRefresh(ctx, run.previous, prefs)
	if err != nil {
		if id = run.ownRefresh(ctx, err, run.previous); id == "" {
			return Step{State: StepFailed, Name: "rollback", Refresh: rf, Message: err.Error()}, nil
		}
	}
	run.restore = id
	run.healthy = time.Time{}
	return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("started instance refresh %s back to %s (%s)", id, run.previous, run.previous.AMI)}, nil
}
