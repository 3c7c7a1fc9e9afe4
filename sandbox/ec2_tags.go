package sandbox

import (
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// CreateTags, DeleteTags and DescribeTags work on every taggable EC2
// resource of the region (see Region.taggable).

func init() {
	register("ec2", "CreateTags", ec2CreateTags)
	register("ec2", "DeleteTags", ec2DeleteTags)
	register("ec2", "DescribeTags", ec2DescribeTags)
}

// maxTagsPerResource is EC2's limit of user tags on one resource.
const maxTagsPerResource = 50

// tagNotFound is the NotFound error of each resource type, by id prefix.
var tagNotFound = []struct{ prefix, code, format string }{
	{"i-", "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist"},
	{"ami-", "InvalidAMIID.NotFound", "The image id '[%s]' does not exist"},
	{"snap-", "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist."},
	{"vol-", "InvalidVolume.NotFound", "The volume '%s' does not exist."},
	{"sg-", "InvalidGroup.NotFound", "The security group '%s' does not exist"},
	{"vpc-", "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist"},
	{"subnet-", "InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist"},
	{"key-", "InvalidKeyPair.NotFound", "The key pair '%s' does not exist"},
	{"lt-", "InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist."},
}

// taggableResources resolves every id of ResourceId.N before anything
// changes, so one unknown id leaves all resources untouched.
func (c *call) taggableResources() ([]*Tags, *APIError) {
	ids := c.p.List("ResourceId")
	if len(ids) == 0 {
		return nil, errf("MissingParameter", "The request must contain the parameter resourceIdSet")
	}
	var out []*Tags
	for _, id := range ids {
		tags, _, ok := c.r.taggable(id)
		if !ok && strings.HasPrefix(id, "ami-") {
			// An AMI another account shares with the caller's: an account
			// may tag a public or shared resource, and its tags are
			// visible only in that account.
			// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html
			// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html
			if im, found := c.image(id); found && c.imageVisible(im) {
				tags, ok = c.imageTags(im), true
			}
		}
		if !ok {
			for _, nf := range tagNotFound {
				if strings.HasPrefix(id, nf.prefix) {
					return nil, errf(nf.code, nf.format, id)
				}
			}
			return nil, errf("InvalidID", "The ID '%s' is not valid", id)
		}
		if *tags == nil {
			*tags = Tags{}
		}
		out = append(out, tags)
	}
	return out, nil
}

func checkTag(key, value string) *APIError {
	switch {
	case key == "":
		return errf("InvalidParameterValue", "Tag key must not be empty")
	case strings.HasPrefix(strings.ToLower(key), "aws:"):
		return errf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
	case utf8.RuneCountInString(key) > 128:
		return errf("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters")
	case utf8.RuneCountInString(value) > 256:
		return errf("InvalidParameterValue", "Tag value exceeds the maximum length of 256 characters")
	}
	return nil
}

func ec2CreateTags(c *call) (any, *APIError) {
	targets, err := c.taggableResources()
	if err != nil {
		return nil, err
	}
	tagParams := c.p.Structs("Tag")
	if len(tagParams) == 0 {
		return nil, errf("MissingParameter", "The request must contain the parameter tagSet")
	}
	add := Tags{}
	for _, t := range tagParams {
		k, v := t.Get("Key"), t.Get("Value")
		if err := checkTag(k, v); err != nil {
			return nil, err
		}
		add[k] = v
	}
	for _, tags := range targets {
		n := len(*tags)
		for k := range add {
			if _, ok := (*tags)[k]; !ok {
				n++
			}
		}
		if n > maxTagsPerResource {
			return nil, errf("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
		}
	}
	for _, tags := range targets {
		for k, v := range add {
			(*tags)[k] = v
		}
	}
	return okReturn(), nil
}

// DeleteTags removes the given keys; a key sent with a value (even an
// empty one) goes only when the value matches; no Tag.N removes every user
// tag, as AWS documents.
func ec2DeleteTags(c *call) (any, *APIError) {
	targets, err := c.taggableResources()
	if err != nil {
		return nil, err
	}
	tagParams := c.p.Structs("Tag")
	for _, t := range tagParams {
		if k := t.Get("Key"); strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errf("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	for _, tags := range targets {
		if len(tagParams) == 0 {
			for k := range *tags {
				if !strings.HasPrefix(k, "aws:") {
					delete(*tags, k)
				}
			}
			continue
		}
		for _, t := range tagParams {
			k := t.Get("Key")
			if v, ok := (*tags)[k]; ok && (!t.Has("Value") || t.Get("Value") == v) {
				delete(*tags, k)
			}
		}
	}
	return okReturn(), nil
}

// taggedResource is one resource as DescribeTags lists it.
type taggedResource struct {
	id, typ string
	tags    Tags
	created time.Time
}

// taggedResources lists the region's resources that CreateTags can tag.
func (r *Region) taggedResources() []taggedResource {
	var out []taggedResource
	add := func(id, typ string, tags Tags, created time.Time) {
		if len(tags) > 0 {
			out = append(out, taggedResource{id, typ, tags, created})
		}
	}
	for _, v := range r.Instances {
		if v.State != "terminated" {
			add(v.ID, "instance", v.Tags, v.Created)
		}
	}
	for _, v := range r.Images {
		if v.State != "deregistered" {
			add(v.ID, "image", v.Tags, v.Created)
		}
	}
	for _, v := range r.Snapshots {
		if !v.Builtin {
			add(v.ID, "snapshot", v.Tags, v.Created)
		}
	}
	for _, v := range r.Volumes {
		add(v.ID, "volume", v.Tags, v.Created)
	}
	for _, v := range r.SecurityGroups {
		add(v.ID, "security-group", v.Tags, v.Created)
	}
	for _, v := range r.VPCs {
		add(v.ID, "vpc", v.Tags, v.Created)
	}
	for _, v := range r.Subnets {
		add(v.ID, "subnet", v.Tags, v.Created)
	}
	for _, v := range r.KeyPairs {
		add(v.ID, "key-pair", v.Tags, v.Created)
	}
	for _, v := range r.LaunchTemplates {
		add(v.ID, "launch-template", v.Tags, v.Created)
	}
	return out
}

// tagEntry is one row of DescribeTags.
type tagEntry struct {
	res        *taggedResource
	key, value string
}

var tagFilters = filterTable[tagEntry]{
	"key":           func(e tagEntry) []string { return fvOne(e.key) },
	"value":         func(e tagEntry) []string { return fvOne(e.value) },
	"resource-id":   func(e tagEntry) []string { return fvOne(e.res.id) },
	"resource-type": func(e tagEntry) []string { return fvOne(e.res.typ) },
}

func ec2DescribeTags(c *call) (any, *APIError) {
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	max, err := ebsMaxResults(c.p, 5, 1000, "", false)
	if err != nil {
		return nil, err
	}
	resources := c.r.taggedResources()
	var entries []tagEntry
	for i := range resources {
		res := &resources[i]
		if c.hidden(res.created) {
			continue
		}
		for _, k := range res.tags.Keys() {
			e := tagEntry{res: res, key: k, value: res.tags[k]}
			ok, err := matchFilters(filters, res.tags, tagFilters.fields(e))
			if err != nil {
				return nil, err
			}
			if ok {
				entries = append(entries, e)
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.res.id != b.res.id {
			return a.res.id < b.res.id
		}
		return a.key < b.key
	})
	pg, next, err := page(entries, c.p.Get("NextToken"), max)
	if err != nil {
		return nil, err
	}
	return nonNil(List("tagSet", Items("item", pg, func(e tagEntry) []*X {
		return []*X{T("resourceId", e.res.id), T("resourceType", e.res.typ), T("key", e.key), T("value", e.value)}
	})), Opt("nextToken", next)), nil
}
