package deployer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestDeployAnImageAnotherAccountShares deploys, in a workload account,
// images that an image account shares by launch permission only, as AWS
// lets an account launch them: the snapshots stay invisible to the
// workload account, so phoenix cannot read an encrypted image's key and
// says so, and the group's launches decide (the key policy and a grant
// let them).
func TestDeployAnImageAnotherAccountShares(t *testing.T) {
	t.Parallel()
	images := deploytest.New(t, nil, region)
	sandboxtest.AddSecondAccount(t, images.SB)
	work := deploytest.NewAs(t, images.SB, region, sandboxtest.SecondAccessKey)
	ctx := context.Background()
	share := func(ami string) {
		t.Helper()
		if _, err := images.Clients.EC2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(ami),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(sandboxtest.SecondAccount)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	old := work.Image("web-1", deploytest.ImageOptions{})
	work.Stack("web", old, deploytest.StackOptions{Desired: 2})

	plain := images.Image("web-2", deploytest.ImageOptions{})
	share(plain)
	var ev events
	res, err := newDeployer(work, "web", nil, &ev).Run(ctx, plain)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy of a shared image: %+v, %v\n%s", res, err, ev.messages())
	}
	requireAMIs(t, work, "web", plain)

	// Encrypted under the image account's key, whose policy lets the
	// workload account use it and create grants; the workload account
	// grants its Auto Scaling role the key (AWS's cross-account recipe).
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
	key := images.KMSKey("alias/shared-images")
	policy := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [
  {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "External use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[2]s:root"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"], "Resource": "*"}]}`,
		sandbox.AccountID, sandboxtest.SecondAccount)
	if _, err := kms.NewFromConfig(images.Config).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	workRole := "arn:aws:iam::" + sandboxtest.SecondAccount + ":role/" + deployer.DefaultAutoScalingRoleName
	if _, err := kms.NewFromConfig(work.Config).CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(workRole),
		Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationEncrypt, kmstypes.GrantOperationDecrypt, kmstypes.GrantOperationReEncryptFrom, kmstypes.GrantOperationReEncryptTo,
			kmstypes.GrantOperationGenerateDataKey, kmstypes.GrantOperationGenerateDataKeyWithoutPlaintext, kmstypes.GrantOperationDescribeKey, kmstypes.GrantOperationCreateGrant}}); err != nil {
		t.Fatalf("the workload account grants its role the image account's key: %v", err)
	}
	enc := images.Image("web-3", deploytest.ImageOptions{KMSKey: key})
	share(enc)
	ev = events{}
	res, err = newDeployer(work, "web", nil, &ev).Run(ctx, enc)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy of a shared encrypted image: %+v, %v\n%s", res, err, ev.messages())
	}
	if want := "cannot read the snapshots of " + enc + ", which account " + sandbox.AccountID + " owns and shares with this account"; !strings.Contains(ev.messages(), want) {
		t.Errorf("no warning %q:\n%s", want, ev.messages())
	}
	requireAMIs(t, work, "web", enc)
}
