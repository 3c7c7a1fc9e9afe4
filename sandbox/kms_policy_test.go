package sandbox_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

var kmsNoRetry = func(o *kms.Options) { o.Retryer = aws.NopRetryer{} }

const (
	accountRoot = "arn:aws:iam::" + sandbox.AccountID + ":root"
	asgRole     = "arn:aws:iam::" + sandbox.AccountID + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
)

// testPolicy is the shape of a key policy document, for reading one back.
type testPolicy struct {
	Version   string
	Id        string
	Statement []struct {
		Sid       string
		Effect    string
		Principal map[string]any
		Action    any
		Resource  any
		Condition map[string]map[string]any
	}
}

func getPolicy(t *testing.T, c *kms.Client, key string) (string, testPolicy) {
	t.Helper()
	out, err := c.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatalf("GetKeyPolicy(%s): %v", key, err)
	}
	if aws.ToString(out.PolicyName) != "default" {
		t.Fatalf("PolicyName = %q", aws.ToString(out.PolicyName))
	}
	var p testPolicy
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		t.Fatalf("policy %q: %v", aws.ToString(out.Policy), err)
	}
	return aws.ToString(out.Policy), p
}

func TestKMSKeyPolicies(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := kms.NewFromConfig(sandboxtest.Config(t, sb, "eu-west-1"))

	// A key created without a policy has KMS's default key policy.
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("default policy")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(key.KeyMetadata.KeyId)
	_, def := getPolicy(t, c, id)
	if def.Version != "2012-10-17" || def.Id != "key-default-1" || len(def.Statement) != 1 {
		t.Fatalf("default policy %+v", def)
	}
	st := def.Statement[0]
	if st.Sid != "Enable IAM User Permissions" || st.Effect != "Allow" || st.Principal["AWS"] != accountRoot || st.Action != "kms:*" || st.Resource != "*" || st.Condition != nil {
		t.Fatalf("default statement %+v", st)
	}
	names, err := c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(id)})
	if err != nil || len(names.PolicyNames) != 1 || names.PolicyNames[0] != "default" || names.Truncated {
		t.Fatalf("ListKeyPolicies = %+v, %v", names, err)
	}

	// A policy given at creation reads back as given.
	custom := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"` + sandbox.AccountID + `"},"Action":"kms:*","Resource":"*"}]}`
	key2, err := c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(custom)})
	if err != nil {
		t.Fatal(err)
	}
	id2 := aws.ToString(key2.KeyMetadata.Arn)
	if got, _ := getPolicy(t, c, id2); got != custom {
		t.Fatalf("policy = %s, want %s", got, custom)
	}
	// PutKeyPolicy replaces it.
	put := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + accountRoot + `"},"Action":["kms:*"],"Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"` + asgRole + `"},"Action":"kms:Decrypt","Resource":"*"}]}`
	if _, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id2), Policy: aws.String(put)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := getPolicy(t, c, id2); got != put {
		t.Fatalf("policy after PutKeyPolicy = %s", got)
	}

	// The AWS managed key aws/ebs: every principal of the account through
	// EC2 in its region, and the account may read it; nobody changes it.
	_, ebs := getPolicy(t, c, "alias/aws/ebs")
	if len(ebs.Statement) != 2 {
		t.Fatalf("aws/ebs policy %+v", ebs)
	}
	use, meta := ebs.Statement[0], ebs.Statement[1]
	if use.Principal["AWS"] != "*" || use.Condition["StringEquals"]["kms:CallerAccount"] != sandbox.AccountID ||
		use.Condition["StringEquals"]["kms:ViaService"] != "ec2.eu-west-1.amazonaws.com" {
		t.Fatalf("aws/ebs use statement %+v", use)
	}
	acts, _ := use.Action.([]any)
	var actions []string
	for _, a := range acts {
		actions = append(actions, a.(string))
	}
	if strings.Join(actions, ",") != "kms:Encrypt,kms:Decrypt,kms:ReEncrypt*,kms:GenerateDataKey*,kms:CreateGrant,kms:DescribeKey" {
		t.Fatalf("aws/ebs actions %v", actions)
	}
	if meta.Principal["AWS"] != accountRoot {
		t.Fatalf("aws/ebs metadata statement %+v", meta)
	}

	// Bypassing the lockout safety check makes a key the caller cannot
	// manage any more.
	roleOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + asgRole + `"},"Action":"kms:*","Resource":"*"}]}`
	locked, err := c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(roleOnly), BypassPolicyLockoutSafetyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	lockedARN := aws.ToString(locked.KeyMetadata.Arn)

	errCases := []struct {
		name string
		call func() error
		code string
	}{
		{"policy name", func() error {
			_, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(id), PolicyName: aws.String("other")}, kmsNoRetry)
			return err
		}, "NotFoundException"},
		{"not JSON", func() error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(`{"Statement": [`)}, kmsNoRetry)
			return err
		}, "MalformedPolicyDocumentException"},
		{"no principal", func() error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)}, kmsNoRetry)
			return err
		}, "MalformedPolicyDocumentException"},
		{"bad effect", func() error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}`)}, kmsNoRetry)
			return err
		}, "MalformedPolicyDocumentException"},
		{"invalid principal", func() error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}]}`)}, kmsNoRetry)
			return err
		}, "MalformedPolicyDocumentException"},
		{"lockout safety check", func() error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(id), Policy: aws.String(roleOnly)}, kmsNoRetry)
			return err
		}, "MalformedPolicyDocumentException"},
		{"AWS managed key", func() error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String("alias/aws/ebs"), Policy: aws.String(put)}, kmsNoRetry)
			return err
		}, "AccessDeniedException"},
		{"caller locked out", func() error {
			_, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(lockedARN)}, kmsNoRetry)
			return err
		}, "AccessDeniedException"},
		{"aws/ebs direct grant", func() error {
			// Only EC2 may create grants on aws/ebs (kms:ViaService).
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String("alias/aws/ebs"), GranteePrincipal: aws.String(asgRole),
				Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt}}, kmsNoRetry)
			return err
		}, "AccessDeniedException"},
	}
	for _, tc := range errCases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	// The failed PutKeyPolicy calls left the default policy in place.
	if _, p := getPolicy(t, c, id); p.Id != "key-default-1" {
		t.Fatalf("policy changed by a refused PutKeyPolicy: %+v", p)
	}

	for _, k := range []string{id, id2} {
		imgDeleteKey(t, c, k)
	}
	sb.FixtureDeleteKMSKey("eu-west-1", lockedARN) // nobody may delete it through KMS any more
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestKMSGrants(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := kms.NewFromConfig(sandboxtest.Config(t, sb, "eu-west-1"))
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("grants")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(key.KeyMetadata.Arn)
	retiring := "arn:aws:iam::" + sandbox.AccountID + ":role/retirer"
	ops := []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt, kmstypes.GrantOperationDescribeKey}
	create := func(name string, ops []kmstypes.GrantOperation) *kms.CreateGrantOutput {
		t.Helper()
		in := &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(asgRole), RetiringPrincipal: aws.String(retiring),
			Operations: ops, GrantTokens: []string{"ignored"}}
		if name != "" {
			in.Name = aws.String(name)
		}
		out, err := c.CreateGrant(ctx, in)
		if err != nil {
			t.Fatalf("CreateGrant(%s): %v", name, err)
		}
		return out
	}
	g1 := create("phoenix", ops)
	// A retry with the same name and parameters returns the same grant
	// with a new token; a different operation list makes a new grant.
	again := create("phoenix", []kmstypes.GrantOperation{kmstypes.GrantOperationDescribeKey, kmstypes.GrantOperationDecrypt})
	if aws.ToString(again.GrantId) != aws.ToString(g1.GrantId) || aws.ToString(again.GrantToken) == aws.ToString(g1.GrantToken) {
		t.Fatalf("retry = %s/%s, first %s/%s", aws.ToString(again.GrantId), aws.ToString(again.GrantToken), aws.ToString(g1.GrantId), aws.ToString(g1.GrantToken))
	}
	g2 := create("phoenix", []kmstypes.GrantOperation{kmstypes.GrantOperationEncrypt})
	g3 := create("", ops)
	if aws.ToString(g2.GrantId) == aws.ToString(g1.GrantId) || aws.ToString(g3.GrantId) == aws.ToString(g1.GrantId) {
		t.Fatal("a different grant got the first grant's id")
	}
	other, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String("arn:aws:iam::" + sandbox.AccountID + ":role/other"),
		Operations: ops, Constraints: &kmstypes.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "web"}}})
	if err != nil {
		t.Fatal(err)
	}

	all, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn)})
	if err != nil || len(all.Grants) != 4 || all.Truncated {
		t.Fatalf("ListGrants = %+v, %v", all, err)
	}
	first := all.Grants[0]
	if aws.ToString(first.GrantId) != aws.ToString(g1.GrantId) || aws.ToString(first.KeyId) != arn || aws.ToString(first.Name) != "phoenix" ||
		aws.ToString(first.GranteePrincipal) != asgRole || aws.ToString(first.RetiringPrincipal) != retiring ||
		aws.ToString(first.IssuingAccount) != accountRoot || first.CreationDate == nil || len(first.Operations) != 2 {
		t.Fatalf("grant entry %+v", first)
	}
	if c := all.Grants[3].Constraints; c == nil || c.EncryptionContextSubset["app"] != "web" {
		t.Fatalf("constraints %+v", all.Grants[3].Constraints)
	}
	byID, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn), GrantId: g2.GrantId})
	if err != nil || len(byID.Grants) != 1 || aws.ToString(byID.Grants[0].GrantId) != aws.ToString(g2.GrantId) {
		t.Fatalf("ListGrants by id = %+v, %v", byID, err)
	}
	byGrantee, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(asgRole)})
	if err != nil || len(byGrantee.Grants) != 3 {
		t.Fatalf("ListGrants by grantee = %+v, %v", byGrantee, err)
	}
	var paged []string
	p := kms.NewListGrantsPaginator(c, &kms.ListGrantsInput{KeyId: aws.String(arn), Limit: aws.Int32(1)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Grants) != 1 {
			t.Fatalf("page of %d grants", len(pg.Grants))
		}
		paged = append(paged, aws.ToString(pg.Grants[0].GrantId))
	}
	if len(paged) != 4 || paged[3] != aws.ToString(other.GrantId) {
		t.Fatalf("paged %v", paged)
	}
	retirable, err := c.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(retiring)})
	if err != nil || len(retirable.Grants) != 3 {
		t.Fatalf("ListRetirableGrants = %+v, %v", retirable, err)
	}

	// RetireGrant by token (any of a grant's tokens), by key ARN and id;
	// RevokeGrant.
	if _, err := c.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: again.GrantToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: g2.GrantId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: g3.GrantId}); err != nil {
		t.Fatal(err)
	}
	left, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn)})
	if err != nil || len(left.Grants) != 1 || aws.ToString(left.Grants[0].GrantId) != aws.ToString(other.GrantId) {
		t.Fatalf("grants left %+v, %v", left, err)
	}
	if r, err := c.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(retiring)}); err != nil || len(r.Grants) != 0 {
		t.Fatalf("retirable after retiring = %+v, %v", r, err)
	}

	errCases := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown operation", func() error {
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(asgRole), Operations: []kmstypes.GrantOperation{"Dance"}}, kmsNoRetry)
			return err
		}, "ValidationException"},
		{"operation of another key type", func() error {
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), GranteePrincipal: aws.String(asgRole), Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationSign}}, kmsNoRetry)
			return err
		}, "ValidationException"},
		{"no grantee", func() error {
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(arn), Operations: ops}, kmsNoRetry)
			return err
		}, "ValidationException"},
		{"retired token", func() error {
			_, err := c.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g1.GrantToken}, kmsNoRetry)
			return err
		}, "InvalidGrantTokenException"},
		{"retire by key id, not ARN", func() error {
			_, err := c.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: key.KeyMetadata.KeyId, GrantId: other.GrantId}, kmsNoRetry)
			return err
		}, "ValidationException"},
		{"revoke unknown", func() error {
			_, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(arn), GrantId: g3.GrantId}, kmsNoRetry)
			return err
		}, "NotFoundException"},
		{"list limit", func() error {
			_, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(arn), Limit: aws.Int32(101)}, kmsNoRetry)
			return err
		}, "ValidationException"},
		{"retirable without principal", func() error {
			_, err := c.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{}, kmsNoRetry)
			return err
		}, "ValidationException"},
	}
	for _, tc := range errCases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	imgDeleteKey(t, c, arn)
	sandboxtest.RequireEmptyInventory(t, sb)
}
