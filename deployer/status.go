package deployer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// Status is a target as it is now: the group's launch template version,
// its last instance refresh, target health, the AMIs in use and the lock.
type Status struct {
	Target    string           `json:"target"`
	Region    string           `json:"region"`
	Group     string           `json:"group"`
	Template  *TemplateVersion `json:"launch_template,omitempty"`
	Desired   int              `json:"desired"`
	InService int              `json:"in_service"`
	Refresh   *Refresh         `json:"refresh,omitempty"`
	Health    *Health          `json:"health"`
	AMIs      []AMIUse         `json:"amis_in_use"`
	Lock      *Lock            `json:"lock,omitempty"`
	// Held is the launch template reference ($Latest or $Default) of
	// groups a deploy holds on a numbered version (the RefTag tag): left
	// only by a deploy that was stopped, put back by its rerun or by
	// phoenix rollback.
	Held map[string]string `json:"held,omitempty"`
	// Parameter is the SSM parameter the group's launch template names
	// its image by, with its recent versions; nil when it names an AMI.
	Parameter *ImageParameter `json:"parameter,omitempty"`
	// Colours are blue-green's two groups; Group, Template, capacity,
	// health and AMIs above are then the live colour's.
	Colours []ColourStatus `json:"colours,omitempty"`
	// StickinessSeconds is the target group stickiness of blue-green's
	// forward: how long a client stays on the colour that first served
	// it, whatever the weights say; 0 when it is off.
	StickinessSeconds int `json:"target_group_stickiness_seconds,omitempty"`
	// States are the target's instances protected from scale in or in
	// Standby (both colours' for blue-green).
	States InstanceStates `json:"instance_states"`
	// WarmPools are the target's groups' warm pools.
	WarmPools []WarmPoolStatus `json:"warm_pools,omitempty"`
	// Gates are the strategy's metric gates now: its alarms' states and,
	// for blue-green with the canary judge, the colours compared over
	// the last minutes.
	Gates *GateStatus `json:"gates,omitempty"`
	// LastDeploy is the newest deploy in the target's history, with the
	// canary judge's verdicts of its steps.
	LastDeploy *Record `json:"last_deploy,omitempty"`
}

// ColourStatus is one colour of a blue-green target.
type ColourStatus struct {
	Colour      string           `json:"colour"`
	Group       string           `json:"group"`
	TargetGroup string           `json:"target_group"`
	Live        bool             `json:"live"`
	Traffic     int              `json:"traffic_percent"`
	Template    *TemplateVersion `json:"launch_template,omitempty"`
	Desired     int              `json:"desired"`
	Min         int              `json:"min"`
	// Pin is the phoenix:pin tag: set while a switch holds the colour's
	// minimum up, and left only by a deploy that was killed.
	Pin string `json:"pin,omitempty"`
	// ScaleInAt is when a warm old colour's scheduled scale-in runs.
	ScaleInAt *time.Time `json:"scale_in_at,omitempty"`
}

