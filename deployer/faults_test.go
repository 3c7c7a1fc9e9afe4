package deployer_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// faultSets are AWS's everyday trouble, alone and together: throttling,
// server errors, latency, and resources that are not yet visible right
// after they were created (eventual consistency).
var faultSets = []struct {
	name   string
	faults []sandbox.Fault
}{
	{"none", nil},
	{"throttling 20%", []sandbox.Fault{{Kind: "throttle", Probability: 0.2}}},
	// A deploy makes a few dozen calls: besides the random 5xx, one sure
	// 500 and one sure 503 (as in "all together") so that the set always
	// meets some.
	{"5xx 5%", []sandbox.Fault{
		{Kind: "error500", Action: "CreateLaunchTemplateVersion", Count: 1}, {Kind: "error503", Action: "DescribeAutoScalingGroups", Count: 1},
		{Kind: "error500", Probability: 0.025}, {Kind: "error503", Probability: 0.025},
	}},
	{"latency 300ms", []sandbox.Fault{{Kind: "latency", LatencyMS: 300}}},
	{"invisible 2s", []sandbox.Fault{{Kind: "invisible", InvisibleMS: 2000}}},
	// Each kind must fire here (faultsFired): resources stay invisible
	// longer than alone, as the latency makes every pass slower, and
	// besides the random ones one 500 and one 503 are sure to come, on
	// calls both strategies make (the version's retry rides on its
	// client token). They come first: of the faults that fire on one
	// call, the first one's error is the answer.
	{"all together", []sandbox.Fault{
		{Kind: "error500", Action: "CreateLaunchTemplateVersion", Count: 1}, {Kind: "error503", Action: "DescribeAutoScalingGroups", Count: 1},
		{Kind: "throttle", Probability: 0.2}, {Kind: "error500", Probability: 0.025}, {Kind: "error503", Probability: 0.025},
		{Kind: "latency", LatencyMS: 300}, {Kind: "invisible", InvisibleMS: 10000},
	}},
}

// faultClients are the deployer's clients as a user gets them: through
// awsconfig, with its retry settings (max_retries 10, no client-side rate
// limit), not the test fixture's bare SDK defaults.
func faultClients(t *testing.T, f *deploytest.Fixture) deployer.Clients {
	t.Helper()
	s := awsconfig.Settings{Endpoint: f.SB.URL(), AccessKey: "AKIASANDBOXTEST00001", SecretKey: "sandbox-secret"}
	cfg, err := s.Load(context.Background(), f.Region)
	if err != nil {
		t.Fatal(err)
	}
	return deployer.NewClients(cfg)
}

// newFaultFixture starts a sandbox of its own whose image copies (the
// fixture's AMIs) take 10 s of AWS time instead of 3 minutes: they are the
// test's setup, not what it is about.
func newFaultFixture(t *testing.T) *deploytest.Fixture {
	t.Helper()
	f := deploytest.New(t, nil, region)
	if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy": 10}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// inventoryCounts counts the sandbox's top-level resources by region and
// kind (what is inside them, the fixture's leak check compares).
func inventoryCounts(sb *sandbox.Sandbox) map[string]int {
	n := map[string]int{}
	for _, r := range sb.Inventory() {
		if !r.Nested() {
			n[r.Region+"/"+r.Type]++
		}
	}
	return n
}

func formatCounts(n map[string]int) string {
	var keys []string
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, n[k])
	}
	return strings.Join(parts, " ")
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// injectFaults adds the faults. Resources the test built before the
// deploy are made older than any invisibility window first: what such a
// fault is about is the deploy's own creations (the instances Auto Scaling
// launches for it), not infrastructure that existed long before.
func injectFaults(t *testing.T, sb *sandbox.Sandbox, faults []sandbox.Fault) {
	t.Helper()
	for _, f := range faults {
		if f.Kind == "invisible" {
			time.Sleep(time.Duration(f.InvisibleMS) * time.Millisecond)
		}
	}
	for _, f := range faults {
		if _, err := sb.AddFault(f); err != nil {
			t.Fatal(err)
		}
	}
}

// faultsFired sums how often the injected faults fired, fails the test
// when none did, or, in the combined set, when a kind never did; then
// clears them so that the test's own checks read the sandbox undisturbed.
func faultsFired(t *testing.T, sb *sandbox.Sandbox, set string) int {
	t.Helper()
	if set == "all together" {
		sandboxtest.RequireEachFaultKindFired(t, sb)
	}
	fired := 0
	for _, f := range sb.Faults() {
		fired += f.Fired
	}
	if n := len(sb.Faults()); n > 0 && fired == 0 {
		t.Errorf("no fault fired; fault seed %d", sb.FaultSeed())
	}
	sb.ClearFaults()
	return fired
}

