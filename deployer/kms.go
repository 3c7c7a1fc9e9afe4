package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// Auto Scaling launches every instance of a group with the group's
// service-linked role, and EBS uses the AMI's snapshot keys on that
// role's behalf. A customer managed key whose policy does not name the
// role, and that has no grant for it, makes every launch fail
// ("Client.InternalError: Client error on launch"): the refresh fails, a
// blue-green colour never comes up. The role gets nothing from IAM, so
// the key policy's usual "the account's root: kms:*" statement does not
// help it.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html

// DefaultAutoScalingRoleName is the path and name of Auto Scaling's
// default service-linked role in every account.
const DefaultAutoScalingRoleName = "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

// GrantName names the grants phoenix creates with grant_kms, so that a
// rerun finds its own grant instead of making another.
const GrantName = "phoenix-autoscaling"

// autoScalingKeyOperations are the operations AWS's guide gives the
// service-linked role, in a grant or in the key policy.
var autoScalingKeyOperations = []kmstypes.GrantOperation{
	kmstypes.GrantOperationEncrypt, kmstypes.GrantOperationDecrypt,
	kmstypes.GrantOperationReEncryptFrom, kmstypes.GrantOperationReEncryptTo,
	kmstypes.GrantOperationGenerateDataKey, kmstypes.GrantOperationGenerateDataKeyWithoutPlaintext,
	kmstypes.GrantOperationDescribeKey, kmstypes.GrantOperationCreateGrant,
}

// KeyUse is what a deploy knows about one KMS key its launches need.
type KeyUse struct {
	// Key is the key's ARN.
	Key string `json:"key"`
	// Alias is one of its aliases, for messages; may be empty.
	Alias string `json:"alias,omitempty"`
	// Role is the service-linked role that launches with it.
	Role string `json:"role"`
	// Allowed: the key policy or a grant lets Role use the key.
	Allowed bool `json:"allowed"`
	// By says what allows it ("key policy", "grant <id>", "AWS managed key").
	By string `json:"by,omitempty"`
	// Unknown is why phoenix could not tell (the policy was not readable).
	Unknown string `json:"unknown,omitempty"`
}

func (k KeyUse) name() string {
	if k.Alias != "" {
		return fmt.Sprintf("%s (%s)", k.Key, k.Alias)
	}
	return k.Key
}

// launchRole is the service-linked role group g launches with.
func launchRole(roleARN, groupARN string) string {
	if roleARN != "" {
		return roleARN
	}
	// arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:…
	parts := strings.SplitN(groupARN, ":", 6)
	if len(parts) < 5 || parts[4] == "" {
		return "arn:aws:iam::ACCOUNT:role/" + DefaultAutoScalingRoleName
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], DefaultAutoScalingRoleName)
}

// imageKeys returns the KMS keys (ARNs) of ami's encrypted snapshots.
func imageKeys(ctx context.Context, c Clients, snapshots []string) ([]string, error) {
	if len(snapshots) == 0 {
		return nil, nil
	}
	out, err := c.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snapshots})
	if err != nil {
		return nil, fmt.Errorf("describing snapshots %s: %w", strings.Join(snapshots, ", "), err)
	}
	var keys []string
	for _, sn := range out.Snapshots {
		if k := aws.ToString(sn.KmsKeyId); aws.ToBool(sn.Encrypted) && k != "" && !contains(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// checkKey decides whether role may use key for launches: an AWS managed
// key (its policy lets every principal of the account use it through
// EC2), a key policy statement, or a grant.
func checkKey(ctx context.Context, c Clients, key, role string) (KeyUse, error) {
	ku := KeyUse{Key: key, Role: role}
	desc, err := c.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		if denied(err) {
			ku.Unknown = "the key cannot be described with these credentials (kms:DescribeKey): " + err.Error()
			return ku, nil
		}
		return ku, fmt.Errorf("describing KMS key %s: %w", key, err)
	}
	if md := desc.KeyMetadata; md != nil {
		ku.Key = aws.ToString(md.Arn)
		if md.KeyManager == kmstypes.KeyManagerTypeAws {
			ku.Allowed, ku.By = true, "AWS managed key"
			return ku, nil
		}
	}
	if al, err := c.KMS.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(ku.Key)}); err == nil && len(al.Aliases) > 0 {
		ku.Alias = aws.ToString(al.Aliases[0].AliasName)
	}
	grants, err := c.KMS.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(ku.Key), GranteePrincipal: aws.String(role)})
	if err != nil && !denied(err) {
		return ku, fmt.Errorf("listing the grants of KMS key %s: %w", ku.Key, err)
	}
	pol, perr := c.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(ku.Key), PolicyName: aws.String("default")})
	if perr != nil && !denied(perr) {
		return ku, fmt.Errorf("reading the key policy of KMS key %s: %w", ku.Key, perr)
	}
	var doc *policyDoc
	if perr == nil {
		if doc, err = parsePolicy(aws.ToString(pol.Policy)); err != nil {
			ku.Unknown = "its key policy could not be read: " + err.Error()
			return ku, nil
		}
	}
	account := accountOf(role)
	if doc != nil && doc.denies(role, ku.Key) {
		ku.By = "key policy (a Deny statement names the role)"
		return ku, nil
	}
	if doc != nil && doc.allowsAll(role, ku.Key, account) {
		ku.Allowed, ku.By = true, "key policy"
		return ku, nil
	}
	if grants != nil {
		for _, g := range grants.Grants {
			if aws.ToString(g.GranteePrincipal) == role && coversOperations(g.Operations) {
				ku.Allowed, ku.By = true, "grant "+aws.ToString(g.GrantId)
				return ku, nil
			}
		}
	}
	if perr != nil {
		ku.Unknown = "its key policy cannot be read with these credentials (kms:GetKeyPolicy)"
	}
	return ku, nil
}

