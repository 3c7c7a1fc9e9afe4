package deployer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// runInstance starts a plain instance of ami and terminates it when the
// test ends.
func runInstance(t *testing.T, f *deploytest.Fixture, ami string) string {
	t.Helper()
	out, err := f.Clients.EC2.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(f.Subnets[0])})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	t.Cleanup(func() {
		f.Clients.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	})
	f.WaitFor(id+" running", 30*time.Second, func() (bool, string) {
		d, err := f.Clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil || len(d.Reservations) == 0 {
			return false, fmt.Sprint(err)
		}
		st := d.Reservations[0].Instances[0].State.Name
		return st == ec2types.InstanceStateNameRunning, string(st)
	})
	return id
}

// decisions is a pruning's images as "id action: reasons".
func decisions(res *deployer.PruneResult) []string {
	var out []string
	for _, im := range res.Images {
		out = append(out, fmt.Sprintf("%s %s: %s", im.Name, im.Action, strings.Join(im.Reasons, "; ")))
	}
	return out
}

func TestPruneKeepsNewestAndImagesInUse(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	img := func(name string) string { return f.Image(name, deploytest.ImageOptions{}) }
	// The family "web", oldest first, with a look-alike and another
	// family in between.
	rollback := img("web-1")
	pinned := img("web-2")
	running := img("web_3")
	webapp := img("webapp-1")
	tagged := img("golden-4")
	if _, err := f.Clients.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{tagged}, Tags: []ec2types.Tag{{Key: aws.String(deployer.FamilyTag), Value: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}
	latest := img("web.5")
	api := img("api-1")
	second := img("web/6")
	newest := img("web-7")

	// Group "web" stays pinned to version 1 (web-2) while the template's
	// $Latest moves on to web.5.
	web := f.Stack("web", pinned, deploytest.StackOptions{Desired: 0, TargetGroups: -1})
	if _, err := f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(web.Template), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(latest)}}); err != nil {
		t.Fatal(err)
	}
	// Group "shop" was deployed from web-1 to web-7 by phoenix: web-1 is
	// what phoenix rollback returns to, though no instance runs it.
	shop := f.Stack("shop", rollback, deploytest.StackOptions{Desired: 1})
	if _, err := newDeployer(f, "shop", nil, nil).Run(ctx, newest); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	var shopInstance string
	for id := range f.InstanceAMIs("shop") {
		shopInstance = id
	}
	instance := runInstance(t, f, running)

	before := f.OwnedImages()
	want := []string{
		"web-7 keep: newest 2; in use by auto scaling group shop (launch template " + shop.Template + " version 2); running on " + shopInstance,
		"web/6 keep: newest 2",
		"web.5 deregister: ",
		"golden-4 deregister: ",
		"web_3 keep: running on " + instance,
		"web-2 keep: in use by auto scaling group web (launch template " + web.Template + " version 1)",
		"web-1 keep: rollback target of auto scaling group shop (launch template " + shop.Template + " version 2 replaced version 1)",
	}
	opts := deployer.PruneOptions{Region: region, Family: "web", Keep: 2}

	t.Run("refusals", func(t *testing.T) {
		for _, o := range []deployer.PruneOptions{{Family: "web"}, {Family: "", Keep: 2}, {Family: "*", Keep: 2}, {Family: "web", Keep: -1}} {
			f.SB.ResetCalls()
			_, err := deployer.PruneImages(ctx, f.Clients, o)
			var se *deployer.SettingError
			if deployer.OutcomeOf(err) != deployer.Refused || !errors.As(err, &se) {
				t.Errorf("%+v: %v, want a refusal naming the setting", o, err)
			}
			if m := f.Mutating(); m != 0 {
				t.Errorf("%+v: %d mutating calls", o, m)
			}
		}
	})

	f.SB.ResetCalls()
	dry := opts
	dry.DryRun = true
	res, err := deployer.PruneImages(ctx, f.Clients, dry)
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("dry run made %d mutating calls: %v", m, f.SB.Calls())
	}
	if got := decisions(res); !reflect.DeepEqual(got, want) {
		t.Errorf("dry run decided\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Kept != 5 || res.ToDeregister != 2 || res.Deregistered != 0 || res.SnapshotsDeleted != 0 {
		t.Errorf("dry run summary %+v", res.PruneSummary)
	}
	if after := f.OwnedImages(); !reflect.DeepEqual(after, before) {
		t.Errorf("dry run changed the images: %v, was %v", after, before)
	}

	res, err = deployer.PruneImages(ctx, f.Clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := decisions(res); !reflect.DeepEqual(got, want) {
		t.Errorf("prune decided\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	after := f.OwnedImages()
	snaps := f.OwnedSnapshots()
	for _, gone := range []string{latest, tagged} {
		if _, ok := after[gone]; ok {
			t.Errorf("%s is still registered", gone)
		}
		if len(before[gone]) == 0 {
			t.Errorf("%s had no snapshots to delete", gone)
		}
		for _, s := range before[gone] {
			if snaps[s] {
				t.Errorf("snapshot %s of %s is left", s, gone)
			}
		}
	}
	for _, kept := range []string{rollback, pinned, running, webapp, api, second, newest} {
		if !reflect.DeepEqual(after[kept], before[kept]) {
			t.Errorf("kept image %s changed: %v, was %v", kept, after[kept], before[kept])
		}
		for _, s := range before[kept] {
			if !snaps[s] {
				t.Errorf("snapshot %s of kept image %s is gone", s, kept)
			}
		}
	}
	if res.Deregistered != 2 || res.SnapshotsDeleted != len(before[latest])+len(before[tagged]) || res.Failed != 0 {
		t.Errorf("summary %+v", res.PruneSummary)
	}

	// Again: nothing left to prune, nothing changed.
	f.SB.ResetCalls()
	res, err = deployer.PruneImages(ctx, f.Clients, opts)
	if err != nil || res.ToDeregister != 0 || res.Kept != 5 {
		t.Errorf("second prune: %v %+v", err, res.PruneSummary)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("second prune made %d mutating calls", m)
	}
}

func TestPruneFamilyPattern(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	for _, name := range []string{"web-1", "webapp-1", "web-2", "webapp-2"} {
		f.Image(name, deploytest.ImageOptions{})
	}
	for family, want := range map[string][]string{
		"web":     {"web-2", "web-1"},
		"webapp":  {"webapp-2", "webapp-1"},
		"web*":    {"webapp-2", "web-2", "webapp-1", "web-1"},
		"web?-*":  nil,
		"web-?":   {"web-2", "web-1"},
		"*app-1":  {"webapp-1"},
		"web-1":   {"web-1"},
		"we":      nil,
		"webapp-": nil,
	} {
		res, err := deployer.PruneImages(ctx, f.Clients, deployer.PruneOptions{Family: family, Keep: 10, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, im := range res.Images {
			got = append(got, im.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("family %q matches %v, want %v", family, got, want)
		}
	}
}

func TestPrunePartialFailureGoesOn(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	var ids []string
	for _, name := range []string{"svc-1", "svc-2", "svc-3"} {
		ids = append(ids, f.Image(name, deploytest.ImageOptions{}))
	}
	before := f.OwnedImages()
	// The first DeregisterImage fails every attempt the SDK's standard
	// retryer makes (3); the next succeeds.
	if _, err := f.SB.AddFault(sandbox.Fault{Service: "ec2", Action: "DeregisterImage", Kind: "error500", Probability: 1, Count: 3}); err != nil {
		t.Fatal(err)
	}
	res, err := deployer.PruneImages(ctx, f.Clients, deployer.PruneOptions{Family: "svc", Keep: 1})
	if err == nil || deployer.OutcomeOf(err) == deployer.Refused || !strings.Contains(err.Error(), "1 of 2 images failed") || !strings.Contains(err.Error(), ids[0]) {
		t.Fatalf("err = %v", err)
	}
	if res.Failed != 1 || res.Deregistered != 1 || !strings.Contains(res.Images[2].Error, "deregistering") || !res.Images[1].Deregistered {
		t.Errorf("result %+v %+v", res.PruneSummary, res.Images)
	}
	after := f.OwnedImages()
	if _, ok := after[ids[0]]; !ok {
		t.Errorf("%s went though its deregistration failed", ids[0])
	}
	if _, ok := after[ids[1]]; ok {
		t.Errorf("%s was not deregistered after the first failed", ids[1])
	}
	snaps := f.OwnedSnapshots()
	for _, s := range before[ids[1]] {
		if snaps[s] {
			t.Errorf("snapshot %s of %s left", s, ids[1])
		}
	}
	for _, s := range before[ids[0]] {
		if !snaps[s] {
			t.Errorf("snapshot %s of the image that failed is gone", s)
		}
	}
}

// TestPruneKeepsTheTargetOfARefresh: an unfinished instance refresh
// keeps the image it moves to, though no instance runs it yet.
func TestPruneKeepsTheTargetOfARefresh(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("app-1", deploytest.ImageOptions{})
	st := f.Stack("app", old, deploytest.StackOptions{Desired: 0, TargetGroups: -1})
	next := f.Image("app-2", deploytest.ImageOptions{})
	f.Image("app-3", deploytest.ImageOptions{})
	if _, err := f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(st.Template), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(next)}}); err != nil {
		t.Fatal(err)
	}
	// A refresh of an empty group bakes for as long as it is told to.
	rf, err := f.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("app"),
		DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template), Version: aws.String("$Latest")}},
		Preferences:          &astypes.RefreshPreferences{BakeTime: aws.Int32(172800)}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(rf.InstanceRefreshId)
	refreshStatus := func(want astypes.InstanceRefreshStatus) {
		f.WaitFor("refresh "+string(want), 30*time.Second, func() (bool, string) {
			out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("app")})
			if err != nil || len(out.InstanceRefreshes) == 0 {
				return false, fmt.Sprint(err)
			}
			return out.InstanceRefreshes[0].Status == want, string(out.InstanceRefreshes[0].Status)
		})
	}
	refreshStatus(astypes.InstanceRefreshStatusBaking)
	opts := deployer.PruneOptions{Family: "app", Keep: 1, DryRun: true}
	res, err := deployer.PruneImages(ctx, f.Clients, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app-3 keep: newest 1",
		"app-2 keep: target of instance refresh " + id + " of auto scaling group app (launch template " + st.Template + " version 2)",
		"app-1 keep: in use by auto scaling group app (launch template " + st.Template + " version 1)",
	}
	if got := decisions(res); !reflect.DeepEqual(got, want) {
		t.Errorf("during the refresh\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Once it is cancelled, app-2 is just an old image.
	if _, err := f.Clients.AutoScaling.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	refreshStatus(astypes.InstanceRefreshStatusCancelled)
	if res, err = deployer.PruneImages(ctx, f.Clients, opts); err != nil {
		t.Fatal(err)
	}
	want[1] = "app-2 deregister: "
	if got := decisions(res); !reflect.DeepEqual(got, want) {
		t.Errorf("after the refresh\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPruneFindsSnapshotsLeftBehind: EC2 may refuse DeleteSnapshot for a
// while after DeregisterImage (InvalidSnapshot.InUse). A prune retries;
// one that gives up reports the snapshot, and the next prune of the family
// finds it again and deletes it. Not parallel: it shortens the retry.
func TestPruneFindsSnapshotsLeftBehind(t *testing.T) {
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("batch-1", deploytest.ImageOptions{})
	f.Image("batch-2", deploytest.ImageOptions{})
	snaps := f.OwnedImages()[old]
	if len(snaps) == 0 {
		t.Fatal("no snapshots")
	}
	// The snapshots stay in use for 3 s (300 s at the tests' time scale);
	// the prune retries for 300 ms.
	if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"snapshot_in_use": 300}}); err != nil {
		t.Fatal(err)
	}
	deployer.SetSnapshotInUseLimitForTest(t, 300*time.Millisecond)
	prune := func(dry bool) (*deployer.PruneResult, error) {
		return deployer.PruneImages(ctx, f.Clients, deployer.PruneOptions{Family: "batch", Keep: 1, DryRun: dry})
	}
	res, err := prune(false)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 images failed") || !strings.Contains(err.Error(), "InvalidSnapshot.InUse") ||
		!strings.Contains(err.Error(), "the next prune of batch deletes it") {
		t.Fatalf("err = %v", err)
	}
	if res.Deregistered != 1 || res.SnapshotsDeleted != 0 || res.Failed != 1 || !res.Images[1].Deregistered {
		t.Errorf("first prune: %+v %+v", res.PruneSummary, res.Images)
	}
	if _, ok := f.OwnedImages()[old]; ok {
		t.Errorf("%s is still registered", old)
	}
	left := f.OwnedSnapshots()
	for _, s := range snaps {
		if !left[s] {
			t.Fatalf("snapshot %s is gone, though EC2 said it was in use", s)
		}
	}
	// Still in use: the next prune finds them and fails again, saying so.
	res, err = prune(false)
	if err == nil || !strings.Contains(err.Error(), "snapshots earlier prunes left behind failed") || res.LeftBehind != len(snaps) {
		t.Fatalf("second prune: %v %+v", err, res.PruneSummary)
	}
	// A dry run lists them and changes nothing.
	res, err = prune(true)
	if err != nil || res.LeftBehind != len(snaps) || res.LeftBehindSnapshots[0].Image != old || res.LeftBehindSnapshots[0].Deleted {
		t.Fatalf("dry run: %v %+v %+v", err, res.PruneSummary, res.LeftBehindSnapshots)
	}
	// Once EC2 lets go of them, the next prune deletes them.
	f.WaitFor("the snapshots to be deletable", 10*time.Second, func() (bool, string) {
		res, err = prune(false)
		return err == nil, fmt.Sprint(err)
	})
	if res.LeftBehind != len(snaps) || res.SnapshotsDeleted != len(snaps) || res.Deregistered != 0 || !res.LeftBehindSnapshots[0].Deleted {
		t.Errorf("last prune: %+v %+v", res.PruneSummary, res.LeftBehindSnapshots)
	}
	left = f.OwnedSnapshots()
	for _, s := range snaps {
		if left[s] {
			t.Errorf("snapshot %s is still there", s)
		}
	}
	if res, err = prune(false); err != nil || res.LeftBehind != 0 {
		t.Errorf("a prune after: %v %+v", err, res.PruneSummary)
	}
}
