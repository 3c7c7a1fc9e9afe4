package sandbox

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// KMS speaks JSON 1.1 (X-Amz-Target: TrentService.<Action>).

func init() {
	register("kms", "CreateKey", kmsCreateKey)
	register("kms", "DescribeKey", kmsDescribeKey)
	register("kms", "ListKeys", kmsListKeys)
	register("kms", "EnableKey", kmsSetEnabled(true))
	register("kms", "DisableKey", kmsSetEnabled(false))
	register("kms", "ScheduleKeyDeletion", kmsScheduleKeyDeletion)
	register("kms", "CancelKeyDeletion", kmsCancelKeyDeletion)
	register("kms", "CreateAlias", kmsCreateAlias)
	register("kms", "DeleteAlias", kmsDeleteAlias)
	register("kms", "ListAliases", kmsListAliases)
	register("kms", "GetKeyPolicy", kmsGetKeyPolicy)
	register("kms", "PutKeyPolicy", kmsPutKeyPolicy)
	register("kms", "ListKeyPolicies", kmsListKeyPolicies)
	register("kms", "CreateGrant", kmsCreateGrant)
	register("kms", "ListGrants", kmsListGrants)
	register("kms", "RetireGrant", kmsRetireGrant)
	register("kms", "RevokeGrant", kmsRevokeGrant)
	register("kms", "ListRetirableGrants", kmsListRetirableGrants)
}

func kmsErr(code, msg string) *APIError { return &APIError{Code: code, Message: msg, Status: 400} }

// decode reads the JSON body into v; a malformed body is a
// SerializationException as in KMS.
func (c *call) decode(v any) *APIError {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return kmsErr("SerializationException", "Start of structure or map found where not expected: "+err.Error())
	}
	return nil
}

var kmsKeyARN = regexp.MustCompile(`^arn:aws:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$`)

