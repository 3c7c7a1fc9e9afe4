package deployer_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// lcTemplate reads version v of the launch template phoenix made for group.
func lcTemplate(t *testing.T, f *deploytest.Fixture, group, v string) ec2types.LaunchTemplateVersion {
	t.Helper()
	out, err := f.Clients.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("phoenix-" + group), Versions: []string{v}})
	if err != nil || len(out.LaunchTemplateVersions) != 1 {
		t.Fatalf("phoenix-%s version %s: %v", group, v, err)
	}
	return out.LaunchTemplateVersions[0]
}

// checkCarried checks, field by field, that template data d launches what
// the launch configuration launched: every setting AWS carries over.
func checkCarried(t *testing.T, d *ec2types.ResponseLaunchTemplateData, ami, key, sg, userData string) {
	t.Helper()
	if aws.ToString(d.ImageId) != ami {
		t.Errorf("image %s, want %s", aws.ToString(d.ImageId), ami)
	}
	if d.InstanceType != ec2types.InstanceTypeM5Large {
		t.Errorf("instance type %s", d.InstanceType)
	}
	if aws.ToString(d.KeyName) != key {
		t.Errorf("key %q, want %q", aws.ToString(d.KeyName), key)
	}
	if aws.ToString(d.UserData) != userData {
		t.Errorf("user data %q, want %q", aws.ToString(d.UserData), userData)
	}
	if d.IamInstanceProfile == nil || aws.ToString(d.IamInstanceProfile.Name) != "web-profile" {
		t.Errorf("instance profile %+v", d.IamInstanceProfile)
	}
	if !aws.ToBool(d.EbsOptimized) {
		t.Errorf("EBS optimisation lost")
	}
	// The configuration did not set monitoring: AWS's default for it is
	// detailed, the template's basic, so the template must say so.
	if d.Monitoring == nil || !aws.ToBool(d.Monitoring.Enabled) {
		t.Errorf("monitoring %+v, want detailed", d.Monitoring)
	}
	if d.Placement == nil || d.Placement.Tenancy != ec2types.TenancyDedicated {
		t.Errorf("placement %+v, want dedicated tenancy", d.Placement)
	}
	if m := d.MetadataOptions; m == nil || m.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired || aws.ToInt32(m.HttpPutResponseHopLimit) != 2 || m.HttpEndpoint != ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled {
		t.Errorf("metadata options %+v, want IMDSv2 required, hop limit 2, endpoint enabled", d.MetadataOptions)
	}
	if len(d.NetworkInterfaces) != 1 || aws.ToInt32(d.NetworkInterfaces[0].DeviceIndex) != 0 || !aws.ToBool(d.NetworkInterfaces[0].AssociatePublicIpAddress) ||
		len(d.NetworkInterfaces[0].Groups) != 1 || d.NetworkInterfaces[0].Groups[0] != sg || len(d.SecurityGroupIds) != 0 {
		t.Errorf("network interfaces %+v and security groups %v: want the public address and %s on device 0", d.NetworkInterfaces, d.SecurityGroupIds, sg)
	}
	var data *ec2types.LaunchTemplateBlockDeviceMapping
	for i, b := range d.BlockDeviceMappings {
		if aws.ToString(b.DeviceName) == "/dev/xvdb" {
			data = &d.BlockDeviceMappings[i]
		}
	}
	if data == nil || data.Ebs == nil || aws.ToInt32(data.Ebs.VolumeSize) != 20 || data.Ebs.VolumeType != ec2types.VolumeTypeGp3 || !aws.ToBool(data.Ebs.Encrypted) ||
		!aws.ToBool(data.Ebs.DeleteOnTermination) || aws.ToInt32(data.Ebs.Throughput) != 250 {
		t.Errorf("block device mappings %+v, want /dev/xvdb 20 GiB gp3 encrypted, 250 MiB/s, deleted on termination", d.BlockDeviceMappings)
	}
}

