package deploytest

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// The leak check. Removing a group, a launch template or a tagged image
// removes everything inside it, so an empty inventory at the end proves
// nothing about what the code under test left inside the resources the
// fixture made: a launch template version nobody can launch, a scheduled
// action, a phoenix:* group tag, an instance left in Standby or
// protected, an extra image. So the fixture records what each of its own
// builders made (the inventory's difference across the builder, nested
// resources included), and when the test ends, before the fixture
// removes anything, it compares the inventory of its account and region
// with that record. What the code under test leaves by design is allowed
// by name: the version a group runs or that its template resolves to
// ($Latest, $Default) or that Auto Scaling launched from, the deploy lock
// parameter phoenix keeps per group (released; deployer/lockparam.go) and
// its deploy history (deployer/history.go), and what the test declares
// with CleanupImagesTagged or Allow.

// owned reports whether the leak check compares r: instances and their
// volumes come and go with the groups that own them (the final empty
// inventory covers them), everything else is compared.
func owned(r sandbox.Resource) bool {
	return r.Type != "instance" && r.Type != "volume"
}

// snapshot is the inventory of the fixture's account and region by key.
func (f *Fixture) snapshot() map[string]sandbox.Resource {
	m := map[string]sandbox.Resource{}
	for _, r := range f.SB.Inventory() {
		if r.Account == f.account && r.Region == f.Region && owned(r) {
			m[r.Key()] = r
		}
	}
	return m
}

// adopt records what appeared since before as the fixture's: each of
// its builders starts with defer f.adopt(f.snapshot()).
func (f *Fixture) adopt(before map[string]sandbox.Resource) {
	for k, r := range f.snapshot() {
		if _, ok := before[k]; !ok {
			f.baseline[k] = r
		}
	}
}

// Setup runs do, a test's own piece of infrastructure code (a lifecycle
// hook, a warm pool, an instance put in Standby), and records what it
// made as the fixture's, so that the leak check does not count it
// against the code under test.
func (f *Fixture) Setup(do func()) {
	defer f.adopt(f.snapshot())
	do()
}

// Allow declares resources the code under test leaves by design (the
// leak check does not report them): allow is called for each resource
// the fixture did not make.
func (f *Fixture) Allow(allow func(sandbox.Resource) bool) {
	f.allowed = append(f.allowed, allow)
}

// cleanup registers fn to run when the test ends, after the leak check
// and in the reverse order of registration, as t.Cleanup does.
func (f *Fixture) cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// checkLeaks reports every resource of the fixture's account and region
// that the fixture did not make and nothing allows.
func (f *Fixture) checkLeaks() {
	f.T.Helper()
	ctx := context.Background()
	refs := f.runningVersions(ctx)
	// The snapshots of the fixture's images may appear after its builder
	// returned (ImageOptions.Pending).
	var mine []string
	for _, r := range f.baseline {
		if r.Type == "image" {
			mine = append(mine, r.ID)
		}
	}
	mine = append(mine, f.images...)
	snaps := f.snapshotsOf(ctx, mine)
	var left []sandbox.Resource
	for k, r := range f.snapshot() {
		if _, ok := f.baseline[k]; ok {
			continue
		}
		if r.Type == "snapshot" && snaps[r.ID] || f.allowedByDesign(r, refs) {
			continue
		}
		left = append(left, r)
	}
	sort.Slice(left, func(i, j int) bool { return left[i].Key() < left[j].Key() })
	for _, r := range left {
		what := r.Service + " " + r.Type + " " + r.ID
		if r.Name != "" && r.Name != r.ID {
			what += " (" + r.Name + ")"
		}
		if r.State != "" {
			what += " [" + r.State + "]"
		}
		f.T.Errorf("left by the code under test in %s: %s", f.Region, what)
	}
}

