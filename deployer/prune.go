package deployer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/inuse"
)

// FamilyTag marks an image as a member of a family whatever its name.
const FamilyTag = "phoenix:family"

// PruneOptions say which images PruneImages looks at and how many it keeps.
type PruneOptions struct {
	// Region is the clients' region, for the report.
	Region string
	// Family names the images: those whose Name is Family or starts with
	// Family followed by "-", "_", "." or "/", and those tagged
	// phoenix:family = Family. A Family with * or ? is a pattern matched
	// against the whole name and the tag, as EC2's name filter does.
	Family string
	// Keep is how many of the family's newest available images are kept
	// whether in use or not; at least 1.
	Keep int
	// DryRun decides and reports without changing anything.
	DryRun bool
}

// Validate reports every bad option as a *SettingError.
func (o PruneOptions) Validate() []error {
	var errs []error
	switch {
	case strings.TrimSpace(o.Family) == "":
		errs = append(errs, &SettingError{Setting: "family", Err: errors.New("family: say which image family to prune")})
	case strings.Trim(o.Family, "*?") == "":
		errs = append(errs, &SettingError{Setting: "family", Err: fmt.Errorf("family %q matches every image: name the family", o.Family)})
	}
	if o.Keep < 1 {
		errs = append(errs, &SettingError{Setting: "keep", Err: fmt.Errorf("keep %d: at least 1 image must be kept, rollbacks need one", o.Keep)})
	}
	return errs
}

// Prune actions.
const (
	PruneKeep       = "keep"
	PruneDeregister = "deregister"
)

// PruneImage is one image of the family and what pruning does with it.
type PruneImage struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	// Action is "keep" or "deregister".
	Action string `json:"action"`
	// Reasons say why a kept image is kept.
	Reasons []string `json:"reasons,omitempty"`
	// Snapshots are the image's EBS snapshots.
	Snapshots []string `json:"snapshots,omitempty"`
	// Deregistered and DeletedSnapshots are what was done (never in a
	// dry run).
	Deregistered     bool     `json:"deregistered,omitempty"`
	DeletedSnapshots []string `json:"deleted_snapshots,omitempty"`
	// Error is what went wrong deregistering it or deleting its
	// snapshots.
	Error string `json:"error,omitempty"`
}

// Tags prune puts on the snapshots it is about to delete, before it
// deregisters their image: EC2 may refuse DeleteSnapshot for a while after
// DeregisterImage (InvalidSnapshot.InUse), and a snapshot left behind that
// way, or by an interrupted prune, is found again by the next prune of the
// family and deleted then.
const (
	PrunedFromTag   = "phoenix:pruned-from"
	PrunedFamilyTag = "phoenix:pruned-family"
)

// PruneSnapshot is a snapshot an earlier prune of the family left behind:
// its image is gone and no other image uses it.
type PruneSnapshot struct {
	ID string `json:"id"`
	// Image is the deregistered AMI it backed.
	Image   string `json:"image"`
	Deleted bool   `json:"deleted,omitempty"`
	Error   string `json:"error,omitempty"`
}

// PruneSummary counts what a pruning decided and did.
type PruneSummary struct {
	Region string `json:"region"`
	Family string `json:"family"`
	Keep   int    `json:"keep"`
	DryRun bool   `json:"dry_run"`
	// Kept and ToDeregister are the decisions.
	Kept         int `json:"kept"`
	ToDeregister int `json:"to_deregister"`
	// Deregistered, SnapshotsDeleted and Failed are what happened.
	Deregistered     int `json:"deregistered"`
	SnapshotsDeleted int `json:"snapshots_deleted"`
	Failed           int `json:"failed"`
	// LeftBehind counts the snapshots earlier prunes left behind that
	// this one found; SnapshotsDeleted counts those it deleted too.
	LeftBehind int `json:"left_behind"`
}

