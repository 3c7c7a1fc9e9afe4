package sandbox

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AMIs, EBS snapshots and volumes: DescribeImages, CreateImage, CopyImage,
// DeregisterImage, the image and snapshot attributes, image deprecation,
// DescribeSnapshots, DeleteSnapshot, DescribeVolumes and
// GetEbsDefaultKmsKeyId, plus the controller that completes images and
// snapshots when their time comes.

func init() {
	for name, h := range map[string]handler{
		"DescribeImages":            ec2DescribeImages,
		"CreateImage":               ec2CreateImage,
		"CopyImage":                 ec2CopyImage,
		"DeregisterImage":           ec2DeregisterImage,
		"ModifyImageAttribute":      ec2ModifyImageAttribute,
		"DescribeImageAttribute":    ec2DescribeImageAttribute,
		"ResetImageAttribute":       ec2ResetImageAttribute,
		"EnableImageDeprecation":    ec2EnableImageDeprecation,
		"DisableImageDeprecation":   ec2DisableImageDeprecation,
		"DescribeSnapshots":         ec2DescribeSnapshots,
		"DeleteSnapshot":            ec2DeleteSnapshot,
		"ModifySnapshotAttribute":   ec2ModifySnapshotAttribute,
		"DescribeSnapshotAttribute": ec2DescribeSnapshotAttribute,
		"DescribeVolumes":           ec2DescribeVolumes,
		"GetEbsDefaultKmsKeyId":     ec2GetEbsDefaultKmsKeyID,
	} {
		register("ec2", name, h)
	}
	addController(imageController)
}

var (
	amiIDPattern     = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	snapIDPattern    = regexp.MustCompile(`^snap-([0-9a-f]{8}|[0-9a-f]{17})$`)
	volIDPattern     = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	instIDPattern    = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
	// AMI names: 3-128 letters, digits, ( ) [ ] space . / - ' @ _
	amiNamePattern = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)
)

// checkIDs validates an id list against pattern, answering a malformed id
// with code as EC2 does.
func checkIDs(ids []string, pattern *regexp.Regexp, code string) *APIError {
	for _, id := range ids {
		if !pattern.MatchString(id) {
			prefix := id
			if i := strings.IndexByte(id, '-'); i > 0 {
				prefix = id[:i]
			}
			if pattern == amiIDPattern {
				prefix = "ami"
			}
			return errf(code, "Invalid id: \"%s\" (expecting \"%s-...\")", id, prefix)
		}
	}
	return nil
}

// ebsMaxResults reads MaxResults for the EBS describes: below min is an
// error, above max is capped as AWS does. ids says whether an id list was
// sent too, which AWS refuses for snapshots and volumes.
func ebsMaxResults(p Params, min, max int, idParam string, ids bool) (int, *APIError) {
	n, err := p.Int("MaxResults", 0)
	if err != nil || !p.Has("MaxResults") {
		return 0, err
	}
	if ids && idParam != "" {
		return 0, errf("InvalidParameterCombination", "The parameter %s cannot be used with the parameter maxResults", idParam)
	}
	if n < min {
		return 0, errf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value greater than %d.", n, min)
	}
	if n > max {
		n = max
	}
	return n, nil
}

// filterTable maps EC2 filter names to a resource's values.
type filterTable[T any] map[string]func(T) []string

func (t filterTable[T]) fields(v T) FilterFields {
	return func(name string) ([]string, bool) {
		f, ok := t[name]
		if !ok {
			return nil, false
		}
		return f(v), true
	}
}

// nonNil drops the nil elements (absent optional output) of a result.
func nonNil(xs ...*X) []*X { return E("", xs...).Kids }

// okReturn is the <return>true</return> of EC2 actions without output.
func okReturn() []*X { return []*X{T("return", "true")} }

