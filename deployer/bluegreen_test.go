package deployer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

func newBlueGreen(f *deploytest.Fixture, bg *deploytest.BlueGreen, b *deployer.BlueGreen, ev *events) *deployer.Deployer {
	d := &deployer.Deployer{Clients: f.Clients, Target: deployer.Target{Name: "web", Region: f.Region, Group: bg.Blue, PeerGroup: bg.Green, ListenerARN: bg.Listener, RuleARN: bg.Rule},
		Strategy: b, PollInterval: 50 * time.Millisecond, HealthTimeout: 20 * time.Second, Owner: "test@phoenix"}
	if ev != nil {
		d.Events = ev.add
	}
	return d
}

// newBlueGreenStack is a blue-green stack in a sandbox of its own with blue
// live on image web-1 (old), and image web-2 (newAMI) made with img.
func newBlueGreenStack(t *testing.T, o deploytest.BlueGreenOptions, img deploytest.ImageOptions) (f *deploytest.Fixture, bg *deploytest.BlueGreen, old, newAMI string) {
	t.Helper()
	f = deploytest.New(t, nil, region)
	old = f.Image("web-1", deploytest.ImageOptions{})
	bg = f.BlueGreen("web", old, o)
	newAMI = f.Image("web-2", img)
	return f, bg, old, newAMI
}

// colourState is what a user checks of a colour after a deploy.
type colourState struct {
	desired, min int
	pinned       bool
	amis         map[string]int
}

func readColour(t *testing.T, f *deploytest.Fixture, group string) colourState {
	t.Helper()
	g := f.Group(group)
	cs := colourState{desired: int(aws.ToInt32(g.DesiredCapacity)), min: int(aws.ToInt32(g.MinSize)), amis: map[string]int{}}
	for _, tag := range g.Tags {
		if aws.ToString(tag.Key) == deployer.PinTag {
			cs.pinned = true
		}
	}
	for _, ami := range f.InstanceAMIs(group) {
		cs.amis[ami]++
	}
	return cs
}

// requireOnBlue waits until green is empty, scaled to zero and unpinned,
// and checks that blue still runs old on n instances, unpinned.
func requireOnBlue(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen, old string, n int) {
	t.Helper()
	f.WaitFor("green scaled to zero", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return g.desired == 0 && g.min == 0 && !g.pinned && len(g.amis) == 0, fmt.Sprintf("%+v", g)
	})
	if b := readColour(t, f, bg.Blue); b.pinned || b.desired != n || b.amis[old] != n {
		t.Errorf("blue %+v, want %d instances on %s, unpinned", b, n, old)
	}
}

// healthyOn counts tg's healthy targets that run ami.
func healthyOn(t *testing.T, f *deploytest.Fixture, tg, ami string) (healthy, total int) {
	t.Helper()
	ctx := context.Background()
	out, err := f.Clients.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range out.TargetHealthDescriptions {
		ids = append(ids, aws.ToString(d.Target.Id))
	}
	total = len(ids)
	if total == 0 {
		return 0, 0
	}
	in, err := f.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	image := map[string]string{}
	for _, r := range in.Reservations {
		for _, i := range r.Instances {
			image[aws.ToString(i.InstanceId)] = aws.ToString(i.ImageId)
		}
	}
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy && image[aws.ToString(d.Target.Id)] == ami {
			healthy++
		}
	}
	return healthy, total
}

