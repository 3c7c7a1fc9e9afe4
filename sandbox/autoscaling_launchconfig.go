package sandbox

import (
	"encoding/base64"
	"sort"
	"strings"
	"time"
)

// Launch configurations: the launch template's predecessor, still behind
// many older groups. The sandbox plays an account created before October
// 1, 2024, which may still create them ("Accounts created on or after
// October 1, 2024 cannot create new launch configurations using any
// method").
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/LaunchConfiguration.html
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchConfiguration.html

// LaunchConfiguration is an Auto Scaling launch configuration. It never
// changes once created.
type LaunchConfiguration struct {
	Name               string
	ARN                string
	ImageID            string
	InstanceType       string
	KeyName            string
	SecurityGroups     []string // ids or, in the default VPC, names
	UserData           string   // base64, as sent
	IamInstanceProfile string   // name or ARN
	BlockDevices       []LaunchBlockDevice
	Monitoring         bool // InstanceMonitoring.Enabled: detailed
	SpotPrice          string
	EbsOptimized       bool
	AssociatePublicIP  *bool
	PlacementTenancy   string
	Metadata           *MetadataOptions
	Created            time.Time
}

func init() {
	register("autoscaling", "CreateLaunchConfiguration", asgCreateLaunchConfiguration)
	register("autoscaling", "DescribeLaunchConfigurations", asgDescribeLaunchConfigurations)
	register("autoscaling", "DeleteLaunchConfiguration", asgDeleteLaunchConfiguration)
}

// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateLaunchConfiguration.html
func asgCreateLaunchConfiguration(c *call) (any, *APIError) {
	p, r := c.p, c.r
	name := p.Get("LaunchConfigurationName")
	if name == "" || len(name) > 255 {
		return nil, validation("1 validation error detected: Value at 'launchConfigurationName' failed to satisfy constraint: Member must have length between 1 and 255")
	}
	if _, ok := r.LaunchConfigs[name]; ok {
		return nil, errf("AlreadyExists", "Launch Configuration by this name already exists - A launch configuration already exists with the name %s", name)
	}
	if p.Get("InstanceId") != "" {
		return nil, validation("The sandbox does not create launch configurations from an instance (InstanceId)")
	}
	lc := &LaunchConfiguration{Name: name, ARN: r.arn("autoscaling", "launchConfiguration:"+newUUID()+":launchConfigurationName/"+name),
		ImageID: p.Get("ImageId"), InstanceType: p.Get("InstanceType"), KeyName: p.Get("KeyName"), SecurityGroups: p.Members("SecurityGroups"),
		UserData: p.Get("UserData"), IamInstanceProfile: p.Get("IamInstanceProfile"), SpotPrice: p.Get("SpotPrice"),
		PlacementTenancy: p.Get("PlacementTenancy"), Created: c.w.now()}
	// Without InstanceId, ImageId and InstanceType are required.
	if lc.ImageID == "" {
		return nil, validation("ImageId must be specified when InstanceId is not")
	}
	if lc.InstanceType == "" {
		return nil, validation("InstanceType must be specified when InstanceId is not")
	}
	if img, ok := r.Images[lc.ImageID]; !ok || img.State == "deregistered" || (!img.Public() && img.OwnerID != AccountID && !contains(img.Permissions.UserIDs, AccountID)) {
		return nil, validation("AMI %s is invalid: The image id '[%s]' does not exist", lc.ImageID, lc.ImageID)
	}
	if !instanceTypePattern.MatchString(lc.InstanceType) {
		return nil, validation("Invalid instance type: %s", lc.InstanceType)
	}
	if lc.KeyName != "" {
		if _, ok := r.KeyPairs[lc.KeyName]; !ok {
			return nil, validation("Invalid key pair: %s", lc.KeyName)
		}
	}
	if lc.UserData != "" {
		if _, err := base64.StdEncoding.DecodeString(lc.UserData); err != nil {
			return nil, validation("Invalid BASE64 encoding of user data.")
		}
	}
	// PlacementTenancy: default or dedicated; a launch configuration
	// cannot place instances on a Dedicated Host.
	if t := lc.PlacementTenancy; t != "" && t != "default" && t != "dedicated" {
		return nil, validation("Invalid value %s for PlacementTenancy. Valid values: default, dedicated", t)
	}
	var err *APIError
	// "The default value is true (enabled)."
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceMonitoring.html
	if lc.Monitoring, err = p.Bool("InstanceMonitoring.Enabled", true); err != nil {
		return nil, validation("%s", err.Message)
	}
	if lc.EbsOptimized, err = p.Bool("EbsOptimized", false); err != nil {
		return nil, validation("%s", err.Message)
	}
	if lc.AssociatePublicIP, err = p.BoolPtr("AssociatePublicIpAddress"); err != nil {
		return nil, validation("%s", err.Message)
	}
	if p.HasSub("MetadataOptions") {
		m := p.Sub("MetadataOptions")
		md := &MetadataOptions{HttpTokens: m.Get("HttpTokens"), HttpEndpoint: m.Get("HttpEndpoint")}
		if md.HttpPutResponseHopLimit, err = m.Int("HttpPutResponseHopLimit", 0); err != nil {
			return nil, validation("%s", err.Message)
		}
		if err := validateMetadata(*md); err != nil {
			return nil, validation("%s", err.Message)
		}
		lc.Metadata = md
	}
	for _, b := range p.MemberStructs("BlockDeviceMappings") {
		bd := LaunchBlockDevice{DeviceName: b.Get("DeviceName"), VirtualName: b.Get("VirtualName")}
		if bd.DeviceName == "" {
			return nil, validation("1 validation error detected: Value null at 'blockDeviceMappings.member.deviceName' failed to satisfy constraint: Member must not be null")
		}
		if bd.NoDevice, err = b.Bool("NoDevice", false); err != nil {
			return nil, validation("%s", err.Message)
		}
		// A launch configuration's EBS mapping has no KmsKeyId: an
		// encrypted volume uses the snapshot's key or the account's
		// default EBS key.
		// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Ebs.html
		e := b.Sub("Ebs")
		bd.SnapshotID, bd.VolumeType = e.Get("SnapshotId"), e.Get("VolumeType")
		for _, f := range []struct {
			key string
			dst *int
		}{{"VolumeSize", &bd.VolumeSize}, {"Iops", &bd.Iops}, {"Throughput", &bd.Throughput}} {
			if *f.dst, err = e.Int(f.key, 0); err != nil {
				return nil, validation("%s", err.Message)
			}
		}
		if bd.Encrypted, err = e.BoolPtr("Encrypted"); err != nil {
			return nil, validation("%s", err.Message)
		}
		if bd.DeleteOnTermination, err = e.BoolPtr("DeleteOnTermination"); err != nil {
			return nil, validation("%s", err.Message)
		}
		lc.BlockDevices = append(lc.BlockDevices, bd)
	}
	vpc := ""
	for _, v := range r.VPCs {
		if v.IsDefault {
			vpc = v.ID
		}
	}
	var ids, names []string
	for _, sg := range lc.SecurityGroups {
		if strings.HasPrefix(sg, "sg-") {
			ids = append(ids, sg)
		} else {
			names = append(names, sg)
		}
	}
	if _, err := r.resolveSecurityGroups(vpc, ids, names); err != nil {
		return nil, validation("%s", err.Message)
	}
	r.LaunchConfigs[name] = lc
	return nil, nil
}

// launchData is what an instance of a group on the launch configuration
// launches with.
func (lc *LaunchConfiguration) launchData() LaunchTemplateData {
	d := LaunchTemplateData{ImageID: lc.ImageID, InstanceType: lc.InstanceType, KeyName: lc.KeyName, UserData: lc.UserData,
		IamInstanceProfile: lc.IamInstanceProfile, BlockDevices: lc.BlockDevices, Tenancy: lc.PlacementTenancy}
	for _, sg := range lc.SecurityGroups {
		if strings.HasPrefix(sg, "sg-") {
			d.SecurityGroupIDs = append(d.SecurityGroupIDs, sg)
		} else {
			d.SecurityGroups = append(d.SecurityGroups, sg)
		}
	}
	ebs, mon := lc.EbsOptimized, lc.Monitoring
	d.EbsOptimized, d.Monitoring = &ebs, &mon
	if lc.Metadata != nil {
		m := *lc.Metadata
		d.Metadata = &m
	}
	if lc.SpotPrice != "" {
		d.MarketType, d.SpotMaxPrice = "spot", lc.SpotPrice
	}
	return d
}

