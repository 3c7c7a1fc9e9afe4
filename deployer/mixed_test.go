package deployer_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// mixedDistribution: one On-Demand instance, half of the rest Spot.
func mixedDistribution() *astypes.InstancesDistribution {
	return &astypes.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(1), OnDemandPercentageAboveBaseCapacity: aws.Int32(50), SpotAllocationStrategy: aws.String("capacity-optimized")}
}

// checkMixedPolicy checks that the group still has its mixed instances
// policy, overrides and distribution, on launch template version ref.
func checkMixedPolicy(t *testing.T, f *deploytest.Fixture, group, ref string, types []string) {
	t.Helper()
	g := f.Group(group)
	m := g.MixedInstancesPolicy
	if g.LaunchTemplate != nil || m == nil || m.LaunchTemplate == nil {
		t.Fatalf("%s: launch template %+v, mixed instances policy %+v", group, g.LaunchTemplate, m)
	}
	if v := aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.Version); v != ref {
		t.Errorf("%s: policy on version %q, want %q", group, v, ref)
	}
	var got []string
	for _, ov := range m.LaunchTemplate.Overrides {
		got = append(got, aws.ToString(ov.InstanceType))
	}
	if strings.Join(got, ",") != strings.Join(types, ",") {
		t.Errorf("%s: overrides %v, want %v", group, got, types)
	}
	d := m.InstancesDistribution
	if d == nil || aws.ToInt32(d.OnDemandBaseCapacity) != 1 || aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity) != 50 || aws.ToString(d.SpotAllocationStrategy) != "capacity-optimized" {
		t.Errorf("%s: distribution %+v, want base 1, 50%% above, capacity-optimized", group, d)
	}
}

// instanceMix is each instance's "type/market", sorted.
func instanceMix(t *testing.T, f *deploytest.Fixture, group string) []string {
	t.Helper()
	var ids []string
	for id := range f.InstanceAMIs(group) {
		ids = append(ids, id)
	}
	out, err := f.Clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	var mix []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			market := "on-demand"
			if in.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
				market = "spot"
			}
			mix = append(mix, string(in.InstanceType)+"/"+market)
		}
	}
	sort.Strings(mix)
	return mix
}

// A rolling deploy to a group with a mixed instances policy: the refresh
// carries the new version with the group's overrides and distribution,
// every instance (of every type, On-Demand and Spot) ends on the new
// image, and the group keeps its policy; phoenix rollback returns every
// instance to the old image the same way. On $Latest the group is back
// on $Latest in its policy.
func TestRollingDeployToMixedInstancesGroup(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"1", "$Latest"} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			name := map[string]string{"1": "mixed", "$Latest": "mixed-latest"}[ref]
			types := []string{"t3.micro", "t3a.micro", "m5.large"}
			old := f.Image(name+"-1", deploytest.ImageOptions{})
			st := f.Stack(name, old, deploytest.StackOptions{Desired: 4, Version: ref, MixedTypes: types, Distribution: mixedDistribution()})
			before := instanceMix(t, f, name)
			newAMI := f.Image(name+"-2", deploytest.ImageOptions{})

			var ev events
			d := newDeployer(f, name, nil, &ev)
			plan, err := d.Plan(context.Background(), newAMI)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, c := range plan.Changes {
				found = found || c.Action == "start" && strings.Contains(c.Detail, "mixed instances policy's 3 instance types [t3.micro t3a.micro m5.large], On-Demand base 1 and 50% above it, kept as they are")
			}
			if !found {
				t.Errorf("plan does not say the policy is kept: %+v", plan.Changes)
			}
			res, err := d.Run(context.Background(), newAMI)
			if err != nil {
				t.Fatalf("deploy: %v\n%s", err, ev.messages())
			}
			if res.Outcome != deployer.Succeeded || res.Version != 2 {
				t.Errorf("result %+v", res)
			}
			checkMixedPolicy(t, f, name, map[string]string{"1": "2", "$Latest": "$Latest"}[ref], types)
			checkAMIs(t, f, name, newAMI)
			if after := instanceMix(t, f, name); strings.Join(after, " ") != strings.Join(before, " ") {
				t.Errorf("instance types and markets %v after the deploy, %v before", after, before)
			}
			if n, ami := f.TemplateVersion(st.Template, "$Latest"); n != 2 || ami != newAMI {
				t.Errorf("$Latest is version %d with %s", n, ami)
			}
			status, err := d.Status(context.Background())
			if err != nil || status.Template == nil || status.Template.Version != 2 || status.Template.AMI != newAMI || !status.Health.OK() || status.Health.Healthy != 4 {
				t.Errorf("status after the deploy: %+v (%v)", status, err)
			}
			rf, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(name)})
			if err != nil || len(rf.InstanceRefreshes) == 0 {
				t.Fatalf("refreshes: %v", err)
			}
			if dc := rf.InstanceRefreshes[0].DesiredConfiguration; dc == nil || dc.MixedInstancesPolicy == nil || len(dc.MixedInstancesPolicy.LaunchTemplate.Overrides) != 3 || dc.LaunchTemplate != nil {
				t.Errorf("the refresh's desired configuration %+v is not the group's policy", dc)
			}

			res, err = d.Rollback(context.Background())
			if err != nil {
				t.Fatalf("rollback: %v\n%s", err, ev.messages())
			}
			checkMixedPolicy(t, f, name, map[string]string{"1": "3", "$Latest": "$Latest"}[ref], types)
			checkAMIs(t, f, name, old)
			if after := instanceMix(t, f, name); strings.Join(after, " ") != strings.Join(before, " ") {
				t.Errorf("instance types and markets %v after the rollback, %v before", after, before)
			}
			if tag := f.GroupTag(name, deployer.RefTag); tag != "" {
				t.Errorf("%s tag left: %q", deployer.RefTag, tag)
			}
			t.Logf("events:\n%s", ev.messages())
		})
	}
}

