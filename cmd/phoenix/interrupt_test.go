package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// proc is the phoenix binary running as a process, as CI runs it.
type proc struct {
	cmd    *exec.Cmd
	out    syncBuffer
	exited chan struct{}
}

// startPhoenix starts bin with args; the test's cleanup kills it if it
// still runs.
func startPhoenix(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+t.TempDir())
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// runPhoenix runs bin with args to the end and returns its output and
// exit code.
func runPhoenix(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	p := startPhoenix(t, bin, args...)
	return p.wait(t, 2*time.Minute)
}

func (p *proc) wait(t *testing.T, timeout time.Duration) (string, int) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s:\n%s", strings.Join(p.cmd.Args, " "), timeout, p.out.String())
	}
	return p.out.String(), p.cmd.ProcessState.ExitCode()
}

// waitOutput waits until the output has a line containing s.
func (p *proc) waitOutput(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), s) {
			return
		}
		select {
		case <-p.exited:
			if strings.Contains(p.out.String(), s) {
				return
			}
			t.Fatalf("phoenix exited before printing %q:\n%s", s, p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("phoenix did not print %q:\n%s", s, p.out.String())
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %s: %v", sig, err)
	}
}

// syncBuffer is a bytes.Buffer that a process writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// interruptFixture is a group of two instances on one AMI behind a load
// balancer, a second AMI to deploy and a phoenix.hcl for them.
type interruptFixture struct {
	*deploytest.Fixture
	group, old, new, cfg string
}

func newInterruptFixture(t *testing.T, group string, health string, stack deploytest.StackOptions, strategy string) *interruptFixture {
	f := deploytest.New(t, nil, testRegion)
	x := &interruptFixture{Fixture: f, group: group}
	x.old = f.Image(group+"-1", deploytest.ImageOptions{})
	stack.Desired = 2
	f.Stack(group, x.old, stack)
	x.new = f.Image(group+"-2", deploytest.ImageOptions{Health: health})
	x.cfg = writeConfig(t, f, group, strategy)
	return x
}

func (x *interruptFixture) args(cmd string, more ...string) []string {
	a := []string{cmd, "staging", "--config", x.cfg}
	if cmd == "deploy" {
		a = append(a, "--ami", x.new)
	}
	return append(a, more...)
}

// requireOn checks that every instance of the group runs ami, that the
// group is on the launch template version that has it, and that no lock
// is left.
func (x *interruptFixture) requireOn(t *testing.T, ami, what string) {
	t.Helper()
	amis := x.InstanceAMIs(x.group)
	if len(amis) != 2 {
		t.Errorf("%s: %d instances, want 2: %v", what, len(amis), amis)
	}
	for id, got := range amis {
		if got != ami {
			t.Errorf("%s: instance %s runs %s, want %s (all: %v)", what, id, got, ami, amis)
		}
	}
	g := x.Group(x.group)
	for _, tag := range g.Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("%s: lock left: %s", what, aws.ToString(tag.Value))
		}
	}
}

// refreshStatus is the group's latest instance refresh status, "" when
// there is none.
func (x *interruptFixture) refreshStatus(t *testing.T) string {
	t.Helper()
	out, err := x.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(x.group)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceRefreshes) == 0 {
		return ""
	}
	return string(out.InstanceRefreshes[0].Status)
}

const interruptedLine = "what AWS was doing goes on; run the same deploy again to follow it, or phoenix rollback to undo it"