func asgDescribeLaunchConfigurations(c *call) (any, *APIError) {
	names := c.p.Members("LaunchConfigurationNames")
	var all []*LaunchConfiguration
	for _, lc := range c.r.LaunchConfigs {
		if (len(names) == 0 || contains(names, lc.Name)) && !c.hidden(lc.Created) {
			all = append(all, lc)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	all, next, err := pageASG(c, all, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("LaunchConfigurations", Items("member", all, renderLaunchConfiguration)), next}, nil
}

func renderLaunchConfiguration(lc *LaunchConfiguration) []*X {
	var md *X
	if m := lc.Metadata; m != nil {
		hop := m.HttpPutResponseHopLimit
		md = E("MetadataOptions", Opt("HttpTokens", m.HttpTokens), IPtr("HttpPutResponseHopLimit", map[bool]*int{true: &hop}[hop != 0]), Opt("HttpEndpoint", m.HttpEndpoint))
	}
	return []*X{
		T("LaunchConfigurationName", lc.Name), T("LaunchConfigurationARN", lc.ARN), T("ImageId", lc.ImageID),
		Opt("KeyName", lc.KeyName), List("SecurityGroups", Strings("member", lc.SecurityGroups)), List("ClassicLinkVPCSecurityGroups", nil),
		T("UserData", lc.UserData), T("InstanceType", lc.InstanceType), T("KernelId", ""), T("RamdiskId", ""),
		List("BlockDeviceMappings", Items("member", lc.BlockDevices, func(b LaunchBlockDevice) []*X {
			kids := []*X{T("DeviceName", b.DeviceName), Opt("VirtualName", b.VirtualName)}
			if b.NoDevice {
				kids = append(kids, B("NoDevice", true))
			}
			nz := func(name string, n int) *X {
				if n == 0 {
					return nil
				}
				return I(name, n)
			}
			if b.SnapshotID != "" || b.VolumeSize != 0 || b.VolumeType != "" || b.Encrypted != nil || b.DeleteOnTermination != nil || b.Iops != 0 || b.Throughput != 0 {
				kids = append(kids, E("Ebs", Opt("SnapshotId", b.SnapshotID), nz("VolumeSize", b.VolumeSize), Opt("VolumeType", b.VolumeType),
					BPtr("DeleteOnTermination", b.DeleteOnTermination), nz("Iops", b.Iops), BPtr("Encrypted", b.Encrypted), nz("Throughput", b.Throughput)))
			}
			return kids
		})),
		E("InstanceMonitoring", B("Enabled", lc.Monitoring)), Opt("SpotPrice", lc.SpotPrice), Opt("IamInstanceProfile", lc.IamInstanceProfile),
		Time("CreatedTime", lc.Created), B("EbsOptimized", lc.EbsOptimized), BPtr("AssociatePublicIpAddress", lc.AssociatePublicIP),
		Opt("PlacementTenancy", lc.PlacementTenancy), md,
	}
}

// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteLaunchConfiguration.html
// "The launch configuration must not be attached to an Auto Scaling group."
func asgDeleteLaunchConfiguration(c *call) (any, *APIError) {
	name := c.p.Get("LaunchConfigurationName")
	if _, ok := c.r.LaunchConfigs[name]; !ok || name == "" {
		return nil, validation("Launch configuration name not found - Launch configuration %s not found", name)
	}
	for _, g := range c.sortedGroups() {
		if g.LaunchConfiguration == name {
			return nil, errf("ResourceInUse", "Cannot delete launch configuration %s because it is attached to AutoScalingGroup %s", name, g.Name)
		}
	}
	delete(c.r.LaunchConfigs, name)
	return nil, nil
}

// renderInstanceLaunchSource is the launch template or launch
// configuration an instance of a group was launched from.
func renderInstanceLaunchSource(in *ASGInstance) *X {
	if in.LaunchConfiguration != "" {
		return T("LaunchConfigurationName", in.LaunchConfiguration)
	}
	return renderASGLaunchTemplate("LaunchTemplate", &in.LaunchTemplate)
}
