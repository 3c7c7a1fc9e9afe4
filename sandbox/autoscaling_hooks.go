package sandbox

import (
	"fmt"
	"sort"
	"time"
)

// Lifecycle hooks: a launching hook holds a new instance in Pending:Wait
// (not yet registered with the group's target groups) and a terminating
// hook holds a leaving one in Terminating:Wait (already deregistered and
// drained) until every hook of the transition is completed or times out.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks.html

const (
	hookLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	hookTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
	// maxHooks is the quota of lifecycle hooks per group.
	maxHooks = 50
)

func init() {
	register("autoscaling", "PutLifecycleHook", asgPutLifecycleHook)
	register("autoscaling", "DeleteLifecycleHook", asgDeleteLifecycleHook)
	register("autoscaling", "DescribeLifecycleHooks", asgDescribeLifecycleHooks)
	register("autoscaling", "DescribeLifecycleHookTypes", asgDescribeLifecycleHookTypes)
	register("autoscaling", "CompleteLifecycleAction", asgCompleteLifecycleAction)
	register("autoscaling", "RecordLifecycleActionHeartbeat", asgRecordLifecycleActionHeartbeat)
}

// LifecycleHook is one lifecycle hook of a group.
type LifecycleHook struct {
	Name                  string
	Transition            string
	HeartbeatTimeout      int    // seconds
	DefaultResult         string // CONTINUE or ABANDON
	NotificationMetadata  string
	NotificationTargetARN string
	RoleARN               string
}

// globalTimeout is how long an instance may stay in a wait state for the
// hook, heartbeats or not: 100 times the heartbeat timeout or 48 hours,
// whichever is smaller.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html
func (h *LifecycleHook) globalTimeout() int { return min(100*h.HeartbeatTimeout, 172800) }

// instanceWait is one instance waiting on the hooks of a transition.
type instanceWait struct {
	transition string
	waits      map[string]*hookWait // by hook name
}

// hookWait is one instance waiting on one hook.
type hookWait struct {
	token    string
	started  time.Time
	deadline time.Time // heartbeat timeout, moved by heartbeats
	global   time.Time
	result   string // "" while waiting, CONTINUE or ABANDON
}

// parseLifecycleHook reads a hook from PutLifecycleHook or one of
// CreateAutoScalingGroup's LifecycleHookSpecificationList; old is the
// hook being updated (nil for a new one).
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html
func parseLifecycleHook(p Params, old *LifecycleHook) (*LifecycleHook, *APIError) {
	h := &LifecycleHook{HeartbeatTimeout: 3600, DefaultResult: "ABANDON"}
	if old != nil {
		c := *old
		h = &c
	}
	h.Name = p.Get("LifecycleHookName")
	if h.Name == "" || len(h.Name) > 255 {
		return nil, validation("1 validation error detected: Value at 'lifecycleHookName' failed to satisfy constraint: Member must have length between 1 and 255")
	}
	if t := p.Get("LifecycleTransition"); t != "" {
		if t != hookLaunching && t != hookTerminating {
			return nil, validation("Invalid Lifecycle Transition %s. Valid values are %s and %s.", t, hookLaunching, hookTerminating)
		}
		h.Transition = t
	} else if old == nil {
		return nil, validation("A LifecycleTransition must be specified when creating a lifecycle hook.")
	}
	if v, err := p.IntPtr("HeartbeatTimeout"); err != nil {
		return nil, validation("%s", err.Message)
	} else if v != nil {
		if *v < 30 || *v > 7200 {
			return nil, validation("The heartbeat timeout must be between 30 and 7200 seconds, not %d.", *v)
		}
		h.HeartbeatTimeout = *v
	}
	if r := p.Get("DefaultResult"); r != "" {
		if r != "CONTINUE" && r != "ABANDON" {
			return nil, validation("Invalid default result %s. Valid values are CONTINUE and ABANDON.", r)
		}
		h.DefaultResult = r
	}
	for key, dst := range map[string]*string{"NotificationMetadata": &h.NotificationMetadata, "NotificationTargetARN": &h.NotificationTargetARN, "RoleARN": &h.RoleARN} {
		if p.Has(key) {
			*dst = p.Get(key)
		}
	}
	if h.NotificationTargetARN != "" && h.RoleARN == "" {
		return nil, validation("A RoleARN must be specified with a NotificationTargetARN.")
	}
	return h, nil
}

// applyHookSpecs reads CreateAutoScalingGroup's
// LifecycleHookSpecificationList.
func (c *call) applyHookSpecs(g *AutoScalingGroup) *APIError {
	specs := c.p.MemberStructs("LifecycleHookSpecificationList")
	for _, sp := range specs {
		if sp.Get("LifecycleTransition") == "" {
			return validation("1 validation error detected: Value null at 'lifecycleHookSpecificationList.member.lifecycleTransition' failed to satisfy constraint: Member must not be null")
		}
		h, err := parseLifecycleHook(sp, nil)
		if err != nil {
			return err
		}
		if g.LifecycleHooks == nil {
			g.LifecycleHooks = map[string]*LifecycleHook{}
		}
		g.LifecycleHooks[h.Name] = h
	}
	if len(g.LifecycleHooks) > maxHooks {
		return errf("LimitExceeded", "Lifecycle hooks limit of %d exceeded for AutoScalingGroup %s", maxHooks, g.Name)
	}
	return nil
}

