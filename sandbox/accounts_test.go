package sandbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// sharedKeyPolicy is the key policy AWS documents for letting another
// account use a customer managed key for EBS: the owner keeps every
// right, the other account may use the key and create grants for AWS
// resources.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
func sharedKeyPolicy(owner, other string) string {
	return fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [
  {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[2]s:root"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[2]s:root"},
   "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]}`, owner, other)
}

func TestSecondAccountIdentityAndAssumeRole(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	sandboxtest.AddSecondAccount(t, sb)
	ctx := context.Background()
	staging := sandboxtest.Config(t, sb, "us-east-1")
	prod := sandboxtest.ConfigAs(t, sb, "us-east-1", sandboxtest.SecondAccessKey)

	for cfg, want := range map[*aws.Config]string{&staging: sandbox.AccountID, &prod: sandboxtest.SecondAccount} {
		id, err := sts.NewFromConfig(*cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Account) != want || aws.ToString(id.Arn) != "arn:aws:iam::"+want+":user/sandbox" {
			t.Fatalf("GetCallerIdentity = %+v, %v; want account %s", id, err, want)
		}
	}

	// A role of another account is assumed only when its trust policy
	// names the caller's account.
	role := "arn:aws:iam::" + sandboxtest.SecondAccount + ":role/phoenix-deploy"
	_, err := sts.NewFromConfig(staging).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("ci")},
		func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })
	if apiCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "User: arn:aws:iam::"+sandbox.AccountID+":user/sandbox is not authorized to perform: sts:AssumeRole on resource: "+role) {
		t.Fatalf("AssumeRole without trust: %v", err)
	}
	if err := sb.TrustRole(role, sandbox.AccountID); err != nil {
		t.Fatal(err)
	}
	assumed := staging.Copy()
	assumed.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(staging), role))
	id, err := sts.NewFromConfig(assumed).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != sandboxtest.SecondAccount {
		t.Fatalf("GetCallerIdentity as %s = %+v, %v", role, id, err)
	}

	// Each account has its own world: what one creates the other does
	// not see, and the session of the role acts in the role's account.
	sg, err := ec2.NewFromConfig(prod).CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2.NewFromConfig(assumed).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(sg.GroupId)}}); err != nil {
		t.Fatalf("the role's session does not see its account's group: %v", err)
	}
	_, err = ec2.NewFromConfig(staging).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(sg.GroupId)}},
		func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
	if apiCode(err) != "InvalidGroup.NotFound" {
		t.Fatalf("staging sees prod's group: %v", err)
	}
	sv, err := ec2.NewFromConfig(staging).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(sv.Vpcs) != 1 {
		t.Fatalf("staging's VPCs: %+v %v", sv, err)
	}
	pv, err := ec2.NewFromConfig(prod).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(pv.Vpcs) != 1 || aws.ToString(pv.Vpcs[0].OwnerId) != sandboxtest.SecondAccount || aws.ToString(pv.Vpcs[0].VpcId) == aws.ToString(sv.Vpcs[0].VpcId) {
		t.Fatalf("prod's default VPC %+v (%v), want its own, owned by %s", pv, err, sandboxtest.SecondAccount)
	}
	inv := sb.Inventory()
	if len(inv) != 1 || inv[0].Account != sandboxtest.SecondAccount || inv[0].ID != aws.ToString(sg.GroupId) {
		t.Fatalf("inventory = %+v", inv)
	}
	if _, err := ec2.NewFromConfig(prod).DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil {
		t.Fatal(err)
	}
	if err := sb.AddAccount("short", "1"); err == nil {
		t.Error("AddAccount accepted a malformed account")
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestSharingImagesWithAnotherAccount plays AWS's rules for an encrypted
// AMI staging shares with prod: the launch permission makes it visible,
// a copy needs create-volume permission on its snapshots and use of
// their key, and a launch needs use of the key.
func TestSharingImagesWithAnotherAccount(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	sandboxtest.AddSecondAccount(t, sb)
	ctx := context.Background()
	const region = "us-east-2"
	stagingCfg := sandboxtest.Config(t, sb, region)
	prodCfg := sandboxtest.ConfigAs(t, sb, region, sandboxtest.SecondAccessKey)
	st, pr := ec2.NewFromConfig(stagingCfg), ec2.NewFromConfig(prodCfg)
	kc, key := imgKey(t, sb, region)

	// Staging bakes an image encrypted under its own key.
	deb := imgDebianLatest(t, st)
	inst := imgLaunch(t, sb, region, aws.ToString(deb.ImageId), sandbox.LaunchBlockDevice{DeviceName: "/dev/xvda", Encrypted: aws.Bool(true), KmsKeyID: key})
	created, err := st.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("web-1")})
	if err != nil {
		t.Fatal(err)
	}
	ami := aws.ToString(created.ImageId)
	im := imgWaitState(t, st, ami, types.ImageStateAvailable)
	snap := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	imgTerminate(t, sb, region, inst)

	// Public images are the same ids in both accounts.
	if got := aws.ToString(imgDebianLatest(t, pr).ImageId); got != aws.ToString(deb.ImageId) {
		t.Errorf("prod's latest Debian is %s, staging's %s", got, aws.ToString(deb.ImageId))
	}

	// Not shared: prod does not see it.
	noRetry := func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }
	if _, err := pr.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}}, noRetry); apiCode(err) != "InvalidAMIID.NotFound" {
		t.Fatalf("prod sees an unshared image: %v", err)
	}
	if _, err := pr.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}}, noRetry); apiCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("prod sees an unshared snapshot: %v", err)
	}

	// Launch permission only: visible, but a copy cannot read the storage.
	if _, err := st.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(ami),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String(sandboxtest.SecondAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	shared, err := pr.DescribeImages(ctx, &ec2.DescribeImagesInput{ExecutableUsers: []string{"self"}})
	if err != nil || len(shared.Images) != 1 || aws.ToString(shared.Images[0].ImageId) != ami || aws.ToString(shared.Images[0].OwnerId) != sandbox.AccountID {
		t.Fatalf("prod's executable images = %+v, %v", shared, err)
	}
	if _, err := pr.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(ami), Attribute: types.ImageAttributeNameLaunchPermission}, noRetry); apiCode(err) != "AuthFailure" {
		t.Fatalf("prod reads the owner's launch permissions: %v", err)
	}
	copyIn := func(name string) (string, error) {
		out, err := pr.CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: aws.String(ami), SourceRegion: aws.String(region), Name: aws.String(name), Encrypted: aws.Bool(true)}, noRetry)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ImageId), nil
	}
	if _, err := copyIn("web-1"); apiCode(err) != "InvalidRequest" || !strings.Contains(err.Error(), "You do not have permission to access the storage of this ami") {
		t.Fatalf("copy without create-volume permission: %v", err)
	}

	// Item 6: prod may tag the shared image; only prod sees its tags.
	if _, err := pr.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ami, aws.ToString(deb.ImageId)}, Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("prod")}}}); err != nil {
		t.Fatalf("prod tags a shared and a public image: %v", err)
	}
	for _, id := range []string{ami, aws.ToString(deb.ImageId)} {
		if got := imgTags(imgDescribe(t, pr, id).Tags)["Team"]; got != "prod" {
			t.Errorf("prod's tag on %s = %q", id, got)
		}
		if _, ok := imgTags(imgDescribe(t, st, id).Tags)["Team"]; ok {
			t.Errorf("staging sees prod's tag on %s", id)
		}
	}
	byTag, err := pr.DescribeImages(ctx, &ec2.DescribeImagesInput{ExecutableUsers: []string{"self"}, Filters: []types.Filter{{Name: aws.String("tag:Team"), Values: []string{"prod"}}}})
	if err != nil || len(byTag.Images) != 1 {
		t.Fatalf("prod's shared images tagged Team=prod = %+v, %v", byTag, err)
	}

	// Create-volume permission too, but the key is staging's alone: the
	// copy is accepted and fails, and a launch fails as AWS's does.
	if _, err := st.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snap),
		CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: []types.CreateVolumePermission{{UserId: aws.String(sandboxtest.SecondAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	if s := imgSnapshot(t, pr, snap); aws.ToString(s.OwnerId) != sandbox.AccountID {
		t.Fatalf("shared snapshot = %+v", s)
	}
	failed, err := copyIn("web-1")
	if err != nil {
		t.Fatal(err)
	}
	if im := imgWaitState(t, pr, failed, types.ImageStateFailed); im.StateReason == nil {
		t.Fatalf("failed copy has no reason: %+v", im)
	}
	imgDeregister(t, pr, failed)
	run := func() string {
		out, err := pr.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	waitInstance := func(id string) types.Instance {
		var in types.Instance
		imgPoll(t, id+" settled", func() bool {
			out, err := pr.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
			if err != nil || len(out.Reservations) == 0 {
				return false
			}
			in = out.Reservations[0].Instances[0]
			return in.State.Name == types.InstanceStateNameRunning || in.State.Name == types.InstanceStateNameTerminated
		})
		return in
	}
	if in := waitInstance(run()); in.State.Name != types.InstanceStateNameTerminated || in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Client.InternalError" {
		t.Fatalf("launch under an unshared key: %+v %+v", in.State, in.StateReason)
	}

	// With the key shared by its policy, the copy and a launch work.
	if _, err := kc.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(sharedKeyPolicy(sandbox.AccountID, sandboxtest.SecondAccount))}); err != nil {
		t.Fatal(err)
	}
	if _, err := kms.NewFromConfig(prodCfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)}); err != nil {
		t.Fatalf("prod describes the shared key: %v", err)
	}
	// Managing a key is for its own account only, whatever its policy.
	if _, err := kms.NewFromConfig(prodCfg).ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)},
		func(o *kms.Options) { o.Retryer = aws.NopRetryer{} }); apiCode(err) != "NotFoundException" {
		t.Fatalf("prod schedules the deletion of staging's key: %v", err)
	}
	cp, err := copyIn("web-1")
	if err != nil {
		t.Fatal(err)
	}
	cim := imgWaitState(t, pr, cp, types.ImageStateAvailable)
	cs := imgSnapshot(t, pr, aws.ToString(cim.BlockDeviceMappings[0].Ebs.SnapshotId))
	def, err := kms.NewFromConfig(prodCfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil || aws.ToString(cim.OwnerId) != sandboxtest.SecondAccount || aws.ToString(cs.KmsKeyId) != aws.ToString(def.KeyMetadata.Arn) {
		t.Fatalf("copy %+v snapshot %+v, want prod's and under prod's default key (%v)", cim.OwnerId, cs.KmsKeyId, err)
	}
	in := waitInstance(run())
	if in.State.Name != types.InstanceStateNameRunning {
		t.Fatalf("launch under a shared key: %+v %+v", in.State, in.StateReason)
	}
	if _, err := pr.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(in.InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	imgPoll(t, "prod's instance terminated", func() bool {
		for _, r := range sb.Inventory() {
			if r.Type == "instance" {
				return false
			}
		}
		return true
	})

	// Only the owner deregisters; prod's copy is prod's.
	if _, err := pr.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami)}, noRetry); apiCode(err) != "AuthFailure" {
		t.Fatalf("prod deregisters staging's image: %v", err)
	}
	imgDeregister(t, pr, cp)
	imgDeregister(t, st, ami)
	imgDeleteKey(t, kc, key)
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestSharingImagesWithAnOrganization: an image shared with an
// organization or an OU is launchable by the accounts in it (an OU's
// child OUs included) and by no other.
func TestSharingImagesWithAnOrganization(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	sandboxtest.AddSecondAccount(t, sb)
	ctx := context.Background()
	const region = "ap-south-1"
	st := ec2.NewFromConfig(sandboxtest.Config(t, sb, region))
	pr := ec2.NewFromConfig(sandboxtest.ConfigAs(t, sb, region, sandboxtest.SecondAccessKey))
	deb := imgDebianLatest(t, st)
	mk := func(name string) string {
		out, err := st.CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: deb.ImageId, SourceRegion: aws.String(region), Name: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		imgWaitState(t, st, aws.ToString(out.ImageId), types.ImageStateAvailable)
		return aws.ToString(out.ImageId)
	}
	const (
		org    = "arn:aws:organizations::111122223333:organization/o-abcdef1234"
		parent = "arn:aws:organizations::111122223333:ou/o-abcdef1234/ou-ab12-11111111"
		child  = "arn:aws:organizations::111122223333:ou/o-abcdef1234/ou-ab12-22222222"
	)
	byOrg, byOU := mk("by-org"), mk("by-ou")
	for id, perm := range map[string]types.LaunchPermission{byOrg: {OrganizationArn: aws.String(org)}, byOU: {OrganizationalUnitArn: aws.String(parent)}} {
		if _, err := st.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id), LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{perm}}}); err != nil {
			t.Fatal(err)
		}
	}
	visible := func() int {
		out, err := pr.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.AccountID}})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Images)
	}
	if n := visible(); n != 0 {
		t.Fatalf("an account in no organization sees %d images shared with one", n)
	}
	if err := sb.JoinOrganization(sandboxtest.SecondAccount, org); err != nil {
		t.Fatal(err)
	}
	if n := visible(); n != 1 {
		t.Fatalf("an account of the organization outside the OU sees %d images, want 1", n)
	}
	if err := sb.JoinOrganization(sandboxtest.SecondAccount, org, parent, child); err != nil {
		t.Fatal(err)
	}
	if n := visible(); n != 2 {
		t.Fatalf("an account in a child OU sees %d images, want 2", n)
	}
	if err := sb.JoinOrganization(sandboxtest.SecondAccount, org, "arn:aws:organizations::111122223333:ou/o-zzzzzz9999/ou-ab12-33333333"); err == nil {
		t.Error("JoinOrganization accepted an OU of another organization")
	}
	imgDeregister(t, st, byOrg, byOU)
	sandboxtest.RequireEmptyInventory(t, sb)
}
