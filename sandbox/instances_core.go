package sandbox

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"time"
)

// This file holds the instance lifecycle shared by RunInstances and Auto
// Scaling: validate a launch, create volumes under the right KMS key, and
// move instances through their states on the clock.

var instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|[0-9]+xlarge|metal(-[0-9]+xl)?)$`)

// launchSpec is one launch request, from RunInstances or an ASG.
type launchSpec struct {
	Data             LaunchTemplateData
	Count            int
	ClientToken      string
	LaunchTemplateID string
	LaunchTemplateV  string // concrete version number
	ExtraTags        Tags   // e.g. aws:autoscaling:groupName
	// Principal makes the launch and uses the KMS keys of its encrypted
	// volumes: the caller of RunInstances, an Auto Scaling group's
	// service-linked role. Zero means the sandbox's caller.
	Principal kmsPrincipal
}

// launchError is how a launch that AWS accepts can still fail: the
// instance goes straight to terminated with this reason.
type launchError struct{ code, message string }

// plannedVolume is a volume a launch will create.
type plannedVolume struct {
	bdm       LaunchBlockDevice
	size      int
	vtype     string
	encrypted bool
	keyARN    string
	snapshot  string
	deleteOT  bool
}

// launchInstances validates spec and creates its instances in pending.
// Callers hold w.mu.
func (r *Region) launchInstances(spec launchSpec) ([]*Instance, *APIError) {
	d, aerr := r.normalizeLaunchData(spec.Data)
	if aerr != nil {
		return nil, aerr
	}
	// An image alias resolves at launch: the instance runs the AMI the
	// parameter maps to now.
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id
	if d.ImageID, aerr = r.resolveImageAlias(d.ImageID); aerr != nil {
		return nil, aerr
	}
	if d.ImageID == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter ImageId")
	}
	img, ok := r.findImage(d.ImageID)
	if !ok || img.State == "deregistered" || !r.mayLaunch(img) {
		return nil, errf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", d.ImageID)
	}
	if img.State != "available" {
		return nil, errf("InvalidAMIID.Unavailable", "Image %s is not available (state %s)", img.ID, img.State)
	}
	if d.InstanceType == "" {
		d.InstanceType = "m1.small"
	}
	if !instanceTypePattern.MatchString(d.InstanceType) {
		return nil, errf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", d.InstanceType)
	}
	if d.KeyName != "" {
		if _, ok := r.KeyPairs[d.KeyName]; !ok {
			return nil, errf("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", d.KeyName)
		}
	}
	subnet, aerr := r.pickSubnet(d.SubnetID)
	if aerr != nil {
		return nil, aerr
	}
	sgs, aerr := r.resolveSecurityGroups(subnet.VpcID, d.SecurityGroupIDs, d.SecurityGroups)
	if aerr != nil {
		return nil, aerr
	}
	md := MetadataOptions{HttpTokens: "optional", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1, InstanceMetadataTags: "disabled"}
	if img.ImdsSupport == "v2.0" {
		md.HttpTokens, md.HttpPutResponseHopLimit = "required", 2
	}
	if m := d.Metadata; m != nil {
		if m.HttpTokens != "" {
			if m.HttpTokens != "optional" && m.HttpTokens != "required" {
				return nil, errf("InvalidParameterValue", "Invalid value '%s' for HttpTokens. Valid values: optional, required", m.HttpTokens)
			}
			md.HttpTokens = m.HttpTokens
		}
		if m.HttpEndpoint != "" {
			if m.HttpEndpoint != "enabled" && m.HttpEndpoint != "disabled" {
				return nil, errf("InvalidParameterValue", "Invalid value '%s' for HttpEndpoint. Valid values: enabled, disabled", m.HttpEndpoint)
			}
			md.HttpEndpoint = m.HttpEndpoint
		}
		if m.HttpPutResponseHopLimit != 0 {
			if m.HttpPutResponseHopLimit < 1 || m.HttpPutResponseHopLimit > 64 {
				return nil, errf("InvalidParameterValue", "Invalid value '%d' for HttpPutResponseHopLimit. Valid range: 1-64", m.HttpPutResponseHopLimit)
			}
			md.HttpPutResponseHopLimit = m.HttpPutResponseHopLimit
		}
		if m.InstanceMetadataTags != "" {
			md.InstanceMetadataTags = m.InstanceMetadataTags
		}
	}
	for _, ts := range d.TagSpecifications {
		switch ts.ResourceType {
		case "instance", "volume", "network-interface", "spot-instances-request":
		default:
			return nil, errf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
		}
	}
	vols, failure, aerr := r.planVolumes(img, d.BlockDevices)
	if aerr != nil {
		return nil, aerr
	}
	if failure == nil {
		failure = r.checkLaunchKeys(vols, spec.Principal)
	}
	if why := r.w.runtime.CheckImage(img); why != "" && failure == nil {
		failure = &launchError{code: "Server.InternalError", message: why}
	}
	count := spec.Count
	if count <= 0 {
		count = 1
	}
	if spec.ClientToken != "" {
		var prior []*Instance
		for _, in := range r.Instances {
			if in.ClientToken == spec.ClientToken {
				prior = append(prior, in)
			}
		}
		if len(prior) > 0 {
			sort.Slice(prior, func(i, j int) bool { return prior[i].ID < prior[j].ID })
			return prior, nil
		}
	}
	now := r.w.now()
	reservation := newID("r")
	var out []*Instance
	for i := 0; i < count; i++ {
		inst := &Instance{
			ID: newID("i"), ImageID: img.ID, InstanceType: d.InstanceType, State: "pending",
			KeyName: d.KeyName, SubnetID: subnet.ID, VpcID: subnet.VpcID, AZ: subnet.AZ,
			PrivateIP: r.allocateInstanceIP(subnet), SecurityGroupIDs: sgs, UserData: d.UserData,
			IamInstanceProfile: d.IamInstanceProfile, Metadata: md, LaunchTime: now, Tags: Tags{},
			RootDeviceName: img.RootDeviceName, LaunchTemplateID: spec.LaunchTemplateID,
			Lifecycle: map[bool]string{true: "spot"}[d.MarketType == "spot"], EbsOptimized: d.EbsOptimized != nil && *d.EbsOptimized,
			Monitoring: map[bool]string{false: "disabled", true: "enabled"}[d.Monitoring != nil && *d.Monitoring], Tenancy: orDefault(d.Tenancy, "default"),
			LaunchTemplateVer: spec.LaunchTemplateV, ClientToken: spec.ClientToken,
			ReservationID: reservation, Created: now, nextAt: now.Add(r.w.timing.d("instance_pending")),
			Rootfs: img.Rootfs, Layers: append([]string(nil), img.Layers...),
		}
		for k, v := range spec.ExtraTags {
			inst.Tags[k] = v
		}
		volTags := Tags{}
		for _, ts := range d.TagSpecifications {
			for k, v := range ts.Tags {
				switch ts.ResourceType {
				case "instance":
					inst.Tags[k] = v
				case "volume":
					volTags[k] = v
				}
			}
		}
		for _, pv := range vols {
			v := &Volume{
				ID: newID("vol"), Size: pv.size, Type: pv.vtype, Encrypted: pv.encrypted, KmsKeyID: pv.keyARN,
				AZ: subnet.AZ, State: "in-use", SnapshotID: pv.snapshot, InstanceID: inst.ID,
				Device: pv.bdm.DeviceName, DeleteOnTermination: pv.deleteOT, Tags: volTags.Clone(), Created: now,
				Iops: pv.bdm.Iops, Throughput: pv.bdm.Throughput,
			}
			r.Volumes[v.ID] = v
			inst.BlockDevices = append(inst.BlockDevices, InstanceBlockDevice{DeviceName: v.Device, VolumeID: v.ID, DeleteOnTermination: v.DeleteOnTermination})
		}
		if failure != nil {
			// AWS accepts the launch and the instance terminates at once.
			inst.State, inst.StateReason = "shutting-down", failure.code+": "+failure.message
			inst.StateTransition = "Client error on launch"
			inst.nextAt = now.Add(r.w.timing.d("instance_shutting_down") / 4)
		}
		r.Instances[inst.ID] = inst
		if failure == nil {
			inst.rtOp = r.w.runtime.Boot(r, inst)
		}
		out = append(out, inst)
	}
	return out, nil
}

// checkLaunchKeys checks that the launching principal may use the KMS key
// of every encrypted volume (the image's encrypted snapshots' keys and
// any KmsKeyId of the block device mappings). EC2 accepts such a launch
// and the instance terminates at once with "Client.InternalError: Client
// error on launch", which Auto Scaling reports as a failed launch.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-internal
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
func (r *Region) checkLaunchKeys(vols []plannedVolume, p kmsPrincipal) *launchError {
	if p.ARN == "" {
		p = accountCaller(r.Account)
	}
	for _, pv := range vols {
		if !pv.encrypted {
			continue
		}
		k, err := r.w.resolveKMSKey(r, pv.keyARN)
		if err != nil {
			continue // planVolumes reported it
		}
		if !r.keyAllowsLaunch(k, p) {
			return &launchError{code: "Client.InternalError", message: "Client error on launch"}
		}
	}
	return nil
}

// planVolumes merges the image's block devices with the requested ones
// and decides each volume's encryption. An encrypted snapshot always makes
// an encrypted volume; a missing or disabled key fails the launch.
func (r *Region) planVolumes(img *Image, req []LaunchBlockDevice) ([]plannedVolume, *launchError, *APIError) {
	byDevice := map[string]LaunchBlockDevice{}
	for _, b := range req {
		if b.DeviceName == "" {
			return nil, nil, errf("InvalidBlockDeviceMapping", "The device name must be specified for each block device mapping")
		}
		if b.KmsKeyID != "" && (b.Encrypted == nil || !*b.Encrypted) {
			return nil, nil, errf("InvalidParameterDependency", "The parameter KmsKeyId requires the parameter Encrypted to be set.")
		}
		if b.VolumeType != "" && !contains([]string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}, b.VolumeType) {
			return nil, nil, errf("InvalidParameterValue", "Value (%s) for parameter volumeType is invalid. Allowed values are [gp2, gp3, io1, io2, st1, sc1, standard]", b.VolumeType)
		}
		byDevice[b.DeviceName] = b
	}
	var out []plannedVolume
	var failure *launchError
	seen := map[string]bool{}
	add := func(b LaunchBlockDevice, base *ImageBlockDevice) *APIError {
		seen[b.DeviceName] = true
		if b.NoDevice || b.VirtualName != "" {
			return nil
		}
		pv := plannedVolume{bdm: b, size: b.VolumeSize, vtype: b.VolumeType, snapshot: b.SnapshotID, deleteOT: true}
		encSnap := false
		if base != nil {
			if pv.snapshot == "" {
				pv.snapshot = base.SnapshotID
			}
			if pv.size == 0 {
				pv.size = base.VolumeSize
			}
			if pv.vtype == "" {
				pv.vtype = base.VolumeType
			}
			pv.deleteOT = base.DeleteOnTermination
			encSnap = base.Encrypted
		}
		if b.DeleteOnTermination != nil {
			pv.deleteOT = *b.DeleteOnTermination
		}
		if pv.snapshot != "" {
			// The snapshots of an AMI another account shares are that
			// account's; its launch permission is enough to launch.
			snap, ok := r.findSnapshot(pv.snapshot)
			if !ok {
				return errf("InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.", pv.snapshot)
			}
			encSnap = encSnap || snap.Encrypted
			if pv.size == 0 {
				pv.size = snap.VolumeSize
			}
			if snap.VolumeSize > 0 && pv.size < snap.VolumeSize {
				return errf("InvalidBlockDeviceMapping", "Volume of size %dGB is smaller than snapshot '%s', expect size >= %dGB", pv.size, snap.ID, snap.VolumeSize)
			}
			if pv.bdm.KmsKeyID == "" && snap.Encrypted {
				pv.keyARN = snap.KmsKeyID
			}
		}
		if pv.size == 0 {
			return errf("InvalidBlockDeviceMapping", "The volume size must be specified for device %s", b.DeviceName)
		}
		if pv.vtype == "" {
			pv.vtype = "gp2"
		}
		if b.Encrypted != nil && !*b.Encrypted && encSnap {
			return errf("InvalidBlockDeviceMapping", "The encrypted snapshot for device %s cannot be used to create an unencrypted volume", b.DeviceName)
		}
		pv.encrypted = encSnap || (b.Encrypted != nil && *b.Encrypted)
		if pv.encrypted {
			switch {
			case b.KmsKeyID != "":
				k, kerr := r.w.usableKMSKey(r, b.KmsKeyID)
				if kerr != nil {
					if failure == nil {
						failure = &launchError{code: "Client.InvalidKMSKey.InvalidState", message: "The KMS key provided is in an incorrect state"}
					}
					pv.keyARN = b.KmsKeyID
				} else {
					pv.keyARN = k.ARN
				}
			case pv.keyARN != "":
				if _, kerr := r.w.usableKMSKey(r, pv.keyARN); kerr != nil && failure == nil {
					failure = &launchError{code: "Client.InvalidKMSKey.InvalidState", message: "The KMS key provided is in an incorrect state"}
				}
			default:
				pv.keyARN = r.ebsDefaultKMSKey().ARN
			}
		}
		out = append(out, pv)
		return nil
	}
	for i := range img.BlockDevices {
		base := img.BlockDevices[i]
		b, ok := byDevice[base.DeviceName]
		if !ok {
			b = LaunchBlockDevice{DeviceName: base.DeviceName}
		}
		if base.NoDevice || base.VirtualName != "" {
			continue
		}
		if err := add(b, &base); err != nil {
			return nil, nil, err
		}
	}
	names := make([]string, 0, len(byDevice))
	for n := range byDevice {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !seen[n] {
			if err := add(byDevice[n], nil); err != nil {
				return nil, nil, err
			}
		}
	}
	return out, failure, nil
}

// pickSubnet returns the named subnet or the default subnet of the first
// availability zone.
func (r *Region) pickSubnet(id string) (*Subnet, *APIError) {
	if id != "" {
		s, ok := r.Subnets[id]
		if !ok {
			return nil, errf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
		return s, nil
	}
	var best *Subnet
	for _, s := range r.Subnets {
		if s.IsDefault && (best == nil || s.AZ < best.AZ) {
			best = s
		}
	}
	if best == nil {
		return nil, errf("VPCIdNotSpecified", "No default VPC for this user")
	}
	return best, nil
}

// resolveSecurityGroups checks group ids (or names, for the default VPC)
// and returns ids; none means the VPC's default group.
func (r *Region) resolveSecurityGroups(vpcID string, ids, names []string) ([]string, *APIError) {
	var out []string
	for _, id := range ids {
		sg, ok := r.SecurityGroups[id]
		if !ok {
			return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
		if sg.VpcID != vpcID {
			return nil, errf("InvalidParameter", "Security group %s and subnet belong to different networks.", id)
		}
		out = append(out, id)
	}
	for _, n := range names {
		found := ""
		for _, sg := range r.SecurityGroups {
			if sg.Name == n && sg.VpcID == vpcID {
				found = sg.ID
			}
		}
		if found == "" {
			return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", n, vpcID)
		}
		out = append(out, found)
	}
	if len(out) == 0 {
		for _, sg := range r.SecurityGroups {
			if sg.IsDefault && sg.VpcID == vpcID {
				out = append(out, sg.ID)
			}
		}
	}
	return out, nil
}

// allocateIP hands out the next address of the subnet, skipping the four
// AWS reserves at the start.
func (s *Subnet) allocateIP() string {
	prefix, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return ""
	}
	if s.nextHost < 4 {
		s.nextHost = 4
	}
	addr := prefix.Addr()
	for i := 0; i < s.nextHost; i++ {
		addr = addr.Next()
	}
	s.nextHost++
	if !prefix.Contains(addr) {
		s.nextHost = 5
		return s.allocateIP()
	}
	return addr.String()
}

// allocateInstanceIP hands out the subnet's next address that the runtime
// can give an instance (in the linux runtime, a loopback address no other
// instance or program uses).
func (r *Region) allocateInstanceIP(s *Subnet) string {
	for i := 0; i < 1<<12; i++ {
		ip := s.allocateIP()
		if ip == "" || r.w.runtime.ClaimIP(ip) {
			return ip
		}
	}
	return s.allocateIP()
}

// stopInstance begins stopping a running or pending instance.
func (r *Region) stopInstance(inst *Instance, force bool) {
	if inst.State != "running" && inst.State != "pending" {
		return
	}
	inst.State = "stopping"
	inst.StateTransition = fmt.Sprintf("User initiated (%s)", r.w.now().UTC().Format("2006-01-02 15:04:05 GMT"))
	d := r.w.timing.d("instance_stopping")
	if force {
		d /= 3
	}
	inst.nextAt = r.w.now().Add(d)
	inst.rtOp = r.w.runtime.Stop(inst)
}

// startInstance begins starting a stopped instance.
func (r *Region) startInstance(inst *Instance) {
	if inst.State != "stopped" {
		return
	}
	inst.State, inst.StateReason, inst.StateTransition = "pending", "", ""
	inst.nextAt = r.w.now().Add(r.w.timing.d("instance_pending"))
	inst.rtOp = r.w.runtime.Boot(r, inst)
}

// terminateInstance begins terminating an instance in any live state.
func (r *Region) terminateInstance(inst *Instance, reason string) {
	if inst.State == "terminated" || inst.State == "shutting-down" {
		return
	}
	inst.State = "shutting-down"
	if reason == "" {
		reason = fmt.Sprintf("User initiated (%s)", r.w.now().UTC().Format("2006-01-02 15:04:05 GMT"))
	}
	inst.StateTransition = reason
	inst.nextAt = r.w.now().Add(r.w.timing.d("instance_shutting_down"))
	inst.rtOp = r.w.runtime.Terminate(inst)
}

// instanceController moves instances through their states. A transition
// completes when its time has come and the runtime's work for it (boot,
// stop, terminate) is done.
func instanceController(r *Region, now time.Time) {
	collect := false
	for id, inst := range r.Instances {
		if inst.nextAt.IsZero() || now.Before(inst.nextAt) {
			if inst.State == "terminated" && now.After(inst.terminatedAt.Add(r.w.timing.d("instance_visible_after"))) {
				delete(r.Instances, id)
			}
			continue
		}
		if !inst.rtOp.ready() {
			continue
		}
		opErr := inst.rtOp.failed()
		inst.rtOp, inst.nextAt = nil, time.Time{}
		switch inst.State {
		case "pending":
			if opErr != nil {
				// AWS's word for an instance that fails to start.
				inst.State, inst.StateReason = "shutting-down", "Server.InternalError: "+opErr.Error()
				inst.StateTransition = "Server error on launch"
				inst.nextAt = now.Add(r.w.timing.d("instance_shutting_down") / 4)
				inst.rtOp = r.w.runtime.Terminate(inst)
				continue
			}
			inst.State = "running"
		case "stopping":
			inst.State, inst.StateReason = "stopped", "Client.UserInitiatedShutdown: User initiated shutdown"
		case "shutting-down":
			inst.State, inst.terminatedAt = "terminated", now
			if inst.StateReason == "" {
				inst.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
			}
			r.w.runtime.ReleaseIP(inst.PrivateIP)
			collect = collect || len(inst.Layers) > 0
			for _, bd := range inst.BlockDevices {
				v := r.Volumes[bd.VolumeID]
				if v == nil {
					continue
				}
				v.InstanceID, v.Device = "", ""
				if bd.DeleteOnTermination {
					v.State = "deleted"
					delete(r.Volumes, v.ID)
				} else {
					v.State = "available"
				}
			}
		}
	}
	if collect {
		r.w.collectLayers()
	}
}

// collectLayers lets the runtime delete the image layers that no image
// (in any region) and no instance uses any more. Callers hold w.mu.
func (w *World) collectLayers() {
	live := map[string]bool{}
	for _, r := range w.regions {
		for _, im := range r.Images {
			if im.State != "deregistered" {
				for _, l := range im.Layers {
					live[l] = true
				}
			}
		}
		for _, inst := range r.Instances {
			if inst.State != "terminated" {
				for _, l := range inst.Layers {
					live[l] = true
				}
			}
		}
	}
	w.runtime.ReleaseLayers(live)
}

func init() { addController(instanceController) }

// resolveLaunchTemplate finds a template by id or name and a version by
// "$Latest", "$Default" (or "") or number.
func (r *Region) resolveLaunchTemplate(id, name, version string) (*LaunchTemplate, *LaunchTemplateVersion, *APIError) {
	var lt *LaunchTemplate
	switch {
	case id != "":
		lt = r.LaunchTemplates[id]
		if lt == nil {
			return nil, nil, errf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
		}
	case name != "":
		for _, t := range r.LaunchTemplates {
			if t.Name == name {
				lt = t
			}
		}
		if lt == nil {
			return nil, nil, errf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
		}
	default:
		return nil, nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateId or LaunchTemplateName")
	}
	n := lt.DefaultVersion
	switch version {
	case "", "$Default":
	case "$Latest":
		n = lt.LatestVersion
	default:
		var err error
		if _, err = fmt.Sscanf(version, "%d", &n); err != nil {
			return nil, nil, errf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s for template %s", version, lt.ID)
		}
	}
	v, ok := lt.Versions[n]
	if !ok {
		return nil, nil, errf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s for template %s", version, lt.ID)
	}
	return lt, v, nil
}

// normalizeLaunchData folds the primary network interface and the
// placement into the subnet and security groups a launch uses.
func (r *Region) normalizeLaunchData(d LaunchTemplateData) (LaunchTemplateData, *APIError) {
	for _, ni := range d.NetworkInterfaces {
		if ni.DeviceIndex != 0 {
			continue
		}
		if len(ni.GroupIDs) > 0 && (len(d.SecurityGroupIDs) > 0 || len(d.SecurityGroups) > 0) {
			return d, errf("InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		if ni.SubnetID != "" {
			if d.SubnetID != "" && d.SubnetID != ni.SubnetID {
				return d, errf("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request")
			}
			d.SubnetID = ni.SubnetID
		}
		if len(ni.GroupIDs) > 0 {
			d.SecurityGroupIDs = ni.GroupIDs
		}
	}
	if d.AZ != "" {
		if !contains(r.azs(), d.AZ) {
			return d, errf("InvalidParameterValue", "Invalid availability zone: [%s]", d.AZ)
		}
		if d.SubnetID == "" {
			for _, s := range r.Subnets {
				if s.IsDefault && s.AZ == d.AZ {
					d.SubnetID = s.ID
				}
			}
		} else if s := r.Subnets[d.SubnetID]; s != nil && s.AZ != d.AZ {
			return d, errf("InvalidParameterValue", "Subnet %s is in availability zone %s, not %s", s.ID, s.AZ, d.AZ)
		}
	}
	return d, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
