package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SSM Parameter Store speaks JSON 1.1 (X-Amz-Target: AmazonSSM.<Action>).
// This file holds the parameters themselves: names, PutParameter with its
// asynchronous aws:ec2:image validation, GetParameter(s), the deletes.
// Listing, history, labels and tags are in ssm_query.go.

func init() {
	register("ssm", "PutParameter", ssmPutParameter)
	register("ssm", "GetParameter", ssmGetParameter)
	register("ssm", "GetParameters", ssmGetParameters)
	register("ssm", "DeleteParameter", ssmDeleteParameter)
	register("ssm", "DeleteParameters", ssmDeleteParameters)
	addController(ssmController)
}

const (
	ssmImageDataType = "aws:ec2:image"
	ssmDefaultKey    = "alias/aws/ssm"
	// ssmMaxVersions is how many versions Parameter Store keeps.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html
	ssmMaxVersions = 100
	// ssmMaxStandard is the standard-tier parameter quota of a region.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
	ssmMaxStandard = 10000
)

// ssmPending is an aws:ec2:image version Parameter Store has not
// validated yet: it becomes the latest version at due, if its value is
// then an AMI the account can launch, or is dropped.
type ssmPending struct {
	v    *SSMParameterVersion
	due  time.Time
	tags Tags // the tags of a parameter being created
}

func ssmErr(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: 400}
}

func ssmValidation(format string, args ...any) *APIError {
	return ssmErr("ValidationException", format, args...)
}

// ssmKey is the key a parameter name is stored under: "/name" and "name"
// are the same parameter, "/a/name" and "a/name" are not (the latter is
// not a valid name at all).
// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html#sysman-parameter-name-constraints
func ssmKey(name string) string {
	if strings.HasPrefix(name, "/") && strings.Count(name, "/") == 1 {
		return name[1:]
	}
	return name
}

// ssmPath is a name as a path from the root: "/name" for "name".
func ssmPath(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return "/" + name
}

// parameterARN is arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, without a
// second slash for names that start with one.
func (r *Region) parameterARN(name string) string {
	return r.arn("ssm", "parameter/"+strings.TrimPrefix(name, "/"))
}

var ssmNameChars = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// checkParameterName checks the name of a parameter to create and returns
// it without the spaces around it, which Parameter Store removes.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html#sysman-parameter-name-constraints
func (r *Region) checkParameterName(name string) (string, *APIError) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", ssmValidation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if strings.ContainsAny(name, " \t\n") {
		return "", ssmValidation("Parameter name: can't contain spaces.")
	}
	if !ssmNameChars.MatchString(name) {
		return "", ssmValidation("Parameter name: %s is not valid. Parameter names can include only the following symbols and letters: a-zA-Z0-9_.-/", name)
	}
	segments := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") || contains(segments, "") {
		return "", ssmValidation("Parameter name must be a fully qualified name.")
	}
	if first := strings.ToLower(segments[0]); strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return "", ssmValidation(`Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive).`)
	}
	if len(segments) > 15 {
		return "", ssmErr("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the AWS Systems Manager User Guide.")
	}
	// The 1011 characters include the ARN before the name.
	if n := len(r.parameterARN(name)); n > 1011 {
		return "", ssmValidation("Parameter name: the name with its ARN has %d characters; the maximum is 1011.", n)
	}
	return name, nil
}

// ssmRef is a parameter as a read names it: by name or by ARN, with an
// optional version or label selector ("name:3", "name:prod").
type ssmRef struct {
	name     string
	selector string
}

var ssmParameterARN = regexp.MustCompile(`^arn:aws:ssm:([a-z0-9-]+):(\d{12}):parameter/(.+)$`)

