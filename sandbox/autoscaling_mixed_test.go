package sandbox_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// mixedPolicy is a policy on template lt at version over types, with an
// On-Demand base of one and half of the rest On-Demand.
func mixedPolicy(lt, version string, types_ ...string) *types.MixedInstancesPolicy {
	m := &types.MixedInstancesPolicy{
		LaunchTemplate: &types.LaunchTemplate{LaunchTemplateSpecification: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(version)}},
		InstancesDistribution: &types.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(1), OnDemandPercentageAboveBaseCapacity: aws.Int32(50),
			SpotAllocationStrategy: aws.String("price-capacity-optimized")},
	}
	for _, t := range types_ {
		m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, types.LaunchTemplateOverrides{InstanceType: aws.String(t)})
	}
	return m
}

// markets returns, per instance of the group, "type/market/version".
func (e *asgEnv) markets(ec *ec2.Client, g types.AutoScalingGroup) []string {
	e.t.Helper()
	var ids []string
	for _, in := range g.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	out, err := ec.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		e.t.Fatalf("DescribeInstances: %v", err)
	}
	var got []string
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			market := "on-demand"
			if in.InstanceLifecycle != "" {
				market = string(in.InstanceLifecycle)
			}
			ver := ""
			for _, t := range in.Tags {
				if aws.ToString(t.Key) == "aws:ec2launchtemplate:version" {
					ver = aws.ToString(t.Value)
				}
			}
			got = append(got, string(in.InstanceType)+"/"+market+"/v"+ver)
		}
	}
	sort.Strings(got)
	return got
}

// A mixed instances group launches its On-Demand base and percentage
// from the first override, and its Spot part spread over the overrides;
// a refresh with a desired mixed instances policy moves every instance to
// the policy's new version and leaves the group on that policy.
func TestMixedInstancesGroupLaunchesAndRefreshes(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	ec := ec2.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	img := e.sb.FixtureImage(asgRegion, "")
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "mixed", img)
	_, err := e.c.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("mixed"), MixedInstancesPolicy: mixedPolicy(lt, "1", "t3.micro", "t3a.micro", "m5.large"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(5),
		VPCZoneIdentifier: aws.String(strings.Join(e.sb.FixtureDefaultSubnets(asgRegion)[:2], ",")),
	})
	if err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("mixed", "five in service", func(g types.AutoScalingGroup) bool {
		n, all := healthyOn(g, "1")
		return n == 5 && all
	})
	if g.LaunchTemplate != nil || g.MixedInstancesPolicy == nil || len(g.MixedInstancesPolicy.LaunchTemplate.Overrides) != 3 {
		t.Fatalf("group launch source: template %+v policy %+v", g.LaunchTemplate, g.MixedInstancesPolicy)
	}
	d := g.MixedInstancesPolicy.InstancesDistribution
	if aws.ToString(d.OnDemandAllocationStrategy) != "prioritized" || aws.ToInt32(d.OnDemandBaseCapacity) != 1 || aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity) != 50 ||
		aws.ToString(d.SpotAllocationStrategy) != "price-capacity-optimized" {
		t.Errorf("distribution %+v", d)
	}
	// 5 instances: base 1 + half of 4 On-Demand = 3 On-Demand of the
	// first type; 2 Spot over two types.
	want := []string{"t3.micro/on-demand/v1", "t3.micro/on-demand/v1", "t3.micro/on-demand/v1", "t3.micro/spot/v1", "t3a.micro/spot/v1"}
	if got := e.markets(ec, g); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("instances %v, want %v", got, want)
	}

	// A refresh to version 2 of the template, with the policy's overrides
	// narrowed to two types.
	v2 := e.sb.FixtureLaunchTemplateVersion(asgRegion, lt, img)
	out, err := e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("mixed"),
		DesiredConfiguration: &types.DesiredConfiguration{MixedInstancesPolicy: mixedPolicy(lt, v2, "t3a.micro", "m5.large")},
		Preferences:          &types.RefreshPreferences{MinHealthyPercentage: aws.Int32(60), SkipMatching: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.InstanceRefreshId)
	rf := e.waitRefresh("mixed", id, types.InstanceRefreshStatusSuccessful, nil)
	if dc := rf.DesiredConfiguration; dc == nil || dc.MixedInstancesPolicy == nil || aws.ToString(dc.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.Version) != v2 {
		t.Errorf("refresh desired configuration %+v", rf.DesiredConfiguration)
	}
	g = e.waitGroup("mixed", "five on version 2", func(g types.AutoScalingGroup) bool {
		n, all := healthyOn(g, v2)
		return n == 5 && all
	})
	if m := g.MixedInstancesPolicy; m == nil || aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.Version) != v2 || len(m.LaunchTemplate.Overrides) != 2 {
		t.Errorf("group policy after the refresh: %+v", g.MixedInstancesPolicy)
	}
	want = []string{"m5.large/spot/v2", "t3a.micro/on-demand/v2", "t3a.micro/on-demand/v2", "t3a.micro/on-demand/v2", "t3a.micro/spot/v2"}
	if got := e.markets(ec, g); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("instances after the refresh %v, want %v", got, want)
	}

	// Auto rollback needs numbered versions everywhere, and a desired
	// configuration names a template or a policy, not both.
	_, err = e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("mixed"),
		DesiredConfiguration: &types.DesiredConfiguration{MixedInstancesPolicy: mixedPolicy(lt, "1", "t3.micro"),
			LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("1")}}}, noRetry)
	if err == nil || !strings.Contains(err.Error(), "either a LaunchTemplate or a MixedInstancesPolicy") {
		t.Errorf("desired configuration with both: %v", err)
	}
	latest := mixedPolicy(lt, "$Latest", "t3a.micro", "m5.large")
	latest.InstancesDistribution = nil
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("mixed"),
		MixedInstancesPolicy: latest}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.StartInstanceRefresh(e.ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("mixed"),
		DesiredConfiguration: &types.DesiredConfiguration{MixedInstancesPolicy: mixedPolicy(lt, "1", "t3a.micro")},
		Preferences:          &types.RefreshPreferences{AutoRollback: aws.Bool(true)}}, noRetry)
	if err == nil || !strings.Contains(err.Error(), "$Latest or $Default") {
		t.Errorf("auto rollback from a policy on $Latest: %v", err)
	}
	// An update names the whole policy: the distribution it leaves out
	// is AWS's default again, not the group's.
	g, _ = e.group("mixed")
	if d := g.MixedInstancesPolicy.InstancesDistribution; aws.ToInt32(d.OnDemandBaseCapacity) != 0 || aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity) != 100 {
		t.Errorf("distribution after update %+v", d)
	}
	e.deleteGroup("mixed")
	e.finish()
}

