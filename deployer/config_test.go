package deployer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
)

func TestExampleConfig(t *testing.T) {
	cfg, err := deployer.LoadConfig("../example/phoenix.hcl")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := cfg.Environment("prod")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Settings.Region != "us-east-1" || prod.Settings.AssumeRole.RoleARN == "" || prod.Policy == nil || !prod.Policy.RequireEncrypted || prod.KMSKeyID != "alias/phoenix-prod" {
		t.Errorf("prod settings %+v", prod)
	}
	tg, err := prod.Target("")
	if err != nil || tg.ASG != "web-prod" {
		t.Errorf("target %+v %v", tg, err)
	}
	r, timeout, errs := prod.Rolling.Rolling()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if r.MinHealthyPercentage != 100 || r.MaxHealthyPercentage != 125 || *r.InstanceWarmup != 2*time.Minute || len(r.Checkpoints) != 3 ||
		r.CheckpointDelay != 5*time.Minute || !r.SkipMatching || !r.AutoRollback || len(r.Alarms) != 2 || r.BakeTime != 10*time.Minute || timeout != 15*time.Minute {
		t.Errorf("prod rolling %+v timeout %s", r, timeout)
	}
	if _, err := cfg.Environment("dev"); err == nil || !strings.Contains(err.Error(), "it has: prod, staging") {
		t.Errorf("unknown environment: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	r, timeout, errs := deployer.RollingSettings{}.Rolling()
	if len(errs) > 0 || r.MinHealthyPercentage != deployer.FromGroup || r.MaxHealthyPercentage != deployer.FromGroup || r.ScaleInProtectedInstances != "" || r.StandbyInstances != "" || !r.SkipMatching || !r.AutoRollback || r.InstanceWarmup != nil || timeout != 15*time.Minute {
		t.Errorf("defaults %+v %s %v", r, timeout, errs)
	}
}

func TestConfigErrorsShowFileAndLine(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"syntax", "environment \"a\" {\n  region = \n}\n", "phoenix.hcl:2,"},
		{"unknown attribute", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  colour = \"blue\"\n}\n", `phoenix.hcl:3,3: Unsupported argument: An argument named "colour" is not expected here.`},
		{"missing asg", "environment \"a\" {\n  target \"w\" {\n  }\n}\n", `phoenix.hcl:2,`},
		{"no target", "environment \"a\" {\n  region = \"eu-west-1\"\n}\n", `phoenix.hcl:1,1: No target`},
		{"unknown strategy", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  strategy \"canary\" {}\n}\n", `phoenix.hcl:3,3: Unknown strategy "canary": Known strategies: rolling, blue-green.`},
		{"duplicate environment", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n}\nenvironment \"a\" {\n  target \"w\" { asg = \"w\" }\n}\n", `phoenix.hcl:4,1: Duplicate environment "a"`},
		{"out of range", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  strategy \"rolling\" {\n    max_healthy_percentage = 99\n  }\n}\n", `phoenix.hcl:4,30: Invalid max_healthy_percentage: max_healthy_percentage 99 must be between 100 and 200`},
		{"checkpoints below 100", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  strategy \"rolling\" {\n    checkpoints = [20, 50]\n  }\n}\n", `phoenix.hcl:4,19: Invalid checkpoints: checkpoints [20 50] must end with 100`},
		{"bad role", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  assume_role {\n    role_arn = \"admin\"\n  }\n}\n", `assume_role.role_arn "admin" is not an IAM role ARN`},
		{"bad endpoint", "environment \"a\" {\n  endpoint = \"localhost:4566\"\n  target \"w\" { asg = \"w\" }\n}\n", `phoenix.hcl:2,14: Invalid endpoint: endpoint "localhost:4566" is not an http(s) URL`},
		{"bad kms key", "environment \"a\" {\n  kms_key_id = \"my-key\"\n  target \"w\" { asg = \"w\" }\n}\n", `phoenix.hcl:1,1: Invalid kms_key_id: kms_key_id "my-key" is not a KMS key id, key ARN or alias (alias/NAME)`},
		{"blue-green without peer", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n  }\n  strategy \"blue-green\" {}\n}\n", `phoenix.hcl:2,3: Invalid peer_asg: peer_asg: target "w" needs the second colour's Auto Scaling group for blue-green`},
		{"blue-green bad listener", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n    peer_asg = \"g\"\n    listener = \"web\"\n  }\n  strategy \"blue-green\" {}\n}\n", `phoenix.hcl:2,3: Invalid listener: listener "web" is not a listener ARN`},
		{"blue-green setting under rolling", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n    peer_asg = \"g\"\n  }\n}\n", `phoenix.hcl:2,3: Invalid peer_asg: peer_asg is a blue-green setting, but target "w" is deployed with the rolling strategy`},
		{"blue-green steps", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n    peer_asg = \"g\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    steps = [10, 50]\n  }\n}\n", `phoenix.hcl:8,13: Invalid steps: steps [10 50] must end with 100`},
		{"blue-green keep_old_for", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n    peer_asg = \"g\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    keep_old_for = \"a while\"\n  }\n}\n", `phoenix.hcl:8,20: Invalid keep_old_for: keep_old_for "a while" is not a duration`},
		{"rolling setting under blue-green", "environment \"a\" {\n  target \"w\" {\n    asg = \"w\"\n  }\n  strategy \"blue-green\" {\n    checkpoints = [50, 100]\n  }\n}\n", `phoenix.hcl:6,5: Unsupported argument: An argument named "checkpoints" is not expected here.`},
		{"wrong type", "environment \"a\" {\n  target \"w\" { asg = \"w\" }\n  strategy \"rolling\" {\n    min_healthy_percentage = \"most\"\n  }\n}\n", `phoenix.hcl:4,31: Unsuitable value type`},
	}
	for _, tc := range cases {
		_, err := deployer.ParseConfig([]byte(tc.src), "phoenix.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		if deployer.OutcomeOf(err) != deployer.Refused {
			t.Errorf("%s: outcome %v, want refused", tc.name, deployer.OutcomeOf(err))
		}
	}
}
