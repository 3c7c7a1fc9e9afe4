package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/builder/ebs"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// A real phoenix-ebs build in the sandbox (no communicator: the sim
// runtime has no sshd), chained into phoenix-deploy as Packer would.
func TestChainedAfterARealPhoenixEBSBuild(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("chain-1", deploytest.ImageOptions{})
	f.Stack("chain", old, deploytest.StackOptions{Desired: 2})

	var b ebs.Builder
	_, _, err := b.Prepare(map[string]interface{}{
		"region": region, "endpoint": f.SB.URL(), "access_key": "AKIASANDBOXTEST00001", "secret_key": "sandbox-secret",
		"source_ami_filter": map[string]interface{}{
			"owners":      []string{sandbox.OwnerDebian},
			"filters":     map[string]string{"name": "debian-12-amd64-*", "architecture": "x86_64"},
			"most_recent": true,
		},
		"instance_type": "t3.micro", "communicator": "none", "ami_name": "chain-{{timestamp}}",
		"poll_interval": "20ms", "packer_build_name": "chain",
	})
	if err != nil {
		t.Fatalf("builder Prepare: %v", err)
	}
	var buildOut bytes.Buffer
	art, err := b.Run(context.Background(), &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &buildOut, ErrorWriter: &buildOut}, &packersdk.MockHook{})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, buildOut.String())
	}
	t.Cleanup(func() { art.Destroy() })
	if art.BuilderId() != "immutable-infra.phoenix-ebs" || !strings.HasPrefix(art.Id(), region+":ami-") {
		t.Fatalf("artifact %s %s", art.BuilderId(), art.Id())
	}

	var p PostProcessor
	cfg := inline(f, "chain")
	cfg["require_encrypted"] = true
	if err := p.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	ui := newUi(t)
	out, keep, _, err := p.PostProcess(context.Background(), ui, art)
	if err != nil || out != art || !keep {
		t.Fatalf("PostProcess: %v keep %v\n%s", err, keep, ui.text())
	}
	ami := strings.TrimPrefix(art.Id(), region+":")
	for id, got := range f.InstanceAMIs("chain") {
		if got != ami {
			t.Errorf("%s runs %s, want the built %s", id, got, ami)
		}
	}
	if v := aws.ToString(f.Group("chain").LaunchTemplate.Version); v != "2" {
		t.Errorf("group on version %s", v)
	}
	// The group must let go of the AMI before the artifact is destroyed.
	f.DeleteGroup("chain")
}
