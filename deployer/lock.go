package deployer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// LockTag is the Auto Scaling group tag that holds phoenix's deploy lock.
const LockTag = "phoenix:lock"

// Lock is phoenix's lock on a group: who holds it and until when. A deploy
// that dies without releasing it stops blocking others at Expires.
type Lock struct {
	Owner   string    `json:"owner"`
	Deploy  string    `json:"deploy"`
	Expires time.Time `json:"expires"`
}

func (l Lock) value() string {
	return fmt.Sprintf("owner=%s deploy=%s expires=%s", strings.ReplaceAll(l.Owner, " ", "_"), l.Deploy, l.Expires.UTC().Format(time.RFC3339))
}

// parseLock reads a lock tag's value; a value it cannot read still locks
// (someone wrote it on purpose) until an hour has passed.
func parseLock(v string) Lock {
	var l Lock
	for _, f := range strings.Fields(v) {
		k, val, _ := strings.Cut(f, "=")
		switch k {
		case "owner":
			l.Owner = val
		case "deploy":
			l.Deploy = val
		case "expires":
			l.Expires, _ = time.Parse(time.RFC3339, val)
		}
	}
	if l.Owner == "" {
		l.Owner = fmt.Sprintf("%q", v)
	}
	return l
}

func (l Lock) String() string {
	return fmt.Sprintf("%s (deploy %s) until %s", l.Owner, l.Deploy, l.Expires.UTC().Format(time.RFC3339))
}

// groupLock returns the group's lock tag, if any.
func groupLock(g astypes.AutoScalingGroup) (Lock, bool) {
	for _, t := range g.Tags {
		if aws.ToString(t.Key) == LockTag {
			return parseLock(aws.ToString(t.Value)), true
		}
	}
	return Lock{}, false
}

var refreshActive = map[astypes.InstanceRefreshStatus]bool{
	astypes.InstanceRefreshStatusPending: true, astypes.InstanceRefreshStatusInProgress: true, astypes.InstanceRefreshStatusBaking: true,
	astypes.InstanceRefreshStatusCancelling: true, astypes.InstanceRefreshStatusRollbackInProgress: true,
}

// latestRefresh returns the group's most recent instance refresh.
func (s *Session) latestRefresh(ctx context.Context) (*astypes.InstanceRefresh, error) {
	out, err := s.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(s.Target.Group), MaxRecords: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("describing instance refreshes of %q: %w", s.Target.Group, err)
	}
	if len(out.InstanceRefreshes) == 0 {
		return nil, nil
	}
	return &out.InstanceRefreshes[0], nil
}

// checkLock refuses when another deploy holds the group: phoenix's lock
// tag, or an instance refresh that is not finished. A deploy of the same
// AMI whose refresh is still running (the previous run was stopped) is
// adopted rather than refused; a rollback takes over a running refresh.
func (d *Deployer) checkLock(ctx context.Context, s *Session, forRollback bool) error {
	if l, ok := groupLock(s.Group); ok && d.now().Before(l.Expires) {
		return refuse("auto scaling group %q is locked by %s: wait for that deploy to finish or, if it died, delete the group's %s tag", s.Target.Group, l, LockTag)
	}
	rf, err := s.latestRefresh(ctx)
	if err != nil {
		return asRefused(err)
	}
	if rf == nil || !refreshActive[rf.Status] {
		return nil
	}
	if forRollback {
		s.ActiveRefresh = rf
		return nil
	}
	if dc := rf.DesiredConfiguration; dc != nil && dc.LaunchTemplate != nil && rf.Status != astypes.InstanceRefreshStatusCancelling && rf.Status != astypes.InstanceRefreshStatusRollbackInProgress {
		tv, err := s.templateVersion(ctx, aws.ToString(dc.LaunchTemplate.LaunchTemplateId), aws.ToString(dc.LaunchTemplate.LaunchTemplateName), aws.ToString(dc.LaunchTemplate.Version))
		if err == nil && tv.AMI == s.AMI.ID {
			s.ActiveRefresh = rf
			return nil
		}
	}
	return refuse("auto scaling group %q is locked by instance refresh %s (%s, %d%%, started %s): wait for it to finish, or cancel it with phoenix rollback",
		s.Target.Group, aws.ToString(rf.InstanceRefreshId), rf.Status, aws.ToInt32(rf.PercentageComplete), aws.ToTime(rf.StartTime).UTC().Format(time.RFC3339))
}

