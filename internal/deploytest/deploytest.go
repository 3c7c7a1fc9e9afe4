// Package deploytest builds what a deploy needs in the sandbox through the
// AWS SDK, as a user's infrastructure code would: images, a launch
// template, target groups behind a load balancer, an Auto Scaling group
// with ELB health checks. Everything it makes is removed when the test
// ends, and the test fails if anything is left.
package deploytest

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// Fixture is one region of a sandbox with SDK clients.
type Fixture struct {
	T       testing.TB
	SB      *sandbox.Sandbox
	Region  string
	Config  aws.Config
	Clients deployer.Clients
	VPC     string
	Subnets []string

	debian string
	images []string

	account  string                      // the account the clients act in
	baseline map[string]sandbox.Resource // what the fixture's builders made, by key
	allowed  []func(sandbox.Resource) bool
	prepare  []func() // run before the leak check (CleanupImagesTagged's count)
	cleanups []func()
}

// New starts a sandbox (or uses sb when not nil) and returns a fixture
// for region. When the test ends it first checks that the code under
// test left nothing in the region beyond what the fixture made and what
// is allowed (leaks.go), then removes what the fixture made and, when it
// started the sandbox, checks that the sandbox's inventory is empty.
func New(t testing.TB, sb *sandbox.Sandbox, region string) *Fixture {
	t.Helper()
	return NewAs(t, sb, region, "")
}

// NewAs is New with clients that sign with accessKey, so that they act
// in the account the sandbox maps it to (sandboxtest.AddSecondAccount);
// "" is the sandbox's first account.
func NewAs(t testing.TB, sb *sandbox.Sandbox, region, accessKey string) *Fixture {
	t.Helper()
	owner := sb == nil
	if owner {
		sb = sandboxtest.Start(t)
	}
	cfg := sandboxtest.Config(t, sb, region)
	if accessKey != "" {
		cfg = sandboxtest.ConfigAs(t, sb, region, accessKey)
	}
	f := &Fixture{T: t, SB: sb, Region: region, Config: cfg, Clients: deployer.NewClients(cfg), baseline: map[string]sandbox.Resource{}}
	ctx := context.Background()
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	f.must(err)
	f.account = aws.ToString(id.Account)
	vpcs, err := f.Clients.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	f.must(err)
	f.VPC = aws.ToString(vpcs.Vpcs[0].VpcId)
	subs, err := f.Clients.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{f.VPC}}}})
	f.must(err)
	for _, s := range subs.Subnets {
		f.Subnets = append(f.Subnets, aws.ToString(s.SubnetId))
	}
	sort.Strings(f.Subnets)
	imgs, err := f.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"136693071363"}, Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	f.must(err)
	newest := ""
	for _, im := range imgs.Images {
		if name := aws.ToString(im.Name); name > newest {
			newest, f.debian = name, aws.ToString(im.ImageId)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		// What the code under test left is compared before the fixture
		// removes what it made (leaks.go); a test that failed already
		// may have stopped anywhere, so only its final inventory counts.
		if !t.Failed() {
			for _, fn := range f.prepare {
				fn()
			}
			f.checkLeaks()
		}
		for i := len(f.cleanups) - 1; i >= 0; i-- {
			f.cleanups[i]()
		}
		for _, id := range f.images {
			f.Clients.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id), DeleteAssociatedSnapshots: aws.Bool(true)})
		}
		if !owner {
			return // the fixture that started the sandbox checks it
		}
		f.WaitFor("an empty inventory", 30*time.Second, func() (bool, string) {
			inv := sb.Inventory()
			return len(inv) == 0, fmt.Sprint(inv)
		})
		sandboxtest.RequireEmptyInventory(t, sb)
	})
	return f
}

func (f *Fixture) must(err error) {
	f.T.Helper()
	if err != nil {
		f.T.Fatal(err)
	}
}

// WaitFor polls cond every 20ms until it holds or timeout passes.
func (f *Fixture) WaitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	f.T.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	f.T.Fatalf("timed out waiting for %s; last: %s", what, last)
}

// ImageOptions shape an image the fixture makes.
type ImageOptions struct {
	// Health is the sandbox:health tag: "" (healthy), "fail", "flaky".
	Health    string
	Encrypted bool
	// KMSKey encrypts the image's snapshots with this key (an ARN or
	// alias) instead of the region's default EBS key.
	KMSKey string
	// Pending returns at once, while the image is still pending.
	Pending bool
	// Tags are more tags on the image (the admission policy reads them).
	Tags map[string]string
}

