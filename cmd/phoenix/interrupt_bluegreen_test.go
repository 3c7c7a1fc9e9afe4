package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// bgInterruptFixture is a blue-green target of two instances per colour,
// blue live, a second AMI and a phoenix.hcl (environment "prod").
type bgInterruptFixture struct {
	*deploytest.Fixture
	bg            *deploytest.BlueGreen
	old, new, cfg string
}

func newBGInterruptFixture(t *testing.T, name string) *bgInterruptFixture {
	f := deploytest.New(t, nil, testRegion)
	x := &bgInterruptFixture{Fixture: f}
	x.old = f.Image(name+"-1", deploytest.ImageOptions{})
	x.bg = f.BlueGreen(name, x.old, deploytest.BlueGreenOptions{Desired: 2})
	x.new = f.Image(name+"-2", deploytest.ImageOptions{})
	x.cfg = writeBlueGreenConfig(t, f, x.bg, `    steps          = [50, 100]
    bake_time      = "1h"
    health_timeout = "1h"`)
	return x
}

func (x *bgInterruptFixture) deploy(more ...string) []string {
	return append([]string{"deploy", "prod", "--config", x.cfg, "--ami", x.new}, more...)
}

// requireWhole checks that all traffic goes to one colour, that colour's
// instances all run ami, the other colour is empty, and no pin or lock is
// left anywhere.
func (x *bgInterruptFixture) requireWhole(t *testing.T, live, ami, what string) {
	t.Helper()
	liveGroup, idleGroup, liveTG, idleTG := x.bg.Blue, x.bg.Green, x.bg.BlueTG, x.bg.GreenTG
	if live == "green" {
		liveGroup, idleGroup, liveTG, idleTG = x.bg.Green, x.bg.Blue, x.bg.GreenTG, x.bg.BlueTG
	}
	if w := x.Weights(x.bg); w[idleTG] != 0 || w[liveTG] == 0 {
		t.Errorf("%s: weights %v, want all traffic on %s", what, w, live)
	}
	amis := x.InstanceAMIs(liveGroup)
	if len(amis) != 2 {
		t.Errorf("%s: %s has %d instances, want 2", what, live, len(amis))
	}
	for id, got := range amis {
		if got != ami {
			t.Errorf("%s: %s instance %s runs %s, want %s", what, live, id, got, ami)
		}
	}
	x.WaitFor(idleGroup+" empty", 30*time.Second, func() (bool, string) {
		g := x.Group(idleGroup)
		return aws.ToInt32(g.DesiredCapacity) == 0 && len(g.Instances) == 0, ""
	})
	for _, g := range []string{x.bg.Blue, x.bg.Green} {
		for _, tag := range x.Group(g).Tags {
			if k := aws.ToString(tag.Key); k == deployer.PinTag || k == deployer.LockTag {
				t.Errorf("%s: %s left on %s: %s", what, k, g, aws.ToString(tag.Value))
			}
		}
	}
}

