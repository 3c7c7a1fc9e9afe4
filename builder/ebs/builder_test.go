package ebs

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// env is a sandbox with AWS clients for the builder's integration tests.
type env struct {
	t  *testing.T
	sb *sandbox.Sandbox
}

func newEnv(t *testing.T) *env {
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	return &env{t: t, sb: sandboxtest.Start(t)}
}

func (e *env) ec2(region string) *ec2.Client {
	return ec2.NewFromConfig(sandboxtest.Config(e.t, e.sb, region))
}

func (e *env) key(region, alias string) string {
	c := kms.NewFromConfig(sandboxtest.Config(e.t, e.sb, region))
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String(alias)})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx := context.Background()
		c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(alias)})
		c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: out.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	})
	return aws.ToString(out.KeyMetadata.Arn)
}

// config is a build of the newest Debian 12 image in us-east-1, with no
// communicator (the sim runtime has no sshd).
func (e *env) config(kv ...interface{}) map[string]interface{} {
	m := map[string]interface{}{
		"region":     "us-east-1",
		"endpoint":   e.sb.URL(),
		"access_key": "AKIASANDBOX", "secret_key": "sandbox",
		"source_ami_filter": map[string]interface{}{
			"owners":      []string{sandbox.OwnerDebian},
			"filters":     map[string]string{"name": "debian-12-amd64-*", "architecture": "x86_64"},
			"most_recent": true,
		},
		"instance_type":     "t3.micro",
		"communicator":      "none",
		"ami_name":          "web-{{timestamp}}",
		"poll_interval":     "20ms",
		"packer_build_name": "web",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

type result struct {
	artifact packersdk.Artifact
	err      error
	out      string
}

// build runs the builder like Packer does.
func (e *env) build(ctx context.Context, cfg map[string]interface{}) result {
	e.t.Helper()
	var b Builder
	if _, _, err := b.Prepare(cfg); err != nil {
		e.t.Fatalf("Prepare: %v", err)
	}
	var out bytes.Buffer
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &out}
	a, err := b.Run(ctx, ui, &packersdk.MockHook{})
	return result{artifact: a, err: err, out: out.String()}
}

func (e *env) image(region, id string) ec2types.Image {
	e.t.Helper()
	out, err := e.ec2(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(out.Images) != 1 {
		e.t.Fatalf("DescribeImages %s in %s: %v", id, region, err)
	}
	return out.Images[0]
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// inventoryTypes counts the sandbox's resources by region and type.
func (e *env) inventoryTypes() map[string]int {
	out := map[string]int{}
	for _, r := range e.sb.Inventory() {
		if r.Service == "kms" {
			continue // the tests' own keys
		}
		out[r.Region+"/"+r.Type]++
	}
	return out
}

// waitInventoryClean waits until nothing but the tests' KMS keys is left
// (terminated instances take their volumes along a moment later).
func (e *env) waitInventoryClean() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(e.inventoryTypes()) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("resources left behind: %v", e.sb.Inventory())
}

func TestBuildEncryptedTaggedCopiedAMI(t *testing.T) {
	e := newEnv(t)
	keyUSE := e.key("us-east-1", "alias/images")
	keyEU := e.key("eu-west-1", "alias/images-eu")
	keyAP := e.key("ap-southeast-2", "alias/images-ap")
	e.sb.ResetCalls()

	res := e.build(context.Background(), e.config(
		"kms_key_id", "alias/images",
		"ami_regions", []string{"eu-west-1", "ap-southeast-2"},
		"region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu", "ap-southeast-2": keyAP},
		"tags", map[string]string{"team": "web", "base": "{{ .SourceAMIName }}", "region": "{{ .BuildRegion }}"},
		"snapshot_tags", map[string]string{"backup": "no"},
		"deprecate_after", "720h",
		"ami_description", "web from {{ .SourceAMI }}",
	))
	if res.err != nil {
		t.Fatalf("build failed: %v\n%s", res.err, res.out)
	}
	a, ok := res.artifact.(*Artifact)
	if !ok {
		t.Fatalf("artifact %T", res.artifact)
	}
	if len(a.AMIs) != 3 {
		t.Fatalf("AMIs %v, want one per region", a.AMIs)
	}
	wantID := "ap-southeast-2:" + a.AMIs["ap-southeast-2"] + ",eu-west-1:" + a.AMIs["eu-west-1"] + ",us-east-1:" + a.AMIs["us-east-1"]
	if a.Id() != wantID {
		t.Errorf("Id %q, want %q", a.Id(), wantID)
	}

	wantKeys := map[string]string{"us-east-1": keyUSE, "eu-west-1": keyEU, "ap-southeast-2": keyAP}
	var sourceID string
	for region, id := range a.AMIs {
		im := e.image(region, id)
		if im.State != ec2types.ImageStateAvailable {
			t.Errorf("%s: %s is %s", region, id, im.State)
		}
		if im.ImdsSupport != ec2types.ImdsSupportValuesV20 {
			t.Errorf("%s: imds_support %q, want v2.0", region, im.ImdsSupport)
		}
		if aws.ToString(im.DeprecationTime) == "" {
			t.Errorf("%s: no deprecation time", region)
		}
		tags := tagMap(im.Tags)
		for k, want := range map[string]string{"team": "web", "region": region, "phoenix:build-name": "web", "phoenix:source-region": "us-east-1"} {
			if tags[k] != want {
				t.Errorf("%s: tag %s = %q, want %q", region, k, tags[k], want)
			}
		}
		if !strings.HasPrefix(tags["base"], "debian-12-amd64-") || tags["phoenix:source-ami"] == "" || tags["phoenix:build-time"] == "" {
			t.Errorf("%s: provenance tags missing: %v", region, tags)
		}
		sourceID = tags["phoenix:source-ami"]
		if !strings.HasSuffix(aws.ToString(im.Description), sourceID) {
			t.Errorf("%s: description %q", region, aws.ToString(im.Description))
		}
		var snaps []string
		for _, bd := range im.BlockDeviceMappings {
			if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
				snaps = append(snaps, *bd.Ebs.SnapshotId)
			}
		}
		if len(snaps) == 0 {
			t.Fatalf("%s: AMI has no snapshots", region)
		}
		out, err := e.ec2(region).DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range out.Snapshots {
			if !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != wantKeys[region] {
				t.Errorf("%s: snapshot %s encrypted=%v key %s, want %s", region, aws.ToString(s.SnapshotId), aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId), wantKeys[region])
			}
			st := tagMap(s.Tags)
			if st["backup"] != "no" || st["team"] != "web" || st["phoenix:source-ami"] != sourceID {
				t.Errorf("%s: snapshot tags %v", region, st)
			}
		}
	}

	// The build instance had IMDSv2 required and an encrypted root.
	insts, err := e.ec2("us-east-1").DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range insts.Reservations {
		for _, in := range r.Instances {
			n++
			if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
				t.Errorf("build instance %s did not require IMDSv2", aws.ToString(in.InstanceId))
			}
			if in.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("build instance %s is %s", aws.ToString(in.InstanceId), in.State.Name)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d instances launched, want 1", n)
	}

	// No throw-away AMI: one CreateImage, and copies only to other regions.
	calls := e.sb.Calls()["ec2"]
	if calls["CreateImage"] != 1 || calls["CopyImage"] != 2 {
		t.Errorf("CreateImage %d, CopyImage %d: want 1 and 2 (no encrypting copy)", calls["CreateImage"], calls["CopyImage"])
	}

	// Only the AMIs and their snapshots remain.
	e.waitInventoryClean2(map[string]int{
		"us-east-1/image": 1, "us-east-1/snapshot": 1,
		"eu-west-1/image": 1, "eu-west-1/snapshot": 1,
		"ap-southeast-2/image": 1, "ap-southeast-2/snapshot": 1,
	})
	if err := a.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	e.waitInventoryClean()
}

