package sandbox_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func TestTagsCreateDescribeDelete(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := imgClient(t, sb, "us-east-2")
	deb := imgDebianLatest(t, c)
	inst := imgLaunch(t, sb, "us-east-2", aws.ToString(deb.ImageId))
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(inst), Name: aws.String("tagged")})
	if err != nil {
		t.Fatal(err)
	}
	amiID := aws.ToString(img.ImageId)
	im := imgWaitState(t, c, amiID, types.ImageStateAvailable)
	snapID := aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId)
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{inst}}}})
	if err != nil || len(vols.Volumes) != 1 {
		t.Fatalf("volumes: %v", err)
	}
	volID := aws.ToString(vols.Volumes[0].VolumeId)

	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst, amiID, snapID, volID},
		Tags: []types.Tag{tag("Project", "phoenix"), tag("Env", "test")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{amiID}, Tags: []types.Tag{tag("Env", "prod"), tag("Empty", "")}}); err != nil {
		t.Fatal(err)
	}
	if got := imgTags(imgDescribe(t, c, amiID).Tags); got["Env"] != "prod" || got["Project"] != "phoenix" || len(got) != 3 {
		t.Fatalf("image tags = %v", got)
	}

	describe := func(filters ...types.Filter) []types.TagDescription {
		t.Helper()
		out, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: filters})
		if err != nil {
			t.Fatal(err)
		}
		return out.Tags
	}
	f := func(name string, vals ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: vals}
	}
	all := describe()
	if len(all) != 9 {
		t.Fatalf("all tags = %d, want 9: %+v", len(all), all)
	}
	for _, tc := range []struct {
		name    string
		filters []types.Filter
		want    int
	}{
		{"resource-type image", []types.Filter{f("resource-type", "image")}, 3},
		{"resource-type snapshot or volume", []types.Filter{f("resource-type", "snapshot", "volume")}, 4},
		{"key", []types.Filter{f("key", "Env")}, 4},
		{"value wildcard", []types.Filter{f("value", "p*")}, 5},
		{"resource-id", []types.Filter{f("resource-id", inst)}, 2},
		{"key and value", []types.Filter{f("key", "Env"), f("value", "test")}, 3},
	} {
		if got := len(describe(tc.filters...)); got != tc.want {
			t.Errorf("%s: %d tags, want %d", tc.name, got, tc.want)
		}
	}
	for _, d := range describe(f("resource-id", volID)) {
		if d.ResourceType != types.ResourceTypeVolume || aws.ToString(d.ResourceId) != volID {
			t.Fatalf("tag description = %+v", d)
		}
	}
	seen := 0
	p := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{MaxResults: aws.Int32(5)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		seen += len(out.Tags)
	}
	if seen != 9 || pages != 2 {
		t.Fatalf("paged tags = %d in %d pages", seen, pages)
	}

	// DeleteTags: a value must match; no value deletes the key; no tags
	// at all deletes every tag.
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{amiID}, Tags: []types.Tag{tag("Env", "test"), {Key: aws.String("Project")}}}); err != nil {
		t.Fatal(err)
	}
	if got := imgTags(imgDescribe(t, c, amiID).Tags); got["Env"] != "prod" || len(got) != 2 {
		t.Fatalf("image tags after delete = %v", got)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{amiID}, Tags: []types.Tag{tag("Empty", "")}}); err != nil {
		t.Fatal(err)
	}
	if got := imgTags(imgDescribe(t, c, amiID).Tags); len(got) != 1 {
		t.Fatalf("image tags after deleting the empty one = %v", got)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{snapID, volID}}); err != nil {
		t.Fatal(err)
	}
	if n := len(describe(f("resource-type", "snapshot", "volume"))); n != 0 {
		t.Fatalf("snapshot and volume tags left: %d", n)
	}

	many := make([]types.Tag, 0, 51)
	for i := 0; i < 51; i++ {
		many = append(many, tag(fmt.Sprintf("k%02d", i), "v"))
	}
	for _, tc := range []struct {
		name string
		in   *ec2.CreateTagsInput
		code string
	}{
		{"unknown instance", &ec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidInstanceID.NotFound"},
		{"unknown image", &ec2.CreateTagsInput{Resources: []string{"ami-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidAMIID.NotFound"},
		{"unknown snapshot", &ec2.CreateTagsInput{Resources: []string{"snap-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidSnapshot.NotFound"},
		{"unknown volume", &ec2.CreateTagsInput{Resources: []string{"vol-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidVolume.NotFound"},
		{"unknown security group", &ec2.CreateTagsInput{Resources: []string{"sg-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidGroup.NotFound"},
		{"unknown kind", &ec2.CreateTagsInput{Resources: []string{"thing-1"}, Tags: []types.Tag{tag("a", "b")}}, "InvalidID"},
		{"reserved key", &ec2.CreateTagsInput{Resources: []string{amiID}, Tags: []types.Tag{tag("aws:owner", "me")}}, "InvalidParameterValue"},
		{"empty key", &ec2.CreateTagsInput{Resources: []string{amiID}, Tags: []types.Tag{tag("", "x")}}, "InvalidParameterValue"},
		{"too many", &ec2.CreateTagsInput{Resources: []string{amiID}, Tags: many}, "TagLimitExceeded"},
	} {
		_, err := c.CreateTags(ctx, tc.in, imgNoRetry)
		if got := imgCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}
	// A failed CreateTags changes nothing, even on the ids that exist.
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{amiID, "vol-0123456789abcdef0"}, Tags: []types.Tag{tag("Half", "x")}}, imgNoRetry); err == nil {
		t.Fatal("CreateTags with an unknown id succeeded")
	}
	if _, ok := imgTags(imgDescribe(t, c, amiID).Tags)["Half"]; ok {
		t.Fatal("failed CreateTags tagged the image")
	}
	for _, tc := range []struct {
		name string
		in   *ec2.DescribeTagsInput
		code string
	}{
		{"bad filter", &ec2.DescribeTagsInput{Filters: []types.Filter{f("colour", "red")}}, "InvalidParameterValue"},
		{"small page", &ec2.DescribeTagsInput{MaxResults: aws.Int32(1)}, "InvalidParameterValue"},
	} {
		_, err := c.DescribeTags(ctx, tc.in, imgNoRetry)
		if got := imgCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}

	imgDeregister(t, c, amiID)
	imgTerminate(t, sb, "us-east-2", inst)
	if n := len(describe()); n != 0 {
		t.Fatalf("tags left after cleanup: %d", n)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
