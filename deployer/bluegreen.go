package deployer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// BlueGreen keeps the live colour whole while the idle colour comes up on
// the new AMI: two Auto Scaling groups, each with its target group, behind
// one listener rule (or a listener's default action) that forwards to
// both. The live colour is the one the rule's weights send traffic to; it
// is read from the rule on every pass, never remembered.
//
// A deploy gives the idle colour a new launch template version with the
// AMI, scales it to the live colour's capacity with its minimum pinned
// there (so that a scale-in cannot race the switch), waits until the load
// balancer finds every idle target healthy (its target group stays in the
// rule at weight 0, so it is health-checked), then moves the traffic in
// Steps, baking after each while health is watched. On success the old
// colour scales to zero, or is kept warm for KeepOldFor by a scheduled
// action; on failure or Ctrl-C the traffic returns to the old colour at
// once and the idle colour scales back to zero. The pin is a tag as well
// as a minimum, so that every later run, status and test can see it, and
// it is removed in every outcome.
type BlueGreen struct {
	// Steps are the percentages of traffic the new colour gets, one after
	// another, ascending and ending with 100; [100] moves it at once.
	Steps []int
	// BakeTime is how long each step holds while the new colour's health
	// is watched.
	BakeTime time.Duration
	// KeepOldFor keeps the old colour running at weight 0 for this long
	// after a switch, for an instant rollback; 0 scales it to zero at once.
	KeepOldFor time.Duration
	// ReturnHome ends every deploy on blue (the target's asg): once the
	// new AMI has passed the gate on green, blue comes up on it, takes the
	// traffic back in one move, and green returns to the capacity it had,
	// so that the groups and the rule end as the infrastructure code set
	// them (docs/terraform.md).
	ReturnHome bool
	// Alarms are CloudWatch alarm names watched during every step's bake
	// and after the switch; one in ALARM rolls the deploy back.
	Alarms []string
	// Judge, when set, compares the new colour with the old one during
	// each step that splits the traffic (gates.go).
	Judge *Judge
}

// PinTag marks a group whose minimum phoenix raised to the live colour's
// capacity for a switch; its value says by which deploy.
const PinTag = "phoenix:pin"

// ScaleInAction is the scheduled action that scales a warm old colour to
// zero once keep_old_for has passed.
const ScaleInAction = "phoenix-scale-in"

// maxKeepOldFor bounds keep_old_for: a warm colour doubles the bill.
const maxKeepOldFor = 7 * 24 * time.Hour

// Name is "blue-green".
func (b *BlueGreen) Name() string { return "blue-green" }

// Validate reports every option out of range, naming each setting.
func (b *BlueGreen) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, checkPercentages("steps", b.Steps, "a switch that stops below 100 leaves traffic split between the colours")...)
	if len(b.Steps) > 10 {
		bad("steps: %d steps, at most 10", len(b.Steps))
	}
	if b.BakeTime < 0 || b.BakeTime > maxSeconds*time.Second {
		bad("bake_time %s must be between 0s and 48h", b.BakeTime)
	}
	if b.KeepOldFor < 0 || b.KeepOldFor > maxKeepOldFor {
		bad("keep_old_for %s must be between 0s and 168h", b.KeepOldFor)
	} else if b.KeepOldFor > 0 && b.ReturnHome {
		bad("keep_old_for %s: with return_home both colours end on the new AMI, so there is no old colour to keep warm; leave keep_old_for out (phoenix rollback then deploys the previous AMI)", b.KeepOldFor)
	}
	errs = append(errs, validateAlarms(b.Alarms)...)
	if b.Judge != nil {
		errs = append(errs, b.Judge.validate()...)
		if st := b.steps(); len(st) > 0 && st[0] == 100 {
			bad("judge: steps %v move all traffic at once, so there is no step where both colours serve to compare; set steps such as [10, 50, 100]", st)
		}
	}
	return errs
}

func (b *BlueGreen) steps() []int {
	if len(b.Steps) == 0 {
		return []int{100}
	}
	return b.Steps
}

// summary is the switch in words.
func (b *BlueGreen) summary() string {
	st := make([]string, len(b.steps()))
	for i, s := range b.steps() {
		st[i] = strconv.Itoa(s) + "%"
	}
	parts := []string{"steps " + strings.Join(st, ",")}
	if b.BakeTime > 0 {
		parts = append(parts, "bake "+b.BakeTime.String()+" each")
	}
	switch {
	case b.ReturnHome:
		parts = append(parts, "then back to blue")
	case b.KeepOldFor > 0:
		parts = append(parts, "old colour kept warm for "+b.KeepOldFor.String())
	default:
		parts = append(parts, "old colour scaled to zero")
	}
	return strings.Join(parts, ", ")
}

// colour is one of the two groups as read on one pass.
type colour struct {
	Name   string // "blue" (the target's asg) or "green" (its peer_asg)
	Group  astypes.AutoScalingGroup
	TG     TargetGroup
	Weight int32
	// Template is the group's launch template version, resolved to its
	// number; nil when the group has none.
	Template *TemplateVersion
	// Pin is the group's PinTag value, "" when it is not pinned.
	Pin string
}

func (c *colour) group() string { return aws.ToString(c.Group.AutoScalingGroupName) }
func (c *colour) desired() int  { return int(aws.ToInt32(c.Group.DesiredCapacity)) }
func (c *colour) ami() string {
	if c.Template == nil {
		return ""
	}
	return c.Template.AMI
}

// label is "green (web-green)".
func (c *colour) label() string { return fmt.Sprintf("%s (%s)", c.Name, c.group()) }

// traffic is the rule (or listener default action) that splits traffic
// between the colours.
type traffic struct {
	actions []elbtypes.Action
	fwd     int // index of the forward action in actions
}

// bgState is the target as read on one pass.
type bgState struct {
	traffic traffic
	colours [2]*colour
}

// share is c's percentage of the traffic.
func (st *bgState) share(c *colour) int {
	total := st.colours[0].Weight + st.colours[1].Weight
	if total == 0 {
		return 0
	}
	return int(c.Weight * 100 / total)
}

func (st *bgState) other(c *colour) *colour {
	if st.colours[0] == c {
		return st.colours[1]
	}
	return st.colours[0]
}

func (st *bgState) byName(name string) *colour {
	if st.colours[0].Name == name {
		return st.colours[0]
	}
	return st.colours[1]
}

// ruleName names where the weights live, for messages.
func (s *Session) ruleName() string {
	if s.Target.RuleARN != "" {
		return "listener rule " + s.Target.RuleARN
	}
	return "the default action of listener " + s.Target.ListenerARN
}

// readBlueGreen reads both groups, their launch template versions and
// pins, and the rule's weights: three or four reads a pass.
func (s *Session) readBlueGreen(ctx context.Context) (*bgState, error) {
	t := s.Target
	if t.PeerGroup == "" || t.ListenerARN == "" {
		return nil, refuse("blue-green needs the target's peer_asg (the second colour's Auto Scaling group) and listener (the ARN of the listener whose rule or default action forwards to both colours)")
	}
	if t.PeerGroup == t.Group {
		return nil, refuse("peer_asg %q is the target's asg: blue-green needs two different groups", t.PeerGroup)
	}
	out, err := s.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{t.Group, t.PeerGroup}})
	if err != nil {
		return nil, fmt.Errorf("describing auto scaling groups %q and %q: %w", t.Group, t.PeerGroup, err)
	}
	st := &bgState{}
	for i, name := range []string{t.Group, t.PeerGroup} {
		c := &colour{Name: [2]string{"blue", "green"}[i]}
		found := false
		for _, g := range out.AutoScalingGroups {
			if aws.ToString(g.AutoScalingGroupName) == name {
				c.Group, found = g, true
			}
		}
		if !found {
			setting := [2]string{"asg", "peer_asg"}[i]
			return nil, refuse("auto scaling group %q (the target's %s) not found in %s", name, setting, t.Region)
		}
		if err := checkMixed(c.Group); err != nil {
			return nil, err
		}
		if lt := groupTemplate(c.Group); lt != nil {
			ver := aws.ToString(lt.Version)
			if ver == "" {
				ver = "$Default"
			}
			if c.Template, err = s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), ver); err != nil {
				return nil, err
			}
		} else {
			return nil, refuse("auto scaling group %q has no launch template: blue-green gives the idle colour a new launch template version, so both colours need one", name)
		}
		if c.Template != nil && c.Template.Alias != "" {
			if p := parseAlias(c.Template.Alias); p.Selector != "" && p.label() == "" {
				return nil, refuse("%s launches from %s, whose image %s pins version %s of the SSM parameter: a deploy moves the parameter, so the launch template must name it without a version or with a label", c.label(), c.Template, c.Template.Alias, p.Selector)
			}
		}
		for _, tag := range c.Group.Tags {
			if aws.ToString(tag.Key) == PinTag {
				c.Pin = aws.ToString(tag.Value)
			}
		}
		st.colours[i] = c
	}
	if st.traffic, err = s.readTraffic(ctx); err != nil {
		return nil, err
	}
	weights := map[string]int32{}
	for _, tg := range st.traffic.forward().TargetGroups {
		weights[aws.ToString(tg.TargetGroupArn)] = aws.ToInt32(tg.Weight)
	}
	if err := s.colourTargetGroups(ctx, st, weights); err != nil {
		return nil, err
	}
	return st, nil
}

