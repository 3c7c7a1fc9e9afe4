package ebs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepDeprecate sets the deprecation time on the AMI in every region.
type stepDeprecate struct{}

func (s *stepDeprecate) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	amis, _ := state.Get(stateAMIs).(*amiSet)
	var at time.Time
	switch {
	case c.DeprecateAt != "":
		at, _ = time.Parse(time.RFC3339, c.DeprecateAt)
	case c.DeprecateAfter > 0:
		at = time.Now().Add(c.DeprecateAfter)
	}
	if !at.IsZero() {
		ids, _ := amis.snapshot()
		for _, region := range c.regions() {
			id := ids[region]
			if id == "" {
				continue
			}
			ui.Say(fmt.Sprintf("Deprecating %s in %s at %s", id, region, at.UTC().Format(time.RFC3339)))
			if _, err := cl.EC2(region).EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: aws.String(id), DeprecateAt: aws.Time(at)}); err != nil {
				return halt(state, fmt.Errorf("setting deprecation of %s in %s: %w", id, region, err))
			}
		}
	}
	return multistep.ActionContinue
}

func (s *stepDeprecate) Cleanup(multistep.StateBag) {}
