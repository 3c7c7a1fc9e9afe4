package deployer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

const prodRegion = "us-east-1"

// promotion promotes staging's group to prod's group, prod reached with
// prodCfg (its own account when that assumes a role).
func promotion(staging *deploytest.Fixture, stagingGroup string, prod *deploytest.Fixture, prodCfg aws.Config, prodGroup, key string, ev *events) *deployer.Promotion {
	r := func() *deployer.Rolling {
		min := 50
		rs, _, errs := deployer.RollingSettings{MinHealthyPercentage: &min, InstanceWarmup: "10s"}.Rolling()
		if len(errs) > 0 {
			panic(errs)
		}
		return rs
	}
	from := newDeployer(staging, stagingGroup, r(), nil)
	to := &deployer.Deployer{Clients: deployer.NewClients(prodCfg), Target: deployer.Target{Name: "web", Region: prod.Region, Group: prodGroup}, Strategy: r(),
		PollInterval: 50 * time.Millisecond, HealthTimeout: 30 * time.Second, Owner: "test@phoenix", Events: ev.add}
	return &deployer.Promotion{
		From:   deployer.PromoteEnd{Environment: "staging", Deployer: from, Config: staging.Config},
		To:     deployer.PromoteEnd{Environment: "prod", Deployer: to, Config: prodCfg, KMSKeyID: key},
		Events: ev.add,
	}
}

// requireAMIs fails unless every instance of the group runs ami.
func requireAMIs(t *testing.T, f *deploytest.Fixture, group, ami string) {
	t.Helper()
	for id, got := range f.InstanceAMIs(group) {
		if got != ami {
			t.Errorf("%s instance %s runs %s, want %s", group, id, got, ami)
		}
	}
}

