//go:generate go tool packer-sdc mapstructure-to-hcl2 -type PolicySettings
//go:generate ../scripts/struct-markdown.sh

package deployer

// PolicySettings are the admission policy as users write it: the `policy`
// block of an environment in phoenix.hcl and of the phoenix-deploy
// post-processor share them. An AMI that fails any rule is refused (exit
// 3) with every failed rule listed, before anything changes.
type PolicySettings struct {
	// The lowest phoenix:hardening-score (0 to 100, written by
	// phoenix-ebs from the phoenix-harden report) an AMI may have.
	MinHardeningScore *float64 `mapstructure:"min_hardening_score" hcl:"min_hardening_score,optional"`
	// The phoenix-harden profile the AMI must have been hardened with
	// (its phoenix:hardening-profile tag), e.g. "cis-level1".
	HardeningProfile string `mapstructure:"hardening_profile" hcl:"hardening_profile,optional"`
	// Refuse an AMI with unencrypted EBS snapshots. The environment-level
	// require_encrypted of earlier versions still works and means this.
	RequireEncrypted *bool `mapstructure:"require_encrypted" hcl:"require_encrypted,optional"`
	// Tags the AMI must carry, each with its exact value or a pattern
	// (`*`, `?`, `[a-z]`), e.g. { "phoenix:builder" = "phoenix-ebs *" }.
	RequiredTags map[string]string `mapstructure:"required_tags" hcl:"required_tags,optional"`
	// The oldest an AMI may be, from its phoenix:build-time tag (kept by
	// promoted copies), else its creation date: days ("30d") or a
	// duration ("720h").
	MaxAge string `mapstructure:"max_age" hcl:"max_age,optional"`
	// The accounts whose AMIs are admitted (12-digit ids).
	AllowedOwners []string `mapstructure:"allowed_owners" hcl:"allowed_owners,optional"`
	// An environment of phoenix.hcl the AMI must be live and healthy in,
	// or have been (a succeeded deploy in that environment's history);
	// for a promoted copy, the AMI it was copied from.
	PromotedFrom string `mapstructure:"promoted_from" hcl:"promoted_from,optional"`
}

// Empty reports whether no setting is set.
func (s PolicySettings) Empty() bool {
	return s.MinHardeningScore == nil && s.HardeningProfile == "" && s.RequireEncrypted == nil && len(s.RequiredTags) == 0 &&
		s.MaxAge == "" && len(s.AllowedOwners) == 0 && s.PromotedFrom == ""
}

// Policy is the policy the settings write, or every problem with them,
// each a *SettingError naming its setting.
func (s PolicySettings) Policy() (*Policy, []error) {
	p := &Policy{MinHardeningScore: s.MinHardeningScore, HardeningProfile: s.HardeningProfile, RequireEncrypted: s.RequireEncrypted != nil && *s.RequireEncrypted,
		RequiredTags: s.RequiredTags, AllowedOwners: s.AllowedOwners, PromotedFrom: s.PromotedFrom}
	var errs []error
	if s.MaxAge != "" {
		d, err := ParseAge(s.MaxAge)
		if err != nil {
			errs = append(errs, &SettingError{"max_age", err})
		}
		p.MaxAge = d
	}
	errs = append(errs, p.Validate()...)
	return p, errs
}
