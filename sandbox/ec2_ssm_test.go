package sandbox_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func ec2NoRetry(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

// launchFrom runs one instance from a launch template version and returns
// its id and AMI.
func launchFrom(t *testing.T, c *ec2.Client, lt, version string) (string, string) {
	t.Helper()
	out, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(version)}})
	if err != nil {
		t.Fatalf("RunInstances from %s version %s: %v", lt, version, err)
	}
	return aws.ToString(out.Instances[0].InstanceId), aws.ToString(out.Instances[0].ImageId)
}

// versionImages is the ImageId of each version, in version order.
func versionImages(t *testing.T, c *ec2.Client, lt string, resolve bool, opts ...func(*ec2.Options)) (string, error) {
	t.Helper()
	out, err := c.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), ResolveAlias: aws.Bool(resolve)}, opts...)
	if err != nil {
		return "", err
	}
	vs := out.LaunchTemplateVersions
	sort.Slice(vs, func(i, j int) bool { return aws.ToInt64(vs[i].VersionNumber) < aws.ToInt64(vs[j].VersionNumber) })
	var ids []string
	for _, v := range vs {
		ids = append(ids, aws.ToString(v.LaunchTemplateData.ImageId))
	}
	return strings.Join(ids, " "), nil
}

// TestLaunchTemplateImageAlias: a launch template version keeps
// resolve:ssm: as written, DescribeLaunchTemplateVersions resolves it
// with ResolveAlias, and every RunInstances launches the AMI the
// parameter (or the pinned version or label) maps to then.
func TestLaunchTemplateImageAlias(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	const region = "us-east-2"
	ctx := context.Background()
	s := newSSMEnv(t, sb, region)
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, region))
	amiA, amiB := sb.FixtureImage(region, ""), sb.FixtureImage(region, "")
	// Validations take 0.5 s scaled: a template is created while one is
	// pending, also on a slow machine.
	if err := sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"ssm_image_validation": 50}}); err != nil {
		t.Fatal(err)
	}
	create := func(name, image string) (string, error) {
		out, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(image), InstanceType: types.InstanceTypeT3Micro}}, ec2NoRetry)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.LaunchTemplate.LaunchTemplateId), nil
	}

	// The parameter must exist, validated, as an aws:ec2:image String.
	_, err := create("missing", "resolve:ssm:/golden/app")
	wantCode(t, "a missing parameter", err, "SsmInvalidParameter")
	s.put(&ssm.PutParameterInput{Name: aws.String("/golden/text"), Value: aws.String(amiA), Type: ssmtypes.ParameterTypeString})
	_, err = create("text", "resolve:ssm:/golden/text")
	wantCode(t, "a text parameter", err, "SsmInvalidParameter")
	s.put(&ssm.PutParameterInput{Name: aws.String("/golden/app"), Value: aws.String(amiA), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image")})
	_, err = create("early", "resolve:ssm:/golden/app")
	wantCode(t, "a parameter still being validated", err, "SsmInvalidParameter")
	s.waitValidated("/golden/app")
	_, err = create("badversion", "resolve:ssm:/golden/app:7")
	wantCode(t, "a missing version", err, "SsmInvalidParameter")

	lt, err := create("app", "resolve:ssm:/golden/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/golden/app"), ParameterVersion: aws.Int64(1), Labels: []string{"prod"}}); err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"resolve:ssm:/golden/app:1", "resolve:ssm:/golden/app:prod"} {
		if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(lt), SourceVersion: aws.String("1"),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(alias)}}); err != nil {
			t.Fatalf("version with %s: %v", alias, err)
		}
	}
	const written = "resolve:ssm:/golden/app resolve:ssm:/golden/app:1 resolve:ssm:/golden/app:prod"
	if got, err := versionImages(t, c, lt, false); err != nil || got != written {
		t.Fatalf("versions as written: %q %v", got, err)
	}
	if got, err := versionImages(t, c, lt, true); err != nil || got != strings.Join([]string{amiA, amiA, amiA}, " ") {
		t.Fatalf("versions resolved: %q %v", got, err)
	}
	var ids []string
	launch := func(version, want string) {
		t.Helper()
		id, ami := launchFrom(t, c, lt, version)
		ids = append(ids, id)
		if ami != want {
			t.Errorf("version %s launched %s, want %s", version, ami, want)
		}
		if got := aws.ToString(describeInstance(t, c, id).ImageId); got != want {
			t.Errorf("DescribeInstances: %s runs %s, want %s", id, got, want)
		}
	}
	launch("$Default", amiA)

	// The parameter moves on; the template does not change.
	if v := s.putImage("/golden/app", amiB, true); v != 2 {
		t.Fatalf("parameter version %d", v)
	}
	if got, _ := versionImages(t, c, lt, true); got != strings.Join([]string{amiB, amiA, amiA}, " ") {
		t.Fatalf("resolved after the update: %q", got)
	}
	launch("1", amiB)
	launch("2", amiA)
	launch("3", amiA)
	if _, err := s.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/golden/app"), Labels: []string{"prod"}}); err != nil {
		t.Fatal(err)
	}
	launch("3", amiB)

	// RunInstances takes the alias itself too, also by parameter ARN.
	for alias, want := range map[string]string{
		"resolve:ssm:/golden/app": amiB,
		"resolve:ssm:arn:aws:ssm:" + region + ":" + sandbox.AccountID + ":parameter/golden/app:1": amiA,
	} {
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(alias), InstanceType: types.InstanceTypeT3Micro})
		if err != nil {
			t.Fatalf("RunInstances %s: %v", alias, err)
		}
		ids = append(ids, aws.ToString(out.Instances[0].InstanceId))
		if got := aws.ToString(out.Instances[0].ImageId); got != want {
			t.Errorf("RunInstances %s launched %s, want %s", alias, got, want)
		}
	}

	// Once the parameter is gone, launches fail; the template still reads.
	if _, err := s.c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/golden/app")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt)}}, ec2NoRetry)
	wantCode(t, "launch after the parameter is deleted", err, "SsmInvalidParameter")
	_, err = versionImages(t, c, lt, true, ec2NoRetry)
	wantCode(t, "ResolveAlias after the parameter is deleted", err, "SsmInvalidParameter")
	if got, err := versionImages(t, c, lt, false); err != nil || got != written {
		t.Fatalf("versions as written after the delete: %q %v", got, err)
	}

	terminateAndWait(t, c, ids...)
	if _, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(lt)}); err != nil {
		t.Fatal(err)
	}
	s.deleteAll()
	sb.FixtureCleanup(region)
	sandboxtest.RequireEmptyInventory(t, sb)
}

