package sandbox

import (
	"strings"
)

// Parsing and rendering shared by the EC2 handlers.

// parseTagSpecifications reads TagSpecification.N.ResourceType and
// TagSpecification.N.Tag.M.Key/Value (key "TagSpecification" for most
// actions; launch template data uses the same shape).
func parseTagSpecifications(p Params, key string) ([]TagSpecification, *APIError) {
	var out []TagSpecification
	for _, s := range p.Structs(key) {
		ts := TagSpecification{ResourceType: s.Get("ResourceType"), Tags: Tags{}}
		if ts.ResourceType == "" {
			return nil, errf("InvalidParameterValue", "Tag specification resource type must have a value")
		}
		for _, t := range s.Structs("Tag") {
			k := t.Get("Key")
			if k == "" {
				return nil, errf("InvalidParameterValue", "Tag key must not be empty")
			}
			if strings.HasPrefix(k, "aws:") {
				return nil, errf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
			}
			ts.Tags[k] = t.Get("Value")
		}
		out = append(out, ts)
	}
	return out, nil
}

// tagsFor collects the tags a resource type gets from tag specifications,
// refusing resource types the action cannot tag.
func tagsFor(specs []TagSpecification, allowed ...string) (map[string]Tags, *APIError) {
	out := map[string]Tags{}
	for _, s := range specs {
		if !contains(allowed, s.ResourceType) {
			return nil, errf("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if out[s.ResourceType] == nil {
			out[s.ResourceType] = Tags{}
		}
		for k, v := range s.Tags {
			out[s.ResourceType][k] = v
		}
	}
	return out, nil
}

// parseBlockDevices reads BlockDeviceMapping.N (RunInstances,
// RegisterImage, CreateImage and launch template data).
func parseBlockDevices(p Params, key string) ([]LaunchBlockDevice, *APIError) {
	var out []LaunchBlockDevice
	for _, b := range p.Structs(key) {
		d := LaunchBlockDevice{DeviceName: b.Get("DeviceName"), VirtualName: b.Get("VirtualName")}
		if b.Has("NoDevice") {
			d.NoDevice = true
		}
		e := b.Sub("Ebs")
		var err *APIError
		if d.VolumeSize, err = e.Int("VolumeSize", 0); err != nil {
			return nil, err
		}
		if d.Iops, err = e.Int("Iops", 0); err != nil {
			return nil, err
		}
		if d.Throughput, err = e.Int("Throughput", 0); err != nil {
			return nil, err
		}
		if d.Encrypted, err = e.BoolPtr("Encrypted"); err != nil {
			return nil, err
		}
		if d.DeleteOnTermination, err = e.BoolPtr("DeleteOnTermination"); err != nil {
			return nil, err
		}
		d.SnapshotID = e.Get("SnapshotId")
		d.VolumeType = e.Get("VolumeType")
		d.KmsKeyID = e.Get("KmsKeyId")
		out = append(out, d)
	}
	return out, nil
}

// renderTagSet is the <tagSet> of an EC2 resource.
func renderTagSet(tags Tags) *X { return ec2TagSet(tags) }

// taggable finds any EC2 resource by id for CreateTags/DeleteTags and
// returns a pointer to its tag map.
func (r *Region) taggable(id string) (*Tags, string, bool) {
	switch {
	case strings.HasPrefix(id, "i-"):
		if v, ok := r.Instances[id]; ok && v.State != "terminated" {
			return &v.Tags, "instance", true
		}
	case strings.HasPrefix(id, "ami-"):
		// Public images too: each account has its own view of them,
		// and its tags on them are its own (see call.imageTags).
		if v, ok := r.Images[id]; ok && v.State != "deregistered" {
			return &v.Tags, "image", true
		}
	case strings.HasPrefix(id, "snap-"):
		if v, ok := r.Snapshots[id]; ok && !v.Builtin {
			return &v.Tags, "snapshot", true
		}
	case strings.HasPrefix(id, "vol-"):
		if v, ok := r.Volumes[id]; ok {
			return &v.Tags, "volume", true
		}
	case strings.HasPrefix(id, "sg-"):
		if v, ok := r.SecurityGroups[id]; ok {
			return &v.Tags, "security-group", true
		}
	case strings.HasPrefix(id, "vpc-"):
		if v, ok := r.VPCs[id]; ok {
			return &v.Tags, "vpc", true
		}
	case strings.HasPrefix(id, "subnet-"):
		if v, ok := r.Subnets[id]; ok {
			return &v.Tags, "subnet", true
		}
	case strings.HasPrefix(id, "key-"):
		for _, v := range r.KeyPairs {
			if v.ID == id {
				return &v.Tags, "key-pair", true
			}
		}
	case strings.HasPrefix(id, "lt-"):
		if v, ok := r.LaunchTemplates[id]; ok {
			return &v.Tags, "launch-template", true
		}
	}
	return nil, "", false
}
