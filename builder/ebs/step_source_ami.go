package ebs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
)

// stepSourceAMI finds the source AMI by id or by owners and filters.
type stepSourceAMI struct{}

func (s *stepSourceAMI) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	in := &ec2.DescribeImagesInput{}
	desc := ""
	if c.SourceAMI != "" {
		in.ImageIds = []string{c.SourceAMI}
		desc = "source_ami " + c.SourceAMI
	} else {
		f := c.SourceAMIFilter
		in.Owners = f.Owners
		keys := make([]string, 0, len(f.Filters))
		for k := range f.Filters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(k), Values: []string{f.Filters[k]}})
			parts = append(parts, fmt.Sprintf("%s=%s", k, f.Filters[k]))
		}
		desc = fmt.Sprintf("source_ami_filter (owners %s; %s)", strings.Join(f.Owners, ","), strings.Join(parts, ", "))
	}
	ui.Say(fmt.Sprintf("Finding the source AMI: %s...", desc))
	var images []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(cl.EC2(c.Region), in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if apiCode(err) == "InvalidAMIID.NotFound" || apiCode(err) == "InvalidAMIID.Malformed" {
			return halt(state, fmt.Errorf("%s does not exist in %s", desc, c.Region))
		}
		if apiCode(err) == "InvalidParameterValue" {
			return halt(state, fmt.Errorf("source_ami_filter: %w", err))
		}
		if err != nil {
			return halt(state, fmt.Errorf("describing images for %s: %w", desc, err))
		}
		images = append(images, out.Images...)
	}
	var usable []ec2types.Image
	for _, im := range images {
		if im.State == ec2types.ImageStateAvailable {
			usable = append(usable, im)
		}
	}
	switch {
	case len(usable) == 0:
		return halt(state, fmt.Errorf("%s matched no available image in %s", desc, c.Region))
	case len(usable) > 1 && c.SourceAMI == "" && !c.SourceAMIFilter.MostRecent:
		return halt(state, fmt.Errorf("%s matched %d images in %s; set source_ami_filter.most_recent = true or narrow the filters", desc, len(usable), c.Region))
	}
	sort.SliceStable(usable, func(i, j int) bool {
		return aws.ToString(usable[i].CreationDate) > aws.ToString(usable[j].CreationDate)
	})
	im := usable[0]
	src := &sourceImage{
		ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), OwnerID: aws.ToString(im.OwnerId),
		CreationDate: aws.ToString(im.CreationDate), RootDeviceName: aws.ToString(im.RootDeviceName),
		Architecture: string(im.Architecture),
	}
	if src.RootDeviceName == "" {
		return halt(state, fmt.Errorf("source AMI %s has no root device name", src.ID))
	}
	ui.Message(fmt.Sprintf("Source AMI: %s (%s)", src.ID, src.Name))
	state.Put(stateSourceImage, src)
	gd := &packerbuilderdata.GeneratedData{State: state}
	gd.Put("SourceAMI", src.ID)
	gd.Put("SourceAMIName", src.Name)
	gd.Put("SourceAMIOwner", src.OwnerID)
	gd.Put("SourceAMICreationDate", src.CreationDate)
	gd.Put("BuildRegion", c.Region)
	return multistep.ActionContinue
}

func (s *stepSourceAMI) Cleanup(multistep.StateBag) {}
