package sandbox_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// clientErrorOnLaunch is how AWS reports a launch whose KMS keys the
// launching principal may not use.
const clientErrorOnLaunch = "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: Client.InternalError: Client error on launch"

// autoScalingOperations are the grant operations AWS's Auto Scaling guide
// gives the service-linked role.
var autoScalingOperations = []kmstypes.GrantOperation{
	kmstypes.GrantOperationEncrypt, kmstypes.GrantOperationDecrypt,
	kmstypes.GrantOperationReEncryptFrom, kmstypes.GrantOperationReEncryptTo,
	kmstypes.GrantOperationGenerateDataKey, kmstypes.GrantOperationGenerateDataKeyWithoutPlaintext,
	kmstypes.GrantOperationDescribeKey, kmstypes.GrantOperationCreateGrant,
}

// roleKeyPolicy is a key policy with the default statement and the two
// statements AWS's Auto Scaling guide adds for the role.
func roleKeyPolicy(role string, extra string) string {
	return `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"` + accountRoot + `"},"Action":"kms:*","Resource":"*"},` +
		`{"Sid":"Allow service-linked role use of the customer managed key","Effect":"Allow","Principal":{"AWS":["` + role + `"]},` +
		`"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"},` +
		`{"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{"AWS":["` + role + `"]},` +
		`"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":true}}}` + extra + `]}`
}

// keyEnv is an Auto Scaling test environment with EC2 and KMS clients.
type keyEnv struct {
	*asgEnv
	ec2  *ec2.Client
	kms  *kms.Client
	keys []string
	imgs []string
}

func newKeyEnv(t *testing.T) *keyEnv {
	e := newASGEnv(t)
	cfg := sandboxtest.Config(t, e.sb, asgRegion)
	return &keyEnv{asgEnv: e, ec2: ec2.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg)}
}

func (e *keyEnv) key() string {
	e.t.Helper()
	k, err := e.kms.CreateKey(e.ctx, &kms.CreateKeyInput{Description: aws.String("images")})
	if err != nil {
		e.t.Fatal(err)
	}
	e.keys = append(e.keys, aws.ToString(k.KeyMetadata.Arn))
	return aws.ToString(k.KeyMetadata.Arn)
}

var imageSeq atomic.Int64

// image copies the public Debian image, encrypted under key ("" for the
// region's EBS default key, aws/ebs), and waits until it is available.
func (e *keyEnv) image(key string) string {
	e.t.Helper()
	in := &ec2.CopyImageInput{SourceRegion: aws.String(asgRegion), SourceImageId: aws.String(sandbox.PublicImageID(e.sb, asgRegion, "debian-12-amd64")),
		Name: aws.String(fmt.Sprintf("encrypted-%d", imageSeq.Add(1))), Encrypted: aws.Bool(true)}
	if key != "" {
		in.KmsKeyId = aws.String(key)
	}
	out, err := e.ec2.CopyImage(e.ctx, in)
	if err != nil {
		e.t.Fatalf("CopyImage: %v", err)
	}
	id := aws.ToString(out.ImageId)
	im := imgWaitState(e.t, e.ec2, id, types.ImageStateAvailable)
	snap := imgSnapshot(e.t, e.ec2, aws.ToString(im.BlockDeviceMappings[0].Ebs.SnapshotId))
	if !aws.ToBool(snap.Encrypted) || key != "" && aws.ToString(snap.KmsKeyId) != key {
		e.t.Fatalf("snapshot of %s: encrypted %v under %s, want %s", id, aws.ToBool(snap.Encrypted), aws.ToString(snap.KmsKeyId), key)
	}
	e.imgs = append(e.imgs, id)
	return id
}

func (e *keyEnv) grant(key, grantee string, ops []kmstypes.GrantOperation) {
	e.t.Helper()
	if _, err := e.kms.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(grantee), Operations: ops}); err != nil {
		e.t.Fatalf("CreateGrant: %v", err)
	}
}

func (e *keyEnv) putPolicy(key, policy string) {
	e.t.Helper()
	if _, err := e.kms.PutKeyPolicy(e.ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(policy)}); err != nil {
		e.t.Fatalf("PutKeyPolicy: %v", err)
	}
}

