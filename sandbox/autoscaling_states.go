package sandbox

import (
	"fmt"
	"strings"
	"time"
)

// Instance states a user sets on a group's instances: scale-in
// protection (SetInstanceProtection, NewInstancesProtectedFromScaleIn)
// and Standby (EnterStandby, ExitStandby); the group's instance
// maintenance policy; and what an instance refresh does with protected
// and standby instances (the ScaleInProtectedInstances and
// StandbyInstances preferences).

func init() {
	register("autoscaling", "SetInstanceProtection", asgSetInstanceProtection)
	register("autoscaling", "EnterStandby", asgEnterStandby)
	register("autoscaling", "ExitStandby", asgExitStandby)
	addController(asgStatesController)
}

// Lifecycle states of instances a user took out of service.
const (
	stateEnteringStandby = "EnteringStandby"
	stateStandby         = "Standby"
)

// inStandby reports whether the instance is in or on its way to Standby.
func (in *ASGInstance) inStandby() bool {
	return in.LifecycleState == stateStandby || in.LifecycleState == stateEnteringStandby
}

// applyStatesInput reads the settings of Create/UpdateAutoScalingGroup
// this file plays: NewInstancesProtectedFromScaleIn and
// InstanceMaintenancePolicy.
func (c *call) applyStatesInput(ng *AutoScalingGroup) *APIError {
	p := c.p
	if v, err := p.BoolPtr("NewInstancesProtectedFromScaleIn"); err != nil {
		return validation("%s", err.Message)
	} else if v != nil {
		// Only instances launched from now on are protected; those already
		// in the group keep their setting.
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html
		ng.NewInstancesProtectedFromScaleIn = *v
	}
	if err := c.applyHookSpecs(ng); err != nil {
		return err
	}
	if !p.HasSub("InstanceMaintenancePolicy") {
		return nil
	}
	// Both percentages are given, min 0-100 and max 100-200 at most 100
	// apart, or -1 for both to remove the policy.
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceMaintenancePolicy.html
	mp := p.Sub("InstanceMaintenancePolicy")
	lo, err := mp.IntPtr("MinHealthyPercentage")
	if err != nil {
		return validation("%s", err.Message)
	}
	hi, err := mp.IntPtr("MaxHealthyPercentage")
	if err != nil {
		return validation("%s", err.Message)
	}
	switch {
	case lo == nil || hi == nil:
		return validation("The request isn't valid. You must specify both MinHealthyPercentage and MaxHealthyPercentage in an instance maintenance policy.")
	case *lo == -1 && *hi == -1:
		ng.MaintenancePolicy = nil
		return nil
	case *lo < 0 || *lo > 100:
		return validation("1 validation error detected: Value '%d' at 'instanceMaintenancePolicy.minHealthyPercentage' failed to satisfy constraint: Member must have value between 0 and 100, or -1 to remove the policy", *lo)
	case *hi < 100 || *hi > 200:
		return validation("1 validation error detected: Value '%d' at 'instanceMaintenancePolicy.maxHealthyPercentage' failed to satisfy constraint: Member must have value between 100 and 200, or -1 to remove the policy", *hi)
	case *hi-*lo > 100:
		return validation("The request isn't valid. The difference between MaxHealthyPercentage and MinHealthyPercentage can't be greater than 100.")
	}
	ng.MaintenancePolicy = &MaintenancePolicy{MinHealthyPercentage: *lo, MaxHealthyPercentage: *hi}
	return nil
}

func renderMaintenancePolicy(g *AutoScalingGroup) *X {
	if g.MaintenancePolicy == nil {
		return nil
	}
	return E("InstanceMaintenancePolicy", I("MinHealthyPercentage", g.MaintenancePolicy.MinHealthyPercentage), I("MaxHealthyPercentage", g.MaintenancePolicy.MaxHealthyPercentage))
}

