package sandbox

import (
	"context"
	"sync"
	"time"
)

// Propagation: a load balancer is a fleet of nodes, and a change made
// through the API reaches them after a while. The sandbox's proxy plays
// it no kinder than AWS:
//
//   - A registered target gets requests only once its registration has
//     completed (target_registration, scaled) and it has passed its
//     initial health checks: "The load balancer starts routing requests to
//     the target as soon as the registration process completes and the
//     target passes the initial health checks."
//     https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-register-targets.html
//     Until then it is not even a fail-open choice.
//   - A deregistered target gets no new request, and the requests in
//     flight to it go on until its deregistration delay
//     (deregistration_delay.timeout_seconds, scaled) is over; those still
//     running then are cut, and their clients get an error.
//     https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay
//     https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeregisterTargets.html
//   - A change of a listener's or rule's actions (the weights of a
//     weighted forward) reaches traffic lb_config_propagation (scaled)
//     after the call that made it; until then requests follow the actions
//     before it. AWS documents no bound for this: the sandbox takes the
//     stricter reading, that ModifyListener and ModifyRule return before
//     the nodes route by them (docs/sandbox.md).
//     https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions

// routedActions is what the load balancer's nodes route a rule's
// requests by at now: its actions, or the ones before its last change
// while that change propagates.
func (rule *Rule) routedActions(now time.Time) []Action {
	if now.Before(rule.propagatedAt) {
		return rule.previous
	}
	return rule.Actions
}

// setActions changes the rule's actions; the change reaches traffic after
// lb_config_propagation. Changes made while an earlier one propagates
// reach traffic with the last one: until then the nodes keep the actions
// from before the first.
func (r *Region) setRuleActions(rule *Rule, actions []Action) {
	now := r.w.now()
	if !now.Before(rule.propagatedAt) {
		rule.previous = rule.Actions
	}
	rule.Actions = actions
	rule.propagatedAt = now.Add(r.w.timing.d("lb_config_propagation"))
}

// routable reports whether the load balancer's nodes know of target t at
// now: its registration has completed and it is not draining.
func (t *Target) routable(now time.Time) bool {
	return t.State != "draining" && t.State != "unused" && !now.Before(t.routableAt)
}

// targetRef names one target of one target group.
type targetRef struct {
	region      regionKey
	targetGroup string
	id          string
	port        int
}

// inflight tracks the requests the proxy has in flight to each target,
// so that those still running when the target's draining ends are cut.
type inflight struct {
	mu   sync.Mutex
	reqs map[targetRef]map[*context.CancelFunc]struct{}
}

// start registers a request to ref and returns a context that is
// cancelled if the target stops draining its connections before the
// request ends, and the function to call when it ends.
func (f *inflight) start(ctx context.Context, ref targetRef) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	f.mu.Lock()
	if f.reqs == nil {
		f.reqs = map[targetRef]map[*context.CancelFunc]struct{}{}
	}
	if f.reqs[ref] == nil {
		f.reqs[ref] = map[*context.CancelFunc]struct{}{}
	}
	key := &cancel
	f.reqs[ref][key] = struct{}{}
	f.mu.Unlock()
	return ctx, func() {
		f.mu.Lock()
		delete(f.reqs[ref], key)
		if len(f.reqs[ref]) == 0 {
			delete(f.reqs, ref)
		}
		f.mu.Unlock()
		cancel()
	}
}

// refs lists the targets with requests in flight.
func (f *inflight) refs() []targetRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]targetRef, 0, len(f.reqs))
	for ref := range f.reqs {
		out = append(out, ref)
	}
	return out
}

// cut cancels the requests in flight to ref.
func (f *inflight) cut(ref targetRef) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for key := range f.reqs[ref] {
		(*key)()
		n++
	}
	return n
}

// drainOver reports whether ref's target has left its target group (its
// draining is over, or it was removed with its instance): requests still
// in flight to it are then cut.
func (w *World) drainOver(ref targetRef) bool {
	r := w.regions[ref.region]
	if r == nil {
		return true
	}
	tg := r.TargetGroups[ref.targetGroup]
	if tg == nil {
		return true
	}
	for _, t := range tg.Targets {
		if t.ID == ref.id && t.Port == ref.port {
			return false
		}
	}
	return true
}
