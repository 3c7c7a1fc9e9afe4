package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// TestRefreshWaitsForNewTargetsToPassHealthChecks: with a minimum healthy
// percentage of 100, an instance refresh may take an old instance out only
// once its replacement is healthy in the target group, not while the
// replacement's target is still unused (Target.InvalidState) or initial.
// The load balancer's healthy count must never drop below the capacity.
func TestRefreshWaitsForNewTargetsToPassHealthChecks(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, "eu-west-1")
	old := f.Image("web-1", deploytest.ImageOptions{})
	st := f.Stack("web", old, deploytest.StackOptions{Desired: 3})
	newAMI := f.Image("web-2", deploytest.ImageOptions{})
	ctx := context.Background()
	_, err := f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(st.Template), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(newAMI)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("web"),
		DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template), Version: aws.String("2")}},
		Preferences:          &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(200), InstanceWarmup: aws.Int32(0), SkipMatching: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	lowest := 3
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		h, err := f.Clients.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(st.TargetGroups[0])})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range h.TargetHealthDescriptions {
			if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				n++
			}
		}
		lowest = min(lowest, n)
		r, err := f.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		if r.InstanceRefreshes[0].Status == astypes.InstanceRefreshStatusSuccessful {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lowest < 3 {
		t.Errorf("the target group had only %d healthy targets during a refresh with a minimum healthy percentage of 100", lowest)
	}
	for id, ami := range f.InstanceAMIs("web") {
		if ami != newAMI {
			t.Errorf("%s runs %s after the refresh", id, ami)
		}
	}
}