// An override with a launch template of its own launches that instance
// type from that template; an all-Spot group spreads over the overrides.
func TestMixedInstancesOverrideLaunchTemplate(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	ec := ec2.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	img, armImg := e.sb.FixtureImage(asgRegion, ""), e.sb.FixtureImage(asgRegion, "")
	lt, armLT := e.sb.FixtureLaunchTemplate(asgRegion, "x86", img), e.sb.FixtureLaunchTemplate(asgRegion, "arm", armImg)
	m := mixedPolicy(lt, "1", "t3.micro")
	m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, types.LaunchTemplateOverrides{InstanceType: aws.String("m6g.medium"),
		LaunchTemplateSpecification: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("arm"), Version: aws.String("1")}})
	m.InstancesDistribution = &types.InstancesDistribution{OnDemandPercentageAboveBaseCapacity: aws.Int32(0)}
	_, err := e.c.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("spot"), MixedInstancesPolicy: m,
		MinSize: aws.Int32(0), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(4), VPCZoneIdentifier: aws.String(e.sb.FixtureDefaultSubnets(asgRegion)[0])})
	if err != nil {
		t.Fatal(err)
	}
	g := e.waitGroup("spot", "four in service", func(g types.AutoScalingGroup) bool {
		n, all := healthyOn(g, "1")
		return n == 4 && all
	})
	if ov := g.MixedInstancesPolicy.LaunchTemplate.Overrides; len(ov) != 2 || ov[1].LaunchTemplateSpecification == nil || aws.ToString(ov[1].LaunchTemplateSpecification.LaunchTemplateId) != armLT {
		t.Errorf("overrides %+v", ov)
	}
	var ids []string
	for _, in := range g.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
		want := map[string]string{"t3.micro": lt, "m6g.medium": armLT}[aws.ToString(in.InstanceType)]
		if got := aws.ToString(in.LaunchTemplate.LaunchTemplateId); got != want {
			t.Errorf("%s (%s) from launch template %s, want %s", aws.ToString(in.InstanceId), aws.ToString(in.InstanceType), got, want)
		}
	}
	out, err := ec.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			want := map[string]string{"t3.micro": img, "m6g.medium": armImg}[string(in.InstanceType)]
			if aws.ToString(in.ImageId) != want || in.InstanceLifecycle != "spot" {
				t.Errorf("%s: %s on %s (%s), want %s, spot", aws.ToString(in.InstanceId), in.InstanceType, aws.ToString(in.ImageId), in.InstanceLifecycle, want)
			}
			count[string(in.InstanceType)]++
		}
	}
	if count["t3.micro"] != 2 || count["m6g.medium"] != 2 {
		t.Errorf("instance types %v, want two of each", count)
	}
	e.deleteGroup("spot")
	e.finish()
}
