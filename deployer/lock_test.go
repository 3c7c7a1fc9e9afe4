package deployer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// setLock plays another deploy holding group's lock: the lock parameter
// and the group's label tag; the test's cleanup deletes the parameter.
func setLock(t *testing.T, f *deploytest.Fixture, group, value string) {
	t.Helper()
	name := deployer.LockPath(group) + "1"
	if _, err := f.Clients.SSM.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(name)})
	})
	_, err := f.Clients.AutoScaling.CreateOrUpdateTags(context.Background(), &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(group), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(deployer.LockTag), Value: aws.String(value), PropagateAtLaunch: aws.Bool(false)}}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLockAndPreconditions(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("lock-1", deploytest.ImageOptions{})
	f.Stack("lock", old, deploytest.StackOptions{Desired: 1, UnusedTargetGroup: true})
	newAMI := f.Image("lock-2", deploytest.ImageOptions{})
	ctx := context.Background()

	// A target group no listener forwards to can never prove health.
	f.SB.ResetCalls()
	d := newDeployer(f, "lock", nil, nil)
	_, err := d.Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "lock-unused") || !strings.Contains(err.Error(), "not used by any listener or rule") {
		t.Errorf("unused target group: %v", err)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("%d mutating calls", m)
	}
	// Gating on the used target group only is fine.
	st, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"lock"}})
	if err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, arn := range st.AutoScalingGroups[0].TargetGroupARNs {
		if !strings.Contains(arn, "lock-unused") {
			used = append(used, arn)
		}
	}
	d.Target.TargetGroupARNs = used

	// A live lock refuses, naming its owner; an expired one does not.
	setLock(t, f, "lock", "owner=bob@ci-3 deploy=0badf00d expires="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	f.SB.ResetCalls()
	if _, err := d.Plan(ctx, newAMI); deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), `"lock" is locked by bob@ci-3 (deploy 0badf00d) until`) {
		t.Errorf("live lock: %v", err)
	}
	if _, err := d.Run(ctx, newAMI); deployer.OutcomeOf(err) != deployer.Refused {
		t.Errorf("live lock, run: %v", err)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("%d mutating calls", m)
	}
	status, err := d.Status(ctx)
	if err != nil || status.Lock == nil || status.Lock.Owner != "bob@ci-3" {
		t.Errorf("status lock %+v %v", status, err)
	}
	setLock(t, f, "lock", "owner=bob@ci-3 deploy=0badf00d expires="+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	pl, err := d.Plan(ctx, newAMI)
	if err != nil || len(pl.Changes) != 4 {
		t.Fatalf("expired lock: %v %+v", err, pl)
	}
	// Under throttling of the reads the deploy still gets there.
	for _, action := range []string{"DescribeTargetHealth", "DescribeInstanceRefreshes"} {
		if _, err := f.SB.AddFault(sandbox.Fault{Action: action, Kind: "throttle", Probability: 0.3}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := d.Run(ctx, newAMI)
	f.SB.ClearFaults()
	if err != nil {
		t.Fatalf("deploy after an expired lock, under throttling: %v", err)
	}
	if res.Version != 2 {
		t.Errorf("result %+v", res)
	}
	for _, tag := range f.Group("lock").Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("lock left: %s", aws.ToString(tag.Value))
		}
	}
}

// Deploys that take the same group's lock at the same instant: exactly one
// gets it, every time (the lock is an SSM parameter created without
// Overwrite; a tag written and read back could let two through).
func TestLockCannotRace(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("race-1", deploytest.ImageOptions{})
	f.Stack("race", old, deploytest.StackOptions{Desired: 1})
	ctx := context.Background()
	const rounds, deploys = 25, 8
	for round := range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var releases []func()
		refused := 0
		for range deploys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := newDeployer(f, "race", nil, nil)
				<-start
				release, err := deployer.LockForTest(ctx, d)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if deployer.OutcomeOf(err) != deployer.Refused {
						t.Errorf("round %d: %v", round, err)
					}
					refused++
					return
				}
				releases = append(releases, release)
			}()
		}
		close(start)
		wg.Wait()
		if len(releases) != 1 || refused != deploys-1 {
			t.Fatalf("round %d: %d deploys took the lock, %d were refused", round, len(releases), refused)
		}
		releases[0]()
	}
}

// TestBeginOutlastsThrottling: AWS throttling a precondition read past the
// SDK's three attempts does not refuse the deploy; the read is tried again
// a poll interval later, as the deploy loop does.
func TestBeginOutlastsThrottling(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("thr-1", deploytest.ImageOptions{})
	f.Stack("thr", old, deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("thr-2", deploytest.ImageOptions{})
	// Every attempt of the SDK's first call fails.
	if _, err := f.SB.AddFault(sandbox.Fault{Action: "DescribeInstanceRefreshes", Kind: "throttle", Probability: 1, Count: 3}); err != nil {
		t.Fatal(err)
	}
	var ev events
	d := newDeployer(f, "thr", nil, &ev)
	res, err := d.Run(context.Background(), newAMI)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy under throttling: %v (%+v)\n%s", err, res, ev.messages())
	}
	if !strings.Contains(ev.messages(), "api error Throttling: Rate exceeded; trying again") {
		t.Errorf("no retry after the throttled read:\n%s", ev.messages())
	}
	if n := faultsFired(t, f.SB, "throttled once"); n != 3 {
		t.Errorf("the fault fired %d times, want 3", n)
	}
}
