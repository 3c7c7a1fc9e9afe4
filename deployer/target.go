package deployer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"
)

// Target is what a deploy changes: an Auto Scaling group in a region and
// the target groups whose health decides success.
type Target struct {
	// Name is the target's label in phoenix.hcl ("web"); the group's name
	// when deploying from flags.
	Name   string
	Region string
	// Group is the Auto Scaling group. For blue-green it is the blue
	// colour; the green colour and the listener rule come with that
	// strategy's fields below.
	Group string
	// TargetGroupARNs are the target groups to gate on; empty means those
	// attached to the group (discovered on every deploy).
	TargetGroupARNs []string
	// ListenerARN and RuleARN name the listener rule (or the listener's
	// default action) whose forward weights say which colour is live.
	// Used by blue-green; rolling ignores them.
	ListenerARN string
	RuleARN     string
	// PeerGroup is blue-green's second group (the green colour).
	PeerGroup string
}

// Groups are the Auto Scaling groups a deploy to the target locks: the
// group, and blue-green's peer.
func (t Target) Groups() []string {
	if t.PeerGroup != "" {
		return []string{t.Group, t.PeerGroup}
	}
	return []string{t.Group}
}

// TargetGroup is a load balancer target group.
type TargetGroup struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	// LoadBalancers are those with a listener or rule forwarding to it;
	// none means the load balancer never health-checks its targets.
	LoadBalancers []string `json:"load_balancers"`
	// Judge is how long the load balancer takes at most to decide about
	// a new target, with a check to spare: an interval before its first
	// check, as many checks as the larger threshold needs, and one more.
	Judge time.Duration `json:"-"`
}

// TemplateVersion is one numbered launch template version.
type TemplateVersion struct {
	ID          string `json:"launch_template"`
	Name        string `json:"launch_template_name"`
	Version     int64  `json:"version"`
	AMI         string `json:"ami"`
	Description string `json:"description,omitempty"`
	// KMSKeys are the keys its block device mappings name.
	KMSKeys []string `json:"kms_keys,omitempty"`
	// Alias is the image id as the version says it when that is an SSM
	// parameter ("resolve:ssm:/web/ami"); AMI is then what the parameter
	// resolves to as the version is read.
	Alias string `json:"image_alias,omitempty"`
}

func (v *TemplateVersion) String() string {
	return fmt.Sprintf("launch template %s version %d", v.ID, v.Version)
}

// Image is an AMI as the deployer checks it.
type Image struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Encrypted bool   `json:"encrypted"`
	// Snapshots are the image's EBS snapshots.
	Snapshots []string `json:"snapshots,omitempty"`
	// Owner is the account that owns the image (another one's for an
	// image shared with this account).
	Owner string `json:"owner,omitempty"`
	// Tags are the image's tags, as the admission policy reads them.
	Tags map[string]string `json:"-"`
	// Created is the image's creation date.
	Created time.Time `json:"-"`
	// anyEncrypted says whether any of the snapshots is encrypted.
	anyEncrypted bool
}

var (
	amiPattern = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	accountID  = regexp.MustCompile(`^\d{12}$`)
)

// begin reads the target and checks every precondition, making no
// change. A read that AWS still throttles after the SDK's own attempts
// is tried again, as the deploy loop tries a pass again (up to
// maxReadErrors times, a poll interval apart): throttling is AWS's
// answer to load, not a reason to refuse the deploy.
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html
func (d *Deployer) begin(ctx context.Context, ami string, forRollback bool) (*Session, error) {
	for attempt := 1; ; attempt++ {
		s, err := d.beginOnce(ctx, ami, forRollback)
		if err == nil || attempt >= maxReadErrors || !throttled(err) || ctx.Err() != nil {
			return s, err
		}
		d.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("reading the target: %v; trying again", err)})
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(d.PollInterval):
		}
	}
}

// throttled reports whether err is AWS throttling the caller.
func throttled(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool()
}

