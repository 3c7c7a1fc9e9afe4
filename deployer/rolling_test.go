package deployer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

const region = "eu-west-1"

// events collects a deploy's events.
type events struct {
	mu  sync.Mutex
	all []deployer.Event
}

func (e *events) add(ev deployer.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) messages() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lines []string
	for _, ev := range e.all {
		if ev.Kind != deployer.EventProgress {
			lines = append(lines, ev.Kind+": "+ev.Message)
		}
	}
	return strings.Join(lines, "\n")
}

func newDeployer(f *deploytest.Fixture, group string, r *deployer.Rolling, ev *events) *deployer.Deployer {
	if r == nil {
		r = defaultRolling()
	}
	d := &deployer.Deployer{Clients: f.Clients, Target: deployer.Target{Name: group, Region: f.Region, Group: group}, Strategy: r,
		PollInterval: 50 * time.Millisecond, HealthTimeout: 20 * time.Second, Owner: "test@phoenix"}
	if ev != nil {
		d.Events = ev.add
	}
	return d
}

func defaultRolling() *deployer.Rolling {
	r, _, errs := deployer.RollingSettings{}.Rolling()
	if len(errs) > 0 {
		panic(errs)
	}
	return r
}

func TestRollingDeploySucceeds(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	st := f.Stack("web", old, deploytest.StackOptions{Desired: 3})
	newAMI := f.Image("web-2", deploytest.ImageOptions{Encrypted: true})

	var ev events
	d := newDeployer(f, "web", nil, &ev)
	d.Policy = &deployer.Policy{RequireEncrypted: true}
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Previous != old || res.Version != 2 || res.Refresh == "" {
		t.Errorf("result %+v", res)
	}
	g := f.Group("web")
	if v := aws.ToString(g.LaunchTemplate.Version); v != "2" {
		t.Errorf("group on version %q, want 2", v)
	}
	for id, ami := range f.InstanceAMIs("web") {
		if ami != newAMI {
			t.Errorf("instance %s runs %s, want %s", id, ami, newAMI)
		}
	}
	for _, tag := range g.Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("lock left behind: %s", aws.ToString(tag.Value))
		}
	}
	status, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !status.Health.OK() || status.Health.Healthy != 3 || status.Template.Version != 2 || status.Template.AMI != newAMI {
		t.Errorf("status after deploy: %+v, health %+v", status, status.Health)
	}
	_ = st
	t.Logf("events:\n%s", ev.messages())
}

func TestRollingDeployOfFailingImageRollsBack(t *testing.T) {
	t.Parallel()
	for _, autoRollback := range []bool{true, false} {
		t.Run(map[bool]string{true: "auto-rollback", false: "phoenix-rollback"}[autoRollback], func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			old := f.Image("api-1", deploytest.ImageOptions{})
			f.Stack("api", old, deploytest.StackOptions{Desired: 2})
			bad := f.Image("api-2", deploytest.ImageOptions{Health: "fail"})
			r := defaultRolling()
			r.AutoRollback = autoRollback
			r.MinHealthyPercentage = 50
			var ev events
			d := newDeployer(f, "api", r, &ev)
			res, err := d.Run(context.Background(), bad)
			var de *deployer.Error
			if !errors.As(err, &de) || de.Outcome != deployer.RolledBack || res.Outcome != deployer.RolledBack {
				t.Fatalf("deploy: %v (result %+v)\n%s", err, res, ev.messages())
			}
			if !strings.Contains(err.Error(), "rolled back") {
				t.Errorf("message %q", err)
			}
			g := f.Group("api")
			if v := aws.ToString(g.LaunchTemplate.Version); v != "1" {
				t.Errorf("group on version %q, want 1", v)
			}
			for id, ami := range f.InstanceAMIs("api") {
				if ami != old {
					t.Errorf("instance %s runs %s, want the old %s", id, ami, old)
				}
			}
			t.Logf("%v\n%s", err, ev.messages())
		})
	}
}

