package deployer

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// Health is the load balancer's view of a target at one pass: every
// target of every target group, with the AMI each runs.
type Health struct {
	// AMI is the image targets must run to count as on it.
	AMI string `json:"ami"`
	// Healthy counts targets healthy on AMI; Total counts every target
	// (draining ones too: they have not left yet).
	Healthy      int                 `json:"healthy"`
	Total        int                 `json:"total"`
	OnAMI        int                 `json:"on_ami"`
	Draining     int                 `json:"draining"`
	Desired      int                 `json:"desired"`
	TargetGroups []TargetGroupHealth `json:"target_groups"`
	// Problems explains why the gate is not open yet, one line each.
	Problems []string `json:"problems,omitempty"`
	// Failing are the targets on AMI that the load balancer found
	// unhealthy (UnhealthyThresholdCount failed checks in a row), one line
	// each: an image that fails its checks fails the deploy at once,
	// whatever health checks the group itself uses.
	Failing []string `json:"failing,omitempty"`
}

// TargetGroupHealth is one target group's targets.
type TargetGroupHealth struct {
	TargetGroup
	Healthy int            `json:"healthy"`
	Targets []TargetHealth `json:"targets"`
}

// TargetHealth is one target as the load balancer sees it.
type TargetHealth struct {
	ID          string `json:"id"`
	Port        int32  `json:"port,omitempty"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Description string `json:"description,omitempty"`
	AMI         string `json:"ami,omitempty"`
}

// OK reports whether the gate is open: every target healthy and on the
// AMI, none draining, and at least the group's desired capacity healthy
// in each target group.
func (h *Health) OK() bool { return len(h.Problems) == 0 }

// healthGate reads target health: one DescribeTargetHealth per target
// group per pass, never one per instance. It learns each instance's AMI
// once (an instance never changes its image), in batches.
type healthGate struct {
	c       Clients
	images  map[string]string
	zones   map[string]string   // each instance's Availability Zone
	lbZones map[string][]string // each load balancer's, read when needed
	// exempt are instances a deploy leaves on their old image because
	// the user said so (an Ignore preference): not waited for while they
	// run another AMI.
	exempt map[string]string
}

func newHealthGate(c Clients) *healthGate {
	return &healthGate{c: c, images: map[string]string{}, zones: map[string]string{}}
}

// describeInstancesBatch is how many instance ids one DescribeInstances
// asks about.
const describeInstancesBatch = 200

// learnImages finds the AMI of the instances it does not know yet. It
// asks with an instance-id filter rather than InstanceIds: EC2 is
// eventually consistent, and an instance Auto Scaling launched a moment
// ago may not be listed yet. By id, one such instance fails the whole
// batch with InvalidInstanceID.NotFound on every pass until it shows up;
// by filter it is simply absent, its AMI stays unknown (the gate stays
// closed for it) and it is asked about again on the next pass.
func (h *healthGate) learnImages(ctx context.Context, ids []string) error {
	var unknown []string
	for _, id := range ids {
		if _, ok := h.images[id]; !ok && !contains(unknown, id) {
			unknown = append(unknown, id)
		}
	}
	for len(unknown) > 0 {
		n := min(len(unknown), describeInstancesBatch)
		batch := unknown[:n]
		unknown = unknown[n:]
		p := ec2.NewDescribeInstancesPaginator(h.c.EC2, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: batch}}})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describing instances %s: %w", strings.Join(batch, ", "), err)
			}
			for _, r := range out.Reservations {
				for _, in := range r.Instances {
					h.images[aws.ToString(in.InstanceId)] = aws.ToString(in.ImageId)
					if in.Placement != nil {
						h.zones[aws.ToString(in.InstanceId)] = aws.ToString(in.Placement.AvailabilityZone)
					}
				}
			}
		}
	}
	return nil
}

// explainState says in words why a target is not up.
func explainState(tg TargetGroup, t TargetHealth) string {
	switch t.State {
	case "draining":
		return fmt.Sprintf("%s in %s is draining (leaving the target group; draining never counts as up)", t.ID, tg.Name)
	case "unused":
		if t.Reason == "Target.NotInUse" {
			return fmt.Sprintf("%s in %s is unused: no listener or rule forwards to target group %s, so the load balancer never health-checks it; forward to it from a listener rule (a weight of 0 is enough) or remove it from the group", t.ID, tg.Name, tg.Name)
		}
		return fmt.Sprintf("%s in %s is unused (%s: %s)", t.ID, tg.Name, t.Reason, t.Description)
	case "initial":
		return fmt.Sprintf("%s in %s is being registered (initial health checks)", t.ID, tg.Name)
	}
	if t.Description != "" {
		return fmt.Sprintf("%s in %s is %s: %s (%s)", t.ID, tg.Name, t.State, t.Description, t.Reason)
	}
	if t.Reason != "" {
		return fmt.Sprintf("%s in %s is %s (%s)", t.ID, tg.Name, t.State, t.Reason)
	}
	return fmt.Sprintf("%s in %s is %s", t.ID, tg.Name, t.State)
}

// read reads every target group once and judges the targets against ami
// and the group's desired capacity.
func (h *healthGate) read(ctx context.Context, g astypes.AutoScalingGroup, tgs []TargetGroup, ami string) (*Health, error) {
	hl := &Health{AMI: ami, Desired: int(aws.ToInt32(g.DesiredCapacity))}
	member := map[string]bool{}
	for _, in := range g.Instances {
		member[aws.ToString(in.InstanceId)] = true
	}
	var ids []string
	for _, tg := range tgs {
		out, err := h.c.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg.ARN)})
		if err != nil {
			return nil, fmt.Errorf("describing target health of %s: %w", tg.Name, err)
		}
		th := TargetGroupHealth{TargetGroup: tg}
		for _, d := range out.TargetHealthDescriptions {
			t := TargetHealth{}
			if d.Target != nil {
				t.ID, t.Port = aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)
			}
			if d.TargetHealth != nil {
				t.State, t.Reason, t.Description = string(d.TargetHealth.State), string(d.TargetHealth.Reason), aws.ToString(d.TargetHealth.Description)
			}
			th.Targets = append(th.Targets, t)
			if strings.HasPrefix(t.ID, "i-") {
				ids = append(ids, t.ID)
			}
		}
		sort.Slice(th.Targets, func(i, j int) bool { return th.Targets[i].ID < th.Targets[j].ID })
		hl.TargetGroups = append(hl.TargetGroups, th)
	}
	if len(tgs) == 0 {
		// No load balancer: the group's own health is all there is.
		for _, in := range g.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	if err := h.learnImages(ctx, ids); err != nil {
		return nil, err
	}
	for i := range hl.TargetGroups {
		tg := &hl.TargetGroups[i]
		fromGroup := 0
		for j := range tg.Targets {
			t := &tg.Targets[j]
			var known bool
			t.AMI, known = h.images[t.ID]
			if _, ok := h.exempt[t.ID]; ok && ami != "" && known && t.AMI != ami {
				if t.State == string(elbtypes.TargetHealthStateEnumHealthy) && member[t.ID] {
					fromGroup++
				}
				continue
			}
			hl.Total++
			onAMI := ami == "" || t.AMI == ami
			if onAMI {
				hl.OnAMI++
			}
			switch {
			case t.State == string(elbtypes.TargetHealthStateEnumHealthy) && onAMI:
				tg.Healthy++
				hl.Healthy++
				if member[t.ID] {
					fromGroup++
				}
			case t.State == string(elbtypes.TargetHealthStateEnumHealthy) && !known:
				hl.Problems = append(hl.Problems, fmt.Sprintf("%s in %s is healthy, but EC2 does not list the instance yet, so its AMI is not known", t.ID, tg.Name))
			case t.State == string(elbtypes.TargetHealthStateEnumHealthy):
				hl.Problems = append(hl.Problems, fmt.Sprintf("%s in %s is healthy but runs %s, not %s", t.ID, tg.Name, t.AMI, ami))
			default:
				if t.State == string(elbtypes.TargetHealthStateEnumDraining) {
					hl.Draining++
				}
				why := explainState(tg.TargetGroup, *t)
				if t.Reason == string(elbtypes.TargetHealthReasonEnumNotInUse) {
					var err error
					if why, err = h.explainNotInUse(ctx, tg.TargetGroup, *t); err != nil {
						return nil, err
					}
				}
				hl.Problems = append(hl.Problems, why)
				if t.State == string(elbtypes.TargetHealthStateEnumUnhealthy) && known && ami != "" && t.AMI == ami {
					hl.Failing = append(hl.Failing, explainState(tg.TargetGroup, *t))
				}
			}
		}
		if fromGroup < hl.Desired {
			hl.Problems = append(hl.Problems, fmt.Sprintf("%s has %d of the group's %d instances healthy on %s", tg.Name, fromGroup, hl.Desired, ami))
		}
	}
	if len(tgs) == 0 {
		ok := 0
		for _, in := range g.Instances {
			id := aws.ToString(in.InstanceId)
			t := TargetHealth{ID: id, State: strings.ToLower(aws.ToString(in.HealthStatus)), AMI: h.images[id]}
			if _, ex := h.exempt[id]; ex && ami != "" && t.AMI != ami {
				if in.LifecycleState == astypes.LifecycleStateInService && t.State == "healthy" {
					ok++
				}
				continue
			}
			hl.Total++
			if ami == "" || t.AMI == ami {
				hl.OnAMI++
			}
			if in.LifecycleState == astypes.LifecycleStateInService && t.State == "healthy" && (ami == "" || t.AMI == ami) {
				ok++
				continue
			}
			on := t.AMI
			if _, known := h.images[id]; !known {
				on = "an AMI not known yet (EC2 does not list the instance yet)"
			}
			hl.Problems = append(hl.Problems, fmt.Sprintf("%s is %s, %s, on %s", id, in.LifecycleState, t.State, on))
		}
		hl.Healthy = ok
		if ok < hl.Desired {
			hl.Problems = append(hl.Problems, fmt.Sprintf("%d of the group's %d instances are in service and healthy on %s", ok, hl.Desired, ami))
		}
	}
	return hl, nil
}
