package deployer

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	if err := s.readTemplate(ctx); err != nil {
		return nil, err
	}
	if s.TargetGroups, err = s.readTargetGroups(ctx); err != nil {
		return nil, err
	}
	st := &Status{Target: d.Target.Name, Region: d.Target.Region, Group: d.Target.Group, Template: s.Template, Desired: int(aws.ToInt32(g.DesiredCapacity))}
	for _, in := range g.Instances {
		if in.LifecycleState == "InService" {
			st.InService++
		}
	}
	rf, err := s.latestRefresh(ctx, d.Target.Group)
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
	locks, err := s.readLocks(ctx)
	if err != nil {
		return nil, err
	}
	if l, ok := locks[d.Target.Group]; ok && d.now().Before(l.Expires) {
		st.Lock = &l
	}
	return st, nil
}