// A policy whose override launches from another launch template is
// refused before any change: those instances would keep their image.
func TestRollingDeployRefusesMixedOverrideTemplate(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("mixed-other-1", deploytest.ImageOptions{})
	st := f.Stack("mixed-other", old, deploytest.StackOptions{Desired: 1, MixedTypes: []string{"t3.micro"}, Distribution: mixedDistribution()})
	other, err := f.Clients.EC2.CreateLaunchTemplate(context.Background(), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("mixed-other-arm"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(old)}})
	if err != nil {
		t.Fatal(err)
	}
	otherID := aws.ToString(other.LaunchTemplate.LaunchTemplateId)
	t.Cleanup(func() {
		f.Clients.EC2.DeleteLaunchTemplate(context.Background(), &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(otherID)})
	})
	g := f.Group(st.Name)
	m := g.MixedInstancesPolicy
	m.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName = nil
	m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, astypes.LaunchTemplateOverrides{InstanceType: aws.String("t4g.micro"),
		LaunchTemplateSpecification: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(otherID), Version: aws.String("1")}})
	if _, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(context.Background(), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(st.Name), MixedInstancesPolicy: m}); err != nil {
		t.Fatal(err)
	}
	newAMI := f.Image("mixed-other-2", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	_, err = newDeployer(f, st.Name, nil, nil).Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || err == nil || !strings.Contains(err.Error(), "t4g.micro") || !strings.Contains(err.Error(), otherID) {
		t.Fatalf("outcome %v: %v", deployer.OutcomeOf(err), err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("%d mutating calls before the refusal: %v", n, f.SB.Calls())
	}
}

// Blue-green with a mixed instances policy per colour: the idle colour
// gets the new version in its own policy (its overrides and distribution
// kept, not the live colour's), and the rollback does the same for the
// other colour.
func TestBlueGreenWithMixedInstancesColours(t *testing.T) {
	t.Parallel()
	blueTypes, greenTypes := []string{"t3.micro", "t3a.micro"}, []string{"m5.large", "m5a.large"}
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 3, BlueTypes: blueTypes, GreenTypes: greenTypes, Distribution: mixedDistribution()}, deploytest.ImageOptions{})
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Version != 2 {
		t.Errorf("result %+v", res)
	}
	checkMixedPolicy(t, f, bg.Green, "2", greenTypes)
	checkMixedPolicy(t, f, bg.Blue, "1", blueTypes)
	checkAMIs(t, f, bg.Green, newAMI)
	// One On-Demand, then half of the rest: 2 On-Demand of the first
	// type, 1 Spot.
	if mix := instanceMix(t, f, bg.Green); strings.Join(mix, " ") != "m5.large/on-demand m5.large/on-demand m5.large/spot" {
		t.Errorf("green's instances %v", mix)
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 {
		t.Errorf("weights %v", w)
	}
	f.WaitFor("blue scaled to zero", 20*time.Second, func() (bool, string) {
		return readColour(t, f, bg.Blue).desired == 0 && len(f.InstanceAMIs(bg.Blue)) == 0, ""
	})

	res, err = d.Rollback(context.Background())
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.messages())
	}
	checkMixedPolicy(t, f, bg.Blue, "3", blueTypes)
	checkMixedPolicy(t, f, bg.Green, "2", greenTypes)
	checkAMIs(t, f, bg.Blue, old)
	if mix := instanceMix(t, f, bg.Blue); strings.Join(mix, " ") != "t3.micro/on-demand t3.micro/on-demand t3.micro/spot" {
		t.Errorf("blue's instances after the rollback %v", mix)
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 {
		t.Errorf("weights after the rollback %v", w)
	}
	t.Logf("events:\n%s", ev.messages())
}

