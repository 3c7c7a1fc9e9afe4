package sandbox

import (
	"sort"
	"strconv"
)

// Test fixtures for the Auto Scaling tests (package sandbox_test): they
// create launch templates, images and target groups directly in the model
// and drive target health the way the load balancer would.

// FixtureImage registers a private copy of a public Debian image whose
// sandbox:health tag is health ("" for a healthy image).
func (s *Sandbox) FixtureImage(region, health string) string {
	return fixture(s, region, func(r *Region) string {
		var base *Image
		for _, im := range r.Images {
			if im.Builtin && im.OwnerID == OwnerDebian && im.Architecture == "x86_64" && (base == nil || im.Name > base.Name) {
				base = im
			}
		}
		im := *base
		im.ID, im.Builtin, im.OwnerID, im.OwnerAlias = newID("ami"), false, AccountID, ""
		im.Name = "fixture-" + im.ID
		im.Permissions, im.Tags = LaunchPermissions{}, Tags{}
		if health != "" {
			im.Tags[HealthTag] = health
		}
		r.Images[im.ID] = &im
		return im.ID
	})
}

// FixtureLaunchTemplate creates a launch template with one version per
// image; version 1 is the default.
func (s *Sandbox) FixtureLaunchTemplate(region, name string, images ...string) string {
	return fixture(s, region, func(r *Region) string {
		lt := &LaunchTemplate{ID: newID("lt"), Name: name, Versions: map[int]*LaunchTemplateVersion{}, Tags: Tags{}, Created: r.w.now(), DefaultVersion: 1}
		r.LaunchTemplates[lt.ID] = lt
		for _, im := range images {
			addVersion(r, lt, im)
		}
		return lt.ID
	})
}

func addVersion(r *Region, lt *LaunchTemplate, image string) int {
	lt.LatestVersion++
	lt.Versions[lt.LatestVersion] = &LaunchTemplateVersion{Number: lt.LatestVersion, Created: r.w.now(),
		Data: LaunchTemplateData{ImageID: image, InstanceType: "t3.micro"}}
	return lt.LatestVersion
}

// FixtureLaunchTemplateVersion adds a version and returns its number.
func (s *Sandbox) FixtureLaunchTemplateVersion(region, id, image string) string {
	return fixture(s, region, func(r *Region) string { return strconv.Itoa(addVersion(r, r.LaunchTemplates[id], image)) })
}

// FixtureEncryptedLaunchTemplate creates a launch template whose root
// volume is encrypted with kmsKey.
func (s *Sandbox) FixtureEncryptedLaunchTemplate(region, name, image, kmsKey string) string {
	id := s.FixtureLaunchTemplate(region, name, image)
	fixture(s, region, func(r *Region) string {
		enc := true
		d := &r.LaunchTemplates[id].Versions[1].Data
		d.BlockDevices = []LaunchBlockDevice{{DeviceName: "/dev/xvda", Encrypted: &enc, KmsKeyID: kmsKey}}
		return ""
	})
	return id
}

// FixtureDefaultSubnets lists the default subnets by availability zone.
func (s *Sandbox) FixtureDefaultSubnets(region string) []string {
	var out []string
	fixture(s, region, func(r *Region) string {
		var subs []*Subnet
		for _, sn := range r.Subnets {
			if sn.IsDefault {
				subs = append(subs, sn)
			}
		}
		sort.Slice(subs, func(i, j int) bool { return subs[i].AZ < subs[j].AZ })
		for _, sn := range subs {
			out = append(out, sn.ID)
		}
		return ""
	})
	return out
}