// Image copies the region's Debian 12 image into an AMI of this account
// and returns its id once available.
func (f *Fixture) Image(name string, o ImageOptions) string {
	f.T.Helper()
	defer f.adopt(f.snapshot())
	ctx := context.Background()
	in := &ec2.CopyImageInput{SourceImageId: aws.String(f.debian), SourceRegion: aws.String(f.Region), Name: aws.String(name), Encrypted: aws.Bool(o.Encrypted || o.KMSKey != "")}
	if o.KMSKey != "" {
		in.KmsKeyId = aws.String(o.KMSKey)
	}
	var tags []ec2types.Tag
	if o.Health != "" {
		tags = append(tags, ec2types.Tag{Key: aws.String(sandbox.HealthTag), Value: aws.String(o.Health)})
	}
	for k, v := range o.Tags {
		tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: tags}}
	}
	out, err := f.Clients.EC2.CopyImage(ctx, in)
	f.must(err)
	id := aws.ToString(out.ImageId)
	f.images = append(f.images, id)
	if o.Pending {
		return id
	}
	f.WaitFor("image "+id+" available", 30*time.Second, func() (bool, string) {
		d, err := f.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(d.Images) == 0 {
			return false, fmt.Sprint(err)
		}
		return d.Images[0].State == ec2types.ImageStateAvailable, string(d.Images[0].State)
	})
	return id
}

// KMSKey creates a customer managed KMS key with the alias (alias/NAME)
// and the default key policy in the fixture's region and returns its ARN;
// the test's cleanup deletes the alias and schedules the key's deletion.
func (f *Fixture) KMSKey(alias string) string {
	f.T.Helper()
	return f.kmsKey(alias, "")
}

// AutoScalingRole is Auto Scaling's default service-linked role in the
// sandbox's account.
var AutoScalingRole = "arn:aws:iam::" + sandbox.AccountID + ":role/" + deployer.DefaultAutoScalingRoleName

// AutoScalingKeyPolicy is the key policy AWS documents for a customer
// managed key that Auto Scaling's service-linked role launches with: the
// default statement and the role's two.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
func AutoScalingKeyPolicy() string {
	return fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "Allow service-linked role use of the customer managed key", "Effect": "Allow", "Principal": {"AWS": "%[2]s"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": "%[2]s"},
   "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]}`, sandbox.AccountID, AutoScalingRole)
}

// SharedAutoScalingKeyPolicy is AutoScalingKeyPolicy plus the statements
// AWS documents for letting another account use the key for EBS (copy an
// image encrypted with it, launch from it).
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
func SharedAutoScalingKeyPolicy(other string) string {
	extra := fmt.Sprintf(`,
  {"Sid": "Use by %[1]s", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "Grants by %[1]s", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"},
   "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]}`, other)
	return strings.TrimSuffix(strings.TrimSpace(AutoScalingKeyPolicy()), "]}") + extra
}

// KMSKeyForAutoScaling is KMSKey with AutoScalingKeyPolicy.
func (f *Fixture) KMSKeyForAutoScaling(alias string) string {
	f.T.Helper()
	return f.kmsKey(alias, AutoScalingKeyPolicy())
}

func (f *Fixture) kmsKey(alias, policy string) string {
	f.T.Helper()
	defer f.adopt(f.snapshot())
	ctx := context.Background()
	k := kms.NewFromConfig(f.Config)
	in := &kms.CreateKeyInput{Description: aws.String("test key " + alias)}
	if policy != "" {
		in.Policy = aws.String(policy)
	}
	out, err := k.CreateKey(ctx, in)
	f.must(err)
	id := aws.ToString(out.KeyMetadata.KeyId)
	f.cleanup(func() {
		k.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	})
	_, err = k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(id)})
	f.must(err)
	f.cleanup(func() { k.DeleteAlias(context.Background(), &kms.DeleteAliasInput{AliasName: aws.String(alias)}) })
	return aws.ToString(out.KeyMetadata.Arn)
}