func (f *Fixture) allowedByDesign(r sandbox.Resource, refs map[string]bool) bool {
	switch r.Type {
	case "launch-template-version":
		// A version a group runs or its template resolves to is the
		// deploy's outcome; one Auto Scaling launched from is the history
		// of a deploy that ran (kept, as infrastructure code keeps its
		// versions). One that nothing ever ran is a leak.
		if refs[r.ID] || strings.Contains(r.State, "latest") || strings.Contains(r.State, "default") || strings.Contains(r.State, "launched") {
			return true
		}
	case "parameter":
		// The released lock phoenix keeps per group, and the deploy
		// history it records per target (deployer/history.go).
		if strings.HasPrefix(r.ID, deployer.LockParameterPath) || strings.HasPrefix(r.ID, deployer.HistoryParameterPath) {
			return true
		}
	}
	for _, allow := range f.allowed {
		if allow(r) {
			return true
		}
	}
	return false
}

// runningVersions is the set of launch template versions ("lt-…:N") that
// a group of the region launches from or that an instance of one runs.
func (f *Fixture) runningVersions(ctx context.Context) map[string]bool {
	f.T.Helper()
	refs := map[string]bool{}
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(f.Clients.AutoScaling, &autoscaling.DescribeAutoScalingGroupsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			f.T.Errorf("leak check: describing groups: %v", err)
			return refs
		}
		for _, g := range out.AutoScalingGroups {
			add := func(id, version *string) {
				if id == nil || version == nil {
					return
				}
				v := aws.ToString(version)
				if _, err := strconv.Atoi(v); err == nil {
					refs[aws.ToString(id)+":"+v] = true
				}
			}
			if lt := g.LaunchTemplate; lt != nil {
				add(f.templateID(ctx, lt.LaunchTemplateId, lt.LaunchTemplateName), lt.Version)
			}
			if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil && m.LaunchTemplate.LaunchTemplateSpecification != nil {
				lt := m.LaunchTemplate.LaunchTemplateSpecification
				add(f.templateID(ctx, lt.LaunchTemplateId, lt.LaunchTemplateName), lt.Version)
			}
			for _, in := range g.Instances {
				if lt := in.LaunchTemplate; lt != nil {
					add(f.templateID(ctx, lt.LaunchTemplateId, lt.LaunchTemplateName), lt.Version)
				}
			}
		}
	}
	return refs
}

// templateID is the ID of the template a reference names by ID or name.
func (f *Fixture) templateID(ctx context.Context, id, name *string) *string {
	if id != nil {
		return id
	}
	if name == nil {
		return nil
	}
	out, err := f.Clients.EC2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{aws.ToString(name)}})
	if err != nil || len(out.LaunchTemplates) == 0 {
		return nil
	}
	return out.LaunchTemplates[0].LaunchTemplateId
}

// imageParts is the set of inventory IDs of the images the account owns
// in the region that carry tag key, and of their snapshots.
func (f *Fixture) imageParts(ctx context.Context, key string) (images, snapshots map[string]bool) {
	images, snapshots = map[string]bool{}, map[string]bool{}
	out, err := f.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{key}}}})
	if err != nil {
		f.T.Errorf("leak check: describing images tagged %s: %v", key, err)
		return
	}
	for _, im := range out.Images {
		images[aws.ToString(im.ImageId)] = true
		for _, b := range im.BlockDeviceMappings {
			if b.Ebs != nil && b.Ebs.SnapshotId != nil {
				snapshots[aws.ToString(b.Ebs.SnapshotId)] = true
			}
		}
	}
	return images, snapshots
}

// snapshotsOf is the set of the snapshots of images ids.
func (f *Fixture) snapshotsOf(ctx context.Context, ids []string) map[string]bool {
	snaps := map[string]bool{}
	for _, id := range ids {
		out, err := f.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil {
			continue // deregistered by the test
		}
		for _, im := range out.Images {
			for _, b := range im.BlockDeviceMappings {
				if b.Ebs != nil && b.Ebs.SnapshotId != nil {
					snaps[aws.ToString(b.Ebs.SnapshotId)] = true
				}
			}
		}
	}
	return snaps
}
