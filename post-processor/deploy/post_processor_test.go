package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/builder/ebs"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

const region = "eu-west-1"

// recordingUi keeps what the post-processor says.
type recordingUi struct {
	packersdk.Ui
	mu    sync.Mutex
	lines []string
}

func (u *recordingUi) Say(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lines = append(u.lines, s)
}

func (u *recordingUi) text() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

func newUi(t *testing.T) *recordingUi {
	return &recordingUi{Ui: packersdk.TestUi(t)}
}

// inline is a configuration with everything inline, for the fixture's
// sandbox.
func inline(f *deploytest.Fixture, asg string) map[string]interface{} {
	return map[string]interface{}{
		"region": f.Region, "endpoint": f.SB.URL(), "access_key": "AKIASANDBOXTEST00001", "secret_key": "sandbox-secret",
		"asg": asg, "min_healthy_percentage": 50, "health_timeout": "30s", "poll_interval": "50ms",
	}
}

func TestDeployAfterAmazonEBSArtifact(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	f.Stack("web", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("web-2", deploytest.ImageOptions{})
	var p PostProcessor
	if err := p.Configure(inline(f, "web")); err != nil {
		t.Fatal(err)
	}
	art := &packersdk.MockArtifact{BuilderIdValue: "mitchellh.amazonebs", IdValue: "us-east-1:ami-0123456789abcdef0," + region + ":" + newAMI}
	ui := newUi(t)
	out, keep, force, err := p.PostProcess(context.Background(), ui, art)
	if err != nil {
		t.Fatalf("PostProcess: %v\n%s", err, ui.text())
	}
	if out != art || !keep || force {
		t.Errorf("artifact %v keep %v force %v: the input artifact must be kept", out, keep, force)
	}
	for _, want := range []string{"phoenix-deploy: deploying " + newAMI + ` onto "web" in eu-west-1 (rolling)`, "created launch template", "[refresh] refresh", "web: succeeded:"} {
		if !strings.Contains(ui.text(), want) {
			t.Errorf("ui lacks %q:\n%s", want, ui.text())
		}
	}
	for id, ami := range f.InstanceAMIs("web") {
		if ami != newAMI {
			t.Errorf("%s runs %s", id, ami)
		}
	}
}

func TestDeployAfterPhoenixEBSArtifactFromEnvironment(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("app-1", deploytest.ImageOptions{})
	f.Stack("app", old, deploytest.StackOptions{Desired: 2})
	good := f.Image("app-2", deploytest.ImageOptions{Encrypted: true})
	bad := f.Image("app-3", deploytest.ImageOptions{Encrypted: true, Health: "fail"})
	cfg := filepath.Join(t.TempDir(), "phoenix.hcl")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`environment "staging" {
  region            = %q
  endpoint          = %q
  access_key        = "AKIASANDBOXTEST00001"
  secret_key        = "sandbox-secret"
  poll_interval     = "50ms"
  require_encrypted = true
  target "app" { asg = "app" }
  strategy "rolling" {
    min_healthy_percentage = 50
    health_timeout         = "30s"
  }
}
`, region, f.SB.URL())), 0o644)
	var p PostProcessor
	if err := p.Configure(map[string]interface{}{"environment": "staging", "config_file": cfg}); err != nil {
		t.Fatal(err)
	}
	art := &ebs.Artifact{AMIs: map[string]string{region: good}}
	if art.BuilderId() != "immutable-infra.phoenix-ebs" {
		t.Fatalf("builder id %s", art.BuilderId())
	}
	ui := newUi(t)
	if _, keep, _, err := p.PostProcess(context.Background(), ui, art); err != nil || !keep {
		t.Fatalf("PostProcess: %v keep %v\n%s", err, keep, ui.text())
	}
	if v := aws.ToString(f.Group("app").LaunchTemplate.Version); v != "2" {
		t.Errorf("group on version %s", v)
	}

	// A failing image fails the build with the deployer's message; the
	// group is rolled back and the artifact is kept.
	ui = newUi(t)
	art = &ebs.Artifact{AMIs: map[string]string{region: bad}}
	out, keep, _, err := p.PostProcess(context.Background(), ui, art)
	if err == nil || out != art || !keep {
		t.Fatalf("PostProcess of a failing image: %v keep %v", err, keep)
	}
	if !strings.Contains(err.Error(), "(rolled back)") || !strings.Contains(err.Error(), "deploy failed and was rolled back") {
		t.Errorf("error %q", err)
	}
	for id, ami := range f.InstanceAMIs("app") {
		if ami != good {
			t.Errorf("%s runs %s after the rollback, want %s", id, ami, good)
		}
	}
}

