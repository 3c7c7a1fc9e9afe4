package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// LockTag is the Auto Scaling group tag that holds phoenix's deploy lock.
const LockTag = "phoenix:lock"

// Lock is phoenix's lock on a group: who holds it and until when. A deploy
// that dies without releasing it stops blocking others at Expires; before
// that, the same owner may take it over once its process has ended
// (Stale).
type Lock struct {
	Owner  string `json:"owner"`
	Deploy string `json:"deploy"`
	// PID is the holding process's id on the owner's host; 0 when the
	// lock does not say.
	PID     int       `json:"pid,omitempty"`
	Expires time.Time `json:"expires"`
	// Stale: the lock is the reader's own owner's, and its process no
	// longer runs on this host.
	Stale bool `json:"stale,omitempty"`
}

func (l Lock) value() string {
	pid := ""
	if l.PID > 0 {
		pid = fmt.Sprintf(" pid=%d", l.PID)
	}
	return fmt.Sprintf("owner=%s deploy=%s%s expires=%s", strings.ReplaceAll(l.Owner, " ", "_"), l.Deploy, pid, l.Expires.UTC().Format(time.RFC3339))
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
		case "pid":
			l.PID, _ = strconv.Atoi(val)
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
	pid := ""
	if l.PID > 0 {
		pid = fmt.Sprintf(", pid %d", l.PID)
	}
	s := fmt.Sprintf("%s (deploy %s%s) until %s", l.Owner, l.Deploy, pid, l.Expires.UTC().Format(time.RFC3339))
	if l.Stale {
		s += fmt.Sprintf("; process %d has ended: the same owner's next deploy or rollback takes the lock over", l.PID)
	}
	return s
}

// stale reports whether l was left by a process of this deployer's owner
// that has ended (killed, or its machine rebooted): the owner names the
// user and host, so the process id is meaningful here. Such a lock no
// longer protects anything, and waiting for it to expire would keep the
// owner's own rerun out for up to LockTTL.
func (d *Deployer) stale(l Lock) bool {
	return l.PID > 0 && l.Owner == strings.ReplaceAll(d.Owner, " ", "_") && !processRunning(l.PID)
}

// processRunning reports whether a process with id pid runs on this host.
// Where that cannot be told, it says yes.
func processRunning(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || !(errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH))
}

var refreshActive = map[astypes.InstanceRefreshStatus]bool{
	astypes.InstanceRefreshStatusPending: true, astypes.InstanceRefreshStatusInProgress: true, astypes.InstanceRefreshStatusBaking: true,
	astypes.InstanceRefreshStatusCancelling: true, astypes.InstanceRefreshStatusRollbackInProgress: true,
}

// latestRefresh returns a group's most recent instance refresh.
func (s *Session) latestRefresh(ctx context.Context, group string) (*astypes.InstanceRefresh, error) {
	out, err := s.Clients.AutoScaling.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group), MaxRecords: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("describing instance refreshes of %q: %w", group, err)
	}
	if len(out.InstanceRefreshes) == 0 {
		return nil, nil
	}
	return &out.InstanceRefreshes[0], nil
}

// checkLock refuses when another deploy holds any of the target's
// groups: phoenix's lock tag, or an instance refresh that is not
// finished. A deploy of the same AMI whose refresh of the main group is
// still running (the previous run was stopped) is adopted rather than
// refused; a rollback takes over a running refresh of the main group.
func (d *Deployer) checkLock(ctx context.Context, s *Session, forRollback bool) error {
	for _, g := range s.Target.Groups() {
		params, err := s.lockParams(ctx, g)
		if err != nil {
			return asRefused(err)
		}
		if l := d.heldBy(params); l != nil {
			if l.Stale {
				d.emit(Event{Kind: EventWarning, Step: "lock", Message: fmt.Sprintf("taking over the lock on %q left by deploy %s: its process %d has ended", g, l.Deploy, l.PID)})
				continue
			}
			return refuse("auto scaling group %q is locked by %s: wait for that deploy to finish or, if it died, delete SSM parameter %s (and the group's %s tag)", g, l, params[len(params)-1].name, LockTag)
		}
	}
	for _, g := range s.Target.Groups() {
		rf, err := s.latestRefresh(ctx, g)
		if err != nil {
			return asRefused(err)
		}
		if rf == nil || !refreshActive[rf.Status] {
			continue
		}
		if g == s.Target.Group && forRollback {
			s.ActiveRefresh = rf
			continue
		}
		if lt := desiredTemplate(rf.DesiredConfiguration); g == s.Target.Group && lt != nil &&
			rf.Status != astypes.InstanceRefreshStatusCancelling && rf.Status != astypes.InstanceRefreshStatusRollbackInProgress {
			tv, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version))
			if err == nil && tv.AMI == s.AMI.ID {
				s.ActiveRefresh = rf
				continue
			}
		}
		return refuse("auto scaling group %q is locked by instance refresh %s (%s, %d%%, started %s): wait for it to finish, or cancel it with phoenix rollback",
			g, aws.ToString(rf.InstanceRefreshId), rf.Status, aws.ToInt32(rf.PercentageComplete), aws.ToTime(rf.StartTime).UTC().Format(time.RFC3339))
	}
	return nil
}

