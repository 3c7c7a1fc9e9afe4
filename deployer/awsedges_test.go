package deployer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// The edges of real AWS a new user meets first: a customer managed key
// that Auto Scaling's service-linked role may not use, groups on $Latest
// or $Default (Terraform's usual pattern), and groups on EC2 health
// checks (Auto Scaling's default).

var autoScalingRole = deploytest.AutoScalingRole

// allowRole puts AWS's documented key policy for Auto Scaling's role on
// key, next to the default statement.
func allowRole(t *testing.T, f *deploytest.Fixture, key string) {
	t.Helper()
	if _, err := kms.NewFromConfig(f.Config).PutKeyPolicy(context.Background(), &kms.PutKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default"), Policy: aws.String(deploytest.AutoScalingKeyPolicy())}); err != nil {
		t.Fatal(err)
	}
}

// grantsTo lists key's grants to Auto Scaling's role.
func grantsTo(t *testing.T, f *deploytest.Fixture, key string) []string {
	t.Helper()
	out, err := kms.NewFromConfig(f.Config).ListGrants(context.Background(), &kms.ListGrantsInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range out.Grants {
		if aws.ToString(g.GranteePrincipal) == autoScalingRole {
			ids = append(ids, aws.ToString(g.GrantId)+" "+aws.ToString(g.Name))
		}
	}
	return ids
}

func checkAMIs(t *testing.T, f *deploytest.Fixture, group, want string) {
	t.Helper()
	for id, ami := range f.InstanceAMIs(group) {
		if ami != want {
			t.Errorf("%s of %s runs %s, want %s", id, group, ami, want)
		}
	}
}

// An AMI encrypted under a customer key whose default policy gives Auto
// Scaling's role nothing is refused before any change, with the fix; the
// same deploy goes through once the key policy names the role.
func TestDeployRefusesKeyAutoScalingCannotUse(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	key := f.KMSKey("alias/refuse-images")
	old := f.Image("refuse-1", deploytest.ImageOptions{})
	f.Stack("refuse", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("refuse-2", deploytest.ImageOptions{KMSKey: key})

	f.SB.ResetCalls()
	var ev events
	_, err := newDeployer(f, "refuse", nil, &ev).Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	for _, want := range []string{key + " (alias/refuse-images)", autoScalingRole, "Client.InternalError: Client error on launch",
		"aws kms create-grant --region " + region + " --key-id " + key + " --grantee-principal " + autoScalingRole + " --operations Encrypt Decrypt ReEncryptFrom ReEncryptTo GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant",
		`"kms:GrantIsForAWSResource": true`, "grant_kms = true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("a refused deploy made %d mutating calls: %v", n, f.SB.Calls())
	}
	checkAMIs(t, f, "refuse", old)

	allowRole(t, f, key)
	res, err := newDeployer(f, "refuse", nil, &ev).Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("deploy with the key policy: %v\n%s", err, ev.messages())
	}
	checkAMIs(t, f, "refuse", newAMI)
	if g := grantsTo(t, f, key); len(g) != 0 {
		t.Errorf("grants made though the key policy allows the role: %v", g)
	}
	_ = res
}

// grant_kms creates the grant AWS documents for the role, once: a second
// deploy under the same key makes no second grant.
func TestGrantKMSCreatesTheGrantOnce(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	key := f.KMSKey("alias/grant-images")
	old := f.Image("grant-1", deploytest.ImageOptions{})
	f.Stack("grant", old, deploytest.StackOptions{Desired: 2})
	for i, ami := range []string{f.Image("grant-2", deploytest.ImageOptions{KMSKey: key}), f.Image("grant-3", deploytest.ImageOptions{KMSKey: key})} {
		var ev events
		d := newDeployer(f, "grant", nil, &ev)
		d.GrantKMS = true
		if _, err := d.Run(context.Background(), ami); err != nil {
			t.Fatalf("deploy %d: %v\n%s", i+1, err, ev.messages())
		}
		checkAMIs(t, f, "grant", ami)
		granted := strings.Count(ev.messages(), "granted Auto Scaling's role")
		if want := map[int]int{0: 1, 1: 0}[i]; granted != want {
			t.Errorf("deploy %d: %d grant events, want %d\n%s", i+1, granted, want, ev.messages())
		}
		if g := grantsTo(t, f, key); len(g) != 1 || !strings.HasSuffix(g[0], " "+deployer.GrantName) {
			t.Errorf("after deploy %d the role has grants %v, want one named %s", i+1, g, deployer.GrantName)
		}
	}
}

// revokeOnceGranted collects a deploy's events and, when the deploy has
// made its grant (the key check has passed), revokes every grant on key:
// the launches that follow fail as they would on AWS.
func revokeOnceGranted(t *testing.T, f *deploytest.Fixture, key string, ev *events) func(deployer.Event) {
	k := kms.NewFromConfig(f.Config)
	return func(e deployer.Event) {
		ev.add(e)
		if e.Step != "kms" || e.Action != "granted" {
			return
		}
		out, err := k.ListGrants(context.Background(), &kms.ListGrantsInput{KeyId: aws.String(key)})
		if err != nil {
			t.Error(err)
			return
		}
		for _, g := range out.Grants {
			if _, err := k.RevokeGrant(context.Background(), &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: g.GrantId}); err != nil {
				t.Error(err)
			}
		}
	}
}