func (s *Session) writeLock(ctx context.Context, l Lock) error {
	_, err := s.Clients.AutoScaling.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(s.Target.Group), ResourceType: aws.String("auto-scaling-group"),
		Key: aws.String(LockTag), Value: aws.String(l.value()), PropagateAtLaunch: aws.Bool(false),
	}}})
	if err != nil {
		return fmt.Errorf("writing the %s tag on %q: %w", LockTag, s.Target.Group, err)
	}
	return nil
}

// readLock reads the group's lock tag now.
func (s *Session) readLock(ctx context.Context) (Lock, bool, error) {
	out, err := s.Clients.AutoScaling.DescribeTags(ctx, &autoscaling.DescribeTagsInput{Filters: []astypes.Filter{
		{Name: aws.String("auto-scaling-group"), Values: []string{s.Target.Group}},
		{Name: aws.String("key"), Values: []string{LockTag}},
	}})
	if err != nil {
		return Lock{}, false, fmt.Errorf("reading the %s tag of %q: %w", LockTag, s.Target.Group, err)
	}
	for _, t := range out.Tags {
		if aws.ToString(t.Key) == LockTag && aws.ToString(t.ResourceId) == s.Target.Group {
			return parseLock(aws.ToString(t.Value)), true, nil
		}
	}
	return Lock{}, false, nil
}

// acquireLock writes the lock, then reads it back: of two deploys that
// raced past checkLock the one whose value is not there backs off. (Should
// both read their own, Auto Scaling still lets only one instance refresh
// start.)
func (d *Deployer) acquireLock(ctx context.Context, s *Session) error {
	l := Lock{Owner: d.Owner, Deploy: s.ID, Expires: d.now().Add(d.LockTTL)}
	if err := s.writeLock(ctx, l); err != nil {
		return &Error{Outcome: Refused, Err: err}
	}
	got, ok, err := s.readLock(ctx)
	if err != nil {
		return &Error{Outcome: Refused, Err: err}
	}
	if !ok || got.Deploy != s.ID {
		return refuse("auto scaling group %q was locked by %s at the same moment: try again when that deploy is done", s.Target.Group, got)
	}
	s.lock = &l
	d.emit(Event{Kind: EventStep, Step: "lock", Message: fmt.Sprintf("locked %q for deploy %s (%s tag, owner %s)", s.Target.Group, s.ID, LockTag, d.Owner)})
	return nil
}

// extendLock pushes the lock's expiry out once half of it has passed.
func (d *Deployer) extendLock(ctx context.Context, s *Session) error {
	if s.lock == nil || s.lock.Expires.Sub(d.now()) > d.LockTTL/2 {
		return nil
	}
	l := *s.lock
	l.Expires = d.now().Add(d.LockTTL)
	if err := s.writeLock(ctx, l); err != nil {
		return err
	}
	s.lock = &l
	return nil
}

// releaseLock deletes the lock if it is still this deploy's. It runs on
// every outcome, with its own context so that Ctrl-C does not stop it.
func (d *Deployer) releaseLock(s *Session) {
	if s.lock == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, ok, err := s.readLock(ctx)
	if err != nil {
		d.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("releasing the lock: %v; it expires at %s", err, s.lock.Expires.UTC().Format(time.RFC3339))})
		return
	}
	if !ok || got.Deploy != s.ID {
		return
	}
	_, err = s.Clients.AutoScaling.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(s.Target.Group), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(LockTag),
	}}})
	if err != nil {
		d.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("releasing the lock: deleting the %s tag of %q: %v; it expires at %s", LockTag, s.Target.Group, err, s.lock.Expires.UTC().Format(time.RFC3339))})
		return
	}
	s.lock = nil
	d.emit(Event{Kind: EventStep, Step: "lock", Message: fmt.Sprintf("released the lock on %q", s.Target.Group)})
}