// refreshHealthyDefaults fills in the healthy percentages a refresh's
// preferences omit from the group's instance maintenance policy: "If you
// do not specify this property, the default is 90 percent, or the
// percentage set in the instance maintenance policy for the Auto Scaling
// group, if defined" (and 100 for the maximum).
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html
// A refresh that gives one percentage and takes the other from the
// policy is held to the same limit as one that gives both: at most 100
// apart (the stricter reading).
func refreshHealthyDefaults(g *AutoScalingGroup, p Params, pr *RefreshPreferences) *APIError {
	mp := g.MaintenancePolicy
	if mp == nil {
		return nil
	}
	if !p.Has("MinHealthyPercentage") {
		pr.MinHealthyPercentage = mp.MinHealthyPercentage
	}
	if !p.Has("MaxHealthyPercentage") {
		pr.MaxHealthyPercentage = mp.MaxHealthyPercentage
	}
	if pr.MaxHealthyPercentage-pr.MinHealthyPercentage > 100 {
		return validation("The request isn't valid. The difference between MaxHealthyPercentage (%d) and MinHealthyPercentage (%d) can't be greater than 100; the instance maintenance policy of the Auto Scaling group gives the one the preferences omit.", pr.MaxHealthyPercentage, pr.MinHealthyPercentage)
	}
	return nil
}

// groupInstances reads InstanceIds.member.N of a group's instances.
func (c *call) groupInstances(g *AutoScalingGroup, max int) ([]*ASGInstance, *APIError) {
	ids := c.p.Members("InstanceIds")
	if len(ids) == 0 {
		return nil, validation("1 validation error detected: Value null at 'instanceIds' failed to satisfy constraint: Member must not be null")
	}
	if len(ids) > max {
		return nil, validation("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to %d", max)
	}
	var out []*ASGInstance
	for _, id := range ids {
		var found *ASGInstance
		for _, in := range g.Instances {
			if in.ID == id {
				found = in
			}
		}
		if found == nil {
			return nil, validation("The instance %s is not part of Auto Scaling group %s.", id, g.Name)
		}
		out = append(out, found)
	}
	return out, nil
}

// asgSetInstanceProtection: up to 50 instances of the group.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html
func asgSetInstanceProtection(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if !c.p.Has("ProtectedFromScaleIn") {
		return nil, validation("1 validation error detected: Value null at 'protectedFromScaleIn' failed to satisfy constraint: Member must not be null")
	}
	protect, err := c.p.Bool("ProtectedFromScaleIn", false)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	ins, err := c.groupInstances(g, 50)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if in.LifecycleState == "Terminating" {
			return nil, validation("The instance %s is terminating; its scale-in protection cannot be changed.", in.ID)
		}
	}
	for _, in := range ins {
		in.ProtectedFromScaleIn = protect
	}
	return nil, nil
}

// asgEnterStandby moves InService instances to Standby: they leave the
// group's target groups (after connection draining) and stop counting
// toward capacity. With ShouldDecrementDesiredCapacity the desired
// capacity drops by their number and may not fall below the minimum;
// without it the group launches replacements.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_EnterStandby.html
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-enter-exit-standby.html
func asgEnterStandby(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if !c.p.Has("ShouldDecrementDesiredCapacity") {
		return nil, validation("1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	dec, err := c.p.Bool("ShouldDecrementDesiredCapacity", false)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	ins, err := c.groupInstances(g, 20)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if in.LifecycleState != "InService" {
			return nil, validation("The instance %s is not in InService; only InService instances can enter Standby (it is %s).", in.ID, in.LifecycleState)
		}
	}
	now := c.w.now()
	old := g.DesiredCapacity
	if dec {
		if g.DesiredCapacity-len(ins) < g.MinSize {
			return nil, validation("Cannot decrement the desired capacity of Auto Scaling group %s below its minimum size %d: %d instances entering Standby with a desired capacity of %d.", g.Name, g.MinSize, len(ins), g.DesiredCapacity)
		}
		g.DesiredCapacity -= len(ins)
	}
	var acts []*X
	for _, in := range ins {
		cause := fmt.Sprintf("At %s instance %s was moved to standby in response to a user request.", asgTime(now), in.ID)
		if dec {
			cause = fmt.Sprintf("At %s instance %s was moved to standby in response to a user request, shrinking the capacity from %d to %d.", asgTime(now), in.ID, old, g.DesiredCapacity)
		}
		in.LifecycleState = stateEnteringStandby
		g.ctl.drainUntil[in.ID] = c.r.asgDeregister(g, in.ID)
		a := c.r.newActivity(g, now, "Moving EC2 instance to Standby: "+in.ID, cause, "InProgress", "", in.AZ)
		g.ctl.termAct[in.ID] = a
		acts = append(acts, renderActivity("member", g, a))
	}
	return []*X{List("Activities", acts)}, nil
}

