package sandbox_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestAWSCLISecondAccount drives two accounts with the unmodified AWS CLI
// as docs/sandbox.md tells a user to: a profile per access key, and a
// profile that assumes a role of the second account; then an AMI staging
// shares with prod, and prod's own tag on it.
func TestAWSCLISecondAccount(t *testing.T) {
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	sb := sandboxtest.Start(t)
	sandboxtest.AddSecondAccount(t, sb)
	dir := t.TempDir()
	role := "arn:aws:iam::" + sandboxtest.SecondAccount + ":role/deploy"
	config := filepath.Join(dir, "config")
	if err := os.WriteFile(config, []byte(`[profile staging]
region = us-east-1
[profile prod]
region = us-east-1
[profile prod-role]
region = us-east-1
`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte(`[staging]
aws_access_key_id = sandbox
aws_secret_access_key = x
[prod]
aws_access_key_id = `+sandboxtest.SecondAccessKey+`
aws_secret_access_key = x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(profile string, args ...string) (string, error) {
		// Debian 12's AWS CLI ignores AWS_ENDPOINT_URL: --endpoint-url too.
		cmd := exec.Command(awsCLI, append(args, "--profile", profile, "--output", "json", "--endpoint-url", sb.URL())...)
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "AWS_") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		cmd.Env = append(cmd.Env, "AWS_ENDPOINT_URL="+sb.URL(), "AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE="+creds, "HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(profile string, args ...string) map[string]any {
		t.Helper()
		out, err := cli(profile, args...)
		if err != nil {
			t.Fatalf("aws %s --profile %s: %v\n%s", strings.Join(args, " "), profile, err, out)
		}
		var m map[string]any
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return m
	}

	for profile, want := range map[string]string{"staging": sandbox.AccountID, "prod": sandboxtest.SecondAccount} {
		if got := must(profile, "sts", "get-caller-identity")["Account"]; got != want {
			t.Errorf("profile %s acts in %v, want %s", profile, got, want)
		}
	}
	// The role is assumed with sts assume-role, and its credentials go
	// into profile prod-role: Debian 12's AWS CLI (2.9) sends a profile's
	// role_arn assumption to AWS's own STS endpoint, whatever
	// --endpoint-url or AWS_ENDPOINT_URL say.
	assume := []string{"sts", "assume-role", "--role-arn", role, "--role-session-name", "cli"}
	if out, err := cli("staging", assume...); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("a role that trusts nobody was assumed: %v\n%s", err, out)
	}
	if err := sb.TrustRole(role, sandbox.AccountID); err != nil {
		t.Fatal(err)
	}
	c := must("staging", assume...)["Credentials"].(map[string]any)
	f, err := os.OpenFile(creds, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[prod-role]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
	f.Close()
	if got := must("prod-role", "sts", "get-caller-identity")["Arn"]; !strings.HasPrefix(got.(string), "arn:aws:sts::"+sandboxtest.SecondAccount+":assumed-role/deploy/") {
		t.Errorf("prod-role acts as %v", got)
	}

	deb := aws.ToString(imgDebianLatest(t, imgClient(t, sb, "us-east-1")).ImageId)
	ami := must("staging", "ec2", "copy-image", "--source-image-id", deb, "--source-region", "us-east-1", "--name", "web-cli")["ImageId"].(string)
	imgWaitState(t, imgClient(t, sb, "us-east-1"), ami, types.ImageStateAvailable) // the CLI's waiter polls every 15 s
	if out, err := cli("prod", "ec2", "describe-images", "--image-ids", ami); err == nil || !strings.Contains(out, "InvalidAMIID.NotFound") {
		t.Fatalf("prod sees an unshared image: %v\n%s", err, out)
	}
	must("staging", "ec2", "modify-image-attribute", "--image-id", ami, "--launch-permission", "Add=[{UserId="+sandboxtest.SecondAccount+"}]")
	images := must("prod-role", "ec2", "describe-images", "--executable-users", "self")["Images"].([]any)
	if len(images) != 1 || images[0].(map[string]any)["ImageId"] != ami {
		t.Fatalf("prod's executable images: %v", images)
	}
	must("prod", "ec2", "create-tags", "--resources", ami, "--tags", "Key=Team,Value=prod")
	tagOf := func(profile string) string {
		im := must(profile, "ec2", "describe-images", "--image-ids", ami)["Images"].([]any)[0].(map[string]any)
		tags, _ := im["Tags"].([]any)
		for _, tg := range tags {
			if kv := tg.(map[string]any); kv["Key"] == "Team" {
				return kv["Value"].(string)
			}
		}
		return ""
	}
	if got := tagOf("prod"); got != "prod" {
		t.Errorf("prod's tag on the shared image = %q", got)
	}
	if got := tagOf("staging"); got != "" {
		t.Errorf("staging sees prod's tag: %q", got)
	}
	// Debian 12's AWS CLI (2.9) has no --delete-associated-snapshots.
	snap := aws.ToString(imgDescribe(t, imgClient(t, sb, "us-east-1"), ami).BlockDeviceMappings[0].Ebs.SnapshotId)
	must("staging", "ec2", "deregister-image", "--image-id", ami)
	must("staging", "ec2", "delete-snapshot", "--snapshot-id", snap)
	sandboxtest.RequireEmptyInventory(t, sb)
}