// When launches fail anyway (here the grant is revoked once the check has
// passed), the failure quotes the scaling activity's cause instead of a
// bare "failed", and the group ends where it was.
func TestFailedLaunchesAreQuoted(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	key := f.KMSKey("alias/revoked-images")
	old := f.Image("revoked-1", deploytest.ImageOptions{})
	f.Stack("revoked", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("revoked-2", deploytest.ImageOptions{KMSKey: key})
	var ev events
	d := newDeployer(f, "revoked", nil, &ev)
	d.GrantKMS = true
	d.Events = revokeOnceGranted(t, f, key, &ev)
	res, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v (%+v)\n%s", deployer.OutcomeOf(err), err, res, ev.messages())
	}
	if !strings.Contains(err.Error(), "Client.InternalError: Client error on launch") || !strings.Contains(err.Error(), "failed launches") {
		t.Errorf("failure does not quote the launch's cause: %v", err)
	}
	checkAMIs(t, f, "revoked", old)
}

// Blue-green: a colour whose launches fail does not wait for its
// health_timeout: the deploy fails quoting the cause, and blue keeps all
// the traffic.
func TestBlueGreenColourThatCannotLaunchFailsWithTheCause(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	key := f.KMSKey("alias/bg-revoked")
	old := f.Image("bgk-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("bgk", old, deploytest.BlueGreenOptions{Desired: 2})
	newAMI := f.Image("bgk-2", deploytest.ImageOptions{KMSKey: key})
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	d.GrantKMS = true
	d.HealthTimeout = 10 * time.Minute
	d.Events = revokeOnceGranted(t, f, key, &ev)
	start := time.Now()
	_, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	if !strings.Contains(err.Error(), "does not come up") || !strings.Contains(err.Error(), "Client.InternalError: Client error on launch") {
		t.Errorf("failure does not quote the launch's cause: %v", err)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("the deploy took %s: it waited for the health timeout", took)
	}
	if w := f.Weights(bg); w[bg.BlueTG] == 0 || w[bg.GreenTG] != 0 {
		t.Errorf("weights after the failure: %v", w)
	}
}

// Terraform's usual pattern: a launch template and a group on "$Latest"
// with EC2 health checks. After a successful deploy the group is on
// $Latest again and $Latest is the new image; while the deploy ran, the
// group was held on a numbered version from before the new one existed.
func TestLatestGroupDeploySucceedsAndStaysOnLatest(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"$Latest", "$Default"} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			name := map[string]string{"$Latest": "tf-latest", "$Default": "tf-default"}[ref]
			old := f.Image(name+"-1", deploytest.ImageOptions{})
			st := f.Stack(name, old, deploytest.StackOptions{Desired: 2, Version: ref, HealthCheckType: "EC2"})
			newAMI := f.Image(name+"-2", deploytest.ImageOptions{})
			var ev events
			d := newDeployer(f, name, nil, &ev)
			var mu sync.Mutex
			var whenCreated string
			d.Events = func(e deployer.Event) {
				ev.add(e)
				if e.Step == "launch-template" && strings.HasPrefix(e.Action, "created launch template") {
					mu.Lock()
					whenCreated = aws.ToString(f.Group(name).LaunchTemplate.Version)
					mu.Unlock()
				}
			}
			if _, err := d.Run(context.Background(), newAMI); err != nil {
				t.Fatalf("deploy: %v\n%s", err, ev.messages())
			}
			if whenCreated != "1" {
				t.Errorf("when the new version was created the group was on %q, want held on 1", whenCreated)
			}
			if v := aws.ToString(f.Group(name).LaunchTemplate.Version); v != ref {
				t.Errorf("group on %q after the deploy, want %s", v, ref)
			}
			if tag := f.GroupTag(name, deployer.RefTag); tag != "" {
				t.Errorf("%s tag left: %q", deployer.RefTag, tag)
			}
			if n, ami := f.TemplateVersion(st.Template, ref); ami != newAMI || n != 2 {
				t.Errorf("%s is version %d with %s, want 2 with %s", ref, n, ami, newAMI)
			}
			checkAMIs(t, f, name, newAMI)
			t.Logf("events:\n%s", ev.messages())
		})
	}
}

