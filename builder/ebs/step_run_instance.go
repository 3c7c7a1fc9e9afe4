package ebs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"
)

// stepRunInstance launches the build instance with its root volume
// encrypted under the chosen key, so that the AMI's snapshots are
// encrypted from the first write.
type stepRunInstance struct {
	id    string
	token string // RunInstances' client token: finds the instance when the call's answer was lost
	// lost is the RunInstances request whose answer never came (a cancel
	// or a broken connection mid-call): AWS may still launch it.
	lost *ec2.RunInstancesInput
}

func (s *stepRunInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	src, _ := state.Get(stateSourceImage).(*sourceImage)
	subnet, _ := state.Get(stateSubnetID).(string)
	if src == nil {
		return halt(state, fmt.Errorf("no source AMI in the build state"))
	}
	state.Put(stateBuildTime, time.Now())
	state.Put(stateBuildID, uuid.TimeOrderedUUID())
	s.token = uuid.TimeOrderedUUID()

	runTags, err := renderTags(c, c.RunTags, buildInfoFor(state, c.Region))
	if err != nil {
		return halt(state, fmt.Errorf("run_tags: %w", err))
	}
	instanceTags := merge(map[string]string{"Name": "Packer Builder"}, runTags, map[string]string{tagBuilder: builderTag()})
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(src.ID),
		InstanceType: ec2types.InstanceType(c.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		SubnetId:     aws.String(subnet),
		ClientToken:  aws.String(s.token),
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens:              ec2types.HttpTokensState(c.MetadataOptions.HttpTokens),
			HttpEndpoint:            ec2types.InstanceMetadataEndpointState(c.MetadataOptions.HttpEndpoint),
			HttpPutResponseHopLimit: aws.Int32(int32(c.MetadataOptions.HttpPutResponseHopLimit)),
			InstanceMetadataTags:    ec2types.InstanceMetadataTagsState(c.MetadataOptions.InstanceMetadataTags),
		},
		BlockDeviceMappings: blockDevices(c, src),
		TagSpecifications: []ec2types.TagSpecification{
			tagSpec(ec2types.ResourceTypeInstance, instanceTags),
			tagSpec(ec2types.ResourceTypeVolume, merge(runTags, map[string]string{tagBuilder: builderTag()})),
		},
	}
	if name, ok := state.Get(stateKeyPairName).(string); ok && name != "" {
		in.KeyName = aws.String(name)
	}
	if sgs, ok := state.Get(stateSecurityGroup).([]string); ok {
		in.SecurityGroupIds = sgs
	}
	if p := c.IAMInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(p)}
		} else {
			in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(p)}
		}
	}
	userData := []byte(c.UserData)
	if c.UserDataFile != "" {
		if userData, err = os.ReadFile(c.UserDataFile); err != nil {
			return halt(state, fmt.Errorf("user_data_file: %w", err))
		}
	}
	if len(userData) > 0 {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString(userData))
	}

	keyDesc := "unencrypted"
	if *c.Encrypt {
		keyDesc = "encrypted with " + orDefault(c.kmsKeyFor(c.Region), "the EBS default key")
	}
	ui.Say(fmt.Sprintf("Launching a %s build instance from %s (root volume %s, IMDSv2 %s)...", c.InstanceType, src.ID, keyDesc, c.MetadataOptions.HttpTokens))
	e := cl.EC2(c.Region)
	out, err := e.RunInstances(ctx, in)
	if err != nil {
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			s.lost = in
		}
		return halt(state, fmt.Errorf("launching the build instance: %w", err))
	}
	if len(out.Instances) == 0 {
		return halt(state, fmt.Errorf("launching the build instance: RunInstances returned no instance"))
	}
	s.id = aws.ToString(out.Instances[0].InstanceId)
	ui.Message(fmt.Sprintf("Instance %s", s.id))

	var inst ec2types.Instance
	err = waitFor(ctx, "instance "+s.id+" to be running", "instance_running_timeout", c.InstanceRunningTimeout, c.PollInterval,
		func(ctx context.Context) (bool, string, error) {
			got, err := describeInstance(ctx, e, s.id)
			if err != nil || got == nil {
				return false, "not yet visible", err
			}
			inst = *got
			st := inst.State.Name
			if st == ec2types.InstanceStateNameTerminated || st == ec2types.InstanceStateNameShuttingDown {
				reason := ""
				if inst.StateReason != nil {
					reason = aws.ToString(inst.StateReason.Message)
				}
				return false, string(st), fmt.Errorf("instance %s ended during launch: %s", s.id, reason)
			}
			return st == ec2types.InstanceStateNameRunning, string(st), nil
		})
	if err != nil {
		return halt(state, err)
	}
	info := &instanceInfo{
		ID: s.id, PrivateIP: aws.ToString(inst.PrivateIpAddress), PublicIP: aws.ToString(inst.PublicIpAddress),
		PrivateDNS: aws.ToString(inst.PrivateDnsName), PublicDNS: aws.ToString(inst.PublicDnsName),
	}
	state.Put(stateInstance, info)
	state.Put("instance_id", s.id)
	return multistep.ActionContinue
}