func TestBlueGreenSwitchesInStepsAndBakes(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 3}, deploytest.ImageOptions{Encrypted: true})

	// At every switch the test reads what a user would: the weights and
	// the green target group's health at that moment.
	type seen struct {
		weights        map[string]int32
		healthy, total int
		at             time.Time
	}
	var mu sync.Mutex
	var switches []seen
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{10, 50, 100}, BakeTime: 400 * time.Millisecond}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && e.Step == "switch" {
			at := e.Time
			h, n := healthyOn(t, f, bg.GreenTG, newAMI)
			mu.Lock()
			switches = append(switches, seen{f.Weights(bg), h, n, at})
			mu.Unlock()
		}
	}
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Previous != old || res.Version != 2 {
		t.Errorf("result %+v", res)
	}
	if len(switches) != 3 {
		t.Fatalf("switches %+v\n%s", switches, ev.messages())
	}
	for i, want := range []int32{10, 50, 100} {
		s := switches[i]
		if s.weights[bg.GreenTG] != want || s.weights[bg.BlueTG] != 100-want {
			t.Errorf("switch %d: weights %v, want green %d", i, s.weights, want)
		}
		if s.healthy != 3 || s.total != 3 {
			t.Errorf("switch %d to %d%%: green had %d/%d targets healthy on %s", i, want, s.healthy, s.total, newAMI)
		}
		if i > 0 && s.at.Sub(switches[i-1].at) < 390*time.Millisecond {
			t.Errorf("switch %d came %s after the previous one, before the bake time", i, s.at.Sub(switches[i-1].at))
		}
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights after the deploy %v", w)
	}
	if h, n := healthyOn(t, f, bg.GreenTG, newAMI); h != 3 || n != 3 {
		t.Errorf("green: %d/%d healthy on the new AMI", h, n)
	}
	green := readColour(t, f, bg.Green)
	if green.desired != 3 || green.min != 3 || green.pinned || green.amis[newAMI] != 3 {
		t.Errorf("green after the deploy: %+v (want 3 on %s, minimum 3 as blue had, no pin)", green, newAMI)
	}
	f.WaitFor("blue scaled to zero", 20*time.Second, func() (bool, string) {
		b := readColour(t, f, bg.Blue)
		return b.desired == 0 && b.min == 0 && !b.pinned && len(b.amis) == 0, ""
	})
	// Green runs a new version of the shared template, made from blue's.
	v, err := f.Clients.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(bg.Template), Versions: []string{"2"}})
	if err != nil || len(v.LaunchTemplateVersions) != 1 {
		t.Fatal(v, err)
	}
	data := v.LaunchTemplateVersions[0].LaunchTemplateData
	if aws.ToString(data.ImageId) != newAMI || data.MetadataOptions == nil || data.MetadataOptions.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired || data.KeyName != nil {
		t.Errorf("version 2: %+v", data)
	}
	msgs := ev.messages()
	for _, want := range []string{"pinned green (web-green)", "scaled green (web-green) to 3", "moved 10% of the traffic to green (web-green)", "unpinned green (web-green): minimum 3", "scaling blue (web-blue) to 0"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("events lack %q:\n%s", want, msgs)
		}
	}
}

func TestBlueGreenFailingImageNeverGetsTraffic(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2, Rule: true})
	bad := f.Image("web-bad", deploytest.ImageOptions{Health: "fail"})
	before := f.InstanceAMIs(bg.Blue)

	var mu sync.Mutex
	var weightCalls []string
	f.SB.OnCall(func(service, action string) {
		if action == "ModifyRule" || action == "ModifyListener" {
			mu.Lock()
			weightCalls = append(weightCalls, action)
			mu.Unlock()
		}
	})
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}}, &ev)
	d.HealthTimeout = 8 * time.Second
	res, err := d.Run(context.Background(), bad)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	if !strings.Contains(res.Message, "green (web-green): a new instance on "+bad+" failed its load balancer health checks") || !strings.Contains(res.Message, "Target.ResponseCodeMismatch") {
		t.Errorf("message: %s", res.Message)
	}
	mu.Lock()
	if len(weightCalls) != 0 {
		t.Errorf("the weights were changed (%v) although green never was healthy", weightCalls)
	}
	mu.Unlock()
	if w := f.Weights(bg); w[bg.BlueTG] != 1 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v: the rule was touched", w)
	}
	after := f.InstanceAMIs(bg.Blue)
	if len(after) != len(before) {
		t.Errorf("blue instances changed: %v -> %v", before, after)
	}
	for id, ami := range before {
		if after[id] != ami {
			t.Errorf("blue instance %s: %s -> %s", id, ami, after[id])
		}
	}
	requireOnBlue(t, f, bg, old, 2)
}