// colourTargetGroups finds each colour's target group: the one of the
// group's target groups the rule forwards to. It names the target groups
// once per session.
func (s *Session) colourTargetGroups(ctx context.Context, st *bgState, weights map[string]int32) error {
	if s.bgTGs == nil {
		s.bgTGs = map[string]TargetGroup{}
		var arns []string
		for arn := range weights {
			arns = append(arns, arn)
		}
		out, err := s.Clients.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: arns})
		if err != nil {
			return fmt.Errorf("describing the target groups of %s: %w", s.ruleName(), err)
		}
		for _, tg := range out.TargetGroups {
			arn := aws.ToString(tg.TargetGroupArn)
			s.bgTGs[arn] = TargetGroup{ARN: arn, Name: aws.ToString(tg.TargetGroupName), LoadBalancers: tg.LoadBalancerArns}
		}
	}
	for _, c := range st.colours {
		var own []string
		arns := append([]string(nil), c.Group.TargetGroupARNs...)
		for _, ts := range c.Group.TrafficSources {
			if id := aws.ToString(ts.Identifier); strings.Contains(id, ":targetgroup/") && !contains(arns, id) {
				arns = append(arns, id)
			}
		}
		for _, arn := range arns {
			if _, ok := weights[arn]; ok {
				own = append(own, arn)
			}
		}
		switch len(own) {
		case 0:
			return refuse("none of the target groups of %s is forwarded to by %s: attach the colour's target group to its group and forward to it from the rule (a weight of 0 is enough: the load balancer then health-checks it)", c.label(), s.ruleName())
		case 1:
		default:
			return refuse("%s has %d target groups the rule forwards to (%s): blue-green needs exactly one per colour", c.label(), len(own), strings.Join(own, ", "))
		}
		c.TG, c.Weight = s.bgTGs[own[0]], weights[own[0]]
		if c.TG.ARN == "" {
			c.TG = TargetGroup{ARN: own[0], Name: own[0]}
		}
	}
	if st.colours[0].TG.ARN == st.colours[1].TG.ARN {
		return refuse("%s and %s share target group %s: blue-green needs one target group per colour", st.colours[0].label(), st.colours[1].label(), st.colours[0].TG.Name)
	}
	for arn, w := range weights {
		if w > 0 && arn != st.colours[0].TG.ARN && arn != st.colours[1].TG.ARN {
			return refuse("%s also sends traffic (weight %d) to target group %s, which belongs to neither colour: phoenix would not know where that traffic goes after a switch", s.ruleName(), w, arn)
		}
	}
	return nil
}

func (tr traffic) forward() *elbtypes.ForwardActionConfig { return tr.actions[tr.fwd].ForwardConfig }

// readTraffic reads the rule's (or listener default action's) actions and
// finds the forward among them.
func (s *Session) readTraffic(ctx context.Context) (traffic, error) {
	var actions []elbtypes.Action
	if s.Target.RuleARN != "" {
		out, err := s.Clients.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{s.Target.RuleARN}})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "RuleNotFound" || err == nil && len(out.Rules) == 0 {
			return traffic{}, refuse("listener rule %s (the target's rule) not found in %s", s.Target.RuleARN, s.Target.Region)
		}
		if err != nil {
			return traffic{}, fmt.Errorf("describing %s: %w", s.ruleName(), err)
		}
		actions = out.Rules[0].Actions
	} else {
		out, err := s.Clients.ELB.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{s.Target.ListenerARN}})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ListenerNotFound" || err == nil && len(out.Listeners) == 0 {
			return traffic{}, refuse("listener %s (the target's listener) not found in %s", s.Target.ListenerARN, s.Target.Region)
		}
		if err != nil {
			return traffic{}, fmt.Errorf("describing %s: %w", s.ruleName(), err)
		}
		actions = out.Listeners[0].DefaultActions
	}
	tr := traffic{fwd: -1}
	for i, a := range actions {
		if a.Type != elbtypes.ActionTypeEnumForward {
			continue
		}
		fc := &elbtypes.ForwardActionConfig{}
		if a.ForwardConfig != nil {
			*fc = *a.ForwardConfig
			fc.TargetGroups = append([]elbtypes.TargetGroupTuple(nil), a.ForwardConfig.TargetGroups...)
		}
		if len(fc.TargetGroups) == 0 && a.TargetGroupArn != nil {
			fc.TargetGroups = []elbtypes.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn, Weight: aws.Int32(1)}}
		}
		for j := range fc.TargetGroups {
			if fc.TargetGroups[j].Weight == nil {
				fc.TargetGroups[j].Weight = aws.Int32(1)
			}
		}
		a.ForwardConfig, a.TargetGroupArn = fc, nil
		actions[i] = a
		tr.fwd = i
	}
	if tr.fwd < 0 {
		return traffic{}, refuse("%s does not forward: blue-green moves traffic by the weights of a forward action to both colours' target groups", s.ruleName())
	}
	tr.actions = actions
	return tr, nil
}

// setWeights writes the forward's weights: share percent to to, the rest
// to from, in one call; every other part of the rule stays as it was.
func (s *Session) setWeights(ctx context.Context, st *bgState, to *colour, share int) error {
	from := st.other(to)
	actions := make([]elbtypes.Action, len(st.traffic.actions))
	copy(actions, st.traffic.actions)
	fc := *st.traffic.forward()
	fc.TargetGroups = nil
	for _, tg := range st.traffic.forward().TargetGroups {
		arn := aws.ToString(tg.TargetGroupArn)
		switch arn {
		case to.TG.ARN:
			tg.Weight = aws.Int32(int32(share))
		case from.TG.ARN:
			tg.Weight = aws.Int32(int32(100 - share))
		}
		fc.TargetGroups = append(fc.TargetGroups, tg)
	}
	actions[st.traffic.fwd].ForwardConfig = &fc
	keepClientSecrets(actions)
	for i := range actions {
		// Order is only allowed when there are several actions.
		if len(actions) == 1 {
			actions[i].Order = nil
		}
	}
	var err error
	if s.Target.RuleARN != "" {
		_, err = s.Clients.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(s.Target.RuleARN), Actions: actions})
	} else {
		_, err = s.Clients.ELB.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(s.Target.ListenerARN), DefaultActions: actions})
	}
	if err != nil {
		return fmt.Errorf("setting the weights of %s to %s %d%%, %s %d%%: %w", s.ruleName(), to.Name, share, from.Name, 100-share, err)
	}
	to.Weight, from.Weight = int32(share), int32(100-share)
	st.traffic.actions = actions
	s.weightsAt = s.Now()
	return nil
}

// readLive reads the target and says which colour is live and which idle.
func (s *Session) readLive(ctx context.Context) (st *bgState, live, idle *colour, split bool, err error) {
	if st, err = s.readBlueGreen(ctx); err != nil {
		return nil, nil, nil, false, err
	}
	if live, split, err = s.liveColour(st); err != nil {
		return nil, nil, nil, false, err
	}
	return st, live, st.other(live), split, nil
}

// liveColour says which colour serves: the only one with weight, or, when
// a switch was cut short and both have some, the one without a pin (a
// switch pins the colour it moves traffic to until it is done).
func (s *Session) liveColour(st *bgState) (live *colour, split bool, err error) {
	b, g := st.colours[0], st.colours[1]
	switch {
	case b.Weight > 0 && g.Weight == 0:
		return b, false, nil
	case g.Weight > 0 && b.Weight == 0:
		return g, false, nil
	case b.Weight == 0 && g.Weight == 0:
		return nil, false, refuse("%s sends no traffic to either colour (%s and %s both have weight 0): give the live colour its weight back first", s.ruleName(), b.TG.Name, g.TG.Name)
	}
	switch {
	case b.Pin != "" && g.Pin == "":
		return g, true, nil
	case g.Pin != "" && b.Pin == "":
		return b, true, nil
	}
	return nil, true, refuse("%s splits traffic between blue (%d%%) and green (%d%%) and phoenix cannot tell which colour a switch was moving to: set the weights by hand", s.ruleName(), st.share(b), st.share(g))
}

