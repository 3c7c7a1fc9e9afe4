package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// writeBlueGreenConfig writes a phoenix.hcl whose environment "prod"
// deploys bg blue-green with strategy.
func writeBlueGreenConfig(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen, strategy string) string {
	t.Helper()
	src := fmt.Sprintf(`environment "prod" {
  region        = %q
  endpoint      = %q
  access_key    = "AKIASANDBOXTEST00001"
  secret_key    = "sandbox-secret"
  poll_interval = "50ms"

  target "web" {
    asg      = %q
    peer_asg = %q
    listener = %q
  }

  strategy "blue-green" {
%s
  }
}
`, f.Region, f.SB.URL(), bg.Blue, bg.Green, bg.Listener, strategy)
	path := filepath.Join(t.TempDir(), "phoenix.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBlueGreenPlanDeployStatusRollback(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("web-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2})
	newAMI := f.Image("web-2", deploytest.ImageOptions{Encrypted: true})
	cfg := writeBlueGreenConfig(t, f, bg, `    steps          = [50, 100]
    bake_time      = "200ms"
    keep_old_for   = "1h"
    health_timeout = "30s"`)
	ctx := context.Background()
	var n normalizer
	n.normalize(old + " " + newAMI)

	f.SB.ResetCalls()
	out, code, err := runCLI(ctx, "plan", "prod", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("plan: exit %d: %v\n%s", code, err, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("plan made %d mutating calls", m)
	}
	golden(t, "plan-blue-green.txt", sortInstanceLines(n.normalize(out)))

	out, code, err = runCLI(ctx, "deploy", "prod", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	for _, want := range []string{`locked "web-blue", "web-green"`, "pinned green (web-green)", "moved 50% of the traffic to green (web-green)", "moved 100% of the traffic to green (web-green)",
		"unpinned green (web-green)", "blue (web-blue) stays warm on " + old, "web: succeeded: all traffic on green (web-green)"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}

	f.SB.ResetCalls()
	out, code, err = runCLI(ctx, "status", "prod", "--config", cfg)
	if code != 0 {
		t.Fatalf("status: exit %d: %v\n%s", code, err, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("status made %d mutating calls", m)
	}
	// The scale-in time changes every run.
	got := sortInstanceLines(n.normalize(out))
	if i := strings.Index(got, "scales to 0 at "); i > 0 {
		got = got[:i+len("scales to 0 at ")] + "TIME" + got[strings.Index(got[i:], "\n")+i:]
	}
	golden(t, "status-blue-green.txt", got)

	out, code, err = runCLI(ctx, "rollback", "prod", "--config", cfg)
	if code != 0 {
		t.Fatalf("rollback: exit %d: %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "moved all traffic back to blue (web-blue) ("+old+") from green (web-green) ("+newAMI+")") {
		t.Errorf("rollback output:\n%s", out)
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights after rollback %v", w)
	}
}

func TestBlueGreenFlagsAndRefusals(t *testing.T) {
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("api-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("api", old, deploytest.BlueGreenOptions{Desired: 1})
	newAMI := f.Image("api-2", deploytest.ImageOptions{})
	cfg := writeBlueGreenConfig(t, f, bg, "")
	ctx := context.Background()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "prod", "--config", cfg, "--ami", newAMI, "--min-healthy-percentage", "50"}, "--min-healthy-percentage is a rolling setting; the strategy is blue-green"},
		{[]string{"deploy", "prod", "--config", cfg, "--ami", newAMI, "--steps", "10,50"}, "steps [10 50] must end with 100: a switch that stops below 100 leaves traffic split between the colours (--steps or " + cfg + ")"},
		{[]string{"deploy", "prod", "--config", cfg, "--ami", newAMI, "--keep-old-for", "forever"}, `keep_old_for "forever" is not a duration`},
		{[]string{"deploy", "prod", "--config", cfg, "--ami", newAMI, "--strategy", "canary"}, `strategy "canary" is not one of rolling, blue-green (--strategy`},
		{[]string{"deploy", "prod", "--config", cfg, "--ami", newAMI, "--strategy", "rolling"}, "peer_asg is a blue-green setting, but target \"web\" is deployed with the rolling strategy"},
		{[]string{"deploy", "--region", testRegion, "--endpoint", f.SB.URL(), "--asg", bg.Blue, "--peer-asg", bg.Green, "--ami", newAMI}, `listener: target "api-blue" needs the ARN of the listener`},
	}
	for _, tc := range cases {
		f.SB.ResetCalls()
		out, code, err := runCLI(ctx, tc.args...)
		out += fmt.Sprint(err)
		if code != 3 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output:\n%s\nwant %q", tc.args[1:], code, out, tc.want)
		}
		if m := f.Mutating(); m != 0 {
			t.Errorf("%v: %d mutating calls", tc.args, m)
		}
	}
	// From flags alone, --peer-asg and --listener choose blue-green.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASANDBOXTEST00001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	out, code, err := runCLI(ctx, "deploy", "--region", testRegion, "--endpoint", f.SB.URL(), "--asg", bg.Blue, "--peer-asg", bg.Green, "--listener", bg.Listener,
		"--ami", newAMI, "--poll-interval", "50ms", "--steps", "20,100")
	if code != 0 {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "moved 20% of the traffic to green (api-green)") || !strings.Contains(out, "api-blue: succeeded") {
		t.Errorf("output:\n%s", out)
	}
}
