package sandbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

const asgRegion = "eu-west-1"

type asgEnv struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	c   *autoscaling.Client
	ctx context.Context
}

func newASGEnv(t *testing.T) *asgEnv {
	sb := sandboxtest.Start(t)
	return &asgEnv{t: t, sb: sb, c: autoscaling.NewFromConfig(sandboxtest.Config(t, sb, asgRegion)), ctx: context.Background()}
}

func noRetry(o *autoscaling.Options) { o.Retryer = aws.NopRetryer{} }

func (e *asgEnv) createGroup(name, lt, version string, desired int32, mut func(*autoscaling.CreateAutoScalingGroupInput)) {
	e.t.Helper()
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(version)},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(desired),
		VPCZoneIdentifier: aws.String(strings.Join(e.sb.FixtureDefaultSubnets(asgRegion)[:2], ",")),
	}
	if mut != nil {
		mut(in)
	}
	if _, err := e.c.CreateAutoScalingGroup(e.ctx, in); err != nil {
		e.t.Fatalf("CreateAutoScalingGroup: %v", err)
	}
}

func (e *asgEnv) group(name string) (types.AutoScalingGroup, bool) {
	e.t.Helper()
	out, err := e.c.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		e.t.Fatalf("DescribeAutoScalingGroups: %v", err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return types.AutoScalingGroup{}, false
	}
	return out.AutoScalingGroups[0], true
}

// poll calls cond until it returns true or the deadline passes.
func poll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func (e *asgEnv) waitGroup(name, what string, cond func(types.AutoScalingGroup) bool) types.AutoScalingGroup {
	e.t.Helper()
	var g types.AutoScalingGroup
	poll(e.t, what, func() (bool, string) {
		g, _ = e.group(name)
		return cond(g), describeInstances(g)
	})
	return g
}

func describeInstances(g types.AutoScalingGroup) string {
	var parts []string
	for _, in := range g.Instances {
		v := ""
		if in.LaunchTemplate != nil {
			v = aws.ToString(in.LaunchTemplate.Version)
		}
		parts = append(parts, fmt.Sprintf("%s:%s/%s/v%s", aws.ToString(in.InstanceId), in.LifecycleState, aws.ToString(in.HealthStatus), v))
	}
	return fmt.Sprintf("desired %d [%s]", aws.ToInt32(g.DesiredCapacity), strings.Join(parts, " "))
}

// healthyOn counts InService, Healthy instances on a version ("" for any)
// and reports whether they are all the group has.
func healthyOn(g types.AutoScalingGroup, version string) (int, bool) {
	n := 0
	for _, in := range g.Instances {
		if in.LifecycleState == types.LifecycleStateInService && aws.ToString(in.HealthStatus) == "Healthy" &&
			(version == "" || aws.ToString(in.LaunchTemplate.Version) == version) {
			n++
		}
	}
	return n, n == len(g.Instances)
}

// inService lists the in-service instance ids.
func inService(g types.AutoScalingGroup) string {
	var ids []string
	for _, in := range g.Instances {
		if in.LifecycleState == types.LifecycleStateInService {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return strings.Join(ids, ",")
}

func settledOn(version string, want int) func(types.AutoScalingGroup) bool {
	return func(g types.AutoScalingGroup) bool {
		n, all := healthyOn(g, version)
		return n == want && all
	}
}

func (e *asgEnv) deleteGroup(name string) {
	e.t.Helper()
	if _, err := e.c.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)}); err != nil {
		e.t.Fatalf("DeleteAutoScalingGroup: %v", err)
	}
	poll(e.t, "group "+name+" deleted", func() (bool, string) {
		g, ok := e.group(name)
		return !ok, aws.ToString(g.Status)
	})
}

func (e *asgEnv) finish() {
	e.t.Helper()
	e.sb.FixtureCleanup(asgRegion)
	poll(e.t, "instances terminated", func() (bool, string) {
		inv := e.sb.Inventory()
		return len(inv) == 0, fmt.Sprint(inv)
	})
	sandboxtest.RequireEmptyInventory(e.t, e.sb)
}

func (e *asgEnv) activities(name string) []types.Activity {
	e.t.Helper()
	out, err := e.c.DescribeScalingActivities(e.ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("DescribeScalingActivities: %v", err)
	}
	return out.Activities
}