// bgRun is one blue-green deploy or rollback in flight. It remembers
// which colour it moves to and what it made; the rest is read each pass.
type bgRun struct {
	b *BlueGreen
	s *Session

	ami      string
	oldName  string           // the colour serving when the deploy began
	newName  string           // the colour the deploy moves to
	version  *TemplateVersion // the new colour's version with ami
	previous *TemplateVersion // the old colour's version
	capacity int              // the old colour's desired capacity

	noop      bool      // the live colour already runs ami
	warm      bool      // rollback to a warm colour: traffic moves back at once
	scaledAt  time.Time // when the new colour was scaled up: health_timeout runs from here
	bakeStart time.Time // when the current step began
	bakeStep  int       // the share the bake is for
	finished  bool      // traffic has moved and the new colour is unpinned
	scheduled string    // a scale-in scheduled on the new colour to delete first

	// With return_home: start is each colour's capacity when the deploy
	// began (nil when it began away from blue); homeward is set once the
	// AMI has passed the gate on green and the run goes back to blue,
	// whose version then is version; outVersion is green's.
	start      map[string]capacity
	homeward   bool
	homeFailed bool // the way back to blue failed: the AMI stays live on green
	outVersion *TemplateVersion
	// stickyHeld: a warm rollback scheduled the scale-in of the colour
	// that lost the traffic, for its sticky clients.
	stickyHeld bool
	// pool is the new colour's warm pool, refreshed before it scales up.
	pool warmPoolRun
	// verdict is the judge's last verdict on the current step.
	verdict *Verdict
}

// capacity is a group's minimum, maximum and desired capacity.
type capacity struct{ min, max, desired int32 }

func capacityOf(c *colour) capacity {
	return capacity{aws.ToInt32(c.Group.MinSize), aws.ToInt32(c.Group.MaxSize), aws.ToInt32(c.Group.DesiredCapacity)}
}

// home is the colour return_home ends on.
const home = "blue"

// steps and bakeTime are the switch's: the way back to blue moves all
// traffic at once, without a bake, as the AMI has passed the gate.
func (run *bgRun) steps() []int {
	if run.homeward {
		return []int{100}
	}
	return run.b.steps()
}

func (run *bgRun) bakeTime() time.Duration {
	if run.homeward {
		return 0
	}
	return run.b.BakeTime
}

// Begin prepares a blue-green deploy.
func (b *BlueGreen) Begin(ctx context.Context, s *Session) (Execution, error) {
	st, live, idle, split, err := s.readLive(ctx)
	if err != nil {
		return nil, err
	}
	run := &bgRun{b: b, s: s, ami: s.AMI.ID, oldName: live.Name, newName: idle.Name, previous: live.Template, capacity: live.desired()}
	if split && idle.ami() != s.AMI.ID {
		return nil, refuse("%s splits traffic: %s %d%%, %s %d%% (a switch to %s, pinned by %s, was cut short): run phoenix rollback to return all traffic to %s, or deploy %s again to finish the switch",
			s.ruleName(), live.label(), st.share(live), idle.label(), st.share(idle), idle.ami(), idle.Pin, live.Name, idle.ami())
	}
	if sticky := st.stickiness(); b.ReturnHome && sticky > 0 {
		return nil, refuse("return_home with target group stickiness (%s) in %s: blue would have to empty for the way back while its sticky clients are still sent to it; turn stickiness off or deploy without return_home", sticky, s.ruleName())
	}
	if b.ReturnHome && live.Name == home {
		run.start = map[string]capacity{live.Name: capacityOf(live), idle.Name: capacityOf(idle)}
	}
	if !split && live.ami() == s.AMI.ID {
		if b.ReturnHome && live.Name != home {
			// A deploy that passed the gate but did not get back to
			// blue (stopped, or blue did not come up): go home now.
			run.homeward, run.outVersion = true, live.Template
			run.newName, run.oldName, run.capacity = idle.Name, live.Name, live.desired()
			s.Emit(Event{Kind: EventStep, Step: "home", Message: fmt.Sprintf("%s runs %s with all traffic: going back to %s (return_home)", live.label(), s.AMI.ID, idle.label())})
			if run.scheduled, err = s.scheduledScaleIn(ctx, idle.group()); err != nil {
				return nil, err
			}
			return run, nil
		}
		run.noop, run.newName, run.oldName = true, live.Name, idle.Name
		return run, nil
	}
	if run.capacity == 0 {
		return nil, refuse("the live colour %s has a desired capacity of 0: there is nothing to match; scale it up or deploy with the rolling strategy", live.label())
	}
	if idle.ami() != s.AMI.ID || idle.Pin == "" {
		if err := b.checkStickyIdle(ctx, s, st, idle); err != nil {
			return nil, err
		}
	}
	if err := s.idleStates(ctx, idle, s.AMI.ID); err != nil {
		return nil, err
	}
	if idle.ami() == s.AMI.ID && idle.Pin != "" {
		run.version = idle.Template
		s.Emit(Event{Kind: EventStep, Step: "scale", Message: fmt.Sprintf("%s already runs %s and is pinned (%s): picking up where that deploy stopped", idle.label(), idle.Template, idle.Pin)})
	}
	if run.scheduled, err = s.scheduledScaleIn(ctx, idle.group()); err != nil {
		return nil, err
	}
	if err := s.requireAlarms(ctx, b.Alarms); err != nil {
		return nil, err
	}
	return run, nil
}

// scheduleScaleIn puts c's phoenix scale-in (to 0) at at.
func (s *Session) scheduleScaleIn(ctx context.Context, c *colour, at time.Time) error {
	_, err := s.Clients.AutoScaling.PutScheduledUpdateGroupAction(ctx, &autoscaling.PutScheduledUpdateGroupActionInput{
		AutoScalingGroupName: aws.String(c.group()), ScheduledActionName: aws.String(ScaleInAction),
		StartTime: aws.Time(at), MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0),
	})
	if err != nil {
		return fmt.Errorf("scheduling the scale-in of %s: %w", c.label(), err)
	}
	return nil
}

// scheduledScaleIn is the name of group's pending phoenix scale-in, if any.
func (s *Session) scheduledScaleIn(ctx context.Context, group string) (string, error) {
	out, err := s.Clients.AutoScaling.DescribeScheduledActions(ctx, &autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String(group), ScheduledActionNames: []string{ScaleInAction}})
	if err != nil {
		return "", fmt.Errorf("describing the scheduled actions of %q: %w", group, err)
	}
	for _, a := range out.ScheduledUpdateGroupActions {
		if aws.ToString(a.ScheduledActionName) == ScaleInAction {
			return ScaleInAction, nil
		}
	}
	return "", nil
}

// deleteScaleIn deletes group's scheduled action name. A delete whose
// first attempt went through but whose answer was lost is retried by the
// SDK and refused (the action is not found); that, like any other error
// after which the action is gone, counts as done, so the deploy does not
// fail on its own success.
func (s *Session) deleteScaleIn(ctx context.Context, group, name string) error {
	_, err := s.Clients.AutoScaling.DeleteScheduledAction(ctx, &autoscaling.DeleteScheduledActionInput{AutoScalingGroupName: aws.String(group), ScheduledActionName: aws.String(name)})
	if err == nil {
		return nil
	}
	if left, rerr := s.scheduledScaleIn(ctx, group); rerr == nil && left == "" {
		return nil
	}
	return fmt.Errorf("deleting scheduled action %s of %q: %w", name, group, err)
}