// A rolling deploy and a blue-green deploy (steps 50, 100 with a short
// bake) succeed under each fault set, end in the state they promise, and
// leave the sandbox with exactly the resources a clean deploy leaves: the
// same kinds in the same numbers as before the deploy (the instances are
// new ones on the new AMI, as many as there were).
//
// The cases run all at once, each with its own sandbox (faults are a
// sandbox's): they spend their time waiting on sandbox time, injected
// latency and the SDK's back-off, not on the CPU, so they are not held to
// the -parallel limit (GOMAXPROCS) that t.Parallel would impose.
func TestDeployUnderFaults(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	run := func(name string, f func(*testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	}
	defer wg.Wait()
	for _, fs := range faultSets {
		run("rolling/"+fs.name, func(t *testing.T) {
			f := newFaultFixture(t)
			old := f.Image("web-1", deploytest.ImageOptions{})
			st := f.Stack("web", old, deploytest.StackOptions{Desired: 3})
			newAMI := f.Image("web-2", deploytest.ImageOptions{})
			before := inventoryCounts(f.SB)
			before[f.Region+"/parameter"] += 2 // the released lock and the deploy history

			injectFaults(t, f.SB, fs.faults)
			var ev events
			d := newDeployer(f, "web", nil, &ev)
			d.Clients = faultClients(t, f)
			d.HealthTimeout = time.Minute
			res, err := d.Run(context.Background(), newAMI)
			fired := faultsFired(t, f.SB, fs.name)
			if err != nil || res.Outcome != deployer.Succeeded {
				t.Fatalf("deploy under %s: %v (%+v)\n%s", fs.name, err, res, ev.messages())
			}

			g := f.Group("web")
			if v := aws.ToString(g.LaunchTemplate.Version); v != "2" {
				t.Errorf("group on version %q, want 2 (one new version, however many retries)", v)
			}
			for _, tag := range g.Tags {
				if aws.ToString(tag.Key) == deployer.LockTag {
					t.Errorf("lock left behind: %s", aws.ToString(tag.Value))
				}
			}
			amis := f.InstanceAMIs("web")
			for id, ami := range amis {
				if ami != newAMI {
					t.Errorf("instance %s runs %s, want %s", id, ami, newAMI)
				}
			}
			if h, n := healthyOn(t, f, st.TargetGroups[0], newAMI); h != 3 || n != 3 || len(amis) != 3 {
				t.Errorf("%d/%d targets healthy on %s, %d instances in the group; want 3/3 and 3", h, n, newAMI, len(amis))
			}
			f.WaitFor("the inventory a clean deploy leaves", 30*time.Second, func() (bool, string) {
				now := inventoryCounts(f.SB)
				return sameCounts(now, before), fmt.Sprintf("have %s, want %s", formatCounts(now), formatCounts(before))
			})
			t.Logf("%d faults fired\n%s", fired, ev.messages())
		})
		run("blue-green/"+fs.name, func(t *testing.T) {
			f := newFaultFixture(t)
			old := f.Image("web-1", deploytest.ImageOptions{})
			bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 3})
			newAMI := f.Image("web-2", deploytest.ImageOptions{})
			before := inventoryCounts(f.SB)
			before[f.Region+"/parameter"] += 3 // the released locks of both colours and the deploy history

			injectFaults(t, f.SB, fs.faults)
			var ev events
			d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: 300 * time.Millisecond}, &ev)
			d.Clients = faultClients(t, f)
			d.HealthTimeout = time.Minute
			res, err := d.Run(context.Background(), newAMI)
			fired := faultsFired(t, f.SB, fs.name)
			if err != nil || res.Outcome != deployer.Succeeded {
				t.Fatalf("deploy under %s: %v (%+v)\n%s", fs.name, err, res, ev.messages())
			}

			if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
				t.Errorf("weights %v, want green 100 and blue 0", w)
			}
			green := readColour(t, f, bg.Green)
			if green.desired != 3 || green.min != 3 || green.pinned || green.amis[newAMI] != 3 || len(green.amis) != 1 {
				t.Errorf("green after the deploy: %+v (want 3 on %s, minimum 3, no pin)", green, newAMI)
			}
			if h, n := healthyOn(t, f, bg.GreenTG, newAMI); h != 3 || n != 3 {
				t.Errorf("green: %d/%d healthy on %s", h, n, newAMI)
			}
			f.WaitFor("blue at 0", 30*time.Second, func() (bool, string) {
				b := readColour(t, f, bg.Blue)
				return b.desired == 0 && b.min == 0 && !b.pinned && len(b.amis) == 0, fmt.Sprintf("%+v", b)
			})
			for _, group := range []string{bg.Blue, bg.Green} {
				for _, tag := range f.Group(group).Tags {
					if k := aws.ToString(tag.Key); k == deployer.LockTag || k == deployer.PinTag {
						t.Errorf("%s left on %s: %s", k, group, aws.ToString(tag.Value))
					}
				}
			}
			f.WaitFor("the inventory a clean deploy leaves", 30*time.Second, func() (bool, string) {
				now := inventoryCounts(f.SB)
				return sameCounts(now, before), fmt.Sprintf("have %s, want %s", formatCounts(now), formatCounts(before))
			})
			t.Logf("%d faults fired\n%s", fired, ev.messages())
		})
	}
}