func TestPromoteCleansUpFailedAndInterruptedCopies(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, region)
	prod := deploytest.New(t, staging.SB, prodRegion)
	prod.CleanupImagesTagged(deployer.PromotedFromTag, 1)
	keyARN := prod.KMSKeyForAutoScaling("alias/phoenix-prod")
	x := staging.Image("web-2", deploytest.ImageOptions{})
	staging.Stack("web-staging", x, deploytest.StackOptions{Desired: 1})
	old := prod.Image("web-1", deploytest.ImageOptions{})
	prod.Stack("web-prod", old, deploytest.StackOptions{Desired: 1})

	// Ctrl-C while the copy is pending: the copy is deregistered.
	if err := staging.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy_cross": 1e5}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	staging.SB.OnCall(func(service, action string) {
		if action == "CopyImage" {
			once.Do(func() { time.AfterFunc(300*time.Millisecond, cancel) })
		}
	})
	var ev events
	staging.SB.ResetCalls()
	res, err := promotion(staging, "web-staging", prod, prod.Config, "web-prod", "alias/phoenix-prod", &ev).Run(ctx)
	if err == nil || res != nil || deployer.OutcomeOf(err) == deployer.Refused || !strings.Contains(err.Error(), "promote interrupted while copy") ||
		!strings.Contains(err.Error(), "deregistered the half-made copy; nothing was deployed") {
		t.Fatalf("interrupted promote: %+v, %v\n%s", res, err, ev.messages())
	}
	if n := staging.SB.Calls()["ec2"]["DeregisterImage"]; n != 1 {
		t.Errorf("%d DeregisterImage calls, want 1", n)
	}
	if left := prod.ImagesTagged(deployer.PromotedFromTag); len(left) != 0 {
		t.Errorf("interrupted copy left: %s %s", aws.ToString(left[0].ImageId), left[0].State)
	}
	requireAMIs(t, prod, "web-prod", old)

	// A copy that fails (its key is disabled while it runs) is
	// deregistered too, and nothing is deployed.
	staging.SB.OnCall(nil)
	if err := staging.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy_cross": 300}}); err != nil {
		t.Fatal(err)
	}
	k := kms.NewFromConfig(prod.Config)
	staging.SB.OnCall(func(service, action string) {
		if action == "CopyImage" {
			go k.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyARN)})
		}
	})
	ev = events{}
	staging.SB.ResetCalls()
	res, err = promotion(staging, "web-staging", prod, prod.Config, "web-prod", "alias/phoenix-prod", &ev).Run(context.Background())
	staging.SB.OnCall(nil)
	if err == nil || res != nil || deployer.OutcomeOf(err) == deployer.Refused || !strings.Contains(err.Error(), "is failed: ") || !strings.Contains(err.Error(), "deregistered it, nothing was deployed") {
		t.Fatalf("failed copy: %+v, %v\n%s", res, err, ev.messages())
	}
	calls := staging.SB.Calls()
	if calls["ec2"]["CopyImage"] != 1 || calls["ec2"]["DeregisterImage"] != 1 {
		t.Errorf("calls %v, want one CopyImage and one DeregisterImage", calls["ec2"])
	}
	if left := prod.ImagesTagged(deployer.PromotedFromTag); len(left) != 0 {
		t.Errorf("failed copy left: %s %s", aws.ToString(left[0].ImageId), left[0].State)
	}
	requireAMIs(t, prod, "web-prod", old)

	// A failed copy that an earlier run left behind (it died before it
	// could clean up) is deregistered, and the source copied again.
	out, err := prod.Clients.EC2.CopyImage(context.Background(), &ec2.CopyImageInput{SourceImageId: aws.String(x), SourceRegion: aws.String(region), Name: aws.String("web-2"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyARN), TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage,
			Tags: []ec2types.Tag{{Key: aws.String(deployer.PromotedFromTag), Value: aws.String(region + ":" + x)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	leftover := aws.ToString(out.ImageId)
	prod.WaitFor("the leftover copy failed", 30*time.Second, func() (bool, string) {
		st := describe(t, prod, leftover).State
		return st == ec2types.ImageStateFailed, string(st)
	})
	if _, err := k.EnableKey(context.Background(), &kms.EnableKeyInput{KeyId: aws.String(keyARN)}); err != nil {
		t.Fatal(err)
	}
	ev = events{}
	res, err = promotion(staging, "web-staging", prod, prod.Config, "web-prod", "alias/phoenix-prod", &ev).Run(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("promote after a failed copy: %+v, %v\n%s", res, err, ev.messages())
	}
	if !strings.Contains(ev.messages(), "warning: an earlier copy "+leftover+" is failed: ") || !strings.Contains(ev.messages(), "step: deregistered copy "+leftover+" in us-east-1") {
		t.Errorf("promote did not say it removed the failed copy:\n%s", ev.messages())
	}
	copies := prod.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 || aws.ToString(copies[0].ImageId) == leftover || copies[0].State != ec2types.ImageStateAvailable {
		t.Fatalf("copies: %+v", copies)
	}
	requireAMIs(t, prod, "web-prod", aws.ToString(copies[0].ImageId))
}

func TestPromoteWaitsForACopyLeftPending(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, region)
	prod := deploytest.New(t, staging.SB, prodRegion)
	prod.CleanupImagesTagged(deployer.PromotedFromTag, 1)
	x := staging.Image("api-2", deploytest.ImageOptions{Encrypted: true})
	staging.Stack("api-staging", x, deploytest.StackOptions{Desired: 1})
	old := prod.Image("api-1", deploytest.ImageOptions{})
	prod.Stack("api-prod", old, deploytest.StackOptions{Desired: 1})
	// Copies take 5s; the first promote gives up after 1s.
	if err := staging.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy_cross": 500}}); err != nil {
		t.Fatal(err)
	}
	var ev events
	p := promotion(staging, "api-staging", prod, prod.Config, "api-prod", "", &ev)
	p.CopyTimeout = time.Second
	res, err := p.Run(context.Background())
	if err == nil || res != nil || !strings.Contains(err.Error(), "timed out after 1s waiting for copy ") || !strings.Contains(err.Error(), "(still pending); raise --copy-timeout") {
		t.Fatalf("first promote: %+v, %v\n%s", res, err, ev.messages())
	}
	if !strings.Contains(ev.messages(), "encrypted with us-east-1's default EBS key ") || !strings.Contains(ev.messages(), "(prod sets no kms_key_id)") {
		t.Errorf("the copy does not say which key encrypts it:\n%s", ev.messages())
	}
	copies := prod.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 || copies[0].State != ec2types.ImageStatePending {
		t.Fatalf("copies after the timeout: %+v", copies)
	}
	y := aws.ToString(copies[0].ImageId)
	requireAMIs(t, prod, "api-prod", old)

	// Run again: it finds the pending copy, waits for it, deploys it.
	ev = events{}
	staging.SB.ResetCalls()
	res, err = promotion(staging, "api-staging", prod, prod.Config, "api-prod", "", &ev).Run(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded || res.AMI != y {
		t.Fatalf("second promote: %+v, %v\n%s", res, err, ev.messages())
	}
	if !strings.Contains(ev.messages(), "step: found copy "+y+" made by an earlier promote (phoenix:promoted-from=eu-west-1:"+x+"), still pending in us-east-1: waiting for it") {
		t.Errorf("second promote did not say it found the copy:\n%s", ev.messages())
	}
	if n := staging.SB.Calls()["ec2"]["CopyImage"]; n != 0 {
		t.Errorf("second promote copied again (%d CopyImage calls)", n)
	}
	requireAMIs(t, prod, "api-prod", y)
	// Encrypted with prod's default EBS key, as the first run said.
	def, err := kms.NewFromConfig(prod.Config).DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil {
		t.Fatal(err)
	}
	snap := copies[0].BlockDeviceMappings[0].Ebs.SnapshotId
	ds, err := prod.Clients.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(snap)}})
	if err != nil || len(ds.Snapshots) != 1 || !aws.ToBool(ds.Snapshots[0].Encrypted) || aws.ToString(ds.Snapshots[0].KmsKeyId) != aws.ToString(def.KeyMetadata.Arn) {
		t.Errorf("copy's snapshot %s: %+v %v, want encrypted with %s", aws.ToString(snap), ds, err, aws.ToString(def.KeyMetadata.Arn))
	}
}