// parseParameterRef reads a name, name:selector or parameter ARN. An ARN
// of another account or region names a shared parameter, which the
// sandbox does not have.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
func (r *Region) parseParameterRef(s string, selectors bool) (ssmRef, *APIError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ssmRef{}, ssmValidation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if strings.ContainsAny(s, " \t\n") {
		return ssmRef{}, ssmValidation("Parameter name: can't contain spaces.")
	}
	rest := s
	arn := false
	if m := ssmParameterARN.FindStringSubmatch(s); m != nil {
		if m[1] != r.Name || m[2] != r.Account {
			return ssmRef{}, ssmErr("ParameterNotFound", "Parameter %s not found.", s)
		}
		rest, arn = m[3], true
	} else if strings.HasPrefix(s, "arn:") {
		return ssmRef{}, ssmValidation("Parameter ARN %s is not valid.", s)
	}
	ref := ssmRef{name: rest}
	switch strings.Count(rest, ":") {
	case 0:
	case 1:
		i := strings.IndexByte(rest, ':')
		ref.name, ref.selector = rest[:i], rest[i+1:]
		if !selectors || ref.selector == "" {
			return ssmRef{}, ssmValidation("Invalid parameter name. Please use correct syntax for referencing a version/label  <name>:<version/label>")
		}
	default:
		return ssmRef{}, ssmValidation("Invalid parameter name. Please use correct syntax for referencing a version/label  <name>:<version/label>")
	}
	if arn && strings.Contains(ref.name, "/") {
		ref.name = "/" + ref.name
	}
	return ref, nil
}

// ssmParameter returns the parameter with this name if it exists for
// readers (a first version still being validated does not count).
func (r *Region) ssmParameter(name string) *SSMParameter {
	if p := r.SSMParameters[ssmKey(name)]; p != nil && len(p.Versions) > 0 {
		return p
	}
	return nil
}

func (p *SSMParameter) latest() *SSMParameterVersion { return p.Versions[len(p.Versions)-1] }

// version finds the version a selector names: the latest for "", a
// version number, or a label. A selector that matches nothing fails; it
// never falls back to the latest version.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-labels.html
func (p *SSMParameter) version(sel string) (*SSMParameterVersion, *APIError) {
	if sel == "" {
		return p.latest(), nil
	}
	if isNumberedVersion(sel) {
		n, err := strconv.ParseInt(sel, 10, 64)
		for _, v := range p.Versions {
			if err == nil && v.Version == n {
				return v, nil
			}
		}
		return nil, ssmErr("ParameterVersionNotFound", "Systems Manager could not find version %s of %s. Verify the version and try again.", sel, p.Name)
	}
	for _, v := range p.Versions {
		if contains(v.Labels, sel) {
			return v, nil
		}
	}
	return nil, ssmErr("ParameterVersionNotFound", "Systems Manager could not find label %s of %s. Verify the label and try again.", sel, p.Name)
}

