package sandbox_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

var noRetryEC2 = func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

func describeInstance(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances(%s): %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances(%s): %d reservations", id, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

// waitState polls with a deadline until the instance is in want and
// returns it.
func waitState(t *testing.T, c *ec2.Client, id string, want types.InstanceStateName) types.Instance {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		in := describeInstance(t, c, id)
		if in.State.Name == want {
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s still %s, want %s", id, in.State.Name, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func terminateAndWait(t *testing.T, c *ec2.Client, ids ...string) {
	t.Helper()
	if _, err := c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		waitState(t, c, id, types.InstanceStateNameTerminated)
	}
}

func TestEC2InstanceLifecycleWithEncryptedRoot(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	cfg := sandboxtest.Config(t, sb, "eu-west-1")
	c, k := ec2.NewFromConfig(cfg), kms.NewFromConfig(cfg)
	ami := sandbox.PublicImageID(sb, "eu-west-1", "debian-12-amd64")

	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("root volumes")})
	if err != nil {
		t.Fatal(err)
	}
	keyARN := aws.ToString(key.KeyMetadata.Arn)
	kp, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("deploy"), KeyType: types.KeyTypeEd25519})
	if err != nil {
		t.Fatal(err)
	}
	userData := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hello\n"))
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(ami), InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		KeyName: kp.KeyName, UserData: aws.String(userData), ClientToken: aws.String("lifecycle-1"),
		IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("web")},
		MetadataOptions:    &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.EbsBlockDevice{Encrypted: aws.Bool(true), KmsKeyId: aws.String(keyARN), VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}}}},
		Placement:         &types.Placement{AvailabilityZone: aws.String("eu-west-1b")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Instances) != 1 || !strings.HasPrefix(aws.ToString(run.ReservationId), "r-") || aws.ToString(run.OwnerId) != sandbox.AccountID {
		t.Fatalf("RunInstances = %+v", run)
	}
	in := run.Instances[0]
	id := aws.ToString(in.InstanceId)
	if in.State.Name != types.InstanceStateNamePending || aws.ToInt32(in.State.Code) != 0 {
		t.Fatalf("initial state %s/%d", in.State.Name, aws.ToInt32(in.State.Code))
	}
	again, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("lifecycle-1")})
	if err != nil || aws.ToString(again.Instances[0].InstanceId) != id {
		t.Fatalf("client token replay: %v", err)
	}

	in = waitState(t, c, id, types.InstanceStateNameRunning)
	checks := []struct{ name, got, want string }{
		{"image", aws.ToString(in.ImageId), ami},
		{"type", string(in.InstanceType), "t3.micro"},
		{"key", aws.ToString(in.KeyName), "deploy"},
		{"az", aws.ToString(in.Placement.AvailabilityZone), "eu-west-1b"},
		{"http tokens", string(in.MetadataOptions.HttpTokens), "required"},
		{"hop limit", string(rune('0' + aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit))), "2"},
		{"metadata state", string(in.MetadataOptions.State), "applied"},
		{"profile", aws.ToString(in.IamInstanceProfile.Arn), "arn:aws:iam::123456789012:instance-profile/web"},
		{"architecture", string(in.Architecture), "x86_64"},
		{"root device", aws.ToString(in.RootDeviceName), "/dev/xvda"},
		{"root type", string(in.RootDeviceType), "ebs"},
		{"client token", aws.ToString(in.ClientToken), "lifecycle-1"},
		{"state code", string(rune('0' + aws.ToInt32(in.State.Code)/16)), "1"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if ip := aws.ToString(in.PrivateIpAddress); !strings.HasPrefix(ip, "172.31.") ||
		aws.ToString(in.PrivateDnsName) != "ip-"+strings.ReplaceAll(ip, ".", "-")+".eu-west-1.compute.internal" {
		t.Errorf("private ip %s dns %s", ip, aws.ToString(in.PrivateDnsName))
	}
	if len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupName) != "default" || aws.ToString(in.SubnetId) == "" || aws.ToString(in.VpcId) == "" {
		t.Errorf("network: groups %+v subnet %s vpc %s", in.SecurityGroups, aws.ToString(in.SubnetId), aws.ToString(in.VpcId))
	}
	if len(in.Tags) != 1 || aws.ToString(in.Tags[0].Value) != "web-1" {
		t.Errorf("tags %+v", in.Tags)
	}
	if len(in.BlockDeviceMappings) != 1 || !strings.HasPrefix(aws.ToString(in.BlockDeviceMappings[0].Ebs.VolumeId), "vol-") ||
		in.BlockDeviceMappings[0].Ebs.Status != types.AttachmentStatusAttached {
		t.Errorf("block devices %+v", in.BlockDeviceMappings)
	}
	if len(in.NetworkInterfaces) != 1 || aws.ToString(in.NetworkInterfaces[0].PrivateIpAddress) != aws.ToString(in.PrivateIpAddress) {
		t.Errorf("network interfaces %+v", in.NetworkInterfaces)
	}
	vols := sandbox.InstanceVolumes(sb, "eu-west-1", id)
	if len(vols) != 1 || !vols[0].Encrypted || vols[0].KmsKeyID != keyARN || vols[0].Size != 20 || vols[0].Type != "gp3" {
		t.Fatalf("root volume %+v, want encrypted 20 GiB gp3 under %s", vols, keyARN)
	}
	filtered, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
		{Name: aws.String("tag:Name"), Values: []string{"web-*"}},
		{Name: aws.String("metadata-options.http-tokens"), Values: []string{"required"}},
		{Name: aws.String("availability-zone"), Values: []string{"eu-west-1b"}},
	}})
	if err != nil || len(filtered.Reservations) != 1 {
		t.Fatalf("filtered describe: %v %d", err, len(filtered.Reservations))
	}
	console, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil || aws.ToString(console.InstanceId) != id || console.Timestamp == nil {
		t.Fatalf("GetConsoleOutput: %v", err)
	}

	stop, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if sc := stop.StoppingInstances[0]; sc.PreviousState.Name != types.InstanceStateNameRunning || sc.CurrentState.Name != types.InstanceStateNameStopping || aws.ToInt32(sc.CurrentState.Code) != 64 {
		t.Fatalf("stop change %+v -> %+v", sc.PreviousState, sc.CurrentState)
	}
	in = waitState(t, c, id, types.InstanceStateNameStopped)
	if in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Client.UserInitiatedShutdown" || !strings.HasPrefix(aws.ToString(in.StateTransitionReason), "User initiated (") {
		t.Fatalf("stopped reason %+v / %q", in.StateReason, aws.ToString(in.StateTransitionReason))
	}
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), InstanceType: &types.AttributeValue{Value: aws.String("t3.small")}}); err != nil {
		t.Fatal(err)
	}
	start, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if sc := start.StartingInstances[0]; sc.PreviousState.Name != types.InstanceStateNameStopped || sc.CurrentState.Name != types.InstanceStateNamePending {
		t.Fatalf("start change %+v -> %+v", sc.PreviousState, sc.CurrentState)
	}
	in = waitState(t, c, id, types.InstanceStateNameRunning)
	if in.InstanceType != types.InstanceTypeT3Small {
		t.Fatalf("type after modify = %s", in.InstanceType)
	}
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if sc := term.TerminatingInstances[0]; sc.CurrentState.Name != types.InstanceStateNameShuttingDown || aws.ToInt32(sc.CurrentState.Code) != 32 {
		t.Fatalf("terminate change %+v", sc.CurrentState)
	}
	in = waitState(t, c, id, types.InstanceStateNameTerminated)
	if aws.ToInt32(in.State.Code) != 48 || len(in.BlockDeviceMappings) != 0 {
		t.Fatalf("terminated instance %+v", in)
	}
	if vols := sandbox.InstanceVolumes(sb, "eu-west-1", id); len(vols) != 0 {
		t.Fatalf("volumes left after termination: %+v", vols)
	}
	_, err = c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}, noRetryEC2)
	if apiCode(err) != "IncorrectInstanceState" {
		t.Fatalf("start terminated: %v", err)
	}

	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String("deploy")}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestEC2LaunchWithDisabledKMSKeyTerminates(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	cfg := sandboxtest.Config(t, sb, "us-east-1")
	c, k := ec2.NewFromConfig(cfg), kms.NewFromConfig(cfg)
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.DisableKey(ctx, &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(sandbox.PublicImageID(sb, "us-east-1", "al2023-ami-2023")), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"),
			Ebs: &types.EbsBlockDevice{Encrypted: aws.Bool(true), KmsKeyId: key.KeyMetadata.KeyId}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	in := waitState(t, c, id, types.InstanceStateNameTerminated)
	if in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Client.InvalidKMSKey.InvalidState" {
		t.Fatalf("state reason %+v", in.StateReason)
	}
	if aws.ToString(in.PrivateDnsName) != "" || aws.ToString(in.PrivateIpAddress) != "" {
		t.Fatalf("terminated instance keeps its address %s", aws.ToString(in.PrivateIpAddress))
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// RunInstances with a client token it has seen answers with what the
// first request launched, whatever its state, and launches nothing more.
func TestEC2RunInstancesIsIdempotentByClientToken(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	in := &ec2.RunInstancesInput{ImageId: aws.String(sandbox.PublicImageID(sb, "us-east-1", "al2023-ami-2023")), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ClientToken: aws.String("build-7f3a")}
	first, err := c.RunInstances(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(first.Instances[0].InstanceId)
	again, err := c.RunInstances(ctx, in)
	if err != nil || len(again.Instances) != 1 || aws.ToString(again.Instances[0].InstanceId) != id || aws.ToString(again.ReservationId) != aws.ToString(first.ReservationId) {
		t.Fatalf("repeated request: %+v %v, want instance %s again", again, err, id)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, id, types.InstanceStateNameTerminated)
	late, err := c.RunInstances(ctx, in)
	if err != nil || aws.ToString(late.Instances[0].InstanceId) != id || late.Instances[0].State.Name != types.InstanceStateNameTerminated {
		t.Fatalf("request after the instance ended: %+v %v, want terminated %s", late, err, id)
	}
	all, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("client-token"), Values: []string{"build-7f3a"}}}})
	if err != nil || len(all.Reservations) != 1 || len(all.Reservations[0].Instances) != 1 {
		t.Fatalf("instances with the token: %+v %v, want exactly one", all, err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestEC2DescribeInstancesPagingAndErrors(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-west-2"))
	ami := sandbox.PublicImageID(sb, "us-west-2", "debian-12-arm64")
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), InstanceType: types.InstanceTypeT4gMicro, MinCount: aws.Int32(2), MaxCount: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Instances) != 7 || run.Instances[0].Architecture != types.ArchitectureValuesArm64 {
		t.Fatalf("launched %d instances", len(run.Instances))
	}
	var ids []string
	for _, in := range run.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	seen := map[string]bool{}
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				seen[aws.ToString(in.InstanceId)] = true
			}
		}
	}
	if pages != 2 || len(seen) != 7 {
		t.Fatalf("paging: %d pages, %d instances", pages, len(seen))
	}
	status, err := c.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true), InstanceIds: ids[:2]})
	if err != nil || len(status.InstanceStatuses) != 2 {
		t.Fatalf("DescribeInstanceStatus: %v", err)
	}
	_, err = c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids[:1]}, noRetryEC2)
	if apiCode(err) != "IncorrectInstanceState" {
		t.Fatalf("stop pending: %v", err)
	}

	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"unknown id", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}}, noRetryEC2)
			return err
		}, "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"unknown ids", func() error {
			_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0", "i-0123456789abcdef1", ids[0]}}, noRetryEC2)
			return err
		}, "InvalidInstanceID.NotFound", "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"},
		{"malformed id", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"web-1"}}, noRetryEC2)
			return err
		}, "InvalidInstanceID.Malformed", ""},
		{"max results with ids", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1], MaxResults: aws.Int32(5)}, noRetryEC2)
			return err
		}, "InvalidParameterCombination", ""},
		{"max results too small", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(3)}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"bad filter", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"bad next token", func() error {
			_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{NextToken: aws.String("garbage!")}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"bad user data", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), UserData: aws.String("not base64!")}, noRetryEC2)
			return err
		}, "InvalidParameterValue", "Invalid BASE64 encoding of user data."},
		{"min count zero", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(0), MaxCount: aws.Int32(1)}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"max below min", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(3), MaxCount: aws.Int32(2)}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"too many", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(100), MaxCount: aws.Int32(100)}, noRetryEC2)
			return err
		}, "InstanceLimitExceeded", ""},
		{"unknown image", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, noRetryEC2)
			return err
		}, "InvalidAMIID.NotFound", ""},
		{"unknown key", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KeyName: aws.String("nope")}, noRetryEC2)
			return err
		}, "InvalidKeyPair.NotFound", ""},
		{"unknown subnet", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String("subnet-0123456789abcdef0")}, noRetryEC2)
			return err
		}, "InvalidSubnetID.NotFound", ""},
		{"bad http tokens", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: "sometimes"}}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"bad zone", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				Placement: &types.Placement{AvailabilityZone: aws.String("us-west-2z")}}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"console of unknown", func() error {
			_, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String("i-0123456789abcdef0")}, noRetryEC2)
			return err
		}, "InvalidInstanceID.NotFound", ""},
	}
	for _, tc := range cases {
		err := tc.call()
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
			continue
		}
		if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: message %v, want %q", tc.name, err, tc.msg)
		}
	}
	terminateAndWait(t, c, ids...)
	sandboxtest.RequireEmptyInventory(t, sb)
}
