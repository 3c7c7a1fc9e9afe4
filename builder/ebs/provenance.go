package ebs

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/immutable-infra/packer-plugin-phoenix/version"
)

// The phoenix: tags the builder writes on AMIs and snapshots.
const (
	tagSourceAMI        = "phoenix:source-ami"
	tagSourceAMIName    = "phoenix:source-ami-name"
	tagSourceRegion     = "phoenix:source-region"
	tagBuildTime        = "phoenix:build-time"
	tagBuildName        = "phoenix:build-name"
	tagBuildID          = "phoenix:build-id"
	tagBuilder          = "phoenix:builder"
	tagHardeningProfile = "phoenix:hardening-profile"
	tagHardeningScore   = "phoenix:hardening-score"
	tagAuditLynisIndex  = "phoenix:audit-lynis-index"
)

const stateBuildID = "build_id"

func builderTag() string { return "phoenix-ebs " + version.String() }

// provenanceTags are the tags every AMI and snapshot of the build carries,
// so that anyone can tell where an image came from.
func provenanceTags(state multistep.StateBag) map[string]string {
	c, _, _ := from(state)
	tags := map[string]string{tagBuilder: builderTag(), tagSourceRegion: c.Region}
	if src, ok := state.Get(stateSourceImage).(*sourceImage); ok {
		tags[tagSourceAMI] = src.ID
		tags[tagSourceAMIName] = src.Name
	}
	if t, ok := state.Get(stateBuildTime).(time.Time); ok {
		tags[tagBuildTime] = t.UTC().Format(time.RFC3339)
	}
	if c.PackerBuildName != "" {
		tags[tagBuildName] = c.PackerBuildName
	}
	if id, ok := state.Get(stateBuildID).(string); ok {
		tags[tagBuildID] = id
	}
	if r, ok := state.Get(stateHardening).(*hardeningReport); ok {
		tags[tagHardeningProfile] = r.Profile
		tags[tagHardeningScore] = strconv.FormatFloat(r.Score, 'f', -1, 64)
		if r.LynisIndex >= 0 {
			tags[tagAuditLynisIndex] = strconv.Itoa(r.LynisIndex)
		}
	}
	return tags
}

// buildInfoFor is the template data for tags in a region.
func buildInfoFor(state multistep.StateBag, region string) buildInfo {
	info := buildInfo{BuildRegion: region}
	if src, ok := state.Get(stateSourceImage).(*sourceImage); ok {
		info.SourceAMI, info.SourceAMIName, info.SourceAMIOwner, info.SourceAMICreationDate = src.ID, src.Name, src.OwnerID, src.CreationDate
	}
	return info
}

// imageTags returns the rendered AMI and snapshot tags for region: the
// user's tags, then provenance (which the user cannot override by
// accident).
func imageTags(state multistep.StateBag, region string) (ami, snap map[string]string, err error) {
	c, _, _ := from(state)
	info := buildInfoFor(state, region)
	user, err := renderTags(c, c.Tags, info)
	if err != nil {
		return nil, nil, fmt.Errorf("tags: %w", err)
	}
	snapUser, err := renderTags(c, c.SnapshotTags, info)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot_tags: %w", err)
	}
	prov := provenanceTags(state)
	if _, ok := user["Name"]; !ok {
		user["Name"] = c.AMIName
	}
	ami = merge(user, prov)
	snap = merge(user, snapUser, prov)
	return ami, snap, nil
}
