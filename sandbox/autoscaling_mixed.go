package sandbox

import (
	"strconv"
)

// Mixed instances policies: a group that launches several instance types,
// On-Demand and Spot, from one launch template (or one per override).
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_MixedInstancesPolicy.html
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-mixed-instances-groups.html

// MixedInstancesPolicy is a group's (or a refresh's desired) mixed
// instances policy.
type MixedInstancesPolicy struct {
	LaunchTemplate LaunchTemplateRef
	Overrides      []MixedOverride
	Distribution   InstancesDistribution
}

// MixedOverride is one LaunchTemplateOverrides entry.
type MixedOverride struct {
	InstanceType string
	// LaunchTemplate launches this instance type instead of the policy's
	// template, when set.
	LaunchTemplate *LaunchTemplateRef
}

// InstancesDistribution says how much of the group is On-Demand and how
// each market picks its instance types.
type InstancesDistribution struct {
	OnDemandAllocationStrategy          string
	OnDemandBaseCapacity                int
	OnDemandPercentageAboveBaseCapacity int
	SpotAllocationStrategy              string
	SpotInstancePools                   int
	SpotMaxPrice                        *string
}

// maxMixedOverrides: "The maximum number of instance types that can be
// associated with an Auto Scaling group is 40."
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplate.html
const maxMixedOverrides = 40

// parseMixedInstancesPolicy reads a MixedInstancesPolicy structure and
// checks every launch template it names. Unset distribution fields take
// AWS's defaults: prioritized On-Demand, no base, 100% On-Demand above
// it, lowest-price Spot over 2 pools.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html
func (r *Region) parseMixedInstancesPolicy(p Params) (*MixedInstancesPolicy, *APIError) {
	lt := p.Sub("LaunchTemplate")
	if !lt.HasSub("LaunchTemplateSpecification") {
		return nil, validation("A launch template must be specified in the mixed instances policy: MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification is required")
	}
	base, err := r.parseLaunchTemplateRef(lt.Sub("LaunchTemplateSpecification"))
	if err != nil {
		return nil, err
	}
	m := &MixedInstancesPolicy{LaunchTemplate: *base}
	overrides := lt.MemberStructs("Overrides")
	if len(overrides) > maxMixedOverrides {
		return nil, validation("The number of instance types in the mixed instances policy, %d, exceeds the limit of %d", len(overrides), maxMixedOverrides)
	}
	for _, o := range overrides {
		if o.HasSub("InstanceRequirements") || o.Get("WeightedCapacity") != "" {
			return nil, validation("The sandbox does not play InstanceRequirements or WeightedCapacity in launch template overrides")
		}
		ov := MixedOverride{InstanceType: o.Get("InstanceType")}
		if ov.InstanceType == "" {
			return nil, validation("Each launch template override must specify InstanceType or InstanceRequirements")
		}
		if !instanceTypePattern.MatchString(ov.InstanceType) {
			return nil, validation("Invalid value '%s' for InstanceType in the launch template overrides", ov.InstanceType)
		}
		for _, seen := range m.Overrides {
			if seen.InstanceType == ov.InstanceType {
				return nil, validation("Duplicate instance type %s in the launch template overrides", ov.InstanceType)
			}
		}
		if o.HasSub("LaunchTemplateSpecification") {
			if ov.LaunchTemplate, err = r.parseLaunchTemplateRef(o.Sub("LaunchTemplateSpecification")); err != nil {
				return nil, err
			}
		}
		m.Overrides = append(m.Overrides, ov)
	}
	d := p.Sub("InstancesDistribution")
	dist := InstancesDistribution{OnDemandAllocationStrategy: "prioritized", OnDemandPercentageAboveBaseCapacity: 100, SpotAllocationStrategy: "lowest-price", SpotInstancePools: 2}
	if v := d.Get("OnDemandAllocationStrategy"); v != "" {
		if v != "prioritized" && v != "lowest-price" {
			return nil, validation("Invalid value %s for OnDemandAllocationStrategy. Valid values: prioritized, lowest-price", v)
		}
		dist.OnDemandAllocationStrategy = v
	}
	if v := d.Get("SpotAllocationStrategy"); v != "" {
		if !contains([]string{"lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized"}, v) {
			return nil, validation("Invalid value %s for SpotAllocationStrategy. Valid values: lowest-price, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized", v)
		}
		dist.SpotAllocationStrategy = v
	}
	ints := []struct {
		key      string
		dst      *int
		min, max int
	}{
		{"OnDemandBaseCapacity", &dist.OnDemandBaseCapacity, 0, 1 << 30},
		{"OnDemandPercentageAboveBaseCapacity", &dist.OnDemandPercentageAboveBaseCapacity, 0, 100},
		{"SpotInstancePools", &dist.SpotInstancePools, 1, 20},
	}
	for _, f := range ints {
		v, err := d.Int(f.key, *f.dst)
		if err != nil {
			return nil, validation("%s", err.Message)
		}
		if v < f.min || v > f.max {
			return nil, validation("1 validation error detected: Value '%d' at 'mixedInstancesPolicy.instancesDistribution.%s' failed to satisfy constraint: Member must have value between %d and %d", v, f.key, f.min, f.max)
		}
		*f.dst = v
	}
	if d.Has("SpotMaxPrice") {
		v := d.Get("SpotMaxPrice")
		dist.SpotMaxPrice = &v
	}
	m.Distribution = dist
	return m, nil
}

