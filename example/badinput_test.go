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

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// template is a whole Packer template with one phoenix-ebs source, one
// phoenix-harden provisioner (none when its body is empty: the sim
// runtime has no sshd) and one phoenix-deploy post-processor.
const template = `packer {
  required_plugins {
    phoenix = {
      source  = "github.com/immutable-infra/phoenix"
      version = ">= 0.1.0"
    }
  }
}

variable "endpoint" {
  type    = string
  default = "http://127.0.0.1:4566"
}

variable "secret_key" {
  type      = string
  sensitive = true
}

variable "token" {
  type      = string
  sensitive = true
  default   = ""
}

source "phoenix-ebs" "t" {
{ebs}
}

build {
  sources = ["source.phoenix-ebs.t"]
{provisioner}
  post-processor "phoenix-deploy" {
{deploy}
  }
}
`

const (
	goodEBS = `  region        = "eu-west-1"
  endpoint      = var.endpoint
  access_key    = "AKIAPHOENIXPKR000001"
  secret_key    = var.secret_key
  token         = var.token
  source_ami_filter {
    owners      = ["136693071363"]
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.micro"
  communicator  = "none"
  ami_name      = "sec-{{timestamp}}"
  poll_interval = "50ms"`
	goodHarden = `    profile = "baseline"`
	goodDeploy = `    region                 = "eu-west-1"
    endpoint               = var.endpoint
    access_key             = "AKIAPHOENIXPKR000001"
    secret_key             = var.secret_key
    token                  = var.token
    asg                    = "sec"
    min_healthy_percentage = 50
    health_timeout         = "30s"
    poll_interval          = "50ms"`
)

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

