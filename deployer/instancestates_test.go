package deployer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// The hour Auto Scaling waits for protected and standby instances, as
// 300 s: 3 s at the tests' time scale.
func shortRefreshWait(t *testing.T, f *deploytest.Fixture) {
	t.Helper()
	if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"refresh_instance_wait": 300}}); err != nil {
		t.Fatal(err)
	}
}

func firstGroupInstance(t *testing.T, f *deploytest.Fixture, group string) string {
	t.Helper()
	g := f.Group(group)
	if len(g.Instances) == 0 {
		t.Fatalf("%s has no instances", group)
	}
	return aws.ToString(g.Instances[0].InstanceId)
}

func setProtection(t *testing.T, f *deploytest.Fixture, group, id string, on bool) {
	t.Helper()
	f.Setup(func() {
		if _, err := f.Clients.AutoScaling.SetInstanceProtection(context.Background(), &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(group), InstanceIds: []string{id}, ProtectedFromScaleIn: aws.Bool(on)}); err != nil {
			t.Fatal(err)
		}
	})
}

// progressSaying collects the progress lines of a deploy that contain
// want, and calls once the first time one does.
type progressSaying struct {
	events
	want  string
	once  func()
	mu    sync.Mutex
	lines []string
}

func (p *progressSaying) add(e deployer.Event) {
	p.events.add(e)
	if e.Kind != deployer.EventProgress || !strings.Contains(e.Message, p.want) {
		return
	}
	p.mu.Lock()
	first := len(p.lines) == 0
	p.lines = append(p.lines, e.Message)
	p.mu.Unlock()
	if first && p.once != nil {
		go p.once()
	}
}