// Plan says what a blue-green deploy would change.
func (b *BlueGreen) Plan(ctx context.Context, s *Session) ([]Change, error) {
	st, live, idle, split, err := s.readLive(ctx)
	if err != nil {
		return nil, err
	}
	if sticky := st.stickiness(); b.ReturnHome && sticky > 0 {
		return nil, refuse("return_home with target group stickiness (%s) in %s: blue would have to empty for the way back while its sticky clients are still sent to it; turn stickiness off or deploy without return_home", sticky, s.ruleName())
	}
	if !split && live.ami() == s.AMI.ID {
		if b.ReturnHome && live.Name != home {
			return b.planHome(live, idle, nil), nil
		}
		return []Change{{Action: "keep", Detail: fmt.Sprintf("the live colour %s already runs %s: no switch; the deploy only checks health", live.label(), s.AMI.ID)}}, nil
	}
	if idle.ami() != s.AMI.ID || idle.Pin == "" {
		if err := b.checkStickyIdle(ctx, s, st, idle); err != nil {
			return nil, err
		}
	}
	if err := s.idleStates(ctx, idle, s.AMI.ID); err != nil {
		return nil, err
	}
	n := live.desired()
	var ch []Change
	if idle.desired() > 0 && idle.ami() != s.AMI.ID {
		ch = append(ch, Change{Action: "scale", Detail: fmt.Sprintf("%s from %d to 0: its instances run %s (kept warm from the last deploy)", idle.label(), idle.desired(), idle.ami())})
	}
	src := live.Template
	if idle.Template.ID != src.ID {
		src = idle.Template
	}
	warm, err := s.warmPoolChanges(ctx, idle, s.AMI.ID)
	if err != nil {
		return nil, err
	}
	ch = append(ch, Change{Action: "create", Detail: fmt.Sprintf("launch template %s version %d: version %d with image %s -> %s", src.ID, s.latestVersionOf(ctx, src)+1, src.Version, src.AMI, s.AMI.ID)})
	ch = append(ch, warm...)
	ch = append(ch,
		Change{Action: "scale", Detail: fmt.Sprintf("%s to %d on the new version, minimum pinned at %d (%s tag) until traffic moves", idle.label(), n, n, PinTag)},
		Change{Action: "wait", Detail: fmt.Sprintf("until %d targets in %s are healthy on %s (at weight 0; health_timeout %s)", n, idle.TG.Name, s.AMI.ID, s.HealthTimeout())},
	)
	if err := s.requireAlarms(ctx, b.Alarms); err != nil {
		return nil, err
	}
	ch = append(ch, gateChanges(b.Alarms, b.Judge, "watched during every step and after the switch")...)
	for _, step := range b.steps() {
		d := fmt.Sprintf("%s %d%%, %s %d%% in %s", idle.Name, step, live.Name, 100-step, s.ruleName())
		if b.BakeTime > 0 {
			d += fmt.Sprintf(", then bake %s watching %s's health", b.BakeTime, idle.Name)
		}
		if b.Judge != nil && step < 100 {
			d += fmt.Sprintf("; the judge compares %s with %s after %d requests", idle.Name, live.Name, b.Judge.MinRequests)
		}
		ch = append(ch, Change{Action: "switch", Detail: d})
	}
	if b.ReturnHome && idle.Name != home {
		ch = append(ch, Change{Action: "on failure", Detail: fmt.Sprintf("before the AMI has passed the gate: all traffic back to %s at once, %s scaled to 0 and unpinned", live.label(), idle.Name)})
		return append(ch, b.planHome(idle, live, live)...), nil
	}
	ch = append(ch, Change{Action: "unpin", Detail: fmt.Sprintf("%s: minimum %d, maximum %d (the live colour's)", idle.label(), aws.ToInt32(live.Group.MinSize), max(aws.ToInt32(live.Group.MaxSize), int32(n)))})
	if sticky := st.stickiness(); sticky > b.KeepOldFor {
		ch = append(ch, Change{Action: "schedule", Detail: fmt.Sprintf("%s to scale to 0 after %s (scheduled action %s): %s; until then phoenix rollback moves traffic back in one call", live.label(), sticky, ScaleInAction, stickyClients(live, sticky))})
	} else if b.KeepOldFor > 0 {
		ch = append(ch, Change{Action: "schedule", Detail: fmt.Sprintf("%s to scale to 0 after keep_old_for %s (scheduled action %s); until then phoenix rollback moves traffic back in one call", live.label(), b.KeepOldFor, ScaleInAction)})
	} else {
		ch = append(ch, Change{Action: "scale", Detail: fmt.Sprintf("%s to 0", live.label())})
	}
	ch = append(ch, s.strandedChanges(live)...)
	ch = append(ch, Change{Action: "on failure", Detail: fmt.Sprintf("all traffic back to %s at once, %s scaled to 0 and unpinned", live.label(), idle.Name)})
	return ch, nil
}

// planHome is return_home's way back from green to blue once the AMI has
// passed the gate there; start is blue as the deploy finds it (nil when
// blue is not live now, and its limits are not known).
func (b *BlueGreen) planHome(green, blue, start *colour) []Change {
	n := blue.desired()
	if start == nil {
		n = green.desired()
	}
	back := fmt.Sprintf("minimum %d, desired %d, maximum %d, as it is now", aws.ToInt32(green.Group.MinSize), green.desired(), aws.ToInt32(green.Group.MaxSize))
	limits := fmt.Sprintf("minimum %d, maximum %d, as it is now", aws.ToInt32(blue.Group.MinSize), aws.ToInt32(blue.Group.MaxSize))
	if start == nil {
		back, limits = "minimum 0, desired 0", fmt.Sprintf("minimum %d, maximum %d (%s's)", aws.ToInt32(green.Group.MinSize), max(aws.ToInt32(green.Group.MaxSize), int32(n)), green.Name)
	}
	return []Change{
		{Action: "home", Detail: fmt.Sprintf("return_home: with all traffic on %s, %s to 0 and up again to %d on the new AMI, minimum pinned, until every target is healthy", green.label(), blue.label(), n)},
		{Action: "switch", Detail: fmt.Sprintf("%s 100%% at once, %s 0%%", blue.Name, green.Name)},
		{Action: "unpin", Detail: fmt.Sprintf("%s: %s", blue.label(), limits)},
		{Action: "scale", Detail: fmt.Sprintf("%s back to %s, unpinned", green.label(), back)},
		{Action: "on failure", Detail: fmt.Sprintf("on the way back: all traffic stays on %s (the AMI passed the gate there), %s scaled to 0", green.label(), blue.Name)},
	}
}

// latestVersionOf is the template's latest version number, for the plan.
func (s *Session) latestVersionOf(ctx context.Context, tv *TemplateVersion) int64 {
	v, err := s.templateVersion(ctx, tv.ID, "", "$Latest")
	if err != nil {
		return tv.Version
	}
	return v.Version
}

// Describe fills in what the run made.
func (run *bgRun) Describe(res *Result) {
	res.Group = fmt.Sprintf("%s (%s)", run.s.groupOf(run.newName), run.newName)
	if run.version != nil {
		res.Template, res.Version = run.version.ID, run.version.Version
	}
	if run.previous != nil && !run.noop {
		res.Previous = run.previous.AMI
	}
	if res.AMI == "" {
		res.AMI = run.ami
	}
}

func (s *Session) groupOf(name string) string {
	if name == "green" {
		return s.Target.PeerGroup
	}
	return s.Target.Group
}

