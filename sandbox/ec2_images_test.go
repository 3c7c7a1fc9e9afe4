package sandbox_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

var imgNoRetry = func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

func imgClient(t *testing.T, sb *sandbox.Sandbox, region string) *ec2.Client {
	return ec2.NewFromConfig(sandboxtest.Config(t, sb, region))
}

// imgPoll calls f until it reports done, failing the test after a deadline.
func imgPoll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func imgDescribe(t *testing.T, c *ec2.Client, id string) types.Image {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeImages(%s): %v", id, err)
	}
	if len(out.Images) != 1 {
		t.Fatalf("DescribeImages(%s) = %d images", id, len(out.Images))
	}
	return out.Images[0]
}

func imgWaitState(t *testing.T, c *ec2.Client, id string, want types.ImageState) types.Image {
	t.Helper()
	var im types.Image
	imgPoll(t, id+" "+string(want), func() bool {
		im = imgDescribe(t, c, id)
		return im.State == want
	})
	return im
}

func imgSnapshot(t *testing.T, c *ec2.Client, id string) types.Snapshot {
	t.Helper()
	out, err := c.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("DescribeSnapshots(%s): %v", id, err)
	}
	return out.Snapshots[0]
}

// imgLaunch launches an instance and waits until it runs.
func imgLaunch(t *testing.T, sb *sandbox.Sandbox, region, imageID string, bdms ...sandbox.LaunchBlockDevice) string {
	t.Helper()
	id, err := sandbox.ImgTestLaunch(sb, region, imageID, bdms...)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	imgPoll(t, id+" running", func() bool { return sandbox.ImgTestInstanceState(sb, region, id) == "running" })
	return id
}

// imgTerminate terminates instances and waits until they leave the
// inventory.
func imgTerminate(t *testing.T, sb *sandbox.Sandbox, region string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		sandbox.ImgTestTerminate(sb, region, id)
	}
	imgPoll(t, "instances terminated", func() bool {
		for _, r := range sb.Inventory() {
			if r.Type == "instance" {
				return false
			}
		}
		return true
	})
}

