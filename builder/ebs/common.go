package ebs

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awstag"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/inuse"
)

// sourceImage is what the build knows of its source AMI.
type sourceImage struct {
	ID             string
	Name           string
	OwnerID        string
	CreationDate   string
	RootDeviceName string
	Architecture   string
}

// instanceInfo is the build instance.
type instanceInfo struct {
	ID         string
	PrivateIP  string
	PublicIP   string
	PrivateDNS string
	PublicDNS  string
}

// hardeningReport is what phoenix-harden leaves in the image.
type hardeningReport struct {
	Profile string
	Score   float64
	// LynisIndex is the hardening index of the audit phoenix-harden's
	// audit setting ran; -1 when the report has none.
	LynisIndex int
}

// buildInfo is the data tags and descriptions are templated with.
type buildInfo struct {
	BuildRegion           string
	SourceAMI             string
	SourceAMIName         string
	SourceAMIOwner        string
	SourceAMICreationDate string
}

// halt records err for the build and halts.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put("error", err)
	if ui, ok := state.Get(stateUI).(packersdk.Ui); ok {
		ui.Error(err.Error())
	}
	return multistep.ActionHalt
}

// from fetches the common state every step needs.
func from(state multistep.StateBag) (*Config, *clients, packersdk.Ui) {
	c, _ := state.Get(stateConfig).(*Config)
	cl, _ := state.Get(stateClients).(*clients)
	ui, _ := state.Get(stateUI).(packersdk.Ui)
	return c, cl, ui
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string { return inuse.Code(err) }

// failed reports whether the build ended badly, so cleanup must remove
// what it made.
func failed(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return cancelled || halted
}

// renderTags renders templated tag values with the build's data.
func renderTags(c *Config, tags map[string]string, info buildInfo) (map[string]string, error) {
	out := make(map[string]string, len(tags))
	ctx := c.ctx
	ctx.Data = info
	for k, v := range tags {
		rk, err := interpolate.Render(k, &ctx)
		if err != nil {
			return nil, fmt.Errorf("rendering tag key %q: %w", k, err)
		}
		rv, err := interpolate.Render(v, &ctx)
		if err != nil {
			return nil, fmt.Errorf("rendering tag %q: %w", k, err)
		}
		out[rk] = rv
	}
	return out, nil
}

func tagSpec(rt ec2types.ResourceType, m map[string]string) ec2types.TagSpecification {
	return ec2types.TagSpecification{ResourceType: rt, Tags: awstag.EC2(m)}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// deleteImages deregisters AMIs and deletes their snapshots, and also
// anything tagged with buildID (when set) that a list may have missed, in
// every given region. It goes on after an error and returns them all.
func deleteImages(ctx context.Context, cl *clients, regions []string, amis map[string]string, snaps map[string][]string, buildID string, say func(string)) error {
	var errs []error
	for _, region := range regions {
		e := cl.EC2(region)
		imageIDs := []string{}
		if id := amis[region]; id != "" {
			imageIDs = append(imageIDs, id)
		}
		snapIDs := append([]string(nil), snaps[region]...)
		if buildID != "" {
			out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
				Filters: []ec2types.Filter{{Name: aws.String("tag:" + tagBuildID), Values: []string{buildID}}}})
			if err == nil {
				for _, im := range out.Images {
					if !contains(imageIDs, aws.ToString(im.ImageId)) {
						imageIDs = append(imageIDs, aws.ToString(im.ImageId))
					}
				}
			}
		}
		for _, id := range imageIDs {
			// Snapshots known from the image itself, even if not recorded.
			if out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}}); err == nil {
				for _, im := range out.Images {
					for _, bd := range im.BlockDeviceMappings {
						if bd.Ebs != nil && bd.Ebs.SnapshotId != nil && !contains(snapIDs, *bd.Ebs.SnapshotId) {
							snapIDs = append(snapIDs, *bd.Ebs.SnapshotId)
						}
					}
				}
			}
			say(fmt.Sprintf("Deregistering AMI %s in %s", id, region))
			if _, err := e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id)}); err != nil && apiCode(err) != "InvalidAMIID.NotFound" && apiCode(err) != "InvalidAMIID.Unavailable" {
				errs = append(errs, fmt.Errorf("deregistering %s in %s: %w", id, region, err))
			}
		}
		if buildID != "" {
			out, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
				Filters: []ec2types.Filter{{Name: aws.String("tag:" + tagBuildID), Values: []string{buildID}}}})
			if err == nil {
				for _, s := range out.Snapshots {
					if !contains(snapIDs, aws.ToString(s.SnapshotId)) {
						snapIDs = append(snapIDs, aws.ToString(s.SnapshotId))
					}
				}
			}
		}
		for _, id := range snapIDs {
			say(fmt.Sprintf("Deleting snapshot %s in %s", id, region))
			err := retryInUse(ctx, func() error {
				_, err := e.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
				return err
			})
			if err != nil && apiCode(err) != "InvalidSnapshot.NotFound" {
				errs = append(errs, fmt.Errorf("deleting snapshot %s in %s: %w", id, region, err))
			}
		}
	}
	return errors.Join(errs...)
}

// retryInUse retries f while AWS says the resource is still in use (a
// snapshot right after its AMI was deregistered, a security group while
// its instance terminates), for up to inuse.Limit.
func retryInUse(ctx context.Context, f func() error) error {
	return inuse.Retry(ctx, inuse.Limit, func() error {
		err := f()
		if inuse.Codes[apiCode(err)] {
			log.Printf("[DEBUG] %v; retrying", err)
		}
		return err
	})
}
