package example

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The example template's "web" source, end to end on real instances: the
// real Packer connects over SSH to a Debian 12 instance of the sandbox's
// linux runtime, phoenix-harden applies and verifies the baseline, the
// app is installed, the cleanup phase wipes keys and history, and
// phoenix-ebs bakes an encrypted AMI tagged with the hardening score. The
// baked image is then opened to check what it holds.
func TestExampleTemplateBakesHardenedImage(t *testing.T) {
	testenv.RequireRoot(t)
	p := newPackerEnv(t)
	sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: 0.05})
	ctx := context.Background()
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })

	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/images"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		kc.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/images")})
		kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	}()

	app := filepath.Join(t.TempDir(), "web-app")
	run(t, p.root, []string{"CGO_ENABLED=0"}, "go", "build", "-ldflags", "-X main.version=3.1.0", "-o", app, "./example/app")
	out := run(t, p.root, p.env, p.packer, "build", "-only=web.phoenix-ebs.web", "-except=deploy",
		"-var", "endpoint="+sb.URL(), "-var", "app_binary="+app, "-var", "app_version=3.1.0", "example/web.pkr.hcl")
	for _, want := range []string{"score 100/100 on debian-12 (apply, profile baseline)", "(cleanup, profile cleanup)", "Hardening report: profile baseline, score 100", "AMIs were created"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("%s", out)
	}

	e := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("images: %v %+v", err, imgs)
	}
	im := imgs.Images[0]
	snap := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	defer func() {
		e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId})
		e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
	}()
	tags := map[string]string{}
	for _, tg := range im.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
	if err != nil || !aws.ToBool(snaps.Snapshots[0].Encrypted) || aws.ToString(snaps.Snapshots[0].KmsKeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Errorf("snapshot not encrypted under the template's key: %v %+v", err, snaps)
	}

	dir, closeImage, err := sb.OpenImage("us-east-1", aws.ToString(im.ImageId))
	if err != nil {
		t.Fatalf("opening the baked image: %v", err)
	}
	defer closeImage()
	// The hardening report inside the image is what the AMI's tags say.
	data, err := os.ReadFile(filepath.Join(dir, "var/lib/phoenix/hardening.json"))
	if err != nil {
		t.Fatalf("no hardening report in the image: %v", err)
	}
	var report struct {
		Phoenix struct {
			Profile string `json:"profile"`
			Score   int    `json:"score"`
		} `json:"phoenix"`
	}
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatal(err)
	}
	if tags["phoenix:hardening-profile"] != report.Phoenix.Profile || tags["phoenix:hardening-score"] != strconv.Itoa(report.Phoenix.Score) || report.Phoenix.Score != 100 {
		t.Errorf("AMI tags %s/%s, report inside the image %s/%d", tags["phoenix:hardening-profile"], tags["phoenix:hardening-score"], report.Phoenix.Profile, report.Phoenix.Score)
	}
	if st, err := os.Stat(filepath.Join(dir, "usr/local/bin/web-app")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the app is not installed in the image: %v", err)
	}
	// No key, no history: the build's own temporary key included.
	for _, pattern := range []string{"etc/ssh/ssh_host_*_key", "home/*/.ssh/authorized_keys", "root/.ssh/authorized_keys", "home/*/.bash_history", "root/.bash_history"} {
		if found, _ := filepath.Glob(filepath.Join(dir, pattern)); len(found) > 0 {
			t.Errorf("the image still holds %v", found)
		}
	}
	// A machine-id, where the image has one, is empty so that each
	// instance gets its own.
	if id, err := os.ReadFile(filepath.Join(dir, "etc/machine-id")); err == nil && len(strings.TrimSpace(string(id))) != 0 {
		t.Errorf("machine-id not truncated: %q", id)
	}
}