// ImagesTagged returns the account's images in the region that carry the
// tag key (with any value), in every state.
func (f *Fixture) ImagesTagged(key string) []ec2types.Image {
	f.T.Helper()
	out, err := f.Clients.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{key}}}})
	f.must(err)
	return out.Images
}

// CleanupImagesTagged declares that the code under test leaves want
// images in the region tagged with key: the leak check fails when it
// finds another number (a negative want checks no number), and allows
// those images and their snapshots.
// The test's cleanup then deregisters them with their snapshots.
func (f *Fixture) CleanupImagesTagged(key string, want int) {
	f.T.Helper()
	var images, snapshots map[string]bool
	f.prepare = append(f.prepare, func() {
		images, snapshots = f.imageParts(context.Background(), key)
		if want >= 0 && len(images) != want {
			f.T.Errorf("leak check: %d images tagged %s in %s, want %d", len(images), key, f.Region, want)
		}
	})
	f.Allow(func(r sandbox.Resource) bool {
		return r.Type == "image" && images[r.ID] || r.Type == "snapshot" && snapshots[r.ID]
	})
	f.cleanup(func() {
		for _, im := range f.ImagesTagged(key) {
			f.Clients.EC2.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)})
		}
	})
}

// Stack is an Auto Scaling group behind target groups of one load
// balancer.
type Stack struct {
	Name         string
	Template     string
	TargetGroups []string
	LoadBalancer string
	Listener     string
	// Unused is the target group no listener forwards to, if any.
	Unused string
}

// StackOptions shape a stack.
type StackOptions struct {
	Desired      int
	TargetGroups int // default 1; 0 is turned into 1, -1 means none
	// Version is the group's launch template version: "1" by default.
	Version string
	// HealthCheckType is the group's: "ELB" by default; with "EC2" the
	// group ignores the load balancer's health checks.
	HealthCheckType string
	// UnusedTargetGroup attaches one more target group to the group that
	// no listener forwards to.
	UnusedTargetGroup bool
	// UserData is the launch template's user data, a script (the linux
	// runtime runs it at boot).
	UserData string
	// Port and HealthCheckPath are the target groups' (80 and "/" by default).
	Port            int
	HealthCheckPath string
	// MixedTypes gives the group a mixed instances policy on the launch
	// template with these instance types as its overrides, and
	// Distribution as its instances distribution (AWS's defaults when nil).
	MixedTypes   []string
	Distribution *astypes.InstancesDistribution
	// LaunchConfiguration puts the group on a launch configuration made
	// from this input instead (its name and image are the stack's); the
	// test's cleanup deletes it after the group, and deletes the launch
	// template phoenix makes from it (phoenix-NAME) too.
	LaunchConfiguration *autoscaling.CreateLaunchConfigurationInput
}

