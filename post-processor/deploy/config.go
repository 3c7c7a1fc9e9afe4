//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config
//go:generate ../../scripts/struct-markdown.sh

package deploy

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// Config is the phoenix-deploy post-processor's configuration: an
// environment of phoenix.hcl, or the same settings inline. Inline
// settings override the environment's.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`
	awsconfig.Settings  `mapstructure:",squash"`

	// An environment of config_file to deploy to, e.g. "staging". Without
	// it, asg (and a region) must be set here.
	Environment string `mapstructure:"environment"`
	// The phoenix.hcl file that defines environment. Defaults to
	// phoenix.hcl in the directory Packer runs in.
	ConfigFile string `mapstructure:"config_file"`
	// The environment's target to deploy to, when it has several.
	Target string `mapstructure:"target"`
	// The Auto Scaling group to roll the AMI onto (without an environment,
	// or to override the target's).
	ASG string `mapstructure:"asg"`
	// Target group ARNs whose health decides success. Defaults to the
	// target groups attached to the group.
	TargetGroups []string `mapstructure:"target_groups"`
	// Refuse an AMI with unencrypted EBS snapshots.
	RequireEncrypted bool `mapstructure:"require_encrypted"`
	// Mean time between the deploy's passes, as a duration. Defaults to
	// 10s, jittered by 20%.
	PollInterval string `mapstructure:"poll_interval"`

	deployer.RollingSettings `mapstructure:",squash"`

	ctx interpolate.Context
}

// Prepare decodes raws into c and reports every problem at once. It makes
// no AWS call.
func (c *Config) Prepare(raws ...interface{}) error {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         PluginType,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return err
	}
	var errs *packersdk.MultiError
	add := func(e error) { errs = packersdk.MultiErrorAppend(errs, e) }
	for _, e := range c.Settings.Validate() {
		add(e)
	}
	if c.Environment == "" && c.ASG == "" {
		add(errors.New("set environment (an environment of config_file) or asg (an Auto Scaling group)"))
	}
	if c.Environment != "" && c.ConfigFile == "" {
		c.ConfigFile = "phoenix.hcl"
	}
	if c.Environment == "" && c.ConfigFile != "" {
		add(errors.New("config_file is set without environment: name the environment to deploy to"))
	}
	if c.PollInterval != "" {
		if d, err := time.ParseDuration(c.PollInterval); err != nil || d <= 0 {
			add(fmt.Errorf("poll_interval %q must be a positive duration (e.g. \"10s\")", c.PollInterval))
		}
	}
	if _, _, rerrs := c.RollingSettings.Rolling(); len(rerrs) > 0 {
		for _, e := range rerrs {
			add(e)
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return errs
	}
	return nil
}