func TestBlueGreenFailureDuringStepReturnsTrafficAtOnce(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})

	// The new image starts failing its health checks once it has 10% of
	// the traffic, as a bad release found only under load would.
	var ev events
	var order []string
	var mu sync.Mutex
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{10, 100}, BakeTime: time.Minute}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind != deployer.EventStep {
			return
		}
		mu.Lock()
		order = append(order, e.Step+": "+e.Message)
		mu.Unlock()
		if e.Step == "switch" {
			_, err := f.Clients.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{newAMI}, Tags: []ec2types.Tag{{Key: aws.String(sandbox.HealthTag), Value: aws.String("fail")}}})
			if err != nil {
				t.Error(err)
			}
		}
	}
	res, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	if !strings.Contains(res.Message, "green (web-green) became unhealthy with 10% of the traffic") {
		t.Errorf("message: %s", res.Message)
	}
	// The first thing the rollback does is move all traffic back.
	var rollback []string
	for _, o := range order {
		if strings.HasPrefix(o, "rollback: ") {
			rollback = append(rollback, o)
		}
	}
	if len(rollback) == 0 || rollback[0] != "rollback: moved all traffic back to blue (web-blue) ("+old+")" {
		t.Errorf("rollback steps %q", rollback)
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v", w)
	}
	requireOnBlue(t, f, bg, old, 2)
}

func TestBlueGreenInterruptedReturnsTrafficAndUnpins(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2, Rule: true}, deploytest.ImageOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: time.Minute}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && e.Step == "switch" {
			cancel() // Ctrl-C while half the traffic is on green
		}
	}
	res, err := d.Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack || !res.Interrupted || !errors.Is(err, context.Canceled) {
		t.Fatalf("outcome %v interrupted %v: %v", deployer.OutcomeOf(err), res.Interrupted, err)
	}
	if !strings.Contains(err.Error(), "moved all traffic back to blue (web-blue)") {
		t.Errorf("message: %v", err)
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v: half-switched", w)
	}
	for _, g := range []string{bg.Blue, bg.Green} {
		if c := readColour(t, f, g); c.pinned {
			t.Errorf("%s still pinned", g)
		}
	}
	requireOnBlue(t, f, bg, old, 2)
	// The same deploy again finishes the job.
	d2 := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: 100 * time.Millisecond}, &ev)
	if _, err := d2.Run(context.Background(), newAMI); err != nil {
		t.Fatalf("second deploy: %v\n%s", err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights %v", w)
	}
	if g := readColour(t, f, bg.Green); g.pinned || g.amis[newAMI] != 2 {
		t.Errorf("green %+v", g)
	}
}

func TestBlueGreenRedeployOfLiveAMIChangesNothing(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2})
	f.SB.ResetCalls()
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil)
	d.Owner = ""
	res, err := d.Run(context.Background(), old)
	if err != nil || !strings.Contains(res.Message, "the live colour blue (web-blue) already runs "+old) {
		t.Fatalf("%+v %v", res, err)
	}
	// Only the lock is taken and given back (its parameter per colour and
	// the label tag), and the deploy is recorded in the history.
	calls := f.SB.Calls()
	if n := sandbox.MutatingCalls(calls); n != deploytest.LockCalls(calls) || calls["ssm"]["PutParameter"] != 5 || calls["autoscaling"]["CreateOrUpdateTags"] != 1 || calls["autoscaling"]["DeleteTags"] != 1 {
		t.Errorf("mutating calls %d: %v", n, calls)
	}
}

