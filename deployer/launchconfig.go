package deployer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// A group on a launch configuration gets, on its first deploy, a launch
// template made from that configuration with only the image changed, and
// the refresh moves the group onto it. Every setting the configuration
// carries goes into the template as AWS's own migration maps it:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/migrate-launch-configurations-with-cloudformation.html#launch-configuration-mapping-reference
// The group stays on its launch configuration until that refresh
// succeeds; a failed first deploy refreshes it back to the configuration.

// lcPrevious is the launch configuration and AMI a template made from a
// launch configuration names in its description.
var lcPrevious = regexp.MustCompile(`^phoenix: ami-[0-9a-f]+, previous launch configuration (.+) \((ami-[0-9a-f]+)\)$`)

// lcDescription marks the first version of a template phoenix makes from
// a launch configuration, naming the configuration and its image so that
// a rollback and images prune know where the group came from.
func lcDescription(ami, lc, lcAMI string) string {
	return fmt.Sprintf("phoenix: %s, previous launch configuration %s (%s)", ami, lc, lcAMI)
}

// readLaunchConfiguration describes the group's launch configuration.
func (s *Session) readLaunchConfiguration(ctx context.Context) (*astypes.LaunchConfiguration, error) {
	name := aws.ToString(s.Group.LaunchConfigurationName)
	out, err := s.Clients.AutoScaling.DescribeLaunchConfigurations(ctx, &autoscaling.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: []string{name}})
	if err != nil {
		return nil, fmt.Errorf("describing launch configuration %s: %w", name, err)
	}
	for i := range out.LaunchConfigurations {
		if aws.ToString(out.LaunchConfigurations[i].LaunchConfigurationName) == name {
			return &out.LaunchConfigurations[i], nil
		}
	}
	return nil, fmt.Errorf("launch configuration %s of %q not found", name, s.Target.Group)
}

// templateData is the launch template data that launches what lc
// launches, with image ami.
func templateData(lc *astypes.LaunchConfiguration, ami string) (*ec2types.RequestLaunchTemplateData, error) {
	d := &ec2types.RequestLaunchTemplateData{ImageId: aws.String(ami), InstanceType: ec2types.InstanceType(aws.ToString(lc.InstanceType)),
		UserData: lc.UserData, EbsOptimized: lc.EbsOptimized}
	if v := aws.ToString(lc.UserData); v == "" {
		d.UserData = nil
	}
	if k := aws.ToString(lc.KeyName); k != "" {
		d.KeyName = aws.String(k)
	}
	if k := aws.ToString(lc.KernelId); k != "" {
		d.KernelId = aws.String(k)
	}
	if r := aws.ToString(lc.RamdiskId); r != "" {
		d.RamDiskId = aws.String(r)
	}
	if p := aws.ToString(lc.IamInstanceProfile); strings.HasPrefix(p, "arn:") {
		d.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: aws.String(p)}
	} else if p != "" {
		d.IamInstanceProfile = &ec2types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String(p)}
	}
	// A launch configuration's monitoring is detailed unless it says
	// otherwise; a launch template's is basic.
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceMonitoring.html
	detailed := lc.InstanceMonitoring == nil || lc.InstanceMonitoring.Enabled == nil || aws.ToBool(lc.InstanceMonitoring.Enabled)
	d.Monitoring = &ec2types.LaunchTemplatesMonitoringRequest{Enabled: aws.Bool(detailed)}
	if t := aws.ToString(lc.PlacementTenancy); t != "" {
		d.Placement = &ec2types.LaunchTemplatePlacementRequest{Tenancy: ec2types.Tenancy(t)}
	}
	if p := aws.ToString(lc.SpotPrice); p != "" {
		d.InstanceMarketOptions = &ec2types.LaunchTemplateInstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot,
			SpotOptions: &ec2types.LaunchTemplateSpotMarketOptionsRequest{MaxPrice: aws.String(p)}}
	}
	if m := lc.MetadataOptions; m != nil {
		d.MetadataOptions = &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensState(m.HttpTokens),
			HttpPutResponseHopLimit: m.HttpPutResponseHopLimit, HttpEndpoint: ec2types.LaunchTemplateInstanceMetadataEndpointState(m.HttpEndpoint)}
	}
	for _, b := range lc.BlockDeviceMappings {
		bd := ec2types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: b.DeviceName, VirtualName: b.VirtualName}
		if aws.ToBool(b.NoDevice) {
			bd.NoDevice = aws.String("")
		}
		if e := b.Ebs; e != nil {
			bd.Ebs = &ec2types.LaunchTemplateEbsBlockDeviceRequest{SnapshotId: e.SnapshotId, VolumeSize: e.VolumeSize, VolumeType: ec2types.VolumeType(aws.ToString(e.VolumeType)),
				DeleteOnTermination: e.DeleteOnTermination, Iops: e.Iops, Encrypted: e.Encrypted, Throughput: e.Throughput}
		}
		d.BlockDeviceMappings = append(d.BlockDeviceMappings, bd)
	}
	var ids, names []string
	for _, sg := range lc.SecurityGroups {
		if strings.HasPrefix(sg, "sg-") {
			ids = append(ids, sg)
		} else {
			names = append(names, sg)
		}
	}
	if lc.AssociatePublicIpAddress == nil {
		d.SecurityGroupIds, d.SecurityGroups = ids, names
		return d, nil
	}
	// The public address is the primary network interface's, and with a
	// network interface the security groups are its own, by id only.
	if len(names) > 0 {
		return nil, fmt.Errorf("launch configuration %s names security groups %v by name and sets AssociatePublicIpAddress: a launch template can give a network interface security groups by id only; name them by id in the launch configuration", aws.ToString(lc.LaunchConfigurationName), names)
	}
	d.NetworkInterfaces = []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{DeviceIndex: aws.Int32(0),
		AssociatePublicIpAddress: lc.AssociatePublicIpAddress, Groups: ids}}
	return d, nil
}