// PruneResult is a pruning: every image of the family, newest first.
type PruneResult struct {
	PruneSummary
	Images []PruneImage `json:"images"`
	// LeftBehindSnapshots are the snapshots earlier prunes of the family
	// left behind.
	LeftBehindSnapshots []PruneSnapshot `json:"left_behind_snapshots,omitempty"`
}

// PruneImages deregisters the images of a family that are neither among
// the o.Keep newest available ones nor in use, and deletes their EBS
// snapshots. In use means: the image of the launch template version (or
// launch configuration) an Auto Scaling group uses, of the version an
// unfinished instance refresh moves to, or of the version a phoenix-made
// version in use replaced (phoenix rollback returns there); the image of
// an instance that is not terminated; an image sharing a snapshot with a
// kept image. Only images the caller owns are considered. Pending images
// are kept; disabled ones are not listed and never touched.
//
// Everything is read before the first change, and a failure to read is a
// refusal. A failure to deregister an image or delete a snapshot is
// reported in its PruneImage and the pruning goes on; the error then says
// how many failed.
func PruneImages(ctx context.Context, c Clients, o PruneOptions) (*PruneResult, error) {
	res := &PruneResult{PruneSummary: PruneSummary{Region: o.Region, Family: o.Family, Keep: o.Keep, DryRun: o.DryRun}}
	if errs := o.Validate(); len(errs) > 0 {
		return res, &Error{Outcome: Refused, Err: errors.Join(errs...)}
	}
	owned, err := ownedImages(ctx, c)
	if err != nil {
		return res, asRefused(err)
	}
	match := familyMatcher(o.Family)
	var family []ec2types.Image
	for _, im := range owned {
		if match(aws.ToString(im.Name), imageTag(im, FamilyTag)) {
			family = append(family, im)
		}
	}
	var ids []string
	for _, im := range family {
		ids = append(ids, aws.ToString(im.ImageId))
	}
	uses, err := readImageUses(ctx, c, ids)
	if err != nil {
		return res, asRefused(err)
	}
	res.Images = decidePrune(family, owned, o.Keep, uses)
	if res.LeftBehindSnapshots, err = leftBehind(ctx, c, o.Family, owned); err != nil {
		return res, asRefused(err)
	}
	res.LeftBehind = len(res.LeftBehindSnapshots)
	for _, im := range res.Images {
		if im.Action == PruneKeep {
			res.Kept++
		} else {
			res.ToDeregister++
		}
	}
	if o.DryRun {
		return res, nil
	}
	return res, applyPrune(ctx, c, res)
}