// beginOnce is one try of begin. forRollback skips the AMI and allows an
// unfinished refresh (that is what a rollback undoes).
func (d *Deployer) beginOnce(ctx context.Context, ami string, forRollback bool) (*Session, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if !forRollback && strings.HasPrefix(ami, aliasPrefix) {
		resolved, err := d.resolveImageArg(ctx, ami)
		if err != nil {
			return nil, err
		}
		d.emit(Event{Kind: EventStep, Step: "image", Message: fmt.Sprintf("%s names %s", ami, resolved)})
		ami = resolved
	}
	if !forRollback && !amiPattern.MatchString(ami) {
		return nil, refuse("AMI %q is not an AMI id (ami-…)", ami)
	}
	s := &Session{ID: newDeployID(), Clients: d.Clients, Target: d.Target, d: d, gate: newHealthGate(d.Clients), ltVer: map[string]*TemplateVersion{}, Started: d.now()}
	g, err := s.readGroup(ctx)
	if err != nil {
		return nil, asRefused(err)
	}
	s.Group = *g
	s.Groups = []astypes.AutoScalingGroup{*g}
	if s.Target.PeerGroup != "" {
		// Blue-green: both colours and the rule must be sound before the
		// lock looks at the peer group.
		st, err := s.readBlueGreen(ctx)
		if err != nil {
			return nil, asRefused(err)
		}
		s.Groups = []astypes.AutoScalingGroup{st.colours[0].Group, st.colours[1].Group}
	}
	if !forRollback {
		img, v, err := d.checkImage(ctx, ami)
		if err != nil {
			return nil, asRefused(err)
		}
		s.AMI, s.verdict = *img, v
	}
	if err := s.readTemplate(ctx); err != nil {
		return nil, asRefused(err)
	}
	if s.TargetGroups, err = s.readTargetGroups(ctx); err != nil {
		return nil, asRefused(err)
	}
	for _, tg := range s.TargetGroups {
		if len(tg.LoadBalancers) == 0 {
			return nil, refuse("target group %s of %q is not used by any listener or rule, so the load balancer never health-checks its targets (they show as unused, Target.NotInUse) and phoenix cannot tell whether the new AMI is healthy: forward to it from a listener rule (a weight of 0 is enough) or leave it out with target_groups", tg.Name, s.Target.Group)
		}
	}
	if err := d.checkLock(ctx, s, forRollback); err != nil {
		return nil, err
	}
	if !forRollback && s.AMI.Encrypted {
		if err := d.checkLaunchKeys(ctx, s); err != nil {
			return nil, asRefused(err)
		}
	}
	return s, nil
}

// readGroup describes the target's Auto Scaling group.
func (s *Session) readGroup(ctx context.Context) (*astypes.AutoScalingGroup, error) {
	out, err := s.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{s.Target.Group}})
	if err != nil {
		return nil, fmt.Errorf("describing auto scaling group %q: %w", s.Target.Group, err)
	}
	for i := range out.AutoScalingGroups {
		if aws.ToString(out.AutoScalingGroups[i].AutoScalingGroupName) == s.Target.Group {
			return &out.AutoScalingGroups[i], nil
		}
	}
	return nil, refuse("auto scaling group %q not found in %s: check the target's asg setting and the region", s.Target.Group, s.Target.Region)
}

// checkImage refuses an AMI that is not in the region, not available, or
// not admitted by the policy; it returns the policy's verdict (nil
// without a policy).
func (d *Deployer) checkImage(ctx context.Context, ami string) (*Image, *PolicyVerdict, error) {
	img, err := d.readImage(ctx, ami)
	if err != nil {
		return nil, nil, err
	}
	v, err := d.verdict(ctx, img)
	if err != nil {
		return nil, nil, err
	}
	if v != nil && !v.Admitted {
		return nil, nil, admitError(img, d.Environment, v)
	}
	return img, v, nil
}

// verdict checks img against the deployer's policy; nil when there is
// none.
func (d *Deployer) verdict(ctx context.Context, img *Image) (*PolicyVerdict, error) {
	p := d.Policy
	if p.Empty() {
		return nil, nil
	}
	return p.admit(ctx, img, d.Target.Region, d.now(), d.Evidence)
}

// readImage refuses an AMI that is not in the region or not available. A
// rollback asks only this: the image it returns to ran before.
func (d *Deployer) readImage(ctx context.Context, ami string) (*Image, error) {
	out, err := d.Clients.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidAMIID.") {
		return nil, refuse("AMI %s not found in %s: copy it to the region first (phoenix promote does) or deploy the region's own AMI", ami, d.Target.Region)
	}
	if err != nil {
		return nil, fmt.Errorf("describing AMI %s: %w", ami, err)
	}
	var im *ec2types.Image
	for i := range out.Images {
		if aws.ToString(out.Images[i].ImageId) == ami {
			im = &out.Images[i]
		}
	}
	if im == nil {
		return nil, refuse("AMI %s not found in %s: copy it to the region first (phoenix promote does) or deploy the region's own AMI", ami, d.Target.Region)
	}
	img := &Image{ID: ami, Name: aws.ToString(im.Name), State: string(im.State), Encrypted: len(im.BlockDeviceMappings) > 0, Owner: aws.ToString(im.OwnerId), Tags: map[string]string{}}
	for _, t := range im.Tags {
		img.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if t, err := time.Parse(time.RFC3339, aws.ToString(im.CreationDate)); err == nil {
		img.Created = t
	}
	for _, b := range im.BlockDeviceMappings {
		if b.Ebs != nil && !aws.ToBool(b.Ebs.Encrypted) {
			img.Encrypted = false
		}
		if b.Ebs != nil && aws.ToBool(b.Ebs.Encrypted) {
			img.anyEncrypted = true
		}
		if b.Ebs != nil && aws.ToString(b.Ebs.SnapshotId) != "" {
			img.Snapshots = append(img.Snapshots, aws.ToString(b.Ebs.SnapshotId))
		}
	}
	if im.State != ec2types.ImageStateAvailable {
		return nil, refuse("AMI %s (%s) is %s, not available: wait until it is available and deploy again", ami, img.Name, im.State)
	}
	return img, nil
}

