package deployer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awstag"
)

// PromotedFromTag marks a copy phoenix promote made: its value is
// "<source region>:<source AMI id>", so that a promotion run again finds
// the copy instead of making another.
const PromotedFromTag = "phoenix:promoted-from"

// Defaults of a Promotion.
const (
	DefaultCopyTimeout = 45 * time.Minute
	// cleanupTimeout bounds the deregistration of a half-made copy, which
	// runs on a fresh context so that Ctrl-C does not stop it.
	cleanupTimeout = 2 * time.Minute
)

// PromoteEnd is one environment of a promotion: a Deployer for its
// target, and the access to its region and account (for STS and KMS).
type PromoteEnd struct {
	// Environment is the environment's name in phoenix.hcl ("staging").
	Environment string
	Deployer    *Deployer
	Config      aws.Config
	// KMSKeyID encrypts the copy made in this environment; empty means
	// the region's default EBS key.
	KMSKeyID string
}

// Promotion brings the AMI that From serves, live and healthy, to To:
// the same id when both are in one region and account, otherwise an
// encrypted copy in To's region and account; then deploys it to To with
// To's strategy.
type Promotion struct {
	From, To PromoteEnd
	// CopyTimeout bounds the wait for the copy to be available.
	CopyTimeout time.Duration
	// PollInterval is the time between reads of the copy's state;
	// defaults to To's Deployer's poll interval.
	PollInterval time.Duration
	// Image, when set, is the AMI (in From's region) brought to To
	// instead of what From serves.
	Image string
	// Events receives progress; it may be nil.
	Events func(Event)
}

func (p *Promotion) emit(e Event) {
	if p.Events == nil {
		return
	}
	e.Time = time.Now().UTC()
	if e.Target == "" {
		e.Target = p.To.Deployer.Target.Name
	}
	p.Events(e)
}

func (p *Promotion) step(step, msg string, extra ...KeyText) {
	p.emit(Event{Kind: EventStep, Step: step, Message: msg, Extra: extra})
}

// sourceImage is the AMI being promoted, as read in From's region.
type sourceImage struct {
	ID          string
	Region      string
	Name        string
	Description string
	Tags        map[string]string
	Snapshots   []string
	// Encrypted says whether every EBS snapshot is encrypted.
	Encrypted bool
}

// Run promotes. It returns the deploy's Result once To has been deployed
// to, or found live and healthy on the promoted AMI already; before that
// it returns only an error: refused (nothing changed) or failed.
func (p *Promotion) Run(ctx context.Context) (*Result, error) {
	src, err := p.source(ctx)
	if err != nil {
		return nil, err
	}
	pc, err := p.check(ctx, src)
	if err != nil {
		return nil, err
	}
	ami, err := p.bringChecked(ctx, src, pc)
	if err != nil {
		return nil, err
	}
	return p.deploy(ctx, ami, pc.toLive)
}

// source reads what From serves, proven healthy (nothing else is
// promoted), or the Image given.
func (p *Promotion) source(ctx context.Context) (*sourceImage, error) {
	if err := p.init(); err != nil {
		return nil, err
	}
	from := p.From.Deployer
	if p.Image != "" {
		src, err := p.readSource(ctx, p.Image)
		if err != nil {
			return nil, asRefused(err)
		}
		return src, nil
	}
	live, err := from.Live(ctx)
	if err != nil {
		return nil, asRefused(fmt.Errorf("reading what %s serves: %w", p.From.Environment, err))
	}
	where := fmt.Sprintf("%s's target %s (group %q in %s)", p.From.Environment, from.Target.Name, live.Group, from.Target.Region)
	switch {
	case live.AMI == "":
		return nil, refuse("%s runs no launch template AMI: there is nothing to promote", where)
	case live.Health == nil:
		return nil, refuse("%s: its health could not be read, so there is nothing proven to promote", where)
	case !live.Healthy():
		return nil, refuse("%s is not live and healthy on %s, so there is nothing proven to promote: %s", where, live.AMI, strings.Join(live.Health.Problems, "; "))
	case live.Health.Healthy == 0:
		return nil, refuse("%s has no healthy target on %s (desired capacity %d), so there is nothing proven to promote", where, live.AMI, live.Health.Desired)
	}
	src, err := p.readSource(ctx, live.AMI)
	if err != nil {
		return nil, asRefused(err)
	}
	p.step("read", fmt.Sprintf("%s serves %s (%s) in %s, healthy %d/%d", p.From.Environment, src.ID, src.Name, src.Region, live.Health.Healthy, live.Health.Total),
		KeyText{"environment", p.From.Environment}, KeyText{"region", src.Region}, KeyText{"ami", src.ID}, KeyText{"name", src.Name})
	return src, nil
}