func TestASGKeepsCapacityAndScales(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	img := e.sb.FixtureImage(asgRegion, "")
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "web", img)
	e.createGroup("web", lt, "$Latest", 2, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.MinSize, in.MaxSize = aws.Int32(1), aws.Int32(4)
		in.Tags = []types.Tag{{Key: aws.String("Name"), Value: aws.String("web"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("team"), Value: aws.String("a"), PropagateAtLaunch: aws.Bool(false)}}
	})
	g := e.waitGroup("web", "two instances in service", settledOn("1", 2))
	if *g.Instances[0].AvailabilityZone == *g.Instances[1].AvailabilityZone {
		t.Errorf("instances not spread over zones: %s", describeInstances(g))
	}
	if v := aws.ToString(g.LaunchTemplate.Version); v != "$Latest" || aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "web" {
		t.Errorf("group launch template = %+v", g.LaunchTemplate)
	}
	if len(g.AvailabilityZones) != 2 || len(g.Tags) != 2 {
		t.Errorf("zones %v tags %v", g.AvailabilityZones, g.Tags)
	}
	id := aws.ToString(g.Instances[0].InstanceId)
	_, tags := e.sb.FixtureInstance(asgRegion, id)
	if tags["Name"] != "web" || tags["team"] != "" || tags["aws:autoscaling:groupName"] != "web" {
		t.Errorf("instance tags %v", tags)
	}
	acts := e.activities("web")
	if len(acts) != 2 || !strings.HasPrefix(aws.ToString(acts[0].Description), "Launching a new EC2 instance: i-") ||
		acts[0].StatusCode != types.ScalingActivityStatusCodeSuccessful || !strings.Contains(aws.ToString(acts[0].Cause), "a user request created an AutoScalingGroup") {
		t.Errorf("activities %+v", acts)
	}

	// An instance terminated behind the group's back is replaced.
	e.sb.FixtureTerminateInstance(asgRegion, id)
	e.waitGroup("web", "replacement", func(g types.AutoScalingGroup) bool {
		n, all := healthyOn(g, "1")
		for _, in := range g.Instances {
			if aws.ToString(in.InstanceId) == id {
				return false
			}
		}
		return n == 2 && all
	})

	for _, step := range []struct {
		desired int32
	}{{4}, {1}, {3}} {
		if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(step.desired)}); err != nil {
			t.Fatal(err)
		}
		e.waitGroup("web", fmt.Sprintf("%d instances", step.desired), settledOn("1", int(step.desired)))
	}
	inst, err := e.c.DescribeAutoScalingInstances(e.ctx, &autoscaling.DescribeAutoScalingInstancesInput{})
	if err != nil || len(inst.AutoScalingInstances) != 3 || aws.ToString(inst.AutoScalingInstances[0].HealthStatus) != "HEALTHY" {
		t.Fatalf("DescribeAutoScalingInstances: %v %+v", err, inst)
	}

	// Terminate one with decrement, then delete: refused while it has instances.
	victim := aws.ToString(inst.AutoScalingInstances[0].InstanceId)
	ta, err := e.c.TerminateInstanceInAutoScalingGroup(e.ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(true)})
	if err != nil || !strings.Contains(aws.ToString(ta.Activity.Description), victim) {
		t.Fatalf("TerminateInstanceInAutoScalingGroup: %v", err)
	}
	e.waitGroup("web", "two instances", settledOn("1", 2))
	_, err = e.c.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("web")}, noRetry)
	if apiCode(err) != "ResourceInUse" {
		t.Fatalf("delete with instances: %v", err)
	}
	e.deleteGroup("web")
	e.finish()
}