// asgExitStandby returns Standby instances to service: Pending, back in
// the target groups, then InService; the desired capacity grows by their
// number and may not exceed the maximum.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_ExitStandby.html
func asgExitStandby(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	ins, err := c.groupInstances(g, 20)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if in.LifecycleState != stateStandby {
			return nil, validation("The instance %s is not in Standby (it is %s).", in.ID, in.LifecycleState)
		}
	}
	if g.DesiredCapacity+len(ins) > g.MaxSize {
		return nil, validation("Cannot increase the desired capacity of Auto Scaling group %s above its maximum size %d: %d instances leaving Standby with a desired capacity of %d.", g.Name, g.MaxSize, len(ins), g.DesiredCapacity)
	}
	now := c.w.now()
	old := g.DesiredCapacity
	g.DesiredCapacity += len(ins)
	var acts []*X
	for _, in := range ins {
		in.LifecycleState = "Pending"
		if !g.suspended("AddToLoadBalancer") {
			for _, arn := range g.TargetGroupARNs {
				if tg := c.r.TargetGroups[arn]; tg != nil {
					c.r.registerTarget(tg, in.ID, 0)
				}
			}
		}
		cause := fmt.Sprintf("At %s instance %s was moved out of standby in response to a user request, increasing the capacity from %d to %d.", asgTime(now), in.ID, old, g.DesiredCapacity)
		a := c.r.newActivity(g, now, "Moving EC2 instance out of Standby: "+in.ID, cause, "InProgress", "", in.AZ)
		g.ctl.launchAct[in.ID] = a
		acts = append(acts, renderActivity("member", g, a))
	}
	return []*X{List("Activities", acts)}, nil
}

// asgStatesController finishes EnterStandby once draining is over and
// terminates standby instances of a group being deleted (ForceDelete
// deletes the group "along with all instances associated with the
// group").
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteAutoScalingGroup.html
func asgStatesController(r *Region, now time.Time) {
	for _, g := range r.ASGs {
		if g.ctl == nil {
			continue
		}
		dropHookWaits(g)
		for _, in := range g.Instances {
			if !in.inStandby() {
				continue
			}
			if g.Status == asgDeleting {
				finishActivity(g.ctl.termAct[in.ID], now, "Cancelled", "")
				r.asgStartTerminate(g, in, fmt.Sprintf("At %s instance %s was taken out of service in response to the deletion of the Auto Scaling group.", asgTime(now), in.ID), true)
				continue
			}
			if in.LifecycleState == stateEnteringStandby && !now.Before(g.ctl.drainUntil[in.ID]) {
				in.LifecycleState = stateStandby
				finishActivity(g.ctl.termAct[in.ID], now, "Successful", "")
				delete(g.ctl.termAct, in.ID)
				delete(g.ctl.drainUntil, in.ID)
			}
		}
	}
}

// Instance refresh and protected / standby instances.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html
//   ScaleInProtectedInstances: Refresh replaces them, Ignore leaves them,
//   Wait (the API's default) "waits one hour for you to remove scale-in
//   protection. Otherwise, the instance refresh will fail."
//   StandbyInstances: Terminate terminates them, Ignore leaves them, Wait
//   (the default) "waits one hour for you to return the instances to
//   service. Otherwise, the instance refresh will fail."
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html
//   (the console's default is Ignore, the CLI's and SDKs' Wait.)
// The hour is on the timing profile ("refresh_instance_wait") and runs
// from the refresh's start, not from when it has nothing left but to
// wait: AWS does not say which, and the earlier start fails sooner (the
// stricter reading).

// refreshStates is a refresh's view of protected and standby instances.
type refreshStates struct {
	started time.Time       // when the refresh (or its rollback) began replacing
	standby map[string]bool // instances in Standby the refresh waits for
}

