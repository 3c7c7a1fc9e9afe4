// Package deployer rolls a new AMI onto an Auto Scaling group and proves it
// healthy behind its load balancer, or rolls it back. It is the library
// behind the phoenix CLI and the phoenix-deploy post-processor, and never
// imports Packer.
//
// A deploy re-reads the real state on every pass, takes at most one
// action, then waits (the palantir/bouncer loop): it can be stopped and
// started again and picks up where AWS is. Preconditions are checked before
// the first mutating call, so a refused deploy changes nothing.
package deployer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/user"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Clients are the AWS clients of one region.
type Clients struct {
	EC2         *ec2.Client
	AutoScaling *autoscaling.Client
	ELB         *elb.Client
	KMS         *kms.Client
	SSM         *ssm.Client
	STS         *sts.Client
	CloudWatch  *cloudwatch.Client
}

// NewClients makes the clients for cfg's region.
func NewClients(cfg aws.Config) Clients {
	return Clients{EC2: ec2.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg), CloudWatch: cloudwatch.NewFromConfig(cfg)}
}

// Defaults for a Deployer's durations.
const (
	DefaultPollInterval  = 10 * time.Second
	DefaultHealthTimeout = 15 * time.Minute
	DefaultLockTTL       = 30 * time.Minute
)

// Deployer deploys to one target with one strategy.
type Deployer struct {
	Clients  Clients
	Target   Target
	Strategy Strategy
	// Policy is the environment's admission policy: an AMI that fails
	// any of its rules is refused before anything changes. nil admits
	// any available AMI.
	Policy *Policy
	// Evidence answers the policy's promoted_from rule.
	Evidence Evidence
	// Environment is the environment's name in phoenix.hcl, for messages
	// and the deploy history ("" when deploying from flags).
	Environment string
	// Source says where the AMI comes from, for the deploy history
	// (e.g. "packer build web"); a promoted copy says it by its tag.
	Source string
	// GrantKMS lets the deploy create the KMS grant Auto Scaling's
	// service-linked role needs to launch from the AMI's encrypted
	// snapshots, when the key policy and existing grants do not give it;
	// without it such a deploy is refused.
	GrantKMS bool
	// HealthTimeout bounds the wait for every target to be healthy on the
	// new AMI once the strategy has put it in place.
	HealthTimeout time.Duration
	// PollInterval is the mean time between passes; each wait is jittered
	// by ±20% so that many deploys do not poll in step.
	PollInterval time.Duration
	// LockTTL is how long the lock outlives a deploy that dies without
	// releasing it; a running deploy extends it.
	LockTTL time.Duration
	// Owner names who holds the lock, e.g. "alice@laptop"; defaults to
	// user@host.
	Owner string
	// Events receives progress; it may be nil.
	Events func(Event)
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
}

func (d *Deployer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deployer) emit(e Event) {
	if d.Events == nil {
		return
	}
	e.Time = d.now().UTC()
	if e.Target == "" {
		e.Target = d.Target.Name
	}
	d.Events(e)
}

func (d *Deployer) defaults() {
	if d.HealthTimeout == 0 {
		d.HealthTimeout = DefaultHealthTimeout
	}
	if d.PollInterval == 0 {
		d.PollInterval = DefaultPollInterval
	}
	if d.LockTTL == 0 {
		d.LockTTL = DefaultLockTTL
	}
	if d.Owner == "" {
		d.Owner = defaultOwner()
	}
	if d.Target.Name == "" {
		d.Target.Name = d.Target.Group
	}
}

func defaultOwner() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

func newDeployID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validate checks the deployer's own settings.
func (d *Deployer) validate() error {
	var errs []error
	if d.Target.Region == "" {
		errs = append(errs, errors.New("region: no region set for the target"))
	}
	if d.Target.Group == "" {
		errs = append(errs, errors.New("asg: no Auto Scaling group set for the target"))
	}
	if d.Strategy == nil {
		errs = append(errs, errors.New("strategy: no strategy set"))
	}
	if d.HealthTimeout < 0 || d.HealthTimeout > 24*time.Hour {
		errs = append(errs, fmt.Errorf("health_timeout %s must be between 0s and 24h", d.HealthTimeout))
	}
	if d.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll_interval %s must not be negative", d.PollInterval))
	}
	if d.Strategy != nil {
		for _, e := range d.Strategy.Validate() {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return &Error{Outcome: Refused, Err: errors.Join(errs...)}
	}
	return nil
}