// read reads the state and the run's two colours.
func (run *bgRun) read(ctx context.Context) (*bgState, *colour, *colour, error) {
	st, err := run.s.readBlueGreen(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, st.byName(run.oldName), st.byName(run.newName), nil
}

// health reads c's target group against ami.
func (run *bgRun) health(ctx context.Context, c *colour, ami string) (*Health, error) {
	return run.s.gate.read(ctx, c.Group, []TargetGroup{c.TG}, ami)
}

// Step moves a blue-green deploy forward by at most one action.
func (run *bgRun) Step(ctx context.Context) (Step, error) {
	s := run.s
	st, old, nw, err := run.read(ctx)
	if err != nil {
		return Step{}, err
	}
	if run.noop && !run.finished {
		return run.settle(ctx, st, nw, old)
	}
	if run.finished {
		return run.retire(ctx, st, old, nw)
	}
	// 1. The new colour's launch template version.
	if run.version == nil {
		return run.createVersion(ctx, old, nw)
	}
	// 2. The new colour at the old one's capacity, pinned.
	if run.scheduled != "" {
		if err := s.deleteScaleIn(ctx, nw.group(), run.scheduled); err != nil {
			return Step{}, err
		}
		run.scheduled = ""
		return Step{Name: "scale", Action: fmt.Sprintf("deleted the scheduled scale-in of %s: it is about to take traffic", nw.label())}, nil
	}
	onVersion := nw.Template != nil && nw.Template.ID == run.version.ID && nw.Template.Version == run.version.Version
	if !onVersion {
		if stale := len(nw.Group.Instances); stale > 0 {
			// Instances of a warm colour run the old image; a new version
			// only affects launches, so the colour empties first.
			if nw.desired() > 0 || aws.ToInt32(nw.Group.MinSize) > 0 {
				if err := run.update(ctx, nw, &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); err != nil {
					return Step{State: StepFailed, Name: "scale", Message: err.Error()}, nil
				}
				return Step{Name: "scale", Action: fmt.Sprintf("scaling %s to 0: its %d instances run %s, not %s", nw.label(), stale, nw.ami(), run.ami)}, nil
			}
			return Step{Name: "scale", Progress: fmt.Sprintf("waiting for %d instances of %s to terminate", stale, nw.label())}, nil
		}
	}
	if st, handled, err := run.warmPoolStep(ctx, nw); handled || err != nil {
		return st, err
	}
	if nw.Pin == "" {
		pin := fmt.Sprintf("deploy %s: minimum %d until traffic moves to %s", s.ID, run.capacity, run.ami)
		if err := run.tag(ctx, nw, pin); err != nil {
			return Step{State: StepFailed, Name: "scale", Message: err.Error()}, nil
		}
		return Step{Name: "scale", Action: fmt.Sprintf("pinned %s (%s tag: %s)", nw.label(), PinTag, pin)}, nil
	}
	if !onVersion || nw.desired() < run.capacity || int(aws.ToInt32(nw.Group.MinSize)) < run.capacity {
		in := &autoscaling.UpdateAutoScalingGroupInput{
			LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(run.version.ID), Version: aws.String(strconv.FormatInt(run.version.Version, 10))},
			MinSize:        aws.Int32(int32(run.capacity)), DesiredCapacity: aws.Int32(int32(run.capacity)),
			MaxSize: aws.Int32(max(aws.ToInt32(nw.Group.MaxSize), int32(run.capacity))),
		}
		// A colour with a mixed instances policy keeps its own: only the
		// version of its launch template changes.
		if m := mixedWith(nw.Group, in.LaunchTemplate); m != nil {
			in.LaunchTemplate, in.MixedInstancesPolicy = nil, m
		}
		if err := run.update(ctx, nw, in); err != nil {
			return Step{State: StepFailed, Name: "scale", Message: err.Error()}, nil
		}
		run.scaledAt = s.Now()
		return Step{Name: "scale", Action: fmt.Sprintf("scaled %s to %d on %s (%s), minimum pinned at %d", nw.label(), run.capacity, run.version, run.ami, run.capacity)}, nil
	}
	if run.scaledAt.IsZero() {
		run.scaledAt = s.Now()
	}
	// 3. Every new target healthy, at weight 0 or more.
	h, err := run.health(ctx, nw, run.ami)
	if err != nil {
		return Step{}, err
	}
	share := st.share(nw)
	if share == 0 {
		if len(h.Failing) > 0 {
			return Step{State: StepFailed, Name: "health", Health: h, Message: fmt.Sprintf("%s: a new instance on %s failed its load balancer health checks: %s", nw.label(), run.ami, strings.Join(h.Failing, "; "))}, nil
		}
		if !h.OK() && len(nw.Group.Instances) < run.capacity {
			// Launches that keep failing (a KMS key Auto Scaling's role
			// may not use, a bad instance profile) never bring the
			// colour up: their cause is the message, not a timeout. A
			// failed launch leaves the group short of instances, so the
			// activities are read only then.
			lf, err := s.launchFailures(ctx, nw.group())
			if err != nil {
				return Step{}, err
			}
			if lf.Count >= maxLaunchFailures {
				return Step{State: StepFailed, Name: "health", Health: h, Message: fmt.Sprintf("%s does not come up on %s: %s", nw.label(), run.ami, lf)}, nil
			}
		}
		if !h.OK() {
			if waited := s.Now().Sub(run.scaledAt); waited > s.HealthTimeout() {
				return Step{State: StepFailed, Name: "health", Health: h, Message: fmt.Sprintf("%s is not healthy on %s after health_timeout %s: %s", nw.label(), run.ami, s.HealthTimeout(), strings.Join(h.Problems, "; "))}, nil
			}
			return Step{Name: "health", Health: h, Progress: fmt.Sprintf("%s at weight 0 in %s: %d/%d healthy on %s", nw.label(), nw.TG.Name, h.Healthy, run.capacity, run.ami)}, nil
		}
		return run.moveTo(ctx, st, nw, run.steps()[0], h)
	}
	// 4. Traffic moves; each step bakes while health is watched.
	if !h.OK() {
		return Step{State: StepFailed, Name: "switch", Health: h, Message: fmt.Sprintf("%s became unhealthy with %d%% of the traffic: %s", nw.label(), share, strings.Join(h.Problems, "; "))}, nil
	}
	if run.bakeStart.IsZero() || run.bakeStep != share {
		run.bakeStart, run.bakeStep = s.Now(), share
	}
	gate, err := run.metricGates(ctx, nw, old, share, h)
	if err != nil || gate != nil {
		return *orStep(gate), err
	}
	if baked := s.Now().Sub(run.bakeStart); baked < run.bakeTime() {
		return Step{Name: "bake", Health: h, Progress: fmt.Sprintf("%s at %d%%: healthy (%d/%d), baking %s of %s%s", nw.label(), share, h.Healthy, h.Total, baked.Round(time.Second), run.bakeTime(), run.verdictNote())}, nil
	}
	if v := run.verdict; run.judging(share) && (v == nil || v.Result != "pass") {
		// The step has baked, but the judge has not seen enough requests.
		if s.Now().Sub(run.bakeStart) > s.HealthTimeout() {
			return Step{State: StepFailed, Name: "judge", Health: h, Message: fmt.Sprintf("%s at %d%%: no verdict after health_timeout %s%s", nw.label(), share, s.HealthTimeout(), run.verdictNote())}, nil
		}
		return Step{Name: "judge", Health: h, Progress: fmt.Sprintf("%s at %d%%: baked; waiting for the judge%s", nw.label(), share, run.verdictNote())}, nil
	}
	if v := run.verdict; run.judging(share) && v != nil {
		s.Emit(Event{Kind: EventStep, Step: "judge", Action: "passed", Message: v.String(), Verdict: v})
	}
	for _, next := range run.steps() {
		if next > share {
			return run.moveTo(ctx, st, nw, next, h)
		}
	}
	// 5. All traffic is on the new colour: unpin it with the old one's
	// limits, then retire the old colour. With return_home the AMI has
	// now passed the gate on green: the run goes back to blue.
	if run.b.ReturnHome && !run.homeward && nw.Name != home {
		return run.turnHome(nw, old), nil
	}
	in := &autoscaling.UpdateAutoScalingGroupInput{MinSize: old.Group.MinSize, MaxSize: aws.Int32(max(aws.ToInt32(old.Group.MaxSize), int32(nw.desired())))}
	if c, ok := run.start[nw.Name]; ok && run.homeward {
		in.MinSize, in.MaxSize = aws.Int32(c.min), aws.Int32(max(c.max, int32(nw.desired())))
	}
	if err := run.update(ctx, nw, in); err != nil {
		return Step{State: StepFailed, Name: "unpin", Message: err.Error()}, nil
	}
	if err := run.tag(ctx, nw, ""); err != nil {
		return Step{State: StepFailed, Name: "unpin", Message: err.Error()}, nil
	}
	run.finished, run.bakeStart = true, s.Now()
	as := "as " + old.Name + " had"
	if _, ok := run.start[nw.Name]; ok && run.homeward {
		as = "as it had before the deploy"
	}
	return Step{Name: "unpin", Action: fmt.Sprintf("unpinned %s: minimum %d, maximum %d, %s", nw.label(), aws.ToInt32(in.MinSize), aws.ToInt32(in.MaxSize), as)}, nil
}

// turnHome starts the way back to blue once the AMI has all traffic on
// green and has passed the gate there: blue comes up on it (on the same
// version when the colours share a template) while green, still pinned,
// serves; then the traffic moves back at once and green returns to its
// capacity.
func (run *bgRun) turnHome(green, blue *colour) Step {
	run.homeward, run.outVersion = true, run.version
	run.oldName, run.newName, run.capacity = green.Name, blue.Name, green.desired()
	if blue.Template == nil || blue.Template.ID != run.version.ID {
		run.version = nil
	}
	run.scaledAt, run.bakeStart, run.bakeStep = time.Time{}, time.Time{}, 0
	return Step{Name: "home", Action: fmt.Sprintf("%s passed the gate on %s with all traffic; return_home: %s comes up on it, then takes the traffic back", run.ami, green.label(), blue.label())}
}

