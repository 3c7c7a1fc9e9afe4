package sandbox_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

func (e *asgEnv) protect(name string, on bool, ids ...string) error {
	_, err := e.c.SetInstanceProtection(e.ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(name), InstanceIds: ids, ProtectedFromScaleIn: aws.Bool(on)}, noRetry)
	return err
}

func (e *asgEnv) standby(name string, dec bool, ids ...string) error {
	_, err := e.c.EnterStandby(e.ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(name), InstanceIds: ids, ShouldDecrementDesiredCapacity: aws.Bool(dec)}, noRetry)
	return err
}

func asgInstanceByID(g types.AutoScalingGroup, id string) (types.Instance, bool) {
	for _, in := range g.Instances {
		if aws.ToString(in.InstanceId) == id {
			return in, true
		}
	}
	return types.Instance{}, false
}

func firstASGInstance(t *testing.T, g types.AutoScalingGroup) string {
	t.Helper()
	if len(g.Instances) == 0 {
		t.Fatalf("no instances: %s", describeInstances(g))
	}
	return aws.ToString(g.Instances[0].InstanceId)
}

// Scale-in protection and Standby as the Auto Scaling API plays them:
// a protected instance survives a scale-in to 0; Standby takes an
// instance out of its target group and out of the capacity (decrementing
// the desired capacity or launching a replacement), ExitStandby puts it
// back; bad requests are refused.
func TestInstanceProtectionAndStandby(t *testing.T) {
	t.Parallel()
	e, _, tg, stop := elbEnv(t, "states", "", 3)
	defer stop()
	g := e.waitGroup("states", "3 in service", settledOn("1", 3))
	waitTargetsHealthy(t, e, tg, 3)
	ids := strings.Split(inService(g), ",")

	// Bad requests change nothing.
	if _, err := e.c.SetInstanceProtection(e.ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String("states"), InstanceIds: ids[:1]}, noRetry); err == nil || !strings.Contains(strings.ToLower(err.Error()), "protectedfromscalein") {
		t.Errorf("SetInstanceProtection without ProtectedFromScaleIn: %v", err)
	}
	if err := e.protect("states", true, "i-0123456789abcdef0"); err == nil || !strings.Contains(err.Error(), "is not part of Auto Scaling group states") {
		t.Errorf("SetInstanceProtection of a foreign instance: %v", err)
	}
	if err := e.standby("states", true, ids...); err != nil {
		t.Errorf("all 3 into standby, decrementing to the minimum 0: %v", err)
	} else {
		e.waitGroup("states", "3 in standby", func(g types.AutoScalingGroup) bool {
			return strings.Count(describeInstances(g), ":Standby/") == 3 && aws.ToInt32(g.DesiredCapacity) == 0
		})
		if _, err := e.c.ExitStandby(e.ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String("states"), InstanceIds: ids}, noRetry); err != nil {
			t.Fatal(err)
		}
		e.waitGroup("states", "3 back in service", settledOn("1", 3))
	}
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("states"), MinSize: aws.Int32(3), MaxSize: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	if err := e.standby("states", true, ids[0]); err == nil || !strings.Contains(err.Error(), "below its minimum size") {
		t.Errorf("EnterStandby decrementing below the minimum: %v", err)
	}
	if err := e.standby("states", false, ids[0]); err != nil {
		t.Fatal(err)
	}
	// Out of service: deregistered, and a replacement launched since the
	// desired capacity stayed 3.
	g = e.waitGroup("states", "standby and a replacement", func(g types.AutoScalingGroup) bool {
		in, _ := asgInstanceByID(g, ids[0])
		n, _ := healthyOn(g, "1")
		return in.LifecycleState == types.LifecycleStateStandby && n == 3 && len(g.Instances) == 4
	})
	if _, ok := e.sb.FixtureTargets(asgRegion, tg)[ids[0]]; ok {
		t.Errorf("%s in Standby is still registered: %v", ids[0], e.sb.FixtureTargets(asgRegion, tg))
	}
	if _, err := e.c.ExitStandby(e.ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String("states"), InstanceIds: ids[:1]}, noRetry); err == nil || !strings.Contains(err.Error(), "above its maximum size") {
		t.Errorf("ExitStandby above the maximum: %v", err)
	}
	if _, err := e.c.ExitStandby(e.ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String("states"), InstanceIds: ids[1:2]}, noRetry); err == nil || !strings.Contains(err.Error(), "is not in Standby") {
		t.Errorf("ExitStandby of an InService instance: %v", err)
	}

	// A protected instance is left by a scale-in to 0.
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("states"), MinSize: aws.Int32(0), MaxSize: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	if err := e.protect("states", true, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("states"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	g = e.waitGroup("states", "only the protected and the standby instance left", func(g types.AutoScalingGroup) bool { return len(g.Instances) == 2 })
	if in, ok := asgInstanceByID(g, ids[1]); !ok || in.LifecycleState != types.LifecycleStateInService || !aws.ToBool(in.ProtectedFromScaleIn) {
		t.Errorf("protected instance %s: %s", ids[1], describeInstances(g))
	}
	if in, ok := asgInstanceByID(g, ids[0]); !ok || in.LifecycleState != types.LifecycleStateStandby {
		t.Errorf("standby instance %s: %s", ids[0], describeInstances(g))
	}
	// Unprotected, it goes.
	if err := e.protect("states", false, ids[1]); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("states", "the unprotected instance gone", func(g types.AutoScalingGroup) bool { return len(g.Instances) == 1 })

	// NewInstancesProtectedFromScaleIn protects what the group launches.
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("states"), NewInstancesProtectedFromScaleIn: aws.Bool(true), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	g = e.waitGroup("states", "a protected new instance", func(g types.AutoScalingGroup) bool { n, _ := healthyOn(g, "1"); return n == 1 })
	if !aws.ToBool(g.NewInstancesProtectedFromScaleIn) {
		t.Errorf("group does not report NewInstancesProtectedFromScaleIn")
	}
	for _, in := range g.Instances {
		if in.LifecycleState == types.LifecycleStateInService && !aws.ToBool(in.ProtectedFromScaleIn) {
			t.Errorf("new instance %s is not protected", aws.ToString(in.InstanceId))
		}
	}
	// ForceDelete takes protected and standby instances with the group.
	e.deleteGroup("states")
	e.finish()
}

// An instance refresh with protected and standby instances, per the
// ScaleInProtectedInstances and StandbyInstances preferences; Wait, the
// API's default, waits (an hour on AWS, refresh_instance_wait here) and
// then fails.
func TestInstanceRefreshProtectedAndStandby(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		standby   bool // the instance is put in Standby (else protected)
		prefs     *types.RefreshPreferences
		release   bool // protection removed / standby left while the refresh waits
		status    types.InstanceRefreshStatus
		keptOnOld bool // the instance stays on version 1
	}{
		{name: "protected default waits then fails", status: types.InstanceRefreshStatusFailed, keptOnOld: true},
		{name: "protected wait released", release: true, status: types.InstanceRefreshStatusSuccessful},
		{name: "protected refresh", prefs: &types.RefreshPreferences{ScaleInProtectedInstances: types.ScaleInProtectedInstancesRefresh}, status: types.InstanceRefreshStatusSuccessful},
		{name: "protected ignore", prefs: &types.RefreshPreferences{ScaleInProtectedInstances: types.ScaleInProtectedInstancesIgnore}, status: types.InstanceRefreshStatusSuccessful, keptOnOld: true},
		{name: "standby default waits then fails", standby: true, status: types.InstanceRefreshStatusFailed, keptOnOld: true},
		{name: "standby wait released", standby: true, release: true, status: types.InstanceRefreshStatusSuccessful},
		{name: "standby terminate", standby: true, prefs: &types.RefreshPreferences{StandbyInstances: types.StandbyInstancesTerminate}, status: types.InstanceRefreshStatusSuccessful},
		{name: "standby ignore", standby: true, prefs: &types.RefreshPreferences{StandbyInstances: types.StandbyInstancesIgnore}, status: types.InstanceRefreshStatusSuccessful, keptOnOld: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, lt, tg, stop := elbEnv(t, "web", "", 2)
			defer stop()
			// The hour of Wait, as 600 s (6 s at the tests' scale).
			if err := e.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"refresh_instance_wait": 600}}); err != nil {
				t.Fatal(err)
			}
			g := e.waitGroup("web", "2 in service", settledOn("1", 2))
			waitTargetsHealthy(t, e, tg, 2)
			id := firstASGInstance(t, g)
			if tc.standby {
				if err := e.standby("web", true, id); err != nil {
					t.Fatal(err)
				}
				e.waitGroup("web", "in standby", func(g types.AutoScalingGroup) bool {
					in, _ := asgInstanceByID(g, id)
					return in.LifecycleState == types.LifecycleStateStandby
				})
			} else if err := e.protect("web", true, id); err != nil {
				t.Fatal(err)
			}
			rid := e.startRefresh("web", lt, "2", tc.prefs)
			released := false
			rf := e.waitRefresh("web", rid, tc.status, func(g types.AutoScalingGroup, rf types.InstanceRefresh) {
				if !tc.release || released || !strings.HasPrefix(aws.ToString(rf.StatusReason), "Waiting for ") {
					return
				}
				released = true
				if tc.standby {
					if _, err := e.c.ExitStandby(e.ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String("web"), InstanceIds: []string{id}}, noRetry); err != nil {
						t.Error(err)
					}
				} else if err := e.protect("web", false, id); err != nil {
					t.Error(err)
				}
			})
			if tc.release && !released {
				t.Errorf("the refresh never said it was waiting")
			}
			want := map[bool]types.ScaleInProtectedInstances{true: types.ScaleInProtectedInstancesWait}[tc.prefs == nil]
			if tc.prefs == nil && (rf.Preferences.ScaleInProtectedInstances != want || rf.Preferences.StandbyInstances != types.StandbyInstancesWait) {
				t.Errorf("default preferences %s / %s, want Wait / Wait", rf.Preferences.ScaleInProtectedInstances, rf.Preferences.StandbyInstances)
			}
			if tc.status == types.InstanceRefreshStatusFailed && !strings.Contains(aws.ToString(rf.StatusReason), "waited 600 seconds for") {
				t.Errorf("failure reason %q", aws.ToString(rf.StatusReason))
			}
			g, _ = e.group("web")
			in, ok := asgInstanceByID(g, id)
			switch {
			case tc.keptOnOld && (!ok || aws.ToString(in.LaunchTemplate.Version) != "1"):
				t.Errorf("%s should still run version 1: %s", id, describeInstances(g))
			case !tc.keptOnOld && ok:
				t.Errorf("%s should have been replaced: %s", id, describeInstances(g))
			}
			// Every other instance runs version 2 once the refresh did not
			// fail.
			if tc.status == types.InstanceRefreshStatusSuccessful {
				for _, in := range g.Instances {
					if aws.ToString(in.InstanceId) != id && in.LifecycleState == types.LifecycleStateInService && aws.ToString(in.LaunchTemplate.Version) != "2" {
						t.Errorf("%s not replaced: %s", aws.ToString(in.InstanceId), describeInstances(g))
					}
				}
			}
			e.deleteGroup("web")
			e.finish()
		})
	}
}