func (p *progressSaying) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// A rolling deploy to a group with an instance protected from scale in
// or in Standby: the plan and status count them and say what the refresh
// will do; Auto Scaling's default (Wait) makes the deploy say on every
// pass what the refresh waits for, and fail and roll back after the
// wait; released in time, or with Refresh / Ignore / Terminate, the
// deploy succeeds.
func TestRollingWithProtectedAndStandbyInstances(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		standby   bool
		settings  deployer.RollingSettings
		release   bool
		outcome   deployer.Outcome
		planSays  string
		keptOnOld bool
	}{
		{name: "protected, default waits and fails", outcome: deployer.RolledBack, planSays: "scale_in_protected_instances unset: Auto Scaling's default, Wait", keptOnOld: true},
		{name: "protected, released while waiting", release: true, outcome: deployer.Succeeded, planSays: "the refresh waits up to 1h0m0s"},
		{name: "protected, ignore", settings: deployer.RollingSettings{ScaleInProtectedInstances: "Ignore"}, outcome: deployer.Succeeded, planSays: "on the old image; the health gate leaves them out", keptOnOld: true},
		{name: "standby, terminate", standby: true, settings: deployer.RollingSettings{StandbyInstances: "Terminate"}, outcome: deployer.Succeeded, planSays: "terminate 1 instance in Standby"},
		{name: "standby, default waits and fails", standby: true, outcome: deployer.RolledBack, planSays: "standby_instances unset: Auto Scaling's default, Wait", keptOnOld: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			shortRefreshWait(t, f)
			old := f.Image("states-1", deploytest.ImageOptions{})
			f.Stack("states", old, deploytest.StackOptions{Desired: 2})
			newAMI := f.Image("states-2", deploytest.ImageOptions{})
			id := firstGroupInstance(t, f, "states")
			ctx := context.Background()
			if tc.standby {
				f.Setup(func() {
					if _, err := f.Clients.AutoScaling.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String("states"), InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
						t.Fatal(err)
					}
				})
			} else {
				setProtection(t, f, "states", id, true)
			}
			r, _, errs := tc.settings.Rolling()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			r.MinHealthyPercentage = 50
			d := newDeployer(f, "states", r, nil)

			pl, err := d.Plan(ctx, newAMI)
			if err != nil {
				t.Fatal(err)
			}
			got := pl.States.Protected
			if tc.standby {
				got = pl.States.Standby
			}
			if len(got) != 1 || got[0] != id {
				t.Errorf("plan counts %+v, want %s", pl.States, id)
			}
			var changes []string
			for _, c := range pl.Changes {
				changes = append(changes, c.Action+" "+c.Detail)
			}
			if all := strings.Join(changes, "\n"); !strings.Contains(all, tc.planSays) {
				t.Errorf("plan lacks %q:\n%s", tc.planSays, all)
			}
			st, err := d.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(st.States) != fmt.Sprint(pl.States) {
				t.Errorf("status counts %+v, plan %+v", st.States, pl.States)
			}

			want := "the scale-in protection of " + id + " to be removed"
			if tc.standby {
				want = id + " to leave Standby"
			}
			ev := &progressSaying{want: want}
			if tc.release {
				ev.once = func() { setProtection(t, f, "states", id, false) }
			}
			d.Events = ev.add
			res, err := d.Run(ctx, newAMI)
			if deployer.OutcomeOf(err) != tc.outcome {
				t.Fatalf("outcome %v, want %v: %v\n%s", deployer.OutcomeOf(err), tc.outcome, err, ev.messages())
			}
			waits := ev.seen()
			defaults := tc.settings.ScaleInProtectedInstances == "" && tc.settings.StandbyInstances == ""
			switch {
			case defaults && tc.release && len(waits) == 0:
				t.Errorf("the deploy never said that the refresh waits for %s", id)
			case defaults && !tc.release && len(waits) < 2:
				t.Errorf("the deploy said %d times that the refresh waits for %s, want every pass:\n%s", len(waits), id, strings.Join(waits, "\n"))
			case !defaults && len(waits) > 0:
				t.Errorf("the deploy said it waits though it does not: %s", waits[0])
			}
			if tc.outcome == deployer.RolledBack && !strings.Contains(err.Error(), "waited 300 seconds for") {
				t.Errorf("the failure does not say what the refresh waited for: %v", err)
			}
			amis := f.InstanceAMIs("states")
			for inst, ami := range amis {
				wantAMI := newAMI
				if tc.outcome == deployer.RolledBack || inst == id && tc.keptOnOld {
					wantAMI = old
				}
				if ami != wantAMI {
					t.Errorf("%s runs %s, want %s (%v)", inst, ami, wantAMI, amis)
				}
			}
			_, there := amis[id]
			if tc.keptOnOld != there && !tc.release {
				t.Errorf("%s still in the group: %v, want %v", id, there, tc.keptOnOld)
			}
			if tc.name == "protected, ignore" && (res == nil || !strings.Contains(res.Message, id+" on "+old+" (protected from scale in, kept by scale_in_protected_instances = Ignore)")) {
				t.Errorf("result does not name the instance left on the old image: %+v", res)
			}
		})
	}
}

// The group's instance maintenance policy governs a refresh whose
// percentages phoenix was not given: phoenix does not send them, the plan
// says where they come from, and a setting that would be more than 100
// apart from the policy's other percentage is refused before any change.
func TestMaintenancePolicyGoverns(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("maint-1", deploytest.ImageOptions{})
	f.Stack("maint", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("maint-2", deploytest.ImageOptions{})
	ctx := context.Background()
	if _, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("maint"),
		InstanceMaintenancePolicy: &astypes.InstanceMaintenancePolicy{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(200)}}); err != nil {
		t.Fatal(err)
	}

	// min_healthy_percentage 50 with the policy's max 200: refused.
	bad := defaultRolling()
	bad.MinHealthyPercentage = 50
	f.SB.ResetCalls()
	_, err := newDeployer(f, "maint", bad, nil).Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "max healthy 200% (the group's instance maintenance policy) and min healthy 50% (min_healthy_percentage)") {
		t.Errorf("outcome %v: %v", deployer.OutcomeOf(err), err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("a refused deploy made %d mutating calls: %v", n, f.SB.Calls())
	}

	d := newDeployer(f, "maint", defaultRolling(), nil)
	pl, err := d.Plan(ctx, newAMI)
	if err != nil {
		t.Fatal(err)
	}
	want := "min healthy 100% (the group's instance maintenance policy), max healthy 200% (the group's instance maintenance policy)"
	found := false
	for _, c := range pl.Changes {
		found = found || strings.Contains(c.Detail, want)
	}
	if !found {
		t.Errorf("plan does not say %q: %+v", want, pl.Changes)
	}
	var ev events
	d.Events = ev.add
	res, err := d.Run(ctx, newAMI)
	if err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("maint"), InstanceRefreshIds: []string{res.Refresh}})
	if err != nil || len(out.InstanceRefreshes) != 1 {
		t.Fatalf("%v %+v", err, out)
	}
	if p := out.InstanceRefreshes[0].Preferences; aws.ToInt32(p.MinHealthyPercentage) != 100 || aws.ToInt32(p.MaxHealthyPercentage) != 200 {
		t.Errorf("the refresh ran with %d/%d, want the policy's 100/200", aws.ToInt32(p.MinHealthyPercentage), aws.ToInt32(p.MaxHealthyPercentage))
	}
	checkAMIs(t, f, "maint", newAMI)
}