func TestASGErrors(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	img := e.sb.FixtureImage(asgRegion, "")
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "app", img)
	e.createGroup("app", lt, "1", 0, nil)
	if _, err := e.c.SuspendProcesses(e.ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("app"), ScalingProcesses: []string{"InstanceRefresh"}}); err != nil {
		t.Fatal(err)
	}
	g, _ := e.group("app")
	if len(g.SuspendedProcesses) != 1 || !strings.HasPrefix(aws.ToString(g.SuspendedProcesses[0].SuspensionReason), "User suspended at ") {
		t.Fatalf("suspended %+v", g.SuspendedProcesses)
	}
	start := func(prefs *types.RefreshPreferences, desired bool) error {
		in := &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("app"), Preferences: prefs}
		if desired {
			in.DesiredConfiguration = &types.DesiredConfiguration{LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("1")}}
		}
		_, err := e.c.StartInstanceRefresh(e.ctx, in, noRetry)
		return err
	}
	create := func(mut func(*autoscaling.CreateAutoScalingGroupInput)) func() error {
		return func() error {
			in := &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("new"), MinSize: aws.Int32(1), MaxSize: aws.Int32(2),
				LaunchTemplate:    &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("app")},
				AvailabilityZones: []string{asgRegion + "a"}}
			mut(in)
			_, err := e.c.CreateAutoScalingGroup(e.ctx, in, noRetry)
			return err
		}
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate group", create(func(in *autoscaling.CreateAutoScalingGroupInput) { in.AutoScalingGroupName = aws.String("app") }), "AlreadyExists"},
		{"desired above max", create(func(in *autoscaling.CreateAutoScalingGroupInput) { in.DesiredCapacity = aws.Int32(3) }), "ValidationError"},
		{"min above max", create(func(in *autoscaling.CreateAutoScalingGroupInput) { in.MinSize = aws.Int32(3) }), "ValidationError"},
		{"unknown subnet", create(func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.VPCZoneIdentifier = aws.String("subnet-0123456789abcdef0")
		}), "ValidationError"},
		{"unknown launch template", create(func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0")}
		}), "ValidationError"},
		{"unknown version", create(func(in *autoscaling.CreateAutoScalingGroupInput) { in.LaunchTemplate.Version = aws.String("9") }), "ValidationError"},
		{"no zones", create(func(in *autoscaling.CreateAutoScalingGroupInput) { in.AvailabilityZones = nil }), "ValidationError"},
		{"unknown target group", create(func(in *autoscaling.CreateAutoScalingGroupInput) {
			in.TargetGroupARNs = []string{"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/x/0123456789abcdef"}
		}), "ValidationError"},
		{"unknown group", func() error {
			_, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("nope"), DesiredCapacity: aws.Int32(1)}, noRetry)
			return err
		}, "ValidationError"},
		{"desired over max", func() error {
			_, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("app"), DesiredCapacity: aws.Int32(11)}, noRetry)
			return err
		}, "ValidationError"},
		{"bad process", func() error {
			_, err := e.c.ResumeProcesses(e.ctx, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("app"), ScalingProcesses: []string{"Dance"}}, noRetry)
			return err
		}, "ValidationError"},
		{"bad token", func() error {
			_, err := e.c.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{NextToken: aws.String("bogus!")}, noRetry)
			return err
		}, "InvalidNextToken"},
		{"bad filter", func() error {
			_, err := e.c.DescribeTags(e.ctx, &autoscaling.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}}, noRetry)
			return err
		}, "ValidationError"},
		{"cancel without refresh", func() error {
			_, err := e.c.CancelInstanceRefresh(e.ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}, noRetry)
			return err
		}, "ActiveInstanceRefreshNotFound"},
		{"rollback without refresh", func() error {
			_, err := e.c.RollbackInstanceRefresh(e.ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}, noRetry)
			return err
		}, "ActiveInstanceRefreshNotFound"},
		{"auto rollback without desired configuration", func() error {
			return start(&types.RefreshPreferences{AutoRollback: aws.Bool(true)}, false)
		}, "ValidationError"},
		{"max healthy without min", func() error { return start(&types.RefreshPreferences{MaxHealthyPercentage: aws.Int32(150)}, true) }, "ValidationError"},
		{"max healthy over 200", func() error {
			return start(&types.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(201)}, true)
		}, "ValidationError"},
		{"healthy range over 100", func() error {
			return start(&types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), MaxHealthyPercentage: aws.Int32(160)}, true)
		}, "ValidationError"},
		{"checkpoints not ascending", func() error {
			return start(&types.RefreshPreferences{CheckpointPercentages: []int32{50, 20, 100}}, true)
		}, "ValidationError"},
		{"first refresh", func() error { return start(nil, false) }, ""},
		{"second refresh", func() error { return start(nil, true) }, "InstanceRefreshInProgress"},
		{"rollback without desired configuration", func() error {
			_, err := e.c.RollbackInstanceRefresh(e.ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}, noRetry)
			return err
		}, "IrreversibleInstanceRefresh"},
	}
	for _, tc := range cases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	if _, err := e.c.CancelInstanceRefresh(e.ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	poll(t, "refresh cancelled", func() (bool, string) {
		out, err := e.c.DescribeInstanceRefreshes(e.ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("app")})
		if err != nil || len(out.InstanceRefreshes) != 1 {
			return false, fmt.Sprint(err)
		}
		return out.InstanceRefreshes[0].Status == types.InstanceRefreshStatusCancelled, string(out.InstanceRefreshes[0].Status)
	})

	// Tags and filters.
	if _, err := e.c.CreateOrUpdateTags(e.ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []types.Tag{
		{ResourceId: aws.String("app"), ResourceType: aws.String("auto-scaling-group"), Key: aws.String("env"), Value: aws.String("prod")}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter types.Filter
		want   int
	}{
		{types.Filter{Name: aws.String("tag:env"), Values: []string{"prod"}}, 1},
		{types.Filter{Name: aws.String("tag:env"), Values: []string{"dev"}}, 0},
		{types.Filter{Name: aws.String("tag-key"), Values: []string{"env"}}, 1},
		{types.Filter{Name: aws.String("tag-value"), Values: []string{"nope"}}, 0},
	} {
		out, err := e.c.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: []types.Filter{tc.filter}})
		if err != nil || len(out.AutoScalingGroups) != tc.want {
			t.Errorf("filter %s=%v: %v, %d groups", aws.ToString(tc.filter.Name), tc.filter.Values, err, len(out.AutoScalingGroups))
		}
	}
	tags, err := e.c.DescribeTags(e.ctx, &autoscaling.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("key"), Values: []string{"env"}}}})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "prod" {
		t.Fatalf("DescribeTags: %v %+v", err, tags)
	}
	if _, err := e.c.DeleteTags(e.ctx, &autoscaling.DeleteTagsInput{Tags: []types.Tag{{ResourceId: aws.String("app"), ResourceType: aws.String("auto-scaling-group"), Key: aws.String("env")}}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.group("app"); len(g.Tags) != 0 {
		t.Fatalf("tags after delete: %+v", g.Tags)
	}
	e.deleteGroup("app")
	e.finish()
}

// waitTargetsHealthy waits until n targets of tg pass the load balancer's
// health checks, so that a refresh starts from a healthy group.
func waitTargetsHealthy(t *testing.T, e *asgEnv, tg string, n int) {
	t.Helper()
	poll(t, "targets healthy", func() (bool, string) {
		ts := e.sb.FixtureTargets(asgRegion, tg)
		ok := 0
		for _, s := range ts {
			if s == "healthy" {
				ok++
			}
		}
		return ok == n, fmt.Sprint(ts)
	})
}

// elbEnv is a group behind a target group with ELB health checks, whose
// launch template has a healthy version 1 and a version 2 from image2.
func elbEnv(t *testing.T, name, health2 string, desired int32) (*asgEnv, string, string, func()) {
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, name, e.sb.FixtureImage(asgRegion, ""), e.sb.FixtureImage(asgRegion, health2))
	tg := e.sb.FixtureTargetGroup(asgRegion, name)
	stop := make(chan struct{}) // the ELBv2 health controller plays the load balancer
	e.createGroup(name, lt, "1", desired, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.HealthCheckType, in.HealthCheckGracePeriod = aws.String("ELB"), aws.Int32(0)
		in.TargetGroupARNs = []string{tg}
	})
	return e, lt, tg, func() { close(stop) }
}

