package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestPromoteCommandAcrossAccounts runs phoenix promote from a staging
// account to a prod account that phoenix.hcl reaches by assuming a role
// of prod's: refused (exit 3, nothing changed) while the role does not
// trust staging's account and while the image's key is staging's alone;
// then the image is shared, copied into prod under prod's key and
// deployed there.
func TestPromoteCommandAcrossAccounts(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, "eu-west-1")
	sandboxtest.AddSecondAccount(t, staging.SB)
	prod := deploytest.NewAs(t, staging.SB, "us-east-1", sandboxtest.SecondAccessKey)
	prod.CleanupImagesTagged(deployer.PromotedFromTag, 1)
	const prodAccount = sandboxtest.SecondAccount
	role := "arn:aws:iam::" + prodAccount + ":role/phoenix-deploy"

	key := staging.KMSKeyForAutoScaling("alias/web-images")
	x := staging.Image("web-2", deploytest.ImageOptions{KMSKey: key})
	staging.Stack("web-staging", x, deploytest.StackOptions{Desired: 2})
	old := prod.Image("web-1", deploytest.ImageOptions{})
	prod.Stack("web-prod", old, deploytest.StackOptions{Desired: 2})
	cfg := writePromoteConfig(t, staging, prod, "web-staging", "web-prod", fmt.Sprintf(`  assume_role {
    role_arn     = %q
    session_name = "phoenix-prod"
  }
`, role))
	ctx := context.Background()
	promote := func() (string, int, error) {
		return runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg)
	}

	staging.SB.ResetCalls()
	out, code, err := promote()
	if code != 3 || !strings.Contains(out+fmt.Sprint(err), "is not authorized to perform: sts:AssumeRole on resource: "+role) {
		t.Fatalf("promote through a role that does not trust staging: exit %d: %v\n%s", code, err, out)
	}
	if err := staging.SB.TrustRole(role, sandbox.AccountID); err != nil {
		t.Fatal(err)
	}
	out, code, err = promote()
	want := "which prod's account " + prodAccount + " may not use (kms:DescribeKey: AccessDeniedException)"
	if code != 3 || !strings.Contains(out+fmt.Sprint(err), want) || !strings.Contains(out+fmt.Sprint(err), key) {
		t.Fatalf("promote of an image under a key prod may not use: exit %d: %v\n%s", code, err, out)
	}
	if n := sandbox.MutatingCalls(staging.SB.Calls()) - staging.SB.Calls()["sts"]["AssumeRole"]; n != 0 {
		t.Fatalf("refused promotes made %d mutating calls: %v", n, staging.SB.Calls())
	}

	if _, err := kms.NewFromConfig(staging.Config).PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(deploytest.SharedAutoScalingKeyPolicy(prodAccount))}); err != nil {
		t.Fatal(err)
	}
	out, code, err = promote()
	if code != 0 {
		t.Fatalf("promote: exit %d: %v\n%s", code, err, out)
	}
	snap := aws.ToString(describeImage(t, staging, x).BlockDeviceMappings[0].Ebs.SnapshotId)
	if w := "web: granted prod (account " + prodAccount + ") launch permission on " + x + ", create-volume permission on " + snap; !strings.Contains(out, w) {
		t.Errorf("no line %q:\n%s", w, out)
	}
	copies := prod.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 || aws.ToString(copies[0].OwnerId) != prodAccount {
		t.Fatalf("copies in prod's account: %+v\n%s", copies, out)
	}
	y := aws.ToString(copies[0].ImageId)
	if !strings.Contains(out, "\nweb: succeeded: ") || !strings.Contains(out, "healthy 2/2 on "+y) {
		t.Errorf("the deploy's own output is missing:\n%s", out)
	}
	for id, ami := range prod.InstanceAMIs("web-prod") {
		if ami != y {
			t.Errorf("prod instance %s runs %s, want the copy %s", id, ami, y)
		}
	}
	// The copy's snapshot is prod's, under prod's default EBS key.
	cs := aws.ToString(copies[0].BlockDeviceMappings[0].Ebs.SnapshotId)
	ds, err := prod.Clients.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{cs}})
	if err != nil || len(ds.Snapshots) != 1 || aws.ToString(ds.Snapshots[0].OwnerId) != prodAccount || strings.Contains(aws.ToString(ds.Snapshots[0].KmsKeyId), ":"+sandbox.AccountID+":") {
		t.Errorf("copy's snapshot %s: %+v %v", cs, ds, err)
	}
	// Staging's account holds no copy; prod's account sees staging's
	// image (in staging's region) only because it is shared.
	if n := len(staging.ImagesTagged(deployer.PromotedFromTag)); n != 0 {
		t.Errorf("%d copies in staging's account", n)
	}
	prodInStagingRegion := ec2.NewFromConfig(sandboxtest.ConfigAs(t, staging.SB, staging.Region, sandboxtest.SecondAccessKey))
	shared, err := prodInStagingRegion.DescribeImages(ctx, &ec2.DescribeImagesInput{ExecutableUsers: []string{"self"}, Owners: []string{sandbox.AccountID}})
	if err != nil || len(shared.Images) != 1 || aws.ToString(shared.Images[0].ImageId) != x || shared.Images[0].State != ec2types.ImageStateAvailable {
		t.Errorf("staging's images prod may launch: %+v %v", shared, err)
	}
	// The fixtures' cleanups empty both accounts; the owner fixture checks
	// the inventory of every account of the sandbox.
}