// waitInventoryClean2 waits until the inventory is exactly want.
func (e *env) waitInventoryClean2(want map[string]int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got map[string]int
	for time.Now().Before(deadline) {
		got = e.inventoryTypes()
		if equalCounts(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("inventory %v, want %v", got, want)
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBuildFailuresLeaveNothing(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(e *env)
		kv       []interface{}
		want     string
		mutating bool // whether the build got as far as changing anything
	}{
		{
			name: "missing key in a copy region",
			kv:   []interface{}{"ami_regions", []string{"eu-west-1"}, "region_kms_key_ids", map[string]string{"eu-west-1": "alias/nope"}},
			want: `region_kms_key_ids["eu-west-1"]: KMS key "alias/nope" does not exist in eu-west-1`,
		},
		{
			name: "bad source filter",
			kv: []interface{}{"source_ami_filter", map[string]interface{}{
				"owners": []string{sandbox.OwnerDebian}, "filters": map[string]string{"name": "debian-99-*"}}},
			want: "matched no available image in us-east-1",
		},
		{
			name: "ambiguous source filter",
			kv: []interface{}{"source_ami_filter", map[string]interface{}{
				"owners": []string{sandbox.OwnerDebian}, "filters": map[string]string{"name": "debian-12-amd64-*"}}},
			want: "set source_ami_filter.most_recent = true",
		},
		{
			// The eu-west-1 key is disabled after the pre-checks, as the
			// AMI is created: that copy starts and then fails, as on AWS,
			// while the ap-south-1 copy succeeds; both copies and the AMI
			// must go.
			name: "copy that fails half-way",
			setup: func(e *env) {
				e.key("eu-west-1", "alias/images-eu")
				kc := kms.NewFromConfig(sandboxtest.Config(e.t, e.sb, "eu-west-1"))
				var once sync.Once
				e.sb.OnCall(func(_, action string) {
					if action == "CreateImage" {
						once.Do(func() {
							kc.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String("alias/images-eu")})
						})
					}
				})
			},
			kv:       []interface{}{"ami_regions", []string{"eu-west-1", "ap-south-1"}, "region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu"}},
			want:     "eu-west-1 is failed",
			mutating: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.sb.ResetCalls()
			res := e.build(context.Background(), e.config(tc.kv...))
			if res.err == nil {
				t.Fatalf("build succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(res.err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", res.err, tc.want)
			}
			e.sb.OnCall(nil)
			if m := sandbox.MutatingCalls(e.sb.Calls()); !tc.mutating && m != 0 {
				t.Errorf("%d mutating calls before the error: %v", m, e.sb.Calls())
			}
			e.sb.ClearFaults()
			e.waitInventoryClean()
		})
	}
}