// templates are every launch template reference the policy launches from.
func (m *MixedInstancesPolicy) templates() []*LaunchTemplateRef {
	out := []*LaunchTemplateRef{&m.LaunchTemplate}
	for i := range m.Overrides {
		if m.Overrides[i].LaunchTemplate != nil {
			out = append(out, m.Overrides[i].LaunchTemplate)
		}
	}
	return out
}

// clone copies the policy so that a refresh's and the group's never share
// references.
func (m *MixedInstancesPolicy) clone() *MixedInstancesPolicy {
	if m == nil {
		return nil
	}
	c := *m
	c.Overrides = make([]MixedOverride, len(m.Overrides))
	for i, o := range m.Overrides {
		c.Overrides[i] = o
		if o.LaunchTemplate != nil {
			t := *o.LaunchTemplate
			c.Overrides[i].LaunchTemplate = &t
		}
	}
	return &c
}

// resolved is the policy with each template reference at its concrete
// version number, as a refresh launches it.
func (r *Region) resolvedMixed(m *MixedInstancesPolicy) *MixedInstancesPolicy {
	c := m.clone()
	for _, ref := range c.templates() {
		id, ver := r.resolvedVersion(ref)
		name := ""
		if lt := r.LaunchTemplates[id]; lt != nil {
			name = lt.Name
		}
		*ref = LaunchTemplateRef{ID: id, Name: name, Version: ver}
	}
	return c
}

// groupTemplates are the launch template references a group launches
// from: its launch template, or every one of its mixed instances policy.
func (g *AutoScalingGroup) groupTemplates() []*LaunchTemplateRef {
	if g.MixedInstancesPolicy != nil {
		return g.MixedInstancesPolicy.templates()
	}
	if g.LaunchTemplate != nil {
		return []*LaunchTemplateRef{g.LaunchTemplate}
	}
	return nil
}

// mixedChoice is what the next launch of a mixed instances group uses.
type mixedChoice struct {
	ref          LaunchTemplateRef
	instanceType string // "" keeps the template's
	spot         bool
}

// chooseMixed picks the market and the override of the next instance of
// g launched from m. The On-Demand part of a group of n instances is the
// base capacity plus OnDemandPercentageAboveBaseCapacity of the rest,
// rounded up; a launch that keeps the group below it is On-Demand, any
// other Spot.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html
//
// On-Demand instances take the first override ("prioritized" uses the
// order; the sandbox has no prices, so "lowest-price" takes the order as
// the price order too). Spot instances spread over the overrides: AWS
// diversifies them over several pools, and the sandbox takes the reading
// where a group's instances differ in type as soon as it can, so that
// nothing may assume that one group runs one instance type.
func (r *Region) chooseMixed(g *AutoScalingGroup, m *MixedInstancesPolicy) mixedChoice {
	onDemand, spotByType := 0, map[string]int{}
	live := g.live()
	for _, in := range live {
		if inst := r.Instances[in.ID]; inst != nil && inst.Lifecycle == "spot" {
			spotByType[in.InstanceType]++
		} else {
			onDemand++
		}
	}
	n := len(live) + 1
	d := m.Distribution
	want := min(n, d.OnDemandBaseCapacity)
	if above := n - d.OnDemandBaseCapacity; above > 0 {
		want += (above*d.OnDemandPercentageAboveBaseCapacity + 99) / 100
	}
	ch := mixedChoice{ref: m.LaunchTemplate, spot: onDemand >= want}
	if len(m.Overrides) == 0 {
		return ch
	}
	pick := m.Overrides[0]
	if ch.spot {
		for _, o := range m.Overrides[1:] {
			if spotByType[o.InstanceType] < spotByType[pick.InstanceType] {
				pick = o
			}
		}
	}
	ch.instanceType = pick.InstanceType
	if pick.LaunchTemplate != nil {
		ch.ref = *pick.LaunchTemplate
	}
	return ch
}