// onceBehindTheBack runs do, once, just before the sandbox handles the
// first call to action: what the call would do is then already done, as
// when a first attempt went through but its answer was lost and the SDK
// retried. Calls that do makes itself are not intercepted.
func onceBehindTheBack(t *testing.T, sb *sandbox.Sandbox, action string, do func() error) *atomic.Bool {
	var done, inside atomic.Bool
	sb.OnCall(func(service, a string) {
		if a != action || inside.Load() || done.Load() {
			return
		}
		inside.Store(true)
		defer inside.Store(false)
		if err := do(); err != nil {
			t.Errorf("doing %s behind the deploy's back: %v", action, err)
		}
		done.Store(true)
	})
	t.Cleanup(func() { sb.OnCall(nil) })
	return &done
}

// A StartInstanceRefresh that went through but whose answer was lost is
// retried and refused with InstanceRefreshInProgress by the refresh it
// started: the deploy follows that refresh rather than failing (and
// rolling back) its own work.
func TestRefreshStartRetriedAfterItWentThrough(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	st := f.Stack("web", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("web-2", deploytest.ImageOptions{})
	ctx := context.Background()
	var started string
	done := onceBehindTheBack(t, f.SB, "StartInstanceRefresh", func() error {
		v, err := f.Clients.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(st.Template), Versions: []string{"$Latest"}})
		if err != nil || len(v.LaunchTemplateVersions) != 1 {
			return fmt.Errorf("reading the new version: %v", err)
		}
		out, err := f.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("web"),
			DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template),
				Version: aws.String(strconv.FormatInt(aws.ToInt64(v.LaunchTemplateVersions[0].VersionNumber), 10))}},
			Preferences: &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(90), MaxHealthyPercentage: aws.Int32(100), SkipMatching: aws.Bool(true)}})
		if err != nil {
			return err
		}
		started = aws.ToString(out.InstanceRefreshId)
		return nil
	})
	var ev events
	res, err := newDeployer(f, "web", nil, &ev).Run(ctx, newAMI)
	if !done.Load() {
		t.Fatal("the refresh was never started behind the deploy's back")
	}
	if err != nil || res.Refresh != started {
		t.Fatalf("deploy: %v, refresh %q, want the one already started %q\n%s", err, res.Refresh, started, ev.messages())
	}
	rfs, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("web")})
	if err != nil || len(rfs.InstanceRefreshes) != 1 {
		t.Errorf("refreshes of the group: %d (%v), want the one", len(rfs.InstanceRefreshes), err)
	}
	for id, ami := range f.InstanceAMIs("web") {
		if ami != newAMI {
			t.Errorf("%s runs %s, want %s", id, ami, newAMI)
		}
	}
	if !strings.Contains(ev.messages(), "the start was retried after an error") {
		t.Errorf("events:\n%s", ev.messages())
	}
}

// A DeleteScheduledAction that went through but whose answer was lost is
// retried and refused (the action is gone): the blue-green deploy that
// takes the warm colour back into service counts that as done.
func TestScaleInDeleteRetriedAfterItWentThrough(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2})
	second := f.Image("web-2", deploytest.ImageOptions{})
	third := f.Image("web-3", deploytest.ImageOptions{})
	ctx := context.Background()
	if _, err := newBlueGreen(f, bg, &deployer.BlueGreen{KeepOldFor: time.Hour}, nil).Run(ctx, second); err != nil {
		t.Fatal(err)
	}
	if len(scheduledScaleIns(t, f, bg.Blue)) != 1 {
		t.Fatal("blue is not kept warm by a scheduled scale-in")
	}
	done := onceBehindTheBack(t, f.SB, "DeleteScheduledAction", func() error {
		_, err := f.Clients.AutoScaling.DeleteScheduledAction(ctx, &autoscaling.DeleteScheduledActionInput{AutoScalingGroupName: aws.String(bg.Blue), ScheduledActionName: aws.String(deployer.ScaleInAction)})
		return err
	})
	var ev events
	res, err := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev).Run(ctx, third)
	if !done.Load() {
		t.Fatal("the scheduled scale-in was never deleted behind the deploy's back")
	}
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v", w)
	}
	if b := readColour(t, f, bg.Blue); b.amis[third] != 2 || b.pinned {
		t.Errorf("blue %+v", b)
	}
	if n := len(scheduledScaleIns(t, f, bg.Blue)); n != 0 {
		t.Errorf("blue, live, has %d scheduled scale-ins", n)
	}
	f.WaitFor("green scaled to zero", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return g.desired == 0 && len(g.amis) == 0, fmt.Sprintf("%+v", g)
	})
}