// imgDebianLatest finds the newest Debian 12 amd64 image as Packer's
// source_ami_filter with most_recent does.
func imgDebianLatest(t *testing.T, c *ec2.Client) types.Image {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{
		Owners: []string{sandbox.OwnerDebian},
		Filters: []types.Filter{
			{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}},
			{Name: aws.String("state"), Values: []string{"available"}},
			{Name: aws.String("architecture"), Values: []string{"x86_64"}},
			{Name: aws.String("root-device-type"), Values: []string{"ebs"}},
			{Name: aws.String("virtualization-type"), Values: []string{"hvm"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 3 {
		t.Fatalf("debian-12-amd64-* = %d images, want 3", len(out.Images))
	}
	sort.Slice(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	return out.Images[0]
}

func imgCode(err error) string { return apiCode(err) }

func TestDescribeImagesPublicCatalog(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := imgClient(t, sb, "us-east-1")

	deb := imgDebianLatest(t, c)
	if !strings.HasPrefix(aws.ToString(deb.Name), "debian-12-amd64-20261020-") {
		t.Fatalf("most recent debian = %s", aws.ToString(deb.Name))
	}
	if aws.ToString(deb.OwnerId) != sandbox.OwnerDebian || !aws.ToBool(deb.Public) || deb.ImageOwnerAlias != nil {
		t.Fatalf("debian owner/public = %s %v %v", aws.ToString(deb.OwnerId), aws.ToBool(deb.Public), deb.ImageOwnerAlias)
	}
	if len(deb.BlockDeviceMappings) != 1 || deb.BlockDeviceMappings[0].Ebs == nil ||
		aws.ToInt32(deb.BlockDeviceMappings[0].Ebs.VolumeSize) != 8 || aws.ToBool(deb.BlockDeviceMappings[0].Ebs.Encrypted) ||
		!strings.HasPrefix(aws.ToString(deb.BlockDeviceMappings[0].Ebs.SnapshotId), "snap-") {
		t.Fatalf("debian block devices = %+v", deb.BlockDeviceMappings)
	}
	if deb.Architecture != types.ArchitectureValuesX8664 || deb.RootDeviceType != types.DeviceTypeEbs ||
		deb.VirtualizationType != types.VirtualizationTypeHvm || aws.ToString(deb.RootDeviceName) != "/dev/xvda" ||
		!aws.ToBool(deb.EnaSupport) || aws.ToString(deb.PlatformDetails) != "Linux/UNIX" || deb.BootMode != types.BootModeValuesUefiPreferred {
		t.Fatalf("debian fields = %+v", deb)
	}

	count := func(in *ec2.DescribeImagesInput) int {
		t.Helper()
		out, err := c.DescribeImages(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Images)
	}
	f := func(name string, vals ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: vals}
	}
	for _, tc := range []struct {
		name string
		in   *ec2.DescribeImagesInput
		want int
	}{
		{"ubuntu jammy", &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerCanonical}, Filters: []types.Filter{f("name", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*")}}, 2},
		{"canonical all", &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerCanonical}}, 4},
		{"al2023 by id", &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerAmazon}, Filters: []types.Filter{f("name", "al2023-ami-2023.*-kernel-6.1-x86_64")}}, 2},
		{"al2023 by alias", &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []types.Filter{f("name", "al2023-ami-*")}}, 4},
		{"owner-alias filter", &ec2.DescribeImagesInput{Filters: []types.Filter{f("owner-alias", "amazon")}}, 4},
		{"owner-id filter", &ec2.DescribeImagesInput{Filters: []types.Filter{f("owner-id", sandbox.OwnerDebian, sandbox.OwnerCanonical)}}, 10},
		{"arm64 debian", &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}, Filters: []types.Filter{f("architecture", "arm64")}}, 3},
		{"description wildcard", &ec2.DescribeImagesInput{Filters: []types.Filter{f("description", "Debian 12 (2026090?-*")}}, 2},
		{"image-id filter", &ec2.DescribeImagesInput{Filters: []types.Filter{f("image-id", aws.ToString(deb.ImageId))}}, 1},
		{"is-public", &ec2.DescribeImagesInput{Filters: []types.Filter{f("is-public", "true")}}, 14},
		{"not encrypted", &ec2.DescribeImagesInput{Filters: []types.Filter{f("block-device-mapping.encrypted", "false")}}, 14},
		{"executable by all", &ec2.DescribeImagesInput{ExecutableUsers: []string{"all"}}, 14},
		{"self owns nothing", &ec2.DescribeImagesInput{Owners: []string{"self"}}, 0},
		{"tag filter", &ec2.DescribeImagesInput{Filters: []types.Filter{f("tag:Name", "x")}}, 0},
		{"ANDed filters", &ec2.DescribeImagesInput{Filters: []types.Filter{f("owner-alias", "amazon"), f("architecture", "arm64")}}, 0},
	} {
		if got := count(tc.in); got != tc.want {
			t.Errorf("%s: %d images, want %d", tc.name, got, tc.want)
		}
	}

	// Paging: pages of 5 visit every image once.
	seen := map[string]bool{}
	pages := 0
	p := ec2.NewDescribeImagesPaginator(c, &ec2.DescribeImagesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, im := range out.Images {
			if seen[aws.ToString(im.ImageId)] {
				t.Fatalf("image %s on two pages", aws.ToString(im.ImageId))
			}
			seen[aws.ToString(im.ImageId)] = true
		}
	}
	if len(seen) != 14 || pages != 3 {
		t.Fatalf("paging saw %d images in %d pages, want 14 in 3", len(seen), pages)
	}

	for _, tc := range []struct {
		name string
		in   *ec2.DescribeImagesInput
		code string
	}{
		{"unknown id", &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}}, "InvalidAMIID.NotFound"},
		{"malformed id", &ec2.DescribeImagesInput{ImageIds: []string{"ami-xyz"}}, "InvalidAMIID.Malformed"},
		{"bad filter", &ec2.DescribeImagesInput{Filters: []types.Filter{f("colour", "blue")}}, "InvalidParameterValue"},
		{"bad owner", &ec2.DescribeImagesInput{Owners: []string{"someone"}}, "InvalidUserID.Malformed"},
		{"bad token", &ec2.DescribeImagesInput{NextToken: aws.String("garbage!")}, "InvalidParameterValue"},
		{"zero page", &ec2.DescribeImagesInput{MaxResults: aws.Int32(0)}, "InvalidParameterValue"},
	} {
		_, err := c.DescribeImages(ctx, tc.in, imgNoRetry)
		if got := imgCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}
	out, err := c.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
	if err != nil || aws.ToString(out.KmsKeyId) != "alias/aws/ebs" {
		t.Fatalf("GetEbsDefaultKmsKeyId = %v, %v", aws.ToString(out.KmsKeyId), err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func imgKey(t *testing.T, sb *sandbox.Sandbox, region string) (*kms.Client, string) {
	t.Helper()
	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, region))
	k, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("images " + region)})
	if err != nil {
		t.Fatal(err)
	}
	return kc, aws.ToString(k.KeyMetadata.Arn)
}