func coversOperations(ops []kmstypes.GrantOperation) bool {
	for _, want := range autoScalingKeyOperations {
		found := false
		for _, op := range ops {
			found = found || op == want
		}
		if !found {
			return false
		}
	}
	return true
}

// denied reports an access error: phoenix may not read the key, which
// is not the same as the role not being able to use it.
func denied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "AccessDenied")
}

func accountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// keyFix says how to let role use the key: the key policy statements,
// the grant, or grant_kms.
func keyFix(ku KeyUse, region string) string {
	ops := make([]string, len(autoScalingKeyOperations))
	for i, op := range autoScalingKeyOperations {
		ops[i] = string(op)
	}
	return fmt.Sprintf(`add to its key policy the statements AWS documents for Auto Scaling's role:
    {"Sid": "Allow Auto Scaling to use the key", "Effect": "Allow", "Principal": {"AWS": "%[1]s"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Allow Auto Scaling to attach the volumes", "Effect": "Allow", "Principal": {"AWS": "%[1]s"},
     "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}
  or grant it:
    aws kms create-grant --region %[2]s --key-id %[3]s --grantee-principal %[1]s --operations %[4]s
  or set grant_kms = true (phoenix.hcl, phoenix-deploy) or --grant-kms, and phoenix creates that grant`, ku.Role, region, ku.Key, strings.Join(ops, " "))
}