func fvOne(s string) []string    { return []string{s} }
func fvBool(b bool) []string     { return fvOne(strconv.FormatBool(b)) }
func fvInt(n int) []string       { return fvOne(strconv.Itoa(n)) }
func timeStr(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// optInt64 renders n, or nothing when it is 0.
func optInt64(name string, n int64) *X {
	if n == 0 {
		return nil
	}
	return T(name, strconv.FormatInt(n, 10))
}
func fvOpt(s string) []string {
	if s == "" {
		return nil
	}
	return fvOne(s)
}

// Images.

// imageVisible reports whether the caller may see im: its own images and
// the public ones and those shared with it.
func (c *call) imageVisible(im *Image) bool {
	if im.State == "deregistered" || (!im.Builtin && c.hidden(im.Created)) {
		return false
	}
	return c.r.mayLaunch(im)
}

func (im *Image) deprecated(now time.Time) bool {
	return !im.DeprecationTime.IsZero() && !now.Before(im.DeprecationTime)
}

func (im *Image) stateReason() (code, msg string) {
	if im.StateReason == "" {
		return "", ""
	}
	code, msg, ok := strings.Cut(im.StateReason, ": ")
	if !ok {
		return im.StateReason, im.StateReason
	}
	return code, msg
}

func (im *Image) usageOperation() string {
	if im.Platform == "windows" {
		return "RunInstances:0002"
	}
	return "RunInstances"
}

func imageBDMFilter(f func(ImageBlockDevice) string) func(*Image) []string {
	return func(im *Image) []string {
		var out []string
		for _, b := range im.BlockDevices {
			if b.VirtualName == "" && !b.NoDevice {
				out = append(out, f(b))
			}
		}
		return out
	}
}

var imageFilters = filterTable[*Image]{
	"architecture": func(im *Image) []string { return fvOne(im.Architecture) },
	"block-device-mapping.delete-on-termination": imageBDMFilter(func(b ImageBlockDevice) string { return strconv.FormatBool(b.DeleteOnTermination) }),
	"block-device-mapping.device-name":           imageBDMFilter(func(b ImageBlockDevice) string { return b.DeviceName }),
	"block-device-mapping.snapshot-id":           imageBDMFilter(func(b ImageBlockDevice) string { return b.SnapshotID }),
	"block-device-mapping.volume-size":           imageBDMFilter(func(b ImageBlockDevice) string { return strconv.Itoa(b.VolumeSize) }),
	"block-device-mapping.volume-type":           imageBDMFilter(func(b ImageBlockDevice) string { return b.VolumeType }),
	"block-device-mapping.encrypted":             imageBDMFilter(func(b ImageBlockDevice) string { return strconv.FormatBool(b.Encrypted) }),
	"boot-mode":                                  func(im *Image) []string { return fvOpt(im.BootMode) },
	"creation-date":                              func(im *Image) []string { return fvOne(timeStr(im.CreationDate)) },
	"description":                                func(im *Image) []string { return fvOne(im.Description) },
	"ena-support":                                func(im *Image) []string { return fvBool(im.EnaSupport) },
	"hypervisor":                                 func(im *Image) []string { return fvOne("xen") },
	"image-id":                                   func(im *Image) []string { return fvOne(im.ID) },
	"image-type":                                 func(im *Image) []string { return fvOne("machine") },
	"is-public":                                  func(im *Image) []string { return fvBool(im.Public()) },
	"name":                                       func(im *Image) []string { return fvOne(im.Name) },
	"owner-alias":                                func(im *Image) []string { return fvOpt(im.OwnerAlias) },
	"owner-id":                                   func(im *Image) []string { return fvOne(im.OwnerID) },
	"platform":                                   func(im *Image) []string { return fvOpt(im.Platform) },
	"root-device-name":                           func(im *Image) []string { return fvOne(im.RootDeviceName) },
	"root-device-type":                           func(im *Image) []string { return fvOne(im.RootDeviceType) },
	"source-image-id":                            func(im *Image) []string { return fvOpt(im.SourceImageID) },
	"source-image-region":                        func(im *Image) []string { return fvOpt(im.SourceRegion) },
	"source-instance-id":                         func(im *Image) []string { return fvOpt(im.SourceInstanceID) },
	"state":                                      func(im *Image) []string { return fvOne(im.State) },
	"state-reason-code":                          func(im *Image) []string { c, _ := im.stateReason(); return fvOpt(c) },
	"state-reason-message":                       func(im *Image) []string { _, m := im.stateReason(); return fvOpt(m) },
	"virtualization-type":                        func(im *Image) []string { return fvOne(im.VirtualizationType) },
}

// ownerMatcher turns the Owner.N values into a predicate.
func ownerMatcher(account string, owners []string) (func(ownerID, alias string) bool, *APIError) {
	if len(owners) == 0 {
		return func(string, string) bool { return true }, nil
	}
	ids, aliases := map[string]bool{}, map[string]bool{}
	for _, o := range owners {
		switch {
		case o == "self":
			ids[account] = true
		case o == "amazon" || o == "aws-marketplace" || o == "aws-backup-vault":
			aliases[o] = true
		case accountIDPattern.MatchString(o):
			ids[o] = true
		default:
			return nil, errf("InvalidUserID.Malformed", "Invalid user id: \"%s\"", o)
		}
	}
	return func(ownerID, alias string) bool { return ids[ownerID] || (alias != "" && aliases[alias]) }, nil
}

func ec2DescribeImages(c *call) (any, *APIError) {
	ids := c.p.List("ImageId")
	if err := checkIDs(ids, amiIDPattern, "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	owner, err := ownerMatcher(c.r.Account, c.p.List("Owner"))
	if err != nil {
		return nil, err
	}
	var execBy []func(*Image) bool
	for _, e := range c.p.List("ExecutableBy") {
		switch {
		case e == "all":
			execBy = append(execBy, (*Image).Public)
		case e == "self" || accountIDPattern.MatchString(e):
			acct := e
			if e == "self" {
				acct = c.r.Account
			}
			execBy = append(execBy, func(im *Image) bool { return contains(im.Permissions.UserIDs, acct) })
		default:
			return nil, errf("InvalidUserID.Malformed", "Invalid user id: \"%s\"", e)
		}
	}
	includeDeprecated, err := c.p.Bool("IncludeDeprecated", false)
	if err != nil {
		return nil, err
	}
	// The API reference gives DescribeImages no lower bound.
	max, err := ebsMaxResults(c.p, 1, 1000, "", false)
	if err != nil {
		return nil, err
	}
	now := c.w.now()
	var images []*Image
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			im, ok := c.image(id)
			if !ok || !c.imageVisible(im) {
				missing = append(missing, id)
				continue
			}
			images = append(images, im)
		}
		if len(missing) == 1 {
			return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", missing[0])
		} else if len(missing) > 1 {
			return nil, errf("InvalidAMIID.NotFound", "The image ids '[%s]' do not exist", strings.Join(missing, ", "))
		}
	} else {
		for _, im := range append(mapValues(c.r.Images), c.sharedImages()...) {
			// Deprecated images are hidden unless asked for by id, with
			// IncludeDeprecated, or owned by the caller.
			if c.imageVisible(im) && (includeDeprecated || im.OwnerID == c.r.Account || !im.deprecated(now)) {
				images = append(images, im)
			}
		}
	}
	var out []*Image
	for _, im := range images {
		if !owner(im.OwnerID, im.OwnerAlias) {
			continue
		}
		if len(execBy) > 0 {
			ok := false
			for _, f := range execBy {
				ok = ok || f(im)
			}
			if !ok {
				continue
			}
		}
		ok, err := matchFilters(filters, c.imageTagsView(im), imageFilters.fields(im))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, im)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	pg, next, err := page(out, c.p.Get("NextToken"), max)
	if err != nil {
		return nil, err
	}
	return nonNil(List("imagesSet", Items("item", pg, c.renderImage)), Opt("nextToken", next)), nil
}

func (c *call) renderImage(im *Image) []*X {
	var bdms []*X
	for _, b := range im.BlockDevices {
		x := E("item", T("deviceName", b.DeviceName), Opt("virtualName", b.VirtualName))
		if b.NoDevice {
			x.Kids = append(x.Kids, T("noDevice", ""))
		} else if b.VirtualName == "" {
			ebs := E("ebs", Opt("snapshotId", b.SnapshotID), I("volumeSize", b.VolumeSize),
				B("deleteOnTermination", b.DeleteOnTermination), T("volumeType", b.VolumeType), B("encrypted", b.Encrypted))
			x.Kids = append(x.Kids, ebs)
		}
		bdms = append(bdms, x)
	}
	var reason *X
	if code, msg := im.stateReason(); code != "" {
		reason = E("stateReason", T("code", code), T("message", msg))
	}
	location := im.OwnerID + "/" + im.Name
	if im.OwnerAlias != "" {
		location = im.OwnerAlias + "/" + im.Name
	}
	var deprecation *X
	if !im.DeprecationTime.IsZero() {
		deprecation = T("deprecationTime", timeStr(im.DeprecationTime))
	}
	return []*X{
		T("imageId", im.ID),
		T("imageLocation", location),
		T("imageState", im.State),
		T("imageOwnerId", im.OwnerID),
		T("creationDate", timeStr(im.CreationDate)),
		B("isPublic", im.Public()),
		T("architecture", im.Architecture),
		T("imageType", "machine"),
		Opt("platform", im.Platform),
		Opt("platformDetails", im.PlatformDetails),
		T("usageOperation", im.usageOperation()),
		Opt("imageOwnerAlias", im.OwnerAlias),
		T("name", im.Name),
		Opt("description", im.Description),
		T("rootDeviceType", im.RootDeviceType),
		Opt("rootDeviceName", im.RootDeviceName),
		List("blockDeviceMapping", bdms),
		T("virtualizationType", im.VirtualizationType),
		T("hypervisor", "xen"),
		B("enaSupport", im.EnaSupport),
		Opt("bootMode", im.BootMode),
		Opt("imdsSupport", im.ImdsSupport),
		deprecation,
		Opt("sourceInstanceId", im.SourceInstanceID),
		Opt("sourceImageId", im.SourceImageID),
		Opt("sourceImageRegion", im.SourceRegion),
		reason,
		renderTagSet(c.imageTagsView(im)),
	}
}