// lookupParameter resolves a read's name to a parameter and version.
func (r *Region) lookupParameter(s string, selectors bool) (*SSMParameter, *SSMParameterVersion, ssmRef, *APIError) {
	ref, err := r.parseParameterRef(s, selectors)
	if err != nil {
		return nil, nil, ref, err
	}
	p := r.ssmParameter(ref.name)
	if p == nil {
		return nil, nil, ref, ssmErr("ParameterNotFound", "Parameter %s not found.", ref.name)
	}
	v, err := p.version(ref.selector)
	if err != nil {
		return nil, nil, ref, err
	}
	return p, v, ref, nil
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// principalName is who LastModifiedUser names: the caller, or its
// assumed-role session.
func (c *call) principalName() string {
	p := c.principal()
	if p.Session != "" {
		return p.Session
	}
	return p.ARN
}

// ssmParameterOut is a Parameter in GetParameter(s) and GetParametersByPath.
type ssmParameterOut struct {
	Name             string
	Type             string
	Value            string
	Version          int64
	Selector         string `json:",omitempty"`
	LastModifiedDate float64
	ARN              string
	DataType         string
}

// ssmKMSKey resolves the key of a SecureString parameter: alias/aws/ssm
// (created on first use, as AWS creates its managed keys) or a customer
// key, which must be enabled. Parameter Store reports a key it cannot use
// as InvalidKeyId.
// https://docs.aws.amazon.com/kms/latest/developerguide/services-parameter-store.html
func (c *call) ssmKMSKey(ref string) (*KMSKey, *APIError) {
	if ref == ssmDefaultKey {
		c.r.ssmManagedKey()
	}
	k, err := c.w.usableKMSKey(c.r, ref)
	if err != nil {
		return nil, ssmErr("InvalidKeyId", "%s", err.Message)
	}
	return k, nil
}

// ssmManagedKey returns the AWS managed key aws/ssm, creating it first.
func (r *Region) ssmManagedKey() *KMSKey {
	if a := r.KMSAliases[ssmDefaultKey]; a != nil {
		return r.KMSKeys[a.TargetID]
	}
	now := r.w.now()
	k := &KMSKey{
		ID: newUUID(), Description: "Default key that protects my SSM parameters when no other key is defined",
		Enabled: true, State: "Enabled", Manager: "AWS", Spec: "SYMMETRIC_DEFAULT", Usage: "ENCRYPT_DECRYPT",
		Created: now, Builtin: true, Tags: Tags{}, Policy: ssmManagedKeyPolicy(r.Account, r.Name),
	}
	k.ARN = r.arn("kms", "key/"+k.ID)
	r.KMSKeys[k.ID] = k
	r.KMSAliases[ssmDefaultKey] = &KMSAlias{Name: ssmDefaultKey, ARN: r.arn("kms", ssmDefaultKey), TargetID: k.ID, Builtin: true, Created: now}
	return k
}

// ssmManagedKeyPolicy is the policy of aws/ssm: every principal of the
// account through Parameter Store, and the account may read the key.
// https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
func ssmManagedKeyPolicy(account, region string) string {
	return policyJSON(policyDocOut{Version: "2012-10-17", Id: "auto-ssm-1", Statement: []policyStatementOut{{
		Sid: "Allow access through Systems Manager for all principals in the account that are authorized to use Systems Manager", Effect: "Allow",
		Principal: map[string]string{"AWS": "*"},
		Action:    []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"},
		Resource:  "*",
		Condition: map[string]map[string]string{"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": "ssm." + region + ".amazonaws.com"}},
	}, {
		Sid: "Allow direct access to key metadata to the account", Effect: "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"},
		Action:    []string{"kms:Describe*", "kms:Get*", "kms:List*"},
		Resource:  "*",
	}}})
}

// useParameterKey checks that the caller may use a SecureString's key for
// action (kms:Encrypt, kms:Decrypt) through Parameter Store.
func (c *call) useParameterKey(keyRef, action string) *APIError {
	k, err := c.ssmKMSKey(keyRef)
	if err != nil {
		return err
	}
	return c.kmsAccess(k, action, kmsRequest{ViaService: "ssm." + c.r.Name + ".amazonaws.com"})
}

// ciphertext stands for a SecureString value read without decryption:
// opaque base64 that does not contain the value.
func ciphertext(p *SSMParameter, v *SSMParameterVersion) string {
	sum := sha256.Sum256([]byte(p.Name + "\x00" + strconv.FormatInt(v.Version, 10) + "\x00" + v.Value))
	return base64.StdEncoding.EncodeToString(append([]byte("AQICAH"+v.KeyID+":"), sum[:]...))
}

// value is what a read returns: a SecureString's plaintext only with
// decryption, which needs kms:Decrypt on its key.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
func (c *call) value(p *SSMParameter, v *SSMParameterVersion, decrypt bool) (string, *APIError) {
	if v.Type != "SecureString" {
		return v.Value, nil
	}
	if !decrypt {
		return ciphertext(p, v), nil
	}
	if err := c.useParameterKey(v.KeyID, "kms:Decrypt"); err != nil {
		return "", err
	}
	return v.Value, nil
}