func (s *stepRunInstance) Cleanup(state multistep.StateBag) {
	if s.id == "" && s.token == "" {
		return
	}
	c, cl, ui := from(state)
	ctx, cancel := cleanupContext(c.InstanceTerminatedTimeout + time.Minute)
	defer cancel()
	e := cl.EC2(c.Region)
	if s.id == "" {
		// RunInstances may have launched an instance whose answer never
		// arrived (a cancel mid-call): its client token finds it.
		out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("client-token"), Values: []string{s.token}}}})
		if err != nil {
			ui.Error(fmt.Sprintf("looking for the build instance: %v; check for an instance tagged %s by hand", err, tagBuilder))
			return
		}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				if in.State != nil && in.State.Name != ec2types.InstanceStateNameTerminated {
					s.id = aws.ToString(in.InstanceId)
				}
			}
		}
		if s.id == "" && s.lost != nil {
			// The lost request may reach EC2 after the lookup above. The
			// same request again, with the same client token, either
			// launches nothing new and names the instance, or launches the
			// one the lost request would have, so that it can go too.
			out, err := e.RunInstances(ctx, s.lost)
			var ae smithy.APIError
			switch {
			case errors.As(err, &ae):
			case err != nil:
				ui.Error(fmt.Sprintf("making sure the cancelled launch left no instance: %v; check for an instance tagged %s by hand", err, tagBuilder))
				return
			case len(out.Instances) > 0:
				s.id = aws.ToString(out.Instances[0].InstanceId)
			}
		}
		s.token, s.lost = "", nil
		if s.id == "" {
			return
		}
	}
	ui.Say(fmt.Sprintf("Terminating the build instance %s...", s.id))
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{s.id}}); err != nil && apiCode(err) != "InvalidInstanceID.NotFound" {
		ui.Error(fmt.Sprintf("terminating %s: %v; terminate it by hand", s.id, err))
		return
	}
	err := waitFor(ctx, "instance "+s.id+" to terminate", "instance_terminated_timeout", c.InstanceTerminatedTimeout, c.PollInterval,
		func(ctx context.Context) (bool, string, error) {
			got, err := describeInstance(ctx, e, s.id)
			if err != nil {
				return false, "", err
			}
			if got == nil {
				return true, "gone", nil
			}
			return got.State.Name == ec2types.InstanceStateNameTerminated, string(got.State.Name), nil
		})
	if err != nil {
		ui.Error(err.Error())
		return
	}
	s.id, s.token = "", ""
}

// describeInstance returns the instance, or nil while it is not visible.
func describeInstance(ctx context.Context, e *ec2.Client, id string) (*ec2types.Instance, error) {
	out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if apiCode(err) == "InvalidInstanceID.NotFound" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				return &r.Instances[i], nil
			}
		}
	}
	return nil, nil
}

// blockDevices is the build instance's block devices: the root volume of
// the source AMI, encrypted as configured, plus the template's extras.
func blockDevices(c *Config, src *sourceImage) []ec2types.BlockDeviceMapping {
	enc := *c.Encrypt
	ebs := func(size int, vtype string, iops, throughput int, snapshot string, del *bool) *ec2types.EbsBlockDevice {
		d := &ec2types.EbsBlockDevice{DeleteOnTermination: aws.Bool(true)}
		if del != nil {
			d.DeleteOnTermination = del
		}
		if size > 0 {
			d.VolumeSize = aws.Int32(int32(size))
		}
		if vtype != "" {
			d.VolumeType = ec2types.VolumeType(vtype)
		}
		if iops > 0 {
			d.Iops = aws.Int32(int32(iops))
		}
		if throughput > 0 {
			d.Throughput = aws.Int32(int32(throughput))
		}
		if snapshot != "" {
			d.SnapshotId = aws.String(snapshot)
		}
		if enc {
			d.Encrypted = aws.Bool(true)
			if k := c.kmsKeyFor(c.Region); k != "" {
				d.KmsKeyId = aws.String(k)
			}
		}
		return d
	}
	out := []ec2types.BlockDeviceMapping{{
		DeviceName: aws.String(src.RootDeviceName),
		Ebs:        ebs(c.RootVolumeSize, c.RootVolumeType, 0, 0, "", nil),
	}}
	for _, b := range c.LaunchBlockDeviceMappings {
		if b.DeviceName == src.RootDeviceName {
			out[0].Ebs = ebs(b.VolumeSize, orDefault(b.VolumeType, c.RootVolumeType), b.IOPS, b.Throughput, "", b.DeleteOnTermination)
			continue
		}
		out = append(out, ec2types.BlockDeviceMapping{
			DeviceName: aws.String(b.DeviceName),
			Ebs:        ebs(b.VolumeSize, orDefault(b.VolumeType, "gp3"), b.IOPS, b.Throughput, b.SnapshotID, b.DeleteOnTermination),
		})
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
