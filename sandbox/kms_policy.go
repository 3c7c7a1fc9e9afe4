package sandbox

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// One evaluator decides every KMS permission in the sandbox: may principal
// P perform kms:Op on key K? It reads the key policy and the key's grants
// the way KMS does:
//
//   - No principal has any permission to a KMS key unless a key policy
//     statement or a grant allows it, and an explicit Deny always wins.
//     https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
//   - A statement naming the account ("arn:aws:iam::ACCOUNT:root" or the
//     bare account id) delegates to IAM: principals of the account get
//     what their IAM policies allow. The sandbox has no IAM; API callers are
//     taken to be allowed, and service-linked roles get nothing (their
//     permissions policies have no KMS actions).
//     https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
//     https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
//   - Conditions understood: kms:CallerAccount, kms:ViaService and
//     kms:GrantIsForAWSResource with the String and Bool operators.
//     https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html
//   - A grant allows its grantee the grant's operations, within its
//     constraints.
//     https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
//
// Strict where the sandbox cannot know better (docs/sandbox.md): an Allow
// statement with NotAction, NotPrincipal, NotResource or a condition the
// sandbox does not understand allows nothing; a Deny statement with a
// condition the sandbox does not understand applies.

// kmsPrincipal is the AWS principal a KMS permission is checked for.
type kmsPrincipal struct {
	ARN     string // IAM user or role ARN (of an assumed-role session: the role)
	Session string // assumed-role session ARN, or ""
	Account string
	// IAM says whether the principal's IAM policies allow it the KMS
	// actions that a key policy delegates to its account: true for API
	// callers (the sandbox has no IAM), false for service-linked roles.
	IAM bool
}

// accountCaller is the principal of an account's static credentials
// (what GetCallerIdentity answers for them).
func accountCaller(account string) kmsPrincipal {
	return kmsPrincipal{ARN: "arn:aws:iam::" + account + ":user/sandbox", Account: account, IAM: true}
}

// serviceLinkedRole is a service-linked role acting for its service.
func serviceLinkedRole(arn string) kmsPrincipal {
	return kmsPrincipal{ARN: arn, Account: accountOfARN(arn)}
}

// principal is the caller of this request: a session of a role acts as
// a principal of the role's account.
func (c *call) principal() kmsPrincipal {
	if s, ok := c.w.sessions[c.access]; ok && c.w.now().Before(s.Expires) {
		p := kmsPrincipal{ARN: s.RoleARN, Account: c.r.Account, IAM: true}
		if m := roleARN.FindStringSubmatch(s.RoleARN); m != nil {
			p.Session = "arn:aws:sts::" + m[1] + ":assumed-role/" + m[2] + "/" + s.SessionName
		}
		if strings.Contains(s.RoleARN, ":role/aws-service-role/") {
			p.IAM = false
		}
		return p
	}
	return accountCaller(c.r.Account)
}

// kmsRequest is the request context of one permission check.
type kmsRequest struct {
	Action string // "kms:CreateGrant"
	// ViaService is set when an AWS service uses the key on the
	// principal's behalf ("ec2.eu-west-1.amazonaws.com").
	ViaService string
	// GrantIsForAWSResource is set for CreateGrant, ListGrants and
	// RevokeGrant: true when an AWS service integrated with KMS calls.
	GrantIsForAWSResource *bool
	// EncryptionContext is the request's encryption context (cryptographic
	// operations; EBS uses aws:ebs:id).
	EncryptionContext map[string]string
}

// keyPolicy is a parsed key policy.
type keyPolicy struct {
	Statements []policyStatement
}

type policyStatement struct {
	Sid                     string
	Effect                  string
	Principal, NotPrincipal *policyPrincipals
	Action, NotAction       []string
	Resource, NotResource   []string
	hasAction, hasNotAction bool
	hasRes, hasNotRes       bool
	Conditions              []policyCondition
}

type policyPrincipals struct {
	Any   bool     // "*" or {"AWS": "*"}
	AWS   []string // ARNs and account ids
	Other []string // service, federated and canonical-user principals
}

type policyCondition struct {
	Operator string
	Key      string
	Values   []string
}

// maxKeyPolicy is the key policy size limit (32 KiB).
// https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html#key-policy-limit
const maxKeyPolicy = 32768

func malformedPolicy(format string, args ...any) *APIError {
	return kmsErr("MalformedPolicyDocumentException", fmt.Sprintf(format, args...))
}

