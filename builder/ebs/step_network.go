package ebs

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepNetwork picks the subnet (and so the VPC and zone) to build in.
type stepNetwork struct{}

func (s *stepNetwork) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	in := &ec2.DescribeSubnetsInput{}
	what := ""
	switch {
	case c.SubnetID != "":
		in.SubnetIds = []string{c.SubnetID}
		what = "subnet_id " + c.SubnetID
	case len(c.SubnetFilter.Filters) > 0:
		for k, v := range c.SubnetFilter.Filters {
			in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(k), Values: []string{v}})
		}
		what = "subnet_filter"
	default:
		in.Filters = []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}
		what = "a default subnet"
	}
	out, err := cl.EC2(c.Region).DescribeSubnets(ctx, in)
	if apiCode(err) == "InvalidSubnetID.NotFound" || apiCode(err) == "InvalidSubnetID.Malformed" {
		return halt(state, fmt.Errorf("subnet_id %s does not exist in %s", c.SubnetID, c.Region))
	}
	if err != nil {
		return halt(state, fmt.Errorf("finding %s: %w", what, err))
	}
	subnets := out.Subnets
	if len(subnets) == 0 {
		if what == "a default subnet" {
			return halt(state, fmt.Errorf("%s has no default VPC: set subnet_id or subnet_filter", c.Region))
		}
		return halt(state, fmt.Errorf("%s matched no subnet in %s", what, c.Region))
	}
	if len(subnets) > 1 && what == "subnet_filter" && !c.SubnetFilter.MostFree {
		return halt(state, fmt.Errorf("subnet_filter matched %d subnets; set subnet_filter.most_free = true or narrow the filters", len(subnets)))
	}
	sort.SliceStable(subnets, func(i, j int) bool {
		a, b := subnets[i], subnets[j]
		if c.SubnetFilter.MostFree && aws.ToInt32(a.AvailableIpAddressCount) != aws.ToInt32(b.AvailableIpAddressCount) {
			return aws.ToInt32(a.AvailableIpAddressCount) > aws.ToInt32(b.AvailableIpAddressCount)
		}
		return aws.ToString(a.AvailabilityZone) < aws.ToString(b.AvailabilityZone)
	})
	sn := subnets[0]
	ui.Say(fmt.Sprintf("Building in subnet %s (%s, %s)", aws.ToString(sn.SubnetId), aws.ToString(sn.VpcId), aws.ToString(sn.AvailabilityZone)))
	state.Put(stateSubnetID, aws.ToString(sn.SubnetId))
	state.Put(stateVpcID, aws.ToString(sn.VpcId))
	return multistep.ActionContinue
}

func (s *stepNetwork) Cleanup(multistep.StateBag) {}