// maxLaunchFailures is how many failed launches of a colour fail a
// blue-green deploy before its health_timeout.
const maxLaunchFailures = 3

// moveTo sets nw's share of the traffic.
func (run *bgRun) moveTo(ctx context.Context, st *bgState, nw *colour, share int, h *Health) (Step, error) {
	if err := run.s.setWeights(ctx, st, nw, share); err != nil {
		return Step{State: StepFailed, Name: "switch", Message: err.Error()}, nil
	}
	run.bakeStart, run.bakeStep = run.s.Now(), share
	old := st.other(nw)
	return Step{Name: "switch", Health: h, Action: fmt.Sprintf("moved %d%% of the traffic to %s (%s), %d%% stays on %s", share, nw.label(), run.ami, 100-share, old.label())}, nil
}

// retire scales the old colour to zero or schedules that, then the deploy
// is done.
func (run *bgRun) retire(ctx context.Context, st *bgState, old, nw *colour) (Step, error) {
	s := run.s
	h, err := run.health(ctx, nw, run.ami)
	if err != nil {
		return Step{}, err
	}
	if !h.OK() {
		if s.Now().Sub(run.bakeStart) > s.HealthTimeout() {
			return Step{State: StepFailed, Name: "retire", Health: h, Message: fmt.Sprintf("all traffic is on %s, but it is not healthy after health_timeout %s: %s", nw.label(), s.HealthTimeout(), strings.Join(h.Problems, "; "))}, nil
		}
		return Step{Name: "retire", Health: h}, nil
	}
	if firing, err := s.firingAlarm(ctx, run.b.Alarms); err != nil {
		return Step{}, err
	} else if firing != "" && !run.homeward {
		return Step{State: StepFailed, Name: "alarm", Health: h, Message: fmt.Sprintf("all traffic on %s: %s", nw.label(), firing)}, nil
	}
	if s.weightsSettling() {
		return settlingStep("retire", h), nil
	}
	done := fmt.Sprintf("all traffic on %s: every target healthy on %s (%d/%d)", nw.label(), run.ami, h.Healthy, h.Total)
	if run.homeward {
		return run.retireAway(ctx, old, h, done)
	}
	if sticky := st.stickiness(); sticky > run.b.KeepOldFor && old.desired() > 0 {
		// Sticky clients of the old colour are still sent there: it
		// scales in when the last of their cookies has expired.
		at := s.Now().Add(sticky).UTC()
		if err := s.scheduleScaleIn(ctx, old, at); err != nil {
			return Step{State: StepDone, Name: "retire", Health: h, Message: fmt.Sprintf("%s; %v, so %s stays up until scaled by hand (not before %s: %s)", done, err, old.label(), at.Format(time.RFC3339), stickyClients(old, sticky))}, nil
		}
		s.Emit(Event{Kind: EventStep, Step: "retire", Action: "scheduled", Message: fmt.Sprintf("%s stays up on %s until %s (scheduled action %s): %s", old.label(), old.ami(), at.Format(time.RFC3339), ScaleInAction, stickyClients(old, sticky))})
		return Step{State: StepDone, Name: "retire", Health: h, Message: done + fmt.Sprintf("; %s scales to 0 at %s, once its sticky clients' cookies (%s) have expired", old.label(), at.Format(time.RFC3339), sticky)}, nil
	}
	if run.b.KeepOldFor > 0 {
		at := s.Now().Add(run.b.KeepOldFor).UTC()
		if err := s.scheduleScaleIn(ctx, old, at); err != nil {
			return Step{State: StepDone, Name: "retire", Health: h, Message: fmt.Sprintf("%s; %v, so %s stays warm until scaled by hand", done, err, old.label())}, nil
		}
		s.Emit(Event{Kind: EventStep, Step: "retire", Action: "scheduled", Message: fmt.Sprintf("%s stays warm on %s until %s (scheduled action %s): phoenix rollback moves the traffic back in one call until then", old.label(), old.ami(), at.Format(time.RFC3339), ScaleInAction)})
		return Step{State: StepDone, Name: "retire", Health: h, Message: done + fmt.Sprintf("; %s kept warm for %s", old.label(), run.b.KeepOldFor) + s.strandedNote(old)}, nil
	}
	if err := run.update(ctx, old, &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); err != nil {
		return Step{State: StepDone, Name: "retire", Health: h, Message: fmt.Sprintf("%s; scaling %s to 0 failed, scale it by hand: %v", done, old.label(), err)}, nil
	}
	s.Emit(Event{Kind: EventStep, Step: "retire", Action: "scaled", Message: fmt.Sprintf("scaling %s to 0", old.label())})
	return Step{State: StepDone, Name: "retire", Health: h, Message: done + fmt.Sprintf("; %s scaling to 0", old.label()) + s.strandedNote(old)}, nil
}

// retireAway returns green, which served while blue came back, to the
// capacity it had when the deploy began (to 0 when that is not known),
// and unpins it.
func (run *bgRun) retireAway(ctx context.Context, green *colour, h *Health, done string) (Step, error) {
	in := &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}
	if c, ok := run.start[green.Name]; ok {
		in.MinSize, in.MaxSize, in.DesiredCapacity = aws.Int32(c.min), aws.Int32(c.max), aws.Int32(c.desired)
	}
	if err := run.update(ctx, green, in); err != nil {
		return Step{State: StepDone, Name: "retire", Health: h, Message: fmt.Sprintf("%s; returning %s to its capacity failed, set it by hand: %v", done, green.label(), err)}, nil
	}
	if green.Pin != "" {
		if err := run.tag(ctx, green, ""); err != nil {
			return Step{State: StepDone, Name: "retire", Health: h, Message: fmt.Sprintf("%s; unpinning %s failed, delete its %s tag by hand: %v", done, green.label(), PinTag, err)}, nil
		}
	}
	maxSize := green.Group.MaxSize
	if in.MaxSize != nil {
		maxSize = in.MaxSize
	}
	run.s.Emit(Event{Kind: EventStep, Step: "retire", Action: "scaled", Message: fmt.Sprintf("%s back to minimum %d, desired %d, maximum %d, unpinned", green.label(), aws.ToInt32(in.MinSize), aws.ToInt32(in.DesiredCapacity), aws.ToInt32(maxSize))})
	return Step{State: StepDone, Name: "retire", Health: h, Message: done + fmt.Sprintf("; back home: %s returned to its capacity", green.label())}, nil
}

// settle is a deploy of the AMI already live. A pin on the live colour
// means a run was stopped between the last switch and the old colour's
// retirement: it is unpinned with the other colour's limits and the old
// colour is retired as the strategy says. Otherwise it checks health.
func (run *bgRun) settle(ctx context.Context, st *bgState, live, other *colour) (Step, error) {
	if live.Pin != "" {
		in := &autoscaling.UpdateAutoScalingGroupInput{MinSize: other.Group.MinSize, MaxSize: aws.Int32(max(aws.ToInt32(other.Group.MaxSize), int32(live.desired())))}
		if err := run.update(ctx, live, in); err != nil {
			return Step{State: StepFailed, Name: "unpin", Message: err.Error()}, nil
		}
		if err := run.tag(ctx, live, ""); err != nil {
			return Step{State: StepFailed, Name: "unpin", Message: err.Error()}, nil
		}
		run.finished = other.desired() > 0
		return Step{Name: "unpin", Action: fmt.Sprintf("unpinned %s, left pinned by a stopped deploy (%s)", live.label(), live.Pin)}, nil
	}
	h, err := run.health(ctx, live, run.ami)
	if err != nil {
		return Step{}, err
	}
	if h.OK() {
		return Step{State: StepDone, Name: "health", Health: h, Message: fmt.Sprintf("the live colour %s already runs %s: every target healthy (%d/%d)", live.label(), run.ami, h.Healthy, h.Total)}, nil
	}
	if run.scaledAt.IsZero() {
		run.scaledAt = run.s.Now()
	}
	if run.s.Now().Sub(run.scaledAt) > run.s.HealthTimeout() {
		return Step{State: StepFailed, Name: "health", Health: h, Message: fmt.Sprintf("the live colour %s runs %s but is not healthy after health_timeout %s: %s", live.label(), run.ami, run.s.HealthTimeout(), strings.Join(h.Problems, "; "))}, nil
	}
	return Step{Name: "health", Health: h}, nil
}