// checkLaunchKeys finds the keys the target's launches need (the AMI's
// snapshot keys and any key the launch template names) and checks each
// against the role of every group of the target. It changes nothing.
// A key the role cannot use is refused unless grantKMS is set; a key
// phoenix cannot read is a warning.
func (d *Deployer) checkLaunchKeys(ctx context.Context, s *Session) error {
	keys, err := imageKeys(ctx, d.Clients, s.AMI.Snapshots)
	if notFound(err, "InvalidSnapshot.") {
		// An image another account shares by launch permission alone:
		// AWS launches it, but shows its snapshots, and so their keys,
		// only to accounts with a create-volume permission.
		// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
		// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html
		if s.AMI.anyEncrypted {
			d.emit(Event{Kind: EventWarning, Step: "kms", Message: fmt.Sprintf("cannot read the snapshots of %s, which account %s owns and shares with this account (another account's snapshots are visible only with a create-volume permission: phoenix-ebs snapshot_users): phoenix cannot check that Auto Scaling's role may use their KMS key; if it may not, every launch fails (Client.InternalError: Client error on launch)",
				s.AMI.ID, orText(s.AMI.Owner, "another"))})
		}
		keys, err = nil, nil
	}
	if err != nil {
		return err
	}
	if s.Template != nil {
		for _, k := range s.Template.KMSKeys {
			if !contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	s.Keys = nil
	for _, role := range s.roles() {
		for _, key := range keys {
			ku, err := checkKey(ctx, d.Clients, key, role)
			if err != nil {
				return err
			}
			s.Keys = append(s.Keys, ku)
		}
	}
	return d.judgeKeys(s.Keys, "which encrypts "+s.AMI.ID)
}

// judgeKeys refuses the keys Auto Scaling's role may not use, naming
// each with what (what the key is for) and the fix, unless grant_kms is
// set; a key phoenix cannot read is a warning.
func (d *Deployer) judgeKeys(kus []KeyUse, what string) error {
	var refusals []string
	for _, ku := range kus {
		switch {
		case ku.Allowed:
		case ku.Unknown != "":
			d.emit(Event{Kind: EventWarning, Step: "kms", Message: fmt.Sprintf("cannot tell whether Auto Scaling's role %s may use KMS key %s, %s: %s; if it may not, every launch fails (Client.InternalError: Client error on launch)", ku.Role, ku.name(), what, ku.Unknown)})
		case d.GrantKMS:
		default:
			refusals = append(refusals, fmt.Sprintf("KMS key %s, %s, does not let Auto Scaling's service-linked role %s use it (%s), so every instance the group launches would fail with \"Client.InternalError: Client error on launch\"; %s",
				ku.name(), what, ku.Role, orText(ku.By, "neither the key policy nor a grant names the role"), keyFix(ku, d.Target.Region)))
		}
	}
	if len(refusals) > 0 {
		return refuse("%s", strings.Join(refusals, "\n"))
	}
	return nil
}

// grantKeys creates the grant grant_kms asks for, once per key and role
// that needs it; the check before it found which. It runs after the lock
// is taken and before anything else changes.
func (d *Deployer) grantKeys(ctx context.Context, s *Session) error {
	if !d.GrantKMS {
		return nil
	}
	for i, ku := range s.Keys {
		if ku.Allowed || ku.Unknown != "" {
			continue
		}
		out, err := d.Clients.KMS.CreateGrant(ctx, &kms.CreateGrantInput{
			KeyId: aws.String(ku.Key), GranteePrincipal: aws.String(ku.Role), Operations: autoScalingKeyOperations, Name: aws.String(GrantName),
		})
		if err != nil {
			return refuse("grant_kms: creating a grant on KMS key %s for Auto Scaling's role %s: %v; %s", ku.name(), ku.Role, err, keyFix(ku, d.Target.Region))
		}
		s.Keys[i].Allowed, s.Keys[i].By = true, "grant "+aws.ToString(out.GrantId)
		d.emit(Event{Kind: EventStep, Step: "kms", Action: "granted", Message: fmt.Sprintf("granted Auto Scaling's role %s the use of KMS key %s (grant %s, name %s)", ku.Role, ku.name(), aws.ToString(out.GrantId), GrantName)})
	}
	return nil
}

// policyDoc is a key policy as far as phoenix reads it.
type policyDoc struct {
	Statement []policyStatement
}

type policyStatement struct {
	Effect       string
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	Action       stringList
	NotAction    json.RawMessage
	Resource     stringList
	Condition    map[string]map[string]stringList
}

// stringList is a policy value that may be a string or a list.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one any
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	switch v := one.(type) {
	case string:
		*l = []string{v}
	case bool:
		*l = []string{fmt.Sprint(v)}
	case []any:
		for _, e := range v {
			*l = append(*l, fmt.Sprint(e))
		}
	default:
		return fmt.Errorf("unexpected policy value %s", b)
	}
	return nil
}

func parsePolicy(text string) (*policyDoc, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, err
	}
	doc := &policyDoc{}
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var st policyStatement
		if err := json.Unmarshal(raw.Statement, &st); err != nil {
			return nil, err
		}
		doc.Statement = []policyStatement{st}
		return doc, nil
	}
	if err := json.Unmarshal(raw.Statement, &doc.Statement); err != nil {
		return nil, err
	}
	return doc, nil
}

// names reports whether the statement's principal is role or everyone.
func (st policyStatement) names(role string) bool {
	if len(st.NotPrincipal) > 0 || len(st.Principal) == 0 {
		return false
	}
	var star string
	if json.Unmarshal(st.Principal, &star) == nil {
		return star == "*"
	}
	var m map[string]stringList
	if json.Unmarshal(st.Principal, &m) != nil {
		return false
	}
	for _, p := range m["AWS"] {
		if p == "*" || p == role {
			return true
		}
	}
	return false
}

func (st policyStatement) onKey(key string) bool {
	for _, r := range st.Resource {
		if r == "*" || r == key {
			return true
		}
	}
	return false
}

func (st policyStatement) allowsAction(op string) bool {
	for _, a := range st.Action {
		if wildcard(strings.ToLower(a)).MatchString(strings.ToLower("kms:" + op)) {
			return true
		}
	}
	return false
}