// leftBehind lists the snapshots earlier prunes of family tagged and could
// not delete (or were stopped before deleting): those whose image is gone
// and that back no image the account still owns.
func leftBehind(ctx context.Context, c Clients, family string, owned []ec2types.Image) ([]PruneSnapshot, error) {
	images := map[string]bool{}
	backed := map[string]bool{}
	for _, im := range owned {
		images[aws.ToString(im.ImageId)] = true
		for _, snap := range snapshotIDs(im) {
			backed[snap] = true
		}
	}
	var out []PruneSnapshot
	p := ec2.NewDescribeSnapshotsPaginator(c.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + PrunedFamilyTag), Values: []string{family}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing the snapshots earlier prunes of %s left behind: %w", family, err)
		}
		for _, snap := range page.Snapshots {
			id := aws.ToString(snap.SnapshotId)
			from := ""
			for _, t := range snap.Tags {
				if aws.ToString(t.Key) == PrunedFromTag {
					from = aws.ToString(t.Value)
				}
			}
			if images[from] || backed[id] {
				continue
			}
			out = append(out, PruneSnapshot{ID: id, Image: from})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ownedImages lists every image the caller owns in the region, deprecated
// ones included.
func ownedImages(ctx context.Context, c Clients) ([]ec2types.Image, error) {
	var out []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(c.EC2, &ec2.DescribeImagesInput{Owners: []string{"self"}, IncludeDeprecated: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing the images this account owns: %w", err)
		}
		out = append(out, page.Images...)
	}
	return out, nil
}

func imageTag(im ec2types.Image, key string) *string {
	for _, t := range im.Tags {
		if aws.ToString(t.Key) == key {
			return t.Value
		}
	}
	return nil
}

// familyMatcher is the family rule: the name is the family or starts with
// it and a separator, or the phoenix:family tag is the family; a family
// with * or ? is a pattern for the whole name and the tag instead.
func familyMatcher(family string) func(name string, tag *string) bool {
	if strings.ContainsAny(family, "*?") {
		re := wildcard(family)
		return func(name string, tag *string) bool {
			return re.MatchString(name) || tag != nil && re.MatchString(*tag)
		}
	}
	return func(name string, tag *string) bool {
		if tag != nil && *tag == family {
			return true
		}
		rest, ok := strings.CutPrefix(name, family)
		return ok && (rest == "" || strings.ContainsRune("-_./", rune(rest[0])))
	}
}

// wildcard turns an EC2 filter value into a regexp: * any run of
// characters (/ included), ? one character.
func wildcard(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// unfinishedRefresh: Auto Scaling is still moving the group to the
// refresh's desired configuration, or back from it.
var unfinishedRefresh = map[astypes.InstanceRefreshStatus]bool{
	astypes.InstanceRefreshStatusPending:            true,
	astypes.InstanceRefreshStatusInProgress:         true,
	astypes.InstanceRefreshStatusCancelling:         true,
	astypes.InstanceRefreshStatusRollbackInProgress: true,
	astypes.InstanceRefreshStatusBaking:             true,
}

// previousAMI is the AMI a phoenix version's description names as the
// one it replaced.
var previousAMI = regexp.MustCompile(`^phoenix: ami-[0-9a-f]+, previous version \d+ \((ami-[0-9a-f]+)\)`)

// liveInstanceStates are every state but terminated.
var liveInstanceStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// readImageUses says, per AMI, who uses it: Auto Scaling groups through
// their launch template versions or launch configurations, unfinished
// instance refreshes, the versions phoenix rollback returns to, and the
// instances of ids that are not terminated.
func readImageUses(ctx context.Context, c Clients, ids []string) (map[string][]string, error) {
	uses := map[string][]string{}
	use := func(ami, why string) {
		if ami != "" && !contains(uses[ami], why) {
			uses[ami] = append(uses[ami], why)
		}
	}
	s := &Session{Clients: c, ltVer: map[string]*TemplateVersion{}}
	params := map[string]bool{} // SSM parameters whose history is read
	// version records that group uses spec, and the version phoenix
	// rollback would return to from it.
	version := func(spec *astypes.LaunchTemplateSpecification, why func(*TemplateVersion) string, group string) error {
		if spec == nil {
			return nil
		}
		ver := aws.ToString(spec.Version)
		if ver == "" {
			ver = "$Default"
		}
		tv, err := s.templateVersion(ctx, aws.ToString(spec.LaunchTemplateId), aws.ToString(spec.LaunchTemplateName), ver)
		if err != nil {
			return fmt.Errorf("auto scaling group %q: %w", group, err)
		}
		use(tv.AMI, why(tv))
		if tv.Alias != "" && !params[parseAlias(tv.Alias).Name] {
			name := parseAlias(tv.Alias).Name
			params[name] = true
			ip, err := s.imageParameter(ctx, tv.Alias)
			if err != nil {
				return fmt.Errorf("auto scaling group %q: %w", group, err)
			}
			for _, v := range ip.Versions {
				what := fmt.Sprintf("version %d", v.Version)
				if len(v.Labels) > 0 {
					what += " (labels " + strings.Join(v.Labels, ", ") + ")"
				}
				use(v.AMI, fmt.Sprintf("%s of SSM parameter %s, which auto scaling group %s launches from (phoenix rollback returns there)", what, name, group))
			}
		}
		if a := lcPrevious.FindStringSubmatch(tv.Description); a != nil {
			use(a[2], fmt.Sprintf("rollback target of auto scaling group %s (%s replaced launch configuration %s)", group, tv, a[1]))
		}
		m := previousVersion.FindStringSubmatch(tv.Description)
		if m == nil {
			return nil
		}
		rollback := fmt.Sprintf("rollback target of auto scaling group %s (%s replaced version %s)", group, tv, m[1])
		// The AMI the description names is kept too: the version may be
		// gone, or (blue-green with a template per colour) be another
		// template's.
		if a := previousAMI.FindStringSubmatch(tv.Description); a != nil {
			use(a[1], rollback)
		}
		if prev, err := s.templateVersion(ctx, tv.ID, "", m[1]); err == nil {
			use(prev.AMI, rollback)
		}
		return nil
	}
	// specs are the launch templates of a group or a refresh's desired
	// configuration.
	specs := func(lt *astypes.LaunchTemplateSpecification, mip *astypes.MixedInstancesPolicy) []*astypes.LaunchTemplateSpecification {
		out := []*astypes.LaunchTemplateSpecification{lt}
		if mip != nil && mip.LaunchTemplate != nil {
			out = append(out, mip.LaunchTemplate.LaunchTemplateSpecification)
			for _, ov := range mip.LaunchTemplate.Overrides {
				out = append(out, ov.LaunchTemplateSpecification)
			}
		}
		return out
	}
	configs := map[string][]string{} // launch configuration -> groups
	groups := autoscaling.NewDescribeAutoScalingGroupsPaginator(c.AutoScaling, &autoscaling.DescribeAutoScalingGroupsInput{})
	for groups.HasMorePages() {
		page, err := groups.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing auto scaling groups: %w", err)
		}
		for _, g := range page.AutoScalingGroups {
			name := aws.ToString(g.AutoScalingGroupName)
			for _, spec := range specs(g.LaunchTemplate, g.MixedInstancesPolicy) {
				why := func(tv *TemplateVersion) string { return fmt.Sprintf("in use by auto scaling group %s (%s)", name, tv) }
				if err := version(spec, why, name); err != nil {
					return nil, err
				}
			}
			if lc := aws.ToString(g.LaunchConfigurationName); lc != "" {
				configs[lc] = append(configs[lc], name)
			}
			refreshes, err := c.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(name)})
			if err != nil {
				return nil, fmt.Errorf("describing instance refreshes of %q: %w", name, err)
			}
			for _, rf := range refreshes.InstanceRefreshes {
				dc := rf.DesiredConfiguration
				if !unfinishedRefresh[rf.Status] || dc == nil {
					continue
				}
				id := aws.ToString(rf.InstanceRefreshId)
				for _, spec := range specs(dc.LaunchTemplate, dc.MixedInstancesPolicy) {
					why := func(tv *TemplateVersion) string {
						return fmt.Sprintf("target of instance refresh %s of auto scaling group %s (%s)", id, name, tv)
					}
					if err := version(spec, why, name); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if len(configs) > 0 {
		var names []string
		for n := range configs {
			names = append(names, n)
		}
		sort.Strings(names)
		lcs := autoscaling.NewDescribeLaunchConfigurationsPaginator(c.AutoScaling, &autoscaling.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: names})
		for lcs.HasMorePages() {
			page, err := lcs.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing launch configurations: %w", err)
			}
			for _, lc := range page.LaunchConfigurations {
				n := aws.ToString(lc.LaunchConfigurationName)
				for _, g := range configs[n] {
					use(aws.ToString(lc.ImageId), fmt.Sprintf("in use by auto scaling group %s (launch configuration %s)", g, n))
				}
			}
		}
	}
	// EC2 takes up to 200 values per filter.
	for start := 0; start < len(ids); start += 200 {
		chunk := ids[start:min(start+200, len(ids))]
		running := map[string][]string{}
		other := map[string][]string{}
		p := ec2.NewDescribeInstancesPaginator(c.EC2, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("image-id"), Values: chunk},
			{Name: aws.String("instance-state-name"), Values: liveInstanceStates},
		}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing the instances of the family's images: %w", err)
			}
			for _, r := range page.Reservations {
				for _, in := range r.Instances {
					ami, id := aws.ToString(in.ImageId), aws.ToString(in.InstanceId)
					if in.State != nil && in.State.Name == ec2types.InstanceStateNameRunning {
						running[ami] = append(running[ami], id)
					} else if in.State != nil {
						other[ami] = append(other[ami], fmt.Sprintf("%s (%s)", id, in.State.Name))
					}
				}
			}
		}
		for ami, ins := range running {
			use(ami, "running on "+idList(ins))
		}
		for ami, ins := range other {
			use(ami, "used by instance "+idList(ins))
		}
	}
	return uses, nil
}