// Stack builds a launch template for ami, target groups forwarded to by
// one listener, and a group using them with ELB health checks, and waits
// until every target is healthy. The test's cleanup deletes it all.
func (f *Fixture) Stack(name, ami string, o StackOptions) *Stack {
	f.T.Helper()
	defer f.adopt(f.snapshot())
	ctx := context.Background()
	c := f.Clients
	st := &Stack{Name: name}
	st.Template = f.launchTemplate(name, ami, o.UserData, false)
	port, path := healthCheck(o.Port, o.HealthCheckPath)
	n := o.TargetGroups
	if n == 0 {
		n = 1
	}
	if n > 0 {
		lb, err := c.ELB.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: f.Subnets[:2]})
		f.must(err)
		st.LoadBalancer = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn)
		var tuples []elbtypes.TargetGroupTuple
		for i := 0; i < n; i++ {
			tgName := name
			if i > 0 {
				tgName = fmt.Sprintf("%s-%d", name, i+1)
			}
			arn := f.targetGroup(tgName, port, path)
			st.TargetGroups = append(st.TargetGroups, arn)
			tuples = append(tuples, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(1)})
		}
		if o.UnusedTargetGroup {
			tg, err := c.ELB.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name + "-unused"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(f.VPC)})
			f.must(err)
			st.Unused = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
		}
		l, err := c.ELB.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(st.LoadBalancer), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
			DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: tuples}}}})
		f.must(err)
		st.Listener = aws.ToString(l.Listeners[0].ListenerArn)
		f.cleanup(func() {
			ctx := context.Background()
			c.ELB.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(st.Listener)})
			c.ELB.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(st.LoadBalancer)})
			for _, tg := range append(st.TargetGroups, st.Unused) {
				c.ELB.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tg)})
			}
		})
	}
	version := o.Version
	if version == "" {
		version = "1"
	}
	hc := o.HealthCheckType
	if hc == "" {
		hc = "ELB"
	}
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template), Version: aws.String(version)},
		MinSize:              aws.Int32(0), MaxSize: aws.Int32(int32(2*o.Desired + 2)), DesiredCapacity: aws.Int32(int32(o.Desired)),
		VPCZoneIdentifier: aws.String(strings.Join(f.Subnets[:2], ",")),
		TargetGroupARNs:   withUnused(st), HealthCheckType: aws.String(hc), HealthCheckGracePeriod: aws.Int32(0),
	}
	if len(o.MixedTypes) > 0 {
		m := &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{LaunchTemplateSpecification: in.LaunchTemplate}, InstancesDistribution: o.Distribution}
		for _, t := range o.MixedTypes {
			m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, astypes.LaunchTemplateOverrides{InstanceType: aws.String(t)})
		}
		in.LaunchTemplate, in.MixedInstancesPolicy = nil, m
	}
	if lc := o.LaunchConfiguration; lc != nil {
		// phoenix moves a group off a launch configuration onto a launch
		// template of its own (docs/deployer.md).
		f.Allow(func(r sandbox.Resource) bool { return r.Type == "launch-template" && r.Name == "phoenix-"+name })
		lc.LaunchConfigurationName, lc.ImageId = aws.String(name), aws.String(ami)
		_, err := c.AutoScaling.CreateLaunchConfiguration(ctx, lc)
		f.must(err)
		f.cleanup(func() {
			ctx := context.Background()
			c.AutoScaling.DeleteLaunchConfiguration(ctx, &autoscaling.DeleteLaunchConfigurationInput{LaunchConfigurationName: aws.String(name)})
			c.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("phoenix-" + name)})
		})
		in.LaunchTemplate, in.LaunchConfigurationName = nil, aws.String(name)
	}
	_, err := c.AutoScaling.CreateAutoScalingGroup(ctx, in)
	f.must(err)
	// Registered after the load balancer's cleanup, so it runs first.
	f.cleanup(func() { f.DeleteGroup(name) })
	f.WaitHealthy(st, o.Desired)
	return st
}

func withUnused(st *Stack) []string {
	if st.Unused == "" {
		return st.TargetGroups
	}
	return append(append([]string(nil), st.TargetGroups...), st.Unused)
}

// WaitHealthy waits until the group has want in-service healthy
// instances and each target group as many healthy targets and no other.
func (f *Fixture) WaitHealthy(st *Stack, want int) {
	f.T.Helper()
	ctx := context.Background()
	f.WaitFor(st.Name+" healthy", 60*time.Second, func() (bool, string) {
		g, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{st.Name}})
		if err != nil || len(g.AutoScalingGroups) == 0 {
			return false, fmt.Sprint(err)
		}
		n := 0
		for _, in := range g.AutoScalingGroups[0].Instances {
			if in.LifecycleState == astypes.LifecycleStateInService && aws.ToString(in.HealthStatus) == "Healthy" {
				n++
			}
		}
		if n != want {
			return false, fmt.Sprintf("%d in service", n)
		}
		for _, tg := range st.TargetGroups {
			h, err := f.Clients.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
			if err != nil {
				return false, err.Error()
			}
			ok := 0
			for _, d := range h.TargetHealthDescriptions {
				if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					ok++
				}
			}
			if ok != want || len(h.TargetHealthDescriptions) != want {
				return false, fmt.Sprintf("%s: %d/%d healthy", tg, ok, len(h.TargetHealthDescriptions))
			}
		}
		return true, ""
	})
}

// DeleteGroup force-deletes a group and waits until it is gone.
func (f *Fixture) DeleteGroup(name string) {
	ctx := context.Background()
	f.DeleteLocks(name)
	f.Clients.AutoScaling.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)})
	f.WaitFor("group "+name+" deleted", 30*time.Second, func() (bool, string) {
		g, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		return err == nil && len(g.AutoScalingGroups) == 0, fmt.Sprint(err)
	})
}