// conditionsHold reports whether every condition of the statement is one
// phoenix knows to hold for an EBS launch by the role in account: the
// caller's account, EC2 as the calling service, a grant for an AWS
// resource. Any other condition is taken not to hold.
func (st policyStatement) conditionsHold(account string) bool {
	for op, kv := range st.Condition {
		for k, vals := range kv {
			ok := false
			switch strings.ToLower(k) {
			case "kms:calleraccount":
				ok = (op == "StringEquals" || op == "StringLike") && containsMatch(vals, account)
			case "kms:viaservice":
				ok = (op == "StringEquals" || op == "StringLike") && anyPrefix(vals, "ec2.")
			case "kms:grantisforawsresource":
				ok = op == "Bool" && contains(vals, "true")
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

func containsMatch(vals []string, s string) bool {
	for _, v := range vals {
		if wildcard(v).MatchString(s) {
			return true
		}
	}
	return false
}

func anyPrefix(vals []string, prefix string) bool {
	for _, v := range vals {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

// allowsAll reports whether Allow statements give role every operation
// Auto Scaling needs on key.
func (doc *policyDoc) allowsAll(role, key, account string) bool {
	for _, op := range autoScalingKeyOperations {
		ok := false
		for _, st := range doc.Statement {
			if st.Effect == "Allow" && len(st.NotAction) == 0 && st.names(role) && st.onKey(key) && st.allowsAction(string(op)) && st.conditionsHold(account) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// denies reports whether a Deny statement names role for one of the
// operations, whatever its conditions.
func (doc *policyDoc) denies(role, key string) bool {
	for _, st := range doc.Statement {
		if st.Effect != "Deny" || !st.names(role) || !st.onKey(key) {
			continue
		}
		for _, op := range autoScalingKeyOperations {
			if st.allowsAction(string(op)) {
				return true
			}
		}
	}
	return false
}

// templateKeys are the KMS keys a launch template version's block device
// mappings name.
func templateKeys(bdms []ec2types.LaunchTemplateBlockDeviceMapping) []string {
	var keys []string
	for _, b := range bdms {
		if b.Ebs != nil && aws.ToString(b.Ebs.KmsKeyId) != "" && !contains(keys, aws.ToString(b.Ebs.KmsKeyId)) {
			keys = append(keys, aws.ToString(b.Ebs.KmsKeyId))
		}
	}
	return keys
}

// launchFailure is the cause of the group's failed launches since the
// deploy began, as Auto Scaling's scaling activities give it: how many
// failed, and the newest one's status message (e.g. "Instance became
// unhealthy while waiting for instance to be in InService state.
// Termination Reason: Client.InternalError: Client error on launch").
type launchFailure struct {
	Count   int
	Message string
}

// clockSkew is how much earlier than the deploy's own clock an activity
// may start and still count as the deploy's.
const clockSkew = 5 * time.Second

// launchFailures reads group's newest scaling activities and counts the
// failed launches since the deploy began.
func (s *Session) launchFailures(ctx context.Context, group string) (launchFailure, error) {
	out, err := s.Clients.AutoScaling.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group), MaxRecords: aws.Int32(50)})
	if err != nil {
		return launchFailure{}, fmt.Errorf("describing the scaling activities of %q: %w", group, err)
	}
	var lf launchFailure
	var newest time.Time
	for _, a := range out.Activities {
		start := aws.ToTime(a.StartTime)
		if a.StatusCode != astypes.ScalingActivityStatusCodeFailed || start.Before(s.Started.Add(-clockSkew)) || !strings.HasPrefix(aws.ToString(a.Description), "Launching") {
			continue
		}
		lf.Count++
		if start.After(newest) || lf.Message == "" {
			newest = start
			lf.Message = aws.ToString(a.StatusMessage)
			if lf.Message == "" {
				lf.Message = aws.ToString(a.Description)
			}
		}
	}
	return lf, nil
}

// String quotes the cause for a failure message.
func (lf launchFailure) String() string {
	if lf.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d failed launches, the last: %q", lf.Count, lf.Message)
}

// launchRoles reads the roles the target's groups launch with.
func (d *Deployer) launchRoles(ctx context.Context) ([]string, error) {
	out, err := d.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: d.Target.Groups()})
	if err != nil {
		return nil, fmt.Errorf("describing auto scaling groups %s: %w", strings.Join(d.Target.Groups(), ", "), err)
	}
	var roles []string
	for _, g := range out.AutoScalingGroups {
		if r := launchRole(aws.ToString(g.ServiceLinkedRoleARN), aws.ToString(g.AutoScalingGroupARN)); !contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

// CheckKeyForLaunches refuses key (an id, ARN or alias) when the target's
// groups could not launch from snapshots encrypted with it, unless
// grant_kms is set (the deploy then creates the grant). Reads only:
// promote asks it before it copies an image under the key.
func (d *Deployer) CheckKeyForLaunches(ctx context.Context, key, what string) error {
	roles, err := d.launchRoles(ctx)
	if err != nil {
		return err
	}
	var kus []KeyUse
	for _, role := range roles {
		ku, err := checkKey(ctx, d.Clients, key, role)
		if err != nil {
			return err
		}
		kus = append(kus, ku)
	}
	return d.judgeKeys(kus, what)
}
