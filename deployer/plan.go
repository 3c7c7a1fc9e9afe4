package deployer

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Plan is what a deploy would change, computed with reads only.
type Plan struct {
	Target   string           `json:"target"`
	Region   string           `json:"region"`
	Group    string           `json:"group"`
	Strategy string           `json:"strategy"`
	AMI      Image            `json:"ami"`
	Current  *TemplateVersion `json:"current,omitempty"`
	Desired  int              `json:"desired"`
	// AMIs are the images the group's instances run now.
	AMIs    []AMIUse `json:"amis_in_use"`
	Health  *Health  `json:"health"`
	Changes []Change `json:"changes"`
	// Colours are blue-green's two groups; Group, Current, AMIs and
	// Health are then the live colour's.
	Colours []ColourStatus `json:"colours,omitempty"`
	// States are the target's instances protected from scale in or in
	// Standby (both colours' for blue-green).
	States InstanceStates `json:"instance_states"`
	// Policy is the admission policy's verdict on the AMI (nil without a
	// policy); a plan is made only for an admitted AMI.
	Policy *PolicyVerdict `json:"policy,omitempty"`
}

// AMIUse is how many of a group's instances run an AMI.
type AMIUse struct {
	AMI       string `json:"ami"`
	Instances int    `json:"instances"`
}

// Plan checks every precondition and says what Run would change. It makes
// no mutating call; a refusal has the same message Run would give.
func (d *Deployer) Plan(ctx context.Context, ami string) (*Plan, error) {
	d.defaults()
	s, err := d.begin(ctx, ami, false)
	if err != nil {
		return nil, err
	}
	changes, err := d.Strategy.Plan(ctx, s)
	if err != nil {
		return nil, asRefused(err)
	}
	noop := len(changes) == 1 && changes[0].Action == "keep"
	refs, err := s.refChanges(ctx, noop)
	if err != nil {
		return nil, asRefused(err)
	}
	changes = append(refs, changes...)
	for _, g := range s.Groups {
		if aws.ToString(g.HealthCheckType) != "ELB" && len(s.TargetGroups) > 0 {
			changes = append(changes, Change{Action: "warn", Detail: fmt.Sprintf("%q uses %s health checks, so Auto Scaling neither waits for nor replaces instances its load balancer finds unhealthy; phoenix reads target health on every pass and fails the deploy at the first new instance whose target fails its checks (health_check_type = \"ELB\" lets Auto Scaling act on them too)", aws.ToString(g.AutoScalingGroupName), orText(aws.ToString(g.HealthCheckType), "EC2"))})
		}
	}
	var colours []ColourStatus
	if d.Target.PeerGroup != "" {
		if colours, err = s.serveLive(ctx, false); err != nil {
			return nil, asRefused(err)
		}
	}
	zones, err := s.zoneWarnings(ctx, s.Groups)
	if err != nil {
		return nil, asRefused(err)
	}
	changes = append(changes, zones...)
	h, err := s.gate.read(ctx, s.Group, s.TargetGroups, "")
	if err != nil {
		return nil, asRefused(err)
	}
	uses, err := s.amisInUse(ctx)
	if err != nil {
		return nil, asRefused(err)
	}
	return &Plan{Target: d.Target.Name, Region: d.Target.Region, Group: aws.ToString(s.Group.AutoScalingGroupName), Strategy: d.Strategy.Name(), AMI: s.AMI,
		Current: s.Template, Desired: int(aws.ToInt32(s.Group.DesiredCapacity)), AMIs: uses, Health: h, Changes: changes, Colours: colours,
		States: s.instanceStates(s.Groups, nil), Policy: s.verdict}, nil
}

// amisInUse counts the group's instances per AMI.
func (s *Session) amisInUse(ctx context.Context) ([]AMIUse, error) {
	var ids []string
	for _, in := range s.Group.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if err := s.gate.learnImages(ctx, ids); err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, id := range ids {
		count[s.gate.images[id]]++
	}
	var out []AMIUse
	for ami, n := range count {
		out = append(out, AMIUse{AMI: ami, Instances: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Instances != out[j].Instances {
			return out[i].Instances > out[j].Instances
		}
		return out[i].AMI < out[j].AMI
	})
	return out, nil
}
