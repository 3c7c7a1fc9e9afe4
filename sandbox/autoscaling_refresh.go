package sandbox

import (
	"fmt"
	"sort"
	"time"
)

// Instance refresh: rolling replacement of a group's instances, bounded
// by the minimum and maximum healthy percentages, with warmup,
// checkpoints, bake time, cancellation and rollback.

// refreshMaxFailures is how many new instances may fail to launch or fail
// their health checks before a refresh fails (or rolls back).
const refreshMaxFailures = 3

// refreshCtl is a refresh's controller-private progress.
type refreshCtl struct {
	target     LaunchTemplateRef     // concrete version new instances use
	mixed      *MixedInstancesPolicy // concrete versions, for a mixed instances target
	toReplace  []string
	initial    map[string]bool
	failures   int
	lastFail   string
	nextCP     int
	resumeAt   time.Time
	bakeUntil  time.Time
	cancelAt   time.Time
	rollback   bool
	warmupSecs int
	states     refreshStates // protected and standby instances
}

var refreshActive = map[string]bool{"Pending": true, "InProgress": true, "Baking": true, "Cancelling": true, "RollbackInProgress": true}

func init() {
	register("autoscaling", "StartInstanceRefresh", asgStartRefresh)
	register("autoscaling", "CancelInstanceRefresh", asgCancelRefresh)
	register("autoscaling", "RollbackInstanceRefresh", asgRollbackRefresh)
	register("autoscaling", "DescribeInstanceRefreshes", asgDescribeRefreshes)
}

// activeRefresh returns the group's refresh that has not finished.
func (g *AutoScalingGroup) activeRefresh() *InstanceRefresh {
	for _, rf := range g.Refreshes {
		if refreshActive[rf.Status] {
			return rf
		}
	}
	return nil
}

