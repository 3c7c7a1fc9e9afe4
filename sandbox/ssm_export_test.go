package sandbox

// FixtureSSMPending reports whether Parameter Store is still validating
// an aws:ec2:image version of the parameter name.
func (s *Sandbox) FixtureSSMPending(region, name string) bool {
	return fixture(s, region, func(r *Region) string {
		if p := r.SSMParameters[ssmKey(name)]; p != nil && p.pending != nil {
			return "pending"
		}
		return ""
	}) != ""
}

// FixtureDeregisterImage marks an image deregistered.
func (s *Sandbox) FixtureDeregisterImage(region, id string) {
	fixture(s, region, func(r *Region) string { r.Images[id].State = "deregistered"; return "" })
}