// requireInterrupted checks what an interrupted deploy tells its user,
// and that it was interrupted in the step the case is about: the deploy
// names it ("during [refresh]").
func requireInterrupted(t *testing.T, out string, code int, step string) {
	t.Helper()
	if code != exitFailed {
		t.Errorf("interrupted deploy exited %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"released the lock on", "interrupted: deploy interrupted (context canceled) during [" + step + "]: " + interruptedLine, "phoenix: deploy interrupted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "rolling back") || strings.Contains(out, "rollback failed") {
		t.Errorf("an interrupted deploy rolled back behind the user's back")
	}
	if t.Failed() {
		t.Logf("interrupted deploy's output:\n%s", out)
	}
}

// Ctrl-C to a `phoenix deploy` process at each phase of a rolling deploy:
// it exits 1, releases its lock and says how to go on; AWS finishes what
// it was doing, and a rerun of the same deploy or phoenix rollback brings
// the group wholly onto one AMI.
func TestDeployInterruptedAtEachPhase(t *testing.T) {
	testenv.RequireE2E(t)
	bin := buildPhoenix(t)
	// The refresh pauses at 50% for 3s (5m at the sandbox's time scale),
	// long enough to be caught running.
	const checkpoints = `  strategy "rolling" {
    min_healthy_percentage = 50
    checkpoints            = [50, 100]
    checkpoint_delay       = "5m"
  }
`

	t.Run("answer to CreateLaunchTemplateVersion lost", func(t *testing.T) {
		t.Parallel()
		x := newInterruptFixture(t, "ltv", "", deploytest.StackOptions{}, checkpoints)
		hold := x.SB.HoldAnswer(func(_, _, a string) bool { return a == "CreateLaunchTemplateVersion" })
		t.Cleanup(hold.Release)
		p := startPhoenix(t, bin, x.args("deploy")...)
		interruptAtHold(t, p, hold)
		out, code := p.wait(t, time.Minute)
		requireInterrupted(t, out, code, "launch-template")
		if n := x.SB.Calls()["autoscaling"]["StartInstanceRefresh"]; n != 0 {
			t.Errorf("%d refreshes started after the interrupt", n)
		}
		x.requireOn(t, x.old, "after the interrupt")
		// The same deploy again goes all the way.
		out, code = runPhoenix(t, bin, x.args("deploy")...)
		if code != exitOK || !strings.Contains(out, "web: succeeded:") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
		x.requireOn(t, x.new, "after the rerun")
		logIfFailed(t, out)
	})

	t.Run("answer to StartInstanceRefresh lost", func(t *testing.T) {
		t.Parallel()
		x := newInterruptFixture(t, "start", "", deploytest.StackOptions{}, checkpoints)
		hold := x.SB.HoldAnswer(func(_, _, a string) bool { return a == "StartInstanceRefresh" })
		t.Cleanup(hold.Release)
		p := startPhoenix(t, bin, x.args("deploy")...)
		interruptAtHold(t, p, hold)
		out, code := p.wait(t, time.Minute)
		requireInterrupted(t, out, code, "refresh")
		if st := x.refreshStatus(t); st != "Pending" && st != "InProgress" {
			t.Errorf("refresh %q after the interrupt, want it running", st)
		}
		// The same deploy again follows the refresh it never heard of.
		out, code = runPhoenix(t, bin, x.args("deploy")...)
		if code != exitOK || !strings.Contains(out, "following instance refresh") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
		if n := x.SB.Calls()["autoscaling"]["StartInstanceRefresh"]; n != 1 {
			t.Errorf("%d refreshes started, want 1", n)
		}
		x.requireOn(t, x.new, "after the rerun")
		logIfFailed(t, out)
	})

	t.Run("while the refresh runs", func(t *testing.T) {
		t.Parallel()
		x := newInterruptFixture(t, "mid", "", deploytest.StackOptions{}, checkpoints)
		p := startPhoenix(t, bin, x.args("deploy")...)
		p.waitOutput(t, "Checkpoint")
		p.signal(t, syscall.SIGINT)
		out, code := p.wait(t, time.Minute)
		requireInterrupted(t, out, code, "refresh")
		// AWS carries on to the end; nobody follows.
		x.WaitFor("the refresh to end", time.Minute, func() (bool, string) {
			st := x.refreshStatus(t)
			return st == "Successful", st
		})
		x.requireOn(t, x.new, "after the refresh ended on its own")
		// phoenix rollback undoes it.
		out, code = runPhoenix(t, bin, x.args("rollback")...)
		if code != exitOK {
			t.Errorf("rollback: exit %d\n%s", code, out)
		}
		x.requireOn(t, x.old, "after phoenix rollback")
		logIfFailed(t, out)
	})

	t.Run("during the health wait", func(t *testing.T) {
		t.Parallel()
		// The group trusts EC2 health and does not add its new instances
		// to the load balancer (AddToLoadBalancer suspended), so the
		// refresh succeeds and the deploy waits on the load balancer's
		// health, which never comes.
		x := newInterruptFixture(t, "gate", "", deploytest.StackOptions{HealthCheckType: "EC2"}, `  strategy "rolling" {
    min_healthy_percentage = 50
    health_timeout         = "1h"
  }
`)
		x.setProcess(t, "AddToLoadBalancer", true)
		p := startPhoenix(t, bin, x.args("deploy")...)
		p.waitOutput(t, "[health] refresh Successful")
		p.signal(t, syscall.SIGINT)
		out, code := p.wait(t, time.Minute)
		requireInterrupted(t, out, code, "health")
		x.requireOn(t, x.new, "after the interrupt")
		x.setProcess(t, "AddToLoadBalancer", false)
		// Nothing was rolled back behind the user's back; phoenix
		// rollback does it.
		out, code = runPhoenix(t, bin, x.args("rollback")...)
		if code != exitOK || !strings.Contains(out, "web: succeeded:") {
			t.Errorf("rollback: exit %d\n%s", code, out)
		}
		x.requireOn(t, x.old, "after phoenix rollback")
		logIfFailed(t, out)
	})
}

// interruptAtHold sends SIGINT once the held call is reached, waits until
// phoenix has given up on it, and lets the sandbox answer (to nobody).
func interruptAtHold(t *testing.T, p *proc, hold *sandbox.Hold) {
	t.Helper()
	select {
	case <-hold.Reached():
	case <-p.exited:
		t.Fatalf("phoenix exited before the held call:\n%s", p.out.String())
	case <-time.After(time.Minute):
		t.Fatalf("phoenix never made the held call:\n%s", p.out.String())
	}
	t.Logf("holding %s %s in %s", hold.Service, hold.Action, hold.Region)
	p.signal(t, syscall.SIGINT)
	select {
	case <-hold.ClientGone():
	case <-time.After(30 * time.Second):
		t.Errorf("phoenix kept waiting for %s 30s after SIGINT", hold.Action)
	}
	hold.Release()
}

func logIfFailed(t *testing.T, out string) {
	t.Helper()
	if t.Failed() {
		t.Logf("last output:\n%s", out)
	}
}

// A `phoenix deploy` killed mid-refresh (SIGKILL: no cleanup at all)
// leaves the refresh running and its lock behind. phoenix status shows
// both, and says the lock's process has ended; the same deploy run again
// takes the lock over at once, follows the refresh and finishes it, or,
// for an image that fails its health checks, rolls it back.
func TestKilledDeployIsRecoveredByARerun(t *testing.T) {
	testenv.RequireE2E(t)
	bin := buildPhoenix(t)
	for _, tc := range []struct {
		name, group, health string
		code                int
		result              string
	}{
		{"healthy image", "killed", "", exitOK, "web: succeeded: instance refresh "},
		{"image that fails health checks", "killed-bad", "fail", exitFailed, "web: rolled back: deploy failed and was rolled back: instance refresh "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := newInterruptFixture(t, tc.group, tc.health, deploytest.StackOptions{}, `  strategy "rolling" {
    min_healthy_percentage = 50
  }
`)
			p := startPhoenix(t, bin, x.args("deploy")...)
			p.waitOutput(t, "[refresh] refresh InProgress")
			p.signal(t, syscall.SIGKILL)
			p.wait(t, time.Minute)
			// The refresh is held where it is until the rerun follows it,
			// so that what follows does not depend on timing.
			x.setRefreshProcess(t, true)

			out, code := runPhoenix(t, bin, x.args("status")...)
			pid := p.cmd.Process.Pid
			for _, want := range []string{
				"InProgress",
				fmt.Sprintf(", pid %d) until ", pid),
				fmt.Sprintf("process %d has ended: the same owner's next deploy or rollback takes the lock over", pid),
			} {
				if !strings.Contains(out, want) {
					t.Errorf("status lacks %q", want)
				}
			}
			if code != exitOK {
				t.Errorf("status exited %d", code)
			}
			logIfFailed(t, out)

			rerun := startPhoenix(t, bin, x.args("deploy")...)
			rerun.waitOutput(t, "following instance refresh")
			x.setRefreshProcess(t, false)
			out, code = rerun.wait(t, 2*time.Minute)
			if code != tc.code || !strings.Contains(out, tc.result) {
				t.Errorf("rerun: exit %d, want %d with %q", code, tc.code, tc.result)
			}
			if want := fmt.Sprintf("warning: taking over the lock on %q left by deploy ", x.group); !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("its process %d has ended", pid)) {
				t.Errorf("rerun does not say it took the lock over")
			}
			if n := x.SB.Calls()["autoscaling"]["StartInstanceRefresh"]; n != 1 {
				t.Errorf("%d refreshes started, want only the killed deploy's", n)
			}
			want := x.new
			if tc.health == "fail" {
				want = x.old
			}
			x.requireOn(t, want, "after the rerun")
			logIfFailed(t, out)
		})
	}
}