// templateFromLaunchConfiguration makes launch template phoenix-GROUP
// from the group's launch configuration with the new image.
func (run *rollingRun) templateFromLaunchConfiguration(ctx context.Context) (*TemplateVersion, error) {
	s := run.s
	lc, err := s.readLaunchConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	run.lcAMI = aws.ToString(lc.ImageId)
	data, err := templateData(lc, run.ami)
	if err != nil {
		return nil, err
	}
	name := "phoenix-" + s.Target.Group
	desc := lcDescription(run.ami, aws.ToString(lc.LaunchConfigurationName), run.lcAMI)
	cr, err := s.Clients.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data, VersionDescription: aws.String(desc)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidLaunchTemplateName.AlreadyExistsException" {
		return run.nextFromLaunchConfiguration(ctx, name, data, desc)
	}
	if err != nil {
		return nil, fmt.Errorf("creating launch template %s: %w", name, err)
	}
	return &TemplateVersion{ID: aws.ToString(cr.LaunchTemplate.LaunchTemplateId), Name: name, Version: 1, AMI: run.ami, Description: desc}, nil
}

// lcRollbackStep returns a group that was on a launch configuration
// before this deploy to it, by at most one action: cancel the refresh,
// put the configuration back on the group if the refresh had moved it,
// refresh without a desired configuration (the group's own, the launch
// configuration), and wait for health on its image.
func (run *rollingRun) lcRollbackStep(ctx context.Context) (Step, error) {
	s := run.s
	lcName := aws.ToString(s.Group.LaunchConfigurationName)
	back := run.lcAMI
	if run.restore != "" {
		raw, err := run.describeRefresh(ctx, run.restore)
		if err != nil {
			return Step{}, err
		}
		rf := refreshOf(raw)
		switch raw.Status {
		case astypes.InstanceRefreshStatusSuccessful:
			return run.waitHealthy(ctx, "rollback", back, fmt.Sprintf("refreshed back to launch configuration %s", lcName), rf)
		case astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled:
			return Step{State: StepFailed, Name: "rollback", Refresh: rf, Message: fmt.Sprintf("the refresh back to launch configuration %s ended %s: %s", lcName, rf.Status, rf.Reason)}, nil
		}
		_, h, err := run.gate(ctx, back)
		if err != nil {
			return Step{}, err
		}
		return Step{Name: "rollback", Refresh: rf, Health: h}, nil
	}
	if run.refresh == "" && !run.lcRestore {
		return run.waitHealthy(ctx, "rollback", back, fmt.Sprintf("%q was not changed", s.Target.Group), nil)
	}
	var rf *Refresh
	status := astypes.InstanceRefreshStatusSuccessful
	if run.refresh != "" {
		raw, err := run.describeRefresh(ctx, run.refresh)
		if err != nil {
			return Step{}, err
		}
		rf, status = refreshOf(raw), raw.Status
	}
	switch status {
	case astypes.InstanceRefreshStatusPending, astypes.InstanceRefreshStatusInProgress, astypes.InstanceRefreshStatusBaking:
		if _, err := s.Clients.AutoScaling.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String(s.Target.Group)}); err != nil {
			return Step{}, fmt.Errorf("cancelling instance refresh %s: %w", rf.ID, err)
		}
		return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("cancelled instance refresh %s; the group will be refreshed back to launch configuration %s", rf.ID, lcName)}, nil
	case astypes.InstanceRefreshStatusCancelling:
		_, h, err := run.gate(ctx, back)
		if err != nil {
			return Step{}, err
		}
		return Step{Name: "rollback", Refresh: rf, Health: h}, nil
	}
	g, err := s.readGroup(ctx)
	if err != nil {
		return Step{}, err
	}
	if aws.ToString(g.LaunchConfigurationName) != lcName {
		// The refresh succeeded and moved the group onto the template.
		if _, err := s.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(s.Target.Group), LaunchConfigurationName: aws.String(lcName)}); err != nil {
			return Step{}, fmt.Errorf("putting launch configuration %s back on %q: %w", lcName, s.Target.Group, err)
		}
		return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("put launch configuration %s back on %q", lcName, s.Target.Group)}, nil
	}
	// Without skip matching, which Auto Scaling does not offer for launch
	// configurations, every instance is replaced.
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-instance-refresh-skip-matching.html
	// The healthy percentages as the deploy's refresh had them: those the
	// user set, else the group's maintenance policy or Auto Scaling's.
	prefs := &astypes.RefreshPreferences{}
	run.r.healthyPreferences(s.Group, prefs)
	run.r.statesPreferences(prefs)
	if run.r.InstanceWarmup != nil {
		prefs.InstanceWarmup = secs(*run.r.InstanceWarmup)
	}
	out, err := s.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(s.Target.Group), Strategy: astypes.RefreshStrategyRolling, Preferences: prefs})
	if err != nil {
		return Step{State: StepFailed, Name: "rollback", Refresh: rf, Message: fmt.Sprintf("starting an instance refresh of %q back to launch configuration %s: %v", s.Target.Group, lcName, err)}, nil
	}
	run.restore, run.healthy = aws.ToString(out.InstanceRefreshId), time.Time{}
	return Step{Name: "rollback", Refresh: rf, Action: fmt.Sprintf("started instance refresh %s back to launch configuration %s (%s)", run.restore, lcName, back)}, nil
}