// beginStates notes where the hour starts and which standby instances a
// Wait refresh waits for: not those that already match what it moves to
// when it skips matching instances (as a rollback does).
func (st *refreshCtl) beginStates(g *AutoScalingGroup, now time.Time, skipMatching bool) {
	st.states = refreshStates{started: now, standby: map[string]bool{}}
	for _, in := range g.Instances {
		if in.inStandby() && !(skipMatching && st.matches(in)) {
			st.states.standby[in.ID] = true
		}
	}
}

// replacesProtected reports whether a refresh with these preferences
// takes protected instances in: Refresh and Wait do, Ignore does not.
func (pr RefreshPreferences) replacesProtected() bool { return pr.ScaleInProtected != "Ignore" }

// mayTerminate reports whether the refresh may take in out of service
// now: a protected instance waits for its protection to go under Wait.
func (pr RefreshPreferences) mayTerminate(in *ASGInstance) bool {
	return !in.ProtectedFromScaleIn || pr.ScaleInProtected == "Refresh"
}

// refreshStatesStep plays the preferences for protected and standby
// instances on one pass of a running refresh. It returns what the
// refresh still waits for ("" when nothing), and true when the wait is
// over and the refresh failed (or began its rollback).
func (r *Region) refreshStatesStep(g *AutoScalingGroup, rf *InstanceRefresh, st *refreshCtl, now time.Time) (string, bool) {
	pr := rf.Preferences
	var standby, protected []string
	for _, in := range g.Instances {
		switch {
		case in.inStandby() && pr.Standby == "Terminate":
			finishActivity(g.ctl.termAct[in.ID], now, "Cancelled", "")
			r.asgStartTerminate(g, in, fmt.Sprintf("At %s an instance was taken out of service in response to an instance refresh (StandbyInstances is Terminate).  At %s instance %s was selected for termination.", asgTime(now), asgTime(now), in.ID), false)
		case in.inStandby() && pr.Standby == "Wait" && st.states.standby[in.ID]:
			standby = append(standby, in.ID)
		case !in.inStandby() && st.states.standby[in.ID]:
			// Back in service: on its old configuration, so it is
			// replaced like the others.
			delete(st.states.standby, in.ID)
			live := in.LifecycleState == "Pending" || in.LifecycleState == "InService"
			if live && !((pr.SkipMatching || st.rollback) && st.matches(in)) && !contains(st.toReplace, in.ID) {
				st.toReplace = append(st.toReplace, in.ID)
			}
		}
	}
	for _, id := range st.toReplace {
		for _, in := range g.Instances {
			if in.ID == id && in.ProtectedFromScaleIn && pr.ScaleInProtected == "Wait" && (in.LifecycleState == "Pending" || in.LifecycleState == "InService") {
				protected = append(protected, id)
			}
		}
	}
	var waits []string
	if len(protected) > 0 {
		waits = append(waits, fmt.Sprintf("scale-in protection to be removed from %d instances (for example %s)", len(protected), protected[0]))
	}
	if len(standby) > 0 {
		waits = append(waits, fmt.Sprintf("%d instances in Standby to return to service (for example %s)", len(standby), standby[0]))
	}
	if len(waits) == 0 {
		return "", false
	}
	what := strings.Join(waits, " and for ")
	limit := r.w.timing.d("refresh_instance_wait")
	if now.Before(st.states.started.Add(limit)) {
		return "Waiting for " + what + ".", false
	}
	reason := fmt.Sprintf("waited %d seconds for %s", int(r.w.timing.raw("refresh_instance_wait").Seconds()), what)
	switch {
	case st.rollback:
		r.finishRefresh(g, rf, now, "RollbackFailed", "The rollback failed: "+reason)
	case pr.AutoRollback:
		r.startRollback(g, rf, now, "The instance refresh failed and AutoRollback is enabled: "+reason)
	default:
		r.finishRefresh(g, rf, now, "Failed", "The instance refresh failed: "+reason)
	}
	return "", true
}

// raw returns a profile entry as AWS plays it, unscaled.
func (t *Timing) raw(name string) time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.durations[name]
}
