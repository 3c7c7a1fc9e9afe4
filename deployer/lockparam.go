package deployer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// The lock itself is an SSM parameter per group, created with
// PutParameter without Overwrite: of any number of deploys that create
// the same name at once exactly one succeeds, the others get
// ParameterAlreadyExists.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
// A tag cannot do that (CreateOrUpdateTags overwrites), so the phoenix:lock
// tag is only the label people see on the group. Every lock is the next
// name of the group's lock path (/phoenix/lock/GROUP/N+1), so that of two
// deploys that take it at once one wins, whether the last lock was
// released or its deploy died. A released lock is not deleted but marked
// released (expired): SSM refuses to create a deleted name again for 30
// seconds, and the next deploy needs N to find N+1.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
// So each group keeps one lock parameter at rest; the next lock deletes
// the earlier ones.

// LockParameterPath is the SSM parameter path under which phoenix keeps
// its deploy locks.
const LockParameterPath = "/phoenix/lock/"

// LockPath is group's lock path (tests use it to play other deploys).
func LockPath(group string) string { return lockPath(group) }

// lockPath is group's lock path: the group's name with every character
// SSM does not allow in a parameter name written as _XX.
func lockPath(group string) string {
	var b strings.Builder
	b.WriteString(LockParameterPath)
	for _, c := range []byte(group) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	b.WriteByte('/')
	return b.String()
}

// lockParam is one lock parameter.
type lockParam struct {
	name  string
	epoch int
	lock  Lock
}

// lockParams reads group's lock parameters, oldest epoch first.
func (s *Session) lockParams(ctx context.Context, group string) ([]lockParam, error) {
	path := lockPath(group)
	var out []lockParam
	p := ssm.NewGetParametersByPathPaginator(s.Clients.SSM, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(path, "/"))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the lock of %q (SSM parameters under %s): %w", group, path, err)
		}
		for _, prm := range page.Parameters {
			name := aws.ToString(prm.Name)
			n, err := strconv.Atoi(strings.TrimPrefix(name, path))
			if err != nil || !strings.HasPrefix(name, path) {
				continue
			}
			out = append(out, lockParam{name: name, epoch: n, lock: parseLock(aws.ToString(prm.Value))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].epoch < out[j].epoch })
	return out, nil
}

// heldBy says who holds group's lock now: nil when nobody does, or when
// the holder's deploy has died on this host (stale: it may be taken over).
func (d *Deployer) heldBy(params []lockParam) *Lock {
	if len(params) == 0 {
		return nil
	}
	l := params[len(params)-1].lock
	if !d.now().Before(l.Expires) {
		return nil
	}
	l.Stale = d.stale(l)
	return &l
}

// takeLocks takes the lock of every group of the target, in order; when
// one is held or taken by someone else at the same moment, it gives back
// the ones it took and refuses.
func (d *Deployer) takeLocks(ctx context.Context, s *Session, l Lock) error {
	for _, g := range s.Target.Groups() {
		params, err := s.lockParams(ctx, g)
		if err != nil {
			d.giveBackLocks(ctx, s)
			return &Error{Outcome: Refused, Err: err}
		}
		if h := d.heldBy(params); h != nil && !h.Stale && h.Deploy != l.Deploy {
			d.giveBackLocks(ctx, s)
			return refuse("auto scaling group %q is locked by %s: wait for that deploy to finish or, if it died, delete SSM parameter %s (and the group's %s tag)", g, h, params[len(params)-1].name, LockTag)
		}
		epoch := 1
		if len(params) > 0 {
			epoch = params[len(params)-1].epoch + 1
		}
		name := lockPath(g) + strconv.Itoa(epoch)
		_, err = s.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(l.value()), Type: ssmtypes.ParameterTypeString,
			Description: aws.String("phoenix deploy lock of auto scaling group " + g)})
		var exists *ssmtypes.ParameterAlreadyExists
		if errors.As(err, &exists) {
			d.giveBackLocks(ctx, s)
			return refuse("auto scaling group %q was locked by another deploy at the same moment: try again when that deploy is done", g)
		}
		if err != nil {
			d.giveBackLocks(ctx, s)
			return &Error{Outcome: Refused, Err: fmt.Errorf("taking the lock of %q (SSM parameter %s): %w", g, name, err)}
		}
		s.lockNames = append(s.lockNames, name)
		// Locks of deploys that died are gone once taken over.
		var old []string
		for _, p := range params {
			old = append(old, p.name)
		}
		if len(old) > 0 {
			if _, err := s.Clients.SSM.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: old}); err != nil {
				d.emit(Event{Kind: EventWarning, Step: "lock", Message: fmt.Sprintf("deleting the lock parameters %s left by earlier deploys: %v", strings.Join(old, ", "), err)})
			}
		}
	}
	return nil
}

// renewLocks writes the lock's new expiry into the parameters this deploy
// created (nobody else writes them).
func (s *Session) renewLocks(ctx context.Context, l Lock) error {
	for _, name := range s.lockNames {
		if _, err := s.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(l.value()), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			return fmt.Errorf("extending the lock (SSM parameter %s): %w", name, err)
		}
	}
	return nil
}

// giveBackLocks marks the lock parameters this deploy created released:
// expired now.
func (d *Deployer) giveBackLocks(ctx context.Context, s *Session) error {
	if len(s.lockNames) == 0 {
		return nil
	}
	l := Lock{Owner: d.Owner, Deploy: s.ID, Expires: d.now().Add(-time.Second)}
	if err := s.renewLocks(ctx, l); err != nil {
		return fmt.Errorf("releasing: %w", err)
	}
	s.lockNames = nil
	return nil
}