func writeTemplate(t *testing.T, ebs, harden, deploy string) string {
	t.Helper()
	provisioner := ""
	if harden != "" {
		provisioner = "\n  provisioner \"phoenix-harden\" {\n" + harden + "\n  }\n"
	}
	src := strings.NewReplacer("{ebs}", ebs, "{provisioner}", provisioner, "{deploy}", deploy).Replace(template)
	path := filepath.Join(t.TempDir(), "t.pkr.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// packerFails runs packer and returns its output, failing the test unless
// packer exits non-zero.
func (p *packerEnv) packerFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(p.packer, args...)
	cmd.Dir = p.root
	cmd.Env = append(append(os.Environ(), p.env...), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("packer %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// Rows of the bad input table run through the real packer validate: each
// bad block fails validation with its message as Packer prints it, and
// the template's sensitive variable shows nowhere, PACKER_LOG=1 included.
func TestPackerValidateRefusesBadTemplates(t *testing.T) {
	p := newPackerEnv(t)
	const secret = "pkrSensitive/phoenixVALIDATE+5Rt7ZZ"
	rows := []struct {
		name                string
		ebs, harden, deploy string
		want                string
	}{
		{"phoenix-ebs region", strings.Replace(goodEBS, `"eu-west-1"`, `"mars"`, 1), goodHarden, goodDeploy, `* region "mars" is not an AWS region name such as us-east-1`},
		{"phoenix-ebs duration", goodEBS + "\n  ami_ready_timeout = \"later\"", goodHarden, goodDeploy, `* ami_ready_timeout "later" is not a duration (e.g. "90s", "5m")`},
		{"phoenix-ebs imds", goodEBS + "\n  imds_support = \"v1\"", goodHarden, goodDeploy, `* imds_support "v1" must be "v2.0" or ""`},
		{"phoenix-harden score", goodEBS, "    min_score = 101", goodDeploy, "* min_score: 101 is not between 0 and 100"},
		{"phoenix-harden param", goodEBS, "    params = { allow_ip_forwad = true }", goodDeploy, `* params: unknown param "allow_ip_forwad" (did you mean "allow_ip_forward"?) (known: allow_ip_forward, banner_text, disable_squashfs, install_acct, install_aide, install_auditd, install_packages, install_pam_tmpdir, install_pwquality, install_time_sync, ssh_allow_forwarding, ssh_allow_users, time_servers)`},
		{"phoenix-deploy no target", goodEBS, goodHarden, "    region = \"eu-west-1\"\n    secret_key = var.secret_key\n    access_key = \"AKIAPHOENIXPKR000001\"", "* set environment (an environment of config_file) or asg (an Auto Scaling group)"},
		{"phoenix-deploy percentage", goodEBS, goodHarden, goodDeploy + "\n    max_healthy_percentage = 250", "* max_healthy_percentage 250 must be between 100 and 200"},
		{"phoenix-deploy standby instances", goodEBS, goodHarden, goodDeploy + "\n    standby_instances = \"Refresh\"", `* standby_instances "Refresh" is not one of Terminate, Ignore, Wait`},
		{"phoenix-deploy target group", goodEBS, goodHarden, goodDeploy + "\n    target_groups = [\"web\"]", `* target_groups: "web" is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)`},
		{"phoenix-deploy return_home under rolling", goodEBS, goodHarden, goodDeploy + "\n    return_home = true", "* return_home is a blue-green setting; the strategy is rolling"},
		{"phoenix-deploy unknown setting", goodEBS, goodHarden, goodDeploy + "\n    surge = 2", `An argument named "surge" is not expected here.`},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			path := writeTemplate(t, row.ebs, row.harden, row.deploy)
			out := p.packerFails(t, []string{"PACKER_LOG=1"}, "validate", "-var", "secret_key="+secret, path)
			// Packer wraps long messages: compare with runs of white space
			// as one space.
			if squash(out) == "" || !strings.Contains(squash(out), squash(row.want)) {
				t.Errorf("packer validate does not say\n  %s\n%s", row.want, out)
			}
			if strings.Contains(out, secret) || strings.Contains(out, secret[:len(secret)/2]) {
				t.Errorf("packer validate shows the sensitive variable:\n%s", out)
			}
		})
	}
}

// The real packer builds with phoenix-ebs and deploys with phoenix-deploy,
// credentials in sensitive variables and in the environment, with
// PACKER_LOG=1: neither the secret key nor the session tokens show in
// Packer's output or log.
func TestPackerBuildKeepsSecretsOutOfItsLog(t *testing.T) {
	p := newPackerEnv(t)
	sb := sandboxtest.Start(t)
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	f := deploytest.New(t, sb, "eu-west-1")
	debian, err := ec2.NewFromConfig(f.Config).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("no Debian image: %v", err)
	}
	f.Stack("sec", aws.ToString(debian.Images[0].ImageId), deploytest.StackOptions{Desired: 2})

	secrets := []string{"pkrSecretKey/phoenixBUILD+8Hn3ZZ", "pkrSessionToken//phoenixBUILD+FwoGZXIvYXdz", "envSecretKey/phoenixBUILDENV+2Wq9ZZ", "envSessionToken//phoenixBUILDENV+FwoG"}
	path := writeTemplate(t, goodEBS, "", goodDeploy)
	cmd := exec.Command(p.packer, "build", "-var", "endpoint="+sb.URL(), "-var", "secret_key="+secrets[0], "-var", "token="+secrets[1], path)
	cmd.Dir = p.root
	// The SDK's own chain would use these; the template's keys win, and
	// neither may show.
	cmd.Env = append(append(os.Environ(), p.env...), "PACKER_LOG=1", "AWS_SECRET_ACCESS_KEY="+secrets[2], "AWS_SESSION_TOKEN="+secrets[3])
	out, err := cmd.CombinedOutput()
	t.Cleanup(func() {
		c := ec2.NewFromConfig(f.Config)
		imgs, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil {
			t.Error(err)
			return
		}
		for _, im := range imgs.Images {
			if strings.HasPrefix(aws.ToString(im.Name), "sec-") {
				c.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)})
			}
		}
	})
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "succeeded: instance refresh") {
		t.Fatalf("the build did not deploy:\n%s", out)
	}
	for i, s := range secrets {
		if strings.Contains(string(out), s) || strings.Contains(string(out), s[:len(s)/2]) {
			t.Errorf("secret %d shows in packer's output or log", i)
		}
	}
}