func TestASGELBHealthReplacement(t *testing.T) {
	t.Parallel()
	e, lt, tg, stop := elbEnv(t, "svc", "fail", 2)
	defer stop()
	e.waitGroup("svc", "two healthy instances", settledOn("1", 2))
	poll(t, "targets healthy", func() (bool, string) {
		ts := e.sb.FixtureTargets(asgRegion, tg)
		n := 0
		for _, s := range ts {
			if s == "healthy" {
				n++
			}
		}
		return n == 2, fmt.Sprint(ts)
	})
	st, err := e.c.DescribeTrafficSources(e.ctx, &autoscaling.DescribeTrafficSourcesInput{AutoScalingGroupName: aws.String("svc")})
	if err != nil || len(st.TrafficSources) != 1 || aws.ToString(st.TrafficSources[0].State) != "InService" {
		t.Fatalf("DescribeTrafficSources: %v %+v", err, st)
	}

	// Pointing the group at version 2 replaces nothing by itself.
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("svc"),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("2")}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if g, _ := e.group("svc"); !settledOn("1", 2)(g) {
		t.Fatalf("update replaced instances: %s", describeInstances(g))
	}
	// A new instance from the failing image is marked unhealthy and replaced.
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("svc"), DesiredCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	poll(t, "ELB health replacement", func() (bool, string) {
		for _, a := range e.activities("svc") {
			if strings.Contains(aws.ToString(a.Cause), "ELB system health check failure") {
				return true, ""
			}
		}
		g, _ := e.group("svc")
		return false, describeInstances(g)
	})
	// With ReplaceUnhealthy suspended an unhealthy instance stays.
	if _, err := e.c.SuspendProcesses(e.ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("svc"), ScalingProcesses: []string{"ReplaceUnhealthy"}}); err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("svc", "an unhealthy instance kept", func(g types.AutoScalingGroup) bool {
		for _, in := range g.Instances {
			if aws.ToString(in.HealthStatus) == "Unhealthy" && in.LifecycleState == types.LifecycleStateInService {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond)
	if g2, _ := e.group("svc"); inService(g2) != inService(g) {
		t.Fatalf("instances changed while ReplaceUnhealthy suspended: %s -> %s", describeInstances(g), describeInstances(g2))
	}
	if _, err := e.c.DetachTrafficSources(e.ctx, &autoscaling.DetachTrafficSourcesInput{AutoScalingGroupName: aws.String("svc"),
		TrafficSources: []types.TrafficSourceIdentifier{{Identifier: aws.String(tg), Type: aws.String("elbv2")}}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.group("svc"); len(g.TargetGroupARNs) != 0 || len(g.TrafficSources) != 0 {
		t.Fatalf("still attached: %v", g.TargetGroupARNs)
	}
	e.deleteGroup("svc")
	e.finish()
}

func (e *asgEnv) startRefresh(name, lt, version string, prefs *types.RefreshPreferences) string {
	e.t.Helper()
	in := &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(name), Preferences: prefs}
	if version != "" {
		in.DesiredConfiguration = &types.DesiredConfiguration{LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(version)}}
	}
	out, err := e.c.StartInstanceRefresh(e.ctx, in)
	if err != nil {
		e.t.Fatalf("StartInstanceRefresh: %v", err)
	}
	return aws.ToString(out.InstanceRefreshId)
}

func (e *asgEnv) refresh(name, id string) types.InstanceRefresh {
	e.t.Helper()
	out, err := e.c.DescribeInstanceRefreshes(e.ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(name), InstanceRefreshIds: []string{id}})
	if err != nil || len(out.InstanceRefreshes) != 1 {
		e.t.Fatalf("DescribeInstanceRefreshes: %v", err)
	}
	return out.InstanceRefreshes[0]
}

// waitRefresh polls until the refresh has status and checks each group
// state seen on the way with watch.
func (e *asgEnv) waitRefresh(name, id string, status types.InstanceRefreshStatus, watch func(types.AutoScalingGroup, types.InstanceRefresh)) types.InstanceRefresh {
	e.t.Helper()
	var rf types.InstanceRefresh
	poll(e.t, "refresh "+string(status), func() (bool, string) {
		rf = e.refresh(name, id)
		g, _ := e.group(name)
		if watch != nil {
			watch(g, rf)
		}
		return rf.Status == status, fmt.Sprintf("%s (%s) %s", rf.Status, aws.ToString(rf.StatusReason), describeInstances(g))
	})
	return rf
}

func TestInstanceRefreshSucceeds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		desired    int32
		prefs      *types.RefreshPreferences
		minLive    int // fewest InService instances allowed during the refresh
		maxLive    int // most instances (not terminating) allowed
		checkpoint bool
		skip       bool
	}{
		{name: "defaults", desired: 3, minLive: 2, maxLive: 3},
		{name: "launch before terminate 110%", desired: 4, prefs: &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(110)}, minLive: 4, maxLive: 5},
		{name: "launch before terminate 200%", desired: 2, prefs: &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(200)}, minLive: 2, maxLive: 4},
		{name: "checkpoints", desired: 2, prefs: &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), CheckpointPercentages: []int32{50, 100}, CheckpointDelay: aws.Int32(30), BakeTime: aws.Int32(10)}, minLive: 1, maxLive: 2, checkpoint: true},
		{name: "skip matching", desired: 2, prefs: &types.RefreshPreferences{SkipMatching: aws.Bool(true), MinHealthyPercentage: aws.Int32(0)}, minLive: 0, maxLive: 3, skip: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, lt, tg, stop := elbEnv(t, "web", "", tc.desired)
			defer stop()
			e.waitGroup("web", "instances in service", settledOn("1", int(tc.desired)))
			waitTargetsHealthy(t, e, tg, int(tc.desired))
			var kept string
			if tc.skip {
				// One instance already on version 2: the refresh leaves it.
				if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"),
					LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("2")}, DesiredCapacity: aws.Int32(tc.desired + 1)}); err != nil {
					t.Fatal(err)
				}
				g := e.waitGroup("web", "one instance on version 2", func(g types.AutoScalingGroup) bool {
					n, _ := healthyOn(g, "2")
					total, all := healthyOn(g, "")
					return n == 1 && all && total == int(tc.desired)+1
				})
				for _, in := range g.Instances {
					if aws.ToString(in.LaunchTemplate.Version) == "2" {
						kept = aws.ToString(in.InstanceId)
					}
				}
				tc.desired++
			}
			id := e.startRefresh("web", lt, "2", tc.prefs)
			sawCheckpoint, sawBaking := false, false
			rf := e.waitRefresh("web", id, types.InstanceRefreshStatusSuccessful, func(g types.AutoScalingGroup, rf types.InstanceRefresh) {
				inService, live := 0, 0
				for _, in := range g.Instances {
					switch in.LifecycleState {
					case types.LifecycleStateInService:
						inService++
						live++
					case types.LifecycleStatePending:
						live++
					}
				}
				if inService < tc.minLive || live > tc.maxLive {
					t.Errorf("%d in service, %d live outside [%d, %d]: %s", inService, live, tc.minLive, tc.maxLive, describeInstances(g))
				}
				if strings.HasPrefix(aws.ToString(rf.StatusReason), "Checkpoint 50%") {
					sawCheckpoint = true
					if p := aws.ToInt32(rf.PercentageComplete); p != 50 {
						t.Errorf("percentage at checkpoint %d", p)
					}
				}
				sawBaking = sawBaking || rf.Status == types.InstanceRefreshStatusBaking
			})
			if tc.checkpoint && (!sawCheckpoint || !sawBaking) {
				t.Errorf("checkpoint seen %v, baking seen %v", sawCheckpoint, sawBaking)
			}
			if aws.ToInt32(rf.PercentageComplete) != 100 || rf.EndTime == nil || aws.ToString(rf.DesiredConfiguration.LaunchTemplate.Version) != "2" {
				t.Errorf("refresh %+v", rf)
			}
			g := e.waitGroup("web", "all on version 2", settledOn("2", int(tc.desired)))
			if v := aws.ToString(g.LaunchTemplate.Version); v != "2" {
				t.Errorf("group launch template version %q, want 2", v)
			}
			if tc.skip {
				found := false
				for _, in := range g.Instances {
					found = found || aws.ToString(in.InstanceId) == kept
				}
				if !found || aws.ToInt32(e.refresh("web", id).InstancesToUpdate) != 0 {
					t.Errorf("matching instance %s replaced: %s", kept, describeInstances(g))
				}
			}
			e.deleteGroup("web")
			e.finish()
		})
	}
}