// A cancel (Ctrl-C) at any point of the build removes everything it made.
func TestCancelAtEachStepLeavesNothing(t *testing.T) {
	for _, action := range []string{"RunInstances", "DescribeInstances", "StopInstances", "CreateImage", "CopyImage", "ModifyImageAttribute", "EnableImageDeprecation", "PutParameter", "LabelParameterVersion"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t)
			e.key("eu-west-1", "alias/images-eu")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			e.sb.OnCall(func(svc, a string) {
				if a == action {
					once.Do(cancel)
				}
			})
			res := e.build(ctx, e.config("ami_regions", []string{"eu-west-1"}, "region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu"}, "deprecate_after", "24h",
				"ssm_parameter", []map[string]interface{}{{"name": "/web/ami", "labels": []string{"staging"}}, {"name": "/web/ami", "region": "eu-west-1"}},
				"ssm_parameter_timeout", "3s"))
			e.sb.OnCall(nil)
			if res.err == nil {
				t.Fatalf("build finished despite the cancel at %s", action)
			}
			e.waitInventoryClean()
		})
	}
}

// A RunInstances call cut short by a cancel may reach EC2 only after the
// cleanup looked for its instance. The cleanup repeats the request with
// the same client token, so the late one launches nothing: here the call
// is held until the build has returned, then let through.
func TestCancelledLaunchThatArrivesLateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold := e.sb.HoldCall(func(_, _, a string) bool { return a == "RunInstances" })
	go func() {
		<-hold.Reached()
		cancel()
	}()
	res := e.build(ctx, e.config())
	if res.err == nil {
		t.Fatal("build finished despite the cancel")
	}
	hold.Release() // the lost request reaches EC2 now
	select {
	case <-hold.Handled():
	case <-time.After(10 * time.Second):
		t.Fatal("the late RunInstances was not handled within 10s of its release")
	}
	e.waitInventoryClean()
}

