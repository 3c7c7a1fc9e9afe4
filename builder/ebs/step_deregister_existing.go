package ebs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepDeregisterExisting removes AMIs that already carry ami_name, in
// every target region, when force_deregister is set.
type stepDeregisterExisting struct{}

func (s *stepDeregisterExisting) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	if !c.ForceDeregister {
		return multistep.ActionContinue
	}
	for _, region := range c.regions() {
		out, err := cl.EC2(region).DescribeImages(ctx, &ec2.DescribeImagesInput{
			Owners:  []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{c.AMIName}}},
		})
		if err != nil {
			return halt(state, fmt.Errorf("looking for existing AMIs named %q in %s: %w", c.AMIName, region, err))
		}
		for _, im := range out.Images {
			var snaps []string
			if c.ForceDeleteSnapshot {
				for _, bd := range im.BlockDeviceMappings {
					if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
						snaps = append(snaps, *bd.Ebs.SnapshotId)
					}
				}
			}
			id := aws.ToString(im.ImageId)
			err := deleteImages(ctx, cl, []string{region}, map[string]string{region: id}, map[string][]string{region: snaps}, "", func(m string) { ui.Say("force_deregister: " + m) })
			if err != nil {
				return halt(state, fmt.Errorf("force_deregister: %w", err))
			}
		}
	}
	return multistep.ActionContinue
}

func (s *stepDeregisterExisting) Cleanup(multistep.StateBag) {}
