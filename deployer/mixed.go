package deployer

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// Groups with a mixed instances policy launch several instance types,
// On-Demand and Spot, from the policy's launch template. A deploy gives
// that template a new version like any group's, and hands Auto Scaling
// the group's whole policy (overrides and instances distribution) with
// only the template version changed: a desired configuration names the
// whole policy, and what it leaves out does not carry over.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DesiredConfiguration.html
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-mixed-instances-groups.html

// groupTemplate is the launch template a group launches from: its own,
// or its mixed instances policy's; nil for a launch configuration.
func groupTemplate(g astypes.AutoScalingGroup) *astypes.LaunchTemplateSpecification {
	if g.LaunchTemplate != nil {
		return g.LaunchTemplate
	}
	if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil {
		return m.LaunchTemplate.LaunchTemplateSpecification
	}
	return nil
}

// desiredTemplate is the launch template a refresh's desired
// configuration launches from, nil when it has none.
func desiredTemplate(dc *astypes.DesiredConfiguration) *astypes.LaunchTemplateSpecification {
	if dc == nil {
		return nil
	}
	if dc.LaunchTemplate != nil {
		return dc.LaunchTemplate
	}
	if m := dc.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil {
		return m.LaunchTemplate.LaunchTemplateSpecification
	}
	return nil
}

// mixedWith is g's mixed instances policy launching spec instead of its
// template, every override and the distribution kept; nil when g has no
// policy.
func mixedWith(g astypes.AutoScalingGroup, spec *astypes.LaunchTemplateSpecification) *astypes.MixedInstancesPolicy {
	m := g.MixedInstancesPolicy
	if m == nil || m.LaunchTemplate == nil {
		return nil
	}
	lt := *m.LaunchTemplate
	lt.LaunchTemplateSpecification = spec
	// DescribeAutoScalingGroups answers an override's template with both
	// its id and its name, and a request may name only one of them.
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateSpecification.html
	lt.Overrides = make([]astypes.LaunchTemplateOverrides, len(m.LaunchTemplate.Overrides))
	for i, ov := range m.LaunchTemplate.Overrides {
		if s := ov.LaunchTemplateSpecification; s != nil && aws.ToString(s.LaunchTemplateId) != "" {
			ov.LaunchTemplateSpecification = &astypes.LaunchTemplateSpecification{LaunchTemplateId: s.LaunchTemplateId, Version: s.Version}
		}
		lt.Overrides[i] = ov
	}
	out := *m
	out.LaunchTemplate = &lt
	return &out
}

// desiredConfiguration is the desired configuration of a refresh of g to
// version tv.
func desiredConfiguration(g astypes.AutoScalingGroup, tv *TemplateVersion) *astypes.DesiredConfiguration {
	spec := &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(tv.ID), Version: aws.String(strconv.FormatInt(tv.Version, 10))}
	if m := mixedWith(g, spec); m != nil {
		return &astypes.DesiredConfiguration{MixedInstancesPolicy: m}
	}
	return &astypes.DesiredConfiguration{LaunchTemplate: spec}
}

// checkMixed refuses a mixed instances policy whose overrides launch
// from other launch templates: those instance types would go on
// launching the image their own template names, which a deploy of one
// template's image does not change.
func checkMixed(g astypes.AutoScalingGroup) error {
	m := g.MixedInstancesPolicy
	if m == nil || m.LaunchTemplate == nil {
		return nil
	}
	base := m.LaunchTemplate.LaunchTemplateSpecification
	if base == nil {
		return refuse("auto scaling group %q has a mixed instances policy without a launch template", aws.ToString(g.AutoScalingGroupName))
	}
	for _, ov := range m.LaunchTemplate.Overrides {
		spec := ov.LaunchTemplateSpecification
		if spec == nil {
			continue
		}
		same := aws.ToString(spec.LaunchTemplateId) != "" && aws.ToString(spec.LaunchTemplateId) == aws.ToString(base.LaunchTemplateId) ||
			aws.ToString(spec.LaunchTemplateName) != "" && aws.ToString(spec.LaunchTemplateName) == aws.ToString(base.LaunchTemplateName)
		if !same {
			return refuse("auto scaling group %q: the override for instance type %s of its mixed instances policy launches from launch template %s, not the policy's %s; a deploy changes the image of one launch template, so those instances would keep their old image: launch every override from the policy's launch template",
				aws.ToString(g.AutoScalingGroupName), aws.ToString(ov.InstanceType), orText(aws.ToString(spec.LaunchTemplateId), aws.ToString(spec.LaunchTemplateName)),
				orText(aws.ToString(base.LaunchTemplateId), aws.ToString(base.LaunchTemplateName)))
		}
	}
	return nil
}

// mixedSummary describes a group's policy in a few words, for the plan.
func mixedSummary(g astypes.AutoScalingGroup) string {
	m := g.MixedInstancesPolicy
	if m == nil || m.LaunchTemplate == nil {
		return ""
	}
	var types []string
	for _, ov := range m.LaunchTemplate.Overrides {
		if t := aws.ToString(ov.InstanceType); t != "" {
			types = append(types, t)
		}
	}
	s := fmt.Sprintf("the mixed instances policy's %d instance types %v", len(types), types)
	if d := m.InstancesDistribution; d != nil {
		s += fmt.Sprintf(", On-Demand base %d and %d%% above it", aws.ToInt32(d.OnDemandBaseCapacity), aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity))
	}
	return s + ", kept as they are"
}

// groupIsMixed reports whether the session read group with a mixed
// instances policy.
func (s *Session) groupIsMixed(group string) bool {
	for _, g := range s.Groups {
		if aws.ToString(g.AutoScalingGroupName) == group {
			return g.MixedInstancesPolicy != nil
		}
	}
	return false
}