// Status reads the target. It makes no mutating call.
func (d *Deployer) Status(ctx context.Context) (*Status, error) {
	d.defaults()
	s := &Session{Clients: d.Clients, Target: d.Target, d: d, gate: newHealthGate(d.Clients), ltVer: map[string]*TemplateVersion{}}
	g, err := s.readGroup(ctx)
	if err != nil {
		return nil, asRefused(err)
	}
	s.Group = *g
	s.Groups = []astypes.AutoScalingGroup{*g}
	if err := s.readTemplate(ctx); err != nil {
		return nil, err
	}
	if s.TargetGroups, err = s.readTargetGroups(ctx); err != nil {
		return nil, err
	}
	var colours []ColourStatus
	if d.Target.PeerGroup != "" {
		if colours, err = s.serveLive(ctx, true); err != nil {
			return nil, err
		}
		g = &s.Group
	}
	st := &Status{Target: d.Target.Name, Region: d.Target.Region, Group: aws.ToString(g.AutoScalingGroupName), Template: s.Template, Desired: int(aws.ToInt32(g.DesiredCapacity)), Colours: colours}
	st.StickinessSeconds = int(s.sticky / time.Second)
	for _, in := range g.Instances {
		if in.LifecycleState == "InService" {
			st.InService++
		}
	}
	rf, err := s.latestRefresh(ctx, st.Group)
	if err != nil {
		return nil, err
	}
	if rf != nil {
		st.Refresh = refreshOf(rf)
	}
	want := ""
	if s.Template != nil {
		want = s.Template.AMI
	}
	if st.Health, err = s.gate.read(ctx, s.Group, s.TargetGroups, want); err != nil {
		return nil, err
	}
	if st.AMIs, err = s.amisInUse(ctx); err != nil {
		return nil, err
	}
	locks := map[string]Lock{}
	for _, grp := range d.Target.Groups() {
		params, err := s.lockParams(ctx, grp)
		if err != nil {
			return nil, err
		}
		if len(params) > 0 {
			locks[grp] = params[len(params)-1].lock
		}
	}
	if s.Template != nil && s.Template.Alias != "" {
		if st.Parameter, err = s.imageParameter(ctx, s.Template.Alias); err != nil {
			return nil, err
		}
	}
	st.States = s.instanceStates(s.Groups, nil)
	if st.States.Hooks, err = s.readHookWaits(ctx, s.Groups); err != nil {
		return nil, err
	}
	if st.WarmPools, err = s.readWarmPools(ctx, s.Groups); err != nil {
		return nil, err
	}
	for _, g := range s.Groups {
		if ref := groupTag(g, RefTag); ref != "" {
			if st.Held == nil {
				st.Held = map[string]string{}
			}
			st.Held[aws.ToString(g.AutoScalingGroupName)] = ref
		}
	}
	recs, err := d.History(ctx)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if recs[i].Action == "deploy" {
			st.LastDeploy = &recs[i]
			break
		}
	}
	if st.Gates, err = d.gateStatus(ctx, s); err != nil {
		return nil, err
	}
	for _, grp := range d.Target.Groups() {
		if l, ok := locks[grp]; ok && d.now().Before(l.Expires) && st.Lock == nil {
			l.Stale = d.stale(l)
			st.Lock = &l
		}
	}
	return st, nil
}

// serveLive points the session at blue-green's live colour (its group,
// target group and launch template version) so that plan, status and
// promote read what serves, and describes both colours. withSchedule
// also reads each colour's scheduled scale-in.
func (s *Session) serveLive(ctx context.Context, withSchedule bool) ([]ColourStatus, error) {
	st, err := s.readBlueGreen(ctx)
	if err != nil {
		return nil, err
	}
	live, _, err := s.liveColour(st)
	if err != nil {
		return nil, err
	}
	s.sticky = st.stickiness()
	s.Group, s.TargetGroups, s.Template = live.Group, []TargetGroup{live.TG}, live.Template
	s.Groups = []astypes.AutoScalingGroup{st.colours[0].Group, st.colours[1].Group}
	var out []ColourStatus
	for _, c := range st.colours {
		cs := ColourStatus{Colour: c.Name, Group: c.group(), TargetGroup: c.TG.Name, Live: c == live, Traffic: st.share(c), Template: c.Template,
			Desired: c.desired(), Min: int(aws.ToInt32(c.Group.MinSize)), Pin: c.Pin}
		if withSchedule {
			sa, err := s.Clients.AutoScaling.DescribeScheduledActions(ctx, &autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String(c.group()), ScheduledActionNames: []string{ScaleInAction}})
			if err != nil {
				return nil, fmt.Errorf("describing the scheduled actions of %q: %w", c.group(), err)
			}
			for _, a := range sa.ScheduledUpdateGroupActions {
				if a.StartTime != nil {
					t := a.StartTime.UTC()
					cs.ScaleInAt = &t
				}
			}
		}
		out = append(out, cs)
	}
	return out, nil
}
