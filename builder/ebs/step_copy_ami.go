package ebs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"
)

// stepCopyAMI copies the AMI to every ami_regions region at once, each
// copy encrypted under that region's key and tagged at creation. Copies
// are recorded as soon as they exist, so stepCreateAMI's cleanup removes
// them when anything fails.
type stepCopyAMI struct{}

func (s *stepCopyAMI) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, _, ui := from(state)
	amis, _ := state.Get(stateAMIs).(*amiSet)
	if len(c.AMIRegions) == 0 || amis == nil {
		return multistep.ActionContinue
	}
	source := amis.ami(c.Region)
	ui.Say(fmt.Sprintf("Copying %s to %d regions in parallel...", source, len(c.AMIRegions)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(c.AMIRegions))
	for i, region := range c.AMIRegions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.copyTo(ctx, state, region, source); err != nil {
				errs[i] = err
				cancel() // one failed copy fails the build: stop waiting on the others
			}
		}()
	}
	wg.Wait()
	var real []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			real = append(real, err)
		}
	}
	if len(real) > 0 {
		return halt(state, errors.Join(real...))
	}
	if err := ctx.Err(); err != nil {
		return halt(state, fmt.Errorf("copying AMIs: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepCopyAMI) copyTo(ctx context.Context, state multistep.StateBag, region, source string) error {
	c, cl, ui := from(state)
	amis, _ := state.Get(stateAMIs).(*amiSet)
	amiTags, snapTags, err := imageTags(state, region)
	if err != nil {
		return err
	}
	desc, err := renderDescription(c, buildInfoFor(state, region))
	if err != nil {
		return err
	}
	in := &ec2.CopyImageInput{
		SourceImageId: aws.String(source),
		SourceRegion:  aws.String(c.Region),
		Name:          aws.String(c.AMIName),
		Description:   aws.String(desc),
		ClientToken:   aws.String(uuid.TimeOrderedUUID()),
		TagSpecifications: []ec2types.TagSpecification{
			tagSpec(ec2types.ResourceTypeImage, amiTags),
			tagSpec(ec2types.ResourceTypeSnapshot, snapTags),
		},
	}
	if *c.Encrypt {
		in.Encrypted = aws.Bool(true)
		if k := c.kmsKeyFor(region); k != "" {
			in.KmsKeyId = aws.String(k)
		}
	}
	out, err := cl.EC2(region).CopyImage(ctx, in)
	if err != nil {
		return fmt.Errorf("copying %s to %s: %w", source, region, err)
	}
	id := aws.ToString(out.ImageId)
	amis.setAMI(region, id)
	ui.Message(fmt.Sprintf("Copy %s in %s (key %s)", id, region, orDefault(c.kmsKeyFor(region), "EBS default")))
	return waitForImage(ctx, state, region, id, "ami_copy_timeout", c.AMICopyTimeout)
}

func (s *stepCopyAMI) Cleanup(multistep.StateBag) {}