// ImageParameter creates SSM parameter name (data type aws:ec2:image)
// naming ami, labels its version with labels, and waits until SSM has
// validated it; the test's cleanup deletes it.
func (f *Fixture) ImageParameter(name, ami string, labels ...string) {
	f.T.Helper()
	defer f.adopt(f.snapshot())
	ctx := context.Background()
	out, err := f.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(ami), Type: ssmtypes.ParameterTypeString, DataType: aws.String("aws:ec2:image")})
	f.must(err)
	f.cleanup(func() {
		f.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(name)})
	})
	f.WaitFor(name+" validated", 30*time.Second, func() (bool, string) {
		_, err := f.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		return err == nil, fmt.Sprint(err)
	})
	if len(labels) > 0 {
		_, err := f.Clients.SSM.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(out.Version), Labels: labels})
		f.must(err)
	}
}

// ParameterValue reads SSM parameter ref (a name, or name:selector).
func (f *Fixture) ParameterValue(ref string) string {
	f.T.Helper()
	out, err := f.Clients.SSM.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(ref)})
	if err != nil {
		f.T.Fatalf("reading SSM parameter %s: %v", ref, err)
	}
	return aws.ToString(out.Parameter.Value)
}

// DeleteLocks deletes the lock parameters phoenix keeps for group (one
// stays after every deploy, released) and its deploy history.
func (f *Fixture) DeleteLocks(group string) {
	ctx := context.Background()
	out, err := f.Clients.SSM.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(deployer.LockPath(group), "/"))})
	if err != nil {
		f.T.Errorf("reading the lock parameters of %s: %v", group, err)
		return
	}
	var names []string
	for _, p := range out.Parameters {
		names = append(names, aws.ToString(p.Name))
	}
	// The deploy history (deployer.HistoryPath) is kept on purpose, like
	// the released lock: it goes with the group.
	names = append(names, deployer.HistoryPath(group))
	if _, err := f.Clients.SSM.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: names}); err != nil {
		f.T.Errorf("deleting the lock and history parameters of %s: %v", group, err)
	}
}

// Group describes a group.
func (f *Fixture) Group(name string) astypes.AutoScalingGroup {
	f.T.Helper()
	g, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	f.must(err)
	if len(g.AutoScalingGroups) == 0 {
		f.T.Fatalf("group %s not found", name)
	}
	return g.AutoScalingGroups[0]
}

// InstanceAMIs returns each of the group's instances' AMI.
func (f *Fixture) InstanceAMIs(name string) map[string]string {
	f.T.Helper()
	g := f.Group(name)
	out := map[string]string{}
	var ids []string
	for _, in := range g.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	if len(ids) == 0 {
		return out
	}
	d, err := f.Clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids})
	f.must(err)
	for _, r := range d.Reservations {
		for _, in := range r.Instances {
			out[aws.ToString(in.InstanceId)] = aws.ToString(in.ImageId)
		}
	}
	return out
}

// TemplateVersion resolves a launch template reference ("$Latest",
// "$Default", a number) to its version number and AMI.
func (f *Fixture) TemplateVersion(template, ref string) (int64, string) {
	f.T.Helper()
	out, err := f.Clients.EC2.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(template), Versions: []string{ref}})
	f.must(err)
	if len(out.LaunchTemplateVersions) != 1 {
		f.T.Fatalf("launch template %s has no version %s", template, ref)
	}
	v := out.LaunchTemplateVersions[0]
	return aws.ToInt64(v.VersionNumber), aws.ToString(v.LaunchTemplateData.ImageId)
}