// resolveKMSKey finds a key by id, key ARN, alias name or alias ARN, the
// forms KMS and EBS accept. A key ARN or alias ARN of another region
// resolves there. Callers hold w.mu.
func (w *World) resolveKMSKey(region *Region, ref string) (*KMSKey, *APIError) {
	if ref == "" {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	r := region
	kind, name := "", ref
	if m := kmsKeyARN.FindStringSubmatch(ref); m != nil {
		// A key of another account is named by its ARN; whether the
		// caller may use it is its key policy's and grants' to say.
		// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
		other, err := w.accountRegion(m[2], m[1])
		if err != nil {
			return nil, kmsErr("NotFoundException", "Invalid arn "+m[1])
		}
		r, kind, name = other, m[3], m[4]
		if kind == "alias" {
			name = "alias/" + name
		}
	} else if strings.HasPrefix(ref, "arn:") {
		return nil, kmsErr("InvalidArnException", "Invalid arn "+ref)
	} else if strings.HasPrefix(ref, "alias/") {
		kind = "alias"
	} else {
		kind = "key"
	}
	if kind == "alias" {
		a, ok := r.KMSAliases[name]
		if !ok {
			return nil, kmsErr("NotFoundException", "Alias "+r.arn("kms", name)+" is not found.")
		}
		name = a.TargetID
	}
	k, ok := r.KMSKeys[name]
	if !ok {
		return nil, kmsErr("NotFoundException", "Key '"+r.arn("kms", "key/"+name)+"' does not exist")
	}
	return k, nil
}

// usableKMSKey resolves a key for encryption and refuses one that is
// disabled or pending deletion, as EBS does.
func (w *World) usableKMSKey(r *Region, ref string) (*KMSKey, *APIError) {
	k, err := w.resolveKMSKey(r, ref)
	if err != nil {
		return nil, err
	}
	switch k.State {
	case "Enabled":
		return k, nil
	case "Disabled":
		return nil, kmsErr("DisabledException", k.ARN+" is disabled.")
	default:
		return nil, kmsErr("KMSInvalidStateException", k.ARN+" is pending deletion.")
	}
}

// ebsDefaultKMSKey is the region's EBS default key (GetEbsDefaultKmsKeyId).
func (r *Region) ebsDefaultKMSKey() *KMSKey { return r.KMSKeys[r.ebsDefaultKey] }

type kmsTag struct {
	TagKey   string
	TagValue string
}

func kmsKeyMetadata(k *KMSKey) map[string]any {
	m := map[string]any{
		"AWSAccountId":          accountOfARN(k.ARN),
		"KeyId":                 k.ID,
		"Arn":                   k.ARN,
		"CreationDate":          float64(k.Created.UnixMilli()) / 1000,
		"Enabled":               k.Enabled,
		"Description":           k.Description,
		"KeyUsage":              k.Usage,
		"KeyState":              k.State,
		"Origin":                "AWS_KMS",
		"KeyManager":            k.Manager,
		"CustomerMasterKeySpec": k.Spec,
		"KeySpec":               k.Spec,
		"EncryptionAlgorithms":  []string{"SYMMETRIC_DEFAULT"},
		"MultiRegion":           false,
	}
	return m
}

func kmsCreateKey(c *call) (any, *APIError) {
	var in struct {
		Description                    string
		KeyUsage                       string
		KeySpec                        string
		Tags                           []kmsTag
		Policy                         *string
		BypassPolicyLockoutSafetyCheck bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.KeyUsage == "" {
		in.KeyUsage = "ENCRYPT_DECRYPT"
	}
	if in.KeySpec == "" {
		in.KeySpec = "SYMMETRIC_DEFAULT"
	}
	if in.KeySpec != "SYMMETRIC_DEFAULT" || in.KeyUsage != "ENCRYPT_DECRYPT" {
		return nil, kmsErr("ValidationException", "the sandbox creates SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys only")
	}
	// A key created without a policy gets the default key policy; one
	// created with a policy must pass the same checks as PutKeyPolicy.
	// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html
	id := newUUID()
	var kp *keyPolicy
	if in.Policy != nil {
		var err *APIError
		if kp, err = c.checkNewPolicy(*in.Policy, in.BypassPolicyLockoutSafetyCheck, c.r.arn("kms", "key/"+id)); err != nil {
			return nil, err
		}
	}
	k := &KMSKey{
		ID: id, Description: in.Description, Enabled: true, State: "Enabled", Manager: "CUSTOMER",
		Spec: in.KeySpec, Usage: in.KeyUsage, Created: c.w.now(), Tags: Tags{},
	}
	for _, t := range in.Tags {
		k.Tags[t.TagKey] = t.TagValue
	}
	if in.Policy != nil {
		k.Policy, k.policy = *in.Policy, kp
	}
	k.ARN = c.r.arn("kms", "key/"+k.ID)
	c.r.KMSKeys[k.ID] = k
	return map[string]any{"KeyMetadata": kmsKeyMetadata(k)}, nil
}

func kmsDescribeKey(c *call) (any, *APIError) {
	var in struct{ KeyId string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	k, err := c.w.resolveKMSKey(c.r, in.KeyId)
	if err != nil {
		return nil, err
	}
	if err := c.kmsAccess(k, "kms:DescribeKey", kmsRequest{}); err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": kmsKeyMetadata(k)}, nil
}

// kmsPage pages KMS lists with Limit/Marker (1 to 1000, default 100).
func kmsPage[T any](items []T, marker string, limit int) ([]T, map[string]any, *APIError) {
	return kmsPageOf(items, marker, limit, 1000, 100)
}

// kmsPageOf pages with the limits of one action: ListGrants and
// ListRetirableGrants take 1 to 100 and default to 50.
// https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html
func kmsPageOf[T any](items []T, marker string, limit, max, def int) ([]T, map[string]any, *APIError) {
	if limit < 0 || limit > max {
		return nil, nil, kmsErr("ValidationException", fmt.Sprintf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and %d", limit, max))
	}
	if limit == 0 {
		limit = def
	}
	out, next, err := page(items, marker, limit)
	if err != nil {
		return nil, nil, kmsErr("InvalidMarkerException", "Invalid marker")
	}
	extra := map[string]any{"Truncated": next != ""}
	if next != "" {
		extra["NextMarker"] = next
	}
	return out, extra, nil
}

func kmsListKeys(c *call) (any, *APIError) {
	var in struct {
		Limit  int
		Marker string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	keys := make([]*KMSKey, 0, len(c.r.KMSKeys))
	for _, k := range c.r.KMSKeys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ID < keys[j].ID })
	pg, out, err := kmsPage(keys, in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	list := []map[string]string{}
	for _, k := range pg {
		list = append(list, map[string]string{"KeyId": k.ID, "KeyArn": k.ARN})
	}
	out["Keys"] = list
	return out, nil
}

// kmsCustomerKey resolves a key that action changes: AWS managed keys
// cannot be changed, and the caller needs the key policy's permission.
func kmsCustomerKey(c *call, ref, action string) (*KMSKey, *APIError) {
	k, err := c.w.resolveKMSKey(c.r, ref)
	if err != nil {
		return nil, err
	}
	if k.Manager == "AWS" {
		return nil, kmsErr("AccessDeniedException", "User is not authorized to perform this operation on an AWS managed key "+k.ARN)
	}
	if err := c.kmsAccess(k, action, kmsRequest{}); err != nil {
		return nil, err
	}
	return k, nil
}

func kmsSetEnabled(enabled bool) handler {
	return func(c *call) (any, *APIError) {
		var in struct{ KeyId string }
		if err := c.decode(&in); err != nil {
			return nil, err
		}
		k, err := kmsCustomerKey(c, in.KeyId, map[bool]string{true: "kms:EnableKey", false: "kms:DisableKey"}[enabled])
		if err != nil {
			return nil, err
		}
		if k.State == "PendingDeletion" {
			return nil, kmsErr("KMSInvalidStateException", k.ARN+" is pending deletion.")
		}
		k.Enabled = enabled
		k.State = map[bool]string{true: "Enabled", false: "Disabled"}[enabled]
		return struct{}{}, nil
	}
}

func kmsScheduleKeyDeletion(c *call) (any, *APIError) {
	var in struct {
		KeyId               string
		PendingWindowInDays int
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.PendingWindowInDays == 0 {
		in.PendingWindowInDays = 30
	}
	if in.PendingWindowInDays < 7 || in.PendingWindowInDays > 30 {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30")
	}
	k, err := kmsCustomerKey(c, in.KeyId, "kms:ScheduleKeyDeletion")
	if err != nil {
		return nil, err
	}
	if k.State == "PendingDeletion" {
		return nil, kmsErr("KMSInvalidStateException", k.ARN+" is pending deletion.")
	}
	k.State, k.Enabled = "PendingDeletion", false
	when := c.w.now().Add(time.Duration(in.PendingWindowInDays) * 24 * time.Hour)
	return map[string]any{"KeyId": k.ARN, "DeletionDate": float64(when.Unix()), "KeyState": k.State, "PendingWindowInDays": in.PendingWindowInDays}, nil
}

func kmsCancelKeyDeletion(c *call) (any, *APIError) {
	var in struct{ KeyId string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	k, err := kmsCustomerKey(c, in.KeyId, "kms:CancelKeyDeletion")
	if err != nil {
		return nil, err
	}
	if k.State != "PendingDeletion" {
		return nil, kmsErr("KMSInvalidStateException", k.ARN+" is not pending deletion.")
	}
	k.State = "Disabled"
	return map[string]any{"KeyId": k.ARN}, nil
}

var aliasName = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

func kmsCreateAlias(c *call) (any, *APIError) {
	var in struct{ AliasName, TargetKeyId string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if !aliasName.MatchString(in.AliasName) {
		return nil, kmsErr("ValidationException", "1 validation error detected: Value '"+in.AliasName+"' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$")
	}
	if strings.HasPrefix(in.AliasName, "alias/aws/") {
		return nil, kmsErr("NotAuthorizedException", "Cannot create alias with prefix 'alias/aws/'")
	}
	if _, ok := c.r.KMSAliases[in.AliasName]; ok {
		return nil, kmsErr("AlreadyExistsException", "An alias with the name "+c.r.arn("kms", in.AliasName)+" already exists")
	}
	k, err := kmsCustomerKey(c, in.TargetKeyId, "kms:CreateAlias")
	if err != nil {
		return nil, err
	}
	c.r.KMSAliases[in.AliasName] = &KMSAlias{Name: in.AliasName, ARN: c.r.arn("kms", in.AliasName), TargetID: k.ID, Created: c.w.now()}
	return struct{}{}, nil
}

func kmsDeleteAlias(c *call) (any, *APIError) {
	var in struct{ AliasName string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	a, ok := c.r.KMSAliases[in.AliasName]
	if !ok {
		return nil, kmsErr("NotFoundException", "Alias "+c.r.arn("kms", in.AliasName)+" is not found.")
	}
	if a.Builtin {
		return nil, kmsErr("NotAuthorizedException", "Cannot delete an AWS managed alias")
	}
	if k := c.r.KMSKeys[a.TargetID]; k != nil {
		if err := c.kmsAccess(k, "kms:DeleteAlias", kmsRequest{}); err != nil {
			return nil, err
		}
	}
	delete(c.r.KMSAliases, in.AliasName)
	return struct{}{}, nil
}

func kmsListAliases(c *call) (any, *APIError) {
	var in struct {
		KeyId  string
		Limit  int
		Marker string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	keyID := ""
	if in.KeyId != "" {
		k, err := c.w.resolveKMSKey(c.r, in.KeyId)
		if err != nil {
			return nil, err
		}
		keyID = k.ID
	}
	var aliases []*KMSAlias
	for _, a := range c.r.KMSAliases {
		if keyID == "" || a.TargetID == keyID {
			aliases = append(aliases, a)
		}
	}
	sort.Slice(aliases, func(i, j int) bool { return aliases[i].Name < aliases[j].Name })
	pg, out, err := kmsPage(aliases, in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for _, a := range pg {
		list = append(list, map[string]any{"AliasName": a.Name, "AliasArn": a.ARN, "TargetKeyId": a.TargetID,
			"CreationDate": float64(a.Created.Unix())})
	}
	out["Aliases"] = list
	return out, nil
}