// A CopyImage that reaches EC2 only after the build gave up makes
// nothing either: the cleanup deregisters the source AMI in the build
// region before it looks for copies elsewhere, so the late copy finds no
// source. (Guards that order.)
func TestCancelledCopyThatArrivesLateLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.key("eu-west-1", "alias/images-eu")
	// EC2 may say a snapshot is in use for a while after its image is
	// deregistered: the cleanup retries (internal/inuse) until it goes.
	if err := e.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"snapshot_in_use": 30}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold := e.sb.HoldCall(func(_, _, a string) bool { return a == "CopyImage" })
	go func() {
		<-hold.Reached()
		cancel()
	}()
	res := e.build(ctx, e.config("ami_regions", []string{"eu-west-1"}, "region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu"}))
	if res.err == nil {
		t.Fatal("build finished despite the cancel")
	}
	hold.Release() // the lost request reaches EC2 now
	select {
	case <-hold.Handled():
	case <-time.After(10 * time.Second):
		t.Fatal("the late CopyImage was not handled within 10s of its release")
	}
	// The cleanup met InvalidSnapshot.InUse and tried again.
	if n := e.sb.Calls()["ec2"]["DeleteSnapshot"]; n < 2 {
		t.Errorf("DeleteSnapshot called %d times: the snapshot in use was not retried", n)
	}
	e.waitInventoryClean()
}

// With SSH, the build makes a temporary ed25519 key pair and a security
// group open to the builder only; when it cannot connect (the sim runtime
// has no sshd), both are gone afterwards along with the instance.
func TestSSHTimeoutCleansTemporaryKeyPairAndGroup(t *testing.T) {
	e := newEnv(t)
	var sawKey, sawGroup bool
	var mu sync.Mutex
	e.sb.OnCall(func(svc, action string) {
		if action != "AuthorizeSecurityGroupIngress" && action != "RunInstances" {
			return
		}
		go func() {
			ctx := context.Background()
			c := e.ec2("us-east-1")
			keys, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
			groups, err2 := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
			if err != nil || err2 != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range keys.KeyPairs {
				if k.KeyType == ec2types.KeyTypeEd25519 && strings.HasPrefix(aws.ToString(k.KeyName), "packer_") {
					sawKey = true
				}
			}
			for _, g := range groups.SecurityGroups {
				for _, p := range g.IpPermissions {
					if aws.ToInt32(p.FromPort) == 22 && len(p.IpRanges) == 1 && aws.ToString(p.IpRanges[0].CidrIp) == "127.0.0.1/32" {
						sawGroup = true
					}
				}
			}
		}()
	})
	res := e.build(context.Background(), e.config("communicator", "ssh", "ssh_username", "admin", "ssh_timeout", "300ms"))
	e.sb.OnCall(nil)
	if res.err == nil {
		t.Fatal("build succeeded without SSH")
	}
	time.Sleep(100 * time.Millisecond) // let the last look finish
	mu.Lock()
	if !sawKey || !sawGroup {
		t.Errorf("temporary ed25519 key pair seen: %v; group with SSH from 127.0.0.1/32 only: %v", sawKey, sawGroup)
	}
	mu.Unlock()
	calls := e.sb.Calls()["ec2"]
	if calls["ImportKeyPair"] != 1 || calls["DeleteKeyPair"] != 1 || calls["CreateSecurityGroup"] != 1 || calls["DeleteSecurityGroup"] < 1 {
		t.Errorf("calls %v", calls)
	}
	e.waitInventoryClean()
}