// createVersion makes the new colour's launch template version: from the
// live colour's version when both colours share a template (so the new
// colour cannot drift from the live one), else from the new colour's own.
func (run *bgRun) createVersion(ctx context.Context, old, nw *colour) (Step, error) {
	src := old.Template
	if nw.Template.ID != src.ID {
		src = nw.Template
	}
	replaced := old.Template
	if run.homeward {
		// Blue's version with the AMI replaces blue's own, which
		// phoenix rollback returns to.
		replaced = nw.Template
	}
	left, err := run.s.leftVersion(ctx, src.ID, src.Version, versionDescription(run.ami, replaced), run.ami)
	if err != nil {
		return Step{}, err
	}
	if left != nil {
		run.version = left
		return Step{Name: "launch-template", Action: fmt.Sprintf("took up launch template %s version %d for %s, which an interrupted run of this deploy made: version %d with image %s -> %s", src.ID, left.Version, nw.label(), src.Version, src.AMI, run.ami)}, nil
	}
	out, err := run.s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: aws.String(src.ID), SourceVersion: aws.String(strconv.FormatInt(src.Version, 10)),
		VersionDescription: aws.String(versionDescription(run.ami, replaced)),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(run.ami)},
	})
	if err != nil {
		return Step{State: StepFailed, Name: "launch-template", Message: fmt.Sprintf("creating a version of launch template %s: %v", src.ID, err)}, nil
	}
	v := out.LaunchTemplateVersion
	run.version = &TemplateVersion{ID: src.ID, Name: src.Name, Version: aws.ToInt64(v.VersionNumber), AMI: run.ami, Description: aws.ToString(v.VersionDescription)}
	return Step{Name: "launch-template", Action: fmt.Sprintf("created launch template %s version %d for %s: version %d with image %s -> %s", src.ID, run.version.Version, nw.label(), src.Version, src.AMI, run.ami)}, nil
}

// update changes c's group.
func (run *bgRun) update(ctx context.Context, c *colour, in *autoscaling.UpdateAutoScalingGroupInput) error {
	in.AutoScalingGroupName = aws.String(c.group())
	if _, err := run.s.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, in); err != nil {
		return fmt.Errorf("updating auto scaling group %q: %w", c.group(), err)
	}
	return nil
}

// tag writes c's pin tag, or deletes it when pin is "".
func (run *bgRun) tag(ctx context.Context, c *colour, pin string) error {
	t := astypes.Tag{ResourceId: aws.String(c.group()), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(PinTag)}
	if pin == "" {
		if _, err := run.s.Clients.AutoScaling.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: []astypes.Tag{t}}); err != nil {
			return fmt.Errorf("deleting the %s tag of %q: %w", PinTag, c.group(), err)
		}
		return nil
	}
	t.Value, t.PropagateAtLaunch = aws.String(pin), aws.Bool(false)
	if _, err := run.s.Clients.AutoScaling.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{t}}); err != nil {
		return fmt.Errorf("writing the %s tag of %q: %w", PinTag, c.group(), err)
	}
	return nil
}

// RollbackStep returns a failed deploy by at most one action: all traffic
// back to the old colour at once, then the new colour scaled to zero and
// unpinned, then the old colour's health.
func (run *bgRun) RollbackStep(ctx context.Context) (Step, error) {
	st, old, nw, err := run.read(ctx)
	if err != nil {
		return Step{}, err
	}
	if run.warm {
		return run.warmRollback(ctx, st, old, nw)
	}
	run.homeFailed = run.homeward
	if step, acted := run.restore(ctx, st, old, nw); acted {
		return step, nil
	}
	h, err := run.health(ctx, old, old.ami())
	if err != nil {
		return Step{}, err
	}
	if h.OK() {
		msg := fmt.Sprintf("all traffic on %s (%s): every target healthy (%d/%d)", old.label(), old.ami(), h.Healthy, h.Total)
		if run.homeFailed {
			msg = fmt.Sprintf("%s passed the gate and serves from %s, but going back to %s failed: all traffic stays on %s, every target healthy (%d/%d); deploy %s again to go back to %s (return_home)", run.ami, old.label(), nw.label(), old.Name, h.Healthy, h.Total, run.ami, nw.Name)
		}
		return Step{State: StepDone, Name: "rollback", Health: h, Message: msg}, nil
	}
	if run.scaledAt.IsZero() || !run.finished {
		run.scaledAt, run.finished = run.s.Now(), true
	}
	if run.s.Now().Sub(run.scaledAt) > run.s.HealthTimeout() {
		return Step{State: StepFailed, Name: "rollback", Health: h, Message: fmt.Sprintf("all traffic is back on %s, but it is not healthy after health_timeout %s: %s", old.label(), run.s.HealthTimeout(), strings.Join(h.Problems, "; "))}, nil
	}
	return Step{Name: "rollback", Health: h}, nil
}

// restore takes the next action back to the old colour: its weight, then
// the new colour's capacity and pin. acted is false when nothing is left
// to undo.
func (run *bgRun) restore(ctx context.Context, st *bgState, old, nw *colour) (Step, bool) {
	if nw.Weight > 0 || old.Weight == 0 {
		served := nw.Weight > 0
		if err := run.s.setWeights(ctx, st, old, 100); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, true
		}
		moved := fmt.Sprintf("moved all traffic back to %s (%s)", old.label(), old.ami())
		if sticky := st.stickiness(); sticky > 0 && served {
			moved += fmt.Sprintf("; %s", stickyClients(nw, sticky))
		}
		return Step{Name: "rollback", Action: moved}, true
	}
	ours := nw.Pin != "" || run.version != nil && nw.Template != nil && nw.Template.Version == run.version.Version && nw.Template.ID == run.version.ID
	if ours && (nw.desired() > 0 || aws.ToInt32(nw.Group.MinSize) > 0) {
		if run.s.weightsSettling() {
			return settlingStep("rollback", nil), true
		}
		if err := run.update(ctx, nw, &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, true
		}
		return Step{Name: "rollback", Action: fmt.Sprintf("scaling %s to 0", nw.label())}, true
	}
	if nw.Pin != "" {
		if err := run.tag(ctx, nw, ""); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, true
		}
		return Step{Name: "rollback", Action: fmt.Sprintf("unpinned %s", nw.label())}, true
	}
	if run.homeward && old.Pin != "" {
		// Green keeps the traffic, as after a deploy without
		// return_home: blue's limits, no pin.
		in := &autoscaling.UpdateAutoScalingGroupInput{}
		if c, ok := run.start[nw.Name]; ok {
			in.MinSize, in.MaxSize = aws.Int32(c.min), aws.Int32(max(c.max, int32(old.desired())))
		}
		if in.MinSize != nil {
			if err := run.update(ctx, old, in); err != nil {
				return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, true
			}
		}
		if err := run.tag(ctx, old, ""); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, true
		}
		return Step{Name: "rollback", Action: fmt.Sprintf("unpinned %s: it keeps the traffic", old.label())}, true
	}
	return Step{}, false
}

// Abort returns the traffic to the old colour and removes the pin when a
// deploy is interrupted before its switch finished, so that Ctrl-C never
// leaves the target half-switched or pinned. It makes at most three
// calls, and lets the weights it moved back reach the load balancer's
// nodes before it scales the new colour in.
func (run *bgRun) Abort(ctx context.Context) (string, error) {
	if run.noop || run.finished || run.warm {
		return "", nil
	}
	var did []string
	for range 5 {
		st, old, nw, err := run.read(ctx)
		if err != nil {
			return strings.Join(did, "; "), err
		}
		step, acted := run.restore(ctx, st, old, nw)
		if !acted {
			return strings.Join(did, "; "), nil
		}
		if step.State == StepFailed {
			return strings.Join(did, "; "), errors.New(step.Message)
		}
		if step.Action == "" {
			// The weights moved back are reaching the load balancer's
			// nodes: the new colour keeps its instances until then.
			select {
			case <-ctx.Done():
				return strings.Join(did, "; "), ctx.Err()
			case <-time.After(time.Until(run.s.weightsAt.Add(weightSettlePolls * run.s.d.PollInterval))):
			}
			continue
		}
		did = append(did, step.Action)
	}
	return strings.Join(did, "; "), nil
}

