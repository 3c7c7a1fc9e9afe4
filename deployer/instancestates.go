package deployer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// The instance states users set on their groups, and the group's own
// instance maintenance policy, as a rolling deploy meets them:
//   - instances protected from scale in and instances in Standby: an
//     instance refresh started through the API waits an hour for them and
//     then fails unless told otherwise (ScaleInProtectedInstances and
//     StandbyInstances default to Wait);
//     https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html
//   - the instance maintenance policy gives a refresh the healthy
//     percentages its preferences omit.
//     https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html

// FromGroup is a healthy percentage of Rolling that is not sent, so that
// the group's instance maintenance policy (or, without one, Auto
// Scaling's default) governs.
const FromGroup = -1

// Values of the scale_in_protected_instances and standby_instances
// settings, as Auto Scaling spells them. Unset, neither is sent: Auto
// Scaling's default is Wait for both.
var (
	protectedChoices = []string{"Refresh", "Ignore", "Wait"}
	standbyChoices   = []string{"Terminate", "Ignore", "Wait"}
)

// refreshWaitLimit is how long a refresh waits for protected or standby
// instances under Wait before it fails.
const refreshWaitLimit = time.Hour

// Sources of a healthy percentage, in words.
const (
	fromAWSDefault = "Auto Scaling's default"
	fromPolicy     = "the group's instance maintenance policy"
)

// validateStates checks the settings this file adds to Rolling.
func (r *Rolling) validateStates() []error {
	var errs []error
	enum := func(setting, v string, allowed []string) {
		if v != "" && !contains(allowed, v) {
			errs = append(errs, fmt.Errorf("%s %q is not one of %s", setting, v, strings.Join(allowed, ", ")))
		}
	}
	enum("scale_in_protected_instances", r.ScaleInProtectedInstances, protectedChoices)
	enum("standby_instances", r.StandbyInstances, standbyChoices)
	return errs
}

// healthyPercentages are the minimum and maximum healthy percentages a
// refresh of g runs with, and where each comes from: the setting, the
// group's instance maintenance policy, or Auto Scaling's default (90 and
// 100).
func (r *Rolling) healthyPercentages(g astypes.AutoScalingGroup) (lo, hi int, loFrom, hiFrom string) {
	lo, hi, loFrom, hiFrom = 90, 100, fromAWSDefault, fromAWSDefault
	if mp := g.InstanceMaintenancePolicy; mp != nil && mp.MinHealthyPercentage != nil && mp.MaxHealthyPercentage != nil && aws.ToInt32(mp.MinHealthyPercentage) >= 0 {
		lo, hi = int(aws.ToInt32(mp.MinHealthyPercentage)), int(aws.ToInt32(mp.MaxHealthyPercentage))
		loFrom, hiFrom = fromPolicy, fromPolicy
	}
	if r.MinHealthyPercentage != FromGroup {
		lo, loFrom = r.MinHealthyPercentage, "min_healthy_percentage"
	}
	if r.MaxHealthyPercentage != FromGroup {
		hi, hiFrom = r.MaxHealthyPercentage, "max_healthy_percentage"
	}
	return lo, hi, loFrom, hiFrom
}

// checkHealthy refuses a setting that, with the percentage the group's
// policy gives the other, Auto Scaling would refuse: the two may be at
// most 100 apart.
func (r *Rolling) checkHealthy(s *Session) error {
	lo, hi, loFrom, hiFrom := r.healthyPercentages(s.Group)
	if hi-lo <= 100 {
		return nil
	}
	return refuse("max healthy %d%% (%s) and min healthy %d%% (%s) of %q are more than 100 apart, which Auto Scaling refuses: set min_healthy_percentage and max_healthy_percentage together",
		hi, hiFrom, lo, loFrom, s.Target.Group)
}

// healthyPreferences puts the percentages the user set into p. One that
// was not set is not sent, so the group's policy governs, except the
// minimum when the maximum is sent: Auto Scaling requires it then, and
// gets the value it would have used.
func (r *Rolling) healthyPreferences(g astypes.AutoScalingGroup, p *astypes.RefreshPreferences) {
	lo, _, _, _ := r.healthyPercentages(g)
	if r.MinHealthyPercentage != FromGroup || r.MaxHealthyPercentage != FromGroup {
		p.MinHealthyPercentage = aws.Int32(int32(lo))
	}
	if r.MaxHealthyPercentage != FromGroup {
		p.MaxHealthyPercentage = aws.Int32(int32(r.MaxHealthyPercentage))
	}
}

