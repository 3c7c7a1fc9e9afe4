package example

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// Users who keep amazon-ebs chain phoenix-deploy after it: the real
// packer-plugin-amazon (v1.8.2, built from tools/amazon) bakes its
// encrypted AMI on the sandbox, and phoenix-deploy rolls it onto a group.
func TestAmazonEBSTemplateChainsPhoenixDeploy(t *testing.T) {
	p := newPackerEnv(t)
	run(t, p.root, nil, "./scripts/install-plugin-amazon.sh")
	run(t, p.root, p.env, p.packer, "plugins", "install", "--path", filepath.Join(p.root, "bin", "packer-plugin-amazon"), "github.com/hashicorp/amazon")

	sb := sandboxtest.Start(t)
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	ctx := context.Background()
	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/images"), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		kc.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/images")})
		kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	}()

	f := deploytest.New(t, sb, "us-east-1")
	e := ec2.NewFromConfig(f.Config)
	debian, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(debian.Images) == 0 {
		t.Fatalf("no Debian image: %v", err)
	}
	f.Stack("web-amz", aws.ToString(debian.Images[0].ImageId), deploytest.StackOptions{Desired: 2})

	// amazon-ebs reaches STS and KMS through the standard endpoint variable.
	env := append([]string{"AWS_ENDPOINT_URL=" + sb.URL()}, p.env...)
	vars := []string{"-var", "endpoint=" + sb.URL(), "-var", "communicator=none", "-var", "deploy_asg=web-amz", "example/amazon-ebs.pkr.hcl"}
	run(t, p.root, env, p.packer, append([]string{"validate"}, vars...)...)
	out := run(t, p.root, env, p.packer, append([]string{"build"}, vars...)...)
	if !strings.Contains(out, "succeeded: instance refresh") {
		t.Fatalf("phoenix-deploy did not succeed after amazon-ebs:\n%s", out)
	}
	// The key has the default key policy: grant_kms gave Auto Scaling's
	// role the key.
	grants, err := kc.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyMetadata.KeyId})
	if err != nil || len(grants.Grants) != 1 || aws.ToString(grants.Grants[0].GranteePrincipal) != deploytest.AutoScalingRole || aws.ToString(grants.Grants[0].Name) != "phoenix-autoscaling" {
		t.Errorf("grants on the key: %v %+v", err, grants)
	}
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("want the one encrypted AMI amazon-ebs keeps: %v %+v", err, imgs)
	}
	im := imgs.Images[0]
	defer func() {
		e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)})
	}()
	if !aws.ToBool(im.BlockDeviceMappings[0].Ebs.Encrypted) {
		t.Errorf("the AMI is not encrypted")
	}
	for id, ami := range f.InstanceAMIs("web-amz") {
		if ami != aws.ToString(im.ImageId) {
			t.Errorf("instance %s runs %s, not %s", id, ami, aws.ToString(im.ImageId))
		}
	}
}
