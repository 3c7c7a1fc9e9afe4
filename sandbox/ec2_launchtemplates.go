package sandbox

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EC2 launch templates and their numbered versions. The launch parameter
// parser here also reads RunInstances' own parameters: both speak the same
// shape, and a RunInstances from a template applies its parameters over
// the template's data exactly as CreateLaunchTemplateVersion applies its
// data over a SourceVersion.

func init() {
	register("ec2", "CreateLaunchTemplate", ec2CreateLaunchTemplate)
	register("ec2", "CreateLaunchTemplateVersion", ec2CreateLaunchTemplateVersion)
	register("ec2", "DescribeLaunchTemplates", ec2DescribeLaunchTemplates)
	register("ec2", "DescribeLaunchTemplateVersions", ec2DescribeLaunchTemplateVersions)
	register("ec2", "ModifyLaunchTemplate", ec2ModifyLaunchTemplate)
	register("ec2", "DeleteLaunchTemplate", ec2DeleteLaunchTemplate)
	register("ec2", "DeleteLaunchTemplateVersions", ec2DeleteLaunchTemplateVersions)
}

// mergeLaunchData applies every launch parameter present in p over base;
// lists and structures replace the base's as a whole.
func mergeLaunchData(base LaunchTemplateData, p Params) (LaunchTemplateData, *APIError) {
	d := base
	for key, dst := range map[string]*string{"ImageId": &d.ImageID, "InstanceType": &d.InstanceType, "KeyName": &d.KeyName,
		"UserData": &d.UserData, "SubnetId": &d.SubnetID, "Placement.AvailabilityZone": &d.AZ} {
		if p.Has(key) {
			*dst = p.Get(key)
		}
	}
	if p.Has("ImageId") && !strings.HasPrefix(d.ImageID, "ami-") && !isImageAlias(d.ImageID) {
		return d, errf("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", d.ImageID)
	}
	if p.Has("InstanceType") && !instanceTypePattern.MatchString(d.InstanceType) {
		return d, errf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", d.InstanceType)
	}
	if p.Has("UserData") {
		if _, err := base64.StdEncoding.DecodeString(d.UserData); err != nil {
			return d, errf("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
	}
	if p.HasSub("SecurityGroupId") {
		d.SecurityGroupIDs = p.List("SecurityGroupId")
	}
	if p.HasSub("SecurityGroup") {
		d.SecurityGroups = p.List("SecurityGroup")
	}
	if p.HasSub("IamInstanceProfile") {
		d.IamInstanceProfile = p.Get("IamInstanceProfile.Arn")
		if d.IamInstanceProfile == "" {
			d.IamInstanceProfile = p.Get("IamInstanceProfile.Name")
		}
	}
	if p.HasSub("MetadataOptions") {
		m := p.Sub("MetadataOptions")
		md := &MetadataOptions{HttpTokens: m.Get("HttpTokens"), HttpEndpoint: m.Get("HttpEndpoint"), InstanceMetadataTags: m.Get("InstanceMetadataTags")}
		var err *APIError
		if md.HttpPutResponseHopLimit, err = m.Int("HttpPutResponseHopLimit", 0); err != nil {
			return d, err
		}
		if err := validateMetadata(*md); err != nil {
			return d, err
		}
		d.Metadata = md
	}
	if p.HasSub("BlockDeviceMapping") {
		bds, err := parseBlockDevices(p, "BlockDeviceMapping")
		if err != nil {
			return d, err
		}
		d.BlockDevices = bds
	}
	if p.HasSub("TagSpecification") {
		ts, err := parseTagSpecifications(p, "TagSpecification")
		if err != nil {
			return d, err
		}
		d.TagSpecifications = ts
	}
	if err := mergeLaunchPlacement(&d, p); err != nil {
		return d, err
	}
	if p.HasSub("NetworkInterface") {
		d.NetworkInterfaces = nil
		for _, n := range p.Structs("NetworkInterface") {
			ni := LaunchNetworkInterface{SubnetID: n.Get("SubnetId"), GroupIDs: n.List("SecurityGroupId"), Description: n.Get("Description")}
			var err *APIError
			if ni.DeviceIndex, err = n.Int("DeviceIndex", 0); err != nil {
				return d, err
			}
			if ni.AssociatePublicIP, err = n.BoolPtr("AssociatePublicIpAddress"); err != nil {
				return d, err
			}
			if ni.DeleteOnTermination, err = n.BoolPtr("DeleteOnTermination"); err != nil {
				return d, err
			}
			d.NetworkInterfaces = append(d.NetworkInterfaces, ni)
		}
	}
	return d, nil
}

// validateMetadata checks the values of MetadataOptions that were sent.
func validateMetadata(m MetadataOptions) *APIError {
	for _, f := range []struct{ name, val, a, b string }{
		{"HttpTokens", m.HttpTokens, "optional", "required"},
		{"HttpEndpoint", m.HttpEndpoint, "enabled", "disabled"},
		{"InstanceMetadataTags", m.InstanceMetadataTags, "enabled", "disabled"},
	} {
		if f.val != "" && f.val != f.a && f.val != f.b {
			return errf("InvalidParameterValue", "Invalid value '%s' for %s. Valid values: %s, %s", f.val, f.name, f.a, f.b)
		}
	}
	if m.HttpPutResponseHopLimit != 0 && (m.HttpPutResponseHopLimit < 1 || m.HttpPutResponseHopLimit > 64) {
		return errf("InvalidParameterValue", "Invalid value '%d' for HttpPutResponseHopLimit. Valid range: 1-64", m.HttpPutResponseHopLimit)
	}
	return nil
}

var launchTemplateName = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)

func createdBy(account string) string { return "arn:aws:iam::" + account + ":root" }

func renderLaunchTemplate(account string, lt *LaunchTemplate) *X {
	return E("launchTemplate", T("launchTemplateId", lt.ID), T("launchTemplateName", lt.Name), Time("createTime", lt.Created),
		T("createdBy", createdBy(account)), I("defaultVersionNumber", lt.DefaultVersion), I("latestVersionNumber", lt.LatestVersion),
		renderTagSet(lt.Tags))
}

func renderLaunchTemplateVersion(account, name string, lt *LaunchTemplate, v *LaunchTemplateVersion) *X {
	return renderVersionData(account, name, lt, v, v.Data)
}

// renderVersionData renders a version with data in place of its own (a
// resolved image alias).
func renderVersionData(account, name string, lt *LaunchTemplate, v *LaunchTemplateVersion, d LaunchTemplateData) *X {
	return E(name, T("launchTemplateId", lt.ID), T("launchTemplateName", lt.Name), I("versionNumber", v.Number),
		Opt("versionDescription", v.Description), Time("createTime", v.Created), T("createdBy", createdBy(account)),
		B("defaultVersion", v.Number == lt.DefaultVersion), E("launchTemplateData", renderLaunchData(d)...))
}

// renderLaunchData is a types.ResponseLaunchTemplateData.
func renderLaunchData(d LaunchTemplateData) []*X {
	out := []*X{Opt("imageId", d.ImageID), Opt("instanceType", d.InstanceType), Opt("keyName", d.KeyName), Opt("userData", d.UserData)}
	if len(d.SecurityGroupIDs) > 0 {
		out = append(out, List("securityGroupIdSet", Strings("item", d.SecurityGroupIDs)))
	}
	if len(d.SecurityGroups) > 0 {
		out = append(out, List("securityGroupSet", Strings("item", d.SecurityGroups)))
	}
	if p := d.IamInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			out = append(out, E("iamInstanceProfile", T("arn", p)))
		} else {
			out = append(out, E("iamInstanceProfile", T("name", p)))
		}
	}
	if m := d.Metadata; m != nil {
		hop := m.HttpPutResponseHopLimit
		out = append(out, E("metadataOptions", Opt("httpTokens", m.HttpTokens), Opt("httpEndpoint", m.HttpEndpoint),
			IPtr("httpPutResponseHopLimit", map[bool]*int{true: &hop}[hop != 0]), Opt("instanceMetadataTags", m.InstanceMetadataTags)))
	}
	if len(d.BlockDevices) > 0 {
		out = append(out, List("blockDeviceMappingSet", Items("item", d.BlockDevices, func(b LaunchBlockDevice) []*X {
			kids := []*X{T("deviceName", b.DeviceName), Opt("virtualName", b.VirtualName)}
			if b.NoDevice {
				kids = append(kids, T("noDevice", ""))
			}
			if b.SnapshotID != "" || b.VolumeSize != 0 || b.VolumeType != "" || b.Encrypted != nil || b.KmsKeyID != "" || b.DeleteOnTermination != nil || b.Iops != 0 || b.Throughput != 0 {
				nz := func(name string, n int) *X {
					if n == 0 {
						return nil
					}
					return I(name, n)
				}
				kids = append(kids, E("ebs", BPtr("encrypted", b.Encrypted), BPtr("deleteOnTermination", b.DeleteOnTermination),
					nz("iops", b.Iops), Opt("kmsKeyId", b.KmsKeyID), Opt("snapshotId", b.SnapshotID), nz("volumeSize", b.VolumeSize),
					Opt("volumeType", b.VolumeType), nz("throughput", b.Throughput)))
			}
			return kids
		})))
	}
	if len(d.NetworkInterfaces) > 0 {
		out = append(out, List("networkInterfaceSet", Items("item", d.NetworkInterfaces, func(n LaunchNetworkInterface) []*X {
			return ec2Out(BPtr("associatePublicIpAddress", n.AssociatePublicIP), BPtr("deleteOnTermination", n.DeleteOnTermination),
				Opt("description", n.Description), I("deviceIndex", n.DeviceIndex), List("groupSet", Strings("groupId", n.GroupIDs)),
				Opt("subnetId", n.SubnetID))
		})))
	}
	if d.AZ != "" || d.Tenancy != "" {
		out = append(out, E("placement", Opt("availabilityZone", d.AZ), Opt("tenancy", d.Tenancy)))
	}
	out = append(out, renderLaunchPlacement(d)...)
	if len(d.TagSpecifications) > 0 {
		out = append(out, List("tagSpecificationSet", Items("item", d.TagSpecifications, func(ts TagSpecification) []*X {
			return ec2Out(T("resourceType", ts.ResourceType), renderTagSet(ts.Tags))
		})))
	}
	return out
}

