package sandbox_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func idsInState(g types.AutoScalingGroup, state types.LifecycleState) []string {
	var ids []string
	for _, in := range g.Instances {
		if in.LifecycleState == state {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func (e *asgEnv) complete(name, hook, id, result string) error {
	_, err := e.c.CompleteLifecycleAction(e.ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String(name), LifecycleHookName: aws.String(hook),
		InstanceId: aws.String(id), LifecycleActionResult: aws.String(result)}, noRetry)
	return err
}

// Lifecycle hooks as AWS documents them: a launching hook holds a new
// instance in Pending:Wait, out of its target group, until the action is
// completed (CONTINUE: in service and registered) or its heartbeat
// timeout gives the default result (ABANDON: terminated and replaced); a
// terminating hook holds a drained instance in Terminating:Wait.
func TestLifecycleHooks(t *testing.T) {
	t.Parallel()
	e, _, tg, stop := elbEnv(t, "hooks", "", 0)
	defer stop()
	put := func(in *autoscaling.PutLifecycleHookInput) error {
		in.AutoScalingGroupName = aws.String("hooks")
		_, err := e.c.PutLifecycleHook(e.ctx, in, noRetry)
		return err
	}
	for _, bad := range []struct {
		in   *autoscaling.PutLifecycleHookInput
		want string
	}{
		{&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("x"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHED")}, "Invalid Lifecycle Transition"},
		{&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("x"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(10)}, "between 30 and 7200"},
		{&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("x"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), DefaultResult: aws.String("RETRY")}, "Invalid default result"},
		{&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("x")}, "LifecycleTransition must be specified"},
	} {
		if err := put(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("PutLifecycleHook %+v: %v, want %q", bad.in, err, bad.want)
		}
	}
	// 600 s of heartbeat timeout: 6 s at the tests' scale.
	if err := put(&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(600)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hooks"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("hooks", "Pending:Wait", func(g types.AutoScalingGroup) bool { return len(idsInState(g, types.LifecycleStatePendingWait)) == 1 })
	first := idsInState(g, types.LifecycleStatePendingWait)[0]
	if ts := e.sb.FixtureTargets(asgRegion, tg); len(ts) != 0 {
		t.Errorf("an instance in Pending:Wait is registered: %v", ts)
	}
	out, err := e.c.DescribeAutoScalingInstances(e.ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{first}})
	if err != nil || len(out.AutoScalingInstances) != 1 || aws.ToString(out.AutoScalingInstances[0].LifecycleState) != "Pending:Wait" {
		t.Errorf("DescribeAutoScalingInstances: %v %+v", err, out)
	}
	if _, err := e.c.RecordLifecycleActionHeartbeat(e.ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{AutoScalingGroupName: aws.String("hooks"), LifecycleHookName: aws.String("boot"), InstanceId: aws.String(first)}); err != nil {
		t.Error(err)
	}
	if err := e.complete("hooks", "boot", first, "MAYBE"); err == nil || !strings.Contains(err.Error(), "Invalid Lifecycle Action Result") {
		t.Errorf("CompleteLifecycleAction MAYBE: %v", err)
	}
	if err := e.complete("hooks", "boot", first, "CONTINUE"); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("hooks", "in service", settledOn("1", 1))
	waitTargetsHealthy(t, e, tg, 1)
	if err := e.complete("hooks", "boot", first, "CONTINUE"); err == nil || !strings.Contains(err.Error(), "No active Lifecycle Action found with instance ID "+first) {
		t.Errorf("completing twice: %v", err)
	}

	// Nobody completes the next launch: its heartbeat timeout gives
	// ABANDON, the default; the instance goes and another is launched.
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hooks"), DesiredCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	g = e.waitGroup("hooks", "second in Pending:Wait", func(g types.AutoScalingGroup) bool { return len(idsInState(g, types.LifecycleStatePendingWait)) == 1 })
	abandoned := idsInState(g, types.LifecycleStatePendingWait)[0]
	e.waitGroup("hooks", "abandoned and replaced", func(g types.AutoScalingGroup) bool {
		w := idsInState(g, types.LifecycleStatePendingWait)
		_, still := asgInstanceByID(g, abandoned)
		return !still && len(w) == 1
	})
	// Deleting the hook lets the waiting instance go on.
	if _, err := e.c.DeleteLifecycleHook(e.ctx, &autoscaling.DeleteLifecycleHookInput{AutoScalingGroupName: aws.String("hooks"), LifecycleHookName: aws.String("boot")}); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("hooks", "2 in service", settledOn("1", 2))

	// A terminating hook: the instance leaves its target group first,
	// then waits.
	if err := put(&autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(600), DefaultResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	hooks, err := e.c.DescribeLifecycleHooks(e.ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("hooks")})
	if err != nil || len(hooks.LifecycleHooks) != 1 || aws.ToInt32(hooks.LifecycleHooks[0].GlobalTimeout) != 60000 || aws.ToString(hooks.LifecycleHooks[0].DefaultResult) != "CONTINUE" {
		t.Errorf("DescribeLifecycleHooks: %v %+v", err, hooks)
	}
	if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hooks"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	g = e.waitGroup("hooks", "Terminating:Wait", func(g types.AutoScalingGroup) bool {
		return len(idsInState(g, types.LifecycleStateTerminatingWait)) == 1
	})
	leaving := idsInState(g, types.LifecycleStateTerminatingWait)[0]
	if _, ok := e.sb.FixtureTargets(asgRegion, tg)[leaving]; ok {
		t.Errorf("%s in Terminating:Wait is still registered", leaving)
	}
	if state, _ := e.sb.FixtureInstance(asgRegion, leaving); state != "running" {
		t.Errorf("%s in Terminating:Wait is %s, want running", leaving, state)
	}
	if err := e.complete("hooks", "drain", leaving, "ABANDON"); err != nil {
		t.Fatal(err)
	}
	e.waitGroup("hooks", "terminated", func(g types.AutoScalingGroup) bool { _, ok := asgInstanceByID(g, leaving); return !ok })
	// A force delete does not wait for the terminating hook.
	e.deleteGroup("hooks")
	e.finish()
}