var (
	principalAccount = regexp.MustCompile(`^\d{12}$`)
	principalIAM     = regexp.MustCompile(`^arn:aws:iam::\d{12}:(root|user/.+|role/.+)$`)
	principalSTS     = regexp.MustCompile(`^arn:aws:sts::\d{12}:(assumed-role|federated-user)/.+$`)
)

// parseKeyPolicy checks a key policy document as PutKeyPolicy and
// CreateKey do and parses it.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html
func parseKeyPolicy(text string) (*keyPolicy, *APIError) {
	if len(text) > maxKeyPolicy {
		return nil, kmsErr("LimitExceededException", "The key policy exceeds the maximum size of 32768 bytes")
	}
	for _, r := range text {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xff) {
			return nil, malformedPolicy("The key policy contains a character that is not allowed: %q", r)
		}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &top); err != nil || top == nil {
		return nil, malformedPolicy("The key policy is not a valid JSON policy document")
	}
	for k := range top {
		switch k {
		case "Version", "Id", "Statement":
		default:
			return nil, malformedPolicy("The key policy has an unknown element %s", k)
		}
	}
	if v, ok := top["Version"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || (s != "2012-10-17" && s != "2008-10-17") {
			return nil, malformedPolicy("The key policy has an invalid Version")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return nil, malformedPolicy("The key policy has no Statement")
	}
	var stmts []map[string]json.RawMessage
	if json.Unmarshal(raw, &stmts) != nil {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil || one == nil {
			return nil, malformedPolicy("The key policy's Statement is neither a statement nor a list of statements")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return nil, malformedPolicy("The key policy has no Statement")
	}
	kp := &keyPolicy{}
	for _, s := range stmts {
		st, err := parseStatement(s)
		if err != nil {
			return nil, err
		}
		kp.Statements = append(kp.Statements, st)
	}
	return kp, nil
}

func parseStatement(s map[string]json.RawMessage) (policyStatement, *APIError) {
	var st policyStatement
	for k, v := range s {
		var err error
		switch k {
		case "Sid":
			err = json.Unmarshal(v, &st.Sid)
		case "Effect":
			err = json.Unmarshal(v, &st.Effect)
		case "Principal":
			st.Principal, err = parsePrincipals(v)
		case "NotPrincipal":
			st.NotPrincipal, err = parsePrincipals(v)
		case "Action":
			st.Action, err = stringList(v)
			st.hasAction = true
		case "NotAction":
			st.NotAction, err = stringList(v)
			st.hasNotAction = true
		case "Resource":
			st.Resource, err = stringList(v)
			st.hasRes = true
		case "NotResource":
			st.NotResource, err = stringList(v)
			st.hasNotRes = true
		case "Condition":
			st.Conditions, err = parsePolicyConditions(v)
		default:
			return st, malformedPolicy("The key policy has a statement with an unknown element %s", k)
		}
		if err != nil {
			return st, malformedPolicy("The key policy has a statement whose %s is not valid: %v", k, err)
		}
	}
	if st.Effect != "Allow" && st.Effect != "Deny" {
		return st, malformedPolicy("The key policy has a statement whose Effect is neither Allow nor Deny")
	}
	if st.Principal == nil && st.NotPrincipal == nil {
		return st, malformedPolicy("Policy contains a statement with no principal.")
	}
	if st.hasAction && st.hasNotAction || st.hasRes && st.hasNotRes || st.Principal != nil && st.NotPrincipal != nil {
		return st, malformedPolicy("The key policy has a statement with both an element and its Not form")
	}
	return st, nil
}

// stringList reads a policy element that is a string or a list of strings.
func stringList(v json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("not a string or a list of strings")
	}
	return many, nil
}

func parsePrincipals(v json.RawMessage) (*policyPrincipals, error) {
	var star string
	if json.Unmarshal(v, &star) == nil {
		if star != "*" {
			return nil, fmt.Errorf("a principal is \"*\" or an object")
		}
		return &policyPrincipals{Any: true}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return nil, fmt.Errorf("a principal is \"*\" or an object")
	}
	p := &policyPrincipals{}
	for kind, raw := range m {
		list, err := stringList(raw)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "AWS":
			for _, a := range list {
				switch {
				case a == "*":
					p.Any = true
				case principalAccount.MatchString(a), principalIAM.MatchString(a), principalSTS.MatchString(a):
					p.AWS = append(p.AWS, a)
				default:
					return nil, fmt.Errorf("Policy contains a statement with one or more invalid principals.")
				}
			}
		case "Service", "Federated", "CanonicalUser":
			p.Other = append(p.Other, list...)
		default:
			return nil, fmt.Errorf("unknown principal type %s", kind)
		}
	}
	return p, nil
}