// A group that trusts EC2 health would let a refresh of a broken image
// succeed; the health gate reads the load balancer during the refresh,
// fails the deploy at the first failing target (long before
// health_timeout) and the refresh is rolled back.
func TestHealthGateCatchesWhatTheRefreshMisses(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("ec2-1", deploytest.ImageOptions{})
	f.Stack("ec2", old, deploytest.StackOptions{Desired: 2, HealthCheckType: "EC2"})
	bad := f.Image("ec2-2", deploytest.ImageOptions{Health: "fail"})
	r := defaultRolling()
	r.MinHealthyPercentage = 50
	var ev events
	d := newDeployer(f, "ec2", r, &ev)
	d.HealthTimeout = 10 * time.Minute
	res, err := d.Run(context.Background(), bad)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("deploy: %v (%+v)\n%s", err, res, ev.messages())
	}
	for _, want := range []string{"a new instance on " + bad + " failed its load balancer health checks", "is unhealthy", "rolled back to launch template"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if !strings.Contains(ev.messages(), "started instance refresh") || !strings.Contains(ev.messages(), "rolling back instance refresh") {
		t.Errorf("no refresh back to the old version:\n%s", ev.messages())
	}
	if v := aws.ToString(f.Group("ec2").LaunchTemplate.Version); v != "1" {
		t.Errorf("group on version %s, want 1", v)
	}
	for id, ami := range f.InstanceAMIs("ec2") {
		if ami != old {
			t.Errorf("%s runs %s, want %s", id, ami, old)
		}
	}
}

// A deploy stopped mid-refresh is picked up by the next run of the same
// deploy: it follows the refresh AWS is running instead of starting one.
func TestStoppedDeployIsPickedUp(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("resume-1", deploytest.ImageOptions{})
	f.Stack("resume", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("resume-2", deploytest.ImageOptions{})
	r := defaultRolling()
	r.MinHealthyPercentage, r.Checkpoints, r.CheckpointDelay = 50, []int{50, 100}, 5*time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	var ev events
	d := newDeployer(f, "resume", r, &ev)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Refresh != nil && strings.HasPrefix(e.Refresh.Reason, "Checkpoint") {
			cancel()
		}
	}
	_, err := d.Run(ctx, newAMI)
	if err == nil || !strings.Contains(err.Error(), "deploy interrupted") || deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("stopped deploy: %v", err)
	}
	var again events
	d = newDeployer(f, "resume", r, &again)
	f.SB.ResetCalls()
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, again.messages())
	}
	calls := f.SB.Calls()
	if calls["autoscaling"]["StartInstanceRefresh"] != 0 || calls["ec2"]["CreateLaunchTemplateVersion"] != 0 {
		t.Errorf("the second run started its own refresh: %v", calls)
	}
	if !strings.Contains(again.messages(), "following instance refresh") || res.Version != 2 || res.Previous != old {
		t.Errorf("result %+v\n%s", res, again.messages())
	}
	for id, ami := range f.InstanceAMIs("resume") {
		if ami != newAMI {
			t.Errorf("%s runs %s", id, ami)
		}
	}
}

// When the rollback itself cannot be done the outcome is RollbackFailed
// (exit 2): a person has to look.
func TestRollbackFailureNeedsAPerson(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("rbf-1", deploytest.ImageOptions{})
	f.Stack("rbf", old, deploytest.StackOptions{Desired: 2})
	bad := f.Image("rbf-2", deploytest.ImageOptions{Health: "fail"})
	r := defaultRolling()
	r.AutoRollback, r.MinHealthyPercentage = false, 50
	// Once the deploy's refresh has started, every way back fails: the
	// refresh's rollback and a refresh back to the old version.
	var mu sync.Mutex
	started, faulted := false, false
	f.SB.OnCall(func(service, action string) {
		mu.Lock()
		defer mu.Unlock()
		if action == "StartInstanceRefresh" {
			started = true
			return
		}
		if started && !faulted {
			faulted = true
			f.SB.AddFault(sandbox.Fault{Service: "autoscaling", Action: "StartInstanceRefresh", Kind: "error500"})
			f.SB.AddFault(sandbox.Fault{Service: "autoscaling", Action: "RollbackInstanceRefresh", Kind: "error500"})
			f.SB.AddFault(sandbox.Fault{Service: "autoscaling", Action: "CancelInstanceRefresh", Kind: "error500"})
		}
	})
	defer f.SB.ClearFaults()
	var ev events
	res, err := newDeployer(f, "rbf", r, &ev).Run(context.Background(), bad)
	if deployer.OutcomeOf(err) != deployer.RollbackFailed || res.Outcome != deployer.RollbackFailed {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	for _, want := range []string{"deploy failed: instance refresh", "rollback failed: ", "InternalError"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, tag := range f.Group("rbf").Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("lock left after a failed rollback")
		}
	}
}