func TestArtifactWithoutTheRegion(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	var p PostProcessor
	if err := p.Configure(inline(f, "web")); err != nil {
		t.Fatal(err)
	}
	f.SB.ResetCalls()
	art := &packersdk.MockArtifact{BuilderIdValue: "mitchellh.amazonebs", IdValue: "us-west-2:ami-0123456789abcdef0,us-east-1:ami-0123456789abcdef1"}
	_, keep, _, err := p.PostProcess(context.Background(), newUi(t), art)
	if err == nil || !keep || !strings.Contains(err.Error(), "no AMI in eu-west-1") || !strings.Contains(err.Error(), "us-east-1, us-west-2") {
		t.Errorf("err %v keep %v", err, keep)
	}
	art = &packersdk.MockArtifact{BuilderIdValue: "packer.file", IdValue: "output/disk.img"}
	if _, _, _, err := p.PostProcess(context.Background(), newUi(t), art); err == nil || !strings.Contains(err.Error(), "takes an AMI artifact") {
		t.Errorf("file artifact: %v", err)
	}
	if f.Mutating() != 0 {
		t.Errorf("mutating calls: %v", f.SB.Calls())
	}
}

func TestConfigureReportsEveryProblem(t *testing.T) {
	var p PostProcessor
	err := p.Configure(map[string]interface{}{"min_healthy_percentage": 120, "bake_time": "later", "config_file": "x.hcl", "poll_interval": "-1s"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"set environment", "config_file is set without environment", "min_healthy_percentage 120", `bake_time "later"`, "poll_interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestAMIs(t *testing.T) {
	got, err := AMIs("us-east-1:ami-0123456789abcdef0,eu-west-1:ami-01234567")
	if err != nil || got["us-east-1"] != "ami-0123456789abcdef0" || got["eu-west-1"] != "ami-01234567" {
		t.Errorf("%v %v", got, err)
	}
	for _, bad := range []string{"", "ami-0123", "us-east-1:snap-1", "us-east-1:ami-1,junk"} {
		if _, err := AMIs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDeployBlueGreenInline(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2, Rule: true})
	newAMI := f.Image("web-2", deploytest.ImageOptions{})
	cfg := map[string]interface{}{
		"region": f.Region, "endpoint": f.SB.URL(), "access_key": "AKIASANDBOXTEST00001", "secret_key": "sandbox-secret",
		"asg": bg.Blue, "peer_asg": bg.Green, "listener": bg.Listener, "rule": bg.Rule, "steps": []int{25, 100}, "bake_time": "100ms",
		"health_timeout": "30s", "poll_interval": "50ms",
	}
	var p PostProcessor
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	art := &packersdk.MockArtifact{BuilderIdValue: "immutable-infra.phoenix-ebs", IdValue: region + ":" + newAMI}
	ui := newUi(t)
	if _, _, _, err := p.PostProcess(context.Background(), ui, art); err != nil {
		t.Fatalf("PostProcess: %v\n%s", err, ui.text())
	}
	for _, want := range []string{"phoenix-deploy: deploying " + newAMI + ` onto "web-blue" / "web-green" in eu-west-1 (blue-green)`, "moved 25% of the traffic to green (web-green)", "web-blue: succeeded: all traffic on green (web-green)"} {
		if !strings.Contains(ui.text(), want) {
			t.Errorf("ui lacks %q:\n%s", want, ui.text())
		}
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights %v", w)
	}
	for id, ami := range f.InstanceAMIs(bg.Green) {
		if ami != newAMI {
			t.Errorf("%s runs %s", id, ami)
		}
	}

	bad := []struct {
		set  map[string]interface{}
		want string
	}{
		{map[string]interface{}{"min_healthy_percentage": 50}, "min_healthy_percentage is a rolling setting; the strategy is blue-green"},
		{map[string]interface{}{"steps": []int{50}}, "steps [50] must end with 100"},
		{map[string]interface{}{"return_home": true, "keep_old_for": "1h"}, "keep_old_for 1h0m0s: with return_home both colours end on the new AMI"},
		{map[string]interface{}{"listener": ""}, `listener: target "web-blue" needs the ARN of the listener`},
		{map[string]interface{}{"strategy": "canary"}, `strategy "canary" is not one of rolling, blue-green`},
	}
	for _, tc := range bad {
		c := map[string]interface{}{}
		for k, v := range cfg {
			c[k] = v
		}
		for k, v := range tc.set {
			c[k] = v
		}
		var p PostProcessor
		if err := p.Configure(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.set, err, tc.want)
		}
	}
}
