package sandbox_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestASGLaunchFromASharedEncryptedImage: prod's Auto Scaling group on an
// image staging shares, encrypted under staging's key. The key policy
// naming prod's account is not enough, as AWS's guide says: prod's
// service-linked role gets nothing from IAM, so prod must grant it the
// key (a grant prod creates, which the key policy allows); then the
// group launches.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
func TestASGLaunchFromASharedEncryptedImage(t *testing.T) {
	t.Parallel()
	e := newKeyEnv(t)
	sandboxtest.AddSecondAccount(t, e.sb)
	prodCfg := sandboxtest.ConfigAs(t, e.sb, asgRegion, sandboxtest.SecondAccessKey)
	pe := &keyEnv{asgEnv: &asgEnv{t: t, sb: e.sb, c: autoscaling.NewFromConfig(prodCfg), ctx: e.ctx}, ec2: ec2.NewFromConfig(prodCfg), kms: kms.NewFromConfig(prodCfg)}
	prodRole := "arn:aws:iam::" + sandboxtest.SecondAccount + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

	key := e.key()
	image := e.image(key)
	if _, err := e.ec2.ModifyImageAttribute(e.ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(image),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(sandboxtest.SecondAccount)}}}}); err != nil {
		t.Fatal(err)
	}
	// AWS's example key policy for cross-account use: the other account
	// may use the key and create grants on it.
	e.putPolicy(key, fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [
  {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[1]s:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "External use", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[2]s:root"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "External grants", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%[2]s:root"}, "Action": "kms:CreateGrant", "Resource": "*"}]}`,
		sandbox.AccountID, sandboxtest.SecondAccount))

	subnets, err := pe.ec2.DescribeSubnets(e.ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil || len(subnets.Subnets) < 2 {
		t.Fatalf("prod's default subnets: %v", err)
	}
	var ids []string
	for _, s := range subnets.Subnets[:2] {
		ids = append(ids, aws.ToString(s.SubnetId))
	}
	lt, err := pe.ec2.CreateLaunchTemplate(e.ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT3Micro}})
	if err != nil {
		t.Fatal(err)
	}
	pe.createGroup("web", aws.ToString(lt.LaunchTemplate.LaunchTemplateId), "1", 1, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.VPCZoneIdentifier = aws.String(strings.Join(ids, ","))
	})
	if g, _ := pe.group("web"); aws.ToString(g.ServiceLinkedRoleARN) != prodRole {
		t.Fatalf("prod's group launches as %s, want %s", aws.ToString(g.ServiceLinkedRoleARN), prodRole)
	}
	pe.launchRefused("web", true)

	if _, err := pe.kms.CreateGrant(e.ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(prodRole), Operations: autoScalingOperations}); err != nil {
		t.Fatalf("prod grants its role staging's key: %v", err)
	}
	pe.waitGroup("web", "an instance in service", settledOn("1", 1))

	pe.deleteGroup("web")
	if _, err := pe.ec2.DeleteLaunchTemplate(e.ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}); err != nil {
		t.Fatal(err)
	}
	e.finishKeys()
}
