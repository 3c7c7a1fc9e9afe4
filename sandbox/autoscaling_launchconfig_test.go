package sandbox_test

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// A launch configuration with every setting, a group on it, and its
// instance launched with each setting applied; the configuration cannot
// be deleted while a group uses it.
func TestLaunchConfigurationGroupLaunchesWithEverySetting(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	ec := ec2.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	img := e.sb.FixtureImage(asgRegion, "")
	if _, err := ec.CreateKeyPair(e.ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("lc-key")}); err != nil {
		t.Fatal(err)
	}
	sgs, err := ec.DescribeSecurityGroups(e.ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"default"}})
	if err != nil || len(sgs.SecurityGroups) == 0 {
		t.Fatalf("default security group: %v", err)
	}
	sg := aws.ToString(sgs.SecurityGroups[0].GroupId)
	userData := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho lc\n"))
	_, err = e.c.CreateLaunchConfiguration(e.ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("web-lc"), ImageId: aws.String(img), InstanceType: aws.String("m5.large"),
		KeyName: aws.String("lc-key"), SecurityGroups: []string{sg}, UserData: aws.String(userData), IamInstanceProfile: aws.String("web-profile"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvdb"),
			Ebs: &types.Ebs{VolumeSize: aws.Int32(20), VolumeType: aws.String("gp3"), Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true)}}},
		EbsOptimized: aws.Bool(true), AssociatePublicIpAddress: aws.Bool(true), PlacementTenancy: aws.String("dedicated"),
		MetadataOptions: &types.InstanceMetadataOptions{HttpTokens: types.InstanceMetadataHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2), HttpEndpoint: types.InstanceMetadataEndpointStateEnabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.c.CreateLaunchConfiguration(e.ctx, &autoscaling.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String("web-lc"), ImageId: aws.String(img), InstanceType: aws.String("m5.large")}, noRetry)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AlreadyExists" {
		t.Errorf("second create: %v", err)
	}
	out, err := e.c.DescribeLaunchConfigurations(e.ctx, &autoscaling.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: []string{"web-lc", "nope"}})
	if err != nil || len(out.LaunchConfigurations) != 1 {
		t.Fatalf("describe: %v %+v", err, out)
	}
	lc := out.LaunchConfigurations[0]
	// Detailed monitoring is a launch configuration's default.
	if lc.InstanceMonitoring == nil || !aws.ToBool(lc.InstanceMonitoring.Enabled) || !aws.ToBool(lc.EbsOptimized) || !aws.ToBool(lc.AssociatePublicIpAddress) ||
		aws.ToString(lc.PlacementTenancy) != "dedicated" || lc.MetadataOptions == nil || lc.MetadataOptions.HttpTokens != types.InstanceMetadataHttpTokensStateRequired ||
		len(lc.BlockDeviceMappings) != 1 || aws.ToInt32(lc.BlockDeviceMappings[0].Ebs.VolumeSize) != 20 || !strings.HasPrefix(aws.ToString(lc.LaunchConfigurationARN), "arn:aws:autoscaling:") {
		t.Errorf("described %+v", lc)
	}

	_, err = e.c.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("lc"), LaunchConfigurationName: aws.String("web-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1), VPCZoneIdentifier: aws.String(e.sb.FixtureDefaultSubnets(asgRegion)[0])})
	if err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("lc", "one in service", func(g types.AutoScalingGroup) bool {
		return len(g.Instances) == 1 && g.Instances[0].LifecycleState == types.LifecycleStateInService
	})
	if aws.ToString(g.LaunchConfigurationName) != "web-lc" || g.LaunchTemplate != nil || aws.ToString(g.Instances[0].LaunchConfigurationName) != "web-lc" || g.Instances[0].LaunchTemplate != nil {
		t.Errorf("group %+v", g)
	}
	id := aws.ToString(g.Instances[0].InstanceId)
	di, err := ec.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(di.Reservations) != 1 {
		t.Fatal(err)
	}
	in := di.Reservations[0].Instances[0]
	if in.InstanceType != "m5.large" || aws.ToString(in.ImageId) != img || aws.ToString(in.KeyName) != "lc-key" || in.Placement.Tenancy != ec2types.TenancyDedicated ||
		in.Monitoring.State != ec2types.MonitoringStateEnabled || !aws.ToBool(in.EbsOptimized) || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired ||
		aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit) != 2 || len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != sg ||
		in.IamInstanceProfile == nil || !strings.HasSuffix(aws.ToString(in.IamInstanceProfile.Arn), ":instance-profile/web-profile") {
		t.Errorf("instance launched from the configuration: %+v", in)
	}
	var vol string
	for _, b := range in.BlockDeviceMappings {
		if aws.ToString(b.DeviceName) == "/dev/xvdb" {
			vol = aws.ToString(b.Ebs.VolumeId)
		}
	}
	vols, err := ec.DescribeVolumes(e.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}})
	if err != nil || len(vols.Volumes) != 1 || aws.ToInt32(vols.Volumes[0].Size) != 20 || vols.Volumes[0].VolumeType != ec2types.VolumeTypeGp3 || !aws.ToBool(vols.Volumes[0].Encrypted) {
		t.Errorf("/dev/xvdb volume %q: %v %+v", vol, err, vols)
	}

	// Skip matching is not offered for a launch configuration, and Auto
	// Scaling rolls back only to numbered launch template versions.
	_, err = e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("lc"), Preferences: &types.RefreshPreferences{SkipMatching: aws.Bool(true)}}, noRetry)
	if err == nil || !strings.Contains(err.Error(), "skip matching with a launch configuration") {
		t.Errorf("skip matching on a launch configuration: %v", err)
	}
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "lc-next", img)
	_, err = e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("lc"), Preferences: &types.RefreshPreferences{AutoRollback: aws.Bool(true)},
		DesiredConfiguration: &types.DesiredConfiguration{LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("1")}}}, noRetry)
	if err == nil || !strings.Contains(err.Error(), "AutoRollback") {
		t.Errorf("auto rollback from a launch configuration: %v", err)
	}
	_, err = e.c.DeleteLaunchConfiguration(e.ctx, &autoscaling.DeleteLaunchConfigurationInput{LaunchConfigurationName: aws.String("web-lc")}, noRetry)
	if !errors.As(err, &ae) || ae.ErrorCode() != "ResourceInUse" {
		t.Errorf("delete while attached: %v", err)
	}
	e.deleteGroup("lc")
	if _, err := e.c.DeleteLaunchConfiguration(e.ctx, &autoscaling.DeleteLaunchConfigurationInput{LaunchConfigurationName: aws.String("web-lc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.DeleteKeyPair(e.ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("lc-key")}); err != nil {
		t.Fatal(err)
	}
	e.finish()
}

// The unmodified AWS CLI creates, describes and deletes a launch
// configuration, and Auto Scaling's defaults show as AWS gives them.
func TestAWSCLILaunchConfiguration(t *testing.T) {
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	e := newASGEnv(t)
	img := e.sb.FixtureImage(asgRegion, "")
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		// Debian 12's AWS CLI ignores AWS_ENDPOINT_URL: --endpoint-url too.
		cmd := exec.Command(awsCLI, append([]string{"--output", "text", "--endpoint-url", e.sb.URL()}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+e.sb.URL(), "AWS_REGION="+asgRegion, "AWS_DEFAULT_REGION="+asgRegion,
			"AWS_ACCESS_KEY_ID=AKIASANDBOXTEST00001", "AWS_SECRET_ACCESS_KEY=sandbox-secret",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("autoscaling", "create-launch-configuration", "--launch-configuration-name", "cli-lc", "--image-id", img, "--instance-type", "t3.micro",
		"--ebs-optimized", "--metadata-options", "HttpTokens=required,HttpPutResponseHopLimit=2")
	got := run("autoscaling", "describe-launch-configurations", "--launch-configuration-names", "cli-lc",
		"--query", "LaunchConfigurations[0].[LaunchConfigurationName,ImageId,InstanceType,EbsOptimized,InstanceMonitoring.Enabled,MetadataOptions.HttpTokens]")
	if want := strings.Join([]string{"cli-lc", img, "t3.micro", "True", "True", "required"}, "\t"); got != want {
		t.Errorf("described %q, want %q", got, want)
	}
	run("autoscaling", "delete-launch-configuration", "--launch-configuration-name", "cli-lc")
	if got := run("autoscaling", "describe-launch-configurations", "--query", "length(LaunchConfigurations)"); got != "0" {
		t.Errorf("%s launch configurations left", got)
	}
	e.finish()
}