func parsePolicyConditions(v json.RawMessage) ([]policyCondition, error) {
	var ops map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &ops); err != nil {
		return nil, fmt.Errorf("a condition is an object of operators")
	}
	var out []policyCondition
	for op, keys := range ops {
		for key, raw := range keys {
			vals, err := conditionValues(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, policyCondition{Operator: op, Key: key, Values: vals})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Operator != out[j].Operator {
			return out[i].Operator < out[j].Operator
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// conditionValues reads a condition's values: strings, booleans or
// numbers, alone or in a list.
func conditionValues(raw json.RawMessage) ([]string, error) {
	var any1 any
	if err := json.Unmarshal(raw, &any1); err != nil {
		return nil, err
	}
	list, ok := any1.([]any)
	if !ok {
		list = []any{any1}
	}
	var out []string
	for _, x := range list {
		switch t := x.(type) {
		case string:
			out = append(out, t)
		case bool:
			out = append(out, strconv.FormatBool(t))
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		default:
			return nil, fmt.Errorf("a condition value is a string, boolean or number")
		}
	}
	return out, nil
}

// allows reports whether principals names p for an Allow statement. The
// account itself stands for the principals its IAM policies allow.
func (ps *policyPrincipals) allows(p kmsPrincipal) bool {
	if ps.Any {
		return true
	}
	for _, a := range ps.AWS {
		if a == p.ARN || p.Session != "" && a == p.Session {
			return true
		}
		if (a == p.Account || a == "arn:aws:iam::"+p.Account+":root") && p.IAM {
			return true
		}
	}
	return false
}

// covers reports whether principals names p for a Deny statement: an
// account covers every principal in it.
func (ps *policyPrincipals) covers(p kmsPrincipal) bool {
	if ps.Any {
		return true
	}
	for _, a := range ps.AWS {
		if a == p.ARN || p.Session != "" && a == p.Session || a == p.Account || a == "arn:aws:iam::"+p.Account+":root" {
			return true
		}
	}
	return false
}

// globMatch matches IAM-style wildcards (* and ?).
func policyGlob(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	var expr strings.Builder
	expr.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			expr.WriteString(".*")
		case '?':
			expr.WriteString(".")
		default:
			expr.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	expr.WriteString("$")
	ok, err := regexp.MatchString(expr.String(), s)
	return err == nil && ok
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if policyGlob(p, s, fold) {
			return true
		}
	}
	return false
}

// conditionValue is the request's value of a condition key the sandbox
// understands; known is false for any other key.
func conditionValue(key string, p kmsPrincipal, req kmsRequest) (value string, present, known bool) {
	switch strings.ToLower(key) {
	case "kms:calleraccount":
		return p.Account, true, true
	case "kms:viaservice":
		return req.ViaService, req.ViaService != "", true
	case "kms:grantisforawsresource":
		if req.GrantIsForAWSResource == nil {
			return "", false, true
		}
		return strconv.FormatBool(*req.GrantIsForAWSResource), true, true
	}
	return "", false, false
}

// evalCondition evaluates one condition; known is false for an operator
// or key the sandbox does not understand.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
func evalCondition(c policyCondition, p kmsPrincipal, req kmsRequest) (holds, known bool) {
	op, ifExists := strings.CutSuffix(c.Operator, "IfExists")
	var match func(want, got string) bool
	negated := false
	switch op {
	case "StringEquals":
		match = func(w, g string) bool { return w == g }
	case "StringNotEquals":
		match, negated = func(w, g string) bool { return w == g }, true
	case "StringEqualsIgnoreCase":
		match = strings.EqualFold
	case "StringNotEqualsIgnoreCase":
		match, negated = strings.EqualFold, true
	case "StringLike":
		match = func(w, g string) bool { return policyGlob(w, g, false) }
	case "StringNotLike":
		match, negated = func(w, g string) bool { return policyGlob(w, g, false) }, true
	case "Bool":
		match = strings.EqualFold
	default:
		return false, false
	}
	got, present, known := conditionValue(c.Key, p, req)
	if !known {
		return false, false
	}
	if !present {
		// A missing key satisfies only ...IfExists and the negated operators.
		return ifExists || negated, true
	}
	found := false
	for _, w := range c.Values {
		found = found || match(w, got)
	}
	return found != negated, true
}

// decide applies the key policy to one request.
func (kp *keyPolicy) decide(keyARN string, p kmsPrincipal, req kmsRequest) (allow, deny bool) {
	for _, st := range kp.Statements {
		switch st.Effect {
		case "Deny":
			deny = deny || st.denies(keyARN, p, req)
		case "Allow":
			allow = allow || st.allows(keyARN, p, req)
		}
	}
	return allow, deny
}

func (st *policyStatement) allows(keyARN string, p kmsPrincipal, req kmsRequest) bool {
	// Without Action or Resource a statement has no effect (PutKeyPolicy);
	// the Not forms are not read for an Allow (strict).
	if st.Principal == nil || !st.hasAction || !st.hasRes {
		return false
	}
	if !st.Principal.allows(p) || !anyGlob(st.Action, req.Action, true) || !anyGlob(st.Resource, keyARN, false) {
		return false
	}
	for _, c := range st.Conditions {
		if holds, known := evalCondition(c, p, req); !holds || !known {
			return false
		}
	}
	return true
}

func (st *policyStatement) denies(keyARN string, p kmsPrincipal, req kmsRequest) bool {
	if !st.hasAction && !st.hasNotAction || !st.hasRes && !st.hasNotRes {
		return false
	}
	switch {
	case st.Principal != nil && !st.Principal.covers(p):
		return false
	case st.NotPrincipal != nil && (st.NotPrincipal.Any || contains(st.NotPrincipal.AWS, p.ARN) || p.Session != "" && contains(st.NotPrincipal.AWS, p.Session)):
		return false
	case st.hasAction && !anyGlob(st.Action, req.Action, true), st.hasNotAction && anyGlob(st.NotAction, req.Action, true):
		return false
	case st.hasRes && !anyGlob(st.Resource, keyARN, false), st.hasNotRes && anyGlob(st.NotResource, keyARN, false):
		return false
	}
	for _, c := range st.Conditions {
		// A condition the sandbox does not understand is taken to hold.
		if holds, known := evalCondition(c, p, req); known && !holds {
			return false
		}
	}
	return true
}

// grantAllows reports whether grant g allows p the request. Encryption
// context constraints apply to the operations that take an encryption
// context (not DescribeKey or RetireGrant); a SourceArn constraint is
// never met by the sandbox's requests, which carry no aws:SourceArn.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
// https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html#grant-constraints
func (g *KMSGrant) allows(p kmsPrincipal, req kmsRequest) bool {
	op := strings.TrimPrefix(req.Action, "kms:")
	if !contains(g.Operations, op) || g.Grantee == "" {
		return false
	}
	root := "arn:aws:iam::" + p.Account + ":root"
	if g.Grantee != p.ARN && (p.Session == "" || g.Grantee != p.Session) && !((g.Grantee == root || g.Grantee == p.Account) && p.IAM) {
		return false
	}
	c := g.Constraints
	if c == nil || op == "RetireGrant" {
		return true
	}
	if c.SourceArn != "" {
		return false
	}
	if op == "DescribeKey" {
		return true
	}
	if c.EncryptionContextEquals != nil && !sameContext(c.EncryptionContextEquals, req.EncryptionContext) {
		return false
	}
	if c.EncryptionContextSubset != nil {
		for k, v := range c.EncryptionContextSubset {
			if got, ok := req.EncryptionContext[k]; !ok || got != v {
				return false
			}
		}
	}
	return true
}

func sameContext(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if got, ok := b[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// keyPolicy returns the key's parsed policy.
func (k *KMSKey) keyPolicy() *keyPolicy {
	if k.policy == nil {
		kp, err := parseKeyPolicy(k.policyText())
		if err != nil {
			kp = &keyPolicy{} // unreachable: stored policies were checked
		}
		k.policy = kp
	}
	return k.policy
}

// policyText is the key's policy document: what was set, or KMS's
// default key policy for a key created without one.
func (k *KMSKey) policyText() string {
	if k.Policy == "" {
		return defaultKeyPolicy(accountOfARN(k.ARN))
	}
	return k.Policy
}

// authorize decides whether p may do req on key k: a Deny in the key
// policy wins; otherwise a key policy Allow or a grant allows it.
func (k *KMSKey) authorize(p kmsPrincipal, req kmsRequest) (allowed, denied bool) {
	allow, deny := k.keyPolicy().decide(k.ARN, p, req)
	if deny {
		return false, true
	}
	if allow {
		return true, false
	}
	for i := range k.Grants {
		if k.Grants[i].allows(p, req) {
			return true, false
		}
	}
	return false, false
}

// kmsAccess checks the caller of a KMS API action on key k and answers
// KMS's AccessDeniedException when it may not.
func (c *call) kmsAccess(k *KMSKey, action string, req kmsRequest) *APIError {
	if accountOfARN(k.ARN) != c.r.Account && !kmsCrossAccount[action] {
		return kmsErr("NotFoundException", "Key '"+k.ARN+"' does not exist")
	}
	p := c.principal()
	req.Action = action
	ok, denied := k.authorize(p, req)
	if ok {
		return nil
	}
	who := p.ARN
	if p.Session != "" {
		who = p.Session
	}
	why := "because no resource-based policy allows the " + action + " action"
	if denied {
		why = "with an explicit deny in a resource-based policy"
	}
	return kmsErr("AccessDeniedException", "User: "+who+" is not authorized to perform: "+action+" on resource: "+k.ARN+" "+why)
}

// kmsCrossAccount are the KMS actions another account may call on a key
// (named by its ARN) when the key policy or a grant allows it; every
// other action works on the caller's own keys only ("Cross-account use:
// No" in each action's API reference).
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
// https://docs.aws.amazon.com/kms/latest/developerguide/kms-api-permissions-reference.html
var kmsCrossAccount = map[string]bool{
	"kms:DescribeKey": true, "kms:CreateGrant": true, "kms:ListGrants": true, "kms:RetireGrant": true, "kms:RevokeGrant": true,
	"kms:Encrypt": true, "kms:Decrypt": true, "kms:ReEncryptFrom": true, "kms:ReEncryptTo": true,
	"kms:GenerateDataKey": true, "kms:GenerateDataKeyWithoutPlaintext": true,
}

// ebsLaunchOperations are the operations AWS's Auto Scaling guide gives
// the service-linked role on a customer managed key for encrypted volumes
// (Encrypt, Decrypt, ReEncrypt*, GenerateDataKey*, DescribeKey and
// CreateGrant for AWS resources; as a grant: the eight below). The sandbox
// requires every one of them for every launch (the stricter reading).
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
var ebsLaunchOperations = []string{
	"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant",
}

// keyAllowsLaunch reports whether p may use key k for the encrypted
// volumes of a launch in region r: EC2 uses the key on p's behalf
// (kms:ViaService ec2.REGION.amazonaws.com), the grant EBS creates for the
// volume is for an AWS resource (kms:GrantIsForAWSResource), and the
// encryption context names the new volume (aws:ebs:id), which no grant
// constraint written before the launch can name.
// https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
// https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource
// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html
func (r *Region) keyAllowsLaunch(k *KMSKey, p kmsPrincipal) bool {
	via := "ec2." + r.Name + ".amazonaws.com"
	ctx := map[string]string{"aws:ebs:id": newID("vol")}
	forAWS := true
	for _, op := range ebsLaunchOperations {
		req := kmsRequest{Action: "kms:" + op, ViaService: via}
		switch op {
		case "DescribeKey":
		case "CreateGrant":
			req.GrantIsForAWSResource, req.EncryptionContext = &forAWS, ctx
		default:
			req.EncryptionContext = ctx
		}
		if ok, _ := k.authorize(p, req); !ok {
			return false
		}
	}
	return true
}

// policyJSON renders a policy document the way KMS returns the policies
// it writes itself.
func policyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

type policyDocOut struct {
	Version   string
	Id        string
	Statement []policyStatementOut
}

type policyStatementOut struct {
	Sid       string
	Effect    string
	Principal map[string]string
	Action    any
	Resource  string
	Condition map[string]map[string]string `json:",omitempty"`
}

// defaultKeyPolicy is the key policy KMS gives a key created through the
// API without one: the account may use IAM policies to allow every KMS
// action on the key.
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
func defaultKeyPolicy(account string) string {
	return policyJSON(policyDocOut{Version: "2012-10-17", Id: "key-default-1", Statement: []policyStatementOut{{
		Sid: "Enable IAM User Permissions", Effect: "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"},
		Action:    "kms:*", Resource: "*",
	}}})
}

// ebsManagedKeyPolicy is the policy of the AWS managed key aws/ebs: every
// principal of the account may use it through EC2 in its region, and the
// account may read its metadata. Nobody may change it.
// https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
// https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
func ebsManagedKeyPolicy(account, region string) string {
	return policyJSON(policyDocOut{Version: "2012-10-17", Id: "auto-ebs-2", Statement: []policyStatementOut{{
		Sid: "Allow access through EBS for all principals in the account that are authorized to use EBS", Effect: "Allow",
		Principal: map[string]string{"AWS": "*"},
		Action:    []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"},
		Resource:  "*",
		Condition: map[string]map[string]string{"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": "ec2." + region + ".amazonaws.com"}},
	}, {
		Sid: "Allow direct access to key metadata to the account", Effect: "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"},
		Action:    []string{"kms:Describe*", "kms:Get*", "kms:List*"},
		Resource:  "*",
	}}})
}
