package sandbox_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestAWSCLIRollingScenario runs example/sandbox-rollout.sh, a rolling AMI
// update written for the AWS CLI v2 from Debian's packages, against the
// sandbox: the unmodified CLI must get through it, and nothing may be
// left afterwards.
func TestAWSCLIRollingScenario(t *testing.T) {
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	sb := sandboxtest.Start(t)
	script, err := filepath.Abs("../example/sandbox-rollout.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+sb.URL(), "AWS_CLI="+awsCLI, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+t.TempDir(),
		"ROLLOUT_NAME=cli-scenario", "ROLLOUT_TIMEOUT=120",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	for _, want := range []string{"3/3 targets healthy", "3/3 instances on version 2; the group now launches version 2", "Rollout complete"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	calls := sb.Calls()
	if calls["autoscaling"]["StartInstanceRefresh"] != 1 || calls["ec2"]["CreateLaunchTemplateVersion"] != 1 {
		t.Errorf("calls %v: want one refresh from one new template version", calls)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestAWSCLIParameterScenario runs example/sandbox-ssm.sh: an
// aws:ec2:image parameter (put-parameter --data-type), a launch template
// with resolve:ssm:, describe-launch-template-versions --resolve-alias,
// and launches before and after the parameter moves, all with the
// unmodified CLI; nothing may be left afterwards.
func TestAWSCLIParameterScenario(t *testing.T) {
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	sb := sandboxtest.Start(t)
	script, err := filepath.Abs("../example/sandbox-ssm.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+sb.URL(), "AWS_CLI="+awsCLI, "AWS_REGION=us-west-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+t.TempDir(),
		"SSM_NAME=cli-ssm", "SSM_TIMEOUT=60",
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	for _, want := range []string{"the template says resolve:ssm:/cli-ssm/golden-ami", "both launches resolved", "Parameter rollout complete"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	calls := sb.Calls()
	if calls["ssm"]["PutParameter"] != 2 || calls["ec2"]["RunInstances"] != 2 || calls["ssm"]["DeleteParameter"] != 1 {
		t.Errorf("calls %v: want two puts, two launches and the delete", calls)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
