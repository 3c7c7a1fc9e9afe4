package ebs

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"
)

// stepSecurityGroup uses the template's security groups or creates a
// temporary one that admits SSH only from the builder.
type stepSecurityGroup struct {
	created string
	name    string // finds the group when CreateSecurityGroup's answer was lost
}

func (s *stepSecurityGroup) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	e := cl.EC2(c.Region)
	vpc, _ := state.Get(stateVpcID).(string)
	if len(c.SecurityGroupIDs) > 0 {
		if _, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: c.SecurityGroupIDs}); err != nil {
			return halt(state, fmt.Errorf("security_group_ids: %w", err))
		}
		state.Put(stateSecurityGroup, c.SecurityGroupIDs)
		return multistep.ActionContinue
	}
	cidrs := c.TemporarySGSourceCIDRs
	if len(cidrs) == 0 {
		addr, err := builderAddress(cl.base.BaseEndpoint, c.Region)
		if err != nil {
			return halt(state, fmt.Errorf("finding the builder's own address for the temporary security group (set temporary_security_group_source_cidrs): %w", err))
		}
		cidrs = []string{addr + "/32"}
	}
	name := "packer_" + uuid.TimeOrderedUUID()
	s.name = name
	port := c.Comm.Port()
	ui.Say(fmt.Sprintf("Creating temporary security group %s: SSH (port %d) from %s only...", name, port, strings.Join(cidrs, ", ")))
	out, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String("Temporary group for a phoenix-ebs build"),
		VpcId:             aws.String(vpc),
		TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeSecurityGroup, map[string]string{"Name": name, tagBuilder: builderTag()})},
	})
	if err != nil {
		return halt(state, fmt.Errorf("creating temporary security group: %w", err))
	}
	s.created = aws.ToString(out.GroupId)
	ranges := make([]ec2types.IpRange, 0, len(cidrs))
	for _, cidr := range cidrs {
		ranges = append(ranges, ec2types.IpRange{CidrIp: aws.String(cidr), Description: aws.String("phoenix-ebs builder")})
	}
	_, err = e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(s.created),
		IpPermissions: []ec2types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(port)), ToPort: aws.Int32(int32(port)), IpRanges: ranges,
		}},
	})
	if err != nil {
		return halt(state, fmt.Errorf("opening SSH in temporary security group %s: %w", s.created, err))
	}
	state.Put(stateSecurityGroup, []string{s.created})
	return multistep.ActionContinue
}

func (s *stepSecurityGroup) Cleanup(state multistep.StateBag) {
	if s.created == "" && s.name == "" {
		return
	}
	c, cl, ui := from(state)
	ctx, cancel := cleanupContext(5 * time.Minute)
	defer cancel()
	if s.created == "" {
		out, err := cl.EC2(c.Region).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{s.name}}}})
		if err != nil || len(out.SecurityGroups) == 0 {
			s.name = ""
			return
		}
		s.created = aws.ToString(out.SecurityGroups[0].GroupId)
	}
	ui.Say(fmt.Sprintf("Deleting temporary security group %s...", s.created))
	// The instance may still be terminating: retry dependency violations.
	err := retryInUse(ctx, func() error {
		_, err := cl.EC2(c.Region).DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(s.created)})
		return err
	})
	if err != nil && apiCode(err) != "InvalidGroup.NotFound" {
		ui.Error(fmt.Sprintf("deleting temporary security group %s: %v; delete it by hand", s.created, err))
		return
	}
	s.created, s.name = "", ""
}

// builderAddress is the local address this machine uses to reach the EC2
// endpoint: what the instance sees when the builder is in the same network
// or reaches it directly. No packet is sent.
func builderAddress(endpoint *string, region string) (string, error) {
	host := "ec2." + region + ".amazonaws.com:443"
	if endpoint != nil && *endpoint != "" {
		u, err := url.Parse(*endpoint)
		if err != nil {
			return "", err
		}
		host = u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	conn, err := net.DialTimeout("udp", host, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	addr, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || addr.IP.To4() == nil {
		return "", fmt.Errorf("no IPv4 address towards %s", host)
	}
	return addr.IP.String(), nil
}