// A group on a launch configuration with every setting: the first deploy
// makes a launch template carrying each of them with the new image and
// moves the group onto it; the instances launched from it have them;
// phoenix rollback returns to the configuration's image on a new version
// that still carries them.
func TestRollingDeployFromLaunchConfiguration(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	if _, err := f.Clients.EC2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("lc-web")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Clients.EC2.DeleteKeyPair(context.Background(), &ec2.DeleteKeyPairInput{KeyName: aws.String("lc-web")})
	})
	sgs, err := f.Clients.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{f.VPC}}, {Name: aws.String("group-name"), Values: []string{"default"}}}})
	if err != nil || len(sgs.SecurityGroups) != 1 {
		t.Fatalf("default security group: %v", err)
	}
	sg := aws.ToString(sgs.SecurityGroups[0].GroupId)
	userData := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho from-the-launch-configuration\n"))
	old := f.Image("lc-web-1", deploytest.ImageOptions{})
	f.Stack("lc-web", old, deploytest.StackOptions{Desired: 2, LaunchConfiguration: &autoscaling.CreateLaunchConfigurationInput{
		InstanceType: aws.String("m5.large"), KeyName: aws.String("lc-web"), SecurityGroups: []string{sg}, UserData: aws.String(userData),
		IamInstanceProfile: aws.String("web-profile"), EbsOptimized: aws.Bool(true), AssociatePublicIpAddress: aws.Bool(true), PlacementTenancy: aws.String("dedicated"),
		MetadataOptions: &astypes.InstanceMetadataOptions{HttpTokens: astypes.InstanceMetadataHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2), HttpEndpoint: astypes.InstanceMetadataEndpointStateEnabled},
		BlockDeviceMappings: []astypes.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvdb"), Ebs: &astypes.Ebs{VolumeSize: aws.Int32(20), VolumeType: aws.String("gp3"),
			Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true), Throughput: aws.Int32(250)}}},
	}})
	newAMI := f.Image("lc-web-2", deploytest.ImageOptions{})

	var ev events
	d := newDeployer(f, "lc-web", nil, &ev)
	res, err := d.Run(ctx, newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Previous != old || res.Version != 1 {
		t.Errorf("result %+v", res)
	}
	g := f.Group("lc-web")
	if g.LaunchConfigurationName != nil || g.LaunchTemplate == nil || aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "phoenix-lc-web" || aws.ToString(g.LaunchTemplate.Version) != "1" {
		t.Fatalf("group after the deploy: configuration %v, template %+v", aws.ToString(g.LaunchConfigurationName), g.LaunchTemplate)
	}
	v1 := lcTemplate(t, f, "lc-web", "1")
	checkCarried(t, v1.LaunchTemplateData, newAMI, "lc-web", sg, userData)
	checkAMIs(t, f, "lc-web", newAMI)
	var ids []string
	for id := range f.InstanceAMIs("lc-web") {
		ids = append(ids, id)
	}
	di, err := f.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range di.Reservations {
		for _, in := range r.Instances {
			if in.Monitoring.State != ec2types.MonitoringStateEnabled || in.Placement.Tenancy != ec2types.TenancyDedicated || !aws.ToBool(in.EbsOptimized) ||
				in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired || aws.ToString(in.KeyName) != "lc-web" {
				t.Errorf("instance %s launched from the template: monitoring %s, tenancy %s, EBS optimised %v, IMDS tokens %s, key %s", aws.ToString(in.InstanceId),
					in.Monitoring.State, in.Placement.Tenancy, aws.ToBool(in.EbsOptimized), in.MetadataOptions.HttpTokens, aws.ToString(in.KeyName))
			}
		}
	}
	status, err := d.Status(ctx)
	if err != nil || status.Template == nil || status.Template.Version != 1 || !status.Health.OK() {
		t.Errorf("status after the deploy: %+v (%v)", status, err)
	}

	// images prune keeps the configuration's image: phoenix rollback
	// returns there.
	pr, err := deployer.PruneImages(ctx, f.Clients, deployer.PruneOptions{Region: region, Family: "lc-web", Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	wantKeep := "lc-web-1 keep: rollback target of auto scaling group lc-web (launch template " + aws.ToString(v1.LaunchTemplateId) + " version 1 replaced launch configuration lc-web)"
	if got := decisions(pr); len(got) != 2 || got[1] != wantKeep {
		t.Errorf("prune decisions %q, want the second %q", got, wantKeep)
	}

	res, err = d.Rollback(ctx)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, ev.messages())
	}
	if res.AMI != old {
		t.Errorf("rollback result %+v", res)
	}
	checkAMIs(t, f, "lc-web", old)
	v2 := lcTemplate(t, f, "lc-web", "2")
	checkCarried(t, v2.LaunchTemplateData, old, "lc-web", sg, userData)
	if v := aws.ToString(f.Group("lc-web").LaunchTemplate.Version); v != "2" {
		t.Errorf("group on version %s after the rollback", v)
	}
	t.Logf("events:\n%s", ev.messages())
}