// checkLCTemplate refuses, before any change, a deploy to a group on a
// launch configuration whose template name phoenix-GROUP is taken by a
// template phoenix did not make from that configuration.
func (s *Session) checkLCTemplate(ctx context.Context) error {
	name, lc := "phoenix-"+s.Target.Group, aws.ToString(s.Group.LaunchConfigurationName)
	out, err := s.Clients.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String(name), Versions: []string{"$Latest"}})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidLaunchTemplateName.") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("describing launch template %s: %w", name, err)
	}
	for _, v := range out.LaunchTemplateVersions {
		if m := lcPrevious.FindStringSubmatch(aws.ToString(v.VersionDescription)); m != nil && m[1] == lc {
			return nil
		}
	}
	return refuse("auto scaling group %q is on launch configuration %s, and launch template %s, which phoenix would make from it, exists already but was not made from it: delete that template, or move the group onto a launch template with your infrastructure code", s.Target.Group, lc, name)
}

// nextFromLaunchConfiguration is templateFromLaunchConfiguration when the
// template exists already: made by an earlier deploy from the same
// configuration that was interrupted or rolled back (the group is still
// on the configuration). Its latest version is the one to move to when it
// has this image (a rerun); otherwise a new version is made from the
// configuration, which is still what the group launches.
func (run *rollingRun) nextFromLaunchConfiguration(ctx context.Context, name string, data *ec2types.RequestLaunchTemplateData, desc string) (*TemplateVersion, error) {
	s := run.s
	latest, err := s.templateVersion(ctx, "", name, "$Latest")
	if err != nil {
		return nil, err
	}
	if m := lcPrevious.FindStringSubmatch(latest.Description); m == nil || m[1] != aws.ToString(s.Group.LaunchConfigurationName) {
		return nil, fmt.Errorf("launch template %s was not made by phoenix from launch configuration %s of %q", name, aws.ToString(s.Group.LaunchConfigurationName), s.Target.Group)
	}
	if latest.AMI == run.ami && latest.Description == desc {
		return latest, nil
	}
	out, err := s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(latest.ID), LaunchTemplateData: data, VersionDescription: aws.String(desc)})
	if err != nil {
		return nil, fmt.Errorf("creating a version of launch template %s: %w", name, err)
	}
	v := out.LaunchTemplateVersion
	return &TemplateVersion{ID: latest.ID, Name: name, Version: aws.ToInt64(v.VersionNumber), AMI: run.ami, Description: desc}, nil
}