// A failing image on a mixed instances group on $Latest: Auto Scaling
// rolls the refresh back to the held version in the group's policy, the
// group's policy is back on $Latest with its overrides and distribution,
// and a scale-out launches the old image of every type and market.
func TestRollingDeployToMixedInstancesGroupRollsBack(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	types := []string{"t3.micro", "t3a.micro"}
	old := f.Image("mixed-bad-1", deploytest.ImageOptions{})
	st := f.Stack("mixed-bad", old, deploytest.StackOptions{Desired: 2, Version: "$Latest", MixedTypes: types, Distribution: mixedDistribution()})
	bad := f.Image("mixed-bad-2", deploytest.ImageOptions{Health: "fail"})
	r := defaultRolling()
	r.AutoRollback, r.MinHealthyPercentage = true, 50
	var ev events
	_, err := newDeployer(f, "mixed-bad", r, &ev).Run(context.Background(), bad)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	checkMixedPolicy(t, f, "mixed-bad", "$Latest", types)
	if _, ami := f.TemplateVersion(st.Template, "$Latest"); ami != old {
		t.Errorf("$Latest launches %s after the rollback, want %s", ami, old)
	}
	if tag := f.GroupTag("mixed-bad", deployer.RefTag); tag != "" {
		t.Errorf("%s tag left: %q", deployer.RefTag, tag)
	}
	scaleOut(t, f, st, 4)
	checkAMIs(t, f, "mixed-bad", old)
	if mix := instanceMix(t, f, "mixed-bad"); strings.Join(mix, " ") != "t3.micro/on-demand t3.micro/on-demand t3.micro/on-demand t3.micro/spot" {
		t.Errorf("instances after the scale-out %v", mix)
	}
	t.Logf("events:\n%s", ev.messages())
}

// Ctrl-C during a deploy to a mixed instances group on $Latest: Auto
// Scaling rolls the refresh back to the held version in the policy, the
// group stays held with its overrides and distribution, and phoenix
// rollback puts $Latest back in the policy.
func TestMixedInstancesGroupInterruptedThenRolledBack(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	types := []string{"t3.micro", "t3a.micro"}
	old := f.Image("mixed-int-1", deploytest.ImageOptions{})
	st := f.Stack("mixed-int", old, deploytest.StackOptions{Desired: 2, Version: "$Latest", HealthCheckType: "EC2", MixedTypes: types, Distribution: mixedDistribution()})
	newAMI := f.Image("mixed-int-2", deploytest.ImageOptions{})
	r := defaultRolling()
	r.MinHealthyPercentage, r.Checkpoints, r.CheckpointDelay = 50, []int{50, 100}, 5*time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	var ev events
	d := newDeployer(f, "mixed-int", r, &ev)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Refresh != nil && strings.HasPrefix(e.Refresh.Reason, "Checkpoint") {
			cancel()
		}
	}
	_, err := d.Run(ctx, newAMI)
	if err == nil || !strings.Contains(err.Error(), "rolling back instance refresh") {
		t.Fatalf("interrupted deploy: %v\n%s", err, ev.messages())
	}
	checkMixedPolicy(t, f, "mixed-int", "1", types)
	if tag := f.GroupTag("mixed-int", deployer.RefTag); tag != "$Latest" {
		t.Errorf("interrupted: %s tag %q, want $Latest", deployer.RefTag, tag)
	}
	f.WaitFor("the refresh to roll back", 60*time.Second, func() (bool, string) {
		out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("mixed-int")})
		if err != nil || len(out.InstanceRefreshes) == 0 {
			return false, fmt.Sprint(err)
		}
		s := out.InstanceRefreshes[0].Status
		return s == astypes.InstanceRefreshStatusRollbackSuccessful, string(s)
	})
	checkAMIs(t, f, "mixed-int", old)

	var rb events
	if _, err := newDeployer(f, "mixed-int", r, &rb).Rollback(context.Background()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb.messages())
	}
	checkMixedPolicy(t, f, "mixed-int", "$Latest", types)
	if _, ami := f.TemplateVersion(st.Template, "$Latest"); ami != old {
		t.Errorf("after rollback $Latest launches %s, want %s", ami, old)
	}
	if tag := f.GroupTag("mixed-int", deployer.RefTag); tag != "" {
		t.Errorf("%s tag left: %q", deployer.RefTag, tag)
	}
	checkAMIs(t, f, "mixed-int", old)
}