// launchRefused waits for a failed launch activity with AWS's message;
// with none, it checks that no instance of the group reached InService
// meanwhile.
func (e *keyEnv) launchRefused(group string, none bool) {
	e.t.Helper()
	poll(e.t, "a failed launch", func() (bool, string) {
		g, _ := e.group(group)
		if ids := inService(g); none && ids != "" {
			e.t.Fatalf("instances %s in service with a key the role may not use", ids)
		}
		var msgs []string
		for _, a := range e.activities(group) {
			if a.StatusCode == astypes.ScalingActivityStatusCodeFailed {
				if aws.ToString(a.StatusMessage) == clientErrorOnLaunch && strings.HasPrefix(aws.ToString(a.Description), "Launching a new EC2 instance: i-") {
					return true, ""
				}
				msgs = append(msgs, aws.ToString(a.StatusMessage))
			}
		}
		return false, strings.Join(msgs, " | ")
	})
}

// finishKeys deletes the group, the images and their snapshots and the
// keys, and checks that nothing is left.
func (e *keyEnv) finishKeys(groups ...string) {
	e.t.Helper()
	for _, g := range groups {
		e.deleteGroup(g)
	}
	imgDeregister(e.t, e.ec2, e.imgs...)
	for _, k := range e.keys {
		imgDeleteKey(e.t, e.kms, k)
	}
	e.finish()
}

// Auto Scaling launches with the group's service-linked role, which gets
// nothing from IAM: a customer managed key must name it in its policy or
// grant it the operations AWS's guide lists.
func TestASGLaunchNeedsKeyAccessForItsRole(t *testing.T) {
	t.Parallel()
	customRole := asgRole + "_web"
	denyRole := `,{"Sid":"Deny the role","Effect":"Deny","Principal":{"AWS":"` + asgRole + `"},"Action":"kms:*","Resource":"*"}`
	cases := []struct {
		name    string
		managed bool // the image is encrypted under aws/ebs
		ltKey   bool // the key is the launch template's KmsKeyId, not the image's
		role    string
		setup   func(e *keyEnv, key string)
		ok      bool
	}{
		{name: "default key policy"},
		{name: "launch template KmsKeyId", ltKey: true},
		{name: "grant to the role", setup: func(e *keyEnv, key string) { e.grant(key, asgRole, autoScalingOperations) }, ok: true},
		{name: "grant without CreateGrant", setup: func(e *keyEnv, key string) {
			e.grant(key, asgRole, autoScalingOperations[:len(autoScalingOperations)-1])
		}},
		{name: "grant constrained to an encryption context", setup: func(e *keyEnv, key string) {
			_, err := e.kms.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(asgRole), Operations: autoScalingOperations,
				Constraints: &kmstypes.GrantConstraints{EncryptionContextEquals: map[string]string{"aws:ebs:id": "vol-0123456789abcdef0"}}})
			if err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "key policy names the role", setup: func(e *keyEnv, key string) { e.putPolicy(key, roleKeyPolicy(asgRole, "")) }, ok: true},
		{name: "deny beats grant", setup: func(e *keyEnv, key string) {
			e.grant(key, asgRole, autoScalingOperations)
			e.putPolicy(key, roleKeyPolicy(asgRole, denyRole))
		}},
		{name: "AWS managed key", managed: true, ok: true},
		{name: "custom role, grant to the default role", role: customRole, setup: func(e *keyEnv, key string) { e.grant(key, asgRole, autoScalingOperations) }},
		{name: "custom role, grant to it", role: customRole, setup: func(e *keyEnv, key string) { e.grant(key, customRole, autoScalingOperations) }, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newKeyEnv(t)
			key, image := "", ""
			switch {
			case tc.managed:
				image = e.image("")
			case tc.ltKey:
				key, image = e.key(), e.sb.FixtureImage(asgRegion, "")
			default:
				key = e.key()
				image = e.image(key)
			}
			if tc.setup != nil {
				tc.setup(e, key)
			}
			lt := e.sb.FixtureLaunchTemplate(asgRegion, "web", image)
			if tc.ltKey {
				lt = e.sb.FixtureEncryptedLaunchTemplate(asgRegion, "web-enc", image, key)
			}
			e.createGroup("web", lt, "1", 1, func(in *autoscaling.CreateAutoScalingGroupInput) {
				if tc.role != "" {
					in.ServiceLinkedRoleARN = aws.String(tc.role)
				}
			})
			g, _ := e.group("web")
			want := tc.role
			if want == "" {
				want = asgRole
			}
			if got := aws.ToString(g.ServiceLinkedRoleARN); got != want {
				t.Errorf("ServiceLinkedRoleARN = %s, want %s", got, want)
			}
			if tc.ok {
				e.waitGroup("web", "an instance in service", settledOn("1", 1))
			} else {
				e.launchRefused("web", true)
			}
			e.finishKeys("web")
		})
	}
}