// templateData reads LaunchTemplateData.* over base, refusing tag
// specifications for resources a launch cannot tag.
func templateData(c *call, base LaunchTemplateData) (LaunchTemplateData, *APIError) {
	d, err := mergeLaunchData(base, c.p.Sub("LaunchTemplateData"))
	if err != nil {
		return d, err
	}
	for _, ts := range d.TagSpecifications {
		switch ts.ResourceType {
		case "instance", "volume", "network-interface", "spot-instances-request":
		default:
			return d, errf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
		}
	}
	// A Systems Manager parameter must exist, as an aws:ec2:image String,
	// before a launch template version can name it: EC2 checks it at
	// creation (and at every launch).
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
	// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#ssm-parameter-format-for-ami-ids
	if _, err := c.r.resolveImageAlias(d.ImageID); err != nil {
		return d, err
	}
	return d, nil
}

func ec2CreateLaunchTemplate(c *call) (any, *APIError) {
	name := c.p.Get("LaunchTemplateName")
	if name == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateName")
	}
	if !launchTemplateName.MatchString(name) {
		return nil, errf("InvalidLaunchTemplateName.MalformedException", "A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'")
	}
	for _, lt := range c.r.LaunchTemplates {
		if lt.Name == name {
			return nil, errf("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
		}
	}
	if !c.p.HasSub("LaunchTemplateData") {
		return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateData")
	}
	desc := c.p.Get("VersionDescription")
	if len(desc) > 255 {
		return nil, errf("InvalidParameterValue", "Version description must be at most 255 characters")
	}
	data, err := templateData(c, LaunchTemplateData{})
	if err != nil {
		return nil, err
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "launch-template")
	if err != nil {
		return nil, err
	}
	now := c.w.now()
	lt := &LaunchTemplate{ID: newID("lt"), Name: name, DefaultVersion: 1, LatestVersion: 1, Tags: Tags{}, Created: now,
		Versions: map[int]*LaunchTemplateVersion{1: {Number: 1, Description: desc, Data: data, Created: now}}}
	for k, v := range tags["launch-template"] {
		lt.Tags[k] = v
	}
	c.r.LaunchTemplates[lt.ID] = lt
	return ec2Out(renderLaunchTemplate(c.r.Account, lt)), nil
}

