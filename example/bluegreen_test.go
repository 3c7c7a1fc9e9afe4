package example

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestBlueGreenScenario runs example/sandbox-bluegreen.sh (blue-green
// infrastructure made with Debian's AWS CLI v2) with the phoenix binary
// deploying another image in weighted steps: all traffic must end on
// green, healthy on the new image, and nothing may be left.
func TestBlueGreenScenario(t *testing.T) {
	sc := newScenario(t, "eu-west-1")
	sb, root, awsCLI, phoenix, oldAMI, newAMI := sc.sb, sc.root, sc.awsCLI, sc.phoenix, sc.oldAMI, sc.newAMI

	cmd := exec.Command("bash", filepath.Join(root, "example", "sandbox-bluegreen.sh"))
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+sb.URL(), "AWS_CLI="+awsCLI, "AWS_REGION=eu-west-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+t.TempDir(),
		"BG_NAME=bg-scenario", "BG_AMI="+oldAMI,
		"BG_DEPLOY_CMD="+phoenix+` deploy --region eu-west-1 --endpoint `+sb.URL()+` --asg "$BG_BLUE" --peer-asg "$BG_GREEN" --listener "$BG_LISTENER" --ami `+newAMI+` --steps 50,100 --bake-time 1s --poll-interval 100ms`,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	for _, want := range []string{"blue: 3/3 targets healthy on " + oldAMI, "moved 50% of the traffic to green (bg-scenario-green)", "bg-scenario-blue: succeeded: all traffic on green (bg-scenario-green)",
		"All traffic on green: 3/3 targets healthy on " + newAMI} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestImageParameterRolloutScenario runs example/sandbox-rollout.sh with
// the launch template naming its image by an SSM parameter and phoenix
// deploy doing the rollout: the unmodified CLI builds the stack, phoenix
// moves the parameter once every target is healthy on the new AMI, and
// the group stays on version 1.
func TestImageParameterRolloutScenario(t *testing.T) {
	sc := newScenario(t, "us-east-1")
	sb, root, awsCLI, phoenix, oldAMI, newAMI := sc.sb, sc.root, sc.awsCLI, sc.phoenix, sc.oldAMI, sc.newAMI
	cmd := exec.Command("bash", filepath.Join(root, "example", "sandbox-rollout.sh"))
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+sb.URL(), "AWS_CLI="+awsCLI, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+t.TempDir(),
		"ROLLOUT_NAME=param-scenario", "ROLLOUT_TIMEOUT=120", "ROLLOUT_OLD_AMI="+oldAMI, "ROLLOUT_IMAGE_PARAMETER=/param-scenario/ami",
		"ROLLOUT_DEPLOY_CMD="+phoenix+` deploy --region us-east-1 --endpoint `+sb.URL()+` --asg "$ROLLOUT_ASG" --ami `+newAMI+` --min-healthy-percentage 66 --poll-interval 100ms`,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scenario failed: %v", err)
	}
	for _, want := range []string{
		"wrote " + newAMI + " to SSM parameter /param-scenario/ami",
		"3/3 instances on " + newAMI + ", which /param-scenario/ami names; the group still launches version 1 (resolve:ssm:/param-scenario/ami)",
		"Rollout complete",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// scenario is what the AWS CLI scenarios run against: a sandbox, Debian's
// AWS CLI, the phoenix binary and two public images of the region.
type scenario struct {
	sb                                    *sandbox.Sandbox
	root, awsCLI, phoenix, oldAMI, newAMI string
}

func newScenario(t *testing.T, region string) scenario {
	t.Helper()
	sc := scenario{awsCLI: testenv.LookPath(t, "aws", "/usr/bin/aws"), sb: sandboxtest.Start(t)}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sc.root, sc.phoenix = root, filepath.Join(t.TempDir(), "phoenix")
	run(t, root, nil, "go", "build", "-o", sc.phoenix, "./cmd/phoenix")
	imgs, err := ec2.NewFromConfig(sandboxtest.Config(t, sc.sb, region)).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"136693071363"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(imgs.Images) < 2 {
		t.Fatalf("%v %v", imgs, err)
	}
	sc.oldAMI, sc.newAMI = aws.ToString(imgs.Images[0].ImageId), aws.ToString(imgs.Images[1].ImageId)
	return sc
}