// A first deploy from a launch configuration that fails: the group is
// refreshed back to its launch configuration and runs its image again.
func TestRollingDeployFromLaunchConfigurationRollsBackToIt(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("lc-bad-1", deploytest.ImageOptions{})
	st := f.Stack("lc-bad", old, deploytest.StackOptions{Desired: 2, LaunchConfiguration: &autoscaling.CreateLaunchConfigurationInput{
		InstanceType: aws.String("t3.micro"), SpotPrice: aws.String("0.05"), InstanceMonitoring: &astypes.InstanceMonitoring{Enabled: aws.Bool(false)}}})
	bad := f.Image("lc-bad-2", deploytest.ImageOptions{Health: "fail"})
	r := defaultRolling()
	r.MinHealthyPercentage = 50
	var ev events
	d := newDeployer(f, "lc-bad", r, &ev)
	plan, err := d.Plan(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if last := plan.Changes[len(plan.Changes)-1]; last.Action != "on failure" || last.Detail != "cancel the refresh and refresh back to launch configuration lc-bad" {
		t.Errorf("plan's last change %+v", last)
	}
	_, err = d.Run(ctx, bad)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	if msgs := ev.messages(); !strings.Contains(msgs, "auto rollback false (no numbered version to return to: phoenix rolls back itself)") ||
		!strings.Contains(msgs, "started instance refresh ") || !strings.Contains(msgs, " back to launch configuration lc-bad (") {
		t.Errorf("events do not say how the deploy rolls back:\n%s", msgs)
	}
	if g := f.Group("lc-bad"); aws.ToString(g.LaunchConfigurationName) != "lc-bad" || g.LaunchTemplate != nil {
		t.Errorf("group after the rollback: configuration %q, template %+v", aws.ToString(g.LaunchConfigurationName), g.LaunchTemplate)
	}
	checkAMIs(t, f, "lc-bad", old)
	// The template it made carries the Spot price and basic monitoring.
	v1 := lcTemplate(t, f, "lc-bad", "1")
	if m := v1.LaunchTemplateData.InstanceMarketOptions; m == nil || m.MarketType != ec2types.MarketTypeSpot || m.SpotOptions == nil || aws.ToString(m.SpotOptions.MaxPrice) != "0.05" {
		t.Errorf("market options %+v, want Spot at 0.05", m)
	}
	if mon := v1.LaunchTemplateData.Monitoring; mon == nil || aws.ToBool(mon.Enabled) {
		t.Errorf("monitoring %+v, want basic", mon)
	}
	status, err := d.Status(ctx)
	if err != nil || status.Template != nil || !status.Health.OK() || len(status.AMIs) != 1 || status.AMIs[0].AMI != old {
		t.Errorf("status of the group back on its launch configuration: %+v (%v)", status, err)
	}
	scaleOut(t, f, st, 3)
	checkAMIs(t, f, "lc-bad", old)

	// The next deploy, of a good image, goes on from the template the
	// failed one made: a new version of it, from the configuration.
	good := f.Image("lc-bad-3", deploytest.ImageOptions{})
	res, err := d.Run(ctx, good)
	if err != nil {
		t.Fatalf("second deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Version != 2 || res.Previous != old {
		t.Errorf("second deploy's result %+v", res)
	}
	if g := f.Group("lc-bad"); g.LaunchConfigurationName != nil || aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "phoenix-lc-bad" || aws.ToString(g.LaunchTemplate.Version) != "2" {
		t.Errorf("group after the second deploy: configuration %q, template %+v", aws.ToString(g.LaunchConfigurationName), g.LaunchTemplate)
	}
	if m := lcTemplate(t, f, "lc-bad", "2").LaunchTemplateData.InstanceMarketOptions; m == nil || aws.ToString(m.SpotOptions.MaxPrice) != "0.05" {
		t.Errorf("version 2's market options %+v", m)
	}
	checkAMIs(t, f, "lc-bad", good)
	t.Logf("events:\n%s", ev.messages())
}

// A group on a launch configuration whose template name is taken by a
// template phoenix did not make from that configuration is refused before
// any change, in plan and deploy alike.
func TestRollingDeployFromLaunchConfigurationRefusesForeignTemplate(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("lc-taken-1", deploytest.ImageOptions{})
	f.Stack("lc-taken", old, deploytest.StackOptions{Desired: 1, LaunchConfiguration: &autoscaling.CreateLaunchConfigurationInput{InstanceType: aws.String("t3.micro")}})
	if _, err := f.Clients.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("phoenix-lc-taken"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(old)}}); err != nil {
		t.Fatal(err)
	}
	newAMI := f.Image("lc-taken-2", deploytest.ImageOptions{})
	d := newDeployer(f, "lc-taken", nil, nil)
	f.SB.ResetCalls()
	if _, err := d.Plan(ctx, newAMI); deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), "launch template phoenix-lc-taken, which phoenix would make from it, exists already") {
		t.Errorf("plan: %v", err)
	}
	_, err := d.Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), "launch template phoenix-lc-taken, which phoenix would make from it, exists already") {
		t.Errorf("deploy: %v", err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("%d mutating calls: %v", n, f.SB.Calls())
	}
	checkAMIs(t, f, "lc-taken", old)
}

