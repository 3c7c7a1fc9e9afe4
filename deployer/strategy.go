package deployer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// Strategy is how a new AMI replaces the old one. Rolling replaces the
// group's instances in place with an instance refresh; blue-green (next)
// brings up the idle colour and moves the listener's traffic.
type Strategy interface {
	// Name is the strategy's name in phoenix.hcl: "rolling".
	Name() string
	// Validate reports every option out of range, each naming its setting.
	Validate() []error
	// Plan says what a deploy of s.AMI would change. Reads only.
	Plan(ctx context.Context, s *Session) ([]Change, error)
	// Begin prepares a deploy of s.AMI: it reads, refuses what cannot
	// start, and adopts a deploy of the same AMI that AWS is still running.
	Begin(ctx context.Context, s *Session) (Execution, error)
	// BeginRollback prepares an on-demand rollback to the AMI the target
	// ran before its last deploy. Reads only.
	BeginRollback(ctx context.Context, s *Session) (Execution, error)
}

// Execution is one deploy (or rollback) in flight. Each Step re-reads the
// real state, takes at most one action and says where things stand; the
// Deployer waits a poll interval between steps.
type Execution interface {
	// Step moves the deploy forward.
	Step(ctx context.Context) (Step, error)
	// RollbackStep moves the target back to where it was.
	RollbackStep(ctx context.Context) (Step, error)
	// Describe fills in what the execution made (launch template
	// version, refresh id).
	Describe(r *Result)
}

// Aborter is an Execution that undoes part of its work when the deploy is
// interrupted (Ctrl-C), because leaving it would hurt: blue-green returns
// the traffic and removes its pin. Abort runs with a fresh context and
// says what it did.
type Aborter interface {
	Abort(ctx context.Context) (string, error)
}

// StepState is where an execution stands after a step.
type StepState int

const (
	// StepWorking: not finished; step again after a poll interval.
	StepWorking StepState = iota
	// StepDone: the execution reached its goal.
	StepDone
	// StepFailed: the goal cannot be reached; Message says why.
	StepFailed
)

// Step is the result of one pass.
type Step struct {
	State StepState
	// Name is the phase: "launch-template", "refresh", "health", "rollback".
	Name string
	// Action is the one change this pass made, in words; empty when it
	// only read.
	Action string
	// Progress is what the pass read, in words, when Refresh and Health
	// do not say it all.
	Progress string
	Message  string
	Refresh  *Refresh
	Health   *Health
}

// Change is one thing a deploy would do, for Plan.
type Change struct {
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// Session is what a strategy works on: the target as read before the
// deploy, the AMI and the shared helpers.
type Session struct {
	// weightsAt is when this deploy last changed the weights.
	weightsAt time.Time

	ID      string
	Clients Clients
	Target  Target
	// AMI is the image to deploy (empty for a rollback).
	AMI Image
	// verdict is the admission policy's verdict on AMI (nil without one).
	verdict *PolicyVerdict
	// verdicts are the canary judge's verdicts of the deploy, in order.
	verdicts []*Verdict
	// Group is the Auto Scaling group as read when the deploy began.
	Group astypes.AutoScalingGroup
	// TargetGroups are the group's target groups (or the target's).
	TargetGroups []TargetGroup
	// Template is the group's launch template version when the deploy
	// began, resolved to its number; nil when the group has none.
	Template *TemplateVersion
	// PreviousAMI is the AMI of Template.
	PreviousAMI string
	// ActiveRefresh is the group's unfinished instance refresh, if any.
	ActiveRefresh *astypes.InstanceRefresh
	// Groups are every Auto Scaling group of the target as read when the
	// deploy began: the group, and blue-green's peer.
	Groups []astypes.AutoScalingGroup
	// Keys are the KMS keys the target's launches need, as checked for
	// each group's service-linked role.
	Keys []KeyUse
	// Started is when the deploy began, by the deployer's clock.
	Started time.Time

	d    *Deployer
	gate *healthGate
	lock *Lock
	// lockNames are the lock parameters this deploy created.
	lockNames []string
	ltVer     map[string]*TemplateVersion
	bgTGs     map[string]TargetGroup // blue-green: the rule's target groups by ARN
	sticky    time.Duration          // blue-green: the forward's target group stickiness, read by serveLive
}

// roles are the service-linked roles the target's groups launch with.
func (s *Session) roles() []string {
	var out []string
	for _, g := range s.Groups {
		if r := launchRole(aws.ToString(g.ServiceLinkedRoleARN), aws.ToString(g.AutoScalingGroupARN)); !contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Now is the deployer's clock.
func (s *Session) Now() time.Time { return s.d.now() }

// HealthTimeout is the deployer's health timeout.
func (s *Session) HealthTimeout() time.Duration { return s.d.HealthTimeout }

// Emit reports an event.
func (s *Session) Emit(e Event) {
	if v := e.Verdict; v != nil && v.Result != "waiting" {
		s.verdicts = append(s.verdicts, v)
	}
	s.d.emit(e)
}

// Strategies phoenix knows, by their names in phoenix.hcl and --strategy.
var Strategies = []string{"rolling", "blue-green"}

// StrategySettings are a deploy's strategy by name with the settings of
// each kind; only those of Kind are used.
type StrategySettings struct {
	// Kind is "rolling" (the default) or "blue-green".
	Kind      string
	Rolling   RollingSettings
	BlueGreen BlueGreenSettings
}

// Strategy turns the settings of Kind into the strategy and the health
// timeout, reporting every problem as a *SettingError.
func (s StrategySettings) Strategy() (Strategy, time.Duration, []error) {
	switch s.Kind {
	case "", "rolling":
		r, timeout, errs := s.Rolling.Rolling()
		return r, timeout, errs
	case "blue-green":
		b, timeout, errs := s.BlueGreen.BlueGreen()
		return b, timeout, errs
	}
	return nil, 0, []error{&SettingError{"strategy", fmt.Errorf("strategy %q is not one of %s", s.Kind, strings.Join(Strategies, ", "))}}
}