// readTemplate resolves the group's launch template to its numbered
// version.
func (s *Session) readTemplate(ctx context.Context) error {
	g := s.Group
	if err := checkMixed(g); err != nil {
		return err
	}
	lt := groupTemplate(g)
	if lt == nil {
		return nil
	}
	ver := aws.ToString(lt.Version)
	if ver == "" {
		ver = "$Default"
	}
	tv, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), ver)
	if err != nil {
		return err
	}
	s.Template, s.PreviousAMI = tv, tv.AMI
	if tv.Alias != "" {
		if p := parseAlias(tv.Alias); p.Selector != "" && p.label() == "" {
			return refuse("auto scaling group %q launches from %s, whose image %s pins version %s of the SSM parameter: a deploy moves the parameter, so the launch template must name it without a version (resolve:ssm:%s) or with a label (resolve:ssm:%s:LABEL)", s.Target.Group, tv, tv.Alias, p.Selector, p.Name, p.Name)
		}
	}
	return nil
}

// templateVersion reads one launch template version. Numbered versions
// never change, so they are read once per session.
func (s *Session) templateVersion(ctx context.Context, id, name, version string) (*TemplateVersion, error) {
	key := id + name + ":" + version
	if tv, ok := s.ltVer[key]; ok {
		return tv, nil
	}
	in := &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{version}}
	if id != "" {
		in.LaunchTemplateId = aws.String(id)
	} else {
		in.LaunchTemplateName = aws.String(name)
	}
	out, err := s.Clients.EC2.DescribeLaunchTemplateVersions(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("describing launch template %s%s version %s: %w", id, name, version, err)
	}
	if len(out.LaunchTemplateVersions) == 0 {
		return nil, fmt.Errorf("launch template %s%s has no version %s", id, name, version)
	}
	v := out.LaunchTemplateVersions[0]
	tv := &TemplateVersion{ID: aws.ToString(v.LaunchTemplateId), Name: aws.ToString(v.LaunchTemplateName), Version: aws.ToInt64(v.VersionNumber), Description: aws.ToString(v.VersionDescription)}
	if v.LaunchTemplateData != nil {
		tv.AMI = aws.ToString(v.LaunchTemplateData.ImageId)
		tv.KMSKeys = templateKeys(v.LaunchTemplateData.BlockDeviceMappings)
	}
	if strings.HasPrefix(tv.AMI, aliasPrefix) {
		tv.Alias = tv.AMI
		if tv.AMI, err = s.resolveAlias(ctx, tv.Alias); err != nil {
			return nil, fmt.Errorf("%s: %w", tv, err)
		}
	}
	if tv.Alias != "" {
		// What it resolves to changes when the parameter does.
		return tv, nil
	}
	if _, err := strconv.Atoi(version); err == nil {
		s.ltVer[key] = tv
	}
	s.ltVer[tv.ID+":"+strconv.FormatInt(tv.Version, 10)] = tv
	return tv, nil
}

// readTargetGroups returns the target's target groups with their names.
func (s *Session) readTargetGroups(ctx context.Context) ([]TargetGroup, error) {
	arns := s.Target.TargetGroupARNs
	if len(arns) == 0 {
		arns = append(arns, s.Group.TargetGroupARNs...)
		for _, ts := range s.Group.TrafficSources {
			if id := aws.ToString(ts.Identifier); strings.Contains(id, ":targetgroup/") && !contains(arns, id) {
				arns = append(arns, id)
			}
		}
	}
	if len(arns) == 0 {
		return nil, nil
	}
	sort.Strings(arns)
	out, err := s.Clients.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: arns})
	if err != nil {
		return nil, fmt.Errorf("describing target groups of %q: %w", s.Target.Group, err)
	}
	found := map[string]TargetGroup{}
	for _, tg := range out.TargetGroups {
		arn := aws.ToString(tg.TargetGroupArn)
		checks := max(aws.ToInt32(tg.HealthyThresholdCount), aws.ToInt32(tg.UnhealthyThresholdCount)) + 2
		found[arn] = TargetGroup{ARN: arn, Name: aws.ToString(tg.TargetGroupName), LoadBalancers: tg.LoadBalancerArns,
			Judge: time.Duration(checks*aws.ToInt32(tg.HealthCheckIntervalSeconds)) * time.Second}
	}
	var tgs []TargetGroup
	for _, arn := range arns {
		tg, ok := found[arn]
		if !ok {
			return nil, refuse("target group %s not found", arn)
		}
		tgs = append(tgs, tg)
	}
	return tgs, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