func isNumberedVersion(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseRefreshPreferences(p Params) (RefreshPreferences, *APIError) {
	pr := RefreshPreferences{MinHealthyPercentage: 90, MaxHealthyPercentage: 100, CheckpointDelay: 3600, ScaleInProtected: "Wait", Standby: "Wait"}
	ints := []struct {
		key      string
		dst      *int
		min, max int
	}{
		{"MinHealthyPercentage", &pr.MinHealthyPercentage, 0, 100},
		{"MaxHealthyPercentage", &pr.MaxHealthyPercentage, 100, 200},
		{"CheckpointDelay", &pr.CheckpointDelay, 0, 172800},
		{"BakeTime", &pr.BakeTime, 0, 172800},
	}
	for _, f := range ints {
		v, err := p.Int(f.key, *f.dst)
		if err != nil {
			return pr, validation("%s", err.Message)
		}
		if v < f.min || v > f.max {
			return pr, validation("1 validation error detected: Value '%d' at 'preferences.%s' failed to satisfy constraint: Member must have value between %d and %d", v, f.key, f.min, f.max)
		}
		*f.dst = v
	}
	if p.Has("MaxHealthyPercentage") {
		if !p.Has("MinHealthyPercentage") {
			return pr, validation("The request isn't valid. You must specify a value for MinHealthyPercentage when you specify a value for MaxHealthyPercentage.")
		}
		if pr.MaxHealthyPercentage-pr.MinHealthyPercentage > 100 {
			return pr, validation("The request isn't valid. The difference between MaxHealthyPercentage and MinHealthyPercentage can't be greater than 100.")
		}
	}
	w, err := p.IntPtr("InstanceWarmup")
	if err != nil {
		return pr, validation("%s", err.Message)
	}
	if w != nil && *w < 0 {
		return pr, validation("1 validation error detected: Value '%d' at 'preferences.instanceWarmup' failed to satisfy constraint: Member must have value greater than or equal to 0", *w)
	}
	pr.InstanceWarmup = w
	prev := 0
	for _, s := range p.Members("CheckpointPercentages") {
		var n int
		if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 100 {
			return pr, validation("Checkpoint percentages must be between 1 and 100, not %s", s)
		}
		if n <= prev {
			return pr, validation("The request isn't valid. Checkpoint percentages must be unique and in ascending order.")
		}
		prev = n
		pr.CheckpointPercentages = append(pr.CheckpointPercentages, n)
	}
	bools := []struct {
		key string
		dst *bool
	}{{"SkipMatching", &pr.SkipMatching}, {"AutoRollback", &pr.AutoRollback}}
	for _, f := range bools {
		v, err := p.Bool(f.key, false)
		if err != nil {
			return pr, validation("%s", err.Message)
		}
		*f.dst = v
	}
	enums := []struct {
		key     string
		dst     *string
		allowed []string
	}{
		{"ScaleInProtectedInstances", &pr.ScaleInProtected, []string{"Refresh", "Ignore", "Wait"}},
		{"StandbyInstances", &pr.Standby, []string{"Terminate", "Ignore", "Wait"}},
	}
	for _, f := range enums {
		if v := p.Get(f.key); v != "" {
			if !contains(f.allowed, v) {
				return pr, validation("1 validation error detected: Value '%s' at 'preferences.%s' failed to satisfy constraint: Member must satisfy enum value set: %v", v, f.key, f.allowed)
			}
			*f.dst = v
		}
	}
	pr.AlarmNames = p.Sub("AlarmSpecification").Members("Alarms")
	return pr, nil
}

func asgStartRefresh(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if s := c.p.Get("Strategy"); s != "" && s != "Rolling" && s != "ReplaceRootVolume" {
		return nil, validation("1 validation error detected: Value '%s' at 'strategy' failed to satisfy constraint: Member must satisfy enum value set: [Rolling, ReplaceRootVolume]", s)
	} else if s == "ReplaceRootVolume" {
		return nil, validation("The sandbox supports the Rolling strategy only")
	}
	if g.activeRefresh() != nil {
		return nil, errf("InstanceRefreshInProgress", "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
	}
	prefs, err := parseRefreshPreferences(c.p.Sub("Preferences"))
	if err != nil {
		return nil, err
	}
	if err := refreshHealthyDefaults(g, c.p.Sub("Preferences"), &prefs); err != nil {
		return nil, err
	}
	if err := c.r.checkRefreshAlarms(prefs.AlarmNames); err != nil {
		return nil, err
	}
	desired, desiredMixed, err := c.r.parseDesiredConfiguration(c.p)
	if err != nil {
		return nil, err
	}
	// "While your Auto Scaling group has a launch template that references
	// a parameter instead of an AMI ID, you cannot start an instance
	// refresh that specifies a desired configuration or uses skip
	// matching."
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html#using-systems-manager-parameters-limitations
	if c.r.usesAnyImageAlias(g.groupTemplates()) && (desired != nil || desiredMixed != nil || prefs.SkipMatching) {
		return nil, validation("The request isn't valid. You can't start an instance refresh that specifies a desired configuration or uses skip matching while the Auto Scaling group's launch template references a Systems Manager parameter instead of an AMI ID.")
	}
	// "You can't use skip matching with a new launch configuration": the
	// stricter reading refuses skip matching for a group on a launch
	// configuration unless a desired configuration names a template.
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-instance-refresh-skip-matching.html
	if prefs.SkipMatching && g.LaunchConfiguration != "" && desired == nil && desiredMixed == nil {
		return nil, validation("The request isn't valid. You can't use skip matching with a launch configuration.")
	}
	if prefs.AutoRollback {
		if desired == nil && desiredMixed == nil {
			return nil, validation("The request isn't valid. The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty. Set AutoRollback to false or specify a desired configuration and try again.")
		}
		if !allNumbered(g.groupTemplates()) {
			return nil, validation("The request isn't valid. You can't enable AutoRollback when the Auto Scaling group uses the $Latest or $Default version of a launch template. Specify a launch template version number and try again.")
		}
		// No rollback where a launch template uses an AMI alias from
		// Parameter Store; the stricter reading refuses it for the desired
		// configuration's template as well as for the group's.
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-rollback.html
		// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html
		if c.r.usesAnyImageAlias(g.groupTemplates()) || c.r.usesImageAlias(desired) || desiredMixed != nil && c.r.usesAnyImageAlias(desiredMixed.templates()) {
			return nil, validation("The request isn't valid. You can't enable AutoRollback when the launch template uses an AMI alias from AWS Systems Manager Parameter Store instead of an AMI ID.")
		}
	}
	now := c.w.now()
	rf := &InstanceRefresh{ID: newUUID(), Status: "Pending", StartTime: now, Preferences: prefs, Desired: desired, DesiredMixed: desiredMixed, state: &refreshCtl{}}
	if g.LaunchTemplate != nil {
		rf.PreviousTemplate = *g.LaunchTemplate
	}
	rf.PreviousMixed = g.MixedInstancesPolicy.clone()
	rf.InstancesToUpdate = len(g.live())
	g.Refreshes = append(g.Refreshes, rf)
	return []*X{T("InstanceRefreshId", rf.ID)}, nil
}

func asgCancelRefresh(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	rf := g.activeRefresh()
	if rf == nil || rf.Status == "Cancelling" {
		return nil, errf("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group %s", g.Name)
	}
	rf.Status, rf.StatusReason = "Cancelling", "Cancelling due to user request."
	rf.state.(*refreshCtl).cancelAt = c.w.now().Add(c.w.timing.d("refresh_cancel"))
	return []*X{T("InstanceRefreshId", rf.ID)}, nil
}

func asgRollbackRefresh(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	rf := g.activeRefresh()
	if rf == nil || rf.Status == "Cancelling" || rf.Status == "RollbackInProgress" {
		return nil, errf("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group %s", g.Name)
	}
	if rf.Desired == nil && rf.DesiredMixed == nil {
		return nil, errf("IrreversibleInstanceRefresh", "The instance refresh can't be rolled back because it was started without a desired configuration.")
	}
	if rf.PreviousMixed != nil && !allNumbered(rf.PreviousMixed.templates()) {
		return nil, errf("IrreversibleInstanceRefresh", "The instance refresh can't be rolled back because the Auto Scaling group's mixed instances policy uses the $Latest or $Default version of a launch template.")
	}
	if rf.PreviousMixed == nil && !isNumberedVersion(rf.PreviousTemplate.Version) {
		return nil, errf("IrreversibleInstanceRefresh", "The instance refresh can't be rolled back because the Auto Scaling group uses the %s version of its launch template.", rf.PreviousTemplate.Version)
	}
	// A rollback is not supported when the group has a launch template
	// that uses a Systems Manager parameter instead of an AMI ID (the
	// stricter reading: the desired configuration's template too).
	// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RollbackInstanceRefresh.html
	if c.r.usesImageAlias(&rf.PreviousTemplate) || c.r.usesImageAlias(rf.Desired) || rf.PreviousMixed != nil && c.r.usesAnyImageAlias(rf.PreviousMixed.templates()) || rf.DesiredMixed != nil && c.r.usesAnyImageAlias(rf.DesiredMixed.templates()) {
		return nil, errf("IrreversibleInstanceRefresh", "The instance refresh can't be rolled back because a launch template it uses references a Systems Manager parameter instead of an AMI ID.")
	}
	c.r.startRollback(g, rf, c.w.now(), "Rollback initiated by user request.")
	return []*X{T("InstanceRefreshId", rf.ID)}, nil
}

func asgDescribeRefreshes(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	ids := c.p.Members("InstanceRefreshIds")
	var out []*InstanceRefresh
	for i := len(g.Refreshes) - 1; i >= 0; i-- {
		if rf := g.Refreshes[i]; len(ids) == 0 || contains(ids, rf.ID) {
			out = append(out, rf)
		}
	}
	out, next, err := pageASG(c, out, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("InstanceRefreshes", Items("member", out, func(rf *InstanceRefresh) []*X { return renderRefresh(g, rf) })), next}, nil
}

func renderProgress(name string, pct, todo int) *X {
	return E(name, E("LivePoolProgress", I("PercentageComplete", pct), I("InstancesToUpdate", todo)))
}

func renderRefresh(g *AutoScalingGroup, rf *InstanceRefresh) []*X {
	pr := rf.Preferences
	var cps, delay *X
	if len(pr.CheckpointPercentages) > 0 {
		items := make([]*X, 0, len(pr.CheckpointPercentages))
		for _, n := range pr.CheckpointPercentages {
			items = append(items, I("member", n))
		}
		cps, delay = List("CheckpointPercentages", items), I("CheckpointDelay", pr.CheckpointDelay)
	}
	var alarms *X
	if len(pr.AlarmNames) > 0 {
		alarms = E("AlarmSpecification", List("Alarms", Strings("member", pr.AlarmNames)))
	}
	var desired, rollback *X
	if rf.Desired != nil || rf.DesiredMixed != nil {
		desired = E("DesiredConfiguration", renderASGLaunchTemplate("LaunchTemplate", rf.Desired), renderMixedInstancesPolicy("MixedInstancesPolicy", rf.DesiredMixed))
	}
	if !rf.RollbackStartTime.IsZero() {
		rollback = E("RollbackDetails", T("RollbackReason", rf.RollbackReason), Time("RollbackStartTime", rf.RollbackStartTime),
			I("PercentageCompleteOnRollback", rf.PctBeforeRollback), I("InstancesToUpdateOnRollback", rf.InstancesBeforeRback),
			renderProgress("ProgressDetailsOnRollback", rf.PctBeforeRollback, rf.InstancesBeforeRback))
	}
	return []*X{
		T("InstanceRefreshId", rf.ID), T("AutoScalingGroupName", g.Name), T("Status", rf.Status), Opt("StatusReason", rf.StatusReason),
		Time("StartTime", rf.StartTime), Time("EndTime", rf.EndTime), I("PercentageComplete", rf.PercentageComplete),
		I("InstancesToUpdate", rf.InstancesToUpdate), renderProgress("ProgressDetails", rf.PercentageComplete, rf.InstancesToUpdate),
		E("Preferences", I("MinHealthyPercentage", pr.MinHealthyPercentage), I("MaxHealthyPercentage", pr.MaxHealthyPercentage),
			IPtr("InstanceWarmup", pr.InstanceWarmup), cps, delay, B("SkipMatching", pr.SkipMatching), B("AutoRollback", pr.AutoRollback),
			T("ScaleInProtectedInstances", pr.ScaleInProtected), T("StandbyInstances", pr.Standby), I("BakeTime", pr.BakeTime), alarms),
		desired, rollback, T("Strategy", "Rolling"),
	}
}

// Controller side.

// runningRefresh returns the refresh that is replacing instances now.
func (g *AutoScalingGroup) runningRefresh() (*InstanceRefresh, *refreshCtl) {
	rf := g.activeRefresh()
	if rf == nil {
		return nil, nil
	}
	switch rf.Status {
	case "InProgress", "Baking", "RollbackInProgress":
		return rf, rf.state.(*refreshCtl)
	}
	return nil, nil
}

// launchRefFor is the launch template new instances of the group use:
// a running refresh's target, else the group's.
func (r *Region) launchRefFor(g *AutoScalingGroup) *LaunchTemplateRef {
	if _, st := g.runningRefresh(); st != nil {
		t := st.target
		return &t
	}
	return g.LaunchTemplate
}

func (st *refreshCtl) matches(in *ASGInstance) bool {
	if st.mixed != nil {
		return mixedMatches(st.mixed, in)
	}
	return in.LaunchTemplate.ID == st.target.ID && in.LaunchTemplate.Version == st.target.Version
}

// refreshNoteFailure counts a failed launch against a running refresh.
func (r *Region) refreshNoteFailure(g *AutoScalingGroup, id, msg string) {
	if _, st := g.runningRefresh(); st != nil {
		st.failures++
		st.lastFail = msg
		if id != "" {
			st.lastFail = id + ": " + msg
		}
	}
}

// refreshNoteUnhealthy counts a new instance that failed health checks.
func (r *Region) refreshNoteUnhealthy(g *AutoScalingGroup, in *ASGInstance, why string) {
	if _, st := g.runningRefresh(); st != nil && !st.initial[in.ID] {
		st.failures++
		st.lastFail = in.ID + " was taken out of service in response to " + why
	}
}

// begin computes what a refresh (or its rollback) replaces.
func (r *Region) beginRefresh(g *AutoScalingGroup, rf *InstanceRefresh, st *refreshCtl, ref *LaunchTemplateRef, skipMatching bool) {
	id, ver := r.resolvedVersion(ref)
	name := ""
	if lt := r.LaunchTemplates[id]; lt != nil {
		name = lt.Name
	}
	st.target = LaunchTemplateRef{ID: id, Name: name, Version: ver}
	st.initial, st.toReplace, st.failures, st.nextCP = map[string]bool{}, nil, 0, 0
	st.beginStates(g, r.w.now(), skipMatching)
	for _, in := range g.live() {
		st.initial[in.ID] = true
		if skipMatching && st.matches(in) || in.ProtectedFromScaleIn && !rf.Preferences.replacesProtected() {
			continue
		}
		st.toReplace = append(st.toReplace, in.ID)
	}
	switch {
	case rf.Preferences.InstanceWarmup != nil:
		st.warmupSecs = *rf.Preferences.InstanceWarmup
	case g.DefaultInstanceWarmup != nil:
		st.warmupSecs = *g.DefaultInstanceWarmup
	default:
		st.warmupSecs = g.HealthCheckGracePeriod
	}
	rf.InstancesToUpdate, rf.PercentageComplete = len(st.toReplace), 0
}

// startRollback turns a refresh into its rollback.
func (r *Region) startRollback(g *AutoScalingGroup, rf *InstanceRefresh, now time.Time, reason string) {
	st := rf.state.(*refreshCtl)
	rf.RollbackReason, rf.RollbackStartTime = reason, now
	rf.PctBeforeRollback, rf.InstancesBeforeRback = rf.PercentageComplete, rf.InstancesToUpdate
	rf.Status, rf.StatusReason = "RollbackInProgress", "Rolling back the instance refresh: "+reason
	st.rollback, st.resumeAt, st.bakeUntil = true, time.Time{}, time.Time{}
	prev := rf.PreviousTemplate
	st.mixed = nil
	if rf.PreviousMixed != nil {
		st.mixed = r.resolvedMixed(rf.PreviousMixed)
		prev = st.mixed.LaunchTemplate
	}
	r.beginRefresh(g, rf, st, &prev, true)
}

func (r *Region) finishRefresh(g *AutoScalingGroup, rf *InstanceRefresh, now time.Time, status, reason string) {
	rf.Status, rf.StatusReason, rf.EndTime = status, reason, now
	switch status {
	case "Successful":
		rf.PercentageComplete, rf.InstancesToUpdate = 100, 0
		if rf.Desired != nil {
			d := *rf.Desired
			g.LaunchTemplate, g.MixedInstancesPolicy, g.LaunchConfiguration = &d, nil, ""
		}
		if rf.DesiredMixed != nil {
			g.LaunchTemplate, g.MixedInstancesPolicy, g.LaunchConfiguration = nil, rf.DesiredMixed.clone(), ""
		}
	case "RollbackSuccessful":
		rf.PercentageComplete, rf.InstancesToUpdate = 100, 0
	}
}

// refreshPlan is one look at a running refresh's group.
type refreshPlan struct {
	live, ready, remaining []*ASGInstance
	terminating            int
	done, total            int
	notReady               *ASGInstance
	warming                bool
}

func (r *Region) planRefresh(g *AutoScalingGroup, st *refreshCtl, now time.Time) refreshPlan {
	var p refreshPlan
	byID := map[string]*ASGInstance{}
	for _, in := range g.Instances {
		byID[in.ID] = in
		if in.LifecycleState == "Terminating" {
			p.terminating++
		}
	}
	warm := r.w.timing.scale(time.Duration(st.warmupSecs) * time.Second)
	for _, in := range g.live() {
		p.live = append(p.live, in)
		ok := in.LifecycleState == "InService" && in.HealthStatus == "Healthy"
		warming := ok && now.Before(in.inServiceAt.Add(warm))
		if ok && g.HealthCheckType == "ELB" {
			for _, arn := range g.TargetGroupARNs {
				if !r.targetPassing(arn, in.ID) {
					ok = false
				}
			}
		}
		if ok && !warming {
			p.ready = append(p.ready, in)
		} else if p.notReady == nil {
			p.notReady, p.warming = in, warming
		}
	}
	p.total = len(st.toReplace)
	for _, id := range st.toReplace {
		if in := byID[id]; in != nil && (in.LifecycleState == "Pending" || in.LifecycleState == "InService") {
			p.remaining = append(p.remaining, in)
		}
	}
	p.done = p.total - len(p.remaining)
	return p
}

// targetPassing reports whether instance id counts as healthy capacity
// in target group arn: it is healthy there, or the load balancer does not
// check it because no listener uses the group (Target.NotInUse), or it is
// not registered. A target the load balancer has not checked yet
// (initial, or unused with Target.InvalidState while its instance was
// still pending) does not count: a refresh that counted it could replace
// the last healthy instance before the new one had passed a check.
func (r *Region) targetPassing(arn, id string) bool {
	state, reason := r.targetStateReason(arn, id)
	switch state {
	case "", "healthy":
		return true
	case "unused":
		return reason == "Target.NotInUse"
	}
	return false
}

func pct(done, total int) int {
	if total == 0 {
		return 100
	}
	return done * 100 / total
}

// untilCheckpoint is how many more instances may be replaced before the
// next checkpoint.
func (st *refreshCtl) untilCheckpoint(rf *InstanceRefresh, p refreshPlan) int {
	cps := rf.Preferences.CheckpointPercentages
	if st.rollback || st.nextCP >= len(cps) {
		return len(p.remaining)
	}
	n := (p.total*cps[st.nextCP]+99)/100 - p.done
	if n < 0 {
		n = 0
	}
	return n
}

// refreshSurge is how many instances above the desired capacity a running
// refresh with a maximum healthy percentage above 100 may launch.
func (r *Region) refreshSurge(g *AutoScalingGroup) int {
	rf, st := g.runningRefresh()
	if rf == nil || rf.Status == "Baking" || rf.Preferences.MaxHealthyPercentage <= 100 || !st.resumeAt.IsZero() {
		return 0
	}
	p := r.planRefresh(g, st, r.w.now())
	maxCount := g.DesiredCapacity * rf.Preferences.MaxHealthyPercentage / 100
	if maxCount <= g.DesiredCapacity {
		maxCount = g.DesiredCapacity + 1
	}
	surge := maxCount - g.DesiredCapacity
	// Extra instances stand in for old ones still to replace, up to the
	// next checkpoint; those already terminating are replaced within the
	// desired capacity.
	if n := st.untilCheckpoint(rf, p); n < surge {
		surge = n
	}
	return surge
}

// stepRefresh advances the group's active refresh.
func (r *Region) stepRefresh(g *AutoScalingGroup, now time.Time) {
	rf := g.activeRefresh()
	if rf == nil {
		return
	}
	st := rf.state.(*refreshCtl)
	switch rf.Status {
	case "Pending":
		if now.Before(rf.StartTime.Add(r.w.timing.d("refresh_pending"))) {
			return
		}
		ref := g.LaunchTemplate
		if rf.Desired != nil {
			ref = rf.Desired
		}
		if st.mixed = r.refreshMixed(g, rf); st.mixed != nil {
			ref = &st.mixed.LaunchTemplate
		}
		rf.Status = "InProgress"
		r.beginRefresh(g, rf, st, ref, rf.Preferences.SkipMatching)
		return
	case "Cancelling":
		if !now.Before(st.cancelAt) {
			r.finishRefresh(g, rf, now, "Cancelled", "Cancelled due to user request.")
		}
		return
	}
	if g.suspended("InstanceRefresh") {
		rf.StatusReason = "The instance refresh is paused because the InstanceRefresh process is suspended."
		return
	}
	if st.failures >= refreshMaxFailures {
		reason := fmt.Sprintf("%d new instances failed to launch or failed health checks, for example %s", st.failures, st.lastFail)
		switch {
		case st.rollback:
			r.finishRefresh(g, rf, now, "RollbackFailed", "The rollback failed: "+reason)
		case rf.Preferences.AutoRollback:
			r.startRollback(g, rf, now, "The instance refresh failed and AutoRollback is enabled: "+reason)
		default:
			r.finishRefresh(g, rf, now, "Failed", "The instance refresh failed: "+reason)
		}
		return
	}
	if reason := r.refreshAlarmReason(rf); reason != "" && !st.rollback {
		if rf.Preferences.AutoRollback {
			r.startRollback(g, rf, now, reason)
		} else {
			r.finishRefresh(g, rf, now, "Failed", reason)
		}
		return
	}
	p := r.planRefresh(g, st, now)
	rf.PercentageComplete, rf.InstancesToUpdate = pct(p.done, p.total), len(p.remaining)
	if rf.Status == "Baking" {
		if !now.Before(st.bakeUntil) {
			r.finishRefresh(g, rf, now, "Successful", "")
		}
		return
	}
	cps := rf.Preferences.CheckpointPercentages
	if !st.resumeAt.IsZero() {
		if now.Before(st.resumeAt) {
			return
		}
		st.resumeAt = time.Time{}
		st.nextCP++
		rf.StatusReason = ""
		if st.nextCP >= len(cps) && cps[len(cps)-1] < 100 {
			r.finishRefresh(g, rf, now, "Successful", fmt.Sprintf("The instance refresh finished at its last checkpoint (%d%%).", cps[len(cps)-1]))
			rf.PercentageComplete = cps[len(cps)-1]
			return
		}
	}
	waiting, failed := r.refreshStatesStep(g, rf, st, now)
	if failed {
		return
	}
	if waiting != "" {
		p = r.planRefresh(g, st, now)
		rf.PercentageComplete, rf.InstancesToUpdate = pct(p.done, p.total), len(p.remaining)
	}
	settled := len(p.ready) == len(p.live) && len(p.live) == g.DesiredCapacity && p.terminating == 0
	warm := r.refreshWarmPool(g, st, len(p.remaining) == 0 && settled && waiting == "", now)
	if len(p.remaining) == 0 && settled && waiting == "" && warm == "" {
		switch {
		case st.rollback:
			r.finishRefresh(g, rf, now, "RollbackSuccessful", "The instance refresh was rolled back: "+rf.RollbackReason)
		case rf.Preferences.BakeTime > 0:
			rf.Status, rf.StatusReason = "Baking", fmt.Sprintf("Waiting for BakeTime of %d seconds before completing the instance refresh.", rf.Preferences.BakeTime)
			st.bakeUntil = r.w.afterSeconds(rf.Preferences.BakeTime)
		default:
			r.finishRefresh(g, rf, now, "Successful", "")
		}
		return
	}
	if !st.rollback && st.nextCP < len(cps) && rf.PercentageComplete >= cps[st.nextCP] && settled {
		st.resumeAt = r.w.afterSeconds(rf.Preferences.CheckpointDelay)
		rf.StatusReason = fmt.Sprintf("Checkpoint %d%% reached. Waiting for the CheckpointDelay of %d seconds before continuing.", cps[st.nextCP], rf.Preferences.CheckpointDelay)
		return
	}
	switch {
	case p.notReady != nil && p.warming:
		rf.StatusReason = fmt.Sprintf("Waiting for instances to warm up before continuing. For example: %s is warming up.", p.notReady.ID)
	case p.notReady != nil:
		rf.StatusReason = fmt.Sprintf("Waiting for instances to become healthy before continuing. For example: %s is not yet healthy.", p.notReady.ID)
	case waiting != "":
		rf.StatusReason = waiting
	case warm != "" && len(p.remaining) == 0:
		rf.StatusReason = warm
	default:
		rf.StatusReason = ""
	}
	// Replace old instances: those not ready cost no healthy capacity; the
	// ready ones go while the group keeps its minimum healthy percentage.
	budget := st.untilCheckpoint(rf, p)
	minHealthy := (g.DesiredCapacity*rf.Preferences.MinHealthyPercentage + 99) / 100
	k := len(p.ready) - minHealthy
	if k <= 0 && settled && rf.Preferences.MaxHealthyPercentage <= 100 {
		k = 1 // replace one at a time
	}
	readySet := map[string]bool{}
	for _, in := range p.ready {
		readySet[in.ID] = true
	}
	victims := append([]*ASGInstance(nil), p.remaining...)
	sort.SliceStable(victims, func(i, j int) bool { return !readySet[victims[i].ID] && readySet[victims[j].ID] })
	cause := "an instance refresh"
	if st.rollback {
		cause = "an instance refresh rollback"
	}
	for _, in := range victims {
		if budget <= 0 {
			break
		}
		if !rf.Preferences.mayTerminate(in) {
			continue
		}
		if readySet[in.ID] {
			if k <= 0 {
				break
			}
			k--
		}
		budget--
		r.asgStartTerminate(g, in, fmt.Sprintf("At %s an instance was taken out of service in response to %s.  At %s instance %s was selected for termination.",
			asgTime(now), cause, asgTime(now), in.ID), false)
	}
}
