package example

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// bootScript starts the baked app at boot, or, on an image without it, a
// busybox stand-in that passes the health check: the group runs the plain
// Debian image until phoenix-deploy rolls the app out.
const bootScript = `#!/bin/sh
if [ -e /etc/systemd/system/web-app.service ]; then
  : # the image's unit runs the app
elif [ -x /usr/local/bin/web-app ]; then
  nohup /usr/local/bin/web-app -listen 0.0.0.0:8080 >/var/log/web-app.log 2>&1 &
else
  mkdir -p /srv && echo ok >/srv/health && echo "plain debian" >/srv/index.html
  busybox httpd -p 0.0.0.0:8080 -h /srv
fi
`

// The example template's "web" source, end to end on real instances: the
// real Packer connects over SSH to a Debian 12 instance of the sandbox's
// linux runtime, phoenix-harden applies and verifies the baseline, the
// app is installed, the cleanup phase wipes keys and history, phoenix-ebs
// bakes an encrypted AMI tagged with the hardening score, and the
// phoenix-deploy post-processor rolls it onto an Auto Scaling group of 3
// behind a real load balancer. The baked image is then opened to check
// what it holds, and the load balancer asked what it serves.
func TestExampleTemplateBakesHardenedImage(t *testing.T) {
	testenv.RequireRoot(t)
	p := newPackerEnv(t)
	sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: 0.05})
	ctx := context.Background()
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })

	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	// The key policy AWS documents for Auto Scaling's service-linked role,
	// which launches the group's instances from the image.
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(deploytest.AutoScalingKeyPolicy())})
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

	f := deploytest.New(t, sb, "us-east-1")
	debian, err := ec2.NewFromConfig(f.Config).DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("no Debian image: %v", err)
	}
	st := f.Stack("web-e2e", aws.ToString(debian.Images[0].ImageId), deploytest.StackOptions{Desired: 3, Port: 8080, HealthCheckPath: "/health", UserData: bootScript})

	app := filepath.Join(t.TempDir(), "web-app")
	run(t, p.root, []string{"CGO_ENABLED=0"}, "go", "build", "-ldflags", "-X main.version=3.1.0", "-o", app, "./example/app")
	out := run(t, p.root, p.env, p.packer, "build", "-only=web.phoenix-ebs.web", "-var", "deploy_asg=web-e2e",
		"-var", "endpoint="+sb.URL(), "-var", "app_binary="+app, "-var", "app_version=3.1.0", "example/web.pkr.hcl")
	for _, want := range []string{"score 100/100 on debian-12 (apply, profile baseline)", "audit: Lynis ", "(cleanup, profile cleanup)", "Hardening report: profile baseline, score 100, Lynis hardening index", "AMIs were created", "succeeded: instance refresh"} {
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
		e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)})
	}()
	tags := map[string]string{}
	for _, tg := range im.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
	if err != nil || !aws.ToBool(snaps.Snapshots[0].Encrypted) || aws.ToString(snaps.Snapshots[0].KmsKeyId) != aws.ToString(key.KeyMetadata.Arn) {
		t.Errorf("snapshot not encrypted under the template's key: %v %+v", err, snaps)
	}

	// The group runs the new AMI on every instance, all healthy behind the
	// load balancer, which serves the new app.
	for id, ami := range f.InstanceAMIs("web-e2e") {
		if ami != aws.ToString(im.ImageId) {
			t.Errorf("instance %s runs %s, not the baked %s", id, ami, aws.ToString(im.ImageId))
		}
	}
	f.WaitHealthy(st, 3)
	var lbAddr string
	for _, lb := range sb.LoadBalancers() {
		lbAddr = lb.Address
	}
	resp, err := http.Get("http://" + lbAddr + "/")
	if err != nil {
		t.Fatalf("asking the load balancer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "web 3.1.0 on ip-127-31-") {
		t.Errorf("the load balancer serves %q, want the new app", body)
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
			Audit   struct {
				Index int `json:"hardening_index"`
			} `json:"audit"`
		} `json:"phoenix"`
	}
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatal(err)
	}
	if tags["phoenix:hardening-profile"] != report.Phoenix.Profile || tags["phoenix:hardening-score"] != strconv.Itoa(report.Phoenix.Score) || report.Phoenix.Score != 100 {
		t.Errorf("AMI tags %s/%s, report inside the image %s/%d", tags["phoenix:hardening-profile"], tags["phoenix:hardening-score"], report.Phoenix.Profile, report.Phoenix.Score)
	}
	// The audit's index is the AMI's tag, and the auditor left with the
	// cleanup phase.
	if idx := report.Phoenix.Audit.Index; idx <= 0 || tags["phoenix:audit-lynis-index"] != strconv.Itoa(idx) {
		t.Errorf("AMI tag phoenix:audit-lynis-index %q, index in the image's report %d", tags["phoenix:audit-lynis-index"], idx)
	}
	for _, p := range []string{"usr/sbin/lynis", "usr/share/lynis", "etc/lynis", "var/lib/phoenix/audit-packages"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("the image still holds /%s after the cleanup phase", p)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "usr/local/bin/web-app")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the app is not installed in the image: %v", err)
	}
	// The app is a systemd unit, enabled by the template's systemctl.
	if target, err := os.Readlink(filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/web-app.service")); err != nil || target != "/etc/systemd/system/web-app.service" {
		t.Errorf("the web-app unit is not enabled in the image: %q, %v", target, err)
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