// init checks that both ends are there and sets the defaults.
func (p *Promotion) init() error {
	if p.From.Deployer == nil || p.To.Deployer == nil {
		return refuse("promote needs a from and a to environment")
	}
	p.From.Deployer.defaults()
	p.To.Deployer.defaults()
	if p.CopyTimeout == 0 {
		p.CopyTimeout = DefaultCopyTimeout
	}
	if p.PollInterval == 0 {
		p.PollInterval = p.To.Deployer.PollInterval
	}
	return nil
}

// promoteCheck is what check read of To.
type promoteCheck struct {
	toLive                 *Live
	fromAccount, toAccount string
	copying                bool
}

// check reads To, with reads only: what it serves (which also refuses a
// missing group), both accounts, and whether To's policy admits the AMI
// as it will arrive (a copy is encrypted, owned by To's account and
// tagged with its origin), so that a refused AMI is never copied.
func (p *Promotion) check(ctx context.Context, src *sourceImage) (*promoteCheck, error) {
	from, to := p.From.Deployer, p.To.Deployer
	toLive, err := to.Live(ctx)
	if err != nil {
		return nil, asRefused(fmt.Errorf("reading what %s serves: %w", p.To.Environment, err))
	}
	fromAccount, err := account(ctx, p.From.Config)
	if err != nil {
		return nil, asRefused(fmt.Errorf("environment %s: %w", p.From.Environment, err))
	}
	toAccount, err := account(ctx, p.To.Config)
	if err != nil {
		return nil, asRefused(fmt.Errorf("environment %s: %w", p.To.Environment, err))
	}
	pc := &promoteCheck{toLive: toLive, fromAccount: fromAccount, toAccount: toAccount, copying: from.Target.Region != to.Target.Region || fromAccount != toAccount}
	arrives := &Image{ID: src.ID, Name: src.Name, State: "available", Encrypted: src.Encrypted, Owner: fromAccount, Tags: map[string]string{}, Snapshots: src.Snapshots}
	for k, v := range src.Tags {
		arrives.Tags[k] = v
	}
	if pc.copying {
		arrives.Encrypted, arrives.Owner = true, toAccount
		arrives.Tags[PromotedFromTag] = src.Region + ":" + src.ID
	}
	v, err := to.verdict(ctx, arrives)
	if err != nil {
		return nil, asRefused(err)
	}
	if v != nil && !v.Admitted {
		return nil, admitError(arrives, to.Environment, v)
	}
	if v != nil {
		p.step("policy", v.summary(src.ID, to.Environment))
	}
	return pc, nil
}

// bringChecked brings the source to To (a copy when To is in another
// region or account) and returns the AMI To deploys.
func (p *Promotion) bringChecked(ctx context.Context, src *sourceImage, pc *promoteCheck) (string, error) {
	if !pc.copying {
		if p.Image != "" {
			p.emit(Event{Kind: EventStep, Step: "copy", Target: p.To.Deployer.Target.Name, Message: fmt.Sprintf("%s is in the region and account of target %s already", src.ID, p.To.Deployer.Target.Name)})
		} else {
			p.step("copy", fmt.Sprintf("%s is in the same region and account as %s: promoting %s itself", p.To.Environment, p.From.Environment, src.ID))
		}
		return src.ID, nil
	}
	return p.bring(ctx, src, pc.toLive, pc.fromAccount, pc.toAccount)
}