// Blue-green with a protected instance in the live colour: the deploy
// switches, scales the old colour to 0 and says that the protected
// instance stays; status shows it; the next deploy is refused before any
// change, naming the fix; once the protection is removed, Auto Scaling
// terminates it.
func TestBlueGreenWithProtectedInstance(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	ctx := context.Background()
	id := firstGroupInstance(t, f, bg.Blue)
	setProtection(t, f, bg.Blue, id, true)
	pl, err := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil).Plan(ctx, newAMI)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range pl.Changes {
		found = found || c.Action == "keep" && strings.Contains(c.Detail, "1 instance protected from scale in ("+id+") in blue ("+bg.Blue+") after its scale to 0")
	}
	if !found || len(pl.States.Protected) != 1 {
		t.Errorf("plan does not say blue keeps %s: %+v %+v", id, pl.States, pl.Changes)
	}
	var ev events
	res, err := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev).Run(ctx, newAMI)
	if err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	if !strings.Contains(res.Message, "keeps 1 instance protected from scale in ("+id+")") {
		t.Errorf("the result does not say the old colour keeps %s: %s", id, res.Message)
	}
	f.WaitFor("blue down to its protected instance", 20*time.Second, func() (bool, string) {
		amis := f.InstanceAMIs(bg.Blue)
		return len(amis) == 1 && amis[id] == old, fmt.Sprint(amis)
	})
	st, err := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.States.Protected) != 1 || st.States.Protected[0] != id {
		t.Errorf("status counts %+v, want %s protected", st.States, id)
	}

	again := f.Image("web-3", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	_, err = newBlueGreen(f, bg, &deployer.BlueGreen{}, nil).Run(ctx, again)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "aws autoscaling set-instance-protection --auto-scaling-group-name "+bg.Blue+" --no-protected-from-scale-in --instance-ids "+id) {
		t.Errorf("outcome %v: %v", deployer.OutcomeOf(err), err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("a refused deploy made %d mutating calls: %v", n, f.SB.Calls())
	}
	setProtection(t, f, bg.Blue, id, false)
	f.WaitFor("blue empty", 20*time.Second, func() (bool, string) {
		amis := f.InstanceAMIs(bg.Blue)
		return len(amis) == 0, fmt.Sprint(amis)
	})
	if g := readColour(t, f, bg.Green); g.amis[newAMI] != 2 {
		t.Errorf("green %+v, want 2 instances on %s", g, newAMI)
	}
}

// hookAgent completes the launch lifecycle action of every instance of
// groups in Pending:Wait, as a user's bootstrap script would, until the
// test ends. It returns the number of actions it completed so far.
func hookAgent(t *testing.T, f *deploytest.Fixture, hook string, groups ...string) func() int {
	var mu sync.Mutex
	completed := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, name := range groups {
				out, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
				if err != nil || len(out.AutoScalingGroups) == 0 {
					continue
				}
				for _, in := range out.AutoScalingGroups[0].Instances {
					if in.LifecycleState == astypes.LifecycleStatePendingWait {
						if _, err := f.Clients.AutoScaling.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String(name),
							LifecycleHookName: aws.String(hook), InstanceId: in.InstanceId, LifecycleActionResult: aws.String("CONTINUE")}); err == nil {
							mu.Lock()
							completed[aws.ToString(in.InstanceId)] = true
							mu.Unlock()
						}
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(completed)
	}
}

