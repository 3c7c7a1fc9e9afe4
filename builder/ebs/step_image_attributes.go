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
// in every region, and create-volume permissions on its snapshots.
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
		if c.sharesSnapshots() {
			perm := &ec2types.CreateVolumePermissionModifications{}
			for _, u := range c.SnapshotUsers {
				perm.Add = append(perm.Add, ec2types.CreateVolumePermission{UserId: aws.String(u)})
			}
			for _, g := range c.SnapshotGroups {
				perm.Add = append(perm.Add, ec2types.CreateVolumePermission{Group: ec2types.PermissionGroup(g)})
			}
			snaps, err := imageSnapshots(ctx, e, id)
			if err != nil {
				return halt(state, fmt.Errorf("reading the snapshots of %s in %s: %w", id, region, err))
			}
			for _, snap := range snaps {
				ui.Say(fmt.Sprintf("Sharing snapshot %s of %s in %s", snap, id, region))
				if _, err := e.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snap), CreateVolumePermission: perm}); err != nil {
					return halt(state, fmt.Errorf("sharing snapshot %s of %s in %s (snapshot_users, snapshot_groups): %w", snap, id, region, err))
				}
			}
		}
	}
	return multistep.ActionContinue
}

func (s *stepImageAttributes) Cleanup(multistep.StateBag) {}

// imageSnapshots lists the snapshots behind an AMI's block devices.
func imageSnapshots(ctx context.Context, e *ec2.Client, id string) ([]string, error) {
	out, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(out.Images) == 0 {
		return nil, fmt.Errorf("AMI %s not found", id)
	}
	var snaps []string
	for _, b := range out.Images[0].BlockDeviceMappings {
		if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" {
			snaps = append(snaps, aws.ToString(b.Ebs.SnapshotId))
		}
	}
	return snaps, nil
}