// FixtureTargetGroup creates an HTTP target group in the default VPC with
// an active load balancer and listener forwarding to it, and a 1 s
// deregistration delay.
func (s *Sandbox) FixtureTargetGroup(region, name string) string {
	return fixture(s, region, func(r *Region) string {
		now := r.w.now()
		vpc := ""
		for _, v := range r.VPCs {
			if v.IsDefault {
				vpc = v.ID
			}
		}
		tg := &TargetGroup{ARN: r.arn("elasticloadbalancing", "targetgroup/"+name+"/"+randHex(16)), Name: name, Protocol: "HTTP", Port: 80,
			VpcID: vpc, TargetType: "instance", Attributes: map[string]string{"deregistration_delay.timeout_seconds": "1"}, Tags: Tags{}, Created: now,
			HealthCheck: TargetGroupHealthCheck{Enabled: true, Protocol: "HTTP", Port: "traffic-port", Path: "/", IntervalSeconds: 5, TimeoutSeconds: 2, HealthyThreshold: 2, UnhealthyThreshold: 2, Matcher: "200"}}
		r.TargetGroups[tg.ARN] = tg
		// The load balancer uses every default subnet: a target in a zone
		// none of its subnets covers would be unused.
		var subnets []string
		for _, sn := range r.Subnets {
			if sn.IsDefault {
				subnets = append(subnets, sn.ID)
			}
		}
		sort.Strings(subnets)
		lb := &LoadBalancer{ARN: r.arn("elasticloadbalancing", "loadbalancer/app/"+name+"/"+randHex(16)), Name: name, Scheme: "internet-facing",
			Type: "application", VpcID: vpc, SubnetIDs: subnets, State: "active", Tags: Tags{}, Created: now, Attributes: map[string]string{}}
		r.LoadBalancers[lb.ARN] = lb
		l := &Listener{ARN: r.arn("elasticloadbalancing", "listener/app/"+name+"/"+randHex(16)), LoadBalancerARN: lb.ARN, Port: 80, Protocol: "HTTP",
			DefaultActions: []Action{{Type: "forward", TargetGroupARN: tg.ARN}}, Tags: Tags{}, Created: now}
		r.Listeners[l.ARN] = l
		return tg.ARN
	})
}

// FixtureTargets returns target id -> state of a target group.
func (s *Sandbox) FixtureTargets(region, arn string) map[string]string {
	out := map[string]string{}
	fixture(s, region, func(r *Region) string {
		for _, t := range r.TargetGroups[arn].Targets {
			out[t.ID] = t.State
		}
		return ""
	})
	return out
}

// FixtureInstance returns an EC2 instance's state and tags.
func (s *Sandbox) FixtureInstance(region, id string) (string, map[string]string) {
	var tags map[string]string
	state := fixture(s, region, func(r *Region) string {
		in := r.Instances[id]
		if in == nil {
			return ""
		}
		tags = in.Tags.Clone()
		return in.State
	})
	return state, tags
}

// FixtureTerminateInstance terminates an instance behind the group's back.
func (s *Sandbox) FixtureTerminateInstance(region, id string) {
	fixture(s, region, func(r *Region) string { r.terminateInstance(r.Instances[id], ""); return "" })
}

// FixtureDisabledKMSKey creates a disabled customer key and returns its ARN.
func (s *Sandbox) FixtureDisabledKMSKey(region string) string {
	return fixture(s, region, func(r *Region) string {
		k := &KMSKey{ID: newUUID(), State: "Disabled", Manager: "CUSTOMER", Spec: "SYMMETRIC_DEFAULT", Usage: "ENCRYPT_DECRYPT", Created: r.w.now(), Tags: Tags{}}
		k.ARN = r.arn("kms", "key/"+k.ID)
		r.KMSKeys[k.ID] = k
		return k.ARN
	})
}

// FixtureDeleteKMSKey removes a key FixtureDisabledKMSKey created.
func (s *Sandbox) FixtureDeleteKMSKey(region, arn string) {
	fixture(s, region, func(r *Region) string {
		for id, k := range r.KMSKeys {
			if k.ARN == arn {
				delete(r.KMSKeys, id)
			}
		}
		return ""
	})
}

// FixtureCleanup removes what the fixtures created in region.
func (s *Sandbox) FixtureCleanup(region string) {
	fixture(s, region, func(r *Region) string {
		for id, im := range r.Images {
			if !im.Builtin {
				delete(r.Images, id)
			}
		}
		r.LaunchTemplates = map[string]*LaunchTemplate{}
		r.TargetGroups = map[string]*TargetGroup{}
		r.LoadBalancers = map[string]*LoadBalancer{}
		r.Listeners = map[string]*Listener{}
		return ""
	})
}

func fixture(s *Sandbox, region string, f func(r *Region) string) string {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	r, err := s.world.region(region)
	if err != nil {
		panic(err)
	}
	return f(r)
}
