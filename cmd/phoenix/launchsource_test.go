package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// phoenix plan and deploy on a group with a mixed instances policy: the
// plan says the policy's instance types and split are kept, the deploy
// exits 0 and the group keeps its policy on the new version.
func TestCLIDeploysMixedInstancesGroup(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("mix-1", deploytest.ImageOptions{})
	f.Stack("mix", old, deploytest.StackOptions{Desired: 2, MixedTypes: []string{"t3.micro", "t3a.micro"},
		Distribution: &astypes.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(1), OnDemandPercentageAboveBaseCapacity: aws.Int32(0)}})
	newAMI := f.Image("mix-2", deploytest.ImageOptions{})
	cfg := writeConfig(t, f, "mix", `
  strategy "rolling" {
    min_healthy_percentage = 50
    health_timeout         = "30s"
  }
`)
	ctx := context.Background()
	out, code, err := runCLI(ctx, "plan", "staging", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("plan: exit %d: %v\n%s", code, err, out)
	}
	if want := "the desired configuration is the mixed instances policy's 2 instance types [t3.micro t3a.micro], On-Demand base 1 and 0% above it, kept as they are, only the launch template version changes"; !strings.Contains(out, want) {
		t.Errorf("plan lacks %q:\n%s", want, out)
	}
	out, code, err = runCLI(ctx, "deploy", "staging", "--config", cfg, "--ami", newAMI)
	if code != 0 || !strings.Contains(out, "web: succeeded") {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	m := f.Group("mix").MixedInstancesPolicy
	if m == nil || aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.Version) != "2" || len(m.LaunchTemplate.Overrides) != 2 ||
		aws.ToInt32(m.InstancesDistribution.OnDemandBaseCapacity) != 1 || aws.ToInt32(m.InstancesDistribution.OnDemandPercentageAboveBaseCapacity) != 0 {
		t.Errorf("group's policy after the deploy: %+v", m)
	}
	for id, ami := range f.InstanceAMIs("mix") {
		if ami != newAMI {
			t.Errorf("%s runs %s, want %s", id, ami, newAMI)
		}
	}
}

// A mixed instances policy whose override launches from another launch
// template: plan and deploy exit 3 (refused), naming the override.
func TestCLIRefusesMixedOverrideTemplate(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	old := f.Image("mixo-1", deploytest.ImageOptions{})
	st := f.Stack("mixo", old, deploytest.StackOptions{Desired: 1, MixedTypes: []string{"t3.micro"}})
	other := f.Stack("mixo-other", old, deploytest.StackOptions{Desired: 0, TargetGroups: -1})
	g := f.Group(st.Name)
	m := g.MixedInstancesPolicy
	m.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName = nil
	m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, astypes.LaunchTemplateOverrides{InstanceType: aws.String("m6g.medium"),
		LaunchTemplateSpecification: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(other.Template), Version: aws.String("1")}})
	if _, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(context.Background(), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(st.Name), MixedInstancesPolicy: m}); err != nil {
		t.Fatal(err)
	}
	newAMI := f.Image("mixo-2", deploytest.ImageOptions{})
	cfg := writeConfig(t, f, "mixo", "")
	f.SB.ResetCalls()
	for _, cmd := range []string{"plan", "deploy"} {
		out, code, err := runCLI(context.Background(), cmd, "staging", "--config", cfg, "--ami", newAMI)
		if code != exitRefused || err == nil || !strings.Contains(err.Error(), "the override for instance type m6g.medium of its mixed instances policy launches from launch template "+other.Template) {
			t.Errorf("%s: exit %d: %v\n%s", cmd, code, err, out)
		}
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("%d mutating calls: %v", n, f.SB.Calls())
	}
}
