package ebs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// stepCreateAMI creates the AMI from the stopped instance, tagged at
// creation. The snapshots are encrypted because the volumes were: no
// throw-away AMI, no encrypting copy. Its Cleanup removes every AMI and
// snapshot of the build, in every region, when the build did not finish.
type stepCreateAMI struct{}

func (s *stepCreateAMI) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	inst, ok := state.Get(stateInstance).(*instanceInfo)
	amis, ok2 := state.Get(stateAMIs).(*amiSet)
	if !ok || !ok2 {
		return halt(state, fmt.Errorf("no build instance in the build state"))
	}
	amiTags, snapTags, err := imageTags(state, c.Region)
	if err != nil {
		return halt(state, err)
	}
	desc, err := renderDescription(c, buildInfoFor(state, c.Region))
	if err != nil {
		return halt(state, err)
	}
	e := cl.EC2(c.Region)
	ui.Say(fmt.Sprintf("Creating AMI %s from %s...", c.AMIName, inst.ID))
	out, err := e.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId:  aws.String(inst.ID),
		Name:        aws.String(c.AMIName),
		Description: aws.String(desc),
		TagSpecifications: []ec2types.TagSpecification{
			tagSpec(ec2types.ResourceTypeImage, amiTags),
			tagSpec(ec2types.ResourceTypeSnapshot, snapTags),
		},
	})
	if err != nil {
		return halt(state, fmt.Errorf("creating AMI %s: %w", c.AMIName, err))
	}
	id := aws.ToString(out.ImageId)
	amis.setAMI(c.Region, id)
	ui.Message(fmt.Sprintf("AMI %s in %s", id, c.Region))
	if err := waitForImage(ctx, state, c.Region, id, "ami_ready_timeout", c.AMIReadyTimeout); err != nil {
		return halt(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepCreateAMI) Cleanup(state multistep.StateBag) {
	amis, ok := state.Get(stateAMIs).(*amiSet)
	if !ok || amis.isDone() || !failed(state) {
		return
	}
	c, cl, ui := from(state)
	ids, snaps := amis.snapshot()
	buildID, _ := state.Get(stateBuildID).(string)
	ctx, cancel := cleanupContext(10 * time.Minute)
	defer cancel()
	ui.Say("The build did not finish: removing the AMIs and snapshots it created...")
	if err := deleteImages(ctx, cl, c.regions(), ids, snaps, buildID, ui.Message); err != nil {
		ui.Error(fmt.Sprintf("cleaning up AMIs: %v; remove them by hand", err))
	}
}

// waitForImage waits until image id in region is available, recording its
// snapshots as soon as they show, and fails with the image's own reason
// when it fails.
func waitForImage(ctx context.Context, state multistep.StateBag, region, id, setting string, timeout time.Duration) error {
	c, cl, _ := from(state)
	amis, _ := state.Get(stateAMIs).(*amiSet)
	e := cl.EC2(region)
	return waitFor(ctx, fmt.Sprintf("AMI %s in %s to become available", id, region), setting, timeout, c.PollInterval,
		func(ctx context.Context) (bool, string, error) {
			out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			if apiCode(err) == "InvalidAMIID.NotFound" {
				return false, "not yet visible", nil
			}
			if err != nil {
				return false, "", err
			}
			if len(out.Images) == 0 {
				return false, "not yet visible", nil
			}
			im := out.Images[0]
			for _, bd := range im.BlockDeviceMappings {
				if bd.Ebs != nil && bd.Ebs.SnapshotId != nil && amis != nil {
					amis.addSnapshots(region, *bd.Ebs.SnapshotId)
				}
			}
			switch im.State {
			case ec2types.ImageStateAvailable:
				return true, "available", nil
			case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
				reason := ""
				if im.StateReason != nil {
					reason = aws.ToString(im.StateReason.Message)
				}
				return false, string(im.State), fmt.Errorf("AMI %s in %s is %s: %s", id, region, im.State, reason)
			}
			return false, string(im.State), nil
		})
}

func renderDescription(c *Config, info buildInfo) (string, error) {
	ctx := c.ctx
	ctx.Data = info
	d, err := interpolate.Render(c.AMIDescription, &ctx)
	if err != nil {
		return "", fmt.Errorf("ami_description: %w", err)
	}
	return d, nil
}
