package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testRegion = "eu-west-1"

// writeConfig writes a phoenix.hcl for the fixture's sandbox with an
// environment "staging" targeting group; extra goes inside the
// environment block.
func writeConfig(t *testing.T, f *deploytest.Fixture, group, extra string) string {
	t.Helper()
	src := fmt.Sprintf(`environment "staging" {
  region     = %q
  endpoint   = %q
  access_key = "AKIASANDBOXTEST00001"
  secret_key = "sandbox-secret"
  poll_interval = "50ms"

  target "web" {
    asg = %q
  }
%s}
`, f.Region, f.SB.URL(), group, extra)
	path := filepath.Join(t.TempDir(), "phoenix.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs phoenix with args in-process and returns its output and
// exit code.
func runCLI(ctx context.Context, args ...string) (string, int, error) {
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), exitCode(err), err
}

// normalizer replaces AWS ids by stable names in order of appearance, so
// golden files do not depend on random ids.
type normalizer struct {
	seen map[string]string
	n    map[string]int
}

var idPatterns = []struct {
	re     *regexp.Regexp
	prefix string
}{
	{regexp.MustCompile(`arn:aws:elasticloadbalancing:[^ ,)"]+`), "arn-"},
	{regexp.MustCompile(`\bami-[0-9a-f]{8,17}\b`), "ami-"},
	{regexp.MustCompile(`\blt-[0-9a-f]{8,17}\b`), "lt-"},
	{regexp.MustCompile(`\bi-[0-9a-f]{8,17}\b`), "i-"},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "refresh-"},
	{regexp.MustCompile(`\bfixture-[a-z0-9-]+\b`), "image-"},
}

