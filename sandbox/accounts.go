package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Accounts. The sandbox serves any number of AWS accounts: an access key
// acts in AccountID unless AddAccount maps it to another, and a session
// from sts:AssumeRole acts in the account of its role. Each account has
// its own regions, each a fresh account's world, and sees nothing of
// another account's resources unless that account shares them as AWS
// lets it: AMI launch permissions, snapshot create-volume permissions
// and KMS key policies or grants.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html

// regionKey names one region of one account.
type regionKey struct {
	Account, Name string
}

// AddAccount makes requests signed with accessKey act in account, a
// 12-digit account id. Any secret key is accepted, as for every key.
func (s *Sandbox) AddAccount(accessKey, account string) error {
	if err := CheckAccount(accessKey, account); err != nil {
		return err
	}
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	w.accounts[accessKey] = account
	return nil
}

// TrustRole lets principals of the given accounts assume roleARN, as the
// role's trust policy would in IAM. A role is assumed only by accounts it
// trusts, its own included.
func (s *Sandbox) TrustRole(roleARN string, accounts ...string) error {
	for _, a := range accounts {
		if err := CheckTrustRole(roleARN, a); err != nil {
			return err
		}
	}
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trust[roleARN] = append(w.trust[roleARN], accounts...)
	return nil
}

// CheckAccount checks the arguments of AddAccount.
func CheckAccount(accessKey, account string) error {
	if !accountIDPattern.MatchString(account) {
		return fmt.Errorf("account %q is not a 12-digit AWS account id", account)
	}
	if !accessKeyPattern.MatchString(accessKey) {
		return fmt.Errorf("access key %q is not an access key id (up to 128 letters, digits and underscores)", accessKey)
	}
	return nil
}

// CheckTrustRole checks the arguments of TrustRole.
func CheckTrustRole(roleARN, account string) error {
	if !roleARNPattern.MatchString(roleARN) {
		return fmt.Errorf("role %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", roleARN)
	}
	if !accountIDPattern.MatchString(account) {
		return fmt.Errorf("trusted account %q is not a 12-digit AWS account id", account)
	}
	return nil
}

var (
	roleARNPattern   = roleARN
	accessKeyPattern = regexp.MustCompile(`^\w{1,128}$`)
)

// callerAccount is the account a request signed with access acts in.
// Callers hold w.mu.
func (w *World) callerAccount(access string) string {
	if s, ok := w.sessions[access]; ok && w.now().Before(s.Expires) {
		if m := roleARN.FindStringSubmatch(s.RoleARN); m != nil {
			return m[1]
		}
	}
	if a, ok := w.accounts[access]; ok {
		return a
	}
	return AccountID
}

// trusts reports whether account may assume role from another account.
func (w *World) trusts(role, account string) bool {
	for _, a := range w.trust[role] {
		if a == account {
			return true
		}
	}
	return false
}

