package ebs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepImageAttributes sets imds_support and launch permissions on the AMI
// in every region.
type stepImageAttributes struct{}

func (s *stepImageAttributes) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	amis, _ := state.Get(stateAMIs).(*amiSet)
	ids, _ := amis.snapshot()
	for _, region := range c.regions() {
		id := ids[region]
		if id == "" {
			continue
		}
		e := cl.EC2(region)
		if *c.IMDSSupport != "" {
			out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
			if err != nil {
				return halt(state, fmt.Errorf("describing %s in %s: %w", id, region, err))
			}
			if len(out.Images) == 0 || out.Images[0].ImdsSupport != ec2types.ImdsSupportValuesV20 {
				ui.Say(fmt.Sprintf("Setting imds_support = v2.0 on %s in %s", id, region))
				_, err := e.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id), ImdsSupport: &ec2types.AttributeValue{Value: aws.String(*c.IMDSSupport)}})
				if err != nil {
					return halt(state, fmt.Errorf("setting imds_support on %s in %s: %w", id, region, err))
				}
			}
		}
		if c.sharesAMI() {
			perm := &ec2types.LaunchPermissionModifications{}
			for _, u := range c.AMIUsers {
				perm.Add = append(perm.Add, ec2types.LaunchPermission{UserId: aws.String(u)})
			}
			for _, g := range c.AMIGroups {
				perm.Add = append(perm.Add, ec2types.LaunchPermission{Group: ec2types.PermissionGroup(g)})
			}
			for _, o := range c.AMIOrgARNs {
				perm.Add = append(perm.Add, ec2types.LaunchPermission{OrganizationArn: aws.String(o)})
			}
			for _, o := range c.AMIOUARNs {
				perm.Add = append(perm.Add, ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(o)})
			}
			ui.Say(fmt.Sprintf("Sharing %s in %s", id, region))
			if _, err := e.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(id), LaunchPermission: perm}); err != nil {
				return halt(state, fmt.Errorf("sharing %s in %s: %w", id, region, err))
			}
		}
	}
	return multistep.ActionContinue
}

func (s *stepImageAttributes) Cleanup(multistep.StateBag) {}
