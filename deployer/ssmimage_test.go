package deployer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// Launch templates that name their image by an SSM parameter
// (image_id = "resolve:ssm:/web/ami"), as infrastructure code that leaves
// the image to phoenix writes them.

// imageIDAsWritten is a launch template version's ImageId without
// resolving an alias: what infrastructure code wrote.
func imageIDAsWritten(t *testing.T, f *deploytest.Fixture, template, ref string) string {
	t.Helper()
	out, err := f.Clients.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(template), Versions: []string{ref}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("launch template %s version %s: %v", template, ref, err)
	}
	return aws.ToString(out.LaunchTemplateVersions[0].LaunchTemplateData.ImageId)
}

// A deploy to a group whose launch template names its image by an SSM
// parameter moves only the parameter, and only once the new image has
// passed the gate; the group's reference and the template's versions as
// written stay; a failed deploy leaves the parameter alone; phoenix
// rollback returns it to its previous image. For the group on version 1,
// "$Latest" and "$Default".
func TestDeployMovesTheSSMParameter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, ref string }{{"version", "1"}, {"latest", "$Latest"}, {"default", "$Default"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			allowHoldCopies(f)
			group, param := "ssm-"+tc.name, "/app-"+tc.name+"/ami"
			alias := "resolve:ssm:" + param
			old := f.Image(group+"-1", deploytest.ImageOptions{})
			f.ImageParameter(param, old)
			st := f.Stack(group, alias, deploytest.StackOptions{Desired: 2, Version: tc.ref})
			newAMI := f.Image(group+"-2", deploytest.ImageOptions{})
			bad := f.Image(group+"-3", deploytest.ImageOptions{Health: "fail"})
			ctx := context.Background()

			check := func(what, want string) {
				t.Helper()
				if v := f.ParameterValue(param); v != want {
					t.Errorf("%s: %s is %s, want %s", what, param, v, want)
				}
				if v := aws.ToString(f.Group(group).LaunchTemplate.Version); v != tc.ref {
					t.Errorf("%s: group on %q, want %s", what, v, tc.ref)
				}
				if id := imageIDAsWritten(t, f, st.Template, tc.ref); id != alias {
					t.Errorf("%s: %s of the template has image %s, want %s", what, tc.ref, id, alias)
				}
				if id := imageIDAsWritten(t, f, st.Template, "1"); id != alias {
					t.Errorf("%s: version 1 has image %s, want %s", what, id, alias)
				}
				if tag := f.GroupTag(group, deployer.RefTag); tag != "" {
					t.Errorf("%s: %s tag left: %q", what, deployer.RefTag, tag)
				}
				checkAMIs(t, f, group, want)
			}

			// Success: the parameter moves once the gate has passed.
			var ev events
			d := newDeployer(f, group, nil, &ev)
			var mu sync.Mutex
			var whileRefreshing []string
			d.Events = func(e deployer.Event) {
				ev.add(e)
				if e.Refresh != nil && e.Refresh.Status == "InProgress" {
					mu.Lock()
					whileRefreshing = append(whileRefreshing, f.ParameterValue(param))
					mu.Unlock()
				}
			}
			if _, err := d.Run(ctx, newAMI); err != nil {
				t.Fatalf("deploy: %v\n%s", err, ev.messages())
			}
			for _, v := range whileRefreshing {
				if v != old {
					t.Errorf("during the refresh %s was %s, want %s", param, v, old)
				}
			}
			if len(whileRefreshing) == 0 {
				t.Errorf("no pass saw the refresh in progress\n%s", ev.messages())
			}
			check("after the deploy", newAMI)
			status, err := newDeployer(f, group, nil, nil).Status(ctx)
			if err != nil || status.Parameter == nil || status.Parameter.Name != param || len(status.Parameter.Versions) != 2 ||
				status.Parameter.Versions[0].AMI != newAMI || status.Parameter.Versions[1].AMI != old || status.Template.AMI != newAMI {
				t.Errorf("status after the deploy: %+v %v", status, err)
			}
			scaleOut(t, f, st, 3)
			check("after a scale-out", newAMI)

			// Failure: the parameter never moves.
			ev = events{}
			r := defaultRolling()
			r.MinHealthyPercentage = 50
			if _, err := newDeployer(f, group, r, &ev).Run(ctx, bad); deployer.OutcomeOf(err) != deployer.RolledBack {
				t.Fatalf("deploy of a failing image: %v\n%s", err, ev.messages())
			}
			check("after the failed deploy", newAMI)

			// phoenix rollback: the parameter goes back to the image
			// before it.
			ev = events{}
			if _, err := newDeployer(f, group, nil, &ev).Rollback(ctx); err != nil {
				t.Fatalf("rollback: %v\n%s", err, ev.messages())
			}
			check("after the rollback", old)
			t.Logf("rollback events:\n%s", ev.messages())
		})
	}
}