// deploy deploys ami to To, or finds it live and healthy there already.
func (p *Promotion) deploy(ctx context.Context, ami string, toLive *Live) (*Result, error) {
	to := p.To.Deployer
	if toLive.AMI == ami && toLive.Healthy() {
		msg := fmt.Sprintf("%s is already live and healthy in %s (%d/%d): nothing to deploy", ami, p.To.Environment, toLive.Health.Healthy, toLive.Health.Total)
		p.step("deploy", msg)
		now := time.Now().UTC()
		res := &Result{Outcome: Succeeded, Target: to.Target.Name, Region: to.Target.Region, Group: to.Target.Group, AMI: ami, Previous: ami, Message: msg, Started: now, Ended: now}
		if to.Strategy != nil {
			res.Strategy = to.Strategy.Name()
		}
		return res, nil
	}
	return to.Run(ctx, ami)
}

// readSource reads the AMI being promoted in From's region.
func (p *Promotion) readSource(ctx context.Context, id string) (*sourceImage, error) {
	from := p.From.Deployer
	out, err := from.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil && !notFound(err, "InvalidAMIID.") {
		return nil, fmt.Errorf("describing AMI %s in %s: %w", id, from.Target.Region, err)
	}
	var im *ec2types.Image
	if out != nil {
		for i := range out.Images {
			if aws.ToString(out.Images[i].ImageId) == id {
				im = &out.Images[i]
			}
		}
	}
	if im == nil {
		return nil, refuse("AMI %s, which %s serves, is no longer registered in %s: it cannot be copied; deploy a registered AMI to %s first", id, p.From.Environment, from.Target.Region, p.From.Environment)
	}
	if im.State != ec2types.ImageStateAvailable {
		return nil, refuse("AMI %s, which %s serves, is %s, not available: it cannot be copied", id, p.From.Environment, im.State)
	}
	src := &sourceImage{ID: id, Region: from.Target.Region, Name: aws.ToString(im.Name), Description: aws.ToString(im.Description), Tags: map[string]string{}}
	for _, t := range im.Tags {
		src.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	src.Encrypted = len(im.BlockDeviceMappings) > 0
	for _, b := range im.BlockDeviceMappings {
		if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" {
			src.Snapshots = append(src.Snapshots, aws.ToString(b.Ebs.SnapshotId))
		}
		if b.Ebs != nil && !aws.ToBool(b.Ebs.Encrypted) {
			src.Encrypted = false
		}
	}
	return src, nil
}

// account is the AWS account that cfg's credentials act in.
func account(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("finding the AWS account (sts GetCallerIdentity): %w", err)
	}
	return aws.ToString(out.Account), nil
}

// bring makes the source available in To's region and account: the copy
// an earlier promote made, or a new one; it returns the copy's id once
// the copy is available.
func (p *Promotion) bring(ctx context.Context, src *sourceImage, toLive *Live, fromAccount, toAccount string) (string, error) {
	to := p.To.Deployer
	mark := src.Region + ":" + src.ID
	found, err := p.findCopies(ctx, mark)
	if err != nil {
		return "", asRefused(err)
	}
	var pending *ec2types.Image
	var broken []ec2types.Image
	for i := range found {
		switch found[i].State {
		case ec2types.ImageStateAvailable:
			id := aws.ToString(found[i].ImageId)
			p.step("copy", fmt.Sprintf("found copy %s made by an earlier promote (%s=%s), available in %s", id, PromotedFromTag, mark, to.Target.Region),
				KeyText{"copy", id}, KeyText{"source", mark})
			return id, nil
		case ec2types.ImageStatePending:
			if pending == nil {
				pending = &found[i]
			}
		case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid:
			broken = append(broken, found[i])
		}
	}
	if pending != nil {
		id := aws.ToString(pending.ImageId)
		p.step("copy", fmt.Sprintf("found copy %s made by an earlier promote (%s=%s), still pending in %s: waiting for it", id, PromotedFromTag, mark, to.Target.Region),
			KeyText{"copy", id}, KeyText{"source", mark})
		return id, p.waitForCopy(ctx, id)
	}

	key, err := p.checkCopy(ctx, src, fromAccount, toAccount)
	if err != nil {
		return "", err
	}
	// Past the preconditions: from here on AWS changes.
	for _, im := range broken {
		id := aws.ToString(im.ImageId)
		reason := ""
		if im.StateReason != nil {
			reason = ": " + aws.ToString(im.StateReason.Message)
		}
		p.emit(Event{Kind: EventWarning, Step: "copy", Message: fmt.Sprintf("an earlier copy %s is %s%s; deregistering it and copying again", id, im.State, reason)})
		if err := p.deregister(ctx, id); err != nil {
			return "", err
		}
	}
	if fromAccount != toAccount {
		if err := p.share(ctx, src, toAccount); err != nil {
			return "", err
		}
	}
	return p.copy(ctx, src, key)
}