func putHook(t *testing.T, f *deploytest.Fixture, group, name, transition string, heartbeat int32, result string) {
	t.Helper()
	f.Setup(func() {
		if _, err := f.Clients.AutoScaling.PutLifecycleHook(context.Background(), &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String(group), LifecycleHookName: aws.String(name),
			LifecycleTransition: aws.String(transition), HeartbeatTimeout: aws.Int32(heartbeat), DefaultResult: aws.String(result)}); err != nil {
			t.Fatal(err)
		}
	})
}

// A group with a launching hook (completed by the instance's bootstrap,
// here an agent) and a terminating hook (left to time out with
// CONTINUE): status shows an instance waiting on the hook and for how
// long, and a rolling deploy goes through, saying when hooks hold
// instances.
func TestRollingDeployWithLifecycleHooks(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("hooks-1", deploytest.ImageOptions{})
	st := f.Stack("hooks", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("hooks-2", deploytest.ImageOptions{})
	ctx := context.Background()
	putHook(t, f, "hooks", "boot", "autoscaling:EC2_INSTANCE_LAUNCHING", 600, "ABANDON")
	putHook(t, f, "hooks", "drain", "autoscaling:EC2_INSTANCE_TERMINATING", 30, "CONTINUE")
	if _, err := f.Clients.AutoScaling.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hooks"), DesiredCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	var waiting string
	f.WaitFor("an instance in Pending:Wait", 20*time.Second, func() (bool, string) {
		for _, in := range f.Group("hooks").Instances {
			if in.LifecycleState == astypes.LifecycleStatePendingWait {
				waiting = aws.ToString(in.InstanceId)
			}
		}
		return waiting != "", ""
	})
	time.Sleep(200 * time.Millisecond)
	r := defaultRolling()
	r.MinHealthyPercentage = 50
	d := newDeployer(f, "hooks", r, nil)
	s, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.States.Hooks) != 1 || s.States.Hooks[0].Instance != waiting || s.States.Hooks[0].State != "Pending:Wait" || s.States.Hooks[0].Waited <= 0 ||
		!strings.Contains(s.States.Hooks[0].String(), "hook boot (heartbeat timeout 10m0s, default result ABANDON)") {
		t.Errorf("status shows %+v, want %s in Pending:Wait on hook boot", s.States, waiting)
	}

	completed := hookAgent(t, f, "boot", "hooks")
	f.WaitHealthy(st, 3)
	ev := &progressSaying{want: "lifecycle hooks hold "}
	d.Events = ev.add
	if _, err := d.Run(ctx, newAMI); err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	checkAMIs(t, f, "hooks", newAMI)
	if n := completed(); n != 4 {
		t.Errorf("the hook held %d instances, want 4: the one scaled out and 3 replacements", n)
	}
	if len(ev.seen()) == 0 {
		t.Errorf("the deploy never said that lifecycle hooks hold instances")
	}
}

// Blue-green to a colour with a launching hook: the new colour's
// instances wait in Pending:Wait until the hook is completed, then the
// switch goes through as usual.
func TestBlueGreenWithLifecycleHook(t *testing.T) {
	t.Parallel()
	f, bg, _, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	putHook(t, f, bg.Green, "boot", "autoscaling:EC2_INSTANCE_LAUNCHING", 600, "ABANDON")
	completed := hookAgent(t, f, "boot", bg.Green)
	var ev events
	if _, err := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev).Run(context.Background(), newAMI); err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	if g := readColour(t, f, bg.Green); g.amis[newAMI] != 2 {
		t.Errorf("green %+v, want 2 instances on %s", g, newAMI)
	}
	if n := completed(); n != 2 {
		t.Errorf("the hook held %d of green's instances, want 2", n)
	}
}