// mixedMatches reports whether an instance runs what the resolved policy
// m would launch for its type: an instance type of the overrides, from
// that override's template version.
func mixedMatches(m *MixedInstancesPolicy, in *ASGInstance) bool {
	if len(m.Overrides) == 0 {
		return in.LaunchTemplate.ID == m.LaunchTemplate.ID && in.LaunchTemplate.Version == m.LaunchTemplate.Version
	}
	for _, o := range m.Overrides {
		if o.InstanceType != in.InstanceType {
			continue
		}
		ref := m.LaunchTemplate
		if o.LaunchTemplate != nil {
			ref = *o.LaunchTemplate
		}
		return in.LaunchTemplate.ID == ref.ID && in.LaunchTemplate.Version == ref.Version
	}
	return false
}

// renderMixedInstancesPolicy is the MixedInstancesPolicy element.
func renderMixedInstancesPolicy(name string, m *MixedInstancesPolicy) *X {
	if m == nil {
		return nil
	}
	d := m.Distribution
	var maxPrice *X
	if d.SpotMaxPrice != nil {
		maxPrice = T("SpotMaxPrice", *d.SpotMaxPrice)
	}
	return E(name,
		E("LaunchTemplate",
			renderASGLaunchTemplate("LaunchTemplateSpecification", &m.LaunchTemplate),
			List("Overrides", Items("member", m.Overrides, func(o MixedOverride) []*X {
				return []*X{T("InstanceType", o.InstanceType), renderASGLaunchTemplate("LaunchTemplateSpecification", o.LaunchTemplate)}
			}))),
		E("InstancesDistribution",
			T("OnDemandAllocationStrategy", d.OnDemandAllocationStrategy), I("OnDemandBaseCapacity", d.OnDemandBaseCapacity),
			I("OnDemandPercentageAboveBaseCapacity", d.OnDemandPercentageAboveBaseCapacity),
			T("SpotAllocationStrategy", d.SpotAllocationStrategy), spotPools(d), maxPrice))
}

// spotPools: SpotInstancePools applies to the lowest-price strategy only.
func spotPools(d InstancesDistribution) *X {
	if d.SpotAllocationStrategy != "lowest-price" {
		return nil
	}
	return T("SpotInstancePools", strconv.Itoa(d.SpotInstancePools))
}

// usesAnyImageAlias reports whether any of refs launches an image alias.
func (r *Region) usesAnyImageAlias(refs []*LaunchTemplateRef) bool {
	for _, ref := range refs {
		if r.usesImageAlias(ref) {
			return true
		}
	}
	return false
}

// allNumbered reports whether refs name numbered versions only (and at
// least one template): Auto Scaling rolls back only to those.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RollbackInstanceRefresh.html
func allNumbered(refs []*LaunchTemplateRef) bool {
	for _, ref := range refs {
		if !isNumberedVersion(ref.Version) {
			return false
		}
	}
	return len(refs) > 0
}

// parseDesiredConfiguration reads StartInstanceRefresh's
// DesiredConfiguration: "If you specify a desired configuration, you must
// specify either a LaunchTemplate or a MixedInstancesPolicy."
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DesiredConfiguration.html
func (r *Region) parseDesiredConfiguration(p Params) (*LaunchTemplateRef, *MixedInstancesPolicy, *APIError) {
	if !p.HasSub("DesiredConfiguration") {
		return nil, nil, nil
	}
	dc := p.Sub("DesiredConfiguration")
	hasLT, hasMixed := dc.HasSub("LaunchTemplate"), dc.HasSub("MixedInstancesPolicy")
	switch {
	case hasLT && hasMixed, !hasLT && !hasMixed:
		return nil, nil, validation("The request isn't valid. A desired configuration must specify either a LaunchTemplate or a MixedInstancesPolicy.")
	case hasMixed:
		m, err := r.parseMixedInstancesPolicy(dc.Sub("MixedInstancesPolicy"))
		return nil, m, err
	}
	ref, err := r.parseLaunchTemplateRef(dc.Sub("LaunchTemplate"))
	return ref, nil, err
}

// refreshMixed is the policy, at concrete versions, that a refresh
// launches: its desired one, or the group's when it has no desired
// configuration; nil when it launches from a launch template.
func (r *Region) refreshMixed(g *AutoScalingGroup, rf *InstanceRefresh) *MixedInstancesPolicy {
	switch {
	case rf.DesiredMixed != nil:
		return r.resolvedMixed(rf.DesiredMixed)
	case rf.Desired == nil && g.MixedInstancesPolicy != nil:
		return r.resolvedMixed(g.MixedInstancesPolicy)
	}
	return nil
}