// GroupTag is the value of the group's tag key, "" when it has none.
func (f *Fixture) GroupTag(name, key string) string {
	f.T.Helper()
	for _, t := range f.Group(name).Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// LockCalls counts the mutating calls a deploy makes for its lock: the
// lock parameters (taken, released, earlier ones deleted) and the label
// tag (written, deleted).
func LockCalls(calls map[string]map[string]int) int {
	return calls["ssm"]["PutParameter"] + calls["ssm"]["DeleteParameters"] + calls["autoscaling"]["CreateOrUpdateTags"] + calls["autoscaling"]["DeleteTags"]
}

// Mutating counts the sandbox's mutating calls since the last reset.
func (f *Fixture) Mutating() int { return sandbox.MutatingCalls(f.SB.Calls()) }

// launchTemplate makes a t3.micro launch template for ami, with userData
// as its user data and, with imdsv2, IMDSv2 required; the test's cleanup
// deletes it.
func (f *Fixture) launchTemplate(name, ami, userData string, imdsv2 bool) string {
	f.T.Helper()
	data := &ec2types.RequestLaunchTemplateData{ImageId: aws.String(ami), InstanceType: ec2types.InstanceTypeT3Micro}
	if imdsv2 {
		data.MetadataOptions = &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired}
	}
	if userData != "" {
		data.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(userData)))
	}
	lt, err := f.Clients.EC2.CreateLaunchTemplate(context.Background(), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data})
	f.must(err)
	id := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	f.cleanup(func() {
		f.Clients.EC2.DeleteLaunchTemplate(context.Background(), &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	})
	return id
}

// healthCheck is a target group's port and health check path, 80 and "/"
// when not set.
func healthCheck(port int, path string) (int32, string) {
	if port == 0 {
		port = 80
	}
	if path == "" {
		path = "/"
	}
	return int32(port), path
}

// targetGroup makes an HTTP target group that health-checks path every
// 5 s (2 checks either way) and drains in 5 s, and returns its ARN.
func (f *Fixture) targetGroup(name string, port int32, path string) string {
	f.T.Helper()
	ctx := context.Background()
	tg, err := f.Clients.ELB.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(port), VpcId: aws.String(f.VPC),
		HealthCheckPath: aws.String(path), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	f.must(err)
	arn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	_, err = f.Clients.ELB.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}})
	f.must(err)
	return arn
}

// BlueGreen is two Auto Scaling groups (blue and green) sharing a launch
// template, each with its target group, behind one listener whose default
// action (or one rule) forwards to both.
type BlueGreen struct {
	Blue, Green     string // group names
	BlueTG, GreenTG string // target group ARNs
	Template        string
	GreenTemplate   string // green's own template with SeparateTemplates, else Template
	LoadBalancer    string
	Listener        string
	Rule            string // set when the weights live in a rule
	DNSName         string
}

// BlueGreenOptions shape a blue-green stack.
type BlueGreenOptions struct {
	Desired int
	// Rule puts the weights in a listener rule (path /*) instead of the
	// listener's default action.
	Rule bool
	// UserData, Port and HealthCheckPath as for StackOptions.
	UserData        string
	Port            int
	HealthCheckPath string
	// SeparateTemplates gives green a launch template of its own instead
	// of sharing blue's.
	SeparateTemplates bool
	// Version is both groups' launch template version: "1" by default.
	Version string
	// BlueTypes and GreenTypes give a colour a mixed instances policy
	// with these instance types as its overrides and Distribution as its
	// instances distribution.
	BlueTypes, GreenTypes []string
	Distribution          *astypes.InstancesDistribution
}

