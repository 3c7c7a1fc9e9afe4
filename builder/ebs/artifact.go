package ebs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"
)

// PublishedParameter is an SSM parameter version the build wrote.
type PublishedParameter struct {
	Region  string
	Name    string
	Version int64
	AMI     string
}

// Artifact is the AMIs of one build, one per region, and their snapshots.
type Artifact struct {
	// AMIs maps region to AMI id.
	AMIs map[string]string
	// Snapshots maps region to the AMI's snapshot ids.
	Snapshots map[string][]string
	// Parameters are the SSM parameter versions the build wrote, sorted by
	// region and name.
	Parameters []PublishedParameter

	sourceAMI string
	buildID   string
	labels    map[string]string
	generated map[string]interface{}
	clients   *clients
}

func newArtifact(amis *amiSet, src *sourceImage, cl *clients, state multistep.StateBag) *Artifact {
	ids, snaps := amis.snapshot()
	a := &Artifact{AMIs: ids, Snapshots: snaps, clients: cl, labels: map[string]string{}}
	if src != nil {
		a.sourceAMI = src.ID
		a.labels["source_ami_name"] = src.Name
	}
	a.buildID, _ = state.Get(stateBuildID).(string)
	if ps, ok := state.Get(stateSSMParameters).([]PublishedParameter); ok {
		a.Parameters = sortedParameters(ps)
	}
	if gd, ok := state.Get("generated_data").(map[string]interface{}); ok {
		a.generated = gd
	}
	if r, ok := state.Get(stateHardening).(*hardeningReport); ok {
		a.labels["hardening_profile"] = r.Profile
		a.labels["hardening_score"] = fmt.Sprint(r.Score)
	}
	return a
}

// BuilderId identifies the builder.
func (a *Artifact) BuilderId() string { return BuilderID }

// Files is empty: AMIs are not files.
func (a *Artifact) Files() []string { return nil }

// regions returns the artifact's regions, sorted.
func (a *Artifact) regions() []string {
	out := make([]string, 0, len(a.AMIs))
	for r := range a.AMIs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Id is "region:ami-…" per region, comma-joined and sorted, as amazon-ebs.
func (a *Artifact) Id() string {
	parts := make([]string, 0, len(a.AMIs))
	for _, r := range a.regions() {
		parts = append(parts, r+":"+a.AMIs[r])
	}
	return strings.Join(parts, ",")
}

func (a *Artifact) String() string {
	lines := []string{"AMIs were created:"}
	for _, r := range a.regions() {
		lines = append(lines, fmt.Sprintf("%s: %s", r, a.AMIs[r]))
	}
	return strings.Join(lines, "\n") + "\n"
}

// State answers Packer's queries: generated data and HCP Packer metadata.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "generated_data":
		return a.generated
	case "atlas.artifact.metadata":
		md := map[string]string{}
		for r, id := range a.AMIs {
			md["region."+r] = id
		}
		return md
	case registryimage.ArtifactStateURI:
		var out []*registryimage.Image
		for _, r := range a.regions() {
			out = append(out, &registryimage.Image{
				ImageID: a.AMIs[r], ProviderName: "aws", ProviderRegion: r,
				SourceImageID: a.sourceAMI, Labels: a.imageLabels(r),
			})
		}
		return out
	}
	return nil
}

// imageLabels are the HCP Packer labels of region's image: the build's,
// and "ssm_parameters", NAME:VERSION of each parameter written there.
func (a *Artifact) imageLabels(region string) map[string]string {
	var params []string
	for _, p := range a.Parameters {
		if p.Region == region {
			params = append(params, fmt.Sprintf("%s:%d", p.Name, p.Version))
		}
	}
	if len(params) == 0 {
		return a.labels
	}
	labels := merge(a.labels)
	labels["ssm_parameters"] = strings.Join(params, ",")
	return labels
}

// Destroy deregisters the AMIs and deletes their snapshots in every
// region. It leaves the SSM parameters the build wrote as they are.
func (a *Artifact) Destroy() error {
	if a.clients == nil {
		return fmt.Errorf("this artifact has no AWS access to destroy with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return deleteImages(ctx, a.clients, a.regions(), a.AMIs, a.Snapshots, a.buildID, func(string) {})
}
