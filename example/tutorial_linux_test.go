//go:build linux

package example

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// tutorialBootScript serves a stand-in on port 80 on the plain Debian
// image the group starts from; the baked image's own nginx serves there.
const tutorialBootScript = `#!/bin/sh
if [ ! -e /usr/sbin/nginx ]; then
  mkdir -p /srv && echo "plain debian" >/srv/index.html
  busybox httpd -p 0.0.0.0:80 -h /srv
fi
`

// A template nobody here wrote: HashiCorp's tutorial template
// (example/tutorial/nginx.pkr.hcl: amazon-ebs, apt-get install nginx,
// systemctl enable nginx, the app and its unit copied in and enabled),
// changed only in its source AMI, SSH user and endpoint, bakes with the
// real amazon-ebs on instances that boot systemd; `phoenix deploy` rolls
// the image onto a group behind a load balancer; nginx answers through
// the load balancer, and the app's unit on port 8080 of every instance.
func TestTutorialTemplateOnSystemd(t *testing.T) {
	testenv.RequireRoot(t)
	p := newPackerEnv(t)
	run(t, p.root, nil, "./scripts/install-plugin-amazon.sh")
	run(t, p.root, p.env, p.packer, "plugins", "install", "--path", filepath.Join(p.root, "bin", "packer-plugin-amazon"), "github.com/hashicorp/amazon")

	sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: 0.05})
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	ctx := context.Background()
	const region = "us-west-2"
	f := deploytest.New(t, sb, region)
	e := ec2.NewFromConfig(f.Config)
	debian, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("no Debian image: %v", err)
	}
	st := f.Stack("tutorial", aws.ToString(debian.Images[0].ImageId), deploytest.StackOptions{Desired: 2, Port: 80, UserData: tutorialBootScript})

	dir := t.TempDir()
	app := filepath.Join(dir, "web-app")
	run(t, p.root, []string{"CGO_ENABLED=0"}, "go", "build", "-ldflags", "-X main.version=4.0.0", "-o", app, "./example/app")
	env := append([]string{"AWS_ENDPOINT_URL=" + sb.URL()}, p.env...)
	out := run(t, p.root, env, p.packer, "build", "-var", "app_binary="+app, "example/tutorial")
	for _, want := range []string{"Installing nginx", "Created symlink /etc/systemd/system/multi-user.target.wants/web-app.service", "amazon-ebs.debian: ok", "AMIs were created"} {
		if !strings.Contains(out, want) {
			t.Errorf("packer build output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("%s", out)
	}
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("images: %v %+v", err, imgs)
	}
	ami := aws.ToString(imgs.Images[0].ImageId)
	defer e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami), DeleteAssociatedSnapshots: aws.Bool(true)})

	phoenix := filepath.Join(dir, "phoenix")
	run(t, p.root, nil, "go", "build", "-o", phoenix, "./cmd/phoenix")
	cfg := filepath.Join(dir, "phoenix.hcl")
	writeFile(t, cfg, fmt.Sprintf(`environment "tutorial" {
  region        = %q
  endpoint      = %q
  poll_interval = "200ms"
  target "web" {
    asg = "tutorial"
  }
  strategy "rolling" {
    min_healthy_percentage = 100
    max_healthy_percentage = 200
    instance_warmup        = "5s"
    health_timeout         = "5m"
  }
}
`, region, sb.URL()))
	cmd := exec.Command(phoenix, "deploy", "tutorial", "--config", cfg, "--ami", ami)
	cmd.Env = p.env
	deployOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("phoenix deploy: %v\n%s", err, deployOut)
	}
	for id, got := range f.InstanceAMIs("tutorial") {
		if got != ami {
			t.Errorf("instance %s runs %s, not the baked %s", id, got, ami)
		}
	}
	f.WaitHealthy(st, 2)

	get := func(url string) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return string(b), fmt.Errorf("%s", resp.Status)
		}
		return string(b), err
	}
	var lbAddr string
	for _, lb := range sb.LoadBalancers() {
		lbAddr = lb.Address
	}
	if body, err := get("http://" + lbAddr + "/"); err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("the load balancer serves %q, %v; want nginx's page", body, err)
	}
	var ids []string
	for id := range f.InstanceAMIs("tutorial") {
		ids = append(ids, id)
	}
	d, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range d.Reservations {
		for _, in := range r.Instances {
			n++
			ip := aws.ToString(in.PrivateIpAddress)
			if body, err := get("http://" + ip + ":8080/"); err != nil || !strings.HasPrefix(body, "web 4.0.0 on ") {
				t.Errorf("the app's unit on %s (%s): %q, %v", aws.ToString(in.InstanceId), ip, body, err)
			}
			if body, err := get("http://" + ip + "/"); err != nil || !strings.Contains(body, "Welcome to nginx!") {
				t.Errorf("nginx on %s (%s): %q, %v", aws.ToString(in.InstanceId), ip, body, err)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d instances in the group, want 2", n)
	}
}