// statesPreferences sends the two settings when set.
func (r *Rolling) statesPreferences(p *astypes.RefreshPreferences) {
	if r.ScaleInProtectedInstances != "" {
		p.ScaleInProtectedInstances = astypes.ScaleInProtectedInstances(r.ScaleInProtectedInstances)
	}
	if r.StandbyInstances != "" {
		p.StandbyInstances = astypes.StandbyInstances(r.StandbyInstances)
	}
}

// healthySummary is the percentages in words, each with its source
// unless the user set it.
func (r *Rolling) healthySummary(g astypes.AutoScalingGroup) string {
	lo, hi, loFrom, hiFrom := r.healthyPercentages(g)
	part := func(name string, v int, from, setting string) string {
		if from == setting {
			return fmt.Sprintf("%s %d%%", name, v)
		}
		return fmt.Sprintf("%s %d%% (%s)", name, v, from)
	}
	return part("min healthy", lo, loFrom, "min_healthy_percentage") + ", " + part("max healthy", hi, hiFrom, "max_healthy_percentage")
}

// InstanceStates are a group's instances that a user took out of Auto
// Scaling's hands: protected from scale in, or in Standby.
type InstanceStates struct {
	Protected []string `json:"protected_from_scale_in,omitempty"`
	Standby   []string `json:"standby,omitempty"`
	// Hooks are the instances a lifecycle hook holds.
	Hooks []HookWait `json:"lifecycle_hooks,omitempty"`
}

// HookWait is an instance a lifecycle hook holds in Pending:Wait or
// Terminating:Wait.
type HookWait struct {
	Group    string `json:"group"`
	Instance string `json:"instance"`
	State    string `json:"state"`
	// Waited is how long since the launch or termination that brought
	// the instance there began (its scaling activity's start); 0 when
	// Auto Scaling lists no such activity.
	Waited time.Duration `json:"waited_ns"`
	// Hooks are the group's hooks of that transition, in words.
	Hooks []string `json:"hooks"`
}

func (w HookWait) String() string {
	since := ""
	if w.Waited > 0 {
		what := "launch"
		if strings.HasPrefix(w.State, "Terminating") {
			what = "termination"
		}
		since = fmt.Sprintf(" for %s (since its %s began)", w.Waited.Round(time.Second), what)
	}
	return fmt.Sprintf("%s in %s%s, hook %s", w.Instance, w.State, since, strings.Join(w.Hooks, ", "))
}

// Empty reports whether there are none.
func (st InstanceStates) Empty() bool {
	return len(st.Protected) == 0 && len(st.Standby) == 0 && len(st.Hooks) == 0
}

// String is the states in words, "" when there are none.
func (st InstanceStates) String() string {
	var parts []string
	if n := len(st.Protected); n > 0 {
		parts = append(parts, fmt.Sprintf("%s protected from scale in (%s)", counted(n, "instance"), strings.Join(st.Protected, ", ")))
	}
	if n := len(st.Standby); n > 0 {
		parts = append(parts, fmt.Sprintf("%s in Standby (%s)", counted(n, "instance"), strings.Join(st.Standby, ", ")))
	}
	for _, w := range st.Hooks {
		parts = append(parts, w.String())
	}
	return strings.Join(parts, "; ")
}

