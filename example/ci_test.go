package example

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestCIPipeline runs example/ci/pipeline.sh, the stages that
// example/ci/github-actions.yml calls, against the sandbox: bake with the
// real Packer and the plugin, deploy to a rolling staging, then promote
// staging's live AMI to a blue-green prod in another region under prod's
// key; promoting again changes nothing.
func TestCIPipeline(t *testing.T) {
	p := newPackerEnv(t)
	sb := sandboxtest.Start(t)
	// Registered first, so it runs after every other cleanup.
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	staging := deploytest.New(t, sb, "us-east-1")
	// The copies with the AMI written out that phoenix holds a group whose
	// version names an SSM parameter on stay behind, unlaunched: a known
	// leak (docs/reliability.md, the leak check).
	staging.Allow(func(r sandbox.Resource) bool { return r.Type == "launch-template-version" })
	prod := deploytest.New(t, sb, "eu-west-1")
	staging.KMSKeyForAutoScaling("alias/images")
	prodKey := prod.KMSKey("alias/images-prod")
	staging.CleanupImagesTagged("phoenix:build-id", 1)
	prod.CleanupImagesTagged("phoenix:promoted-from", 1)

	base := staging.Image("web-1.0.0", deploytest.ImageOptions{Encrypted: true})
	// Staging's launch template names its image by an SSM parameter, as
	// infrastructure code that leaves the image to phoenix writes it.
	staging.ImageParameter("/web/staging/ami", base)
	staging.Stack("web-staging", "resolve:ssm:/web/staging/ami", deploytest.StackOptions{Desired: 2})
	prodBase := prod.Image("web-1.0.0", deploytest.ImageOptions{Encrypted: true})
	bg := prod.BlueGreen("web-prod", prodBase, deploytest.BlueGreenOptions{Desired: 2})

	dir := t.TempDir()
	phoenix := filepath.Join(dir, "phoenix")
	run(t, p.root, nil, "go", "build", "-o", phoenix, "./cmd/phoenix")
	cfg := filepath.Join(dir, "phoenix.hcl")
	writeFile(t, cfg, fmt.Sprintf(`environment "staging" {
  region            = "us-east-1"
  endpoint          = %[1]q
  require_encrypted = true
  poll_interval     = "100ms"
  target "web" {
    asg = "web-staging"
  }
}

environment "prod" {
  region            = "eu-west-1"
  endpoint          = %[1]q
  kms_key_id        = "alias/images-prod"
  require_encrypted = true
  grant_kms         = true
  poll_interval     = "100ms"
  target "web" {
    asg      = %[2]q
    peer_asg = %[3]q
    listener = %[4]q
  }
  strategy "blue-green" {
    steps     = [50, 100]
    bake_time = "500ms"
  }
}
`, sb.URL(), bg.Blue, bg.Green, bg.Listener))
	env := append(p.env, "PACKER="+p.packer, "PHOENIX="+phoenix, "PHOENIX_CONFIG="+cfg, "PACKER_ONLY=web.phoenix-ebs.sim",
		"AMI_FILE="+filepath.Join(dir, "ami.txt"), "AWS_ENDPOINT_URL="+sb.URL(), "BAKE_REGION=us-east-1", "GITHUB_OUTPUT="+filepath.Join(dir, "github-output"),
		"AMI_PARAMETER=/web/candidate")
	t.Cleanup(func() {
		staging.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String("/web/candidate")})
	})
	stage := func(name string) string {
		t.Helper()
		cmd := exec.Command("bash", "example/ci/pipeline.sh", name)
		cmd.Dir, cmd.Env = p.root, append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pipeline.sh %s: %v\n%s", name, err, out)
		}
		return string(out)
	}

	out := stage("bake")
	ami := strings.TrimSpace(readFile(t, filepath.Join(dir, "ami.txt")))
	if !strings.Contains(out, "pipeline: baked "+ami+" in us-east-1 (SSM parameter /web/candidate names it)") || readFile(t, filepath.Join(dir, "github-output")) != "ami="+ami+"\n" {
		t.Fatalf("bake: AMI %q\n%s", ami, out)
	}
	// The bake published the AMI; staging deploys what the parameter names.
	if v := staging.ParameterValue("/web/candidate"); v != ami {
		t.Fatalf("after the bake /web/candidate is %q, want %s", v, ami)
	}
	out = stage("staging")
	if !strings.Contains(out, "Plan for web in us-east-1") || !strings.Contains(out, "web: succeeded") || !strings.Contains(out, "resolve:ssm:/web/candidate names "+ami) {
		t.Errorf("staging:\n%s", out)
	}
	for id, got := range staging.InstanceAMIs("web-staging") {
		if got != ami {
			t.Errorf("staging instance %s runs %s, want %s", id, got, ami)
		}
	}
	if v := staging.ParameterValue("/web/staging/ami"); v != ami {
		t.Errorf("after staging /web/staging/ami is %s, want %s", v, ami)
	}
	if v := aws.ToString(staging.Group("web-staging").LaunchTemplate.Version); v != "1" {
		t.Errorf("staging's group is on version %s, want 1 (the version that names the parameter)", v)
	}

	out = stage("prod")
	copies := prod.ImagesTagged("phoenix:promoted-from")
	if len(copies) != 1 {
		t.Fatalf("%d copies in prod\n%s", len(copies), out)
	}
	copyID := aws.ToString(copies[0].ImageId)
	for _, want := range []string{"moved 50% of the traffic to green", "web: succeeded: all traffic on green"} {
		if !strings.Contains(out, want) {
			t.Errorf("prod output lacks %q:\n%s", want, out)
		}
	}
	for id, got := range prod.InstanceAMIs(bg.Green) {
		if got != copyID {
			t.Errorf("prod instance %s runs %s, want the copy %s", id, got, copyID)
		}
	}
	snaps, err := prod.Clients.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(copies[0].BlockDeviceMappings[0].Ebs.SnapshotId)}})
	if err != nil || len(snaps.Snapshots) != 1 || !aws.ToBool(snaps.Snapshots[0].Encrypted) || !strings.HasSuffix(aws.ToString(snaps.Snapshots[0].KmsKeyId), prodKey) {
		t.Errorf("the copy's snapshot is not encrypted under prod's key %s: %+v %v", prodKey, snaps, err)
	}

	sb.ResetCalls()
	out = stage("prod")
	if !strings.Contains(out, "already live and healthy in prod") || prod.Mutating() != 0 {
		t.Errorf("a second promotion made %d mutating calls:\n%s", prod.Mutating(), out)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCIWorkflowCallsThePipeline: the GitHub Actions workflow runs the
// three stages TestCIPipeline runs, in order, and hands the baked AMI from
// the bake job to the staging job.
func TestCIWorkflowCallsThePipeline(t *testing.T) {
	wf := readFile(t, "ci/github-actions.yml")
	var stages []string
	for _, line := range strings.Split(wf, "\n") {
		if _, after, ok := strings.Cut(line, "run: example/ci/pipeline.sh "); ok {
			stages = append(stages, strings.TrimSpace(after))
		}
	}
	if strings.Join(stages, ",") != "bake,staging,prod" {
		t.Errorf("the workflow runs stages %v, want bake, staging, prod", stages)
	}
	for _, want := range []string{"ami: ${{ steps.bake.outputs.ami }}", "needs: bake", "needs: staging", "environment: production", "id-token: write"} {
		if !strings.Contains(wf, want) {
			t.Errorf("the workflow lacks %q", want)
		}
	}
	if !strings.Contains(readFile(t, "ci/pipeline.sh"), `echo "ami=$ami" >>"$GITHUB_OUTPUT"`) {
		t.Error("pipeline.sh bake does not write the ami output the workflow reads")
	}
	// The bake and staging jobs hand the AMI over through the same SSM
	// parameter, as TestCIPipeline runs them.
	if n := strings.Count(wf, "AMI_PARAMETER: /web/candidate"); n != 2 {
		t.Errorf("the workflow sets AMI_PARAMETER: /web/candidate %d times, want 2 (bake and staging)", n)
	}
}