func TestBlueGreenRefusals(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 1}, deploytest.ImageOptions{})
	ctx := context.Background()
	cases := []struct {
		name   string
		target func(*deployer.Target)
		setup  func() func()
		want   string
	}{
		{"no peer", func(t *deployer.Target) { t.PeerGroup = "" }, nil, "blue-green needs the target's peer_asg"},
		{"same group", func(t *deployer.Target) { t.PeerGroup = t.Group }, nil, `peer_asg "web-blue" is the target's asg`},
		{"missing peer", func(t *deployer.Target) { t.PeerGroup = "web-purple" }, nil, `auto scaling group "web-purple" (the target's peer_asg) not found in eu-west-1`},
		{"missing listener", func(t *deployer.Target) {
			t.ListenerARN = strings.Replace(t.ListenerARN, "listener/app/web/", "listener/app/web/0", 1)
		}, nil, "not found in eu-west-1"},
		{"both weights zero", nil, func() func() {
			setWeights(t, f, bg, 0, 0)
			return func() { setWeights(t, f, bg, 1, 0) }
		}, "sends no traffic to either colour"},
		{"split without pin", nil, func() func() {
			setWeights(t, f, bg, 50, 50)
			return func() { setWeights(t, f, bg, 1, 0) }
		}, "splits traffic between blue (50%) and green (50%)"},
	}
	for _, tc := range cases {
		var undo func()
		if tc.setup != nil {
			undo = tc.setup()
		}
		d := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil)
		if tc.target != nil {
			tc.target(&d.Target)
		}
		f.SB.ResetCalls()
		_, err := d.Run(ctx, newAMI)
		if deployer.OutcomeOf(err) != deployer.Refused || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want refused with %q", tc.name, err, tc.want)
		}
		if n := f.Mutating(); n != 0 {
			t.Errorf("%s: %d mutating calls", tc.name, n)
		}
		if undo != nil {
			undo()
		}
	}
	bad := []struct {
		b    deployer.BlueGreen
		want string
	}{
		{deployer.BlueGreen{Steps: []int{10, 50}}, "steps [10 50] must end with 100"},
		{deployer.BlueGreen{Steps: []int{50, 10, 100}}, "steps [50 10 100] must be ascending"},
		{deployer.BlueGreen{Steps: []int{0, 100}}, "steps: 0 must be between 1 and 100"},
		{deployer.BlueGreen{BakeTime: 49 * time.Hour}, "bake_time 49h0m0s must be between 0s and 48h"},
		{deployer.BlueGreen{KeepOldFor: -time.Second}, "keep_old_for -1s must be between 0s and 168h"},
	}
	for _, tc := range bad {
		d := newBlueGreen(f, bg, &tc.b, nil)
		f.SB.ResetCalls()
		_, err := d.Run(ctx, newAMI)
		if deployer.OutcomeOf(err) != deployer.Refused || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
		if n := f.Mutating(); n != 0 {
			t.Errorf("%+v: %d mutating calls", tc.b, n)
		}
	}
	// Nothing was changed: blue serves as before, green is empty.
	requireOnBlue(t, f, bg, old, 1)
}

// setWeights sets the listener's forward weights directly, as a person
// in the console would.
func setWeights(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen, blue, green int32) {
	t.Helper()
	_, err := f.Clients.ELB.ModifyListener(context.Background(), &elb.ModifyListenerInput{ListenerArn: aws.String(bg.Listener), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
		ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(blue)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(green)}}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

func scheduledScaleIns(t *testing.T, f *deploytest.Fixture, group string) []time.Time {
	t.Helper()
	out, err := f.Clients.AutoScaling.DescribeScheduledActions(context.Background(), &autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for _, a := range out.ScheduledUpdateGroupActions {
		if aws.ToString(a.ScheduledActionName) == deployer.ScaleInAction && aws.ToInt32(a.DesiredCapacity) == 0 && aws.ToInt32(a.MinSize) == 0 {
			at = append(at, aws.ToTime(a.StartTime))
		}
	}
	return at
}

func TestBlueGreenKeepsOldColourWarmAndRollsBackInOneCall(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{KeepOldFor: time.Hour}, &ev)
	start := time.Now()
	if _, err := d.Run(context.Background(), newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	blue := readColour(t, f, bg.Blue)
	if blue.desired != 2 || blue.amis[old] != 2 || blue.pinned {
		t.Errorf("blue is not kept warm: %+v", blue)
	}
	at := scheduledScaleIns(t, f, bg.Blue)
	if len(at) != 1 || at[0].Before(start.Add(time.Hour-time.Minute)) || at[0].After(time.Now().Add(time.Hour+time.Minute)) {
		t.Errorf("scheduled scale-in of blue at %v, want one an hour from now", at)
	}
	if len(scheduledScaleIns(t, f, bg.Green)) != 0 {
		t.Error("green, now live, has a scheduled scale-in")
	}

	// Rollback: the traffic goes back to the warm blue in one call.
	var weightCalls int
	var mu sync.Mutex
	f.SB.OnCall(func(service, action string) {
		if action == "ModifyListener" || action == "ModifyRule" {
			mu.Lock()
			weightCalls++
			mu.Unlock()
		}
	})
	res, err := d.Rollback(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("rollback: %+v %v\n%s", res, err, ev.messages())
	}
	mu.Lock()
	if weightCalls != 1 {
		t.Errorf("%d calls changed the weights, want 1", weightCalls)
	}
	mu.Unlock()
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v", w)
	}
	if len(scheduledScaleIns(t, f, bg.Blue)) != 0 {
		t.Error("blue, live again, still has its scheduled scale-in")
	}
	if b := readColour(t, f, bg.Blue); b.amis[old] != 2 || b.min != 2 {
		t.Errorf("blue after the rollback: %+v", b)
	}
	f.WaitFor("green scaled to zero", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return g.desired == 0 && g.min == 0 && !g.pinned && len(g.amis) == 0, ""
	})
}