// readHookWaits finds the instances of groups that a lifecycle hook
// holds, with the group's hooks of that transition and how long since
// the activity that brought each there began. It reads only groups with
// such instances: one DescribeLifecycleHooks and one
// DescribeScalingActivities each.
func (s *Session) readHookWaits(ctx context.Context, groups []astypes.AutoScalingGroup) ([]HookWait, error) {
	var out []HookWait
	for _, g := range groups {
		var waiting []astypes.Instance
		for _, in := range g.Instances {
			if in.LifecycleState == astypes.LifecycleStatePendingWait || in.LifecycleState == astypes.LifecycleStateTerminatingWait {
				waiting = append(waiting, in)
			}
		}
		if len(waiting) == 0 {
			continue
		}
		name := aws.ToString(g.AutoScalingGroupName)
		hooks, err := s.Clients.AutoScaling.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describing the lifecycle hooks of %q: %w", name, err)
		}
		acts, err := s.Clients.AutoScaling.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describing the scaling activities of %q: %w", name, err)
		}
		for _, in := range waiting {
			id := aws.ToString(in.InstanceId)
			w := HookWait{Group: name, Instance: id, State: string(in.LifecycleState)}
			transition, verb := "autoscaling:EC2_INSTANCE_LAUNCHING", "Launching"
			if in.LifecycleState == astypes.LifecycleStateTerminatingWait {
				transition, verb = "autoscaling:EC2_INSTANCE_TERMINATING", "Terminating"
			}
			for _, h := range hooks.LifecycleHooks {
				if aws.ToString(h.LifecycleTransition) == transition {
					w.Hooks = append(w.Hooks, fmt.Sprintf("%s (heartbeat timeout %s, default result %s)", aws.ToString(h.LifecycleHookName),
						time.Duration(aws.ToInt32(h.HeartbeatTimeout))*time.Second, aws.ToString(h.DefaultResult)))
				}
			}
			for _, a := range acts.Activities {
				d := aws.ToString(a.Description)
				if strings.HasPrefix(d, verb) && strings.Contains(d, id) && a.StartTime != nil {
					w.Waited = s.Now().Sub(*a.StartTime)
					break
				}
			}
			out = append(out, w)
		}
	}
	return out, nil
}

func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// instanceStates reads them from groups, leaving out the instances skip
// names (nil: none).
func (s *Session) instanceStates(groups []astypes.AutoScalingGroup, skip func(id string) bool) InstanceStates {
	var st InstanceStates
	for _, g := range groups {
		for _, in := range g.Instances {
			id := aws.ToString(in.InstanceId)
			if skip != nil && skip(id) {
				continue
			}
			switch in.LifecycleState {
			case astypes.LifecycleStateStandby, astypes.LifecycleStateEnteringStandby:
				st.Standby = append(st.Standby, id)
			case astypes.LifecycleStateTerminating, astypes.LifecycleStateTerminatingWait, astypes.LifecycleStateTerminatingProceed, astypes.LifecycleStateTerminated:
			default:
				if aws.ToBool(in.ProtectedFromScaleIn) {
					st.Protected = append(st.Protected, id)
				}
			}
		}
	}
	sort.Strings(st.Protected)
	sort.Strings(st.Standby)
	return st
}

// statesChanges is what a rolling deploy's refresh will do with the
// group's protected and standby instances, for the plan.
func (r *Rolling) statesChanges(st InstanceStates) []Change {
	var ch []Change
	if n := len(st.Protected); n > 0 {
		what := counted(n, "instance") + " protected from scale in (" + strings.Join(st.Protected, ", ") + ")"
		switch r.ScaleInProtectedInstances {
		case "Refresh":
			ch = append(ch, Change{Action: "replace", Detail: what + " too (scale_in_protected_instances = Refresh)"})
		case "Ignore":
			ch = append(ch, Change{Action: "keep", Detail: what + " on the old image; the health gate leaves them out (scale_in_protected_instances = Ignore)"})
		default:
			ch = append(ch, Change{Action: "wait", Detail: fmt.Sprintf("for the protection of %s to be removed: the refresh waits up to %s, then fails and the deploy rolls back (scale_in_protected_instances %s; Refresh replaces them, Ignore leaves them on the old image)", what, refreshWaitLimit, waitSource(r.ScaleInProtectedInstances))})
		}
	}
	if n := len(st.Standby); n > 0 {
		what := counted(n, "instance") + " in Standby (" + strings.Join(st.Standby, ", ") + ")"
		switch r.StandbyInstances {
		case "Terminate":
			ch = append(ch, Change{Action: "terminate", Detail: what + " (standby_instances = Terminate)"})
		case "Ignore":
			ch = append(ch, Change{Action: "keep", Detail: what + " on the old image (standby_instances = Ignore): they run it again when they leave Standby"})
		default:
			ch = append(ch, Change{Action: "wait", Detail: fmt.Sprintf("for %s to return to service: the refresh waits up to %s, then fails and the deploy rolls back (standby_instances %s; Terminate terminates them, Ignore leaves them on the old image)", what, refreshWaitLimit, waitSource(r.StandbyInstances))})
		}
	}
	return ch
}