// mutatingBesidesAssumeRole counts mutating calls other than STS
// AssumeRole, which only fetches the credentials of the other account.
func mutatingBesidesAssumeRole(calls map[string]map[string]int) int {
	return sandbox.MutatingCalls(calls) - calls["sts"]["AssumeRole"]
}

// TestPromoteAcrossAccounts promotes from a staging account to a prod
// account that phoenix reaches by assuming a role of prod's (its
// phoenix.hcl assume_role): the role must trust staging's account, an
// image under a key prod may not use is refused before any change,
// naming the key, and once the key policy names prod's account the copy
// runs in prod under prod's key and prod deploys it.
func TestPromoteAcrossAccounts(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, region)
	sandboxtest.AddSecondAccount(t, staging.SB)
	prod := deploytest.NewAs(t, staging.SB, prodRegion, sandboxtest.SecondAccessKey)
	prod.CleanupImagesTagged(deployer.PromotedFromTag, 2) // svc-staging's image, then svc-cmk's
	const prodAccount = sandboxtest.SecondAccount
	role := "arn:aws:iam::" + prodAccount + ":role/phoenix-deploy"
	prodSettings := &awsconfig.Settings{Region: prodRegion, Endpoint: staging.SB.URL(), AccessKey: "AKIASANDBOXTEST00001", SecretKey: "sandbox-secret",
		AssumeRole: awsconfig.AssumeRole{RoleARN: role, SessionName: "phoenix-prod"}}
	prodCfg, err := prodSettings.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// One staging group runs an image under the AWS-managed EBS key,
	// which AWS never shares with another account; one an image under a
	// customer managed key; one an unencrypted image.
	managed := staging.Image("svc-enc", deploytest.ImageOptions{Encrypted: true})
	staging.Stack("svc-managed", managed, deploytest.StackOptions{Desired: 1})
	key := staging.KMSKeyForAutoScaling("alias/svc")
	cmk := staging.Image("svc-cmk", deploytest.ImageOptions{KMSKey: key})
	staging.Stack("svc-cmk", cmk, deploytest.StackOptions{Desired: 1})
	x := staging.Image("svc-2", deploytest.ImageOptions{})
	staging.Stack("svc-staging", x, deploytest.StackOptions{Desired: 1})
	old := prod.Image("svc-1", deploytest.ImageOptions{})
	prod.Stack("svc-prod", old, deploytest.StackOptions{Desired: 1})

	// prod's role does not trust staging's account yet.
	var ev events
	_, err = promotion(staging, "svc-staging", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "is not authorized to perform: sts:AssumeRole on resource: "+role) {
		t.Fatalf("promote through an untrusting role: %v", err)
	}
	if err := staging.SB.TrustRole(role, sandbox.AccountID); err != nil {
		t.Fatal(err)
	}

	staging.SB.ResetCalls()
	res, err := promotion(staging, "svc-managed", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	if deployer.OutcomeOf(err) != deployer.Refused || res != nil || !strings.Contains(err.Error(), "is encrypted with the AWS-managed key") {
		t.Fatalf("promote of an aws/ebs image to another account: %+v, %v", res, err)
	}
	res, err = promotion(staging, "svc-cmk", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	want := "is encrypted with key " + key + ", which prod's account " + prodAccount + " may not use (kms:DescribeKey: AccessDeniedException): a copy into prod would fail; add a statement to that key's policy allowing arn:aws:iam::" + prodAccount + ":root kms:DescribeKey, kms:Decrypt"
	if deployer.OutcomeOf(err) != deployer.Refused || res != nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("promote of an image under a key prod may not use: %+v, %v\nwant %q", res, err, want)
	}
	if m := mutatingBesidesAssumeRole(staging.SB.Calls()); m != 0 {
		t.Errorf("refused promotes made %d mutating calls: %v", m, staging.SB.Calls())
	}

	res, err = promotion(staging, "svc-staging", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("promote: %+v, %v\n%s", res, err, ev.messages())
	}
	la, err := staging.Clients.EC2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(x), Attribute: ec2types.ImageAttributeNameLaunchPermission})
	if err != nil || len(la.LaunchPermissions) != 1 || aws.ToString(la.LaunchPermissions[0].UserId) != prodAccount {
		t.Errorf("launch permissions of %s: %+v %v", x, la, err)
	}
	snap := aws.ToString(describe(t, staging, x).BlockDeviceMappings[0].Ebs.SnapshotId)
	sa, err := staging.Clients.EC2.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
	if err != nil || len(sa.CreateVolumePermissions) != 1 || aws.ToString(sa.CreateVolumePermissions[0].UserId) != prodAccount {
		t.Errorf("create-volume permissions of %s: %+v %v", snap, sa, err)
	}
	if want := "step: granted prod (account " + prodAccount + ") launch permission on " + x + ", create-volume permission on " + snap; !strings.Contains(ev.messages(), want) {
		t.Errorf("no line %q:\n%s", want, ev.messages())
	}
	copies := prod.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 || aws.ToString(copies[0].OwnerId) != prodAccount {
		t.Fatalf("copies in prod: %+v, want 1 owned by %s", copies, prodAccount)
	}
	requireAMIs(t, prod, "svc-prod", aws.ToString(copies[0].ImageId))
	if n := len(staging.ImagesTagged(deployer.PromotedFromTag)); n != 0 {
		t.Errorf("%d copies in staging's account, want none", n)
	}

	// Done already: nothing changes.
	staging.SB.ResetCalls()
	ev = events{}
	res, err = promotion(staging, "svc-staging", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	if err != nil || res.Outcome != deployer.Succeeded || !strings.Contains(res.Message, "already live and healthy in prod") {
		t.Fatalf("second promote: %+v, %v\n%s", res, err, ev.messages())
	}
	if m := mutatingBesidesAssumeRole(staging.SB.Calls()); m != 0 {
		t.Errorf("second promote made %d mutating calls: %v", m, staging.SB.Calls())
	}

	// Once the key's policy lets prod's account use it, the image under
	// the customer managed key is promoted too, encrypted in prod with
	// prod's default key.
	kc := kms.NewFromConfig(staging.Config)
	if _, err := kc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(deploytest.SharedAutoScalingKeyPolicy(prodAccount))}); err != nil {
		t.Fatal(err)
	}
	ev = events{}
	res, err = promotion(staging, "svc-cmk", prod, prodCfg, "svc-prod", "", &ev).Run(ctx)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("promote under a shared key: %+v, %v\n%s", res, err, ev.messages())
	}
	var cmkCopy ec2types.Image
	for _, im := range prod.ImagesTagged(deployer.PromotedFromTag) {
		if hasTagValue(im.Tags, deployer.PromotedFromTag, region+":"+cmk) {
			cmkCopy = im
		}
	}
	if cmkCopy.ImageId == nil {
		t.Fatalf("no copy of %s in prod", cmk)
	}
	requireAMIs(t, prod, "svc-prod", aws.ToString(cmkCopy.ImageId))
	def, err := kms.NewFromConfig(prodCfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil {
		t.Fatal(err)
	}
	cs := aws.ToString(cmkCopy.BlockDeviceMappings[0].Ebs.SnapshotId)
	ds, err := prod.Clients.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{cs}})
	if err != nil || len(ds.Snapshots) != 1 || aws.ToString(ds.Snapshots[0].KmsKeyId) != aws.ToString(def.KeyMetadata.Arn) || aws.ToString(ds.Snapshots[0].OwnerId) != prodAccount {
		t.Errorf("copy's snapshot %s: %+v %v, want prod's, under %s", cs, ds, err, aws.ToString(def.KeyMetadata.Arn))
	}
	// The fixtures' cleanups empty both accounts; the sandbox's owner
	// fixture checks the inventory of every account.
}

func hasTagValue(tags []ec2types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

func describe(t *testing.T, f *deploytest.Fixture, ami string) ec2types.Image {
	t.Helper()
	out, err := f.Clients.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describing %s: %v", ami, err)
	}
	return out.Images[0]
}