// A template naming the parameter by a label: the deploy writes a new
// version and moves the label to it.
func TestDeployMovesTheSSMParameterLabel(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	allowHoldCopies(f)
	old := f.Image("ssm-label-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-label/ami", old, "live")
	f.Stack("ssm-label", "resolve:ssm:/app-label/ami:live", deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("ssm-label-2", deploytest.ImageOptions{})
	var ev events
	if _, err := newDeployer(f, "ssm-label", nil, &ev).Run(context.Background(), newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if v := f.ParameterValue("/app-label/ami:live"); v != newAMI {
		t.Errorf("label live names %s, want %s\n%s", v, newAMI, ev.messages())
	}
	checkAMIs(t, f, "ssm-label", newAMI)
}

// Bad input: a template that pins a parameter version, and one whose
// parameter is gone, are refused before any change.
func TestSSMImageRefusals(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("ssm-bad-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-bad/ami", old)
	f.Stack("ssm-bad", "resolve:ssm:/app-bad/ami:1", deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("ssm-bad-2", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	_, err := newDeployer(f, "ssm-bad", nil, nil).Run(context.Background(), newAMI)
	var e *deployer.Error
	if !errors.As(err, &e) || e.Outcome != deployer.Refused || !strings.Contains(err.Error(), "pins version 1 of the SSM parameter") || !strings.Contains(err.Error(), "resolve:ssm:/app-bad/ami:LABEL") {
		t.Errorf("pinned parameter version: %v", err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("the refusal made %d mutating calls: %v", n, f.SB.Calls())
	}
	if _, err := f.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String("/app-bad/ami")}); err != nil {
		t.Fatal(err)
	}
	f.SB.ResetCalls()
	_, err = newDeployer(f, "ssm-bad", nil, nil).Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "SSM parameter /app-bad/ami:1 does not exist") {
		t.Errorf("missing parameter: %v", err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("refusals made %d mutating calls: %v", n, f.SB.Calls())
	}
}

// images prune keeps the AMIs an image parameter names and named in its
// recent versions: phoenix rollback returns there.
func TestPruneKeepsTheParameterHistory(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	unused := f.Image("keep-0", deploytest.ImageOptions{})
	amis := []string{f.Image("keep-1", deploytest.ImageOptions{}), f.Image("keep-2", deploytest.ImageOptions{}), f.Image("keep-3", deploytest.ImageOptions{}), f.Image("keep-4", deploytest.ImageOptions{})}
	f.ImageParameter("/app-keep/ami", amis[0])
	for _, ami := range amis[1:3] {
		out, err := f.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app-keep/ami"), Value: aws.String(ami), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		f.WaitFor("version validated", 30*time.Second, func() (bool, string) {
			_, err := f.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app-keep/ami:" + strconv.FormatInt(out.Version, 10))})
			return err == nil, fmt.Sprint(err)
		})
	}
	f.Stack("keep", "resolve:ssm:/app-keep/ami", deploytest.StackOptions{Desired: 1, TargetGroups: -1})
	res, err := deployer.PruneImages(ctx, f.Clients, deployer.PruneOptions{Region: f.Region, Family: "keep", Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{}
	for _, im := range res.Images {
		if im.Action == "keep" {
			kept[im.ID] = strings.Join(im.Reasons, "; ")
		}
	}
	if _, ok := kept[unused]; ok {
		t.Errorf("%s, which nothing uses, is kept: %q", unused, kept[unused])
	}
	for _, ami := range amis[:3] {
		if !strings.Contains(kept[ami], "of SSM parameter /app-keep/ami") {
			t.Errorf("%s is not kept for the parameter: %q", ami, kept[ami])
		}
	}
	if _, ok := kept[amis[3]]; !ok {
		t.Errorf("the newest image %s is not kept", amis[3])
	}
	if len(kept) != 4 {
		t.Errorf("kept %v", kept)
	}
}

// Blue-green colours sharing a template that names its image by an SSM
// parameter: the switch moves the parameter once green is live and
// healthy; a failed deploy leaves it; a rollback to the warm colour moves
// it back first, so the colour taking the traffic back scales out on its
// own image. The colours' references and the template stay as written.
func TestBlueGreenMovesTheSSMParameter(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	allowHoldCopies(f)
	ctx := context.Background()
	old := f.Image("bgssm-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-bg/ami", old)
	bg := f.BlueGreen("bgssm", "resolve:ssm:/app-bg/ami", deploytest.BlueGreenOptions{Desired: 2})
	newAMI := f.Image("bgssm-2", deploytest.ImageOptions{})
	bad := f.Image("bgssm-3", deploytest.ImageOptions{Health: "fail"})
	check := func(what, want string) {
		t.Helper()
		if v := f.ParameterValue("/app-bg/ami"); v != want {
			t.Errorf("%s: /app-bg/ami is %s, want %s", what, v, want)
		}
		for _, g := range []string{bg.Blue, bg.Green} {
			if v := aws.ToString(f.Group(g).LaunchTemplate.Version); v != "1" {
				t.Errorf("%s: %s on %q, want 1", what, g, v)
			}
			if tag := f.GroupTag(g, deployer.RefTag); tag != "" {
				t.Errorf("%s: %s tag left on %s: %q", what, deployer.RefTag, g, tag)
			}
		}
		if id := imageIDAsWritten(t, f, bg.Template, "1"); id != "resolve:ssm:/app-bg/ami" {
			t.Errorf("%s: version 1 has image %s", what, id)
		}
	}

	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{KeepOldFor: time.Hour}, &ev)
	if _, err := d.Run(ctx, newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	check("after the switch", newAMI)
	checkAMIs(t, f, bg.Green, newAMI)
	if w := f.Weights(bg); w[bg.GreenTG] != 100 {
		t.Errorf("weights after the switch: %v", w)
	}

	ev = events{}
	d = newBlueGreen(f, bg, &deployer.BlueGreen{KeepOldFor: time.Hour}, &ev)
	if _, err := d.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.messages())
	}
	check("after the rollback to warm blue", old)
	if w := f.Weights(bg); w[bg.BlueTG] != 100 {
		t.Errorf("weights after the rollback: %v", w)
	}
	msgs := ev.messages()
	if i, j := strings.Index(msgs, "wrote "+old+" to SSM parameter /app-bg/ami"), strings.Index(msgs, "moved all traffic back"); i < 0 || j < 0 || i > j {
		t.Errorf("the parameter did not move back before the traffic:\n%s", msgs)
	}
	checkAMIs(t, f, bg.Blue, old)

	ev = events{}
	d = newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	d.HealthTimeout = 5 * time.Second
	if _, err := d.Run(ctx, bad); deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("deploy of a failing image: %v\n%s", err, ev.messages())
	}
	check("after the failed deploy", old)
	t.Logf("events of the failed deploy:\n%s", ev.messages())
}

