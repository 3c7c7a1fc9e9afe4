package deployer

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// A load balancer routes only to targets in the Availability Zones of its
// subnets; AWS reports a target elsewhere as unused with Target.NotInUse,
// the reason code it also gives for a target group no listener or rule
// forwards to. The gate says which of the two it is, and plan warns about
// a group launching into zones its load balancer does not use.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html

// loadBalancerZones returns the Availability Zones of each load balancer
// in arns, reading each load balancer once per gate.
func (h *healthGate) loadBalancerZones(ctx context.Context, arns []string) (map[string][]string, error) {
	if h.lbZones == nil {
		h.lbZones = map[string][]string{}
	}
	var unknown []string
	for _, arn := range arns {
		if _, ok := h.lbZones[arn]; !ok && !contains(unknown, arn) {
			unknown = append(unknown, arn)
		}
	}
	if len(unknown) > 0 {
		out, err := h.c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: unknown})
		if err != nil {
			return nil, fmt.Errorf("describing load balancers %s: %w", strings.Join(unknown, ", "), err)
		}
		for _, lb := range out.LoadBalancers {
			var zones []string
			for _, z := range lb.AvailabilityZones {
				zones = append(zones, aws.ToString(z.ZoneName))
			}
			sort.Strings(zones)
			h.lbZones[aws.ToString(lb.LoadBalancerArn)] = zones
		}
	}
	out := map[string][]string{}
	for _, arn := range arns {
		out[arn] = h.lbZones[arn]
	}
	return out, nil
}

// explainNotInUse says why a target is unused with Target.NotInUse: no
// listener or rule forwards to its group, or it runs in an Availability
// Zone its load balancer does not use.
func (h *healthGate) explainNotInUse(ctx context.Context, tg TargetGroup, t TargetHealth) (string, error) {
	if len(tg.LoadBalancers) == 0 && !strings.Contains(t.Description, "Availability Zone") {
		return explainState(tg, t), nil
	}
	byLB, err := h.loadBalancerZones(ctx, tg.LoadBalancers)
	if err != nil {
		return "", err
	}
	var enabled []string
	for _, zones := range byLB {
		for _, z := range zones {
			if !contains(enabled, z) {
				enabled = append(enabled, z)
			}
		}
	}
	sort.Strings(enabled)
	zone := h.zones[t.ID]
	if zone == "" {
		zone = "an Availability Zone"
	}
	return fmt.Sprintf("%s in %s is unused: it runs in %s, which the load balancer does not use (its subnets are in %s), so it never health-checks or routes to it; add a subnet in %s to the load balancer, or take the group's subnets there out of its vpc_zone_identifier",
		t.ID, tg.Name, zone, orText(strings.Join(enabled, ", "), "no zone"), zone), nil
}

// zoneWarnings warns about each group that launches into Availability
// Zones none of its target groups' load balancers uses: its instances
// there would never pass the gate.
func (s *Session) zoneWarnings(ctx context.Context, groups []astypes.AutoScalingGroup) ([]Change, error) {
	var out []Change
	for _, g := range groups {
		arns := append([]string(nil), g.TargetGroupARNs...)
		for _, ts := range g.TrafficSources {
			if id := aws.ToString(ts.Identifier); strings.Contains(id, ":targetgroup/") && !contains(arns, id) {
				arns = append(arns, id)
			}
		}
		if len(arns) == 0 {
			continue
		}
		tgs, err := s.Clients.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: arns})
		if err != nil {
			return nil, fmt.Errorf("describing the target groups of %q: %w", aws.ToString(g.AutoScalingGroupName), err)
		}
		for _, tg := range tgs.TargetGroups {
			byLB, err := s.gate.loadBalancerZones(ctx, tg.LoadBalancerArns)
			if err != nil {
				return nil, err
			}
			lbs := append([]string(nil), tg.LoadBalancerArns...)
			sort.Strings(lbs)
			for _, lb := range lbs {
				var missing []string
				for _, z := range g.AvailabilityZones {
					if !contains(byLB[lb], z) {
						missing = append(missing, z)
					}
				}
				if len(missing) == 0 {
					continue
				}
				sort.Strings(missing)
				out = append(out, Change{Action: "warn", Detail: fmt.Sprintf("%q launches into %s, which load balancer %s does not use (its subnets are in %s): the load balancer reports instances there as unused (Target.NotInUse) in %s and never routes to them, so the deploy waits for them until health_timeout; add a subnet there to the load balancer, or take the group's subnets there out of its vpc_zone_identifier",
					aws.ToString(g.AutoScalingGroupName), strings.Join(missing, ", "), loadBalancerName(lb), strings.Join(byLB[lb], ", "), aws.ToString(tg.TargetGroupName))})
			}
		}
	}
	return out, nil
}

// loadBalancerName is the name in a load balancer's ARN
// (…:loadbalancer/app/NAME/ID).
func loadBalancerName(arn string) string {
	parts := strings.Split(arn, "/")
	if len(parts) >= 3 {
		return parts[len(parts)-2]
	}
	return arn
}
