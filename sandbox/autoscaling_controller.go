package sandbox

import (
	"fmt"
	"strconv"
	"time"
)

// The Auto Scaling group controller: it keeps each group at its desired
// capacity, follows its instances from Pending to InService, replaces
// unhealthy ones and drains and terminates the ones it takes out of
// service, writing a scaling activity for every launch and termination.

// asgControl is a group's controller-private state.
type asgControl struct {
	cause          string // the last user request, as an activity cause prefix
	force          bool   // ForceDelete: no connection draining
	nextLaunch     time.Time
	failures       int // consecutive failed launches, for the back-off
	launchAct      map[string]*ScalingActivity
	termAct        map[string]*ScalingActivity
	drainUntil     map[string]time.Time
	terminating    map[string]bool // EC2 termination started
	unhealthyCause map[string]string
	suspendedAt    map[string]time.Time
	details        map[string]string // activity id -> Details
}

func newASGControl() *asgControl {
	return &asgControl{
		launchAct: map[string]*ScalingActivity{}, termAct: map[string]*ScalingActivity{},
		drainUntil: map[string]time.Time{}, terminating: map[string]bool{}, unhealthyCause: map[string]string{},
		suspendedAt: map[string]time.Time{}, details: map[string]string{},
	}
}

func (ctl *asgControl) setCause(now time.Time, text string) {
	ctl.cause = "At " + asgTime(now) + " " + text
}

// maxActivities bounds a group's activity history.
const maxActivities = 500

// launchRole is the service-linked role the group launches with.
func (g *AutoScalingGroup) launchRole(account string) string {
	if g.ServiceLinkedRoleARN == "" {
		return defaultASGRole(account)
	}
	return g.ServiceLinkedRoleARN
}

func (g *AutoScalingGroup) suspended(process string) bool { return contains(g.Suspended, process) }

// live returns the instances that count toward capacity.
func (g *AutoScalingGroup) live() []*ASGInstance {
	var out []*ASGInstance
	for _, in := range g.Instances {
		if in.LifecycleState == "Pending" || in.LifecycleState == "InService" {
			out = append(out, in)
		}
	}
	return out
}

// newActivity records an activity for instance in (in a subnet) or for a
// launch that produced no instance.
func (r *Region) newActivity(g *AutoScalingGroup, now time.Time, desc, cause, status string, subnet, az string) *ScalingActivity {
	a := &ScalingActivity{ID: newUUID(), Description: desc, Cause: cause, StartTime: now, Status: status}
	switch status {
	case "Successful", "Failed", "Cancelled":
		a.EndTime, a.Progress = now, 100
	}
	g.Activities = append(g.Activities, a)
	if len(g.Activities) > maxActivities {
		delete(g.ctl.details, g.Activities[0].ID)
		g.Activities = g.Activities[1:]
	}
	d := "{}"
	if subnet != "" {
		d = fmt.Sprintf(`{"Subnet ID":"%s","Availability Zone":"%s"}`, subnet, az)
	}
	g.ctl.details[a.ID] = d
	return a
}

func finishActivity(a *ScalingActivity, now time.Time, status, msg string) {
	if a == nil {
		return
	}
	a.Status, a.EndTime, a.Progress = status, now, 100
	if msg != "" {
		a.StatusMsg = msg
		a.Description += ".  Status Reason: " + msg
	}
}

func asgController(r *Region, now time.Time) {
	for name, g := range r.ASGs {
		if g.ctl == nil {
			g.ctl = newASGControl()
		}
		r.runScheduledActions(g, now)
		r.syncGroupInstances(g, now)
		r.checkGroupHealth(g, now)
		r.stepRefresh(g, now)
		r.keepCapacity(g, now)
		if g.Status == asgDeleting && len(g.Instances) == 0 && len(g.WarmInstances) == 0 {
			delete(r.ASGs, name)
		}
	}
}

func init() { addController(asgController) }