func asgPutLifecycleHook(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	old := g.LifecycleHooks[c.p.Get("LifecycleHookName")]
	h, err := parseLifecycleHook(c.p, old)
	if err != nil {
		return nil, err
	}
	if old == nil && len(g.LifecycleHooks) >= maxHooks {
		return nil, errf("LimitExceeded", "Lifecycle hooks limit of %d exceeded for AutoScalingGroup %s", maxHooks, g.Name)
	}
	if g.LifecycleHooks == nil {
		g.LifecycleHooks = map[string]*LifecycleHook{}
	}
	g.LifecycleHooks[h.Name] = h
	return nil, nil
}

func asgDeleteLifecycleHook(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	name := c.p.Get("LifecycleHookName")
	if _, ok := g.LifecycleHooks[name]; !ok {
		return nil, validation("No Lifecycle Hook found with name %s for AutoScalingGroup %s", name, g.Name)
	}
	delete(g.LifecycleHooks, name)
	// Instances waiting on it go on as if it had been completed with its
	// default result: the stricter reading of an undocumented case is
	// that nothing is skipped.
	for _, iw := range g.hookWaits {
		if w := iw.waits[name]; w != nil && w.result == "" {
			w.result = "CONTINUE"
		}
	}
	return nil, nil
}

func sortedHooks(g *AutoScalingGroup) []*LifecycleHook {
	var out []*LifecycleHook
	for _, h := range g.LifecycleHooks {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func asgDescribeLifecycleHooks(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	names := c.p.Members("LifecycleHookNames")
	var hooks []*LifecycleHook
	for _, h := range sortedHooks(g) {
		if len(names) == 0 || contains(names, h.Name) {
			hooks = append(hooks, h)
		}
	}
	return []*X{List("LifecycleHooks", Items("member", hooks, func(h *LifecycleHook) []*X {
		return []*X{T("LifecycleHookName", h.Name), T("AutoScalingGroupName", g.Name), T("LifecycleTransition", h.Transition),
			Opt("NotificationTargetARN", h.NotificationTargetARN), Opt("RoleARN", h.RoleARN), Opt("NotificationMetadata", h.NotificationMetadata),
			I("HeartbeatTimeout", h.HeartbeatTimeout), I("GlobalTimeout", h.globalTimeout()), T("DefaultResult", h.DefaultResult)}
	}))}, nil
}

func asgDescribeLifecycleHookTypes(c *call) (any, *APIError) {
	return []*X{List("LifecycleHookTypes", Strings("member", []string{hookLaunching, hookTerminating}))}, nil
}

// lifecycleAction finds the wait a Complete or Heartbeat call names, by
// instance id or token.
func (c *call) lifecycleAction() (*AutoScalingGroup, *hookWait, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, nil, err
	}
	name := c.p.Get("LifecycleHookName")
	if _, ok := g.LifecycleHooks[name]; !ok {
		return nil, nil, validation("No Lifecycle Hook found with name %s for AutoScalingGroup %s", name, g.Name)
	}
	id, token := c.p.Get("InstanceId"), c.p.Get("LifecycleActionToken")
	if id == "" && token == "" {
		return nil, nil, validation("Either an InstanceId or a LifecycleActionToken must be specified.")
	}
	for inst, iw := range g.hookWaits {
		w := iw.waits[name]
		if w == nil || w.result != "" {
			continue
		}
		if (id == "" || id == inst) && (token == "" || token == w.token) {
			return g, w, nil
		}
	}
	if id != "" {
		return nil, nil, validation("No active Lifecycle Action found with instance ID %s", id)
	}
	return nil, nil, validation("No active Lifecycle Action found with token %s", token)
}

// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html
func asgCompleteLifecycleAction(c *call) (any, *APIError) {
	r := c.p.Get("LifecycleActionResult")
	if r != "CONTINUE" && r != "ABANDON" {
		return nil, validation("Invalid Lifecycle Action Result %s. Valid values are CONTINUE and ABANDON.", r)
	}
	_, w, err := c.lifecycleAction()
	if err != nil {
		return nil, err
	}
	w.result = r
	return nil, nil
}

// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RecordLifecycleActionHeartbeat.html
func asgRecordLifecycleActionHeartbeat(c *call) (any, *APIError) {
	g, w, err := c.lifecycleAction()
	if err != nil {
		return nil, err
	}
	h := g.LifecycleHooks[c.p.Get("LifecycleHookName")]
	w.deadline = c.w.now().Add(c.w.timing.scale(time.Duration(h.HeartbeatTimeout) * time.Second))
	return nil, nil
}

// hasHook reports whether the group has a hook for transition.
func (g *AutoScalingGroup) hasHook(transition string) bool {
	for _, h := range g.LifecycleHooks {
		if h.Transition == transition {
			return true
		}
	}
	return false
}

// hookHolds plays the hooks of transition for an instance that reached
// it: the first time, it puts the instance in the wait state; then it
// holds it until every hook has a result (completed, or timed out with
// its default result). It returns whether the instance still waits, and
// the result once it does not ("CONTINUE" when no hook applies).
func (r *Region) hookHolds(g *AutoScalingGroup, in *ASGInstance, transition string, now time.Time) (bool, string) {
	if g.Status == asgDeleting && g.ctl.force {
		// ForceDelete "also deletes any outstanding lifecycle actions".
		// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteAutoScalingGroup.html
		in.Wait = ""
		delete(g.hookWaits, in.ID)
		return false, "CONTINUE"
	}
	iw := g.hookWaits[in.ID]
	if iw != nil && iw.transition != transition {
		// A launch wait is moot once the instance is terminating.
		iw = nil
	}
	if iw == nil {
		if !g.hasHook(transition) || in.hookDone == transition {
			in.Wait = ""
			delete(g.hookWaits, in.ID)
			return false, "CONTINUE"
		}
		waits := map[string]*hookWait{}
		for _, h := range g.LifecycleHooks {
			if h.Transition == transition {
				waits[h.Name] = &hookWait{token: newUUID(), started: now,
					deadline: now.Add(r.w.timing.scale(time.Duration(h.HeartbeatTimeout) * time.Second)),
					global:   now.Add(r.w.timing.scale(time.Duration(h.globalTimeout()) * time.Second))}
			}
		}
		if g.hookWaits == nil {
			g.hookWaits = map[string]*instanceWait{}
		}
		g.hookWaits[in.ID] = &instanceWait{transition: transition, waits: waits}
		in.Wait = "Wait"
		return true, ""
	}
	result := "CONTINUE"
	for name, w := range iw.waits {
		if w.result == "" {
			h := g.LifecycleHooks[name]
			switch {
			case h == nil:
				w.result = "CONTINUE"
			case !now.Before(w.deadline) || !now.Before(w.global):
				w.result = h.DefaultResult
			default:
				return true, ""
			}
		}
		if w.result == "ABANDON" {
			result = "ABANDON"
		}
	}
	delete(g.hookWaits, in.ID)
	in.Wait, in.hookDone = "", transition
	return false, result
}

// launchHookHolds is hookHolds for a running Pending instance. Once the
// hooks let it go it is registered with the group's target groups; an
// ABANDON result terminates it instead.
func (r *Region) launchHookHolds(g *AutoScalingGroup, in *ASGInstance, now time.Time) bool {
	if !g.hasHook(hookLaunching) && in.Wait == "" {
		return false
	}
	holds, result := r.hookHolds(g, in, hookLaunching, now)
	if holds {
		return true
	}
	if result == "ABANDON" {
		msg := "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token was abandoned"
		finishActivity(g.ctl.launchAct[in.ID], now, "Cancelled", msg)
		delete(g.ctl.launchAct, in.ID)
		r.asgStartTerminate(g, in, fmt.Sprintf("At %s an instance was taken out of service in response to a lifecycle action that was abandoned.", asgTime(now)), false)
		r.refreshNoteFailure(g, in.ID, msg)
		return true
	}
	if !g.suspended("AddToLoadBalancer") {
		for _, arn := range g.TargetGroupARNs {
			if tg := r.TargetGroups[arn]; tg != nil {
				r.registerTarget(tg, in.ID, 0)
			}
		}
	}
	return false
}

// terminateHookHolds is hookHolds for a drained Terminating instance:
// either result lets the termination go on.
func (r *Region) terminateHookHolds(g *AutoScalingGroup, in *ASGInstance, now time.Time) bool {
	if !g.hasHook(hookTerminating) && in.Wait == "" {
		return false
	}
	holds, _ := r.hookHolds(g, in, hookTerminating, now)
	return holds
}

// dropHookWaits forgets the waits of instances that left the group.
func dropHookWaits(g *AutoScalingGroup) {
	for id := range g.hookWaits {
		found := false
		for _, in := range append(g.Instances[:len(g.Instances):len(g.Instances)], g.WarmInstances...) {
			found = found || in.ID == id
		}
		if !found {
			delete(g.hookWaits, id)
		}
	}
}

// lifecycleState is the state DescribeAutoScalingGroups shows.
func (in *ASGInstance) lifecycleState() string {
	if in.Wait != "" {
		return in.LifecycleState + ":" + in.Wait
	}
	return in.LifecycleState
}