// A second build of the same name is refused before anything is created;
// with force_deregister it replaces the first (and its snapshots, with
// force_delete_snapshot). Sharing with an account needs a customer key
// and sets the launch permission in every region, and snapshot_users the
// create-volume permission on the snapshots, which the other account
// then sees.
func TestForceDeregisterAndSharing(t *testing.T) {
	e := newEnv(t)
	sandboxtest.AddSecondAccount(t, e.sb)
	e.key("us-east-1", "alias/images")
	e.key("eu-west-1", "alias/images-eu")
	cfg := func(kv ...interface{}) map[string]interface{} {
		return e.config(append([]interface{}{"ami_name", "web-fixed", "kms_key_id", "alias/images",
			"ami_regions", []string{"eu-west-1"}, "region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu"},
			"ami_users", []string{sandboxtest.SecondAccount}, "snapshot_users", []string{sandboxtest.SecondAccount}}, kv...)...)
	}
	first := e.build(context.Background(), cfg())
	if first.err != nil {
		t.Fatalf("first build: %v\n%s", first.err, first.out)
	}
	a1 := first.artifact.(*Artifact)
	for region, id := range a1.AMIs {
		out, err := e.ec2(region).DescribeImageAttribute(context.Background(), &ec2.DescribeImageAttributeInput{ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission})
		if err != nil || len(out.LaunchPermissions) != 1 || aws.ToString(out.LaunchPermissions[0].UserId) != sandboxtest.SecondAccount {
			t.Errorf("%s: launch permissions %v %+v", region, err, out)
		}
		other := ec2.NewFromConfig(sandboxtest.ConfigAs(t, e.sb, region, sandboxtest.SecondAccessKey))
		im, err := other.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err != nil || len(im.Images) != 1 || len(im.Images[0].BlockDeviceMappings) == 0 {
			t.Fatalf("%s: the other account's view of %s: %+v %v", region, id, im, err)
		}
		snap := aws.ToString(im.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId)
		sa, err := e.ec2(region).DescribeSnapshotAttribute(context.Background(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil || len(sa.CreateVolumePermissions) != 1 || aws.ToString(sa.CreateVolumePermissions[0].UserId) != sandboxtest.SecondAccount {
			t.Errorf("%s: create-volume permissions of %s: %+v %v", region, snap, sa, err)
		}
		if rs, err := other.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{RestorableByUserIds: []string{"self"}, OwnerIds: []string{sandbox.AccountID}}); err != nil || len(rs.Snapshots) != 1 || aws.ToString(rs.Snapshots[0].SnapshotId) != snap {
			t.Errorf("%s: snapshots the other account may restore: %v %v", region, rs != nil && len(rs.Snapshots) > 0, err)
		}
	}

	e.sb.ResetCalls()
	again := e.build(context.Background(), cfg())
	if again.err == nil || !strings.Contains(again.err.Error(), `ami_name "web-fixed" is already used by `+a1.AMIs["us-east-1"]) ||
		!strings.Contains(again.err.Error(), "set force_deregister = true") {
		t.Fatalf("second build: %v", again.err)
	}
	if m := sandbox.MutatingCalls(e.sb.Calls()); m != 0 {
		t.Errorf("%d mutating calls before refusing", m)
	}

	forced := e.build(context.Background(), cfg("force_deregister", true, "force_delete_snapshot", true))
	if forced.err != nil {
		t.Fatalf("forced build: %v\n%s", forced.err, forced.out)
	}
	a2 := forced.artifact.(*Artifact)
	e.waitInventoryClean2(map[string]int{"us-east-1/image": 1, "us-east-1/snapshot": 1, "eu-west-1/image": 1, "eu-west-1/snapshot": 1})
	for region, id := range a1.AMIs {
		if a2.AMIs[region] == id {
			t.Errorf("%s: the old AMI %s is still the artifact", region, id)
		}
	}
	if err := a2.Destroy(); err != nil {
		t.Fatal(err)
	}
	e.waitInventoryClean()
}
