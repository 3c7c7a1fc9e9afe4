package deployer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// wavesStack is staging (one target in region, live on x) and a prod of
// three targets: web-use1 (us-east-1), web-euw1 (region, staging's) and
// web-usw2 (us-west-2), each group web-prod on its region's old image.
type wavesStack struct {
	staging *deploytest.Fixture
	prod    map[string]*deploytest.Fixture // by target name
	old     map[string]string              // by target name
	x       string
	ev      events
}

var waveTargets = []struct{ name, region string }{{"web-use1", "us-east-1"}, {"web-euw1", region}, {"web-usw2", "us-west-2"}}

func newWavesStack(t *testing.T) *wavesStack {
	t.Helper()
	w := &wavesStack{prod: map[string]*deploytest.Fixture{}, old: map[string]string{}}
	w.staging = deploytest.New(t, nil, region)
	w.x = w.staging.Image("web-2", deploytest.ImageOptions{})
	w.staging.Stack("web-staging", w.x, deploytest.StackOptions{Desired: 1})
	for _, tg := range waveTargets {
		f := w.staging
		if tg.region != region {
			f = deploytest.New(t, w.staging.SB, tg.region)
			// How many copies a region gets depends on how far the
			// test's waves go: each test checks its own.
			f.CleanupImagesTagged(deployer.PromotedFromTag, 1) // one copy per region: made, or found (badCopy)
		}
		w.prod[tg.name] = f
		w.old[tg.name] = f.Image("web-1-"+tg.name, deploytest.ImageOptions{})
		f.Stack("web-prod-"+tg.name, w.old[tg.name], deploytest.StackOptions{Desired: 1})
	}
	return w
}

func (w *wavesStack) end(name string) deployer.PromoteEnd {
	f := w.prod[name]
	min := 50
	rs, _, _ := deployer.RollingSettings{MinHealthyPercentage: &min, InstanceWarmup: "10s"}.Rolling()
	d := &deployer.Deployer{Clients: f.Clients, Target: deployer.Target{Name: name, Region: f.Region, Group: "web-prod-" + name}, Strategy: rs,
		PollInterval: 50 * time.Millisecond, HealthTimeout: 30 * time.Second, Owner: "test@phoenix", Environment: "prod", Events: w.ev.add}
	return deployer.PromoteEnd{Environment: "prod", Deployer: d, Config: f.Config}
}

func (w *wavesStack) rollout(onFailure string) *deployer.Rollout {
	from := newDeployer(w.staging, "web-staging", nil, nil)
	return &deployer.Rollout{
		From:      deployer.PromoteEnd{Environment: "staging", Deployer: from, Config: w.staging.Config},
		Waves:     [][]deployer.PromoteEnd{{w.end("web-use1")}, {w.end("web-euw1"), w.end("web-usw2")}},
		OnFailure: onFailure,
		Events:    w.ev.add,
	}
}

// badCopy makes, in us-west-2, the copy of x an earlier promote would
// have made, but of an image that fails its health checks: the rollout
// finds and deploys it, and wave 2 fails there.
func (w *wavesStack) badCopy(t *testing.T) {
	t.Helper()
	f := w.prod["web-usw2"]
	ctx := context.Background()
	out, err := f.Clients.EC2.CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: aws.String(w.x), SourceRegion: aws.String(region), Name: aws.String("web-2"), Encrypted: aws.Bool(true),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: []ec2types.Tag{
			{Key: aws.String(deployer.PromotedFromTag), Value: aws.String(region + ":" + w.x)}, {Key: aws.String(sandbox.HealthTag), Value: aws.String("fail")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.ImageId)
	f.WaitFor("the bad copy available", time.Minute, func() (bool, string) {
		d, err := f.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(d.Images) == 0 {
			return false, fmt.Sprint(err)
		}
		return d.Images[0].State == ec2types.ImageStateAvailable, string(d.Images[0].State)
	})
}

// statuses are the targets' statuses, "name=status" in wave order.
func statuses(res *deployer.RolloutResult) string {
	var out []string
	for _, t := range res.Targets {
		out = append(out, fmt.Sprintf("%d:%s=%s", t.Wave, t.Target, t.Status))
	}
	return strings.Join(out, " ")
}

// runsOld and runsNew check what a target's instances run.
func (w *wavesStack) runs(t *testing.T, name string, wantOld bool) {
	t.Helper()
	f := w.prod[name]
	amis := f.InstanceAMIs("web-prod-" + name)
	if len(amis) == 0 {
		t.Errorf("%s has no instance", name)
	}
	for id, ami := range amis {
		if (ami == w.old[name]) != wantOld {
			t.Errorf("%s instance %s runs %s (old: %s, want old: %v)", name, id, ami, w.old[name], wantOld)
		}
	}
}

func (w *wavesStack) history(t *testing.T, name string) string {
	t.Helper()
	recs, err := w.end(name).Deployer.History(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Action+" "+r.Outcome.String())
	}
	return strings.Join(out, ", ")
}