func waitSource(v string) string {
	if v == "" {
		return "unset: Auto Scaling's default, Wait"
	}
	return "= " + v
}

// waitingOn is, on a pass of a running refresh, what the refresh waits
// for among the group's protected and standby instances still on the
// old image, with how long it has waited and how long it may: "" when
// nothing.
func (run *rollingRun) waitingOn(g astypes.AutoScalingGroup, rf *Refresh) string {
	s := run.s
	st := s.instanceStates([]astypes.AutoScalingGroup{g}, func(id string) bool { return s.gate.images[id] == run.ami })
	var parts []string
	if len(st.Protected) > 0 && (run.r.ScaleInProtectedInstances == "" || run.r.ScaleInProtectedInstances == "Wait") {
		parts = append(parts, fmt.Sprintf("the scale-in protection of %s to be removed", strings.Join(st.Protected, ", ")))
	}
	if len(st.Standby) > 0 && (run.r.StandbyInstances == "" || run.r.StandbyInstances == "Wait") {
		parts = append(parts, fmt.Sprintf("%s to leave Standby", strings.Join(st.Standby, ", ")))
	}
	var hooks []string
	for _, in := range g.Instances {
		if in.LifecycleState == astypes.LifecycleStatePendingWait || in.LifecycleState == astypes.LifecycleStateTerminatingWait {
			hooks = append(hooks, fmt.Sprintf("%s in %s", aws.ToString(in.InstanceId), in.LifecycleState))
		}
	}
	held := ""
	if len(hooks) > 0 {
		held = "lifecycle hooks hold " + strings.Join(hooks, ", ")
	}
	if len(parts) == 0 {
		return held
	}
	waited := s.Now().Sub(rf.Started).Round(time.Second)
	msg := fmt.Sprintf("the refresh waits for %s (%s so far; Auto Scaling fails it after %s: scale_in_protected_instances / standby_instances choose otherwise)", strings.Join(parts, " and "), waited, refreshWaitLimit)
	if held != "" {
		msg += "; " + held
	}
	return msg
}

// exempt are the instances a rolling deploy leaves on the old image
// because the user said so (Ignore): the health gate does not wait for
// them to run the new one.
func (run *rollingRun) exempt(g astypes.AutoScalingGroup) map[string]string {
	out := map[string]string{}
	st := run.s.instanceStates([]astypes.AutoScalingGroup{g}, nil)
	if run.r.ScaleInProtectedInstances == "Ignore" {
		for _, id := range st.Protected {
			out[id] = "protected from scale in, kept by scale_in_protected_instances = Ignore"
		}
	}
	for _, id := range st.Standby {
		out[id] = "in Standby"
	}
	return out
}