// syncGroupInstances follows each instance's EC2 state.
func (r *Region) syncGroupInstances(g *AutoScalingGroup, now time.Time) {
	ctl := g.ctl
	kept := g.Instances[:0]
	for _, in := range g.Instances {
		inst := r.Instances[in.ID]
		gone := inst == nil || inst.State == "terminated"
		switch in.LifecycleState {
		case "Pending":
			if gone || inst.State == "shutting-down" {
				reason := "Instance was terminated"
				if inst != nil && inst.StateReason != "" {
					reason = inst.StateReason
				}
				msg := "Instance became unhealthy while waiting for instance to be in InService state. Termination Reason: " + reason
				finishActivity(ctl.launchAct[in.ID], now, "Failed", msg)
				delete(ctl.launchAct, in.ID)
				r.asgDeregister(g, in.ID)
				r.asgLaunchFailed(g, now, in.ID, msg)
				continue
			}
			if inst.State == "running" && !r.launchHookHolds(g, in, now) && in.LifecycleState == "Pending" {
				in.LifecycleState, in.inServiceAt = "InService", now
				finishActivity(ctl.launchAct[in.ID], now, "Successful", "")
				delete(ctl.launchAct, in.ID)
				ctl.failures = 0
			}
		case "Terminating":
			if gone {
				finishActivity(ctl.termAct[in.ID], now, "Successful", "")
				delete(ctl.termAct, in.ID)
				delete(ctl.drainUntil, in.ID)
				delete(ctl.terminating, in.ID)
				delete(ctl.unhealthyCause, in.ID)
				continue
			}
			if !ctl.terminating[in.ID] && !now.Before(ctl.drainUntil[in.ID]) && !r.terminateHookHolds(g, in, now) {
				r.terminateInstance(inst, "")
				ctl.terminating[in.ID] = true
				if a := ctl.termAct[in.ID]; a != nil {
					a.Status, a.Progress = "InProgress", 50
				}
			}
		}
		kept = append(kept, in)
	}
	for i := len(kept); i < len(g.Instances); i++ {
		g.Instances[i] = nil
	}
	g.Instances = kept
}

// asgLaunchFailed backs launches off and tells an active refresh.
func (r *Region) asgLaunchFailed(g *AutoScalingGroup, now time.Time, id, msg string) {
	ctl := g.ctl
	ctl.failures++
	n := ctl.failures - 1
	if n > 6 {
		n = 6
	}
	ctl.nextLaunch = now.Add(r.w.timing.d("asg_launch") << n)
	r.refreshNoteFailure(g, id, msg)
}

// targetState returns the state of instance id in target group arn, ""
// when it is not registered.
func (r *Region) targetState(arn, id string) string {
	state, _ := r.targetStateReason(arn, id)
	return state
}

// targetStateReason is targetState with the target's reason code.
func (r *Region) targetStateReason(arn, id string) (state, reason string) {
	tg := r.TargetGroups[arn]
	if tg == nil {
		return "", ""
	}
	for _, t := range tg.Targets {
		if t.ID == id {
			if t.State != "draining" {
				return t.State, t.Reason
			}
			state, reason = t.State, t.Reason
		}
	}
	return state, reason
}

// unhealthyReason says why an instance fails the group's health checks.
func (r *Region) unhealthyReason(g *AutoScalingGroup, in *ASGInstance, now time.Time) string {
	inst := r.Instances[in.ID]
	if inst == nil || inst.State != "running" && inst.State != "pending" {
		return "an EC2 instance status check failure"
	}
	if g.HealthCheckType == "ELB" && !now.Before(in.launchedAt.Add(r.w.timing.scale(time.Duration(g.HealthCheckGracePeriod)*time.Second))) {
		for _, arn := range g.TargetGroupARNs {
			if r.targetState(arn, in.ID) == "unhealthy" {
				return "an ELB system health check failure"
			}
		}
	}
	return ""
}

// checkGroupHealth marks failing instances Unhealthy and replaces them.
func (r *Region) checkGroupHealth(g *AutoScalingGroup, now time.Time) {
	if g.suspended("HealthCheck") {
		return
	}
	for _, in := range g.Instances {
		if in.LifecycleState != "InService" {
			continue
		}
		if in.HealthStatus == "Healthy" {
			if why := r.unhealthyReason(g, in, now); why != "" {
				in.HealthStatus = "Unhealthy"
				g.ctl.unhealthyCause[in.ID] = fmt.Sprintf("At %s an instance was taken out of service in response to %s.", asgTime(now), why)
				r.refreshNoteUnhealthy(g, in, why)
			}
		}
		if in.HealthStatus == "Unhealthy" && !g.suspended("ReplaceUnhealthy") && !g.suspended("Terminate") {
			cause := g.ctl.unhealthyCause[in.ID]
			if cause == "" {
				cause = fmt.Sprintf("At %s an instance was taken out of service in response to a health check failure.", asgTime(now))
			}
			r.asgStartTerminate(g, in, cause, false)
		}
	}
}