func TestInstanceRefreshFailsOnUnhealthyImage(t *testing.T) {
	t.Parallel()
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("autorollback=%v", rollback), func(t *testing.T) {
			t.Parallel()
			e, lt, tg, stop := elbEnv(t, "api", "fail", 2)
			defer stop()
			e.waitGroup("api", "instances in service", settledOn("1", 2))
			waitTargetsHealthy(t, e, tg, 2)
			id := e.startRefresh("api", lt, "2", &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), AutoRollback: aws.Bool(rollback)})
			want := types.InstanceRefreshStatusFailed
			if rollback {
				want = types.InstanceRefreshStatusRollbackSuccessful
			}
			rf := e.waitRefresh("api", id, want, nil)
			if rollback {
				if rf.RollbackDetails == nil || !strings.Contains(aws.ToString(rf.RollbackDetails.RollbackReason), "failed") {
					t.Errorf("rollback details %+v", rf.RollbackDetails)
				}
			} else if !strings.Contains(aws.ToString(rf.StatusReason), "health") {
				t.Errorf("status reason %q", aws.ToString(rf.StatusReason))
			}
			g := e.waitGroup("api", "back on version 1", settledOn("1", 2))
			if v := aws.ToString(g.LaunchTemplate.Version); v != "1" {
				t.Errorf("group launch template version %q, want 1", v)
			}
			e.deleteGroup("api")
			e.finish()
		})
	}
}