func imgDeleteKey(t *testing.T, kc *kms.Client, arn string) {
	t.Helper()
	if _, err := kc.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
}

func imgDeregister(t *testing.T, c *ec2.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		out, err := c.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(id), DeleteAssociatedSnapshots: aws.Bool(true)})
		if err != nil {
			t.Fatalf("DeregisterImage(%s): %v", id, err)
		}
		for _, r := range out.DeleteSnapshotResults {
			if r.ReturnCode != types.SnapshotReturnCodesSuccess {
				t.Fatalf("deleting %s: %s", aws.ToString(r.SnapshotId), r.ReturnCode)
			}
		}
	}
}

func imgTags(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestCreateImageEncryptedAndCopyAcrossRegions(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	use1, euw1 := imgClient(t, sb, "us-east-1"), imgClient(t, sb, "eu-west-1")
	kUse1, keyUse1 := imgKey(t, sb, "us-east-1")
	kEuw1, keyEuw1 := imgKey(t, sb, "eu-west-1")
	_, keyOff := imgKey(t, sb, "eu-west-1")
	if _, err := kEuw1.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyOff)}); err != nil {
		t.Fatal(err)
	}

	deb := imgDebianLatest(t, use1)
	inst := imgLaunch(t, sb, "us-east-1", aws.ToString(deb.ImageId), sandbox.LaunchBlockDevice{
		DeviceName: "/dev/xvda", Encrypted: aws.Bool(true), KmsKeyID: keyUse1, VolumeSize: 10,
	})
	created, err := use1.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId: aws.String(inst), Name: aws.String("web 2026-11-25 (build 7)"), Description: aws.String("web server"),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("Role"), Value: aws.String("web")}}},
			{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{{Key: aws.String("Built"), Value: aws.String("phoenix")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	amiID := aws.ToString(created.ImageId)
	im := imgDescribe(t, use1, amiID)
	if im.State != types.ImageStatePending || aws.ToString(im.SourceInstanceId) != inst || aws.ToString(im.OwnerId) != sandbox.AccountID {
		t.Fatalf("new image = %s from %s by %s", im.State, aws.ToString(im.SourceInstanceId), aws.ToString(im.OwnerId))
	}
	_, err = use1.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("web 2026-11-25 (build 7)")}, imgNoRetry)
	if imgCode(err) != "InvalidAMIName.Duplicate" || !strings.Contains(err.Error(), amiID) {
		t.Fatalf("duplicate name: %v", err)
	}

	im = imgWaitState(t, use1, amiID, types.ImageStateAvailable)
	if imgTags(im.Tags)["Role"] != "web" || aws.ToString(im.Description) != "web server" || im.Architecture != types.ArchitectureValuesX8664 {
		t.Fatalf("image = %+v", im)
	}
	if len(im.BlockDeviceMappings) != 1 || !aws.ToBool(im.BlockDeviceMappings[0].Ebs.Encrypted) || aws.ToInt32(im.BlockDeviceMappings[0].Ebs.VolumeSize) != 10 {
		t.Fatalf("image block devices = %+v", im.BlockDeviceMappings[0].Ebs)
	}
	snapID := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	snap := imgSnapshot(t, use1, snapID)
	if !aws.ToBool(snap.Encrypted) || aws.ToString(snap.KmsKeyId) != keyUse1 || aws.ToInt32(snap.VolumeSize) != 10 ||
		snap.State != types.SnapshotStateCompleted || aws.ToString(snap.Progress) != "100%" || imgTags(snap.Tags)["Built"] != "phoenix" ||
		!strings.HasPrefix(aws.ToString(snap.VolumeId), "vol-") {
		t.Fatalf("snapshot = %+v", snap)
	}
	// The snapshot belongs to a registered image.
	_, err = use1.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snapID)}, imgNoRetry)
	if imgCode(err) != "InvalidSnapshot.InUse" || !strings.Contains(err.Error(), "The snapshot "+snapID+" is currently in use by "+amiID) {
		t.Fatalf("DeleteSnapshot in use: %v", err)
	}

	// Copy to eu-west-1 under that region's key, with tags.
	cp, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{
		SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID), Name: aws.String("web-copy"),
		Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyEuw1), CopyImageTags: aws.Bool(true), ClientToken: aws.String("copy-1"),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeImage, Tags: []types.Tag{{Key: aws.String("Copy"), Value: aws.String("yes")}}},
			{ResourceType: types.ResourceTypeSnapshot, Tags: []types.Tag{{Key: aws.String("Copy"), Value: aws.String("snap")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	copyID := aws.ToString(cp.ImageId)
	again, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID),
		Name: aws.String("web-copy"), Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyEuw1), ClientToken: aws.String("copy-1")})
	if err != nil || aws.ToString(again.ImageId) != copyID {
		t.Fatalf("idempotent copy = %v, %v", aws.ToString(again.ImageId), err)
	}
	// A same-region copy without a key keeps the source snapshot's key.
	local, err := use1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID), Name: aws.String("web-local")})
	if err != nil {
		t.Fatal(err)
	}
	// A copy under a disabled key is accepted and fails later.
	bad, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID),
		Name: aws.String("web-bad"), Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyOff)})
	if err != nil {
		t.Fatal(err)
	}

	ci := imgWaitState(t, euw1, copyID, types.ImageStateAvailable)
	if aws.ToString(ci.SourceImageId) != amiID || aws.ToString(ci.SourceImageRegion) != "us-east-1" {
		t.Fatalf("copy source = %s %s", aws.ToString(ci.SourceImageId), aws.ToString(ci.SourceImageRegion))
	}
	if tags := imgTags(ci.Tags); tags["Role"] != "web" || tags["Copy"] != "yes" {
		t.Fatalf("copy tags = %v", tags)
	}
	cs := imgSnapshot(t, euw1, aws.ToString(ci.BlockDeviceMappings[0].Ebs.SnapshotId))
	if !aws.ToBool(cs.Encrypted) || aws.ToString(cs.KmsKeyId) != keyEuw1 || imgTags(cs.Tags)["Copy"] != "snap" || aws.ToInt32(cs.VolumeSize) != 10 {
		t.Fatalf("copy snapshot = %+v", cs)
	}
	li := imgWaitState(t, use1, aws.ToString(local.ImageId), types.ImageStateAvailable)
	if ls := imgSnapshot(t, use1, aws.ToString(li.BlockDeviceMappings[0].Ebs.SnapshotId)); aws.ToString(ls.KmsKeyId) != keyUse1 {
		t.Fatalf("same-region copy key = %s", aws.ToString(ls.KmsKeyId))
	}
	bi := imgWaitState(t, euw1, aws.ToString(bad.ImageId), types.ImageStateFailed)
	if bi.StateReason == nil || aws.ToString(bi.StateReason.Code) == "" || aws.ToString(bi.StateReason.Message) == "" {
		t.Fatalf("failed copy reason = %+v", bi.StateReason)
	}
	if bs := imgSnapshot(t, euw1, aws.ToString(bi.BlockDeviceMappings[0].Ebs.SnapshotId)); bs.State != types.SnapshotStateError {
		t.Fatalf("failed copy snapshot = %s", bs.State)
	}

	// The customer key allows sharing; nobody may make it public.
	if _, err := use1.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(amiID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{UserId: aws.String("210987654321")}}}}); err != nil {
		t.Fatal(err)
	}
	attr, err := use1.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(amiID), Attribute: types.ImageAttributeNameLaunchPermission})
	if err != nil || len(attr.LaunchPermissions) != 1 || aws.ToString(attr.LaunchPermissions[0].UserId) != "210987654321" {
		t.Fatalf("launch permissions = %+v, %v", attr, err)
	}
	_, err = use1.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(amiID),
		LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{{Group: types.PermissionGroupAll}}}}, imgNoRetry)
	if imgCode(err) != "UnsupportedOperation" {
		t.Fatalf("public encrypted image: %v", err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"key without encrypted", func() error {
			_, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID), Name: aws.String("x-1"), KmsKeyId: aws.String(keyEuw1)}, imgNoRetry)
			return err
		}, "InvalidParameterDependency"},
		{"key of another region", func() error {
			_, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String(amiID), Name: aws.String("x-2"), Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyUse1)}, imgNoRetry)
			return err
		}, "InvalidParameterValue"},
		{"unknown source", func() error {
			_, err := euw1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("us-east-1"), SourceImageId: aws.String("ami-0123456789abcdef0"), Name: aws.String("x-3")}, imgNoRetry)
			return err
		}, "InvalidAMIID.NotFound"},
		{"failed source", func() error {
			_, err := use1.CopyImage(ctx, &ec2.CopyImageInput{SourceRegion: aws.String("eu-west-1"), SourceImageId: bad.ImageId, Name: aws.String("x-4")}, imgNoRetry)
			return err
		}, "IncorrectState"},
		{"bad name", func() error {
			_, err := use1.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("a!")}, imgNoRetry)
			return err
		}, "InvalidAMIName.Malformed"},
		{"unknown instance", func() error {
			_, err := use1.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String("i-0123456789abcdef0"), Name: aws.String("abc")}, imgNoRetry)
			return err
		}, "InvalidInstanceID.NotFound"},
		{"bad tag spec", func() error {
			_, err := use1.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("abc"),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}}, imgNoRetry)
			return err
		}, "InvalidParameterValue"},
		{"deregister public image", func() error {
			_, err := use1.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: deb.ImageId}, imgNoRetry)
			return err
		}, "AuthFailure"},
		{"imds support off", func() error {
			_, err := use1.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(amiID), ImdsSupport: &types.AttributeValue{Value: aws.String("v1.0")}}, imgNoRetry)
			return err
		}, "InvalidParameterValue"},
	} {
		if got := imgCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	imgDeregister(t, euw1, copyID, aws.ToString(bad.ImageId))
	imgDeregister(t, use1, amiID, aws.ToString(local.ImageId))
	if _, err := use1.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{amiID}}, imgNoRetry); imgCode(err) != "InvalidAMIID.NotFound" {
		t.Fatalf("deregistered image: %v", err)
	}
	imgTerminate(t, sb, "us-east-1", inst)
	imgDeleteKey(t, kUse1, keyUse1)
	imgDeleteKey(t, kEuw1, keyEuw1)
	imgDeleteKey(t, kEuw1, keyOff)
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestImageSharingAttributesAndDeprecation(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := imgClient(t, sb, "us-west-2")
	deb := imgDebianLatest(t, c)
	// One instance with its root under aws/ebs, one unencrypted.
	encInst := imgLaunch(t, sb, "us-west-2", aws.ToString(deb.ImageId), sandbox.LaunchBlockDevice{DeviceName: "/dev/xvda", Encrypted: aws.Bool(true)})
	plainInst := imgLaunch(t, sb, "us-west-2", aws.ToString(deb.ImageId))
	sandbox.ImgTestStop(sb, "us-west-2", plainInst)
	imgPoll(t, "stopped", func() bool { return sandbox.ImgTestInstanceState(sb, "us-west-2", plainInst) == "stopped" })

	mk := func(inst, name string) string {
		out, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String(name), NoReboot: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		imgWaitState(t, c, aws.ToString(out.ImageId), types.ImageStateAvailable)
		return aws.ToString(out.ImageId)
	}
	encAMI, plainAMI := mk(encInst, "enc-default"), mk(plainInst, "plain")
	encSnap := aws.ToString(imgDescribe(t, c, encAMI).BlockDeviceMappings[0].Ebs.SnapshotId)
	plainSnap := aws.ToString(imgDescribe(t, c, plainAMI).BlockDeviceMappings[0].Ebs.SnapshotId)
	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, "us-west-2"))
	ebsKey, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil || ebsKey.KeyMetadata.KeyManager != kmstypes.KeyManagerTypeAws {
		t.Fatal(err)
	}
	if s := imgSnapshot(t, c, encSnap); aws.ToString(s.KmsKeyId) != aws.ToString(ebsKey.KeyMetadata.Arn) {
		t.Fatalf("default-encrypted snapshot key = %s", aws.ToString(s.KmsKeyId))
	}

	share := func(id string, perm types.LaunchPermission) error {
		_, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id),
			LaunchPermission: &types.LaunchPermissionModifications{Add: []types.LaunchPermission{perm}}}, imgNoRetry)
		return err
	}
	err = share(encAMI, types.LaunchPermission{UserId: aws.String("210987654321")})
	if imgCode(err) != "InvalidParameter" || !strings.Contains(err.Error(), "AWS Managed CMK") {
		t.Fatalf("sharing an aws/ebs image: %v", err)
	}
	_, err = c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(encSnap), Attribute: types.SnapshotAttributeNameCreateVolumePermission,
		OperationType: types.OperationTypeAdd, UserIds: []string{"210987654321"}}, imgNoRetry)
	if imgCode(err) != "OperationNotPermitted" {
		t.Fatalf("sharing an aws/ebs snapshot: %v", err)
	}

	// The unencrypted image may go public and back.
	if err := share(plainAMI, types.LaunchPermission{Group: types.PermissionGroupAll}); err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(imgDescribe(t, c, plainAMI).Public) {
		t.Fatal("image not public")
	}
	pub, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("is-public"), Values: []string{"true"}}}})
	if err != nil || len(pub.Images) != 1 {
		t.Fatalf("own public images = %v, %v", pub, err)
	}
	if _, err := c.ResetImageAttribute(ctx, &ec2.ResetImageAttributeInput{ImageId: aws.String(plainAMI), Attribute: types.ResetImageAttributeNameLaunchPermission}); err != nil {
		t.Fatal(err)
	}
	if aws.ToBool(imgDescribe(t, c, plainAMI).Public) {
		t.Fatal("image still public after reset")
	}
	if _, err := c.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(plainSnap),
		CreateVolumePermission: &types.CreateVolumePermissionModifications{Add: []types.CreateVolumePermission{{UserId: aws.String("210987654321")}}}}); err != nil {
		t.Fatal(err)
	}
	sa, err := c.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(plainSnap), Attribute: types.SnapshotAttributeNameCreateVolumePermission})
	if err != nil || len(sa.CreateVolumePermissions) != 1 || aws.ToString(sa.CreateVolumePermissions[0].UserId) != "210987654321" {
		t.Fatalf("create volume permissions = %+v, %v", sa, err)
	}
	rb, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{RestorableByUserIds: []string{"210987654321"}, OwnerIds: []string{"self"}})
	if err != nil || len(rb.Snapshots) != 1 || aws.ToString(rb.Snapshots[0].SnapshotId) != plainSnap {
		t.Fatalf("restorable by = %+v, %v", rb, err)
	}

	// Description and IMDS support.
	if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(plainAMI), Description: &types.AttributeValue{Value: aws.String("plain image")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(plainAMI), ImdsSupport: &types.AttributeValue{Value: aws.String("v2.0")}}); err != nil {
		t.Fatal(err)
	}
	for attrName, want := range map[types.ImageAttributeName]string{types.ImageAttributeNameDescription: "plain image", types.ImageAttributeNameImdsSupport: "v2.0"} {
		a, err := c.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(plainAMI), Attribute: attrName})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if a.Description != nil {
			got = aws.ToString(a.Description.Value)
		}
		if a.ImdsSupport != nil && attrName == types.ImageAttributeNameImdsSupport {
			got = aws.ToString(a.ImdsSupport.Value)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", attrName, got, want)
		}
	}
	if im := imgDescribe(t, c, plainAMI); im.ImdsSupport != types.ImdsSupportValuesV20 || aws.ToString(im.Description) != "plain image" {
		t.Fatalf("image imds/description = %s %q", im.ImdsSupport, aws.ToString(im.Description))
	}

	// Deprecation rounds to the minute.
	at := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Minute).Add(40 * time.Second)
	if _, err := c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(plainAMI), DeprecateAt: aws.Time(at)}); err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(imgDescribe(t, c, plainAMI).DeprecationTime), at.Round(time.Minute).Format("2006-01-02T15:04:05.000Z"); got != want {
		t.Fatalf("deprecation time = %s, want %s", got, want)
	}
	_, err = c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(plainAMI), DeprecateAt: aws.Time(time.Now().Add(-time.Hour))}, imgNoRetry)
	if imgCode(err) != "InvalidParameterValue" {
		t.Fatalf("deprecation in the past: %v", err)
	}
	if _, err := c.DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(plainAMI)}); err != nil {
		t.Fatal(err)
	}
	if imgDescribe(t, c, plainAMI).DeprecationTime != nil {
		t.Fatal("deprecation time still set")
	}

	// Deprecated public images are hidden unless asked for.
	sandbox.ImgTestSetDeprecation(sb, "us-west-2", aws.ToString(deb.ImageId), time.Now().Add(-time.Hour))
	debs := func(include bool) int {
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}, IncludeDeprecated: aws.Bool(include),
			Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Images)
	}
	if debs(false) != 2 || debs(true) != 3 {
		t.Fatalf("deprecated debian: %d without, %d with IncludeDeprecated", debs(false), debs(true))
	}
	if imgDescribe(t, c, aws.ToString(deb.ImageId)).DeprecationTime == nil {
		t.Fatal("deprecated image by id has no deprecation time")
	}

	// Deregister without deleting snapshots, then delete them by hand.
	// For a while after DeregisterImage, EC2 may still say the snapshot is
	// in use (snapshot_in_use: 30 s here, 300 ms at the tests' scale); then
	// it goes.
	if err := sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"snapshot_in_use": 30}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(encAMI)}); err != nil {
		t.Fatal(err)
	}
	imgDeregister(t, c, plainAMI)
	_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(encSnap)}, imgNoRetry)
	if imgCode(err) != "InvalidSnapshot.InUse" || !strings.Contains(err.Error(), encAMI) {
		t.Fatalf("DeleteSnapshot just after DeregisterImage: %v", err)
	}
	imgPoll(t, "the snapshot to be deletable", func() bool {
		_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(encSnap)}, imgNoRetry)
		if err != nil && imgCode(err) != "InvalidSnapshot.InUse" {
			t.Fatal(err)
		}
		return err == nil
	})
	_, err = c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(plainSnap)}, imgNoRetry)
	if imgCode(err) != "InvalidSnapshot.NotFound" {
		t.Fatalf("deleted snapshot: %v", err)
	}
	imgTerminate(t, sb, "us-west-2", encInst, plainInst)
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestSnapshotsAndVolumesDescribe(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := imgClient(t, sb, "eu-central-1")
	deb := imgDebianLatest(t, c)
	var bdms []sandbox.LaunchBlockDevice
	for _, d := range []string{"/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde", "/dev/sdf"} {
		bdms = append(bdms, sandbox.LaunchBlockDevice{DeviceName: d, VolumeSize: 20, VolumeType: "gp3", Encrypted: aws.Bool(d == "/dev/sdb")})
	}
	inst := imgLaunch(t, sb, "eu-central-1", aws.ToString(deb.ImageId), bdms...)
	other := imgLaunch(t, sb, "eu-central-1", aws.ToString(deb.ImageId))

	vols := func(in *ec2.DescribeVolumesInput) []types.Volume {
		t.Helper()
		out, err := c.DescribeVolumes(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.Volumes
	}
	f := func(name string, vals ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: vals}
	}
	mine := vols(&ec2.DescribeVolumesInput{Filters: []types.Filter{f("attachment.instance-id", inst)}})
	if len(mine) != 6 {
		t.Fatalf("volumes of %s = %d, want 6", inst, len(mine))
	}
	for _, v := range mine {
		if v.State != types.VolumeStateInUse || len(v.Attachments) != 1 || aws.ToString(v.Attachments[0].InstanceId) != inst ||
			v.Attachments[0].State != types.VolumeAttachmentStateAttached {
			t.Fatalf("volume = %+v", v)
		}
	}
	if n := len(vols(&ec2.DescribeVolumesInput{Filters: []types.Filter{f("encrypted", "true")}})); n != 1 {
		t.Fatalf("encrypted volumes = %d", n)
	}
	if n := len(vols(&ec2.DescribeVolumesInput{Filters: []types.Filter{f("size", "20"), f("volume-type", "gp3")}})); n != 5 {
		t.Fatalf("20 GiB gp3 volumes = %d", n)
	}
	root := vols(&ec2.DescribeVolumesInput{Filters: []types.Filter{f("attachment.instance-id", other)}})[0]
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(root.VolumeId)}, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("root")}}}); err != nil {
		t.Fatal(err)
	}
	tagged := vols(&ec2.DescribeVolumesInput{Filters: []types.Filter{f("tag:Name", "root")}})
	if len(tagged) != 1 || aws.ToString(tagged[0].VolumeId) != aws.ToString(root.VolumeId) || aws.ToString(tagged[0].SnapshotId) == "" {
		t.Fatalf("tagged volumes = %+v", tagged)
	}
	n := 0
	p := ec2.NewDescribeVolumesPaginator(c, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Volumes)
	}
	if n != 7 {
		t.Fatalf("paged volumes = %d, want 7", n)
	}

	// Snapshots: public ones of the catalog, and own ones by owner.
	pubSnaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"amazon"}})
	if err != nil || len(pubSnaps.Snapshots) != 4 {
		t.Fatalf("amazon snapshots = %d, %v", len(pubSnaps.Snapshots), err)
	}
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("six-volumes")})
	if err != nil {
		t.Fatal(err)
	}
	own, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil || len(own.Snapshots) != 6 {
		t.Fatalf("own snapshots = %d, %v", len(own.Snapshots), err)
	}
	for _, s := range own.Snapshots {
		if s.State != types.SnapshotStatePending || !strings.HasSuffix(aws.ToString(s.Progress), "%") {
			t.Fatalf("new snapshot = %s %s", s.State, aws.ToString(s.Progress))
		}
	}
	imgWaitState(t, c, aws.ToString(img.ImageId), types.ImageStateAvailable)
	for _, tc := range []struct {
		filters []types.Filter
		want    int
	}{
		{[]types.Filter{f("encrypted", "true")}, 1},
		{[]types.Filter{f("status", "completed"), f("owner-id", sandbox.AccountID)}, 6},
		{[]types.Filter{f("volume-id", aws.ToString(root.VolumeId))}, 0},
		{[]types.Filter{f("description", "Created by CreateImage("+inst+")*")}, 6},
		{[]types.Filter{f("volume-size", "20")}, 5},
	} {
		out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: tc.filters})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Snapshots) != tc.want {
			t.Errorf("snapshots %v = %d, want %d", aws.ToString(tc.filters[0].Name), len(out.Snapshots), tc.want)
		}
	}
	n = 0
	sp := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, MaxResults: aws.Int32(5)})
	for sp.HasMorePages() {
		out, err := sp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.Snapshots)
	}
	if n != 6 {
		t.Fatalf("paged snapshots = %d", n)
	}

	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"unknown volume", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}}, imgNoRetry)
			return err
		}, "InvalidVolume.NotFound"},
		{"malformed volume", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"volume-1"}}, imgNoRetry)
			return err
		}, "InvalidVolumeID.Malformed"},
		{"ids and max results", func() error {
			_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{aws.ToString(root.VolumeId)}, MaxResults: aws.Int32(5)}, imgNoRetry)
			return err
		}, "InvalidParameterCombination"},
		{"unknown snapshot", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}}, imgNoRetry)
			return err
		}, "InvalidSnapshot.NotFound"},
		{"bad snapshot filter", func() error {
			_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{Filters: []types.Filter{f("size", "1")}}, imgNoRetry)
			return err
		}, "InvalidParameterValue"},
		{"delete public snapshot", func() error {
			_, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: pubSnaps.Snapshots[0].SnapshotId}, imgNoRetry)
			return err
		}, "AuthFailure"},
	} {
		if got := imgCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	imgDeregister(t, c, aws.ToString(img.ImageId))
	imgTerminate(t, sb, "eu-central-1", inst, other)
	// Volumes that are not deleted on termination stay, available.
	left := vols(&ec2.DescribeVolumesInput{})
	for _, v := range left {
		t.Errorf("volume %s left in state %s", aws.ToString(v.VolumeId), v.State)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