// TestRolloutWaveFails: a three-region prod promoted in two waves
// (us-east-1, then eu-west-1 and us-west-2 together), the image failing
// its health checks in us-west-2: with on_wave_failure "keep" the earlier
// targets stay on the new AMI, with "rollback" they return to the old
// one; either way the result lists every target and the histories say
// what happened.
func TestRolloutWaveFails(t *testing.T) {
	t.Parallel()
	for _, onFailure := range []string{deployer.KeepOnWaveFailure, deployer.RollbackOnWaveFailure} {
		t.Run(onFailure, func(t *testing.T) {
			t.Parallel()
			w := newWavesStack(t)
			w.badCopy(t)
			res, err := w.rollout(onFailure).Run(context.Background())
			if err == nil || res == nil || res.Outcome != deployer.RolledBack || deployer.OutcomeOf(err) != deployer.RolledBack {
				t.Fatalf("rollout: %v (%+v)\n%s", err, res, w.ev.messages())
			}
			if !strings.HasPrefix(err.Error(), "wave 2 of 2 failed (web-usw2): ") {
				t.Errorf("error: %v", err)
			}
			switch onFailure {
			case deployer.KeepOnWaveFailure:
				if got, want := statuses(res), "1:web-use1=succeeded 2:web-euw1=succeeded 2:web-usw2=failed"; got != want {
					t.Errorf("statuses %s, want %s", got, want)
				}
				if !strings.HasSuffix(err.Error(), `; the targets deployed before it keep `+region+":"+w.x+` (on_wave_failure = "keep")`) {
					t.Errorf("error: %v", err)
				}
				w.runs(t, "web-use1", false)
				w.runs(t, "web-euw1", false)
				if h := w.history(t, "web-use1"); h != "deploy succeeded" {
					t.Errorf("web-use1's history: %s", h)
				}
			case deployer.RollbackOnWaveFailure:
				if got, want := statuses(res), "1:web-use1=rolled back 2:web-euw1=rolled back 2:web-usw2=failed"; got != want {
					t.Errorf("statuses %s, want %s", got, want)
				}
				if !strings.HasSuffix(err.Error(), "; the targets deployed before it were rolled back") {
					t.Errorf("error: %v", err)
				}
				w.runs(t, "web-use1", true)
				w.runs(t, "web-euw1", true)
				if h := w.history(t, "web-use1"); h != "rollback succeeded, deploy succeeded" {
					t.Errorf("web-use1's history: %s", h)
				}
			}
			w.runs(t, "web-usw2", true)
			if h := w.history(t, "web-usw2"); h != "deploy rolled back" {
				t.Errorf("web-usw2's history: %s", h)
			}
			for _, tg := range res.Targets {
				if tg.Region == "" || tg.Group == "" || tg.AMI == "" {
					t.Errorf("target outcome %+v", tg)
				}
			}
		})
	}
}

// TestRolloutInterruptedBetweenWaves: Ctrl-C during wave 1 lets wave 1
// finish live and healthy and starts no other wave; the same rollout run
// again leaves wave 1 alone and deploys wave 2.
func TestRolloutInterruptedBetweenWaves(t *testing.T) {
	t.Parallel()
	w := newWavesStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	r := w.rollout("")
	r.Events = func(e deployer.Event) {
		w.ev.add(e)
		if e.Step == "wave" && strings.HasPrefix(e.Message, "wave 1 of 2:") {
			once.Do(cancel) // Ctrl-C as wave 1 starts
		}
	}
	res, err := r.Run(ctx)
	if err == nil || res == nil || !res.Interrupted {
		t.Fatalf("interrupted rollout: %v (%+v)\n%s", err, res, w.ev.messages())
	}
	if got, want := statuses(res), "1:web-use1=succeeded 2:web-euw1=not started 2:web-usw2=not started"; got != want {
		t.Errorf("statuses %s, want %s", got, want)
	}
	if want := "interrupted before wave 2 of 2: wave 1 is live and healthy on " + region + ":" + w.x + "; run the same command again to continue"; err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	w.runs(t, "web-use1", false)
	w.runs(t, "web-usw2", true)

	res, err = w.rollout("").Run(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("rerun: %v (%+v)\n%s", err, res, w.ev.messages())
	}
	if got, want := statuses(res), "1:web-use1=already live 2:web-euw1=succeeded 2:web-usw2=succeeded"; got != want {
		t.Errorf("rerun statuses %s, want %s", got, want)
	}
	for _, tg := range waveTargets {
		w.runs(t, tg.name, false)
		if h := w.history(t, tg.name); h != "deploy succeeded" {
			t.Errorf("%s's history after the rerun: %s", tg.name, h)
		}
	}
	// One copy per other region, the first run's found by the rerun.
	for _, name := range []string{"web-use1", "web-usw2"} {
		if n := len(w.prod[name].ImagesTagged(deployer.PromotedFromTag)); n != 1 {
			t.Errorf("%d copies in %s, want 1", n, w.prod[name].Region)
		}
	}
}