func ec2CreateLaunchTemplateVersion(c *call) (any, *APIError) {
	lt, _, err := c.r.resolveLaunchTemplate(c.p.Get("LaunchTemplateId"), c.p.Get("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	if !c.p.HasSub("LaunchTemplateData") {
		return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateData")
	}
	var base LaunchTemplateData
	if src := c.p.Get("SourceVersion"); src != "" {
		_, v, err := c.r.resolveLaunchTemplate(lt.ID, "", src)
		if err != nil {
			return nil, err
		}
		base = v.Data
	}
	data, err := templateData(c, base)
	if err != nil {
		return nil, err
	}
	if len(lt.Versions) >= 10000 {
		return nil, errf("LaunchTemplateMaxVersionsExceeded", "You have reached the maximum number of versions (10000) for launch template %s.", lt.ID)
	}
	n := lt.LatestVersion + 1
	v := &LaunchTemplateVersion{Number: n, Description: c.p.Get("VersionDescription"), Data: data, Created: c.w.now()}
	lt.Versions[n], lt.LatestVersion = v, n
	return ec2Out(renderLaunchTemplateVersion(c.r.Account, "launchTemplateVersion", lt, v)), nil
}

func ec2DescribeLaunchTemplates(c *call) (any, *APIError) {
	all := make([]*LaunchTemplate, 0, len(c.r.LaunchTemplates))
	for _, lt := range c.r.LaunchTemplates {
		all = append(all, lt)
	}
	ids, names := c.p.List("LaunchTemplateId"), c.p.List("LaunchTemplateName")
	for _, id := range ids {
		if !strings.HasPrefix(id, "lt-") {
			return nil, errf("InvalidLaunchTemplateId.Malformed", "The specified ID for the launch template is not valid: %s", id)
		}
	}
	lts, err := describe(c, all, describeSpec[*LaunchTemplate]{
		id: func(lt *LaunchTemplate) string { return lt.ID }, tags: func(lt *LaunchTemplate) Tags { return lt.Tags },
		created: func(lt *LaunchTemplate) time.Time { return lt.Created },
		fields: func(lt *LaunchTemplate) FilterFields {
			return fieldMap(map[string][]string{"launch-template-name": one(lt.Name),
				"create-time": one(lt.Created.UTC().Format("2006-01-02T15:04:05.000Z"))})
		},
	},
		selector[*LaunchTemplate]{values: ids, key: func(lt *LaunchTemplate) string { return lt.ID },
			notFound: func(m []string) *APIError {
				return errf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", m[0])
			}},
		selector[*LaunchTemplate]{values: names, key: func(lt *LaunchTemplate) string { return lt.Name },
			notFound: func([]string) *APIError {
				return errf("InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
			}})
	if err != nil {
		return nil, err
	}
	pg, next, err := ec2Page(c.p, lts, 1, 200, len(ids)+len(names) > 0, "launchTemplateIds")
	if err != nil {
		return nil, err
	}
	items := make([]*X, 0, len(pg))
	for _, lt := range pg {
		x := renderLaunchTemplate(c.r.Account, lt)
		x.Name = "item"
		items = append(items, x)
	}
	return ec2Out(List("launchTemplates", items), next), nil
}

type ltVersion struct {
	lt *LaunchTemplate
	v  *LaunchTemplateVersion
}

func ec2DescribeLaunchTemplateVersions(c *call) (any, *APIError) {
	id, name := c.p.Get("LaunchTemplateId"), c.p.Get("LaunchTemplateName")
	wanted := c.p.List("LaunchTemplateVersion")
	var templates []*LaunchTemplate
	if id == "" && name == "" {
		for _, w := range wanted {
			if w != "$Latest" && w != "$Default" {
				return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateId or LaunchTemplateName when describing specific versions")
			}
		}
		if len(wanted) == 0 {
			return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateId or LaunchTemplateName")
		}
		for _, lt := range c.r.LaunchTemplates {
			if !c.hidden(lt.Created) {
				templates = append(templates, lt)
			}
		}
		sort.Slice(templates, func(i, j int) bool { return templates[i].ID < templates[j].ID })
	} else {
		lt, _, err := c.r.resolveLaunchTemplate(id, name, "")
		if err != nil {
			return nil, err
		}
		if c.hidden(lt.Created) {
			return nil, errf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", lt.ID)
		}
		templates = []*LaunchTemplate{lt}
	}
	minV, err := c.p.Int("MinVersion", 0)
	if err != nil {
		return nil, err
	}
	maxV, err := c.p.Int("MaxVersion", 0)
	if err != nil {
		return nil, err
	}
	var all []ltVersion
	for _, lt := range templates {
		if len(wanted) > 0 {
			seen := map[int]bool{}
			for _, w := range wanted {
				_, v, err := c.r.resolveLaunchTemplate(lt.ID, "", w)
				if err != nil {
					return nil, err
				}
				if !seen[v.Number] {
					seen[v.Number] = true
					all = append(all, ltVersion{lt, v})
				}
			}
			continue
		}
		nums := make([]int, 0, len(lt.Versions))
		for n := range lt.Versions {
			if (minV == 0 || n >= minV) && (maxV == 0 || n <= maxV) {
				nums = append(nums, n)
			}
		}
		sort.Sort(sort.Reverse(sort.IntSlice(nums)))
		for _, n := range nums {
			all = append(all, ltVersion{lt, lt.Versions[n]})
		}
	}
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	var out []ltVersion
	for _, lv := range all {
		d := lv.v.Data
		ok, err := matchFilters(filters, nil, fieldMap(map[string][]string{
			"create-time": one(lv.v.Created.UTC().Format("2006-01-02T15:04:05.000Z")), "ebs-optimized": one("false"),
			"iam-instance-profile": one(d.IamInstanceProfile), "image-id": one(d.ImageID), "instance-type": one(d.InstanceType),
			"is-default-version": one(boolStr(lv.v.Number == lv.lt.DefaultVersion)), "kernel-id": nil, "ram-disk-id": nil,
			"http-tokens": nil,
		}))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, lv)
		}
	}
	pg, next, err := ec2Page(c.p, out, 1, 200, false, "")
	if err != nil {
		return nil, err
	}
	// With ResolveAlias, ImageId is the AMI a Systems Manager parameter
	// maps to now; without, the alias as the version stores it.
	// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html
	resolve, err := c.p.Bool("ResolveAlias", false)
	if err != nil {
		return nil, err
	}
	items := make([]*X, 0, len(pg))
	for _, lv := range pg {
		d := lv.v.Data
		if resolve {
			if d.ImageID, err = c.r.resolveImageAlias(d.ImageID); err != nil {
				return nil, err
			}
		}
		items = append(items, renderVersionData(c.r.Account, "item", lv.lt, lv.v, d))
	}
	return ec2Out(List("launchTemplateVersionSet", items), next), nil
}