// checkImageName applies AWS's AMI name rules and the per-owner, per-region
// uniqueness of names.
func (r *Region) checkImageName(name string) *APIError {
	if name == "" {
		return errf("MissingParameter", "The request must contain the parameter name")
	}
	if !amiNamePattern.MatchString(name) {
		return errf("InvalidAMIName.Malformed", "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'")
	}
	for _, im := range r.Images {
		if im.OwnerID == r.Account && im.Name == name && im.State != "deregistered" {
			return errf("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s", name, im.ID)
		}
	}
	return nil
}

func checkDescription(d string) *APIError {
	if len(d) > 255 {
		return errf("InvalidParameterValue", "Value for parameter description is invalid. Length must be less than or equal to 255.")
	}
	return nil
}

// ownImage finds an image the caller owns, for the actions only the owner
// may take.
func (c *call) ownImage(id string) (*Image, *APIError) {
	if id == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter ImageId")
	}
	if err := checkIDs([]string{id}, amiIDPattern, "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	im, ok := c.image(id)
	if !ok || !c.imageVisible(im) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	if im.OwnerID != c.r.Account {
		return nil, errf("AuthFailure", "Not authorized for image:%s", id)
	}
	return im, nil
}

// snapshotProgress is a pending snapshot's progress on the clock.
func snapshotProgress(s *Snapshot, now time.Time) int {
	if s.State != "pending" {
		return s.Progress
	}
	total := s.readyAt.Sub(s.StartTime)
	if total <= 0 {
		return 99
	}
	p := int(100 * now.Sub(s.StartTime) / total)
	return max(0, min(p, 99))
}

