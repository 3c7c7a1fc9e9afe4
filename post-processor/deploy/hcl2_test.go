package deploy

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// What Packer core does with a post-processor block: decode its body with
// ConfigSpec, evaluate, and pass the cty value to Configure.
func TestConfigureFromPackerHCL(t *testing.T) {
	src := `
region                 = "eu-west-1"
asg                    = "web-staging"
target_groups          = ["arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"]
min_healthy_percentage = 50
max_healthy_percentage = 150
instance_warmup        = "60s"
checkpoints            = [50, 100]
checkpoint_delay       = "2m"
skip_matching          = false
auto_rollback          = true
alarms                 = ["web-5xx"]
bake_time              = "5m"
health_timeout         = "10m"
require_encrypted      = true
poll_interval          = "5s"
assume_role {
  role_arn = "arn:aws:iam::123456789012:role/deploy"
}
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "build.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var p PostProcessor
	val, diags := hcldec.Decode(f.Body, p.ConfigSpec(), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := p.Configure(val); err != nil {
		t.Fatal(err)
	}
	c := p.config
	r, timeout, errs := c.RollingSettings.Rolling()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if c.Region != "eu-west-1" || c.ASG != "web-staging" || len(c.TargetGroups) != 1 || !c.RequireEncrypted || c.PollInterval != "5s" || c.AssumeRole.RoleARN == "" {
		t.Errorf("config %+v", c)
	}
	if r.MinHealthyPercentage != 50 || r.MaxHealthyPercentage != 150 || r.SkipMatching || !r.AutoRollback || len(r.Checkpoints) != 2 || r.Alarms[0] != "web-5xx" || timeout.String() != "10m0s" {
		t.Errorf("rolling %+v timeout %s", r, timeout)
	}
}