func (c *call) parameterOut(p *SSMParameter, v *SSMParameterVersion, sel string, decrypt bool) (ssmParameterOut, *APIError) {
	val, err := c.value(p, v, decrypt)
	if err != nil {
		return ssmParameterOut{}, err
	}
	out := ssmParameterOut{Name: p.Name, Type: v.Type, Value: val, Version: v.Version, LastModifiedDate: epoch(v.Modified),
		ARN: c.r.parameterARN(p.Name), DataType: v.DataType}
	if sel != "" {
		out.Selector = ":" + sel
	}
	return out, nil
}

type ssmTag struct {
	Key   *string
	Value *string
}

var ssmTagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// ssmTags checks tags as Systems Manager takes them.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html
func ssmTags(in []ssmTag) (Tags, *APIError) {
	out := Tags{}
	for _, t := range in {
		if t.Key == nil || t.Value == nil {
			return nil, ssmValidation("1 validation error detected: Value null at 'tags.member.key' or 'tags.member.value' failed to satisfy constraint: Member must not be null")
		}
		k, v := *t.Key, *t.Value
		if len(k) < 1 || len(k) > 128 || len(v) > 256 || !ssmTagChars.MatchString(k) || !ssmTagChars.MatchString(v) {
			return nil, ssmValidation("1 validation error detected: Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128 (values up to 256) and satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, ssmValidation("Tag keys starting with 'aws:' are reserved for internal use.")
		}
		out[k] = v
	}
	return out, nil
}

// ssmMaxTags is how many tags a parameter can have.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html
const ssmMaxTags = 50

func tooManyTags() *APIError {
	return ssmErr("TooManyTagsError", "The Targets parameter includes too many tags. Remove one or more tags and try the command again.")
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
func ssmPutParameter(c *call) (any, *APIError) {
	var in struct {
		Name, Value, Description, Type, KeyId, AllowedPattern, Tier, Policies, DataType *string
		Overwrite                                                                       *bool
		Tags                                                                            []ssmTag
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if in.Value == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'value' failed to satisfy constraint: Member must not be null")
	}
	name, err := c.r.checkParameterName(*in.Name)
	if err != nil {
		return nil, err
	}
	value := *in.Value
	// Stricter reading: an empty value is refused.
	if value == "" {
		return nil, ssmValidation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	// A value cannot reference or nest another parameter.
	if strings.Contains(value, "{{") && strings.Contains(value, "}}") {
		return nil, ssmValidation("Parameter value can't nest another parameter. Do not use \"{{}}\" in the value.")
	}
	if in.Policies != nil {
		return nil, ssmValidation("The sandbox does not emulate parameter policies.")
	}
	if in.Type != nil && !contains([]string{"String", "StringList", "SecureString"}, *in.Type) {
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", *in.Type)
	}
	if in.Tier != nil && !contains([]string{"Standard", "Advanced", "Intelligent-Tiering"}, *in.Tier) {
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]", *in.Tier)
	}
	// A PutParameter without DataType asks for text, the default: the
	// stricter reading, as an update cannot leave aws:ec2:image out.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html
	dataType := "text"
	if in.DataType != nil && *in.DataType != "" {
		dataType = *in.DataType
	}
	switch dataType {
	case "text", ssmImageDataType:
	case "aws:ssm:integration":
		return nil, ssmValidation("The sandbox does not emulate the aws:ssm:integration data type.")
	default:
		return nil, ssmValidation("The data type %s is not supported. The following data type values are supported: text, aws:ec2:image, aws:ssm:integration", dataType)
	}
	if in.Description != nil && len(*in.Description) > 1024 {
		return nil, ssmValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1024")
	}
	if in.AllowedPattern != nil && len(*in.AllowedPattern) > 1024 {
		return nil, ssmValidation("1 validation error detected: Value at 'allowedPattern' failed to satisfy constraint: Member must have length less than or equal to 1024")
	}
	overwrite := in.Overwrite != nil && *in.Overwrite
	// Tags are for new parameters; an existing one is tagged with
	// AddTagsToResource, and a request with both is refused.
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html#systemsmanager-PutParameter-request-Tags
	if overwrite && len(in.Tags) > 0 {
		return nil, ssmValidation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.")
	}
	tags, err := ssmTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if len(tags) > ssmMaxTags {
		return nil, tooManyTags()
	}

	key := ssmKey(name)
	p := c.r.SSMParameters[key]
	// An aws:ec2:image version still being validated blocks every other
	// update: AWS reports that validation is still in process.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html#ps-ec2-aliases-troubleshooting
	if p != nil && p.pending != nil {
		return nil, ssmErr("TooManyUpdates", "There are concurrent updates for a resource that supports one update at a time: the validation of version %d of %s is still in process.", p.pending.v.Version, p.Name)
	}
	exists := p != nil && len(p.Versions) > 0
	// "After deleting a parameter, wait for at least 30 seconds to create a
	// parameter with the same name": the stricter reading refuses it.
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
	if gone, ok := c.r.ssmDeleted[key]; ok && !exists && c.w.now().Before(gone.Add(c.w.timing.d("ssm_recreate_after"))) {
		return nil, ssmErr("TooManyUpdates", "There are concurrent updates for a resource that supports one update at a time: %s was deleted less than 30 seconds ago.", name)
	}
	if exists && !overwrite {
		return nil, ssmErr("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	var prev *SSMParameterVersion
	if exists {
		prev = p.latest()
	}
	v := &SSMParameterVersion{Version: 1, DataType: dataType, Value: value, Modified: c.w.now(), User: c.principalName()}
	switch {
	case in.Type != nil:
		v.Type = *in.Type
	case prev != nil:
		v.Type = prev.Type
	default:
		return nil, ssmValidation("A parameter type is required when you create a parameter.")
	}
	if prev != nil {
		v.Version = prev.Version + 1
		v.Description, v.AllowedPattern, v.KeyID = prev.Description, prev.AllowedPattern, prev.KeyID
		// A parameter keeps its type.
		// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html#API_PutParameter_Errors
		if v.Type != prev.Type {
			return nil, ssmErr("HierarchyTypeMismatchException", "Parameter Store doesn't support changing a parameter type in a hierarchy. The parameter %s is a %s, not a %s; create a new, unique parameter.", name, prev.Type, v.Type)
		}
		// No parameter changes to or from aws:ec2:image.
		// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html
		if (prev.DataType == ssmImageDataType) != (dataType == ssmImageDataType) {
			return nil, ssmValidation("You can't change the data type of %s from %s to %s: a parameter can't be changed to or from the aws:ec2:image data type.", name, prev.DataType, dataType)
		}
	}
	if in.Description != nil {
		v.Description = *in.Description
	}
	if in.AllowedPattern != nil {
		v.AllowedPattern = *in.AllowedPattern
	}
	// aws:ec2:image is a data type of String parameters.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
	if dataType == ssmImageDataType && v.Type != "String" {
		return nil, ssmValidation("The aws:ec2:image data type is supported for String parameters only.")
	}
	if v.Type == "SecureString" {
		switch {
		case in.KeyId != nil:
			v.KeyID = *in.KeyId
		case v.KeyID == "":
			v.KeyID = ssmDefaultKey
		}
		if err := c.useParameterKey(v.KeyID, "kms:Encrypt"); err != nil {
			return nil, err
		}
	} else if in.KeyId != nil {
		return nil, ssmValidation("KeyId is supported for SecureString parameters only.")
	}
	if v.AllowedPattern != "" {
		re, rerr := regexp.Compile(`^(?:` + v.AllowedPattern + `)$`)
		if rerr != nil {
			return nil, ssmErr("InvalidAllowedPatternException", "The request doesn't meet the regular expression requirement: %s is not a valid pattern.", v.AllowedPattern)
		}
		// The pattern must match the whole value.
		if !re.MatchString(value) {
			shown := value
			if v.Type == "SecureString" {
				shown = "(SecureString value)"
			}
			return nil, ssmErr("ParameterPatternMismatchException", "Parameter value, %s, failed to satisfy constraint specified by AllowedPattern", shown)
		}
	}
	if v.Tier, err = parameterTier(in.Tier, prev, value); err != nil {
		return nil, err
	}
	if !exists && v.Tier == "Standard" && c.r.standardParameters() >= ssmMaxStandard {
		return nil, ssmErr("ParameterLimitExceeded", "You have exceeded the number of parameters for this AWS account. Delete one or more parameters and try again.")
	}
	if exists && len(p.Versions) >= ssmMaxVersions && len(p.Versions[0].Labels) > 0 {
		return nil, maxVersionsErr(p)
	}
	if p == nil {
		p = &SSMParameter{Name: name, Tags: Tags{}, Created: c.w.now()}
		c.r.SSMParameters[key] = p
	}
	if dataType == ssmImageDataType {
		// Validated asynchronously: the call answers with the version
		// number before the version exists.
		// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html#parameter-ami-validation
		p.pending = &ssmPending{v: v, due: c.w.now().Add(c.w.timing.d("ssm_image_validation")), tags: tags}
	} else {
		p.commit(v, tags)
	}
	delete(c.r.ssmDeleted, key)
	return map[string]any{"Version": v.Version, "Tier": v.Tier}, nil
}

func maxVersionsErr(p *SSMParameter) *APIError {
	return ssmErr("ParameterMaxVersionLimitExceeded", "You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version %d, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", p.Name, p.Versions[0].Version)
}

// parameterTier decides the tier of a new version. Without Tier a
// request is evaluated in the default tier, Standard (the sandbox has no
// UpdateServiceSetting); an advanced parameter never goes back to
// Standard, so an update of one must ask for Advanced or
// Intelligent-Tiering: the stricter reading.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
func parameterTier(asked *string, prev *SSMParameterVersion, value string) (string, *APIError) {
	tier := "Standard"
	if asked != nil {
		tier = *asked
	}
	advanced := prev != nil && prev.Tier == "Advanced"
	if tier == "Intelligent-Tiering" {
		tier = "Standard"
		if advanced || len(value) > 4096 {
			tier = "Advanced"
		}
	}
	if tier == "Standard" {
		if advanced {
			return "", ssmValidation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.")
		}
		if len(value) > 4096 {
			return "", ssmValidation("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")
		}
	}
	if len(value) > 8192 {
		return "", ssmValidation("Advanced tier parameters support a maximum parameter value of 8192 characters.")
	}
	return tier, nil
}

func (r *Region) standardParameters() int {
	n := 0
	for _, p := range r.SSMParameters {
		if len(p.Versions) > 0 && p.latest().Tier == "Standard" {
			n++
		}
	}
	return n
}

// commit makes v the latest version; past 100 versions the oldest goes.
func (p *SSMParameter) commit(v *SSMParameterVersion, tags Tags) {
	if len(p.Versions) == 0 {
		for k, val := range tags {
			p.Tags[k] = val
		}
	}
	if len(p.Versions) >= ssmMaxVersions {
		p.Versions = p.Versions[1:]
	}
	p.Versions = append(p.Versions, v)
}

// ssmController finishes the validation of aws:ec2:image versions: the
// value must then be the id of an available AMI of the region that the
// account may launch. A version that fails is dropped and its number is
// given to the next update (the parameter was not updated); a parameter
// whose first version fails is not created.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
func ssmController(r *Region, now time.Time) {
	for key, gone := range r.ssmDeleted {
		if now.After(gone.Add(r.w.timing.d("ssm_recreate_after"))) {
			delete(r.ssmDeleted, key)
		}
	}
	for key, p := range r.SSMParameters {
		pd := p.pending
		if pd == nil || now.Before(pd.due) {
			continue
		}
		p.pending = nil
		ok := r.launchableImage(pd.v.Value) && !(len(p.Versions) >= ssmMaxVersions && len(p.Versions[0].Labels) > 0)
		if ok {
			pd.v.Modified = now
			p.commit(pd.v, pd.tags)
		}
		if len(p.Versions) == 0 {
			delete(r.SSMParameters, key)
		}
	}
}

var amiID = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)

// launchableImage reports whether id is an available AMI of the region
// that the account owns, or that is public or shared with it.
func (r *Region) launchableImage(id string) bool {
	if !amiID.MatchString(id) {
		return false
	}
	img, ok := r.findImage(id)
	return ok && img.State == "available" && r.mayLaunch(img)
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
func ssmGetParameter(c *call) (any, *APIError) {
	var in struct {
		Name           *string
		WithDecryption bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p, v, ref, err := c.r.lookupParameter(*in.Name, true)
	if err != nil {
		return nil, err
	}
	out, err := c.parameterOut(p, v, ref.selector, in.WithDecryption)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Parameter": out}, nil
}

// checkNames checks a list of 1 to 10 names (GetParameters,
// DeleteParameters).
func checkNames(names []string) *APIError {
	if len(names) < 1 || len(names) > 10 {
		return ssmValidation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1")
	}
	return nil
}

// GetParameters answers the parameters it finds, in name order, and lists
// the names it cannot resolve (no such parameter, version or label) as
// InvalidParameters.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html
func ssmGetParameters(c *call) (any, *APIError) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if err := checkNames(in.Names); err != nil {
		return nil, err
	}
	params := []ssmParameterOut{}
	invalid := []string{}
	seen := map[string]bool{}
	for _, n := range in.Names {
		if seen[n] {
			continue
		}
		seen[n] = true
		p, v, ref, err := c.r.lookupParameter(n, true)
		if err != nil {
			if err.Code == "ValidationException" {
				return nil, err
			}
			invalid = append(invalid, n)
			continue
		}
		out, err := c.parameterOut(p, v, ref.selector, in.WithDecryption)
		if err != nil {
			return nil, err
		}
		params = append(params, out)
	}
	sort.SliceStable(params, func(i, j int) bool { return params[i].Name < params[j].Name })
	return map[string]any{"Parameters": params, "InvalidParameters": invalid}, nil
}

// deletable resolves the name DeleteParameter(s) takes: a name, not an
// ARN, without a selector.
func (r *Region) deletable(name string) (*SSMParameter, *APIError) {
	ref, err := r.parseParameterRef(name, false)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(name), "arn:") {
		return nil, ssmValidation("Parameter name: you can't enter the ARN of a parameter, only its name.")
	}
	p := r.ssmParameter(ref.name)
	if p == nil {
		return nil, ssmErr("ParameterNotFound", "Parameter %s not found.", ref.name)
	}
	return p, nil
}

// deleteParameter deletes every version, and a version still being
// validated; the name cannot be created again for 30 seconds.
func (r *Region) deleteParameter(p *SSMParameter) {
	key := ssmKey(p.Name)
	delete(r.SSMParameters, key)
	r.ssmDeleted[key] = r.w.now()
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
func ssmDeleteParameter(c *call) (any, *APIError) {
	var in struct{ Name *string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p, err := c.r.deletable(*in.Name)
	if err != nil {
		return nil, err
	}
	c.r.deleteParameter(p)
	return struct{}{}, nil
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameters.html
func ssmDeleteParameters(c *call) (any, *APIError) {
	var in struct{ Names []string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if err := checkNames(in.Names); err != nil {
		return nil, err
	}
	deleted, invalid := []string{}, []string{}
	for _, n := range in.Names {
		p, err := c.r.deletable(n)
		if err != nil {
			invalid = append(invalid, n)
			continue
		}
		c.r.deleteParameter(p)
		deleted = append(deleted, n)
	}
	return map[string]any{"DeletedParameters": deleted, "InvalidParameters": invalid}, nil
}
