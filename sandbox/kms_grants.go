package sandbox

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Key policies (GetKeyPolicy, PutKeyPolicy, ListKeyPolicies) and grants
// (CreateGrant, ListGrants, RetireGrant, RevokeGrant, ListRetirableGrants).
// Who may then use a key is decided by the evaluator in kms_policy.go.

// checkNewPolicy checks a policy that CreateKey or PutKeyPolicy is to set
// on key keyARN. Unless the caller bypasses it, the lockout safety check
// refuses a policy that would not let the caller change the policy again.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#prevent-unmanageable-key
func (c *call) checkNewPolicy(text string, bypass bool, keyARN string) (*keyPolicy, *APIError) {
	kp, err := parseKeyPolicy(text)
	if err != nil {
		return nil, err
	}
	if !bypass {
		if allow, deny := kp.decide(keyARN, c.principal(), kmsRequest{Action: "kms:PutKeyPolicy"}); !allow || deny {
			return nil, malformedPolicy("The new key policy will not allow you to update the key policy in the future.")
		}
	}
	return kp, nil
}

// checkPolicyName accepts the one key policy name KMS has.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
func checkPolicyName(name *string) *APIError {
	if name != nil && *name != "default" {
		return kmsErr("NotFoundException", "No such policy exists")
	}
	return nil
}

// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
func kmsGetKeyPolicy(c *call) (any, *APIError) {
	var in struct {
		KeyId      string
		PolicyName *string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := c.kmsAccess(k, "kms:GetKeyPolicy", kmsRequest{}); err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	return map[string]any{"Policy": k.policyText(), "PolicyName": "default"}, nil
}

// PutKeyPolicy replaces a customer managed key's policy. The policies of
// AWS managed keys cannot be changed.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
// https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
func kmsPutKeyPolicy(c *call) (any, *APIError) {
	var in struct {
		KeyId                          string
		Policy                         *string
		PolicyName                     *string
		BypassPolicyLockoutSafetyCheck bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Policy == nil {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null")
	}
	k, err := kmsCustomerKey(c, in.KeyId, "kms:PutKeyPolicy")
	if err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	kp, err := c.checkNewPolicy(*in.Policy, in.BypassPolicyLockoutSafetyCheck, k.ARN)
	if err != nil {
		return nil, err
	}
	k.Policy, k.policy = *in.Policy, kp
	return struct{}{}, nil
}

// https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeyPolicies.html
func kmsListKeyPolicies(c *call) (any, *APIError) {
	var in struct {
		KeyId  string
		Limit  int
		Marker string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := c.kmsAccess(k, "kms:ListKeyPolicies", kmsRequest{}); err != nil {
		return nil, err
	}
	names, out, err := kmsPage([]string{"default"}, in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	out["PolicyNames"] = names
	return out, nil
}

// grantOperations are the grant operations KMS knows (GrantOperation);
// symmetricGrantOperations those a symmetric encryption key supports.
// https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#terms-grant-operations
var (
	grantOperations = []string{
		"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
		"Sign", "Verify", "GetPublicKey", "CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret", "Encapsulate", "Decapsulate",
	}
	symmetricGrantOperations = []string{
		"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
		"CreateGrant", "RetireGrant", "DescribeKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
	}
	grantName = regexp.MustCompile(`^[a-zA-Z0-9:/_-]{1,256}$`)
	grantID   = regexp.MustCompile(`^[a-zA-Z0-9]{1,128}$`)
)

// validGranteePrincipal accepts the principal forms a grant can name:
// an account, an IAM user or role, an assumed-role or federated user.
func validGranteePrincipal(p string) bool {
	return principalAccount.MatchString(p) || principalIAM.MatchString(p) || principalSTS.MatchString(p)
}

func kmsValidation(format string, args ...any) *APIError {
	return kmsErr("ValidationException", fmt.Sprintf(format, args...))
}

var dryRunOK = kmsErr("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")

// CreateGrant adds a grant. A retry with the same Name and identical
// parameters returns the grant it made first (with a new grant token).
// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
// https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html
func kmsCreateGrant(c *call) (any, *APIError) {
	var in struct {
		KeyId                    string
		GranteePrincipal         string
		GranteeServicePrincipal  string
		RetiringPrincipal        string
		RetiringServicePrincipal string
		Operations               []string
		Name                     string
		Constraints              *KMSGrantConstraints
		GrantTokens              []string // the sandbox is consistent at once: tokens are not needed
		DryRun                   bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	switch {
	case in.GranteePrincipal == "" && in.GranteeServicePrincipal == "":
		return nil, kmsValidation("1 validation error detected: Value null at 'granteePrincipal' failed to satisfy constraint: Member must not be null")
	case in.GranteePrincipal != "" && in.GranteeServicePrincipal != "":
		return nil, kmsValidation("You must specify either GranteePrincipal or GranteeServicePrincipal, but not both.")
	case in.RetiringPrincipal != "" && in.RetiringServicePrincipal != "":
		return nil, kmsValidation("You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both.")
	case in.GranteeServicePrincipal != "" && (in.Constraints == nil || in.Constraints.SourceArn == ""):
		return nil, kmsValidation("A grant for a GranteeServicePrincipal requires a SourceArn grant constraint.")
	case in.GranteeServicePrincipal != "" && in.RetiringPrincipal == "" && in.RetiringServicePrincipal == "":
		return nil, kmsValidation("A grant for a GranteeServicePrincipal requires a RetiringPrincipal or RetiringServicePrincipal.")
	case in.GranteePrincipal != "" && !validGranteePrincipal(in.GranteePrincipal):
		return nil, kmsValidation("Invalid principal: %s", in.GranteePrincipal)
	case in.RetiringPrincipal != "" && !validGranteePrincipal(in.RetiringPrincipal):
		return nil, kmsValidation("Invalid principal: %s", in.RetiringPrincipal)
	case len(in.Operations) == 0:
		return nil, kmsValidation("1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null")
	case in.Name != "" && !grantName.MatchString(in.Name):
		return nil, kmsValidation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", in.Name)
	}
	var unknown, unsupported []string
	for _, op := range in.Operations {
		switch {
		case !contains(grantOperations, op):
			unknown = append(unknown, op)
		case !contains(symmetricGrantOperations, op):
			unsupported = append(unsupported, op)
		}
	}
	if len(unknown) > 0 {
		return nil, kmsValidation("1 validation error detected: Value '[%s]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [%s]]",
			strings.Join(unknown, ", "), strings.Join(grantOperations, ", "))
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	if len(unsupported) > 0 {
		return nil, kmsValidation("Grant operations [%s] are not supported for KMS key %s with key spec %s", strings.Join(unsupported, ", "), k.ARN, k.Spec)
	}
	if k.State == "PendingDeletion" {
		return nil, kmsErr("KMSInvalidStateException", k.ARN+" is pending deletion.")
	}
	notForAWS := false
	if err := c.kmsAccess(k, "kms:CreateGrant", kmsRequest{GrantIsForAWSResource: &notForAWS}); err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRunOK
	}
	token := newGrantToken()
	if in.Name != "" {
		for i := range k.Grants {
			g := &k.Grants[i]
			if g.Name == in.Name && g.Grantee == in.GranteePrincipal && g.GranteeService == in.GranteeServicePrincipal &&
				g.Retiring == in.RetiringPrincipal && g.RetiringService == in.RetiringServicePrincipal &&
				sameSet(g.Operations, in.Operations) && sameConstraints(g.Constraints, in.Constraints) {
				g.Tokens = append(g.Tokens, token)
				return map[string]any{"GrantId": g.ID, "GrantToken": token}, nil
			}
		}
	}
	g := KMSGrant{
		ID: randHex(64), Tokens: []string{token}, Grantee: in.GranteePrincipal, GranteeService: in.GranteeServicePrincipal,
		Operations: append([]string(nil), in.Operations...), Name: in.Name, Retiring: in.RetiringPrincipal,
		RetiringService: in.RetiringServicePrincipal, Constraints: in.Constraints, Created: c.w.now(),
	}
	k.Grants = append(k.Grants, g)
	return map[string]any{"GrantId": g.ID, "GrantToken": token}, nil
}

// newGrantToken makes an opaque grant token.
func newGrantToken() string { return "AQpA" + randHex(156) }

func sameSet(a, b []string) bool {
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "\x00") == strings.Join(y, "\x00")
}

func sameConstraints(a, b *KMSGrantConstraints) bool {
	if a == nil || b == nil {
		return a == b
	}
	eq := func(x, y map[string]string) bool { return (x == nil) == (y == nil) && sameContext(x, y) }
	return a.SourceArn == b.SourceArn && eq(a.EncryptionContextEquals, b.EncryptionContextEquals) && eq(a.EncryptionContextSubset, b.EncryptionContextSubset)
}

// grantEntry renders a GrantListEntry.
func grantEntry(k *KMSKey, g *KMSGrant) map[string]any {
	m := map[string]any{
		"KeyId": k.ARN, "GrantId": g.ID, "CreationDate": float64(g.Created.UnixMilli()) / 1000,
		"IssuingAccount": "arn:aws:iam::" + accountOfARN(k.ARN) + ":root", "Operations": g.Operations,
	}
	for key, v := range map[string]string{"Name": g.Name, "GranteePrincipal": g.Grantee, "GranteeServicePrincipal": g.GranteeService,
		"RetiringPrincipal": g.Retiring, "RetiringServicePrincipal": g.RetiringService} {
		if v != "" {
			m[key] = v
		}
	}
	if g.Constraints != nil {
		m["Constraints"] = g.Constraints
	}
	return m
}

// https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html
func kmsListGrants(c *call) (any, *APIError) {
	var in struct {
		KeyId                   string
		GrantId                 string
		GranteePrincipal        string
		GranteeServicePrincipal string
		Limit                   int
		Marker                  string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.GranteePrincipal != "" && in.GranteeServicePrincipal != "" {
		return nil, kmsValidation("You can specify either GranteePrincipal or GranteeServicePrincipal, but not both.")
	}
	if in.GrantId != "" && !grantID.MatchString(in.GrantId) {
		return nil, kmsErr("InvalidGrantIdException", "Invalid grant id "+in.GrantId)
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	notForAWS := false
	if err := c.kmsAccess(k, "kms:ListGrants", kmsRequest{GrantIsForAWSResource: &notForAWS}); err != nil {
		return nil, err
	}
	var match []*KMSGrant
	for i := range k.Grants {
		g := &k.Grants[i]
		if (in.GrantId == "" || g.ID == in.GrantId) && (in.GranteePrincipal == "" || g.Grantee == in.GranteePrincipal) &&
			(in.GranteeServicePrincipal == "" || g.GranteeService == in.GranteeServicePrincipal) {
			match = append(match, g)
		}
	}
	pg, out, err := kmsPageOf(match, in.Marker, in.Limit, 100, 50)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for _, g := range pg {
		list = append(list, grantEntry(k, g))
	}
	out["Grants"] = list
	return out, nil
}

// findGrantByToken finds the grant a grant token belongs to.
func (r *Region) findGrantByToken(token string) (*KMSKey, int) {
	for _, k := range r.KMSKeys {
		for i := range k.Grants {
			if contains(k.Grants[i].Tokens, token) {
				return k, i
			}
		}
	}
	return nil, -1
}

// RetireGrant deletes a grant named by a grant token, or by the key's ARN
// and the grant id. The retiring principal, the grantee (when the grant
// allows RetireGrant) and the account the grant was created in may retire
// it.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_RetireGrant.html
// https://docs.aws.amazon.com/kms/latest/developerguide/grant-delete.html
func kmsRetireGrant(c *call) (any, *APIError) {
	var in struct {
		GrantToken string
		KeyId      string
		GrantId    string
		DryRun     bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	var k *KMSKey
	i := -1
	switch {
	case in.GrantToken != "":
		if k, i = c.r.findGrantByToken(in.GrantToken); k == nil {
			return nil, kmsErr("InvalidGrantTokenException", "Grant token is invalid or the grant it names no longer exists")
		}
		if in.GrantId != "" && in.GrantId != k.Grants[i].ID || in.KeyId != "" && in.KeyId != k.ARN {
			return nil, kmsValidation("The grant token does not belong to grant %s of key %s", in.GrantId, in.KeyId)
		}
	case in.KeyId != "" && in.GrantId != "":
		// RetireGrant names the key by its key ARN.
		if m := kmsKeyARN.FindStringSubmatch(in.KeyId); m == nil || m[3] != "key" {
			return nil, kmsValidation("KeyId must be the key ARN of the KMS key of the grant, not %s", in.KeyId)
		}
		if !grantID.MatchString(in.GrantId) {
			return nil, kmsErr("InvalidGrantIdException", "Invalid grant id "+in.GrantId)
		}
		var err *APIError
		if k, err = c.w.resolveKMSKey(c.r, in.KeyId); err != nil {
			return nil, err
		}
		for j := range k.Grants {
			if k.Grants[j].ID == in.GrantId {
				i = j
			}
		}
		if i < 0 {
			return nil, kmsErr("NotFoundException", "Grant ID "+in.GrantId+" not found")
		}
	default:
		return nil, kmsValidation("Either GrantToken, or both KeyId and GrantId, must be specified")
	}
	g := &k.Grants[i]
	p := c.principal()
	retiring := g.Retiring != "" && (g.Retiring == p.ARN || g.Retiring == p.Session)
	grantee := g.allows(p, kmsRequest{Action: "kms:RetireGrant"})
	account := p.Account == accountOfARN(k.ARN) && p.IAM
	if !retiring && !grantee && !account {
		who := p.ARN
		if p.Session != "" {
			who = p.Session
		}
		return nil, kmsErr("AccessDeniedException", "User: "+who+" is not authorized to perform: kms:RetireGrant on resource: "+k.ARN)
	}
	if in.DryRun {
		return nil, dryRunOK
	}
	k.Grants = append(k.Grants[:i], k.Grants[i+1:]...)
	return struct{}{}, nil
}

// https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html
func kmsRevokeGrant(c *call) (any, *APIError) {
	var in struct {
		KeyId, GrantId string
		DryRun         bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.GrantId == "" {
		return nil, kmsValidation("1 validation error detected: Value null at 'grantId' failed to satisfy constraint: Member must not be null")
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	notForAWS := false
	if err := c.kmsAccess(k, "kms:RevokeGrant", kmsRequest{GrantIsForAWSResource: &notForAWS}); err != nil {
		return nil, err
	}
	if !grantID.MatchString(in.GrantId) {
		return nil, kmsErr("InvalidGrantIdException", "Invalid grant id "+in.GrantId)
	}
	for i, g := range k.Grants {
		if g.ID == in.GrantId {
			if in.DryRun {
				return nil, dryRunOK
			}
			k.Grants = append(k.Grants[:i], k.Grants[i+1:]...)
			return struct{}{}, nil
		}
	}
	return nil, kmsErr("NotFoundException", "Grant ID "+in.GrantId+" not found")
}

// ListRetirableGrants lists the grants of every key in the region whose
// retiring principal is the one given.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_ListRetirableGrants.html
func kmsListRetirableGrants(c *call) (any, *APIError) {
	var in struct {
		RetiringPrincipal        string
		RetiringServicePrincipal string
		Limit                    int
		Marker                   string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	switch {
	case in.RetiringPrincipal == "" && in.RetiringServicePrincipal == "":
		return nil, kmsValidation("1 validation error detected: Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null")
	case in.RetiringPrincipal != "" && in.RetiringServicePrincipal != "":
		return nil, kmsValidation("You must specify either RetiringPrincipal or RetiringServicePrincipal, but not both.")
	}
	type entry struct {
		k *KMSKey
		g *KMSGrant
	}
	var match []entry
	for _, k := range c.r.KMSKeys {
		for i := range k.Grants {
			g := &k.Grants[i]
			if in.RetiringPrincipal != "" && g.Retiring == in.RetiringPrincipal || in.RetiringServicePrincipal != "" && g.RetiringService == in.RetiringServicePrincipal {
				match = append(match, entry{k, g})
			}
		}
	}
	sort.SliceStable(match, func(i, j int) bool {
		if match[i].k.ARN != match[j].k.ARN {
			return match[i].k.ARN < match[j].k.ARN
		}
		return match[i].g.Created.Before(match[j].g.Created)
	})
	pg, out, err := kmsPageOf(match, in.Marker, in.Limit, 100, 50)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for _, e := range pg {
		list = append(list, grantEntry(e.k, e.g))
	}
	out["Grants"] = list
	return out, nil
}
