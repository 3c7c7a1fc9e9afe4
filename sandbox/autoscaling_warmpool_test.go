package sandbox_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func (e *asgEnv) warmPool(name string) *autoscaling.DescribeWarmPoolOutput {
	e.t.Helper()
	out, err := e.c.DescribeWarmPool(e.ctx, &autoscaling.DescribeWarmPoolInput{AutoScalingGroupName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("DescribeWarmPool: %v", err)
	}
	return out
}

func warmStates(out *autoscaling.DescribeWarmPoolOutput) string {
	var parts []string
	for _, in := range out.Instances {
		parts = append(parts, fmt.Sprintf("%s:%s/v%s", aws.ToString(in.InstanceId), in.LifecycleState, aws.ToString(in.LaunchTemplate.Version)))
	}
	return strings.Join(parts, " ")
}

// warmedOn reports whether the pool has n instances, all stopped and
// warmed on version.
func warmedOn(out *autoscaling.DescribeWarmPoolOutput, version string, n int) bool {
	if len(out.Instances) != n {
		return false
	}
	for _, in := range out.Instances {
		if in.LifecycleState != types.LifecycleStateWarmedStopped || aws.ToString(in.LaunchTemplate.Version) != version {
			return false
		}
	}
	return true
}

// A warm pool as AWS documents it: instances warmed from the group's
// launch template and stopped, out of the target group, up to the
// prepared capacity less the desired capacity; a scale-out takes a warm
// instance before launching one; an instance refresh replaces the pool's
// instances too; deleting the pool or the group terminates them.
func TestWarmPool(t *testing.T) {
	t.Parallel()
	e, lt, tg, stop := elbEnv(t, "warm", "", 1)
	defer stop()
	e.waitGroup("warm", "1 in service", settledOn("1", 1))
	if _, err := e.c.PutWarmPool(e.ctx, &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("warm"), PoolState: "Bogus"}, noRetry); err == nil || !strings.Contains(err.Error(), "poolState") {
		t.Errorf("PutWarmPool with a bad pool state: %v", err)
	}
	if _, err := e.c.PutWarmPool(e.ctx, &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("warm"), MaxGroupPreparedCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	var wp *autoscaling.DescribeWarmPoolOutput
	poll(t, "2 warmed instances", func() (bool, string) {
		wp = e.warmPool("warm")
		return warmedOn(wp, "1", 2), warmStates(wp)
	})
	if c := wp.WarmPoolConfiguration; c == nil || c.PoolState != types.WarmPoolStateStopped || aws.ToInt32(c.MaxGroupPreparedCapacity) != 3 {
		t.Errorf("configuration %+v", c)
	}
	for _, in := range wp.Instances {
		id := aws.ToString(in.InstanceId)
		if state, _ := e.sb.FixtureInstance(asgRegion, id); state != "stopped" {
			t.Errorf("warmed instance %s is %s, want stopped", id, state)
		}
		if _, ok := e.sb.FixtureTargets(asgRegion, tg)[id]; ok {
			t.Errorf("warmed instance %s is registered", id)
		}
	}
	if g, _ := e.group("warm"); len(g.Instances) != 1 {
		t.Errorf("DescribeAutoScalingGroups lists the warm pool: %s", describeInstances(g))
	}

	// A scale-out takes a warmed instance.
	warmIDs := map[string]bool{}
	for _, in := range wp.Instances {
		warmIDs[aws.ToString(in.InstanceId)] = true
	}
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("warm"), DesiredCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("warm", "2 in service", settledOn("1", 2))
	taken := 0
	for _, in := range g.Instances {
		if warmIDs[aws.ToString(in.InstanceId)] {
			taken++
		}
	}
	if taken != 1 {
		t.Errorf("%d warmed instances in service, want 1: %s", taken, describeInstances(g))
	}
	waitTargetsHealthy(t, e, tg, 2)

	// An instance refresh replaces the pool's instances as well.
	rid := e.startRefresh("warm", lt, "2", &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(50)})
	e.waitRefresh("warm", rid, types.InstanceRefreshStatusSuccessful, nil)
	e.waitGroup("warm", "all on version 2", settledOn("2", 2))
	if wp = e.warmPool("warm"); !warmedOn(wp, "2", 1) {
		t.Errorf("warm pool after the refresh: %s, want 1 warmed instance on version 2", warmStates(wp))
	}

	if _, err := e.c.DeleteWarmPool(e.ctx, &autoscaling.DeleteWarmPoolInput{AutoScalingGroupName: aws.String("warm")}); err != nil {
		t.Fatal(err)
	}
	poll(t, "warm pool deleted", func() (bool, string) {
		wp = e.warmPool("warm")
		return wp.WarmPoolConfiguration == nil && len(wp.Instances) == 0, warmStates(wp)
	})
	if _, err := e.c.PutWarmPool(e.ctx, &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("warm"), MaxGroupPreparedCapacity: aws.Int32(3), PoolState: types.WarmPoolStateRunning}); err != nil {
		t.Fatal(err)
	}
	poll(t, "1 running warmed instance", func() (bool, string) {
		wp = e.warmPool("warm")
		return len(wp.Instances) == 1 && wp.Instances[0].LifecycleState == types.LifecycleStateWarmedRunning, warmStates(wp)
	})
	e.deleteGroup("warm")
	e.finish()
}

// A launching hook pauses a warm instance twice: in Warmed:Pending:Wait
// as it enters the pool, and in Pending:Wait as it leaves it for service.
func TestWarmPoolWithLaunchHook(t *testing.T) {
	t.Parallel()
	e, _, tg, stop := elbEnv(t, "warmhook", "", 0)
	defer stop()
	if _, err := e.c.PutLifecycleHook(e.ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("warmhook"), LifecycleHookName: aws.String("boot"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(600)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.PutWarmPool(e.ctx, &autoscaling.PutWarmPoolInput{AutoScalingGroupName: aws.String("warmhook"), MaxGroupPreparedCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var wp *autoscaling.DescribeWarmPoolOutput
	poll(t, "Warmed:Pending:Wait", func() (bool, string) {
		wp = e.warmPool("warmhook")
		return len(wp.Instances) == 1 && wp.Instances[0].LifecycleState == types.LifecycleStateWarmedPendingWait, warmStates(wp)
	})
	id := aws.ToString(wp.Instances[0].InstanceId)
	if err := e.complete("warmhook", "boot", id, "CONTINUE"); err != nil {
		t.Fatal(err)
	}
	poll(t, "Warmed:Stopped", func() (bool, string) {
		wp = e.warmPool("warmhook")
		return warmedOn(wp, "1", 1), warmStates(wp)
	})
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("warmhook"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("warmhook", id+" in Pending:Wait", func(g types.AutoScalingGroup) bool {
		in, ok := asgInstanceByID(g, id)
		return ok && in.LifecycleState == types.LifecycleStatePendingWait
	})
	if _, ok := e.sb.FixtureTargets(asgRegion, tg)[id]; ok {
		t.Errorf("%s is registered while in Pending:Wait", id)
	}
	if err := e.complete("warmhook", "boot", id, "CONTINUE"); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("warmhook", "in service", settledOn("1", 1))
	waitTargetsHealthy(t, e, tg, 1)
	e.deleteGroup("warmhook")
	e.finish()
}