func putWarmPool(t *testing.T, f *deploytest.Fixture, group string, prepared int32) {
	t.Helper()
	f.Setup(func() {
		if _, err := f.Clients.AutoScaling.PutWarmPool(context.Background(), &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String(group), MaxGroupPreparedCapacity: aws.Int32(prepared)}); err != nil {
			t.Fatal(err)
		}
	})
}

// warmAMIs waits until group's warm pool holds n stopped instances and
// returns the AMI each runs.
func warmAMIs(t *testing.T, f *deploytest.Fixture, group string, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	f.WaitFor(fmt.Sprintf("%d warmed instances in %s", n, group), 30*time.Second, func() (bool, string) {
		out, err := f.Clients.AutoScaling.DescribeWarmPool(ctx, &autoscaling.DescribeWarmPoolInput{AutoScalingGroupName: aws.String(group)})
		if err != nil {
			return false, err.Error()
		}
		ids = ids[:0]
		var states []string
		for _, in := range out.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
			states = append(states, string(in.LifecycleState))
		}
		return len(ids) == n && strings.Count(strings.Join(states, ","), "Warmed:Stopped") == n, strings.Join(states, ",")
	})
	out, err := f.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	amis := map[string]string{}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			amis[aws.ToString(in.InstanceId)] = aws.ToString(in.ImageId)
		}
	}
	return amis
}

// A rolling deploy to a group with a warm pool: the refresh replaces the
// warm pool's instances too, so that a later scale-out takes instances on
// the new image; status shows the pool.
func TestRollingDeployWithWarmPool(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("warm-1", deploytest.ImageOptions{})
	f.Stack("warm", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("warm-2", deploytest.ImageOptions{})
	putWarmPool(t, f, "warm", 4)
	for id, ami := range warmAMIs(t, f, "warm", 2) {
		if ami != old {
			t.Fatalf("warm %s runs %s before the deploy", id, ami)
		}
	}
	r := defaultRolling()
	r.MinHealthyPercentage = 50
	var ev events
	d := newDeployer(f, "warm", r, &ev)
	if _, err := d.Run(context.Background(), newAMI); err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	checkAMIs(t, f, "warm", newAMI)
	for id, ami := range warmAMIs(t, f, "warm", 2) {
		if ami != newAMI {
			t.Errorf("warm %s runs %s after the deploy, want %s", id, ami, newAMI)
		}
	}
	st, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.WarmPools) != 1 || st.WarmPools[0].String() != "warm (Stopped): 2 Warmed:Stopped; AMIs: "+newAMI+" (2)" {
		t.Errorf("status warm pools %+v", st.WarmPools)
	}
}

// Blue-green with warm pools on both colours: the idle colour's pool was
// warmed on the old image, and a scale-out takes warm instances first.
// The deploy refreshes that pool to the new version before the colour
// scales up, so the new colour serves only the new image, and the plan
// says so.
func TestBlueGreenWithWarmPools(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	putWarmPool(t, f, bg.Blue, 4)
	putWarmPool(t, f, bg.Green, 3)
	for id, ami := range warmAMIs(t, f, bg.Green, 3) {
		if ami != old {
			t.Fatalf("green's warm %s runs %s before the deploy", id, ami)
		}
	}
	ctx := context.Background()
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	pl, err := d.Plan(ctx, newAMI)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range pl.Changes {
		found = found || c.Action == "refresh" && strings.Contains(c.Detail, "3 of its instances run "+old+" (3)")
	}
	if !found {
		t.Errorf("plan does not refresh green's warm pool: %+v", pl.Changes)
	}
	if _, err := d.Run(ctx, newAMI); err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	if g := readColour(t, f, bg.Green); len(g.amis) != 1 || g.amis[newAMI] != 2 {
		t.Errorf("green %+v, want 2 instances on %s only", g, newAMI)
	}
	// Green's pool: its prepared capacity 3 less 2 in service.
	for id, ami := range warmAMIs(t, f, bg.Green, 1) {
		if ami != newAMI {
			t.Errorf("green's warm %s runs %s after the deploy, want %s", id, ami, newAMI)
		}
	}
}