// findCopies lists the copies of the source in To's region and account,
// newest first.
func (p *Promotion) findCopies(ctx context.Context, mark string) ([]ec2types.Image, error) {
	to := p.To.Deployer
	out, err := to.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + PromotedFromTag), Values: []string{mark}}}})
	if err != nil {
		return nil, fmt.Errorf("looking for a copy of %s in %s: %w", mark, to.Target.Region, err)
	}
	sort.SliceStable(out.Images, func(i, j int) bool {
		return aws.ToString(out.Images[i].CreationDate) > aws.ToString(out.Images[j].CreationDate)
	})
	return out.Images, nil
}

// copyKey is the key a copy is encrypted with, in words and as the
// KmsKeyId to pass (empty: the region's default).
type copyKey struct {
	ID   string
	Text string
	// Default is the region's default EBS key, when ID is empty.
	Default string
}

// keyRef is the key the copy is encrypted with.
func (k copyKey) keyRef() string { return orText(k.ID, k.Default) }

// checkCopy checks, reading only, everything a copy needs: a free name in
// To's region (failed copies of the source are deregistered before the
// copy), a usable KMS key, and (across accounts) snapshots that can
// be shared.
func (p *Promotion) checkCopy(ctx context.Context, src *sourceImage, fromAccount, toAccount string) (copyKey, error) {
	to := p.To.Deployer
	out, err := to.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{src.Name}}}})
	if err != nil {
		return copyKey{}, asRefused(fmt.Errorf("looking for AMIs named %q in %s: %w", src.Name, to.Target.Region, err))
	}
	mark := src.Region + ":" + src.ID
	for _, im := range out.Images {
		if aws.ToString(im.Name) == src.Name && !hasTag(im.Tags, PromotedFromTag, mark) {
			return copyKey{}, refuse("%s already has an AMI named %q (%s) that phoenix promote did not copy from %s:%s (it has no %s tag for it); AMI names are unique per region and account: deploy that AMI with phoenix deploy if it is the same image, or deregister it",
				to.Target.Region, src.Name, aws.ToString(im.ImageId), src.Region, src.ID, PromotedFromTag)
		}
	}
	key, err := p.copyKey(ctx)
	if err != nil {
		return copyKey{}, asRefused(err)
	}
	if err := to.CheckKeyForLaunches(ctx, key.keyRef(), "which "+p.To.Environment+"'s copy would be encrypted with"); err != nil {
		return copyKey{}, asRefused(err)
	}
	if fromAccount != toAccount {
		if err := p.checkShareable(ctx, src, toAccount); err != nil {
			return copyKey{}, asRefused(err)
		}
	}
	return key, nil
}