// Run deploys ami to the target. It returns a Result in every case; the
// error is nil on success and an *Error carrying the outcome otherwise.
func (d *Deployer) Run(ctx context.Context, ami string) (*Result, error) {
	d.defaults()
	res := &Result{Target: d.Target.Name, Region: d.Target.Region, Group: d.Target.Group, AMI: ami, Started: d.now().UTC()}
	if d.Strategy != nil {
		res.Strategy = d.Strategy.Name()
	}
	var s *Session
	finish := func(o Outcome, err error) (*Result, error) {
		res.Outcome, res.Ended = o, d.now().UTC()
		if err != nil {
			res.Message = err.Error()
			var e *Error
			if !errors.As(err, &e) {
				err = &Error{Outcome: o, Err: err}
			}
		}
		if s != nil {
			d.record("deploy", s, res)
		}
		return res, err
	}
	s, err := d.begin(ctx, ami, false)
	if err != nil {
		return finish(Refused, err)
	}
	res.Previous, res.AMI = s.PreviousAMI, s.AMI.ID
	if s.verdict != nil {
		d.emit(Event{Kind: EventStep, Step: "policy", Message: s.verdict.summary(s.AMI.ID, d.Environment)})
	}
	run, err := d.Strategy.Begin(ctx, s)
	if err != nil {
		return finish(Refused, asRefused(err))
	}
	if run, err = d.guardRefs(ctx, s, run); err != nil {
		return finish(Refused, asRefused(err))
	}
	if err := d.acquireLock(ctx, s); err != nil {
		return finish(Refused, err)
	}
	defer d.releaseLock(s)
	if err := d.grantKeys(ctx, s); err != nil {
		return finish(Refused, err)
	}

	step, err := d.loop(ctx, s, run.Step)
	run.Describe(res)
	if err == nil && step.State == StepDone {
		res.Message = step.Message
		return finish(Succeeded, nil)
	}
	if err != nil {
		res.Interrupted = true
		if a, ok := run.(Aborter); ok {
			// Blue-green: a half-switched or pinned target must not be
			// left behind, so the traffic goes back to the old colour.
			actx, cancel := context.WithTimeout(context.Background(), time.Minute)
			did, aerr := a.Abort(actx)
			cancel()
			if aerr != nil {
				return finish(RollbackFailed, &Error{Outcome: RollbackFailed, Err: fmt.Errorf("deploy interrupted (%w)%s; returning the traffic failed: %v (done: %s): run phoenix rollback", err, during(step), aerr, did)})
			}
			if did != "" {
				d.emit(Event{Kind: EventStep, Step: "rollback", Action: did, Message: did})
				return finish(RolledBack, &Error{Outcome: RolledBack, Err: fmt.Errorf("deploy interrupted (%w)%s: %s; run the same deploy again to start over", err, during(step), did)})
			}
		}
		// Interrupted: the deploy's AWS side goes on; nothing is rolled
		// back behind the user's back.
		return finish(RolledBack, &Error{Outcome: RolledBack, Err: fmt.Errorf("deploy interrupted (%w)%s: what AWS was doing goes on; run the same deploy again to follow it, or phoenix rollback to undo it", err, during(step))})
	}
	why := step.Message
	d.emit(Event{Kind: EventWarning, Step: "rollback", Message: "deploy failed: " + why + "; rolling back"})
	rb, err := d.loop(ctx, s, run.RollbackStep)
	run.Describe(res)
	if err != nil {
		res.Interrupted = true
		return finish(RollbackFailed, &Error{Outcome: RollbackFailed, Err: fmt.Errorf("deploy failed: %s; rollback interrupted: %w", why, err)})
	}
	if rb.State != StepDone {
		return finish(RollbackFailed, &Error{Outcome: RollbackFailed, Err: fmt.Errorf("deploy failed: %s; rollback failed: %s", why, rb.Message)})
	}
	return finish(RolledBack, &Error{Outcome: RolledBack, Err: fmt.Errorf("deploy failed and was rolled back: %s (%s)", why, rb.Message)})
}