// peers are the same-named regions of every other account that exists,
// in account order. Callers hold w.mu.
func (r *Region) peers() []*Region {
	var out []*Region
	for k, o := range r.w.regions {
		if k.Name == r.Name && k.Account != r.Account {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// image finds an AMI by id as the caller's account sees it (findImage).
func (c *call) image(id string) (*Image, bool) { return c.r.findImage(id) }

// sharedImages are the images other accounts own in this region that
// the caller may see (shared with it).
func (c *call) sharedImages() []*Image {
	var out []*Image
	for _, o := range c.r.peers() {
		for _, im := range o.Images {
			if !im.Builtin && c.imageVisible(im) {
				out = append(out, im)
			}
		}
	}
	return out
}

// snapshot finds a snapshot by id: the caller's region's own, or one
// another account owns in the same region. Visibility is the caller's to
// check (snapshotVisible).
func (c *call) snapshot(id string) (*Snapshot, bool) { return c.r.findSnapshot(id) }

// findSnapshot finds a snapshot by id: the region's own, or one another
// account owns in the same region.
func (r *Region) findSnapshot(id string) (*Snapshot, bool) {
	if s, ok := r.Snapshots[id]; ok {
		return s, true
	}
	for _, o := range r.peers() {
		if s, ok := o.Snapshots[id]; ok && !s.Builtin {
			return s, true
		}
	}
	return nil, false
}

// sharedSnapshots are the snapshots other accounts own in this region
// that the caller may create volumes from.
func (c *call) sharedSnapshots() []*Snapshot {
	var out []*Snapshot
	for _, o := range c.r.peers() {
		for _, s := range o.Snapshots {
			if !s.Builtin && c.snapshotVisible(s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// imageTags are an image's tags as the caller's account sees them: the
// owner's, or, on an image another account shares, the ones the caller's
// account put there itself. Tags on a public or shared AMI are visible
// only in the account that added them.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-resources
func (c *call) imageTags(im *Image) *Tags {
	if im.Builtin || im.OwnerID == c.r.Account {
		return &im.Tags
	}
	if im.AccountTags == nil {
		im.AccountTags = map[string]*Tags{}
	}
	t, ok := im.AccountTags[c.r.Account]
	if !ok {
		t = &Tags{}
		im.AccountTags[c.r.Account] = t
	}
	return t
}

// accountOfARN is the account id field of an ARN, or "".
func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// findImage finds an AMI by id as the region's account sees it: its own
// (public images included: every account has them, under the same ids),
// or one that another account owns in the same region. Whether the
// account may see or launch it is the caller's to check (mayLaunch).
func (r *Region) findImage(id string) (*Image, bool) {
	if im, ok := r.Images[id]; ok {
		return im, true
	}
	for _, o := range r.peers() {
		if im, ok := o.Images[id]; ok && !im.Builtin {
			return im, true
		}
	}
	return nil, false
}

// mayLaunch reports whether the region's account may launch im: it owns
// it, or the image is public or shared with the account, with its
// organization, or with one of its organizational units (an OU share
// reaches the accounts of its child OUs too).
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
func (r *Region) mayLaunch(im *Image) bool {
	if im.OwnerID == r.Account || im.Builtin || im.Public() || contains(im.Permissions.UserIDs, r.Account) {
		return true
	}
	m, ok := r.w.orgs[r.Account]
	if !ok {
		return false
	}
	if contains(im.Permissions.OrgARNs, m.Org) {
		return true
	}
	for _, ou := range m.OUs {
		if contains(im.Permissions.OUARNs, ou) {
			return true
		}
	}
	return false
}

// orgMembership is an account's place in an AWS Organizations
// organization: the organization's ARN and the ARNs of the OUs the
// account is in, from the outermost to its own.
type orgMembership struct {
	Org string
	OUs []string
}

var (
	orgARNPattern = regexp.MustCompile(`^arn:aws:organizations::\d{12}:organization/(o-[a-z0-9]{10,32})$`)
	ouARNPattern  = regexp.MustCompile(`^arn:aws:organizations::\d{12}:ou/(o-[a-z0-9]{10,32})/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}$`)
)

// CheckOrganization checks the arguments of JoinOrganization.
func CheckOrganization(account, orgARN string, ouARNs ...string) error {
	if !accountIDPattern.MatchString(account) {
		return fmt.Errorf("account %q is not a 12-digit AWS account id", account)
	}
	m := orgARNPattern.FindStringSubmatch(orgARN)
	if m == nil {
		return fmt.Errorf("organization %q is not an organization ARN (arn:aws:organizations::<management account>:organization/o-…)", orgARN)
	}
	for _, ou := range ouARNs {
		om := ouARNPattern.FindStringSubmatch(ou)
		if om == nil {
			return fmt.Errorf("organizational unit %q is not an OU ARN (arn:aws:organizations::<management account>:ou/o-…/ou-…)", ou)
		}
		if om[1] != m[1] {
			return fmt.Errorf("organizational unit %q is not in organization %s", ou, m[1])
		}
	}
	return nil
}

// JoinOrganization puts account in an organization and in the given OUs
// (outermost first), for AMI launch permissions shared by organization
// or OU.
func (s *Sandbox) JoinOrganization(account, orgARN string, ouARNs ...string) error {
	if err := CheckOrganization(account, orgARN, ouARNs...); err != nil {
		return err
	}
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	w.orgs[account] = orgMembership{Org: orgARN, OUs: append([]string(nil), ouARNs...)}
	return nil
}

// imageTagsView is imageTags for reading: it adds no entry.
func (c *call) imageTagsView(im *Image) Tags {
	if im.Builtin || im.OwnerID == c.r.Account {
		return im.Tags
	}
	if t := im.AccountTags[c.r.Account]; t != nil {
		return *t
	}
	return nil
}

// checkSharedCopy refuses a copy of an image another account shares
// unless that account also lets the caller read the storage: a
// create-volume permission on every snapshot ("You do not have permission
// to access the storage of this ami"), and, for encrypted snapshots, use
// of their KMS keys through EC2 as a key shared with another account
// needs (its key policy or a grant). A copy the keys deny is accepted and
// fails a little later, as a copy with an unusable key does: keyDenied
// says so.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html#copy-ami-across-accounts
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
func (c *call) checkSharedCopy(home *Region, im *Image) (keyDenied bool, _ *APIError) {
	for _, b := range im.BlockDevices {
		if b.SnapshotID == "" {
			continue
		}
		s := home.Snapshots[b.SnapshotID]
		if s == nil || !snapshotRestorableBy(s, c.r.Account) {
			return false, errf("InvalidRequest", "You do not have permission to access the storage of this ami")
		}
		if !s.Encrypted {
			continue
		}
		k, err := c.w.resolveKMSKey(home, s.KmsKeyID)
		if err != nil || !home.keyAllowsLaunch(k, c.principal()) {
			keyDenied = true
		}
	}
	return keyDenied, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// publicID is the id of a public image or its snapshot in a region: the
// same in every account, as a public AMI's id is.
func publicID(prefix, region, name string) string {
	sum := sha256.Sum256([]byte(prefix + "/" + region + "/" + name))
	return prefix + "-0" + hex.EncodeToString(sum[:])[:16]
}