// A failed deploy to a group on $Latest: the group is back on $Latest,
// $Latest launches the old image, and a scale-out launches the old image.
func TestLatestGroupFailedDeployLeavesNoUnvettedImage(t *testing.T) {
	t.Parallel()
	for _, ref := range []string{"$Latest", "$Default"} {
		t.Run(ref, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			name := map[string]string{"$Latest": "tf-fail-latest", "$Default": "tf-fail-default"}[ref]
			old := f.Image(name+"-1", deploytest.ImageOptions{})
			st := f.Stack(name, old, deploytest.StackOptions{Desired: 2, Version: ref, HealthCheckType: "EC2"})
			bad := f.Image(name+"-2", deploytest.ImageOptions{Health: "fail"})
			r := defaultRolling()
			r.MinHealthyPercentage = 50
			var ev events
			_, err := newDeployer(f, name, r, &ev).Run(context.Background(), bad)
			if deployer.OutcomeOf(err) != deployer.RolledBack {
				t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
			}
			if v := aws.ToString(f.Group(name).LaunchTemplate.Version); v != ref {
				t.Errorf("group on %q after the rollback, want %s", v, ref)
			}
			if tag := f.GroupTag(name, deployer.RefTag); tag != "" {
				t.Errorf("%s tag left: %q", deployer.RefTag, tag)
			}
			if _, ami := f.TemplateVersion(st.Template, ref); ami != old {
				t.Errorf("%s launches %s after the rollback, want %s", ref, ami, old)
			}
			scaleOut(t, f, st, 3)
			checkAMIs(t, f, name, old)
		})
	}
}

// scaleOut sets the group's desired capacity and waits until it has that
// many healthy instances.
func scaleOut(t *testing.T, f *deploytest.Fixture, st *deploytest.Stack, n int) {
	t.Helper()
	if _, err := f.Clients.AutoScaling.SetDesiredCapacity(context.Background(), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(st.Name), DesiredCapacity: aws.Int32(int32(n))}); err != nil {
		t.Fatal(err)
	}
	f.WaitHealthy(st, n)
}