// writeLock writes l on every group of the target, in one call.
func (s *Session) writeLock(ctx context.Context, l Lock) error {
	var tags []astypes.Tag
	for _, g := range s.Target.Groups() {
		tags = append(tags, astypes.Tag{ResourceId: aws.String(g), ResourceType: aws.String("auto-scaling-group"),
			Key: aws.String(LockTag), Value: aws.String(l.value()), PropagateAtLaunch: aws.Bool(false)})
	}
	if _, err := s.Clients.AutoScaling.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: tags}); err != nil {
		return fmt.Errorf("writing the %s tag on %s: %w", LockTag, strings.Join(s.Target.Groups(), ", "), err)
	}
	return nil
}

// readLocks reads the lock tags of the target's groups now, in one call.
func (s *Session) readLocks(ctx context.Context) (map[string]Lock, error) {
	groups := s.Target.Groups()
	out, err := s.Clients.AutoScaling.DescribeTags(ctx, &autoscaling.DescribeTagsInput{Filters: []astypes.Filter{
		{Name: aws.String("auto-scaling-group"), Values: groups},
		{Name: aws.String("key"), Values: []string{LockTag}},
	}})
	if err != nil {
		return nil, fmt.Errorf("reading the %s tags of %s: %w", LockTag, strings.Join(groups, ", "), err)
	}
	locks := map[string]Lock{}
	for _, t := range out.Tags {
		if aws.ToString(t.Key) == LockTag && contains(groups, aws.ToString(t.ResourceId)) {
			locks[aws.ToString(t.ResourceId)] = parseLock(aws.ToString(t.Value))
		}
	}
	return locks, nil
}

// acquireLock takes the lock parameters (of deploys that raced past
// checkLock exactly one gets them), then labels the groups with the tag.
func (d *Deployer) acquireLock(ctx context.Context, s *Session) error {
	l := Lock{Owner: d.Owner, Deploy: s.ID, PID: os.Getpid(), Expires: d.now().Add(d.LockTTL)}
	if err := d.takeLocks(ctx, s, l); err != nil {
		return err
	}
	s.lock = &l
	if err := s.writeLock(ctx, l); err != nil {
		d.releaseLock(s)
		return &Error{Outcome: Refused, Err: err}
	}
	d.emit(Event{Kind: EventStep, Step: "lock", Message: fmt.Sprintf("locked %s for deploy %s (%s tag, owner %s)", quoted(s.Target.Groups()), s.ID, LockTag, d.Owner)})
	return nil
}

func quoted(groups []string) string {
	q := make([]string, len(groups))
	for i, g := range groups {
		q[i] = fmt.Sprintf("%q", g)
	}
	return strings.Join(q, ", ")
}

// extendLock pushes the lock's expiry out once half of it has passed.
func (d *Deployer) extendLock(ctx context.Context, s *Session) error {
	if s.lock == nil || s.lock.Expires.Sub(d.now()) > d.LockTTL/2 {
		return nil
	}
	l := *s.lock
	l.Expires = d.now().Add(d.LockTTL)
	if err := s.renewLocks(ctx, l); err != nil {
		return err
	}
	if err := s.writeLock(ctx, l); err != nil {
		return err
	}
	s.lock = &l
	return nil
}

// releaseLock deletes the lock tags that are still this deploy's. It runs
// on every outcome, with its own context so that Ctrl-C does not stop it.
func (d *Deployer) releaseLock(s *Session) {
	if s.lock == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	warn := func(err error) {
		d.emit(Event{Kind: EventWarning, Message: fmt.Sprintf("releasing the lock: %v; it expires at %s", err, s.lock.Expires.UTC().Format(time.RFC3339))})
	}
	if err := d.giveBackLocks(ctx, s); err != nil {
		warn(err)
		return
	}
	locks, err := s.readLocks(ctx)
	if err != nil {
		warn(err)
		return
	}
	var tags []astypes.Tag
	for g, l := range locks {
		if l.Deploy == s.ID {
			tags = append(tags, astypes.Tag{ResourceId: aws.String(g), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(LockTag)})
		}
	}
	if len(tags) > 0 {
		if _, err := s.Clients.AutoScaling.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: tags}); err != nil {
			warn(fmt.Errorf("deleting the %s tags: %w", LockTag, err))
			return
		}
	}
	s.lock = nil
	d.emit(Event{Kind: EventStep, Step: "lock", Message: fmt.Sprintf("released the lock on %s", quoted(s.Target.Groups()))})
}