func ec2CreateImage(c *call) (any, *APIError) {
	instID, name, desc := c.p.Get("InstanceId"), c.p.Get("Name"), c.p.Get("Description")
	if instID == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	if err := checkIDs([]string{instID}, instIDPattern, "InvalidInstanceID.Malformed"); err != nil {
		return nil, err
	}
	if err := c.r.checkImageName(name); err != nil {
		return nil, err
	}
	if err := checkDescription(desc); err != nil {
		return nil, err
	}
	if _, err := c.p.Bool("NoReboot", false); err != nil {
		return nil, err
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "image", "snapshot")
	if err != nil {
		return nil, err
	}
	overrides, err := parseBlockDevices(c.p, "BlockDeviceMapping")
	if err != nil {
		return nil, err
	}
	inst, ok := c.r.Instances[instID]
	if !ok || c.hidden(inst.Created) {
		return nil, errf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", instID)
	}
	if inst.State != "running" && inst.State != "stopping" && inst.State != "stopped" {
		return nil, errf("InvalidParameterValue", "Invalid value '%s' for instanceId. Instance is not in state 'running' or 'stopping' or 'stopped'", instID)
	}
	byDevice := map[string]LaunchBlockDevice{}
	for _, o := range overrides {
		if o.DeviceName == "" {
			return nil, errf("InvalidBlockDeviceMapping", "The device name must be specified for each block device mapping")
		}
		byDevice[o.DeviceName] = o
	}
	now := c.w.now()
	ready := now.Add(c.w.timing.d("image_create"))
	im := &Image{
		ID: newID("ami"), Name: name, Description: desc, OwnerID: c.r.Account, State: "pending",
		CreationDate: now, Architecture: "x86_64", PlatformDetails: "Linux/UNIX",
		RootDeviceName: inst.RootDeviceName, RootDeviceType: "ebs", VirtualizationType: "hvm",
		EnaSupport: true, SourceInstanceID: inst.ID, Tags: tags["image"], Created: now, readyAt: ready,
	}
	if im.Tags == nil {
		im.Tags = Tags{}
	}
	if src, ok := c.image(inst.ImageID); ok {
		im.Architecture, im.Platform, im.PlatformDetails = src.Architecture, src.Platform, src.PlatformDetails
		im.BootMode, im.VirtualizationType = src.BootMode, src.VirtualizationType
		if im.RootDeviceName == "" {
			im.RootDeviceName = src.RootDeviceName
		}
	}
	im.Rootfs, im.Layers = inst.Rootfs, append([]string(nil), inst.Layers...)
	var snaps []*Snapshot
	seen := map[string]bool{}
	for _, bd := range inst.BlockDevices {
		v := c.r.Volumes[bd.VolumeID]
		if v == nil {
			continue
		}
		seen[bd.DeviceName] = true
		o, has := byDevice[bd.DeviceName]
		if has && o.NoDevice {
			continue
		}
		if has && o.Encrypted != nil && *o.Encrypted != v.Encrypted {
			return nil, errf("InvalidBlockDeviceMapping", "The encryption state of the volume attached at %s cannot be changed when creating an image", bd.DeviceName)
		}
		size, vtype, dot := v.Size, v.Type, bd.DeleteOnTermination
		if has {
			if o.VolumeSize != 0 {
				if o.VolumeSize < v.Size {
					return nil, errf("InvalidBlockDeviceMapping", "Volume of size %dGB is smaller than snapshot, expect size >= %dGB", o.VolumeSize, v.Size)
				}
				size = o.VolumeSize
			}
			if o.VolumeType != "" {
				vtype = o.VolumeType
			}
			if o.DeleteOnTermination != nil {
				dot = *o.DeleteOnTermination
			}
		}
		s := &Snapshot{
			ID: newID("snap"), VolumeID: v.ID, VolumeSize: v.Size, Encrypted: v.Encrypted, KmsKeyID: v.KmsKeyID,
			State: "pending", OwnerID: c.r.Account, StartTime: now, Created: now, readyAt: ready,
			Description: fmt.Sprintf("Created by CreateImage(%s) for %s", inst.ID, im.ID), Tags: tags["snapshot"].Clone(),
		}
		if bd.DeviceName == inst.RootDeviceName {
			// The root volume's snapshot is the instance's writable layer.
			if layer, op := c.w.runtime.ImageLayer(inst, s.ID); layer != "" {
				im.Layers = append(im.Layers, layer)
				s.layerOp = op
			}
		}
		snaps = append(snaps, s)
		im.BlockDevices = append(im.BlockDevices, ImageBlockDevice{
			DeviceName: bd.DeviceName, SnapshotID: s.ID, VolumeSize: size, VolumeType: vtype,
			Encrypted: v.Encrypted, DeleteOnTermination: dot,
		})
	}
	// Mappings for devices the instance does not have: instance store
	// volumes or new empty EBS volumes.
	names := make([]string, 0, len(byDevice))
	for n := range byDevice {
		if !seen[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		o := byDevice[n]
		b := ImageBlockDevice{DeviceName: n, VirtualName: o.VirtualName, NoDevice: o.NoDevice}
		if o.VirtualName == "" && !o.NoDevice {
			if o.VolumeSize == 0 && o.SnapshotID == "" {
				return nil, errf("InvalidBlockDeviceMapping", "The volume size must be specified for device %s", n)
			}
			b.VolumeSize, b.VolumeType, b.SnapshotID, b.DeleteOnTermination = o.VolumeSize, o.VolumeType, o.SnapshotID, true
			if b.VolumeType == "" {
				b.VolumeType = "gp2"
			}
			if o.Encrypted != nil {
				b.Encrypted = *o.Encrypted
			}
			if o.DeleteOnTermination != nil {
				b.DeleteOnTermination = *o.DeleteOnTermination
			}
		}
		im.BlockDevices = append(im.BlockDevices, b)
	}
	for _, s := range snaps {
		c.r.Snapshots[s.ID] = s
	}
	c.r.Images[im.ID] = im
	return []*X{T("imageId", im.ID)}, nil
}

// copyFailure is the state reason of a copy whose snapshots could not be
// encrypted. AWS checks the KMS key asynchronously, so the copy is
// accepted and the image later goes to failed with this opaque reason.
const copyFailure = "Server.InternalError: Copy image failed with an internal error"

// CopyImage runs in the destination region. Encryption follows AWS: a copy
// of an encrypted snapshot is always encrypted; Encrypted=true encrypts an
// unencrypted one; the key is KmsKeyId (resolved in the destination
// region), else, for an encrypted source copied within its region, the
// source snapshot's key, else the destination's aws/ebs key.
//
// The KMS key is checked the way AWS documents it ("Amazon Web Services
// authenticates the KMS key asynchronously ... the action can appear to
// complete, but eventually fails"): a missing, disabled or
// pending-deletion key is accepted and the image goes to state failed
// (its snapshots to error) when the copy would complete. Only what can be
// seen without KMS is refused at once: KmsKeyId without Encrypted, and a
// key ARN that names another region than the destination.
func ec2CopyImage(c *call) (any, *APIError) {
	srcRegionName, srcID, name, desc := c.p.Get("SourceRegion"), c.p.Get("SourceImageId"), c.p.Get("Name"), c.p.Get("Description")
	for _, req := range []struct{ key, val string }{{"SourceRegion", srcRegionName}, {"SourceImageId", srcID}, {"Name", name}} {
		if req.val == "" {
			return nil, errf("MissingParameter", "The request must contain the parameter %s", req.key)
		}
	}
	if err := checkIDs([]string{srcID}, amiIDPattern, "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	encrypted, err := c.p.Bool("Encrypted", false)
	if err != nil {
		return nil, err
	}
	copyTags, err := c.p.Bool("CopyImageTags", false)
	if err != nil {
		return nil, err
	}
	keyRef := c.p.Get("KmsKeyId")
	if keyRef != "" && !encrypted {
		return nil, errf("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
	}
	if m := kmsKeyARN.FindStringSubmatch(keyRef); m != nil && m[1] != c.r.Name {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter kmsKeyId is invalid. The KMS key must be in the destination Region %s.", keyRef, c.r.Name)
	}
	if err := checkDescription(desc); err != nil {
		return nil, err
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "image", "snapshot")
	if err != nil {
		return nil, err
	}
	token := c.p.Get("ClientToken")
	if token != "" {
		for _, im := range c.r.Images {
			if im.ClientToken == token && im.OwnerID == c.r.Account {
				return []*X{T("imageId", im.ID)}, nil
			}
		}
	}
	src, aerr := c.w.accountRegion(c.r.Account, srcRegionName)
	if aerr != nil {
		return nil, errf("InvalidParameterValue", "Invalid value '%s' for SourceRegion", srcRegionName)
	}
	srcImg, ok := src.findImage(srcID)
	if !ok || !c.imageVisible(srcImg) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", srcID)
	}
	// The source's snapshots are in its owner's account.
	srcHome, keyDenied := src, false
	if !srcImg.Builtin && srcImg.OwnerID != c.r.Account {
		if srcHome, aerr = c.w.accountRegion(srcImg.OwnerID, srcRegionName); aerr != nil {
			return nil, aerr
		}
		if keyDenied, aerr = c.checkSharedCopy(srcHome, srcImg); aerr != nil {
			return nil, aerr
		}
	}
	if srcImg.State != "available" {
		return nil, errf("IncorrectState", "Image %s is not in a valid state for copying: %s", srcID, srcImg.State)
	}
	if err := c.r.checkImageName(name); err != nil {
		return nil, err
	}
	now := c.w.now()
	d := c.w.timing.d("image_copy")
	if src != c.r {
		d = c.w.timing.d("image_copy_cross")
	}
	// Resolve the key now; an unusable one fails the copy a little later.
	keyARN, keyOK := "", true
	if keyRef != "" {
		keyARN = keyRef
		if k, kerr := c.w.resolveKMSKey(c.r, keyRef); kerr == nil {
			keyARN = k.ARN
		}
		_, kerr := c.w.usableKMSKey(c.r, keyRef)
		keyOK = kerr == nil
	}
	if !keyOK || keyDenied {
		d /= 10
	}
	ready := now.Add(d)
	im := &Image{
		ID: newID("ami"), Name: name, Description: desc, OwnerID: c.r.Account, State: "pending", CreationDate: now,
		Architecture: srcImg.Architecture, Platform: srcImg.Platform, PlatformDetails: srcImg.PlatformDetails,
		RootDeviceName: srcImg.RootDeviceName, RootDeviceType: srcImg.RootDeviceType,
		VirtualizationType: srcImg.VirtualizationType, BootMode: srcImg.BootMode, EnaSupport: srcImg.EnaSupport,
		ImdsSupport: srcImg.ImdsSupport, SourceImageID: srcImg.ID, SourceRegion: src.Name,
		Rootfs: srcImg.Rootfs, Layers: srcImg.Layers, Tags: Tags{}, Created: now, readyAt: ready, ClientToken: token,
	}
	if copyTags && srcImg.OwnerID == c.r.Account {
		for k, v := range srcImg.Tags {
			if !strings.HasPrefix(k, "aws:") {
				im.Tags[k] = v
			}
		}
	}
	for k, v := range tags["image"] {
		im.Tags[k] = v
	}
	var snaps []*Snapshot
	for _, b := range srcImg.BlockDevices {
		nb := b
		if b.SnapshotID != "" {
			ss := srcHome.Snapshots[b.SnapshotID]
			if ss == nil {
				return nil, errf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", b.SnapshotID)
			}
			s := &Snapshot{
				ID: newID("snap"), VolumeID: "vol-ffffffff", VolumeSize: ss.VolumeSize, OwnerID: c.r.Account,
				State: "pending", StartTime: now, Created: now, readyAt: ready, Tags: tags["snapshot"].Clone(),
				Encrypted: ss.Encrypted || encrypted, Bytes: ss.Bytes,
				Description:     fmt.Sprintf("Copied for DestinationAmi %s from SourceAmi %s for SourceSnapshot %s. Task created on %d.", im.ID, srcImg.ID, ss.ID, now.UnixMilli()),
				sourceKeyDenied: keyDenied,
			}
			if s.Encrypted {
				switch {
				case keyARN != "":
					s.KmsKeyID = keyARN
				case ss.Encrypted && srcHome == c.r:
					s.KmsKeyID = ss.KmsKeyID
				default:
					s.KmsKeyID = c.r.ebsDefaultKMSKey().ARN
				}
			}
			snaps = append(snaps, s)
			nb.SnapshotID, nb.Encrypted = s.ID, s.Encrypted
		}
		im.BlockDevices = append(im.BlockDevices, nb)
	}
	for _, s := range snaps {
		c.r.Snapshots[s.ID] = s
	}
	c.r.Images[im.ID] = im
	return []*X{T("imageId", im.ID)}, nil
}

// snapshotUser returns the first live image other than except whose block
// devices use the snapshot.
func (r *Region) snapshotUser(snapID, except string) *Image {
	ids := make([]string, 0, len(r.Images))
	for id := range r.Images {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		im := r.Images[id]
		if id == except || im.State == "deregistered" {
			continue
		}
		for _, b := range im.BlockDevices {
			if b.SnapshotID == snapID {
				return im
			}
		}
	}
	return nil
}

func ec2DeregisterImage(c *call) (any, *APIError) {
	im, err := c.ownImage(c.p.Get("ImageId"))
	if err != nil {
		return nil, err
	}
	deleteSnaps, err := c.p.Bool("DeleteAssociatedSnapshots", false)
	if err != nil {
		return nil, err
	}
	im.State, im.readyAt = "deregistered", time.Time{}
	c.w.collectLayers()
	if !deleteSnaps {
		// EC2 is eventually consistent: for a while after DeregisterImage,
		// DeleteSnapshot on the image's snapshots can still answer
		// InvalidSnapshot.InUse, and a client retries. AWS documents no
		// length and answers so only some of the time; the sandbox holds
		// the snapshots for the timing profile's snapshot_in_use, 0 unless
		// a test sets it (docs/sandbox.md says why).
		// https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
		// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSnapshot.html
		until := c.w.now().Add(c.w.timing.d("snapshot_in_use"))
		for _, b := range im.BlockDevices {
			if s := c.r.Snapshots[b.SnapshotID]; s != nil && s.OwnerID == AccountID && !s.Builtin {
				s.inUseUntil, s.inUseBy = until, im.ID
			}
		}
	}
	var results []*X
	if deleteSnaps {
		for _, b := range im.BlockDevices {
			s := c.r.Snapshots[b.SnapshotID]
			if s == nil || s.OwnerID != c.r.Account || s.Builtin {
				continue
			}
			code := "success"
			if c.r.snapshotUser(s.ID, im.ID) != nil {
				code = "client-error"
			} else {
				delete(c.r.Snapshots, s.ID)
			}
			results = append(results, E("item", T("snapshotId", s.ID), T("returnCode", code)))
		}
	}
	var set *X
	if deleteSnaps {
		set = List("deleteSnapshotResultSet", results)
	}
	return nonNil(T("return", "true"), set), nil
}

// permissionChanges reads the launch or create-volume permission changes
// of a Modify*Attribute call: the structured Add/Remove lists under
// structKey, or OperationType with UserId.N / UserGroup.N (and the
// organization lists for images).
func permissionChanges(p Params, structKey string, orgs bool) (add, remove LaunchPermissions, err *APIError) {
	read := func(list []Params) LaunchPermissions {
		var lp LaunchPermissions
		for _, e := range list {
			if v := e.Get("UserId"); v != "" {
				lp.UserIDs = append(lp.UserIDs, v)
			}
			if v := e.Get("Group"); v != "" {
				lp.Groups = append(lp.Groups, v)
			}
			if v := e.Get("OrganizationArn"); v != "" {
				lp.OrgARNs = append(lp.OrgARNs, v)
			}
			if v := e.Get("OrganizationalUnitArn"); v != "" {
				lp.OUARNs = append(lp.OUARNs, v)
			}
		}
		return lp
	}
	s := p.Sub(structKey)
	add, remove = read(s.Structs("Add")), read(s.Structs("Remove"))
	flat := LaunchPermissions{UserIDs: p.List("UserId"), Groups: p.List("UserGroup")}
	if orgs {
		flat.OrgARNs, flat.OUARNs = p.List("OrganizationArn"), p.List("OrganizationalUnitArn")
	}
	if len(flat.UserIDs)+len(flat.Groups)+len(flat.OrgARNs)+len(flat.OUARNs) > 0 {
		switch p.Get("OperationType") {
		case "add":
			add = mergePermissions(add, flat)
		case "remove":
			remove = mergePermissions(remove, flat)
		case "":
			return add, remove, errf("MissingParameter", "The request must contain the parameter operationType")
		default:
			return add, remove, errf("InvalidParameterValue", "Value (%s) for parameter operationType is invalid. Valid values: add, remove", p.Get("OperationType"))
		}
	}
	for _, lp := range []LaunchPermissions{add, remove} {
		for _, u := range lp.UserIDs {
			if !accountIDPattern.MatchString(u) {
				return add, remove, errf("InvalidAMIAttributeItemValue", "Invalid attribute item value \"%s\" for userId item type.", u)
			}
		}
		for _, g := range lp.Groups {
			if g != "all" {
				return add, remove, errf("InvalidAMIAttributeItemValue", "Invalid attribute item value \"%s\" for group item type.", g)
			}
		}
	}
	return add, remove, nil
}

func mergePermissions(a, b LaunchPermissions) LaunchPermissions {
	add := func(list []string, vals []string) []string {
		for _, v := range vals {
			if !contains(list, v) {
				list = append(list, v)
			}
		}
		return list
	}
	a.UserIDs, a.Groups = add(a.UserIDs, b.UserIDs), add(a.Groups, b.Groups)
	a.OrgARNs, a.OUARNs = add(a.OrgARNs, b.OrgARNs), add(a.OUARNs, b.OUARNs)
	return a
}

func subtractPermissions(a, b LaunchPermissions) LaunchPermissions {
	sub := func(list []string, vals []string) []string {
		var out []string
		for _, v := range list {
			if !contains(vals, v) {
				out = append(out, v)
			}
		}
		return out
	}
	return LaunchPermissions{UserIDs: sub(a.UserIDs, b.UserIDs), Groups: sub(a.Groups, b.Groups),
		OrgARNs: sub(a.OrgARNs, b.OrgARNs), OUARNs: sub(a.OUARNs, b.OUARNs)}
}

func (lp LaunchPermissions) empty() bool {
	return len(lp.UserIDs)+len(lp.Groups)+len(lp.OrgARNs)+len(lp.OUARNs) == 0
}

// awsManagedKey reports whether an encrypted snapshot's key is an
// AWS-managed key such as aws/ebs.
func (r *Region) awsManagedKey(s *Snapshot) bool {
	k, err := r.w.resolveKMSKey(r, s.KmsKeyID)
	return err == nil && k.Manager == "AWS"
}

// checkImageSharing refuses what AWS refuses when an image is shared:
// public encrypted images, and sharing snapshots under an AWS-managed key.
func (r *Region) checkImageSharing(im *Image, add LaunchPermissions) *APIError {
	for _, b := range im.BlockDevices {
		s := r.Snapshots[b.SnapshotID]
		if s == nil || !s.Encrypted {
			continue
		}
		if contains(add.Groups, "all") {
			return errf("UnsupportedOperation", "Encrypted snapshots can't be shared publicly. Specify another snapshot.")
		}
		if r.awsManagedKey(s) {
			return errf("InvalidParameter", "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.")
		}
	}
	return nil
}

func ec2ModifyImageAttribute(c *call) (any, *APIError) {
	im, err := c.ownImage(c.p.Get("ImageId"))
	if err != nil {
		return nil, err
	}
	attr := c.p.Get("Attribute")
	desc, hasDesc := c.p.Get("Description.Value"), c.p.Has("Description.Value")
	imds, hasImds := c.p.Get("ImdsSupport.Value"), c.p.Has("ImdsSupport.Value")
	switch attr {
	case "", "launchPermission":
	case "description":
		if !hasDesc {
			desc, hasDesc = c.p.Get("Value"), true
		}
	case "imdsSupport":
		if !hasImds {
			imds, hasImds = c.p.Get("Value"), true
		}
	default:
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	add, remove, err := permissionChanges(c.p, "LaunchPermission", true)
	if err != nil {
		return nil, err
	}
	if add.empty() && remove.empty() && !hasDesc && !hasImds {
		return nil, errf("MissingParameter", "The request must contain the parameter attribute or one of launchPermission, description, imdsSupport")
	}
	if hasDesc {
		if err := checkDescription(desc); err != nil {
			return nil, err
		}
	}
	if hasImds && imds != "v2.0" {
		if im.ImdsSupport == "v2.0" {
			return nil, errf("InvalidParameterValue", "ImdsSupport is already set to v2.0 for image %s and cannot be turned off.", im.ID)
		}
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter imdsSupport is invalid. Valid value: v2.0", imds)
	}
	if !add.empty() {
		if err := c.r.checkImageSharing(im, add); err != nil {
			return nil, err
		}
	}
	im.Permissions = subtractPermissions(mergePermissions(im.Permissions, add), remove)
	if hasDesc {
		im.Description = desc
	}
	if hasImds {
		im.ImdsSupport = imds
	}
	return okReturn(), nil
}

func renderLaunchPermissions(name string, lp LaunchPermissions) *X {
	var items []*X
	for _, g := range lp.Groups {
		items = append(items, E("item", T("group", g)))
	}
	for _, u := range lp.UserIDs {
		items = append(items, E("item", T("userId", u)))
	}
	for _, o := range lp.OrgARNs {
		items = append(items, E("item", T("organizationArn", o)))
	}
	for _, o := range lp.OUARNs {
		items = append(items, E("item", T("organizationalUnitArn", o)))
	}
	return List(name, items)
}

func attrValue(name, v string) *X {
	if v == "" {
		return E(name)
	}
	return E(name, T("value", v))
}

func ec2DescribeImageAttribute(c *call) (any, *APIError) {
	id, attr := c.p.Get("ImageId"), c.p.Get("Attribute")
	if attr == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter attribute")
	}
	if id == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter ImageId")
	}
	if err := checkIDs([]string{id}, amiIDPattern, "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	im, ok := c.image(id)
	if !ok || !c.imageVisible(im) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
	}
	out := []*X{T("imageId", im.ID)}
	switch attr {
	case "description":
		out = append(out, attrValue("description", im.Description))
	case "launchPermission":
		if im.OwnerID != c.r.Account {
			return nil, errf("AuthFailure", "Not authorized for image:%s", id)
		}
		out = append(out, renderLaunchPermissions("launchPermission", im.Permissions))
	case "imdsSupport":
		out = append(out, attrValue("imdsSupport", im.ImdsSupport))
	case "bootMode":
		out = append(out, attrValue("bootMode", im.BootMode))
	case "kernel", "ramdisk", "sriovNetSupport", "tpmSupport", "uefiData", "lastLaunchedTime":
		out = append(out, E(attr))
	case "productCodes":
		out = append(out, List("productCodes", nil))
	case "blockDeviceMapping":
		x := c.renderImage(im)
		for _, k := range x {
			if k != nil && k.Name == "blockDeviceMapping" {
				out = append(out, k)
			}
		}
	case "deregistrationProtection":
		out = append(out, attrValue("deregistrationProtection", "disabled"))
	default:
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	return out, nil
}

func ec2ResetImageAttribute(c *call) (any, *APIError) {
	im, err := c.ownImage(c.p.Get("ImageId"))
	if err != nil {
		return nil, err
	}
	if attr := c.p.Get("Attribute"); attr != "launchPermission" {
		if attr == "" {
			return nil, errf("MissingParameter", "The request must contain the parameter attribute")
		}
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Only launchPermission can be reset.", attr)
	}
	im.Permissions = LaunchPermissions{}
	return []*X{T("return", "true")}, nil
}

// EnableImageDeprecation rounds DeprecateAt to the nearest minute, refuses
// a time in the past and one more than ten years ahead (two years after
// creation for public images), as the API reference says.
func ec2EnableImageDeprecation(c *call) (any, *APIError) {
	im, err := c.ownImage(c.p.Get("ImageId"))
	if err != nil {
		return nil, err
	}
	raw := c.p.Get("DeprecateAt")
	if raw == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter DeprecateAt")
	}
	at, perr := time.Parse(time.RFC3339Nano, raw)
	if perr != nil {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter DeprecateAt is invalid. Expected: 'YYYY-MM-DDTHH:MM:SSZ'.", raw)
	}
	at = at.UTC().Round(time.Minute)
	now := c.w.now()
	limit := now.AddDate(10, 0, 0)
	if im.Public() {
		limit = im.CreationDate.AddDate(2, 0, 0)
	}
	switch {
	case at.Before(now.Truncate(time.Minute)):
		return nil, errf("InvalidParameterValue", "The deprecation time %s is in the past.", timeStr(at))
	case at.After(limit):
		return nil, errf("InvalidParameterValue", "The deprecation time %s is later than the allowed maximum %s.", timeStr(at), timeStr(limit))
	}
	im.DeprecationTime = at
	return []*X{T("return", "true")}, nil
}

func ec2DisableImageDeprecation(c *call) (any, *APIError) {
	im, err := c.ownImage(c.p.Get("ImageId"))
	if err != nil {
		return nil, err
	}
	im.DeprecationTime = time.Time{}
	return []*X{T("return", "true")}, nil
}

// Snapshots.

func snapshotOwnerAlias(s *Snapshot) string {
	if s.OwnerID == OwnerAmazon {
		return "amazon"
	}
	return ""
}

// snapshotPublic: the public images' snapshots of a fresh account are
// public, as their owners publish them; others when shared with "all".
func snapshotPublic(s *Snapshot) bool {
	return s.Builtin || contains(s.CreateVolumePermissions.Groups, "all")
}

func snapshotRestorableBy(s *Snapshot, acct string) bool {
	return s.OwnerID == acct || snapshotPublic(s) || contains(s.CreateVolumePermissions.UserIDs, acct)
}

var snapshotFilters = filterTable[*Snapshot]{
	"description": func(s *Snapshot) []string { return fvOne(s.Description) },
	"encrypted":   func(s *Snapshot) []string { return fvBool(s.Encrypted) },
	"kms-key-id":  func(s *Snapshot) []string { return fvOpt(s.KmsKeyID) },
	"owner-alias": func(s *Snapshot) []string { return fvOpt(snapshotOwnerAlias(s)) },
	"owner-id":    func(s *Snapshot) []string { return fvOne(s.OwnerID) },
	"progress":    func(s *Snapshot) []string { return fvOne(strconv.Itoa(s.Progress) + "%") },
	"snapshot-id": func(s *Snapshot) []string { return fvOne(s.ID) },
	"start-time":  func(s *Snapshot) []string { return fvOne(timeStr(s.StartTime)) },
	"status":      func(s *Snapshot) []string { return fvOne(s.State) },
	"storage-tier": func(s *Snapshot) []string {
		return fvOne("standard")
	},
	"volume-id":   func(s *Snapshot) []string { return fvOpt(s.VolumeID) },
	"volume-size": func(s *Snapshot) []string { return fvInt(s.VolumeSize) },
}

func (c *call) snapshotVisible(s *Snapshot) bool {
	if !s.Builtin && c.hidden(s.Created) {
		return false
	}
	return snapshotRestorableBy(s, c.r.Account)
}

func ec2DescribeSnapshots(c *call) (any, *APIError) {
	ids := c.p.List("SnapshotId")
	if err := checkIDs(ids, snapIDPattern, "InvalidSnapshotID.Malformed"); err != nil {
		return nil, err
	}
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	owner, err := ownerMatcher(c.r.Account, c.p.List("Owner"))
	if err != nil {
		return nil, err
	}
	var restorable []string
	for _, u := range c.p.List("RestorableBy") {
		switch {
		case u == "self":
			restorable = append(restorable, c.r.Account)
		case u == "all" || accountIDPattern.MatchString(u):
			restorable = append(restorable, u)
		default:
			return nil, errf("InvalidUserID.Malformed", "Invalid user id: \"%s\"", u)
		}
	}
	max, err := ebsMaxResults(c.p, 5, 1000, "snapshotSet", len(ids) > 0)
	if err != nil {
		return nil, err
	}
	var snaps []*Snapshot
	if len(ids) > 0 {
		for _, id := range ids {
			s, ok := c.snapshot(id)
			if !ok || !c.snapshotVisible(s) {
				return nil, errf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
			}
			snaps = append(snaps, s)
		}
	} else {
		for _, s := range append(mapValues(c.r.Snapshots), c.sharedSnapshots()...) {
			if c.snapshotVisible(s) {
				snaps = append(snaps, s)
			}
		}
	}
	now := c.w.now()
	var out []*Snapshot
	for _, s := range snaps {
		if !owner(s.OwnerID, snapshotOwnerAlias(s)) {
			continue
		}
		if len(restorable) > 0 {
			ok := false
			for _, u := range restorable {
				ok = ok || (u == "all" && snapshotPublic(s)) || (u != "all" && snapshotRestorableBy(s, u))
			}
			if !ok {
				continue
			}
		}
		s.Progress = snapshotProgress(s, now)
		ok, err := matchFilters(filters, s.Tags, snapshotFilters.fields(s))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	pg, next, err := page(out, c.p.Get("NextToken"), max)
	if err != nil {
		return nil, err
	}
	return nonNil(List("snapshotSet", Items("item", pg, renderSnapshot)), Opt("nextToken", next)), nil
}

func renderSnapshot(s *Snapshot) []*X {
	return []*X{
		T("snapshotId", s.ID),
		Opt("volumeId", s.VolumeID),
		T("status", s.State),
		Time("startTime", s.StartTime),
		T("progress", strconv.Itoa(s.Progress)+"%"),
		T("ownerId", s.OwnerID),
		Opt("ownerAlias", snapshotOwnerAlias(s)),
		I("volumeSize", s.VolumeSize),
		T("description", s.Description),
		B("encrypted", s.Encrypted),
		Opt("kmsKeyId", s.KmsKeyID),
		T("storageTier", "standard"),
		optInt64("fullSnapshotSizeInBytes", s.Bytes),
		renderTagSet(s.Tags),
	}
}

// ownSnapshot finds a snapshot the caller owns.
func (c *call) ownSnapshot(id string) (*Snapshot, *APIError) {
	if id == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter SnapshotId")
	}
	if err := checkIDs([]string{id}, snapIDPattern, "InvalidSnapshotID.Malformed"); err != nil {
		return nil, err
	}
	s, ok := c.snapshot(id)
	if !ok || !c.snapshotVisible(s) {
		return nil, errf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", id)
	}
	if s.OwnerID != c.r.Account || s.Builtin {
		return nil, errf("AuthFailure", "Not authorized for snapshot:%s", id)
	}
	return s, nil
}

func ec2DeleteSnapshot(c *call) (any, *APIError) {
	s, err := c.ownSnapshot(c.p.Get("SnapshotId"))
	if err != nil {
		return nil, err
	}
	if im := c.r.snapshotUser(s.ID, ""); im != nil {
		return nil, errf("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", s.ID, im.ID)
	}
	if c.w.now().Before(s.inUseUntil) {
		return nil, errf("InvalidSnapshot.InUse", "The snapshot %s is currently in use by %s", s.ID, s.inUseBy)
	}
	delete(c.r.Snapshots, s.ID)
	return okReturn(), nil
}

func ec2ModifySnapshotAttribute(c *call) (any, *APIError) {
	s, err := c.ownSnapshot(c.p.Get("SnapshotId"))
	if err != nil {
		return nil, err
	}
	if attr := c.p.Get("Attribute"); attr != "" && attr != "createVolumePermission" {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Only createVolumePermission can be modified.", attr)
	}
	add, remove, err := permissionChanges(c.p, "CreateVolumePermission", false)
	if err != nil {
		return nil, err
	}
	if add.empty() && remove.empty() {
		return nil, errf("MissingParameter", "The request must contain the parameter createVolumePermission")
	}
	if s.Encrypted && !add.empty() {
		if contains(add.Groups, "all") {
			return nil, errf("OperationNotPermitted", "Encrypted snapshots cannot be shared publicly")
		}
		if c.r.awsManagedKey(s) {
			return nil, errf("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
		}
	}
	s.CreateVolumePermissions = subtractPermissions(mergePermissions(s.CreateVolumePermissions, add), remove)
	return okReturn(), nil
}

func ec2DescribeSnapshotAttribute(c *call) (any, *APIError) {
	id, attr := c.p.Get("SnapshotId"), c.p.Get("Attribute")
	if attr == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter attribute")
	}
	s, err := c.ownSnapshot(id)
	if err != nil {
		return nil, err
	}
	switch attr {
	case "createVolumePermission":
		return []*X{T("snapshotId", s.ID), renderLaunchPermissions("createVolumePermission", s.CreateVolumePermissions)}, nil
	case "productCodes":
		return []*X{T("snapshotId", s.ID), List("productCodes", nil)}, nil
	}
	return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
}

// Volumes.

func volumeAttached(v *Volume) bool { return v.InstanceID != "" }

func (r *Region) volumeDeleteOnTermination(v *Volume) bool {
	if inst := r.Instances[v.InstanceID]; inst != nil {
		for _, bd := range inst.BlockDevices {
			if bd.VolumeID == v.ID {
				return bd.DeleteOnTermination
			}
		}
	}
	return v.DeleteOnTermination
}

func (r *Region) volumeFilters() filterTable[*Volume] {
	attached := func(f func(v *Volume) string) func(*Volume) []string {
		return func(v *Volume) []string {
			if !volumeAttached(v) {
				return nil
			}
			return fvOne(f(v))
		}
	}
	return filterTable[*Volume]{
		"attachment.attach-time": attached(func(v *Volume) string { return timeStr(v.Created) }),
		"attachment.delete-on-termination": attached(func(v *Volume) string {
			return strconv.FormatBool(r.volumeDeleteOnTermination(v))
		}),
		"attachment.device":      attached(func(v *Volume) string { return v.Device }),
		"attachment.instance-id": attached(func(v *Volume) string { return v.InstanceID }),
		"attachment.status":      attached(func(v *Volume) string { return "attached" }),
		"availability-zone":      func(v *Volume) []string { return fvOne(v.AZ) },
		"create-time":            func(v *Volume) []string { return fvOne(timeStr(v.Created)) },
		"encrypted":              func(v *Volume) []string { return fvBool(v.Encrypted) },
		"kms-key-id":             func(v *Volume) []string { return fvOpt(v.KmsKeyID) },
		"multi-attach-enabled":   func(v *Volume) []string { return fvBool(false) },
		"size":                   func(v *Volume) []string { return fvInt(v.Size) },
		"snapshot-id":            func(v *Volume) []string { return fvOne(v.SnapshotID) },
		"status":                 func(v *Volume) []string { return fvOne(v.State) },
		"volume-id":              func(v *Volume) []string { return fvOne(v.ID) },
		"volume-type":            func(v *Volume) []string { return fvOne(v.Type) },
	}
}

func ec2DescribeVolumes(c *call) (any, *APIError) {
	ids := c.p.List("VolumeId")
	if err := checkIDs(ids, volIDPattern, "InvalidVolumeID.Malformed"); err != nil {
		return nil, err
	}
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	max, err := ebsMaxResults(c.p, 5, 500, "volumeSet", len(ids) > 0)
	if err != nil {
		return nil, err
	}
	visible := func(v *Volume) bool { return v.State != "deleted" && !c.hidden(v.Created) }
	var vols []*Volume
	if len(ids) > 0 {
		for _, id := range ids {
			v, ok := c.r.Volumes[id]
			if !ok || !visible(v) {
				return nil, errf("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
			}
			vols = append(vols, v)
		}
	} else {
		for _, v := range c.r.Volumes {
			if visible(v) {
				vols = append(vols, v)
			}
		}
	}
	table := c.r.volumeFilters()
	var out []*Volume
	for _, v := range vols {
		ok, err := matchFilters(filters, v.Tags, table.fields(v))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	pg, next, err := page(out, c.p.Get("NextToken"), max)
	if err != nil {
		return nil, err
	}
	return nonNil(List("volumeSet", Items("item", pg, c.r.renderVolume)), Opt("nextToken", next)), nil
}

func (r *Region) renderVolume(v *Volume) []*X {
	var attachments []*X
	if volumeAttached(v) {
		attachments = append(attachments, E("item", T("volumeId", v.ID), T("instanceId", v.InstanceID),
			T("device", v.Device), T("status", "attached"), Time("attachTime", v.Created),
			B("deleteOnTermination", r.volumeDeleteOnTermination(v))))
	}
	var iops, throughput *X
	if v.Type == "gp3" || v.Type == "io1" || v.Type == "io2" || v.Type == "gp2" {
		n := v.Iops
		if n == 0 {
			n = max(3000, min(16000, v.Size*3))
			if v.Type == "gp2" {
				n = max(100, min(16000, v.Size*3))
			}
		}
		iops = I("iops", n)
	}
	if v.Type == "gp3" {
		n := v.Throughput
		if n == 0 {
			n = 125
		}
		throughput = I("throughput", n)
	}
	return []*X{
		T("volumeId", v.ID),
		I("size", v.Size),
		T("snapshotId", v.SnapshotID),
		T("availabilityZone", v.AZ),
		T("status", v.State),
		Time("createTime", v.Created),
		List("attachmentSet", attachments),
		T("volumeType", v.Type),
		iops,
		throughput,
		B("encrypted", v.Encrypted),
		Opt("kmsKeyId", v.KmsKeyID),
		B("multiAttachEnabled", false),
		renderTagSet(v.Tags),
	}
}

// GetEbsDefaultKmsKeyId answers "alias/aws/ebs" as AWS does while the
// account has not chosen another default key.
func ec2GetEbsDefaultKmsKeyID(c *call) (any, *APIError) {
	return []*X{T("kmsKeyId", ebsDefaultAlias)}, nil
}

// imageController completes snapshots and images when their time comes.
// A snapshot whose KMS key cannot be used then goes to error, and an image
// with such a snapshot to failed.
func imageController(r *Region, now time.Time) {
	for _, s := range r.Snapshots {
		if s.State != "pending" || s.readyAt.IsZero() || now.Before(s.readyAt) || !s.layerOp.ready() {
			continue
		}
		s.readyAt = time.Time{}
		if s.layerOp != nil {
			op := s.layerOp
			s.layerOp = nil
			if op.err != nil {
				s.State = "error"
				continue
			}
			s.Bytes = op.bytes
		}
		if s.Encrypted {
			if _, err := r.w.usableKMSKey(r, s.KmsKeyID); err != nil || s.sourceKeyDenied {
				s.State = "error"
				continue
			}
		}
		s.State, s.Progress = "completed", 100
	}
	for _, im := range r.Images {
		if im.State != "pending" || im.readyAt.IsZero() || now.Before(im.readyAt) {
			continue
		}
		state := "available"
		for _, b := range im.BlockDevices {
			s := r.Snapshots[b.SnapshotID]
			switch {
			case s == nil || b.SnapshotID == "":
			case s.State == "error":
				state = "failed"
			case s.State == "pending" && state == "available":
				state = "pending"
			}
		}
		switch state {
		case "available":
			im.State, im.readyAt = "available", time.Time{}
		case "failed":
			im.State, im.readyAt = "failed", time.Time{}
			im.StateReason = copyFailure
			if im.SourceImageID == "" {
				im.StateReason = "Server.InternalError: Create image failed with an internal error"
			}
		}
	}
}
