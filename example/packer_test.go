// Package example holds the runnable templates; its tests run them with
// the real Packer binary and the plugin against the sandbox.
package example

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// packerEnv builds (once, cached in bin/) the pinned Packer, builds the
// plugin and installs it into a fresh plugin directory, the way a user's
// `packer plugins install --path` does.
type packerEnv struct {
	t      testing.TB
	root   string
	packer string
	env    []string
}

func newPackerEnv(t *testing.T) *packerEnv {
	testenv.RequireE2E(t)
	return installPacker(t)
}

// installPacker is newPackerEnv without the end-to-end gate, for
// benchmarks, which only run when asked for with -bench.
func installPacker(t testing.TB) *packerEnv {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	p := &packerEnv{t: t, root: root, packer: filepath.Join(root, "bin", "packer")}
	run(t, root, nil, "./scripts/install-packer.sh")
	plugins := t.TempDir()
	bin := filepath.Join(t.TempDir(), "packer-plugin-phoenix")
	run(t, root, nil, "go", "build", "-o", bin, ".")
	p.env = []string{"PACKER_PLUGIN_PATH=" + plugins, "CHECKPOINT_DISABLE=1", "PACKER_NO_COLOR=1", "HOME=" + t.TempDir(),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_ACCESS_KEY_ID=AKIASANDBOX", "AWS_SECRET_ACCESS_KEY=sandbox"}
	out := run(t, root, p.env, p.packer, "plugins", "install", "--path", bin, "github.com/immutable-infra/phoenix")
	if !strings.Contains(out, "Successfully installed plugin github.com/immutable-infra/phoenix") {
		t.Fatalf("plugin install said: %s", out)
	}
	return p
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPluginDescribesItsComponents(t *testing.T) {
	p := newPackerEnv(t)
	installed := run(t, p.root, p.env, p.packer, "plugins", "installed")
	if !strings.Contains(installed, "github.com/immutable-infra/phoenix/packer-plugin-phoenix_v") {
		t.Fatalf("packer plugins installed: %s", installed)
	}
	path := strings.TrimSpace(strings.Split(strings.TrimSpace(installed), "\n")[0])
	var d struct {
		APIVersion    string   `json:"api_version"`
		Builders      []string `json:"builders"`
		Provisioners  []string `json:"provisioners"`
		PostProcessor []string `json:"post_processors"`
	}
	if err := json.Unmarshal([]byte(run(t, p.root, nil, path, "describe")), &d); err != nil {
		t.Fatal(err)
	}
	if d.APIVersion != "x5.0" || strings.Join(d.Builders, ",") != "ebs" || strings.Join(d.Provisioners, ",") != "harden" {
		t.Fatalf("describe: %+v", d)
	}
}

// The example template validates, and its sim source bakes an encrypted,
// tagged AMI copied to a second region, through the real Packer binary.
func TestExampleTemplateBuildsOnTheSandbox(t *testing.T) {
	p := newPackerEnv(t)
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	keys := map[string]string{}
	var deleteKeys []func()
	defer func() {
		for _, f := range deleteKeys {
			f()
		}
	}()
	for region, alias := range map[string]string{"us-east-1": "alias/images", "eu-west-1": "alias/images-eu"} {
		c := kms.NewFromConfig(sandboxtest.Config(t, sb, region))
		k, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
			t.Fatal(err)
		}
		keys[region] = aws.ToString(k.KeyMetadata.Arn)
		deleteKeys = append(deleteKeys, func() {
			c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(alias)})
			c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
		})
	}
	// Runs after the deferred key deletions: nothing at all may be left.
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	app := filepath.Join(t.TempDir(), "web-app")
	run(t, p.root, []string{"CGO_ENABLED=0"}, "go", "build", "-o", app, "./example/app")
	vars := []string{"-var", "endpoint=" + sb.URL(), "-var", "app_binary=" + app, "-var", `copy_regions={"eu-west-1":"alias/images-eu"}`, "-var", "app_version=2.3.4"}
	run(t, p.root, p.env, p.packer, append([]string{"validate"}, append(vars, "example/web.pkr.hcl")...)...)

	out := run(t, p.root, p.env, p.packer, append([]string{"build", "-only=web.phoenix-ebs.sim", "-except=deploy", "-var", "app_version=2.3.4"}, append(vars, "example/web.pkr.hcl")...)...)
	if !strings.Contains(out, "AMIs were created") {
		t.Fatalf("packer build output lacks the artifact:\n%s", out)
	}
	for region, key := range keys {
		e := ec2.NewFromConfig(sandboxtest.Config(t, sb, region))
		imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil || len(imgs.Images) != 1 {
			t.Fatalf("%s: images %v %v", region, err, imgs)
		}
		im := imgs.Images[0]
		tags := map[string]string{}
		for _, tg := range im.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if tags["app"] != "web" || tags["version"] != "2.3.4" || !strings.HasPrefix(tags["base"], "debian-12-amd64-") || tags["phoenix:build-name"] != "web" {
			t.Errorf("%s: tags %v", region, tags)
		}
		if !strings.HasPrefix(aws.ToString(im.Name), "web-2.3.4-") || im.ImdsSupport != ec2types.ImdsSupportValuesV20 {
			t.Errorf("%s: name %s imds %s", region, aws.ToString(im.Name), im.ImdsSupport)
		}
		snap := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
		snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
		if err != nil || len(snaps.Snapshots) != 1 || !aws.ToBool(snaps.Snapshots[0].Encrypted) || aws.ToString(snaps.Snapshots[0].KmsKeyId) != key {
			t.Errorf("%s: snapshot %s not encrypted with %s: %v %+v", region, snap, key, err, snaps)
		}
		if _, err := e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
}