// The group's instance maintenance policy: checked as AWS documents it,
// shown by DescribeAutoScalingGroups, and used by a refresh whose
// preferences omit the healthy percentages.
func TestInstanceMaintenancePolicy(t *testing.T) {
	t.Parallel()
	e, lt, tg, stop := elbEnv(t, "mp", "", 2)
	defer stop()
	e.waitGroup("mp", "2 in service", settledOn("1", 2))
	waitTargetsHealthy(t, e, tg, 2)
	update := func(lo, hi *int32) error {
		_, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("mp"),
			InstanceMaintenancePolicy: &types.InstanceMaintenancePolicy{MinHealthyPercentage: lo, MaxHealthyPercentage: hi}}, noRetry)
		return err
	}
	for _, bad := range []struct {
		lo, hi *int32
		want   string
	}{
		{aws.Int32(100), nil, "both MinHealthyPercentage and MaxHealthyPercentage"},
		{aws.Int32(0), aws.Int32(150), "can't be greater than 100"},
		{aws.Int32(90), aws.Int32(90), "maxHealthyPercentage"},
		{aws.Int32(101), aws.Int32(200), "minHealthyPercentage"},
	} {
		if err := update(bad.lo, bad.hi); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("policy %v/%v: %v, want %q", aws.ToInt32(bad.lo), aws.ToInt32(bad.hi), err, bad.want)
		}
	}
	if err := update(aws.Int32(100), aws.Int32(200)); err != nil {
		t.Fatal(err)
	}
	g, _ := e.group("mp")
	if mp := g.InstanceMaintenancePolicy; mp == nil || aws.ToInt32(mp.MinHealthyPercentage) != 100 || aws.ToInt32(mp.MaxHealthyPercentage) != 200 {
		t.Fatalf("policy as described: %+v", mp)
	}
	// One percentage given, the other from the policy: still at most 100
	// apart.
	if _, err := e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("mp"),
		Preferences: &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50)}}, noRetry); err == nil || !strings.Contains(err.Error(), "can't be greater than 100") {
		t.Errorf("min 50 with the policy's max 200: %v", err)
	}
	// No percentages: the policy's 100/200 govern: new instances launch
	// before old ones go, and the group never has fewer than 2 in service.
	rid := e.startRefresh("mp", lt, "2", nil)
	rf := e.waitRefresh("mp", rid, types.InstanceRefreshStatusSuccessful, func(g types.AutoScalingGroup, rf types.InstanceRefresh) {
		n, _ := healthyOn(g, "")
		if n < 2 {
			t.Errorf("%d in service under a 100%% minimum: %s", n, describeInstances(g))
		}
	})
	if p := rf.Preferences; aws.ToInt32(p.MinHealthyPercentage) != 100 || aws.ToInt32(p.MaxHealthyPercentage) != 200 {
		t.Errorf("refresh preferences %d/%d, want the policy's 100/200", aws.ToInt32(p.MinHealthyPercentage), aws.ToInt32(p.MaxHealthyPercentage))
	}
	// -1 for both removes the policy; a refresh is back to 90/100.
	if err := update(aws.Int32(-1), aws.Int32(-1)); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.group("mp"); g.InstanceMaintenancePolicy != nil {
		t.Errorf("policy left after -1: %+v", g.InstanceMaintenancePolicy)
	}
	rid = e.startRefresh("mp", lt, "1", nil)
	rf = e.waitRefresh("mp", rid, types.InstanceRefreshStatusSuccessful, nil)
	if p := rf.Preferences; aws.ToInt32(p.MinHealthyPercentage) != 90 || aws.ToInt32(p.MaxHealthyPercentage) != 100 {
		t.Errorf("refresh preferences without a policy %d/%d, want 90/100", aws.ToInt32(p.MinHealthyPercentage), aws.ToInt32(p.MaxHealthyPercentage))
	}
	e.deleteGroup("mp")
	e.finish()
}
