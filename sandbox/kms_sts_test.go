package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSTSCallerIdentityAndAssumeRole(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	cfg := sandboxtest.Config(t, sb, "us-east-1")
	c := sts.NewFromConfig(cfg)
	id, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Account) != sandbox.AccountID {
		t.Fatalf("account = %q", aws.ToString(id.Account))
	}
	// A role is assumed only when its trust policy allows the caller's
	// account, its own account included.
	deployer := "arn:aws:iam::123456789012:role/deployer"
	_, err = c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(deployer), RoleSessionName: aws.String("ci")}, func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })
	if apiCode(err) != "AccessDenied" {
		t.Fatalf("AssumeRole of a role that trusts nobody: %v", err)
	}
	if err := sb.TrustRole(deployer, sandbox.AccountID); err != nil {
		t.Fatal(err)
	}
	out, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(deployer), RoleSessionName: aws.String("ci")})
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := cfg.Copy()
	cfg2.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	id2, err := sts.NewFromConfig(cfg2).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(id2.Arn), "arn:aws:sts::123456789012:assumed-role/deployer/ci"; got != want {
		t.Fatalf("assumed arn = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		name, arn, session string
	}{
		{"bad arn", "arn:aws:iam::123:role/x", "ci"},
		{"bad session", "arn:aws:iam::123456789012:role/x", "a b"},
		{"missing session", "arn:aws:iam::123456789012:role/x", ""},
	} {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(tc.arn)}
		if tc.session != "" {
			in.RoleSessionName = aws.String(tc.session)
		}
		_, err := c.AssumeRole(ctx, in, func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })
		if tc.session == "" {
			// The SDK validates required members before sending.
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if apiCode(err) != "ValidationError" {
			t.Errorf("%s: error %v, want ValidationError", tc.name, err)
		}
	}
}

func TestUnsignedRequestIsRefused(t *testing.T) {
	sb := sandboxtest.Start(t)
	resp, err := http.Post(sb.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeRegions&Version=2016-11-15"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestKMSKeysAliasesAndStates(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := kms.NewFromConfig(sandboxtest.Config(t, sb, "eu-west-1"))

	ebs, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	if err != nil {
		t.Fatal(err)
	}
	if ebs.KeyMetadata.KeyManager != kmstypes.KeyManagerTypeAws {
		t.Fatalf("alias/aws/ebs manager = %s", ebs.KeyMetadata.KeyManager)
	}
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("images")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(key.KeyMetadata.KeyId)
	if !strings.HasPrefix(aws.ToString(key.KeyMetadata.Arn), "arn:aws:kms:eu-west-1:123456789012:key/") {
		t.Fatalf("arn = %s", aws.ToString(key.KeyMetadata.Arn))
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/images"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{id, "alias/images", aws.ToString(key.KeyMetadata.Arn), "arn:aws:kms:eu-west-1:123456789012:alias/images"} {
		got, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		if err != nil {
			t.Fatalf("DescribeKey(%s): %v", ref, err)
		}
		if aws.ToString(got.KeyMetadata.KeyId) != id {
			t.Fatalf("DescribeKey(%s) = %s", ref, aws.ToString(got.KeyMetadata.KeyId))
		}
	}
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if got.KeyMetadata.KeyState != kmstypes.KeyStateDisabled || got.KeyMetadata.Enabled {
		t.Fatalf("state after disable = %s", got.KeyMetadata.KeyState)
	}
	aliases, err := c.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(aliases.Aliases) != 2 {
		t.Fatalf("aliases = %d, want aws/ebs and images", len(aliases.Aliases))
	}
	grant, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String("arn:aws:iam::123456789012:role/asg"), Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt}})
	if err != nil || aws.ToString(grant.GrantId) == "" {
		t.Fatalf("CreateGrant: %v", err)
	}

	noRetry := func(o *kms.Options) { o.Retryer = aws.NopRetryer{} }
	errCases := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown key", func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")}, noRetry)
			return err
		}, "NotFoundException"},
		{"unknown alias", func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/nope")}, noRetry)
			return err
		}, "NotFoundException"},
		{"duplicate alias", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/images"), TargetKeyId: aws.String(id)}, noRetry)
			return err
		}, "AlreadyExistsException"},
		{"reserved alias", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/aws/mine"), TargetKeyId: aws.String(id)}, noRetry)
			return err
		}, "NotAuthorizedException"},
		{"managed key", func() error {
			_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String("alias/aws/ebs")}, noRetry)
			return err
		}, "AccessDeniedException"},
		{"deletion window", func() error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(3)}, noRetry)
			return err
		}, "ValidationException"},
	}
	for _, tc := range errCases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	if len(sb.Inventory()) != 2 {
		t.Fatalf("inventory %v, want the key and its alias", sb.Inventory())
	}
	if _, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/images")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