// Ctrl-C during a first deploy from a launch configuration leaves the
// refresh to Auto Scaling, as for any group; phoenix rollback then undoes
// it: it cancels the refresh if it still runs (Auto Scaling cannot roll a
// refresh from a launch configuration back) and refreshes the group to
// its configuration, so every instance runs its image again and the group
// stays on it.
func TestLaunchConfigurationGroupInterruptedThenRolledBack(t *testing.T) {
	t.Parallel()
	for _, byHand := range []bool{false, true} {
		name := map[bool]string{false: "refresh-running", true: "refresh-cancelled-by-hand"}[byHand]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			group := map[bool]string{false: "lc-int", true: "lc-int-hand"}[byHand]
			old := f.Image(group+"-1", deploytest.ImageOptions{})
			st := f.Stack(group, old, deploytest.StackOptions{Desired: 2, HealthCheckType: "EC2", LaunchConfiguration: &autoscaling.CreateLaunchConfigurationInput{InstanceType: aws.String("t3.micro")}})
			newAMI := f.Image(group+"-2", deploytest.ImageOptions{})
			r := defaultRolling()
			r.MinHealthyPercentage, r.Checkpoints, r.CheckpointDelay = 50, []int{50, 100}, 5*time.Minute
			ctx, cancel := context.WithCancel(context.Background())
			var ev events
			d := newDeployer(f, group, r, &ev)
			d.Events = func(e deployer.Event) {
				ev.add(e)
				if e.Refresh != nil && strings.HasPrefix(e.Refresh.Reason, "Checkpoint") {
					cancel()
				}
			}
			_, err := d.Run(ctx, newAMI)
			if err == nil || !strings.Contains(err.Error(), "phoenix rollback to undo it") {
				t.Fatalf("interrupted deploy: %v\n%s", err, ev.messages())
			}
			amis := map[string]int{}
			for _, ami := range f.InstanceAMIs(group) {
				amis[ami]++
			}
			if amis[newAMI] == 0 {
				t.Fatalf("the interrupted deploy replaced no instance: %v", amis)
			}
			if byHand {
				if _, err := f.Clients.AutoScaling.CancelInstanceRefresh(context.Background(), &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String(group)}); err != nil {
					t.Fatal(err)
				}
				f.WaitFor("the refresh cancelled", 30*time.Second, func() (bool, string) {
					out, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group)})
					if err != nil || len(out.InstanceRefreshes) == 0 {
						return false, fmt.Sprint(err)
					}
					return out.InstanceRefreshes[0].Status == astypes.InstanceRefreshStatusCancelled, string(out.InstanceRefreshes[0].Status)
				})
			}

			var rb events
			res, err := newDeployer(f, group, r, &rb).Rollback(context.Background())
			if err != nil {
				t.Fatalf("rollback: %v\n%s", err, rb.messages())
			}
			if res.AMI != old {
				t.Errorf("rollback result %+v", res)
			}
			if !strings.Contains(rb.messages(), "back to launch configuration "+group) {
				t.Errorf("rollback events:\n%s", rb.messages())
			}
			if g := f.Group(group); aws.ToString(g.LaunchConfigurationName) != group || g.LaunchTemplate != nil {
				t.Errorf("after the rollback: group on configuration %q, template %+v", aws.ToString(g.LaunchConfigurationName), g.LaunchTemplate)
			}
			checkAMIs(t, f, group, old)
			scaleOut(t, f, st, 3)
			checkAMIs(t, f, group, old)
			t.Logf("rollback events:\n%s", rb.messages())
		})
	}
}