// Ctrl-C during a deploy to a $Latest group stops the refresh (left
// alone it would end with the group on the unvetted image); the group
// stays held on its old version, and phoenix rollback puts $Latest back.
func TestLatestGroupInterruptedThenRolledBack(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("tf-int-1", deploytest.ImageOptions{})
	st := f.Stack("tf-int", old, deploytest.StackOptions{Desired: 2, Version: "$Latest", HealthCheckType: "EC2"})
	newAMI := f.Image("tf-int-2", deploytest.ImageOptions{})
	r := defaultRolling()
	r.MinHealthyPercentage, r.Checkpoints, r.CheckpointDelay = 50, []int{50, 100}, 5*time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	var ev events
	d := newDeployer(f, "tf-int", r, &ev)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Refresh != nil && strings.HasPrefix(e.Refresh.Reason, "Checkpoint") {
			cancel()
		}
	}
	_, err := d.Run(ctx, newAMI)
	if err == nil || !strings.Contains(err.Error(), "rolling back instance refresh") {
		t.Fatalf("interrupted deploy: %v\n%s", err, ev.messages())
	}
	if v := aws.ToString(f.Group("tf-int").LaunchTemplate.Version); v != "1" {
		t.Errorf("interrupted: group on %q, want held on 1", v)
	}
	if tag := f.GroupTag("tf-int", deployer.RefTag); tag != "$Latest" {
		t.Errorf("interrupted: %s tag %q, want $Latest", deployer.RefTag, tag)
	}
	if st, err := newDeployer(f, "tf-int", r, nil).Status(context.Background()); err != nil || st.Held["tf-int"] != "$Latest" {
		t.Errorf("status after the interruption: held %v, %v", st.Held, err)
	}
	// Whatever AWS does with the refresh now, the group never ends on
	// the new image.
	f.WaitFor("the refresh to roll back", 60*time.Second, func() (bool, string) {
		out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("tf-int")})
		if err != nil || len(out.InstanceRefreshes) == 0 {
			return false, fmt.Sprint(err)
		}
		s := out.InstanceRefreshes[0].Status
		return s == astypes.InstanceRefreshStatusRollbackSuccessful, string(s)
	})
	checkAMIs(t, f, "tf-int", old)

	var rb events
	if _, err := newDeployer(f, "tf-int", r, &rb).Rollback(context.Background()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, rb.messages())
	}
	if v := aws.ToString(f.Group("tf-int").LaunchTemplate.Version); v != "$Latest" {
		t.Errorf("after rollback: group on %q, want $Latest\n%s", v, rb.messages())
	}
	if _, ami := f.TemplateVersion(st.Template, "$Latest"); ami != old {
		t.Errorf("after rollback $Latest launches %s, want %s", ami, old)
	}
	if tag := f.GroupTag("tf-int", deployer.RefTag); tag != "" {
		t.Errorf("%s tag left: %q", deployer.RefTag, tag)
	}
	checkAMIs(t, f, "tf-int", old)
}

// phoenix rollback of a successful deploy to a $Latest group refreshes
// back and leaves the group on $Latest, which launches the old image.
func TestLatestGroupRollbackAfterSuccess(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("tf-rb-1", deploytest.ImageOptions{})
	st := f.Stack("tf-rb", old, deploytest.StackOptions{Desired: 2, Version: "$Latest"})
	newAMI := f.Image("tf-rb-2", deploytest.ImageOptions{})
	var ev events
	if _, err := newDeployer(f, "tf-rb", nil, &ev).Run(context.Background(), newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if _, err := newDeployer(f, "tf-rb", nil, &ev).Rollback(context.Background()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.messages())
	}
	t.Logf("events:\n%s", ev.messages())
	if v := aws.ToString(f.Group("tf-rb").LaunchTemplate.Version); v != "$Latest" {
		t.Errorf("after rollback: group on %q, want $Latest", v)
	}
	if _, ami := f.TemplateVersion(st.Template, "$Latest"); ami != old {
		t.Errorf("after rollback $Latest launches %s, want %s", ami, old)
	}
	checkAMIs(t, f, "tf-rb", old)
	scaleOut(t, f, st, 3)
	checkAMIs(t, f, "tf-rb", old)
}