// BeginRollback prepares an on-demand rollback: the traffic moves back to
// the warm colour in one call when it still runs the previous AMI; else
// the previous AMI is deployed blue-green like any other.
func (b *BlueGreen) BeginRollback(ctx context.Context, s *Session) (Execution, error) {
	st, live, idle, split, err := s.readLive(ctx)
	if err != nil {
		return nil, err
	}
	if split {
		// A switch to idle was cut short: return everything to live.
		run := &bgRun{b: b, s: s, oldName: live.Name, newName: idle.Name, ami: live.ami(), previous: live.Template}
		s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("a switch to %s was cut short (%d%% of the traffic): returning it to %s", idle.label(), st.share(idle), live.label())})
		return &rollbackRun{run, nil}, nil
	}
	// The description names the AMI the live version replaced; its
	// version number may be of the other colour's template. A version
	// that names its image by an SSM parameter has the parameter's
	// history instead.
	prev := &TemplateVersion{}
	if live.Template.Alias != "" {
		ami, err := s.previousImage(ctx, parseAlias(live.Template.Alias), live.Template.AMI)
		if err != nil {
			return nil, err
		}
		prev.AMI = ami
	} else if m := previousAMI.FindStringSubmatch(live.Template.Description); m != nil {
		prev.AMI = m[1]
	} else {
		return nil, refuse("the live colour %s runs %s, which phoenix did not create: there is no previous AMI to roll back to", live.label(), live.Template)
	}
	// A colour whose version names an SSM parameter resolves to what the
	// parameter says now, not to what its instances run: its health on
	// the previous AMI decides.
	if (idle.ami() == prev.AMI || idle.Template.Alias != "") && idle.desired() > 0 && idle.Pin == "" {
		h, err := s.gate.read(ctx, idle.Group, []TargetGroup{idle.TG}, prev.AMI)
		if err != nil {
			return nil, err
		}
		if h.OK() {
			sched, err := s.scheduledScaleIn(ctx, idle.group())
			if err != nil {
				return nil, err
			}
			run := &bgRun{b: b, s: s, oldName: live.Name, newName: idle.Name, ami: prev.AMI, previous: live.Template, version: idle.Template, warm: true, scheduled: sched}
			s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("%s is warm and healthy on %s: moving the traffic back to it from %s (%s)", idle.label(), prev.AMI, live.label(), live.ami())})
			return &rollbackRun{run, nil}, nil
		}
	}
	// The warm colour is gone: deploy the previous AMI like any other,
	// except that the admission policy does not stand in the way of a
	// rollback to what ran before (as for rolling).
	img, err := s.d.readImage(ctx, prev.AMI)
	if err != nil {
		return nil, err
	}
	s.AMI = *img
	ex, err := b.Begin(ctx, s)
	if err != nil {
		return nil, err
	}
	s.Emit(Event{Kind: EventStep, Step: "rollback", Message: fmt.Sprintf("no warm colour runs %s: deploying it to %s blue-green", prev.AMI, idle.label())})
	return &rollbackRun{ex.(*bgRun), ex.(*bgRun).Step}, nil
}

func (run *bgRun) isNoop() bool { return run.noop }

// published: a switch to the new colour, a warm rollback and a rollback
// that deploys the previous AMI each leave run.ami serving; a failed
// deploy's rollback leaves the old colour's image.
func (run *bgRun) published(forward bool) (string, bool) {
	// On the way back to blue the AMI has passed the gate on green: it
	// stays published whatever happens to blue.
	return run.ami, forward || run.warm || run.homeward
}

// publishFirst: a warm rollback moves the image parameter back before the
// traffic, so that the colour taking the traffic back scales out on its
// own image.
func (run *bgRun) publishFirst() bool { return run.warm }

// published: a rollback that deploys the previous AMI is a deploy.
func (r *rollbackRun) published(forward bool) (string, bool) {
	return r.bgRun.published(forward || r.forward != nil)
}

// settled: on success the new colour's version; after a rollback the old
// colour's, and the new colour's must not be launched; a warm rollback
// goes back to the warm colour's version.
func (run *bgRun) settled(success bool) (good, discard *TemplateVersion) {
	switch {
	case run.homeFailed:
		// The AMI serves from green, on the version made for it.
		if run.version != nil && run.version != run.outVersion {
			return run.outVersion, run.version
		}
		return run.outVersion, nil
	case run.warm:
		return run.version, run.previous
	case run.noop:
		return run.previous, nil
	case success:
		return run.version, nil
	}
	return run.previous, run.version
}

// settled: a rollback that deploys the previous AMI succeeds like a deploy.
func (r *rollbackRun) settled(success bool) (good, discard *TemplateVersion) {
	if r.forward != nil {
		return r.bgRun.settled(true)
	}
	return r.bgRun.settled(success)
}

// rollbackRun is an on-demand rollback; forward, when set, is a full
// deploy of the previous AMI.
type rollbackRun struct {
	*bgRun
	forward func(context.Context) (Step, error)
}

func (r *rollbackRun) RollbackStep(ctx context.Context) (Step, error) {
	if r.forward != nil {
		return r.forward(ctx)
	}
	return r.bgRun.RollbackStep(ctx)
}

// warmRollback moves the traffic back to the warm colour: its scheduled
// scale-in goes first, then one call moves all traffic, then the colour
// that lost it scales to zero.
func (run *bgRun) warmRollback(ctx context.Context, st *bgState, from, to *colour) (Step, error) {
	s := run.s
	if run.scheduled != "" {
		if err := s.deleteScaleIn(ctx, to.group(), run.scheduled); err != nil {
			return Step{}, err
		}
		run.scheduled = ""
		return Step{Name: "rollback", Action: fmt.Sprintf("deleted the scheduled scale-in of %s", to.label())}, nil
	}
	if st.share(to) < 100 {
		if err := s.setWeights(ctx, st, to, 100); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, nil
		}
		moved := fmt.Sprintf("moved all traffic back to %s (%s) from %s (%s)", to.label(), to.ami(), from.label(), from.ami())
		if sticky := st.stickiness(); sticky > 0 {
			moved += fmt.Sprintf(": new clients at once; %s", stickyClients(from, sticky))
		}
		return Step{Name: "rollback", Action: moved}, nil
	}
	if s.weightsSettling() {
		return settlingStep("rollback", nil), nil
	}
	if from.desired() > 0 && !run.stickyHeld {
		in := &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}
		if aws.ToInt32(to.Group.MinSize) < aws.ToInt32(from.Group.MinSize) {
			// The colour now serving takes over the minimum.
			if err := run.update(ctx, to, &autoscaling.UpdateAutoScalingGroupInput{MinSize: from.Group.MinSize, MaxSize: aws.Int32(max(aws.ToInt32(from.Group.MaxSize), aws.ToInt32(to.Group.MaxSize)))}); err != nil {
				return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, nil
			}
		}
		if sticky := st.stickiness(); sticky > 0 {
			// Its sticky clients stay until their cookies expire: it
			// keeps its capacity (not its minimum) until then, or for
			// keep_old_for when that is longer, as after a switch.
			at := s.Now().Add(max(sticky, run.b.KeepOldFor)).UTC()
			if err := run.update(ctx, from, &autoscaling.UpdateAutoScalingGroupInput{MinSize: aws.Int32(0)}); err != nil {
				return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, nil
			}
			if err := s.scheduleScaleIn(ctx, from, at); err != nil {
				return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, nil
			}
			run.stickyHeld = true
			return Step{Name: "rollback", Action: fmt.Sprintf("%s scales to 0 at %s (scheduled action %s): %s", from.label(), at.Format(time.RFC3339), ScaleInAction, stickyClients(from, sticky))}, nil
		}
		if err := run.update(ctx, from, in); err != nil {
			return Step{State: StepFailed, Name: "rollback", Message: err.Error()}, nil
		}
		return Step{Name: "rollback", Action: fmt.Sprintf("scaling %s to 0", from.label())}, nil
	}
	h, err := run.health(ctx, to, to.ami())
	if err != nil {
		return Step{}, err
	}
	if h.OK() {
		return Step{State: StepDone, Name: "rollback", Health: h, Message: fmt.Sprintf("all traffic back on %s (%s): every target healthy (%d/%d)", to.label(), to.ami(), h.Healthy, h.Total)}, nil
	}
	if run.scaledAt.IsZero() {
		run.scaledAt = s.Now()
	}
	if s.Now().Sub(run.scaledAt) > s.HealthTimeout() {
		return Step{State: StepFailed, Name: "rollback", Health: h, Message: fmt.Sprintf("all traffic is back on %s, but it is not healthy after health_timeout %s: %s", to.label(), s.HealthTimeout(), strings.Join(h.Problems, "; "))}, nil
	}
	return Step{Name: "rollback", Health: h}, nil
}