// Ctrl-C while a deploy to a group on an image parameter refreshes: the
// refresh is rolled back, the parameter was never moved, and phoenix
// rollback puts the group back on the version that names the parameter.
func TestSSMGroupInterruptedThenRolledBack(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("ssm-int-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-int/ami", old)
	f.Stack("ssm-int", "resolve:ssm:/app-int/ami", deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("ssm-int-2", deploytest.ImageOptions{})
	r := defaultRolling()
	r.MinHealthyPercentage, r.Checkpoints, r.CheckpointDelay = 50, []int{50, 100}, 5*time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	var ev events
	d := newDeployer(f, "ssm-int", r, &ev)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Refresh != nil && strings.HasPrefix(e.Refresh.Reason, "Checkpoint") {
			cancel()
		}
	}
	if _, err := d.Run(ctx, newAMI); err == nil || !strings.Contains(err.Error(), "rolling back instance refresh") {
		t.Fatalf("interrupted deploy: %v\n%s", err, ev.messages())
	}
	if v := f.ParameterValue("/app-int/ami"); v != old {
		t.Errorf("interrupted: /app-int/ami is %s, want %s", v, old)
	}
	if tag := f.GroupTag("ssm-int", deployer.RefTag); tag != "1;1" {
		t.Errorf("interrupted: %s tag %q, want 1;1", deployer.RefTag, tag)
	}
	var rb events
	if _, err := newDeployer(f, "ssm-int", r, &rb).Rollback(context.Background()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb.messages())
	}
	if v := aws.ToString(f.Group("ssm-int").LaunchTemplate.Version); v != "1" {
		t.Errorf("after the rollback the group is on %q, want 1\n%s", v, rb.messages())
	}
	if v := f.ParameterValue("/app-int/ami"); v != old {
		t.Errorf("after the rollback /app-int/ami is %s, want %s", v, old)
	}
	if tag := f.GroupTag("ssm-int", deployer.RefTag); tag != "" {
		t.Errorf("%s tag left: %q", deployer.RefTag, tag)
	}
	checkAMIs(t, f, "ssm-int", old)
}