func TestInstanceRefreshCancelAndRollback(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"cancel", "rollback"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			e, lt, tg, stop := elbEnv(t, "app", "", 2)
			defer stop()
			e.waitGroup("app", "instances in service", settledOn("1", 2))
			waitTargetsHealthy(t, e, tg, 2)
			id := e.startRefresh("app", lt, "2", &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), CheckpointPercentages: []int32{50}, CheckpointDelay: aws.Int32(3600)})
			poll(t, "checkpoint", func() (bool, string) {
				rf := e.refresh("app", id)
				return strings.HasPrefix(aws.ToString(rf.StatusReason), "Checkpoint"), aws.ToString(rf.StatusReason)
			})
			want, version := types.InstanceRefreshStatusCancelled, ""
			if action == "cancel" {
				if _, err := e.c.CancelInstanceRefresh(e.ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}); err != nil {
					t.Fatal(err)
				}
				if rf := e.refresh("app", id); rf.Status != types.InstanceRefreshStatusCancelling {
					t.Errorf("status after cancel %s", rf.Status)
				}
			} else {
				if _, err := e.c.RollbackInstanceRefresh(e.ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}); err != nil {
					t.Fatal(err)
				}
				want, version = types.InstanceRefreshStatusRollbackSuccessful, "1"
			}
			rf := e.waitRefresh("app", id, want, nil)
			g, _ := e.group("app")
			if aws.ToString(g.LaunchTemplate.Version) != "1" {
				t.Errorf("group version %s", aws.ToString(g.LaunchTemplate.Version))
			}
			if version != "" {
				if rf.RollbackDetails == nil || aws.ToInt32(rf.RollbackDetails.PercentageCompleteOnRollback) != 50 {
					t.Errorf("rollback details %+v", rf.RollbackDetails)
				}
				e.waitGroup("app", "all on version 1", settledOn(version, 2))
			} else {
				// Cancelling keeps what was replaced: one instance on each version.
				e.waitGroup("app", "mixed versions", func(g types.AutoScalingGroup) bool {
					n1, _ := healthyOn(g, "1")
					n2, _ := healthyOn(g, "2")
					return n1 == 1 && n2 == 1 && len(g.Instances) == 2
				})
			}
			e.deleteGroup("app")
			e.finish()
		})
	}
}

func TestASGLaunchFailureIsAFailedActivity(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	key := e.sb.FixtureDisabledKMSKey(asgRegion)
	lt := e.sb.FixtureEncryptedLaunchTemplate(asgRegion, "enc", e.sb.FixtureImage(asgRegion, ""), key)
	e.createGroup("enc", lt, "1", 1, nil)
	poll(t, "failed launch activity", func() (bool, string) {
		for _, a := range e.activities("enc") {
			if a.StatusCode == types.ScalingActivityStatusCodeFailed && strings.Contains(aws.ToString(a.StatusMessage), "Client.InvalidKMSKey.InvalidState") {
				return true, ""
			}
		}
		return false, ""
	})
	e.deleteGroup("enc")
	e.sb.FixtureDeleteKMSKey(asgRegion, key)
	e.finish()
}
