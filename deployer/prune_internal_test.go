package deployer

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func image(id, created, state string, snaps ...string) ec2types.Image {
	im := ec2types.Image{ImageId: aws.String(id), Name: aws.String(id), CreationDate: aws.String(created), State: ec2types.ImageState(state)}
	for _, s := range snaps {
		im.BlockDeviceMappings = append(im.BlockDeviceMappings, ec2types.BlockDeviceMapping{Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(s)}})
	}
	return im
}

// The sandbox gives every image its own snapshots, so images sharing one
// (registered from the same snapshot by hand) are decided here.
func TestDecidePruneSharedSnapshots(t *testing.T) {
	family := []ec2types.Image{
		image("ami-6", "2026-01-06T00:00:00.000Z", "available", "snap-6"),
		image("ami-5", "2026-01-05T00:00:00.000Z", "pending", "snap-5"),
		image("ami-4", "2026-01-04T00:00:00.000Z", "available", "snap-4", "snap-x"),
		image("ami-3", "2026-01-03T00:00:00.000Z", "available", "snap-3", "snap-y"),
		image("ami-2", "2026-01-02T00:00:00.000Z", "failed"),
		image("ami-1", "2026-01-01T00:00:00.000Z", "available", "snap-1", "snap-z"),
		image("ami-0", "2025-12-31T00:00:00.000Z", "available", "snap-0", "snap-1"),
	}
	// ami-other, outside the family, shares snap-x with ami-4; ami-3 and
	// ami-1 share nothing with a kept image; ami-0 shares snap-1 with
	// ami-1, which goes too.
	owned := append([]ec2types.Image{image("ami-other", "2025-01-01T00:00:00.000Z", "available", "snap-x")}, family...)
	uses := map[string][]string{"ami-3": {"running on i-1"}}
	var got []string
	for _, im := range decidePrune(family, owned, 1, uses) {
		got = append(got, fmt.Sprintf("%s %s %v", im.ID, im.Action, im.Reasons))
	}
	want := []string{
		"ami-6 keep [newest 1]",
		"ami-5 keep [pending: not available yet]",
		"ami-4 keep [snapshot snap-x also backs ami-other, which is kept]",
		"ami-3 keep [running on i-1]",
		"ami-2 deregister []",
		"ami-1 deregister []",
		"ami-0 deregister []",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	// Keeping ami-1 keeps ami-0, which shares snap-1 with it.
	uses["ami-1"] = []string{"running on i-2"}
	got = nil
	for _, im := range decidePrune(family, owned, 1, uses) {
		got = append(got, fmt.Sprintf("%s %s %v", im.ID, im.Action, im.Reasons))
	}
	want[5] = "ami-1 keep [running on i-2]"
	want[6] = "ami-0 keep [snapshot snap-1 also backs ami-1, which is kept]"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
}

func TestFamilyMatcher(t *testing.T) {
	tag := func(s string) *string { return &s }
	for _, c := range []struct {
		family, name string
		tag          *string
		want         bool
	}{
		{"web", "web", nil, true},
		{"web", "web-1700000000", nil, true},
		{"web", "web_2", nil, true},
		{"web", "web.3", nil, true},
		{"web", "web/4", nil, true},
		{"web", "webapp-1", nil, false},
		{"web", "web2", nil, false},
		{"web", "my-web-1", nil, false},
		{"web", "golden", tag("web"), true},
		{"web", "golden", tag("webapp"), false},
		{"web-*", "web-1", nil, true},
		{"web-*", "web", nil, false},
		{"*/web-?", "team/web-1", nil, true},
		{"web.*", "webx1", nil, false},
		{"web*", "golden", tag("webapp"), true},
	} {
		if got := familyMatcher(c.family)(c.name, c.tag); got != c.want {
			t.Errorf("family %q, name %q, tag %v: %v, want %v", c.family, c.name, c.tag, got, c.want)
		}
	}
}