// idList names up to three ids and counts the rest.
func idList(ids []string) string {
	sort.Strings(ids)
	if len(ids) <= 3 {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:3], ", "), len(ids)-3)
}

func snapshotIDs(im ec2types.Image) []string {
	var out []string
	for _, b := range im.BlockDeviceMappings {
		if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" && !contains(out, aws.ToString(b.Ebs.SnapshotId)) {
			out = append(out, aws.ToString(b.Ebs.SnapshotId))
		}
	}
	return out
}

// decidePrune decides for each image of family, newest first: the keep
// newest available ones are kept, and so is every image in uses, every
// pending one and every one sharing a snapshot with an image that stays
// (owned lists them all).
func decidePrune(family, owned []ec2types.Image, keep int, uses map[string][]string) []PruneImage {
	out := make([]PruneImage, 0, len(family))
	for _, im := range family {
		created, _ := time.Parse(time.RFC3339, aws.ToString(im.CreationDate))
		out = append(out, PruneImage{ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), State: string(im.State), Created: created.UTC(), Snapshots: snapshotIDs(im)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID > out[j].ID
	})
	newest := 0
	for i := range out {
		im := &out[i]
		switch ec2types.ImageState(im.State) {
		case ec2types.ImageStateAvailable:
			if newest < keep {
				newest++
				im.Reasons = append(im.Reasons, "newest "+strconv.Itoa(keep))
			}
		case ec2types.ImageStatePending:
			im.Reasons = append(im.Reasons, "pending: not available yet")
		}
		im.Reasons = append(im.Reasons, uses[im.ID]...)
	}
	// An image goes only when none of its snapshots backs an image that
	// stays; keeping one can keep another, so repeat until nothing moves.
	backs := map[string][]string{} // snapshot -> images, in owned's order
	for _, im := range owned {
		for _, snap := range snapshotIDs(im) {
			backs[snap] = append(backs[snap], aws.ToString(im.ImageId))
		}
	}
	going := map[string]bool{}
	for _, im := range out {
		if len(im.Reasons) == 0 {
			going[im.ID] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for i := range out {
			im := &out[i]
			if !going[im.ID] {
				continue
			}
			for _, snap := range im.Snapshots {
				for _, other := range backs[snap] {
					if other != im.ID && !going[other] {
						im.Reasons = append(im.Reasons, fmt.Sprintf("snapshot %s also backs %s, which is kept", snap, other))
						going[im.ID], changed = false, true
						break
					}
				}
				if !going[im.ID] {
					break
				}
			}
		}
	}
	for i := range out {
		out[i].Action = PruneKeep
		if going[out[i].ID] {
			out[i].Action = PruneDeregister
		}
	}
	return out
}

// applyPrune deregisters the images to go, oldest first, and deletes each
// one's snapshots after it; a snapshot two of them share is deleted after
// the last. A failure is recorded and the rest goes on.
func applyPrune(ctx context.Context, c Clients, res *PruneResult) error {
	last := map[string]int{} // snapshot -> index of the last image to go that uses it
	for i := len(res.Images) - 1; i >= 0; i-- {
		if im := res.Images[i]; im.Action == PruneDeregister {
			for _, snap := range im.Snapshots {
				last[snap] = i
			}
		}
	}
	var failed []string
	for i := len(res.Images) - 1; i >= 0; i-- {
		im := &res.Images[i]
		if im.Action != PruneDeregister {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pruning %s interrupted (%w) before %s: run it again to go on", res.Family, err, im.ID)
		}
		var errs []string
		var snaps []string // deleted after this image
		for _, snap := range im.Snapshots {
			if last[snap] == i {
				snaps = append(snaps, snap)
			}
		}
		if err := markForPrune(ctx, c, res.Family, im.ID, snaps); err != nil {
			errs = append(errs, err.Error())
		} else if _, err := c.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(im.ID)}); err != nil {
			errs = append(errs, fmt.Sprintf("deregistering: %v", err))
		} else {
			im.Deregistered = true
			res.Deregistered++
			for _, snap := range snaps {
				if err := deleteSnapshot(ctx, c, snap); err != nil {
					errs = append(errs, fmt.Sprintf("deleting snapshot %s (left behind, tagged %s=%s: the next prune of %s deletes it): %v", snap, PrunedFamilyTag, res.Family, res.Family, err))
					continue
				}
				im.DeletedSnapshots = append(im.DeletedSnapshots, snap)
				res.SnapshotsDeleted++
			}
		}
		if len(errs) > 0 {
			im.Error = strings.Join(errs, "; ")
			res.Failed++
			failed = append(failed, im.ID+": "+im.Error)
		}
	}
	var snapFailed []string
	for i := range res.LeftBehindSnapshots {
		sn := &res.LeftBehindSnapshots[i]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pruning %s interrupted (%w) before snapshot %s: run it again to go on", res.Family, err, sn.ID)
		}
		if err := deleteSnapshot(ctx, c, sn.ID); err != nil && inuse.Code(err) != "InvalidSnapshot.NotFound" {
			sn.Error = err.Error()
			res.Failed++
			snapFailed = append(snapFailed, sn.ID+": "+sn.Error)
			continue
		}
		sn.Deleted = true
		res.SnapshotsDeleted++
	}
	var msgs []string
	if len(failed) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d images failed: %s", len(failed), res.ToDeregister, strings.Join(failed, "; ")))
	}
	if len(snapFailed) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d snapshots earlier prunes left behind failed: %s", len(snapFailed), len(res.LeftBehindSnapshots), strings.Join(snapFailed, "; ")))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("pruning %s: %s", res.Family, strings.Join(msgs, "; "))
	}
	return nil
}

// snapshotInUseLimit is how long a prune retries a snapshot EC2 still
// says is in use after its image was deregistered.
var snapshotInUseLimit = inuse.Limit

// deleteSnapshot deletes a snapshot, retrying while EC2 still says it is
// in use, as the builder's cleanup does.
func deleteSnapshot(ctx context.Context, c Clients, id string) error {
	return inuse.Retry(ctx, snapshotInUseLimit, func() error {
		_, err := c.EC2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
		return err
	})
}

// markForPrune tags the snapshots to be deleted after image, before the
// image is deregistered, so that one left behind is found again.
func markForPrune(ctx context.Context, c Clients, family, image string, snaps []string) error {
	if len(snaps) == 0 {
		return nil
	}
	_, err := c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: snaps, Tags: []ec2types.Tag{
		{Key: aws.String(PrunedFromTag), Value: aws.String(image)},
		{Key: aws.String(PrunedFamilyTag), Value: aws.String(family)},
	}})
	if err != nil {
		return fmt.Errorf("tagging its snapshots %s before deregistering it (so that one left behind is found again; nothing changed): %w", strings.Join(snaps, ", "), err)
	}
	return nil
}