func (n *normalizer) normalize(s string) string {
	if n.seen == nil {
		n.seen, n.n = map[string]string{}, map[string]int{}
	}
	for _, p := range idPatterns {
		s = p.re.ReplaceAllStringFunc(s, func(id string) string {
			if v, ok := n.seen[id]; ok {
				return v
			}
			n.n[p.prefix]++
			v := fmt.Sprintf("%s%d", p.prefix, n.n[p.prefix])
			n.seen[id] = v
			return v
		})
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestDeployPlanStatusFromConfig(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("web-1", deploytest.ImageOptions{})
	f.Stack("web", old, deploytest.StackOptions{Desired: 3})
	newAMI := f.Image("web-2", deploytest.ImageOptions{Encrypted: true})
	cfg := writeConfig(t, f, "web", `
  require_encrypted = true
  strategy "rolling" {
    min_healthy_percentage = 50
    instance_warmup        = "10s"
    health_timeout         = "30s"
  }
`)
	ctx := context.Background()
	var n normalizer
	n.normalize(old + " " + newAMI) // ami-1 is the old AMI, ami-2 the new

	f.SB.ResetCalls()
	out, code, err := runCLI(ctx, "plan", "staging", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("plan: exit %d: %v\n%s", code, err, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("plan made %d mutating calls: %v", m, f.SB.Calls())
	}
	golden(t, "plan.txt", n.normalize(out))

	out, code, err = runCLI(ctx, "deploy", "staging", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	for _, want := range []string{"web: locked \"web\"", "created launch template", "started instance refresh", "[refresh] refresh InProgress", "healthy 3/3 on " + newAMI, "web: succeeded: instance refresh", "released the lock"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	g := f.Group("web")
	if v := aws.ToString(g.LaunchTemplate.Version); v != "2" {
		t.Errorf("group on version %s, want 2", v)
	}

	f.SB.ResetCalls()
	out, code, err = runCLI(ctx, "status", "staging", "--config", cfg)
	if code != 0 {
		t.Fatalf("status: exit %d: %v\n%s", code, err, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("status made %d mutating calls", m)
	}
	// Instances sort by id, which is random: normalise their order too.
	golden(t, "status.txt", sortInstanceLines(n.normalize(out)))

	out, code, _ = runCLI(ctx, "status", "staging", "--config", cfg, "--output", "json")
	if code != 0 || !strings.HasPrefix(out, `{"type":"status","target":"web","region":"eu-west-1","group":"web"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("status --output json: exit %d\n%s", code, out)
	}

	// Deploying the same AMI again changes nothing but the lock, and is
	// recorded in the history.
	f.SB.ResetCalls()
	out, code, err = runCLI(ctx, "deploy", "staging", "--config", cfg, "--ami", newAMI, "--output", "json")
	if code != 0 {
		t.Fatalf("second deploy: exit %d: %v\n%s", code, err, out)
	}
	calls := f.SB.Calls()
	if m := sandbox.MutatingCalls(calls); m != deploytest.LockCalls(calls) || calls["ssm"]["PutParameter"] != 3 || calls["autoscaling"]["CreateOrUpdateTags"] != 1 || calls["autoscaling"]["DeleteTags"] != 1 {
		t.Errorf("re-deploy made %d mutating calls, want only the lock's: %v", m, calls)
	}
	if !strings.Contains(out, `{"type":"result","outcome":"succeeded"`) {
		t.Errorf("json output lacks the result:\n%s", out)
	}

	// phoenix rollback returns to version 1's AMI.
	out, code, err = runCLI(ctx, "rollback", "staging", "--config", cfg)
	if code != 0 {
		t.Fatalf("rollback: exit %d: %v\n%s", code, err, out)
	}
	for id, ami := range f.InstanceAMIs("web") {
		if ami != old {
			t.Errorf("after rollback %s runs %s, want %s", id, ami, old)
		}
	}
	// The old AMI goes onto a new version of the current one, so that
	// changes made to the template since the deploy stay.
	grp := f.Group("web")
	if v := aws.ToString(grp.LaunchTemplate.Version); v != "3" {
		t.Errorf("after rollback group on version %s, want 3", v)
	}
	if _, ami := f.TemplateVersion(aws.ToString(grp.LaunchTemplate.LaunchTemplateId), aws.ToString(grp.LaunchTemplate.Version)); ami != old {
		t.Errorf("after rollback the group's version launches %s, want %s", ami, old)
	}
}

// instanceID is a normalized instance id (i-1, i-2, …), and only that:
// not the end of ami-2.
var instanceID = regexp.MustCompile(`\bi-\d+\b`)

// sortInstanceLines makes each run of indented instance lines independent
// of the order the instances were listed in: their ids become i-N (their
// numbers follow that order) and the lines are sorted. What each line
// says of its instance (state, AMI) stays.
func sortInstanceLines(s string) string {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "    i-") {
			j++
		}
		if j > i {
			block := lines[i:j]
			for a := range block {
				block[a] = instanceID.ReplaceAllString(block[a], "i-N")
			}
			sort.Strings(block)
			i = j
		} else {
			i++
		}
	}
	return strings.Join(lines, "\n")
}

func TestDeployFromFlagsAlone(t *testing.T) {
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("api-1", deploytest.ImageOptions{})
	f.Stack("api", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("api-2", deploytest.ImageOptions{})
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASANDBOXTEST00001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	out, code, err := runCLI(context.Background(), "deploy", "--region", testRegion, "--endpoint", f.SB.URL(), "--asg", "api", "--ami", newAMI,
		"--poll-interval", "50ms", "--min-healthy-percentage", "50", "--health-timeout", "30s")
	if code != 0 {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "api: succeeded") {
		t.Errorf("output:\n%s", out)
	}
}

func TestDeployRefusals(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("app-1", deploytest.ImageOptions{})
	f.Stack("app", old, deploytest.StackOptions{Desired: 1})
	plain := f.Image("app-2", deploytest.ImageOptions{})
	other := deploytest.New(t, f.SB, "us-east-1")
	elsewhere := other.Image("app-east", deploytest.ImageOptions{})
	// An image that stays pending for the whole test.
	slow := func(secs float64) {
		if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy": secs}}); err != nil {
			t.Fatal(err)
		}
	}
	slow(1e6)
	pending := f.Image("app-3", deploytest.ImageOptions{Pending: true})
	slow(180)
	cfg := writeConfig(t, f, "app", "")
	encCfg := writeConfig(t, f, "app", "  require_encrypted = true\n")
	missingCfg := writeConfig(t, f, "nope", "")
	badHCL := filepath.Join(t.TempDir(), "phoenix.hcl")
	os.WriteFile(badHCL, []byte("environment \"staging\" {\n  region = \"eu-west-1\"\n  target \"web\" {\n    asg = \n  }\n}\n"), 0o644)
	rangeCfg := writeConfig(t, f, "app", `  strategy "rolling" {
    min_healthy_percentage = 150
    checkpoints            = [50, 20]
    bake_time              = "soon"
  }
`)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown ASG", []string{"deploy", "staging", "--config", missingCfg, "--ami", plain}, []string{`auto scaling group "nope" not found in eu-west-1`, "asg setting"}},
		{"AMI not in region", []string{"deploy", "staging", "--config", cfg, "--ami", elsewhere}, []string{"AMI " + elsewhere + " not found in eu-west-1"}},
		{"AMI not an id", []string{"deploy", "staging", "--config", cfg, "--ami", "web-2"}, []string{`AMI "web-2" is not an AMI id`}},
		{"AMI not available", []string{"deploy", "staging", "--config", cfg, "--ami", pending}, []string{"is pending, not available"}},
		{"unencrypted AMI", []string{"deploy", "staging", "--config", encCfg, "--ami", plain}, []string{"is not admitted by environment staging's policy (1 of 1 rules failed)", "require_encrypted: ", "has unencrypted EBS snapshots"}},
		{"unencrypted AMI by flag", []string{"deploy", "staging", "--config", cfg, "--ami", plain, "--require-encrypted"}, []string{"require_encrypted"}},
		{"malformed HCL", []string{"deploy", "staging", "--config", badHCL, "--ami", plain}, []string{badHCL + ":4,"}},
		{"options out of range", []string{"deploy", "staging", "--config", rangeCfg, "--ami", plain}, []string{
			rangeCfg + ":12,30: Invalid min_healthy_percentage: min_healthy_percentage 150 must be between 0 and 100",
			rangeCfg + ":13,30: Invalid checkpoints: checkpoints [50 20] must be ascending",
			rangeCfg + ":14,30: Invalid bake_time: bake_time \"soon\" is not a duration"}},
		{"flag out of range", []string{"deploy", "staging", "--config", cfg, "--ami", plain, "--max-healthy-percentage", "250"}, []string{"max_healthy_percentage 250 must be between 100 and 200 (--max-healthy-percentage"}},
		{"unknown environment", []string{"deploy", "prod", "--config", cfg, "--ami", plain}, []string{`environment "prod" is not in`, "it has: staging"}},
		{"no target", []string{"deploy", "--ami", plain}, []string{"an environment of phoenix.hcl", "--asg"}},
		{"no AMI", []string{"deploy", "staging", "--config", cfg}, []string{"--ami"}},
		{"plan refuses too", []string{"plan", "staging", "--config", cfg, "--ami", pending}, []string{"is pending, not available"}},
		{"rollback with nothing to return to", []string{"rollback", "staging", "--config", cfg}, []string{"which phoenix did not create: there is no previous version"}},
		{"bad output", []string{"status", "staging", "--config", cfg, "--output", "yaml"}, []string{"--output"}},
	}
	for _, tc := range cases {
		f.SB.ResetCalls()
		out, code, err := runCLI(context.Background(), tc.args...)
		if code != exitRefused {
			t.Errorf("%s: exit %d, want 3: %v\n%s", tc.name, code, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message does not say %q:\n%v", tc.name, w, err)
			}
		}
		if m := f.Mutating(); m != 0 {
			t.Errorf("%s: %d mutating calls: %v", tc.name, m, f.SB.Calls())
		}
	}
}

func TestSecondDeployIsRefusedWhileOneRuns(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("svc-1", deploytest.ImageOptions{})
	f.Stack("svc", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("svc-2", deploytest.ImageOptions{})
	cfg := writeConfig(t, f, "svc", `  strategy "rolling" {
    min_healthy_percentage = 50
    checkpoints            = [50, 100]
    checkpoint_delay       = "1h"
  }
`)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int, 1)
	var firstOut string
	go func() {
		out, code, _ := runCLI(ctx, "deploy", "staging", "--config", cfg, "--ami", newAMI)
		firstOut = out
		first <- code
	}()
	// Wait until the first deploy holds the lock and its refresh waits at
	// the checkpoint: from then on it only reads.
	f.WaitFor("the first deploy at its checkpoint", 30*time.Second, func() (bool, string) {
		out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("svc")})
		if err != nil || len(out.InstanceRefreshes) == 0 {
			return false, fmt.Sprint(err)
		}
		return strings.HasPrefix(aws.ToString(out.InstanceRefreshes[0].StatusReason), "Checkpoint"), aws.ToString(out.InstanceRefreshes[0].StatusReason)
	})
	f.SB.ResetCalls()
	for _, ami := range []string{newAMI, old} {
		out, code, err := runCLI(context.Background(), "deploy", "staging", "--config", cfg, "--ami", ami)
		if code != exitRefused || !strings.Contains(fmt.Sprint(err), `"svc" is locked by test`) && !strings.Contains(fmt.Sprint(err), `"svc" is locked by `) {
			t.Errorf("second deploy of %s: exit %d: %v\n%s", ami, code, err, out)
		}
		if err != nil && !strings.Contains(err.Error(), "(deploy ") {
			t.Errorf("refusal does not say who holds the lock: %v", err)
		}
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("refused deploys made %d mutating calls: %v", m, f.SB.Calls())
	}
	// Ctrl-C on the first: it releases its lock; the refresh goes on and
	// still locks the group against a deploy of another AMI.
	cancel()
	if code := <-first; code != exitFailed {
		t.Errorf("interrupted deploy: exit %d\n%s", code, firstOut)
	}
	if !strings.Contains(firstOut, "released the lock") || !strings.Contains(firstOut, "web: interrupted: deploy interrupted") {
		t.Errorf("interrupted deploy did not release its lock:\n%s", firstOut)
	}
	for _, tag := range f.Group("svc").Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("lock left: %s", aws.ToString(tag.Value))
		}
	}
	f.SB.ResetCalls()
	_, code, err := runCLI(context.Background(), "deploy", "staging", "--config", cfg, "--ami", old)
	if code != exitRefused || !strings.Contains(err.Error(), "locked by instance refresh") {
		t.Errorf("deploy during a refresh: exit %d: %v", code, err)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("refused deploy made %d mutating calls", m)
	}
	// The same AMI again follows the refresh that is still running.
	_, err = f.Clients.AutoScaling.CancelInstanceRefresh(context.Background(), &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("svc")})
	if err != nil {
		t.Fatal(err)
	}
	_ = astypes.InstanceRefreshStatusCancelled
}