// groupImages maps each live instance of the group to its AMI.
func groupImages(t *testing.T, c *ec2.Client, g astypes.AutoScalingGroup) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range g.Instances {
		id := aws.ToString(in.InstanceId)
		out[id] = aws.ToString(describeInstance(t, c, id).ImageId)
	}
	return out
}

func countImages(m map[string]string) map[string]int {
	n := map[string]int{}
	for _, ami := range m {
		n[ami]++
	}
	return n
}

// TestASGLaunchesTheAMIItsParameterMapsTo: an Auto Scaling group whose
// launch template names a parameter launches what the parameter maps to
// at each launch; a pinned version stays; a deleted parameter fails the
// launch (a failed scaling activity) and every group update.
func TestASGLaunchesTheAMIItsParameterMapsTo(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	s := newSSMEnv(t, e.sb, asgRegion)
	c := ec2.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	amiA, amiB := e.sb.FixtureImage(asgRegion, ""), e.sb.FixtureImage(asgRegion, "")
	s.putImage("/golden/web", amiA, false)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "web", "resolve:ssm:/golden/web", "resolve:ssm:/golden/web:1")

	e.createGroup("web", lt, "1", 2, nil)
	g := e.waitGroup("web", "2 in service", settledOn("1", 2))
	if n := countImages(groupImages(t, c, g)); n[amiA] != 2 {
		t.Fatalf("first launches %v", n)
	}

	// A scale-out after the parameter moved launches the new AMI.
	s.putImage("/golden/web", amiB, true)
	setDesired := func(n int32) {
		t.Helper()
		if _, err := e.c.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(n)}); err != nil {
			t.Fatal(err)
		}
	}
	setDesired(3)
	g = e.waitGroup("web", "3 in service", settledOn("1", 3))
	if n := countImages(groupImages(t, c, g)); n[amiA] != 2 || n[amiB] != 1 {
		t.Fatalf("after the scale-out %v", n)
	}

	// Version 2 pins parameter version 1.
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("2")}, DesiredCapacity: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	g = e.waitGroup("web", "4 in service", func(g astypes.AutoScalingGroup) bool { n, all := healthyOn(g, ""); return n == 4 && all })
	if n := countImages(groupImages(t, c, g)); n[amiA] != 3 || n[amiB] != 1 {
		t.Fatalf("after the pinned scale-out %v", n)
	}

	// A deleted parameter: group updates are refused, launches fail.
	if _, err := s.c.DeleteParameter(e.ctx, &ssm.DeleteParameterInput{Name: aws.String("/golden/web")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"), MaxSize: aws.Int32(9)}, noRetry)
	wantCode(t, "updating the group", err, "ValidationError")
	setDesired(5)
	poll(t, "a failed launch", func() (bool, string) {
		for _, a := range e.activities("web") {
			if a.StatusCode == astypes.ScalingActivityStatusCodeFailed && strings.Contains(aws.ToString(a.StatusMessage), "/golden/web") {
				t.Logf("failed launch: %s", aws.ToString(a.StatusMessage))
				return true, ""
			}
		}
		return false, ""
	})
	e.deleteGroup("web")
	s.deleteAll()
	e.finish()
}

// TestInstanceRefreshWithImageAlias: while a group's launch template
// names a parameter, a refresh can neither give a desired configuration
// nor skip matching, but a plain refresh rolls the parameter's new AMI
// out; a refresh to a template that names a parameter cannot roll back.
func TestInstanceRefreshWithImageAlias(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	s := newSSMEnv(t, e.sb, asgRegion)
	c := ec2.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	amiA, amiB := e.sb.FixtureImage(asgRegion, ""), e.sb.FixtureImage(asgRegion, "")
	s.putImage("/golden/api", amiA, false)

	aliasLT := e.sb.FixtureLaunchTemplate(asgRegion, "alias", "resolve:ssm:/golden/api")
	e.createGroup("alias", aliasLT, "1", 2, func(in *autoscaling.CreateAutoScalingGroupInput) { in.DefaultInstanceWarmup = aws.Int32(0) })
	plainLT := e.sb.FixtureLaunchTemplate(asgRegion, "plain", amiA, "resolve:ssm:/golden/api")
	e.createGroup("plain", plainLT, "1", 2, func(in *autoscaling.CreateAutoScalingGroupInput) { in.DefaultInstanceWarmup = aws.Int32(0) })
	e.waitGroup("alias", "2 in service", settledOn("1", 2))
	e.waitGroup("plain", "2 in service", settledOn("1", 2))

	refresh := func(group string, in *autoscaling.StartInstanceRefreshInput) error {
		in.AutoScalingGroupName = aws.String(group)
		_, err := e.c.StartInstanceRefresh(e.ctx, in, noRetry)
		return err
	}
	desired := func(lt, v string) *astypes.DesiredConfiguration {
		return &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(v)}}
	}
	wantCode(t, "desired configuration on an alias group", refresh("alias", &autoscaling.StartInstanceRefreshInput{DesiredConfiguration: desired(aliasLT, "1")}), "ValidationError")
	wantCode(t, "skip matching on an alias group", refresh("alias", &autoscaling.StartInstanceRefreshInput{Preferences: &astypes.RefreshPreferences{SkipMatching: aws.Bool(true)}}), "ValidationError")
	wantCode(t, "auto rollback to an alias template", refresh("plain", &autoscaling.StartInstanceRefreshInput{DesiredConfiguration: desired(plainLT, "2"),
		Preferences: &astypes.RefreshPreferences{AutoRollback: aws.Bool(true)}}), "ValidationError")

	// A plain refresh of the alias group rolls out the parameter's new AMI.
	s.putImage("/golden/api", amiB, true)
	id := e.startRefresh("alias", "", "", &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(50)})
	e.waitRefresh("alias", id, astypes.InstanceRefreshStatusSuccessful, nil)
	g := e.waitGroup("alias", "2 in service", settledOn("1", 2))
	if n := countImages(groupImages(t, c, g)); n[amiB] != 2 {
		t.Fatalf("after the refresh %v", n)
	}

	// The plain group's refresh to the alias version cannot be rolled back.
	id = e.startRefresh("plain", plainLT, "2", &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), CheckpointPercentages: []int32{50}, CheckpointDelay: aws.Int32(3600)})
	poll(t, "checkpoint", func() (bool, string) {
		rf := e.refresh("plain", id)
		return strings.HasPrefix(aws.ToString(rf.StatusReason), "Checkpoint"), aws.ToString(rf.StatusReason)
	})
	_, err := e.c.RollbackInstanceRefresh(e.ctx, &autoscaling.RollbackInstanceRefreshInput{AutoScalingGroupName: aws.String("plain")}, noRetry)
	wantCode(t, "rolling back", err, "IrreversibleInstanceRefresh")
	g, _ = e.group("plain")
	if n := countImages(groupImages(t, c, g)); n[amiA] != 1 || n[amiB] != 1 {
		t.Fatalf("at the checkpoint %v", n)
	}
	if _, err := e.c.CancelInstanceRefresh(e.ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	e.waitRefresh("plain", id, astypes.InstanceRefreshStatusCancelled, nil)
	e.deleteGroup("alias")
	e.deleteGroup("plain")
	s.deleteAll()
	e.finish()
}