// asgDeregister deregisters an instance from the group's target groups
// and returns when its draining ends.
func (r *Region) asgDeregister(g *AutoScalingGroup, id string) time.Time {
	until := r.w.now()
	for _, arn := range g.TargetGroupARNs {
		tg := r.TargetGroups[arn]
		if tg != nil && r.deregisterTarget(tg, id, 0) {
			if d := r.w.afterSeconds(tg.deregistrationDelay()); d.After(until) {
				until = d
			}
		}
	}
	return until
}

// asgStartTerminate takes an instance out of service: deregistration
// (connection draining), then EC2 termination.
func (r *Region) asgStartTerminate(g *AutoScalingGroup, in *ASGInstance, cause string, force bool) *ScalingActivity {
	now := r.w.now()
	in.LifecycleState = "Terminating"
	until := r.asgDeregister(g, in.ID)
	if force || g.ctl.force {
		until = now
	}
	status := "InProgress"
	if until.After(now) {
		status = "WaitingForELBConnectionDraining"
	}
	subnet := ""
	if inst := r.Instances[in.ID]; inst != nil {
		subnet = inst.SubnetID
	}
	if a := g.ctl.launchAct[in.ID]; a != nil {
		finishActivity(a, now, "Cancelled", "")
		delete(g.ctl.launchAct, in.ID)
	}
	a := r.newActivity(g, now, "Terminating EC2 instance: "+in.ID, cause, status, subnet, in.AZ)
	g.ctl.termAct[in.ID] = a
	g.ctl.drainUntil[in.ID] = until
	return a
}

// keepCapacity launches or terminates instances to match the desired
// capacity (plus an instance refresh's extra instances).
func (r *Region) keepCapacity(g *AutoScalingGroup, now time.Time) {
	live := g.live()
	target := g.DesiredCapacity + r.refreshSurge(g)
	ctl := g.ctl
	switch {
	case len(live) < target:
		if g.suspended("Launch") || now.Before(ctl.nextLaunch) {
			return
		}
		for n := len(live); n < target; n++ {
			cause := fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %d to %d.", asgTime(now), len(live), target)
			if ctl.cause != "" {
				cause = ctl.cause + "  " + cause
			}
			if r.fromWarmPool(g, now, cause) {
				continue
			}
			if !r.asgLaunchOne(g, now, cause) {
				return
			}
		}
	case len(live) > target:
		if g.suspended("Terminate") && g.Status != asgDeleting {
			return
		}
		for _, in := range r.pickVictims(g, live, len(live)-target) {
			cause := fmt.Sprintf("At %s an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from %d to %d.  At %s instance %s was selected for termination.",
				asgTime(now), len(live), target, asgTime(now), in.ID)
			if ctl.cause != "" {
				cause = ctl.cause + "  " + cause
			}
			r.asgStartTerminate(g, in, cause, false)
		}
	default:
		ctl.cause = ""
	}
}

// pickASGSubnet picks the subnet of the least used availability zone.
func (r *Region) pickASGSubnet(g *AutoScalingGroup) *Subnet {
	count := map[string]int{}
	for _, in := range g.live() {
		count[in.AZ]++
	}
	var cands []*Subnet
	if len(g.SubnetIDs) > 0 {
		for _, id := range g.SubnetIDs {
			if s := r.Subnets[id]; s != nil {
				cands = append(cands, s)
			}
		}
	} else {
		for _, az := range g.AZs {
			for _, s := range r.Subnets {
				if s.IsDefault && s.AZ == az {
					cands = append(cands, s)
				}
			}
		}
	}
	var best *Subnet
	for _, s := range cands {
		if best == nil || count[s.AZ] < count[best.AZ] {
			best = s
		}
	}
	return best
}