// Blue-green colours sharing one template on $Latest: neither colour can
// launch the new image before the switch; after success both are on
// $Latest, the new image; after a failure both are on $Latest, the old.
func TestBlueGreenSharedLatestTemplate(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		t.Run(map[bool]string{false: "success", true: "failure"}[fail], func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			name := map[bool]string{false: "bgl-ok", true: "bgl-fail"}[fail]
			old := f.Image(name+"-1", deploytest.ImageOptions{})
			bg := f.BlueGreen(name, old, deploytest.BlueGreenOptions{Desired: 2, Version: "$Latest"})
			newAMI := f.Image(name+"-2", deploytest.ImageOptions{Health: map[bool]string{false: "", true: "fail"}[fail]})
			var ev events
			d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
			d.HealthTimeout = 5 * time.Second
			var mu sync.Mutex
			var blueWhenCreated string
			d.Events = func(e deployer.Event) {
				ev.add(e)
				if e.Step == "launch-template" && strings.HasPrefix(e.Action, "created launch template") && blueWhenCreated == "" {
					mu.Lock()
					blueWhenCreated = aws.ToString(f.Group(bg.Blue).LaunchTemplate.Version)
					mu.Unlock()
				}
			}
			_, err := d.Run(context.Background(), newAMI)
			if fail && deployer.OutcomeOf(err) != deployer.RolledBack || !fail && err != nil {
				t.Fatalf("deploy: %v\n%s", err, ev.messages())
			}
			if blueWhenCreated != "1" {
				t.Errorf("blue was on %q when the new version was created, want held on 1", blueWhenCreated)
			}
			want := newAMI
			if fail {
				want = old
			}
			for _, g := range []string{bg.Blue, bg.Green} {
				if v := aws.ToString(f.Group(g).LaunchTemplate.Version); v != "$Latest" {
					t.Errorf("%s on %q after the deploy, want $Latest", g, v)
				}
				if tag := f.GroupTag(g, deployer.RefTag); tag != "" {
					t.Errorf("%s: %s tag left: %q", g, deployer.RefTag, tag)
				}
			}
			if _, ami := f.TemplateVersion(bg.Template, "$Latest"); ami != want {
				t.Errorf("$Latest launches %s, want %s\n%s", ami, want, ev.messages())
			}
		})
	}
}

// A group on EC2 health checks (Auto Scaling's default) does not stop a
// refresh of an image whose targets fail: phoenix does, at the first new
// instance whose target fails, so the broken image never gets past the
// first batch of a group of 10.
func TestEC2HealthGroupStopsAtTheFirstBatch(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("ec2-10-1", deploytest.ImageOptions{})
	f.Stack("ec2-10", old, deploytest.StackOptions{Desired: 10, HealthCheckType: "EC2"})
	bad := f.Image("ec2-10-2", deploytest.ImageOptions{Health: "fail"})
	r := defaultRolling() // min healthy 90%: one instance per batch
	var ev events
	d := newDeployer(f, "ec2-10", r, &ev)
	d.HealthTimeout = 10 * time.Minute
	var mu sync.Mutex
	onBad := -1
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventWarning && strings.HasPrefix(e.Message, "deploy failed") {
			n := 0
			for _, ami := range f.InstanceAMIs("ec2-10") {
				if ami == bad {
					n++
				}
			}
			mu.Lock()
			onBad = n
			mu.Unlock()
		}
	}
	_, err := d.Run(context.Background(), bad)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	if !strings.Contains(err.Error(), "failed its load balancer health checks") {
		t.Errorf("failure does not say the targets failed: %v", err)
	}
	if onBad < 0 || onBad > 1 {
		t.Errorf("%d instances ran the broken image when the deploy failed, want at most the first batch (1)\n%s", onBad, ev.messages())
	}
	checkAMIs(t, f, "ec2-10", old)
	out, err := f.Clients.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("ec2-10"), Versions: []string{aws.ToString(f.Group("ec2-10").LaunchTemplate.Version)}})
	if err != nil || aws.ToString(out.LaunchTemplateVersions[0].LaunchTemplateData.ImageId) != old {
		t.Errorf("the group's version does not launch %s: %v", old, err)
	}
}

// plan says what a deploy does with a $Latest group's reference and warns
// about EC2 health checks, changing nothing.
func TestPlanShowsTheHoldAndWarnsAboutEC2HealthChecks(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("tf-plan-1", deploytest.ImageOptions{})
	f.Stack("tf-plan", old, deploytest.StackOptions{Desired: 1, Version: "$Latest", HealthCheckType: "EC2"})
	newAMI := f.Image("tf-plan-2", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	p, err := newDeployer(f, "tf-plan", nil, nil).Plan(context.Background(), newAMI)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Action+": "+c.Detail)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`hold: "tf-plan" launches from $Latest (launch template `,
		"held on version 1 (phoenix:launch-template-version tag) before the new version exists",
		"$Latest again afterwards: on success the new version is $Latest",
		`warn: "tf-plan" uses EC2 health checks`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("plan lacks %q:\n%s", want, all)
		}
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("plan made %d mutating calls", n)
	}
}