// A template whose parameter has become plain text (deleted and made
// again without aws:ec2:image) is refused before any change.
func TestSSMTextParameterRefused(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("ssm-text-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-text/ami", old)
	f.Stack("ssm-text", "resolve:ssm:/app-text/ami", deploytest.StackOptions{Desired: 1, TargetGroups: -1})
	if _, err := f.Clients.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/app-text/ami")}); err != nil {
		t.Fatal(err)
	}
	// SSM makes a deleted name wait before it can be created again.
	f.WaitFor("/app-text/ami made again as text", 30*time.Second, func() (bool, string) {
		_, err := f.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app-text/ami"), Value: aws.String(old), Type: ssmtypes.ParameterTypeString, DataType: aws.String("text")})
		return err == nil, fmt.Sprint(err)
	})
	newAMI := f.Image("ssm-text-2", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	_, err := newDeployer(f, "ssm-text", nil, nil).Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), `SSM parameter /app-text/ami has data type "text", not aws:ec2:image`) {
		t.Errorf("text parameter: %v", err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("the refusal made %d mutating calls", n)
	}
}

// Ctrl-C half-way through a blue-green switch on colours whose template
// names its image by an SSM parameter: the traffic goes back to blue, the
// parameter never moved, and the same deploy run again finishes the job,
// moves the parameter and puts both colours back on their version.
func TestBlueGreenSSMInterruptedThenFinished(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	allowHoldCopies(f)
	ctx := context.Background()
	old := f.Image("bgint-1", deploytest.ImageOptions{})
	f.ImageParameter("/app-bgint/ami", old)
	bg := f.BlueGreen("bgint", "resolve:ssm:/app-bgint/ami", deploytest.BlueGreenOptions{Desired: 2})
	newAMI := f.Image("bgint-2", deploytest.ImageOptions{})

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: time.Minute}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && e.Step == "switch" {
			cancel() // Ctrl-C while half the traffic is on green
		}
	}
	if _, err := d.Run(cctx, newAMI); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted deploy: %v\n%s", err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights after the interruption: %v", w)
	}
	if v := f.ParameterValue("/app-bgint/ami"); v != old {
		t.Errorf("interrupted: /app-bgint/ami is %s, want %s", v, old)
	}

	ev = events{}
	if _, err := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}}, &ev).Run(ctx, newAMI); err != nil {
		t.Fatalf("the same deploy again: %v\n%s", err, ev.messages())
	}
	if v := f.ParameterValue("/app-bgint/ami"); v != newAMI {
		t.Errorf("after the rerun /app-bgint/ami is %s, want %s", v, newAMI)
	}
	for _, g := range []string{bg.Blue, bg.Green} {
		if v := aws.ToString(f.Group(g).LaunchTemplate.Version); v != "1" {
			t.Errorf("after the rerun %s is on %q, want 1", g, v)
		}
		if tag := f.GroupTag(g, deployer.RefTag); tag != "" {
			t.Errorf("%s tag left on %s: %q", deployer.RefTag, g, tag)
		}
	}
	checkAMIs(t, f, bg.Green, newAMI)
}

