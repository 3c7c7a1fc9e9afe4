package sandbox

import "sort"

// Test helpers for the ELBv2 tests: the EC2 API is written elsewhere, so
// these reach the core instance lifecycle directly.

func (s *Sandbox) elbTestRegion(name string) *Region {
	r, err := s.world.region(name)
	if err != nil {
		panic(err)
	}
	return r
}

// ELBTestNetwork returns the default VPC of region and its default
// subnets, one per availability zone, in zone order.
func (s *Sandbox) ELBTestNetwork(region string) (string, []string) {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	r := s.elbTestRegion(region)
	var vpc string
	var subnets []*Subnet
	for _, sn := range r.Subnets {
		if sn.IsDefault {
			subnets = append(subnets, sn)
			vpc = sn.VpcID
		}
	}
	sort.Slice(subnets, func(i, j int) bool { return subnets[i].AZ < subnets[j].AZ })
	ids := make([]string, len(subnets))
	for i, sn := range subnets {
		ids[i] = sn.ID
	}
	return vpc, ids
}

// ELBTestImage returns a launchable image whose HealthTag is health (a
// public image when health is empty). Test images are fixtures like the
// public ones and stay out of the inventory.
func (s *Sandbox) ELBTestImage(region, health string) string {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	r := s.elbTestRegion(region)
	var base *Image
	for _, im := range r.Images {
		if im.Public() && im.State == "available" && (base == nil || im.ID < base.ID) {
			base = im
		}
	}
	if health == "" {
		return base.ID
	}
	img := *base
	img.ID, img.Name, img.OwnerID, img.OwnerAlias = newID("ami"), "elb-test-"+health, AccountID, ""
	img.Permissions = LaunchPermissions{}
	img.Tags = Tags{HealthTag: health}
	r.Images[img.ID] = &img
	return img.ID
}

// ELBTestLaunch launches n instances of image into subnet.
func (s *Sandbox) ELBTestLaunch(region, image, subnet string, n int) []string {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	insts, err := s.elbTestRegion(region).launchInstances(launchSpec{Data: LaunchTemplateData{ImageID: image, InstanceType: "t3.micro", SubnetID: subnet}, Count: n})
	if err != nil {
		panic(err)
	}
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	return ids
}

// ELBTestInstanceState returns an instance's state.
func (s *Sandbox) ELBTestInstanceState(region, id string) string {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	if in := s.elbTestRegion(region).Instances[id]; in != nil {
		return in.State
	}
	return ""
}

// ELBTestStop stops an instance.
func (s *Sandbox) ELBTestStop(region, id string) {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	r := s.elbTestRegion(region)
	r.stopInstance(r.Instances[id], false)
}

// ELBTestTerminate terminates instances.
func (s *Sandbox) ELBTestTerminate(region string, ids ...string) {
	s.world.mu.Lock()
	defer s.world.mu.Unlock()
	r := s.elbTestRegion(region)
	for _, id := range ids {
		r.terminateInstance(r.Instances[id], "")
	}
}