// copyKey resolves the To environment's kms_key_id, or names the
// region's default EBS key when it is not set.
func (p *Promotion) copyKey(ctx context.Context) (copyKey, error) {
	to := p.To.Deployer
	ref := p.To.KMSKeyID
	if ref == "" {
		out, err := to.Clients.EC2.GetEbsDefaultKmsKeyId(ctx, &ec2.GetEbsDefaultKmsKeyIdInput{})
		if err != nil {
			return copyKey{}, fmt.Errorf("reading the default EBS key of %s: %w", to.Target.Region, err)
		}
		return copyKey{Text: fmt.Sprintf("%s's default EBS key %s (%s sets no kms_key_id)", to.Target.Region, aws.ToString(out.KmsKeyId), p.To.Environment), Default: aws.ToString(out.KmsKeyId)}, nil
	}
	if strings.HasPrefix(ref, "arn:") {
		if parts := strings.Split(ref, ":"); len(parts) > 3 && parts[3] != to.Target.Region {
			return copyKey{}, refuse("kms_key_id %q of environment %s is in %s, not in the environment's region %s: a copy is encrypted with a key of its own region", ref, p.To.Environment, parts[3], to.Target.Region)
		}
	}
	out, err := kms.NewFromConfig(p.To.Config).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(ref)})
	var nf *kmstypes.NotFoundException
	if errors.As(err, &nf) {
		return copyKey{}, refuse("kms_key_id %q of environment %s not found in %s: create the key (or alias) there, or fix kms_key_id", ref, p.To.Environment, to.Target.Region)
	}
	if err != nil {
		return copyKey{}, fmt.Errorf("describing kms_key_id %q of environment %s: %w", ref, p.To.Environment, err)
	}
	if md := out.KeyMetadata; md == nil || md.KeyState != kmstypes.KeyStateEnabled {
		state := "unknown"
		if md != nil {
			state = string(md.KeyState)
		}
		return copyKey{}, refuse("kms_key_id %q of environment %s is %s, not Enabled: a copy encrypted with it would fail; enable the key or change kms_key_id", ref, p.To.Environment, state)
	}
	return copyKey{ID: ref, Text: ref}, nil
}

// checkShareable refuses source snapshots that AWS will not share with
// another account: those encrypted with an AWS-managed key (aws/ebs),
// and those whose customer managed key the other account may not use
// (its key policy must name that account; a copy would fail).
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html#copy-ami-across-accounts
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
func (p *Promotion) checkShareable(ctx context.Context, src *sourceImage, toAccount string) error {
	if len(src.Snapshots) == 0 {
		return nil
	}
	from := p.From.Deployer
	out, err := from.Clients.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: src.Snapshots})
	if err != nil {
		return fmt.Errorf("describing the snapshots of %s: %w", src.ID, err)
	}
	k := kms.NewFromConfig(p.From.Config)
	for _, s := range out.Snapshots {
		if !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) == "" {
			continue
		}
		key, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: s.KmsKeyId})
		if err != nil {
			return fmt.Errorf("describing key %s of snapshot %s: %w", aws.ToString(s.KmsKeyId), aws.ToString(s.SnapshotId), err)
		}
		if key.KeyMetadata != nil && key.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws {
			return refuse("snapshot %s of %s is encrypted with the AWS-managed key %s, which AWS does not let another account use: %s cannot copy it; build the image with a customer managed key in %s (phoenix-ebs kms_key_id) and grant %s's account use of it",
				aws.ToString(s.SnapshotId), src.ID, aws.ToString(s.KmsKeyId), p.To.Environment, src.Region, p.To.Environment)
		}
		if err := p.checkKeyShared(ctx, src, s, aws.ToString(key.KeyMetadata.Arn), toAccount); err != nil {
			return err
		}
	}
	return nil
}

// checkKeyShared reads the source snapshot's key with To's credentials,
// in the key's region: a key policy that lets To's account use the key
// lets it describe the key too, and one that does not answers
// AccessDeniedException.
func (p *Promotion) checkKeyShared(ctx context.Context, src *sourceImage, s ec2types.Snapshot, keyARN, toAccount string) error {
	cfg := p.To.Config.Copy()
	cfg.Region = src.Region
	_, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDeniedException" || ae.ErrorCode() == "NotFoundException") {
		return refuse("snapshot %s of %s is encrypted with key %s, which %s's account %s may not use (kms:DescribeKey: %s): a copy into %s would fail; "+
			"add a statement to that key's policy allowing arn:aws:iam::%s:root %s, then promote again",
			aws.ToString(s.SnapshotId), src.ID, keyARN, p.To.Environment, toAccount, ae.ErrorCode(), p.To.Environment, toAccount, strings.Join(SharedKeyActions, ", "))
	}
	return fmt.Errorf("describing key %s of snapshot %s with %s's credentials: %w", keyARN, aws.ToString(s.SnapshotId), p.To.Environment, err)
}