func TestASGServiceLinkedRoleARNIsChecked(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "web", e.sb.FixtureImage(asgRegion, ""))
	for _, arn := range []string{"arn:aws:iam::" + sandbox.AccountID + ":role/deploy", "arn:aws:iam::210987654321:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"} {
		_, err := e.c.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"),
			LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("1")},
			MinSize:        aws.Int32(0), MaxSize: aws.Int32(1), AvailabilityZones: []string{asgRegion + "a"}, ServiceLinkedRoleARN: aws.String(arn)}, noRetry)
		if apiCode(err) != "ValidationError" {
			t.Errorf("role %s: %v, want ValidationError", arn, err)
		}
	}
	e.finish()
}

// A refresh to a launch template whose image's key the role may not use
// fails (or rolls back) after its new instances fail to launch.
func TestInstanceRefreshToInaccessibleKeyFails(t *testing.T) {
	t.Parallel()
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("autorollback=%v", rollback), func(t *testing.T) {
			t.Parallel()
			e := newKeyEnv(t)
			enc := e.image(e.key())
			lt := e.sb.FixtureLaunchTemplate(asgRegion, "web", e.sb.FixtureImage(asgRegion, ""), enc)
			e.createGroup("web", lt, "1", 2, nil)
			e.waitGroup("web", "instances in service", settledOn("1", 2))
			id := e.startRefresh("web", lt, "2", &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), AutoRollback: aws.Bool(rollback)})
			want := astypes.InstanceRefreshStatusFailed
			if rollback {
				want = astypes.InstanceRefreshStatusRollbackSuccessful
			}
			rf := e.waitRefresh("web", id, want, func(g astypes.AutoScalingGroup, _ astypes.InstanceRefresh) {
				for _, in := range g.Instances {
					if in.LifecycleState == astypes.LifecycleStateInService && aws.ToString(in.LaunchTemplate.Version) == "2" {
						t.Fatalf("instance %s of version 2 in service", aws.ToString(in.InstanceId))
					}
				}
			})
			reason := aws.ToString(rf.StatusReason)
			if rollback {
				reason = aws.ToString(rf.RollbackDetails.RollbackReason)
			}
			if !strings.Contains(reason, "Client.InternalError: Client error on launch") {
				t.Errorf("reason %q", reason)
			}
			e.launchRefused("web", false)
			e.waitGroup("web", "back on version 1", settledOn("1", 2))
			e.finishKeys("web")
		})
	}
}

// RunInstances launches as its caller, whom the default key policy lets
// use the key through IAM; a Deny for the caller makes the launch fail.
func TestRunInstancesUsesTheCallersKeyAccess(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	key := e.key()
	image := e.image(key)
	run := func() string {
		t.Helper()
		out, err := e.ec2.RunInstances(e.ctx, &ec2.RunInstancesInput{ImageId: aws.String(image), InstanceType: types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	ok := run()
	waitState(t, e.ec2, ok, types.InstanceStateNameRunning)
	vols := sandbox.InstanceVolumes(e.sb, asgRegion, ok)
	if len(vols) != 1 || !vols[0].Encrypted || vols[0].KmsKeyID != key {
		t.Fatalf("volumes %+v, want one encrypted under %s", vols, key)
	}
	terminateAndWait(t, e.ec2, ok)

	caller := "arn:aws:iam::" + sandbox.AccountID + ":user/sandbox"
	e.putPolicy(key, `{"Version":"2012-10-17","Statement":[`+
		`{"Effect":"Allow","Principal":{"AWS":"`+accountRoot+`"},"Action":"kms:*","Resource":"*"},`+
		`{"Effect":"Deny","Principal":{"AWS":"`+caller+`"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]}`)
	refused := run()
	in := waitState(t, e.ec2, refused, types.InstanceStateNameTerminated)
	if in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Client.InternalError" || aws.ToString(in.StateReason.Message) != "Client.InternalError: Client error on launch" {
		t.Fatalf("state reason %+v", in.StateReason)
	}
	e.finishKeys()
}