func ec2ModifyLaunchTemplate(c *call) (any, *APIError) {
	lt, _, err := c.r.resolveLaunchTemplate(c.p.Get("LaunchTemplateId"), c.p.Get("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	if set := c.p.Get("SetDefaultVersion"); set != "" {
		_, v, err := c.r.resolveLaunchTemplate(lt.ID, "", set)
		if err != nil {
			return nil, err
		}
		lt.DefaultVersion = v.Number
	}
	return ec2Out(renderLaunchTemplate(c.r.Account, lt)), nil
}

func ec2DeleteLaunchTemplate(c *call) (any, *APIError) {
	lt, _, err := c.r.resolveLaunchTemplate(c.p.Get("LaunchTemplateId"), c.p.Get("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	delete(c.r.LaunchTemplates, lt.ID)
	return ec2Out(renderLaunchTemplate(c.r.Account, lt)), nil
}

func ec2DeleteLaunchTemplateVersions(c *call) (any, *APIError) {
	lt, _, err := c.r.resolveLaunchTemplate(c.p.Get("LaunchTemplateId"), c.p.Get("LaunchTemplateName"), "")
	if err != nil {
		return nil, err
	}
	versions := c.p.List("LaunchTemplateVersion")
	if len(versions) == 0 {
		return nil, errf("MissingParameter", "The request must contain the parameter LaunchTemplateVersion")
	}
	var ok, failed []*X
	for _, s := range versions {
		n, perr := strconv.Atoi(s)
		head := []*X{T("launchTemplateId", lt.ID), T("launchTemplateName", lt.Name)}
		fail := func(code, msg string) {
			failed = append(failed, E("item", append(head, T("versionNumber", s), E("responseError", T("code", code), T("message", msg)))...))
		}
		switch {
		case perr != nil:
			fail("launchTemplateVersionDoesNotExist", "Could not find launch template version "+s)
		case lt.Versions[n] == nil:
			fail("launchTemplateVersionDoesNotExist", "Could not find launch template version "+s)
		case n == lt.DefaultVersion:
			fail("unexpectedError", "Cannot delete the default version of a launch template; set another default version first")
		default:
			delete(lt.Versions, n)
			ok = append(ok, E("item", append(head, I("versionNumber", n))...))
		}
	}
	if lt.Versions[lt.LatestVersion] == nil {
		for n := range lt.Versions {
			if lt.Versions[lt.LatestVersion] == nil || n > lt.LatestVersion {
				lt.LatestVersion = n
			}
		}
	}
	return ec2Out(List("successfullyDeletedLaunchTemplateVersionSet", ok), List("unsuccessfullyDeletedLaunchTemplateVersionSet", failed)), nil
}