// asgLaunchOne launches one instance from the group's launch template
// (or the refresh's), recording the activity; false when it failed.
func (r *Region) asgLaunchOne(g *AutoScalingGroup, now time.Time, cause string) bool {
	subnet := r.pickASGSubnet(g)
	var src *groupLaunch
	var insts []*Instance
	var err *APIError
	if subnet == nil {
		err = validation("No default subnet for availability zones %v", g.AZs)
	} else {
		src, err = r.nextLaunch(g)
	}
	if err == nil {
		data := src.data
		data.SubnetID = subnet.ID
		tags := Tags{}
		for _, t := range g.Tags {
			if t.PropagateAtLaunch {
				tags[t.Key] = t.Value
			}
		}
		data.TagSpecifications = append(append([]TagSpecification(nil), src.data.TagSpecifications...), TagSpecification{ResourceType: "instance", Tags: tags})
		extra := Tags{"aws:autoscaling:groupName": g.Name}
		if t := src.template; t.ID != "" {
			extra["aws:ec2launchtemplate:id"], extra["aws:ec2launchtemplate:version"] = t.ID, t.Version
		}
		// Auto Scaling launches with the group's service-linked role, which
		// gets nothing from IAM on customer managed keys.
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
		insts, err = r.launchInstances(launchSpec{Data: data, Count: 1, LaunchTemplateID: src.template.ID, LaunchTemplateV: src.template.Version,
			ExtraTags: extra, Principal: serviceLinkedRole(g.launchRole(r.Account))})
	}
	if err != nil {
		msg := err.Message + ". Launching EC2 instance failed."
		a := r.newActivity(g, now, "Launching a new EC2 instance", cause, "Failed", "", "")
		finishActivity(a, now, "Failed", msg)
		r.asgLaunchFailed(g, now, "", msg)
		return false
	}
	inst := insts[0]
	in := &ASGInstance{ID: inst.ID, AZ: inst.AZ, InstanceType: inst.InstanceType, LifecycleState: "Pending", HealthStatus: "Healthy",
		LaunchTemplate: src.template, LaunchConfiguration: src.configuration, launchedAt: now,
		ProtectedFromScaleIn: g.NewInstancesProtectedFromScaleIn}
	g.Instances = append(g.Instances, in)
	a := r.newActivity(g, now, "Launching a new EC2 instance: "+inst.ID, cause, "InProgress", inst.SubnetID, inst.AZ)
	a.Progress = 30
	g.ctl.launchAct[in.ID] = a
	// With a launching hook, registration waits for the hook.
	if !g.suspended("AddToLoadBalancer") && !g.hasHook(hookLaunching) {
		for _, arn := range g.TargetGroupARNs {
			if tg := r.TargetGroups[arn]; tg != nil {
				r.registerTarget(tg, in.ID, 0)
			}
		}
	}
	return true
}

// resolvedVersion returns a reference's template id and concrete version.
func (r *Region) resolvedVersion(ref *LaunchTemplateRef) (string, string) {
	if ref == nil {
		return "", ""
	}
	lt, v, err := r.resolveLaunchTemplate(ref.ID, ref.Name, ref.Version)
	if err != nil {
		return ref.ID, ref.Version
	}
	return lt.ID, strconv.Itoa(v.Number)
}

// pickVictims chooses n instances for scale-in with the default
// termination policy: balance availability zones, then prefer instances
// not on the current launch template version, then the oldest.
func (r *Region) pickVictims(g *AutoScalingGroup, live []*ASGInstance, n int) []*ASGInstance {
	id, ver := r.resolvedVersion(r.launchRefFor(g))
	count := map[string]int{}
	for _, in := range live {
		count[in.AZ]++
	}
	chosen := map[string]bool{}
	var out []*ASGInstance
	for len(out) < n {
		var best *ASGInstance
		better := func(a, b *ASGInstance) bool {
			if count[a.AZ] != count[b.AZ] {
				return count[a.AZ] > count[b.AZ]
			}
			am := a.LaunchTemplate.ID == id && a.LaunchTemplate.Version == ver
			bm := b.LaunchTemplate.ID == id && b.LaunchTemplate.Version == ver
			if am != bm {
				return !am
			}
			return a.launchedAt.Before(b.launchedAt)
		}
		for _, in := range live {
			if chosen[in.ID] || (in.ProtectedFromScaleIn && g.Status != asgDeleting) {
				continue
			}
			if best == nil || better(in, best) {
				best = in
			}
		}
		if best == nil {
			break
		}
		chosen[best.ID] = true
		count[best.AZ]--
		out = append(out, best)
	}
	return out
}