// Rollback returns the target to the AMI it ran before the last deploy:
// it rolls back a refresh in progress, or starts one back to the previous
// launch template version. Its outcome is Succeeded when the target is
// back and healthy, RollbackFailed when not, Refused when there is nothing
// to return to.
func (d *Deployer) Rollback(ctx context.Context) (*Result, error) {
	d.defaults()
	res := &Result{Target: d.Target.Name, Region: d.Target.Region, Group: d.Target.Group, Started: d.now().UTC()}
	if d.Strategy != nil {
		res.Strategy = d.Strategy.Name()
	}
	var s *Session
	finish := func(o Outcome, err error) (*Result, error) {
		res.Outcome, res.Ended = o, d.now().UTC()
		if err != nil {
			res.Message = err.Error()
		}
		if s != nil {
			d.record("rollback", s, res)
		}
		return res, err
	}
	s, err := d.begin(ctx, "", true)
	if err != nil {
		return finish(Refused, err)
	}
	run, err := d.Strategy.BeginRollback(ctx, s)
	if err != nil {
		return finish(Refused, asRefused(err))
	}
	if run, err = d.guardRefs(ctx, s, run); err != nil {
		return finish(Refused, asRefused(err))
	}
	if err := d.acquireLock(ctx, s); err != nil {
		return finish(Refused, err)
	}
	defer d.releaseLock(s)
	step, err := d.loop(ctx, s, run.RollbackStep)
	run.Describe(res)
	if err != nil {
		res.Interrupted = true
		return finish(RollbackFailed, &Error{Outcome: RollbackFailed, Err: fmt.Errorf("rollback interrupted: %w", err)})
	}
	if step.State != StepDone {
		return finish(RollbackFailed, &Error{Outcome: RollbackFailed, Err: fmt.Errorf("rollback failed: %s", step.Message)})
	}
	res.Message = step.Message
	return finish(Succeeded, nil)
}

// during names the step a deploy was in when it was interrupted, as the
// progress lines name it (" during [refresh]"), so that the user knows
// what AWS is left doing; "" when no pass had named one.
func during(st Step) string {
	if st.Name == "" {
		return ""
	}
	return " during [" + st.Name + "]"
}

// actedPollDivisor shortens the wait after a pass that took an action.
const actedPollDivisor = 5

// maxReadErrors is how many passes in a row may fail to read AWS (after
// the SDK's own retries) before the deploy gives up.
const maxReadErrors = 5

// loop runs step until it is done or failed, one pass per poll interval.
// It returns an error only when ctx ends or AWS cannot be read.
func (d *Deployer) loop(ctx context.Context, s *Session, step func(context.Context) (Step, error)) (Step, error) {
	var errs int
	var name string // the step the last pass named
	for {
		st, err := step(ctx)
		if st.Name != "" {
			name = st.Name
		}
		if err != nil {
			if ctx.Err() != nil {
				st.Name = name
				return st, ctx.Err()
			}
			errs++
			d.emit(Event{Kind: EventWarning, Message: err.Error()})
			if errs >= maxReadErrors {
				return Step{State: StepFailed, Message: err.Error()}, nil
			}
		} else {
			errs = 0
			if st.Action != "" {
				d.emit(Event{Kind: EventStep, Step: st.Name, Action: st.Action, Message: st.Action})
			}
			if st.Refresh != nil || st.Health != nil || st.Progress != "" {
				d.emit(Event{Kind: EventProgress, Step: st.Name, Message: st.Progress, Refresh: st.Refresh, Health: st.Health})
			}
			if st.State == StepFailed && ctx.Err() != nil {
				// A call cut short by Ctrl-C is an interruption, not a
				// failure to roll back from.
				st.Name = name
				return st, ctx.Err()
			}
			if st.State != StepWorking {
				return st, nil
			}
		}
		if err := d.extendLock(ctx, s); err != nil {
			d.emit(Event{Kind: EventWarning, Message: err.Error()})
		}
		wait := d.PollInterval
		if err == nil && st.Action != "" {
			// A pass that acted is followed sooner: the next action
			// (pin after version, scale after pin) often needs nothing
			// from AWS but the answer it already gave.
			wait = d.PollInterval / actedPollDivisor
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			st.Name = name
			return st, ctx.Err()
		case <-t.C:
		}
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	f := 0.8 + 0.4*mrand.Float64()
	return time.Duration(math.Round(float64(d) * f))
}
