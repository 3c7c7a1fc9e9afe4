package sandbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestConcurrentClientsAcrossRegionsAndServices drives four regions and
// every service at once, as parallel builds and deploys do; run with
// -race it shows the sandbox is safe under concurrent clients, and each
// region ends with what its own client did and nothing else.
func TestConcurrentClientsAcrossRegionsAndServices(t *testing.T) {
	sb := sandboxtest.Start(t)
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, region := range regions {
		for worker := 0; worker < 2; worker++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := regionWorkout(sb, t, region, fmt.Sprintf("w%d", worker)); err != nil {
					errs <- fmt.Errorf("%s/w%d: %w", region, worker, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(sb.Inventory()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
	if calls := sb.Calls(); calls["ec2"]["RunInstances"] != len(regions)*2 || calls["kms"]["CreateKey"] != len(regions)*2 {
		t.Errorf("calls %v", calls)
	}
}

func regionWorkout(sb *sandbox.Sandbox, t *testing.T, region, name string) error {
	ctx := context.Background()
	cfg := sandboxtest.Config(t, sb, region)
	e, k, elb, asg := ec2.NewFromConfig(cfg), kms.NewFromConfig(cfg), elbv2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg)

	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		return err
	}
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(imgs.Images) == 0 {
		return fmt.Errorf("images: %v", err)
	}
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{Encrypted: aws.Bool(true), KmsKeyId: key.KeyMetadata.Arn}}},
	})
	if err != nil {
		return err
	}
	var ids []string
	for _, in := range run.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	vpcs, err := e.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) == 0 {
		return fmt.Errorf("vpcs: %v", err)
	}
	tg, err := elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String("tg-" + name), Protocol: "HTTP", Port: aws.Int32(80), VpcId: vpcs.Vpcs[0].VpcId})
	if err != nil {
		return err
	}
	lt, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("lt-" + name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro}})
	if err != nil {
		return err
	}
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("asg-" + name),
		LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}, MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(1),
		AvailabilityZones: []string{region + "a"}}); err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		if _, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			return err
		}
		if _, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
			return err
		}
	}
	if _, err := asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("asg-" + name), ForceDelete: aws.Bool(true)}); err != nil {
		return err
	}
	if _, err := e.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"asg-" + name}})
		if err != nil {
			return err
		}
		if len(out.AutoScalingGroups) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group not deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}); err != nil {
		return err
	}
	if _, err := elb.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}); err != nil {
		return err
	}
	_, err = k.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	return err
}