// SharedKeyActions are the KMS actions another account needs on the key
// of an image's snapshots to copy or launch it, as AWS documents for
// sharing a key for EBS; CreateGrant only for AWS resources
// (kms:GrantIsForAWSResource).
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
var SharedKeyActions = []string{"kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant (with kms:GrantIsForAWSResource true)"}

// share lets toAccount launch the source AMI and create volumes from its
// snapshots, which a copy into that account needs. Permissions already
// there are left alone.
func (p *Promotion) share(ctx context.Context, src *sourceImage, toAccount string) error {
	e := p.From.Deployer.Clients.EC2
	attr, err := e.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{ImageId: aws.String(src.ID), Attribute: ec2types.ImageAttributeNameLaunchPermission})
	if err != nil {
		return fmt.Errorf("reading the launch permissions of %s: %w", src.ID, err)
	}
	has := false
	for _, lp := range attr.LaunchPermissions {
		has = has || aws.ToString(lp.UserId) == toAccount
	}
	var granted []string
	if !has {
		_, err := e.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{ImageId: aws.String(src.ID),
			LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(toAccount)}}}})
		if err != nil {
			return fmt.Errorf("granting account %s launch permission on %s: %w", toAccount, src.ID, err)
		}
		granted = append(granted, "launch permission on "+src.ID)
	}
	for _, snap := range src.Snapshots {
		attr, err := e.DescribeSnapshotAttribute(ctx, &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(snap), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			return fmt.Errorf("reading the create-volume permissions of %s: %w", snap, err)
		}
		has := false
		for _, cp := range attr.CreateVolumePermissions {
			has = has || aws.ToString(cp.UserId) == toAccount
		}
		if has {
			continue
		}
		_, err = e.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(snap),
			CreateVolumePermission: &ec2types.CreateVolumePermissionModifications{Add: []ec2types.CreateVolumePermission{{UserId: aws.String(toAccount)}}}})
		if err != nil {
			return fmt.Errorf("granting account %s create-volume permission on snapshot %s of %s: %w", toAccount, snap, src.ID, err)
		}
		granted = append(granted, "create-volume permission on "+snap)
	}
	if len(granted) == 0 {
		p.step("share", fmt.Sprintf("%s (account %s) may already use %s and its snapshots", p.To.Environment, toAccount, src.ID))
		return nil
	}
	p.step("share", fmt.Sprintf("granted %s (account %s) %s", p.To.Environment, toAccount, strings.Join(granted, ", ")), KeyText{"account", toAccount})
	return nil
}

// copy copies the source into To's region and account, encrypted, with
// the source's name, description and tags plus PromotedFromTag, and
// waits until it is available.
func (p *Promotion) copy(ctx context.Context, src *sourceImage, key copyKey) (string, error) {
	to := p.To.Deployer
	mark := src.Region + ":" + src.ID
	tags := map[string]string{}
	for k, v := range src.Tags {
		if !strings.HasPrefix(k, "aws:") { // reserved: AWS refuses them in a request
			tags[k] = v
		}
	}
	tags[PromotedFromTag] = mark
	in := &ec2.CopyImageInput{
		SourceImageId: aws.String(src.ID),
		SourceRegion:  aws.String(src.Region),
		Name:          aws.String(src.Name),
		Encrypted:     aws.Bool(true),
		ClientToken:   aws.String(clientToken()),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: awstag.EC2(tags)},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstag.EC2(tags)},
		},
	}
	if src.Description != "" {
		in.Description = aws.String(src.Description)
	}
	if key.ID != "" {
		in.KmsKeyId = aws.String(key.ID)
	}
	out, err := to.Clients.EC2.CopyImage(ctx, in)
	if err != nil {
		return "", fmt.Errorf("copying %s from %s to %s: %w", src.ID, src.Region, to.Target.Region, err)
	}
	id := aws.ToString(out.ImageId)
	p.step("copy", fmt.Sprintf("copying %s (%s) from %s to %s as %s, encrypted with %s, tagged %s=%s", src.ID, src.Name, src.Region, to.Target.Region, id, key.Text, PromotedFromTag, mark),
		KeyText{"copy", id}, KeyText{"source", mark}, KeyText{"kms_key", key.Text})
	return id, p.waitForCopy(ctx, id)
}