// keptOld lists the exempt instances still on another image than ami,
// with why, for the deploy's last word.
func (run *rollingRun) keptOld(ami string) string {
	var out []string
	for id, why := range run.s.gate.exempt {
		if img, ok := run.s.gate.images[id]; ok && img != ami {
			out = append(out, fmt.Sprintf("%s on %s (%s)", id, img, why))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Blue-green: Auto Scaling's scale-in leaves protected instances and
// instances in Standby alone, also at a desired capacity of 0.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html

// idleStates refuses a blue-green deploy whose idle colour holds
// instances on another image than ami that its scale to 0 cannot
// remove: protected ones would take traffic on their old image next to
// the new ones, standby ones would rejoin on it.
func (s *Session) idleStates(ctx context.Context, idle *colour, ami string) error {
	var ids []string
	for _, in := range idle.Group.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if err := s.gate.learnImages(ctx, ids); err != nil {
		return err
	}
	st := s.instanceStates([]astypes.AutoScalingGroup{idle.Group}, func(id string) bool { return s.gate.images[id] == ami })
	if st.Empty() {
		return nil
	}
	var fix []string
	if len(st.Protected) > 0 {
		fix = append(fix, fmt.Sprintf("aws autoscaling set-instance-protection --auto-scaling-group-name %s --no-protected-from-scale-in --instance-ids %s", idle.group(), strings.Join(st.Protected, " ")))
	}
	if len(st.Standby) > 0 {
		fix = append(fix, fmt.Sprintf("aws autoscaling terminate-instance-in-auto-scaling-group --should-decrement-desired-capacity --instance-id ID (for each of %s)", strings.Join(st.Standby, ", ")))
	}
	return refuse("the idle colour %s holds %s on an old image, which scaling it to 0 does not remove (Auto Scaling's scale-in skips them) and which would serve next to the new instances: release them first, e.g. %s",
		idle.label(), st, strings.Join(fix, "; "))
}

// strandedChanges is the plan's line for the live colour's protected and
// standby instances, which its scale to 0 after the switch leaves.
func (s *Session) strandedChanges(live *colour) []Change {
	st := s.instanceStates([]astypes.AutoScalingGroup{live.Group}, nil)
	if st.Empty() {
		return nil
	}
	return []Change{{Action: "keep", Detail: fmt.Sprintf("%s in %s after its scale to 0: Auto Scaling's scale-in skips them; they keep running until released, and the next deploy refuses while they are there", st, live.label())}}
}

// strandedNote says which instances the old colour keeps after its scale
// to 0, "" when none.
func (s *Session) strandedNote(old *colour) string {
	st := s.instanceStates([]astypes.AutoScalingGroup{old.Group}, nil)
	if st.Empty() {
		return ""
	}
	return fmt.Sprintf("; %s keeps %s: Auto Scaling's scale-in skips them, so they keep running (and cost) until released, and the next deploy refuses while they are there", old.label(), st)
}

// WarmPoolStatus is a group's warm pool: its instances by state and the
// AMIs they run. A scale-out takes these instances before it launches new
// ones, so they must run the image the group is meant to run.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html
type WarmPoolStatus struct {
	Group     string         `json:"group"`
	PoolState string         `json:"pool_state"`
	States    map[string]int `json:"states"`
	AMIs      []AMIUse       `json:"amis"`
}

func (w WarmPoolStatus) String() string {
	var states []string
	for st, n := range w.States {
		states = append(states, fmt.Sprintf("%d %s", n, st))
	}
	sort.Strings(states)
	if len(states) == 0 {
		states = []string{"no instances"}
	}
	return fmt.Sprintf("%s (%s): %s; AMIs: %s", w.Group, w.PoolState, strings.Join(states, ", "), amiUses(w.AMIs))
}

func amiUses(uses []AMIUse) string {
	if len(uses) == 0 {
		return "none"
	}
	var parts []string
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s (%d)", u.AMI, u.Instances))
	}
	return strings.Join(parts, ", ")
}

// readWarmPool reads group's warm pool; nil when it has none.
func (s *Session) readWarmPool(ctx context.Context, group string) (*WarmPoolStatus, error) {
	out, err := s.Clients.AutoScaling.DescribeWarmPool(ctx, &autoscaling.DescribeWarmPoolInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		return nil, fmt.Errorf("describing the warm pool of %q: %w", group, err)
	}
	if out.WarmPoolConfiguration == nil && len(out.Instances) == 0 {
		return nil, nil
	}
	w := &WarmPoolStatus{Group: group, States: map[string]int{}}
	if c := out.WarmPoolConfiguration; c != nil {
		w.PoolState = string(c.PoolState)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
		w.States[string(in.LifecycleState)]++
	}
	if err := s.gate.learnImages(ctx, ids); err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, id := range ids {
		count[s.gate.images[id]]++
	}
	for ami, n := range count {
		w.AMIs = append(w.AMIs, AMIUse{AMI: ami, Instances: n})
	}
	sort.Slice(w.AMIs, func(i, j int) bool { return w.AMIs[i].AMI < w.AMIs[j].AMI })
	return w, nil
}

// readWarmPools reads the warm pools of groups.
func (s *Session) readWarmPools(ctx context.Context, groups []astypes.AutoScalingGroup) ([]WarmPoolStatus, error) {
	var out []WarmPoolStatus
	for _, g := range groups {
		w, err := s.readWarmPool(ctx, aws.ToString(g.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		if w != nil {
			out = append(out, *w)
		}
	}
	return out, nil
}