func TestBlueGreenWarmColourScalesInWhenKeepOldForEnds(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	// 5 minutes of AWS time: 3 s at the sandbox's test time scale.
	d := newBlueGreen(f, bg, &deployer.BlueGreen{KeepOldFor: 5 * time.Minute}, nil)
	// The rollback at the end keeps green warm in turn: its scale-in
	// action is still pending when the test ends, by design.
	f.Allow(func(r sandbox.Resource) bool {
		return r.Type == "scheduled-action" && r.ID == bg.Green+"/"+deployer.ScaleInAction
	})
	if _, err := d.Run(context.Background(), newAMI); err != nil {
		t.Fatal(err)
	}
	if b := readColour(t, f, bg.Blue); b.desired != 2 {
		t.Fatalf("blue %+v, want kept warm", b)
	}
	f.WaitFor("blue scaled in by its scheduled action", 30*time.Second, func() (bool, string) {
		b := readColour(t, f, bg.Blue)
		return b.desired == 0 && b.min == 0 && len(b.amis) == 0, fmt.Sprintf("%+v", b)
	})
	if g := readColour(t, f, bg.Green); g.amis[newAMI] != 2 || g.min != 2 {
		t.Errorf("green %+v", g)
	}
	// With blue gone, a rollback deploys the previous AMI to blue.
	var ev events
	d.Events = ev.add
	res, err := d.Rollback(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("rollback: %+v %v\n%s", res, err, ev.messages())
	}
	if !strings.Contains(ev.messages(), "no warm colour runs "+old+": deploying it to blue (web-blue) blue-green") {
		t.Errorf("events:\n%s", ev.messages())
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights %v", w)
	}
	if b := readColour(t, f, bg.Blue); b.amis[old] != 2 || b.pinned {
		t.Errorf("blue %+v", b)
	}
}

func TestBlueGreenWithATemplatePerColour(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2, SeparateTemplates: true}, deploytest.ImageOptions{})
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	// Green's own template got the new version.
	if res.Template != bg.GreenTemplate || res.Version != 2 {
		t.Errorf("result %+v, want green's template %s version 2", res, bg.GreenTemplate)
	}
	f.WaitFor("blue scaled to zero", 20*time.Second, func() (bool, string) {
		return readColour(t, f, bg.Blue).desired == 0 && len(f.InstanceAMIs(bg.Blue)) == 0, ""
	})
	// The rollback finds the AMI green's version replaced, although that
	// version number is of blue's template.
	res, err = d.Rollback(context.Background())
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.messages())
	}
	if b := readColour(t, f, bg.Blue); b.amis[old] != 2 || res.Template != bg.Template {
		t.Errorf("blue %+v, result %+v", b, res)
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 {
		t.Errorf("weights %v", w)
	}
}