// TestDeployAMIFromSSMParameter: the AMI to deploy may be given as
// resolve:ssm:NAME[:SELECTOR], as a pipeline does when the bake published
// it to a parameter of its own; the deploy reads it once, says what it
// names, and deploys that AMI. A missing parameter, and one that is not an
// aws:ec2:image, are refused before any change.
func TestDeployAMIFromSSMParameter(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("cand-1", deploytest.ImageOptions{})
	f.Stack("cand", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("cand-2", deploytest.ImageOptions{})
	f.ImageParameter("/cand/candidate", newAMI, "built")
	if _, err := f.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/cand/notes"), Value: aws.String(newAMI), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Clients.SSM.DeleteParameters(context.Background(), &ssm.DeleteParametersInput{Names: []string{"/cand/candidate", "/cand/notes"}})
	})

	f.SB.ResetCalls()
	for _, tc := range []struct{ ami, want string }{
		{"resolve:ssm:/cand/missing", "AMI resolve:ssm:/cand/missing: SSM parameter /cand/missing does not exist in " + region},
		{"resolve:ssm:/cand/candidate:missing", "AMI resolve:ssm:/cand/candidate:missing: SSM parameter /cand/candidate:missing does not exist in " + region},
		{"resolve:ssm:/cand/notes", `AMI resolve:ssm:/cand/notes: SSM parameter /cand/notes has data type "text", not aws:ec2:image`},
		{"resolve:ssm:", `AMI "resolve:ssm:" names no SSM parameter`},
	} {
		_, err := newDeployer(f, "cand", nil, nil).Run(ctx, tc.ami)
		if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: %v, want refused with %q", tc.ami, err, tc.want)
		}
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("the refusals made %d mutating calls", n)
	}

	var ev events
	res, err := newDeployer(f, "cand", nil, &ev).Run(ctx, "resolve:ssm:/cand/candidate:built")
	if err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	if res.AMI != newAMI || !strings.Contains(ev.messages(), "resolve:ssm:/cand/candidate:built names "+newAMI) {
		t.Errorf("result AMI %s, events:\n%s", res.AMI, ev.messages())
	}
	for id, ami := range f.InstanceAMIs("cand") {
		if ami != newAMI {
			t.Errorf("%s runs %s, want %s", id, ami, newAMI)
		}
	}
}

// allowHoldCopies lets the leak check pass the launch template versions
// a deploy to a group whose version names its image by an SSM parameter
// leaves behind that Auto Scaling never launched from: the copies with
// the AMI written out that phoenix holds the group on while it deploys.
// The leak check found them (issue #22); phoenix still keeps them.
func allowHoldCopies(f *deploytest.Fixture) {
	f.Allow(func(r sandbox.Resource) bool { return r.Type == "launch-template-version" })
}