// Ctrl-C to a blue-green `phoenix deploy` at each phase: it returns all
// traffic to blue and removes green's pin before it exits 1, so the target
// is never left half-switched or pinned; the same deploy again finishes.
// A SIGKILL in the middle of a switch can leave it split and pinned:
// phoenix status shows that, and a rerun finishes the switch or phoenix
// rollback returns everything to blue.
func TestBlueGreenDeployInterruptedAtEachPhase(t *testing.T) {
	testenv.RequireE2E(t)
	bin := buildPhoenix(t)

	// interrupted checks the deploy's exit, that it names the step it was
	// interrupted in, and that a rerun finishes.
	interrupted := func(t *testing.T, x *bgInterruptFixture, out string, code int, step string) {
		t.Helper()
		if code != exitFailed || !strings.Contains(out, "deploy interrupted (context canceled) during ["+step+"]") || !strings.Contains(out, "released the lock on") {
			t.Errorf("interrupted deploy: exit %d\n%s", code, out)
		}
		x.requireWhole(t, "blue", x.old, "after the interrupt")
		// The same deploy again goes all the way (with no bake left to wait).
		out, code = runPhoenix(t, bin, x.deploy("--bake-time", "0s")...)
		if code != exitOK || !strings.Contains(out, "web: succeeded: all traffic on green") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
		x.requireWhole(t, "green", x.new, "after the rerun")
		logIfFailed(t, out)
	}
	hold := func(name, short string, nth int, action, step string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x := newBGInterruptFixture(t, short)
			n := 0
			h := x.SB.HoldAnswer(func(_, _, a string) bool {
				if a == action {
					n++
				}
				return a == action && n == nth
			})
			t.Cleanup(h.Release)
			p := startPhoenix(t, bin, x.deploy()...)
			interruptAtHold(t, p, h)
			out, code := p.wait(t, time.Minute)
			interrupted(t, x, out, code, step)
		})
	}
	hold("answer to the new version lost", "bg-ltv", 1, "CreateLaunchTemplateVersion", "launch-template")
	hold("answer to the pin lost", "bg-pin", 2, "CreateOrUpdateTags", "scale") // the first is the lock
	hold("answer to the scale-up lost", "bg-scale", 1, "UpdateAutoScalingGroup", "scale")

	at := func(name, short, line, step string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x := newBGInterruptFixture(t, short)
			p := startPhoenix(t, bin, x.deploy()...)
			p.waitOutput(t, line)
			p.signal(t, syscall.SIGINT)
			out, code := p.wait(t, time.Minute)
			interrupted(t, x, out, code, step)
		})
	}
	at("during the health wait", "bg-health", "[health]", "health")
	at("while baking at 50", "bg-bake", "[bake]", "bake")

	killed := func(name, short string, recover func(t *testing.T, x *bgInterruptFixture)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			x := newBGInterruptFixture(t, short)
			p := startPhoenix(t, bin, x.deploy()...)
			p.waitOutput(t, "moved 50% of the traffic to green")
			p.signal(t, syscall.SIGKILL)
			p.wait(t, time.Minute)
			if w := x.Weights(x.bg); w[x.bg.GreenTG] != 50 || w[x.bg.BlueTG] != 50 {
				t.Fatalf("weights %v after the kill, want 50/50", w)
			}
			out, code := runPhoenix(t, bin, "status", "prod", "--config", x.cfg)
			if code != exitOK || !strings.Contains(out, "green ("+x.bg.Green+") idle 50%") || !strings.Contains(out, "pinned: deploy ") {
				t.Errorf("status after the kill: exit %d\n%s", code, out)
			}
			recover(t, x)
		})
	}
	killed("killed then rerun", "bg-kill", func(t *testing.T, x *bgInterruptFixture) {
		out, code := runPhoenix(t, bin, x.deploy("--bake-time", "0s")...)
		if code != exitOK || !strings.Contains(out, "picking up where that deploy stopped") || !strings.Contains(out, "takes the lock over") && !strings.Contains(out, "taking over") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
		x.requireWhole(t, "green", x.new, "after the rerun")
		logIfFailed(t, out)
	})
	killed("killed then rolled back", "bg-killrb", func(t *testing.T, x *bgInterruptFixture) {
		out, code := runPhoenix(t, bin, "rollback", "prod", "--config", x.cfg)
		if code != exitOK || !strings.Contains(out, "a switch to green ("+x.bg.Green+") was cut short (50% of the traffic): returning it to blue") {
			t.Errorf("rollback: exit %d\n%s", code, out)
		}
		x.requireWhole(t, "blue", x.old, "after phoenix rollback")
		logIfFailed(t, out)
	})

	// return_home: a SIGKILL while blue comes back leaves the vetted AMI
	// serving from green; the same deploy again goes home, and the groups
	// end with the capacities they had.
	t.Run("return_home killed on the way back then rerun", func(t *testing.T) {
		t.Parallel()
		x := newBGInterruptFixture(t, "bg-home")
		blue, green := x.Group(x.bg.Blue), x.Group(x.bg.Green)
		deploy := x.deploy("--return-home", "--bake-time", "0s")
		p := startPhoenix(t, bin, deploy...)
		p.waitOutput(t, "scaled blue ("+x.bg.Blue+") to 2 on")
		p.signal(t, syscall.SIGKILL)
		p.wait(t, time.Minute)
		if w := x.Weights(x.bg); w[x.bg.GreenTG] != 100 || w[x.bg.BlueTG] != 0 {
			t.Fatalf("weights %v after the kill, want all on green", w)
		}
		out, code := runPhoenix(t, bin, deploy...)
		if code != exitOK || !strings.Contains(out, "green ("+x.bg.Green+") runs "+x.new+" with all traffic: going back to blue ("+x.bg.Blue+") (return_home)") {
			t.Errorf("rerun: exit %d\n%s", code, out)
		}
		x.requireWhole(t, "blue", x.new, "after the rerun")
		for _, g := range []struct{ before, after astypes.AutoScalingGroup }{{blue, x.Group(x.bg.Blue)}, {green, x.Group(x.bg.Green)}} {
			if aws.ToInt32(g.after.MinSize) != aws.ToInt32(g.before.MinSize) || aws.ToInt32(g.after.MaxSize) != aws.ToInt32(g.before.MaxSize) || aws.ToInt32(g.after.DesiredCapacity) != aws.ToInt32(g.before.DesiredCapacity) {
				t.Errorf("%s: min/max/desired %d/%d/%d, before the deploy %d/%d/%d", aws.ToString(g.after.AutoScalingGroupName), aws.ToInt32(g.after.MinSize), aws.ToInt32(g.after.MaxSize), aws.ToInt32(g.after.DesiredCapacity),
					aws.ToInt32(g.before.MinSize), aws.ToInt32(g.before.MaxSize), aws.ToInt32(g.before.DesiredCapacity))
			}
		}
		logIfFailed(t, out)
	})
}
