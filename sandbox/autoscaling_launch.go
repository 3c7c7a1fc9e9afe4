package sandbox

import (
	"strconv"
)

// What a group launches from: a launch template, a mixed instances
// policy, or a launch configuration. Exactly one of them: "Valid requests
// must contain either LaunchTemplate, LaunchConfigurationName, InstanceId
// or MixedInstancesPolicy parameter."
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html

// applyLaunchSource reads the group's launch source of a Create or Update
// request; true when the request named one.
func (c *call) applyLaunchSource(ng *AutoScalingGroup) (bool, *APIError) {
	p, r := c.p, c.r
	n := 0
	for _, has := range []bool{p.HasSub("LaunchTemplate"), p.HasSub("MixedInstancesPolicy"), p.Get("LaunchConfigurationName") != "", p.Get("InstanceId") != ""} {
		if has {
			n++
		}
	}
	if n == 0 {
		return false, nil
	}
	if n > 1 {
		return false, validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	switch {
	case p.Get("InstanceId") != "":
		return false, validation("The sandbox does not create Auto Scaling groups from an instance (InstanceId)")
	case p.HasSub("LaunchTemplate"):
		ref, err := r.parseLaunchTemplateRef(p.Sub("LaunchTemplate"))
		if err != nil {
			return false, err
		}
		ng.LaunchTemplate, ng.MixedInstancesPolicy, ng.LaunchConfiguration = ref, nil, ""
	case p.HasSub("MixedInstancesPolicy"):
		// An update names the whole policy: the sandbox takes the stricter
		// reading that what the request leaves out (overrides, the
		// distribution) does not carry over from the group's policy.
		m, err := r.parseMixedInstancesPolicy(p.Sub("MixedInstancesPolicy"))
		if err != nil {
			return false, err
		}
		ng.LaunchTemplate, ng.MixedInstancesPolicy, ng.LaunchConfiguration = nil, m, ""
	default:
		name := p.Get("LaunchConfigurationName")
		if _, ok := r.LaunchConfigs[name]; !ok {
			return false, validation("Launch configuration name not found - Launch configuration %s not found", name)
		}
		ng.LaunchTemplate, ng.MixedInstancesPolicy, ng.LaunchConfiguration = nil, nil, name
	}
	return true, nil
}

// groupLaunch is what a group's next instance launches from.
type groupLaunch struct {
	data          LaunchTemplateData
	template      LaunchTemplateRef // concrete version; zero for a launch configuration
	configuration string
}

// nextLaunch resolves what the group's next instance launches from: a
// running refresh's target, else the group's own source.
func (r *Region) nextLaunch(g *AutoScalingGroup) (*groupLaunch, *APIError) {
	ref, mixed, lc := g.LaunchTemplate, g.MixedInstancesPolicy, g.LaunchConfiguration
	if _, st := g.runningRefresh(); st != nil {
		t := st.target
		ref, mixed = &t, st.mixed
		if t.ID != "" {
			lc = ""
		}
	}
	if mixed != nil {
		ch := r.chooseMixed(g, mixed)
		lt, v, err := r.resolveLaunchTemplate(ch.ref.ID, ch.ref.Name, ch.ref.Version)
		if err != nil {
			return nil, err
		}
		v.launched = true
		gl := &groupLaunch{data: v.Data, template: LaunchTemplateRef{ID: lt.ID, Name: lt.Name, Version: strconv.Itoa(v.Number)}}
		if ch.instanceType != "" {
			gl.data.InstanceType = ch.instanceType
		}
		gl.data.MarketType, gl.data.SpotMaxPrice = "", ""
		if ch.spot {
			gl.data.MarketType = "spot"
			if p := mixed.Distribution.SpotMaxPrice; p != nil {
				gl.data.SpotMaxPrice = *p
			}
		}
		return gl, nil
	}
	if ref != nil && ref.ID != "" || lc == "" {
		if ref == nil {
			return nil, validation("The Auto Scaling group has no launch template")
		}
		lt, v, err := r.resolveLaunchTemplate(ref.ID, ref.Name, ref.Version)
		if err != nil {
			return nil, err
		}
		v.launched = true
		return &groupLaunch{data: v.Data, template: LaunchTemplateRef{ID: lt.ID, Name: lt.Name, Version: strconv.Itoa(v.Number)}}, nil
	}
	cfg, ok := r.LaunchConfigs[lc]
	if !ok {
		return nil, validation("Launch configuration %s not found", lc)
	}
	return &groupLaunch{data: cfg.launchData(), configuration: lc}, nil
}