// BlueGreen builds a blue-green stack with blue live on ami (weight 1)
// and green empty at weight 0, and waits until blue is healthy.
func (f *Fixture) BlueGreen(name, ami string, o BlueGreenOptions) *BlueGreen {
	f.T.Helper()
	defer f.adopt(f.snapshot())
	ctx := context.Background()
	c := f.Clients
	bg := &BlueGreen{Blue: name + "-blue", Green: name + "-green"}
	version := o.Version
	if version == "" {
		version = "1"
	}
	bg.Template = f.launchTemplate(name, ami, o.UserData, true)
	bg.GreenTemplate = bg.Template
	if o.SeparateTemplates {
		bg.GreenTemplate = f.launchTemplate(name+"-green", ami, o.UserData, true)
	}
	port, path := healthCheck(o.Port, o.HealthCheckPath)
	lb, err := c.ELB.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: f.Subnets[:2]})
	f.must(err)
	bg.LoadBalancer, bg.DNSName = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	f.cleanup(func() {
		c.ELB.DeleteLoadBalancer(context.Background(), &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(bg.LoadBalancer)})
	})
	bg.BlueTG, bg.GreenTG = f.targetGroup(bg.Blue, port, path), f.targetGroup(bg.Green, port, path)
	forward := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
		{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(0)}}}}}
	def := forward
	if o.Rule {
		def = []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{StatusCode: aws.String("404"), ContentType: aws.String("text/plain"), MessageBody: aws.String("no route")}}}
	}
	l, err := c.ELB.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(bg.LoadBalancer), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: def})
	f.must(err)
	bg.Listener = aws.ToString(l.Listeners[0].ListenerArn)
	if o.Rule {
		r, err := c.ELB.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(bg.Listener), Priority: aws.Int32(10), Actions: forward,
			Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: []string{"/*"}}}}})
		f.must(err)
		bg.Rule = aws.ToString(r.Rules[0].RuleArn)
	}
	f.cleanup(func() {
		ctx := context.Background()
		if bg.Rule != "" {
			c.ELB.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(bg.Rule)})
		}
		c.ELB.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(bg.Listener)})
		c.ELB.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(bg.LoadBalancer)})
		for _, tg := range []string{bg.BlueTG, bg.GreenTG} {
			c.ELB.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tg)})
		}
	})
	for _, g := range []struct {
		name    string
		tg      string
		lt      string
		desired int
		types   []string
	}{{bg.Blue, bg.BlueTG, bg.Template, o.Desired, o.BlueTypes}, {bg.Green, bg.GreenTG, bg.GreenTemplate, 0, o.GreenTypes}} {
		in := &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(g.name),
			LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(g.lt), Version: aws.String(version)},
			MinSize:              aws.Int32(int32(g.desired)), MaxSize: aws.Int32(int32(2*o.Desired + 2)), DesiredCapacity: aws.Int32(int32(g.desired)),
			VPCZoneIdentifier: aws.String(strings.Join(f.Subnets[:2], ",")),
			TargetGroupARNs:   []string{g.tg}, HealthCheckType: aws.String("ELB"), HealthCheckGracePeriod: aws.Int32(0),
		}
		if len(g.types) > 0 {
			m := &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{LaunchTemplateSpecification: in.LaunchTemplate}, InstancesDistribution: o.Distribution}
			for _, t := range g.types {
				m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, astypes.LaunchTemplateOverrides{InstanceType: aws.String(t)})
			}
			in.LaunchTemplate, in.MixedInstancesPolicy = nil, m
		}
		_, err = c.AutoScaling.CreateAutoScalingGroup(ctx, in)
		f.must(err)
		name := g.name
		f.cleanup(func() { f.DeleteGroup(name) })
	}
	f.WaitHealthy(&Stack{Name: bg.Blue, TargetGroups: []string{bg.BlueTG}}, o.Desired)
	return bg
}

// Weights returns the forward weights of the stack's rule (or listener
// default action) by target group ARN.
func (f *Fixture) Weights(bg *BlueGreen) map[string]int32 {
	f.T.Helper()
	ctx := context.Background()
	var actions []elbtypes.Action
	if bg.Rule != "" {
		out, err := f.Clients.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{bg.Rule}})
		f.must(err)
		actions = out.Rules[0].Actions
	} else {
		out, err := f.Clients.ELB.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{bg.Listener}})
		f.must(err)
		actions = out.Listeners[0].DefaultActions
	}
	w := map[string]int32{}
	for _, a := range actions {
		if a.ForwardConfig != nil {
			for _, tg := range a.ForwardConfig.TargetGroups {
				w[aws.ToString(tg.TargetGroupArn)] = aws.ToInt32(tg.Weight)
			}
		}
	}
	return w
}

// OwnedImages maps each image this account owns in the region to its
// snapshots.
func (f *Fixture) OwnedImages() map[string][]string {
	f.T.Helper()
	out, err := f.Clients.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
	f.must(err)
	m := map[string][]string{}
	for _, im := range out.Images {
		var snaps []string
		for _, b := range im.BlockDeviceMappings {
			if b.Ebs != nil && b.Ebs.SnapshotId != nil {
				snaps = append(snaps, *b.Ebs.SnapshotId)
			}
		}
		m[aws.ToString(im.ImageId)] = snaps
	}
	return m
}

// OwnedSnapshots is the set of snapshots this account owns in the region.
func (f *Fixture) OwnedSnapshots() map[string]bool {
	f.T.Helper()
	out, err := f.Clients.EC2.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	f.must(err)
	m := map[string]bool{}
	for _, s := range out.Snapshots {
		m[aws.ToString(s.SnapshotId)] = true
	}
	return m
}