// waitForCopy waits until the copy id is available. A copy that fails,
// or whose wait is interrupted, is deregistered (it would never be of
// use); one that outlasts the timeout is left for a promote run again to
// wait for.
func (p *Promotion) waitForCopy(ctx context.Context, id string) error {
	to := p.To.Deployer
	start := time.Now()
	deadline := start.Add(p.CopyTimeout)
	state, reason := "unknown", ""
	var readErrs int
	seen := false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			err := fmt.Errorf("promote interrupted while copy %s was %s (%w)", id, state, ctx.Err())
			if derr := p.deregister(ctx, id); derr != nil {
				return fmt.Errorf("%w; %w", err, derr)
			}
			return fmt.Errorf("%w: deregistered the half-made copy; nothing was deployed", err)
		case <-t.C:
		}
		out, err := to.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		switch {
		case err != nil && ctx.Err() != nil:
			continue // the select above handles it
		case (notFound(err, "InvalidAMIID.") || err == nil && len(out.Images) == 0) && !seen:
			// A new copy can take a moment to show in DescribeImages.
			state = "not visible yet"
		case notFound(err, "InvalidAMIID.") || err == nil && len(out.Images) == 0:
			return fmt.Errorf("copy %s is gone from %s (deregistered while phoenix waited for it): run promote again to copy anew", id, to.Target.Region)
		case err != nil:
			readErrs++
			p.emit(Event{Kind: EventWarning, Step: "copy", Message: fmt.Sprintf("reading copy %s: %v", id, err)})
			if readErrs >= maxReadErrors {
				return fmt.Errorf("reading copy %s in %s: %w (the copy goes on: run promote again to wait for it)", id, to.Target.Region, err)
			}
		default:
			readErrs, seen = 0, true
			im := out.Images[0]
			state, reason = string(im.State), ""
			if im.StateReason != nil {
				reason = aws.ToString(im.StateReason.Message)
			}
			switch im.State {
			case ec2types.ImageStateAvailable:
				p.step("copy", fmt.Sprintf("copy %s is available in %s after %s", id, to.Target.Region, time.Since(start).Round(time.Second)), KeyText{"copy", id})
				return nil
			case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
				err := fmt.Errorf("copy %s in %s is %s: %s", id, to.Target.Region, im.State, orText(reason, "no reason given"))
				if derr := p.deregister(ctx, id); derr != nil {
					return fmt.Errorf("%w; %w", err, derr)
				}
				return fmt.Errorf("%w; deregistered it, nothing was deployed", err)
			}
			p.emit(Event{Kind: EventProgress, Step: "copy", Message: fmt.Sprintf("copy %s is %s", id, state)})
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("timed out after %s waiting for copy %s in %s to be available (still %s); raise --copy-timeout if copies take longer: the copy goes on, and running the same promote again waits for it", p.CopyTimeout, id, to.Target.Region, state)
		}
		t.Reset(min(p.PollInterval, time.Until(deadline)))
	}
}

// deregister removes a half-made copy and its snapshots, on a fresh
// context so that Ctrl-C does not stop it.
func (p *Promotion) deregister(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	to := p.To.Deployer
	_, err := to.Clients.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id), DeleteAssociatedSnapshots: aws.Bool(true)})
	if err != nil && !notFound(err, "InvalidAMIID.") {
		return fmt.Errorf("deregistering the half-made copy %s in %s: %w (deregister it by hand)", id, to.Target.Region, err)
	}
	p.step("copy", fmt.Sprintf("deregistered copy %s in %s", id, to.Target.Region), KeyText{"copy", id})
	return nil
}

func hasTag(tags []ec2types.Tag, key, value string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == key && aws.ToString(t.Value) == value {
			return true
		}
	}
	return false
}

// notFound reports whether err is an AWS error whose code starts with
// prefix (e.g. "InvalidAMIID.").
func notFound(err error, prefix string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), prefix)
}

// clientToken makes CopyImage idempotent across the SDK's retries of one
// call; a new call gets a new token.
func clientToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