// setRefreshProcess suspends or resumes the group's InstanceRefresh
// process: a suspended refresh stays where it is.
func (x *interruptFixture) setRefreshProcess(t *testing.T, suspend bool) {
	t.Helper()
	x.setProcess(t, "InstanceRefresh", suspend)
}

// setProcess suspends or resumes one of the group's processes.
func (x *interruptFixture) setProcess(t *testing.T, process string, suspend bool) {
	t.Helper()
	ctx, as := context.Background(), x.Clients.AutoScaling
	var err error
	if suspend {
		_, err = as.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String(x.group), ScalingProcesses: []string{process}})
	} else {
		_, err = as.ResumeProcesses(ctx, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String(x.group), ScalingProcesses: []string{process}})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A `phoenix deploy` to a group on $Latest killed mid-refresh leaves the
// group held on its numbered version (status says so); the same deploy
// run again finishes it, or phoenix rollback undoes it, and either way the
// group ends on $Latest, which launches the image that passed the gate.
func TestKilledDeployOnLatestGroupIsRestored(t *testing.T) {
	testenv.RequireE2E(t)
	bin := buildPhoenix(t)
	for _, tc := range []struct {
		name, group, then string
	}{
		{"rerun", "killed-latest", "deploy"},
		{"rollback", "killed-latest-rb", "rollback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := newInterruptFixture(t, tc.group, "", deploytest.StackOptions{Version: "$Latest", HealthCheckType: "EC2"}, `  strategy "rolling" {
    min_healthy_percentage = 50
  }
`)
			p := startPhoenix(t, bin, x.args("deploy")...)
			p.waitOutput(t, "[refresh] refresh InProgress")
			p.signal(t, syscall.SIGKILL)
			p.wait(t, time.Minute)
			x.setRefreshProcess(t, true)
			if v := aws.ToString(x.Group(x.group).LaunchTemplate.Version); v != "1" {
				t.Errorf("killed: the group is on %q, want held on 1", v)
			}
			out, _ := runPhoenix(t, bin, x.args("status")...)
			if want := fmt.Sprintf("held           %q is held on a numbered launch template version by a deploy that stopped; its reference was $Latest", x.group); !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}

			next := startPhoenix(t, bin, x.args(tc.then)...)
			next.waitOutput(t, fmt.Sprintf("locked %q", x.group))
			x.setRefreshProcess(t, false)
			out, code := next.wait(t, 2*time.Minute)
			if code != exitOK {
				t.Errorf("%s: exit %d", tc.then, code)
			}
			want := x.new
			if tc.then == "rollback" {
				want = x.old
			}
			x.requireOn(t, want, "after the "+tc.then)
			g := x.Group(x.group)
			if v := aws.ToString(g.LaunchTemplate.Version); v != "$Latest" {
				t.Errorf("after the %s the group is on %q, want $Latest", tc.then, v)
			}
			if tag := x.GroupTag(x.group, deployer.RefTag); tag != "" {
				t.Errorf("%s tag left: %q", deployer.RefTag, tag)
			}
			if _, ami := x.TemplateVersion(aws.ToString(g.LaunchTemplate.LaunchTemplateId), "$Latest"); ami != want {
				t.Errorf("$Latest launches %s after the %s, want %s", ami, tc.then, want)
			}
			logIfFailed(t, out)
		})
	}
}

// A `phoenix deploy` killed mid-refresh on a group whose launch template
// names its image by an SSM parameter: the parameter has not moved and the
// group is held; the same deploy run again finishes the refresh, moves the
// parameter and puts the group back on its version.
func TestKilledDeployOnImageParameterGroupIsFinishedByARerun(t *testing.T) {
	testenv.RequireE2E(t)
	bin := buildPhoenix(t)
	f := deploytest.New(t, nil, testRegion)
	// The copies with the AMI written out that phoenix holds a group
	// whose version names an SSM parameter on stay behind, unlaunched: a
	// known leak (docs/reliability.md, the leak check).
	f.Allow(func(r sandbox.Resource) bool { return r.Type == "launch-template-version" })
	x := &interruptFixture{Fixture: f, group: "killed-ssm"}
	x.old = f.Image("killed-ssm-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-killed/ami", x.old)
	f.Stack(x.group, "resolve:ssm:/app-killed/ami", deploytest.StackOptions{Desired: 2})
	x.new = f.Image("killed-ssm-2", deploytest.ImageOptions{})
	x.cfg = writeConfig(t, f, x.group, `  strategy "rolling" {
    min_healthy_percentage = 50
  }
`)
	param := func() string { return f.ParameterValue("/app-killed/ami") }
	p := startPhoenix(t, bin, x.args("deploy")...)
	p.waitOutput(t, "[refresh] refresh InProgress")
	p.signal(t, syscall.SIGKILL)
	p.wait(t, time.Minute)
	x.setRefreshProcess(t, true)
	if v := param(); v != x.old {
		t.Errorf("killed: the parameter names %s, want %s", v, x.old)
	}
	if tag := x.GroupTag(x.group, deployer.RefTag); tag != "1;1" {
		t.Errorf("killed: %s tag %q, want 1;1", deployer.RefTag, tag)
	}

	rerun := startPhoenix(t, bin, x.args("deploy")...)
	rerun.waitOutput(t, "following instance refresh")
	x.setRefreshProcess(t, false)
	out, code := rerun.wait(t, 2*time.Minute)
	if code != exitOK {
		t.Errorf("rerun: exit %d", code)
	}
	x.requireOn(t, x.new, "after the rerun")
	if v := param(); v != x.new {
		t.Errorf("after the rerun the parameter names %s, want %s", v, x.new)
	}
	if v := aws.ToString(x.Group(x.group).LaunchTemplate.Version); v != "1" {
		t.Errorf("after the rerun the group is on %q, want 1", v)
	}
	if tag := x.GroupTag(x.group, deployer.RefTag); tag != "" {
		t.Errorf("%s tag left: %q", deployer.RefTag, tag)
	}
	logIfFailed(t, out)
}
