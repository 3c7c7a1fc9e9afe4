package sandbox

import (
	"fmt"
	"time"
)

// Warm pools: pre-initialized instances beside a group, launched from
// the group's launch template, run through their launching hooks and
// then stopped (or kept running); a scale-out takes them before it
// launches new ones, and an instance refresh replaces them too.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html

func init() {
	register("autoscaling", "PutWarmPool", asgPutWarmPool)
	register("autoscaling", "DescribeWarmPool", asgDescribeWarmPool)
	register("autoscaling", "DeleteWarmPool", asgDeleteWarmPool)
	addController(warmPoolController)
}

// WarmPool is a group's warm pool configuration.
type WarmPool struct {
	MaxGroupPreparedCapacity *int // nil: the group's maximum size
	MinSize                  int
	PoolState                string // Stopped, Running or Hibernated
	ReuseOnScaleIn           bool
	Status                   string // "" or PendingDelete
}

// Warm pool lifecycle states.
const (
	warmPending     = "Warmed:Pending"
	warmTerminating = "Warmed:Terminating"
)

func asgPutWarmPool(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if g.WarmPool != nil && g.WarmPool.Status == "PendingDelete" {
		return nil, errf("ResourceInUse", "The warm pool of AutoScalingGroup %s is being deleted.", g.Name)
	}
	wp := &WarmPool{PoolState: "Stopped"}
	if m, err := c.p.IntPtr("MaxGroupPreparedCapacity"); err != nil {
		return nil, validation("%s", err.Message)
	} else if m != nil && *m != -1 {
		if *m < 0 {
			return nil, validation("MaxGroupPreparedCapacity must be -1 or greater than or equal to 0.")
		}
		wp.MaxGroupPreparedCapacity = m
	}
	if n, err := c.p.Int("MinSize", 0); err != nil {
		return nil, validation("%s", err.Message)
	} else if n < 0 {
		return nil, validation("MinSize must be greater than or equal to 0.")
	} else {
		wp.MinSize = n
	}
	if s := c.p.Get("PoolState"); s != "" {
		if s != "Stopped" && s != "Running" && s != "Hibernated" {
			return nil, validation("1 validation error detected: Value '%s' at 'poolState' failed to satisfy constraint: Member must satisfy enum value set: [Stopped, Running, Hibernated]", s)
		}
		wp.PoolState = s
	}
	reuse, err := c.p.Sub("InstanceReusePolicy").Bool("ReuseOnScaleIn", false)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	wp.ReuseOnScaleIn = reuse
	g.WarmPool = wp
	return nil, nil
}

func asgDescribeWarmPool(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	var conf *X
	if wp := g.WarmPool; wp != nil {
		var maxCap *X
		if wp.MaxGroupPreparedCapacity != nil {
			maxCap = I("MaxGroupPreparedCapacity", *wp.MaxGroupPreparedCapacity)
		}
		conf = E("WarmPoolConfiguration", maxCap, I("MinSize", wp.MinSize), T("PoolState", wp.PoolState), Opt("Status", wp.Status),
			E("InstanceReusePolicy", B("ReuseOnScaleIn", wp.ReuseOnScaleIn)))
	}
	return []*X{conf, List("Instances", Items("member", g.WarmInstances, func(in *ASGInstance) []*X {
		return []*X{T("InstanceId", in.ID), T("InstanceType", in.InstanceType), T("AvailabilityZone", in.AZ),
			T("LifecycleState", in.lifecycleState()), T("HealthStatus", in.HealthStatus),
			renderASGLaunchTemplate("LaunchTemplate", &in.LaunchTemplate), B("ProtectedFromScaleIn", in.ProtectedFromScaleIn)}
	}))}, nil
}

func asgDeleteWarmPool(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if g.WarmPool == nil {
		return nil, validation("No warm pool found for AutoScalingGroup %s.", g.Name)
	}
	g.WarmPool.Status = "PendingDelete"
	return nil, nil
}

// warmTarget is how many instances the warm pool keeps: the maximum
// prepared capacity (or the group's maximum size) less the desired
// capacity, at least the pool's minimum size.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html#warm-pool-core-concepts
func (g *AutoScalingGroup) warmTarget() int {
	wp := g.WarmPool
	if wp == nil || wp.Status == "PendingDelete" || g.Status == asgDeleting {
		return 0
	}
	prepared := g.MaxSize
	if wp.MaxGroupPreparedCapacity != nil {
		prepared = *wp.MaxGroupPreparedCapacity
	}
	return max(prepared-g.DesiredCapacity, wp.MinSize, 0)
}

// warmReady reports whether a warm instance has finished warming.
func warmReady(in *ASGInstance) bool {
	return in.LifecycleState != warmPending && in.LifecycleState != warmTerminating
}

// fromWarmPool puts a warmed instance in service for a scale-out: it is
// started if stopped, goes Pending, and runs the launching hooks again
// (a launching hook pauses it in Warmed:Pending:Wait, then again in
// Pending:Wait when it leaves the pool).
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html
// It returns false when the pool has no warmed instance.
func (r *Region) fromWarmPool(g *AutoScalingGroup, now time.Time, cause string) bool {
	for i, in := range g.WarmInstances {
		inst := r.Instances[in.ID]
		if !warmReady(in) || in.Wait != "" || inst == nil || inst.State == "stopping" || inst.State == "shutting-down" || inst.State == "terminated" {
			continue
		}
		// While a refresh runs, its replacements come from the
		// configuration it moves to: a warm instance on another one waits
		// for the refresh to replace it. Outside a refresh any warmed
		// instance serves, also one on an older launch template version:
		// a new version does not touch the instances already in the pool.
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html#update-warm-pool
		if _, st := g.runningRefresh(); st != nil && !st.matches(in) {
			continue
		}
		g.WarmInstances = append(g.WarmInstances[:i:i], g.WarmInstances[i+1:]...)
		if inst.State == "stopped" {
			r.startInstance(inst)
		}
		in.LifecycleState, in.hookDone, in.launchedAt = "Pending", "", now
		g.Instances = append(g.Instances, in)
		a := r.newActivity(g, now, "Launching a new EC2 instance from warm pool: "+in.ID, cause, "InProgress", inst.SubnetID, inst.AZ)
		g.ctl.launchAct[in.ID] = a
		if !g.suspended("AddToLoadBalancer") && !g.hasHook(hookLaunching) {
			for _, arn := range g.TargetGroupARNs {
				if tg := r.TargetGroups[arn]; tg != nil {
					r.registerTarget(tg, in.ID, 0)
				}
			}
		}
		return true
	}
	return false
}

// launchWarm launches one instance into the warm pool: a launch like
// the group's, kept out of its target groups.
func (r *Region) launchWarm(g *AutoScalingGroup, now time.Time) bool {
	n := len(g.Instances)
	held := g.Suspended
	g.Suspended = append(append([]string(nil), held...), "AddToLoadBalancer")
	ok := r.asgLaunchOne(g, now, fmt.Sprintf("At %s an instance was launched in response to a difference between desired and actual warm pool capacity.", asgTime(now)))
	g.Suspended = held
	if !ok || len(g.Instances) != n+1 {
		return false
	}
	in := g.Instances[n]
	g.Instances = g.Instances[:n]
	in.LifecycleState = warmPending
	if a := g.ctl.launchAct[in.ID]; a != nil {
		a.Description = "Launching a new EC2 instance into warm pool: " + in.ID
	}
	g.WarmInstances = append(g.WarmInstances, in)
	return true
}

// warmTerminate takes a warm instance out of the pool.
func (r *Region) warmTerminate(g *AutoScalingGroup, in *ASGInstance, now time.Time, why string) {
	in.LifecycleState, in.Wait = warmTerminating, ""
	delete(g.hookWaits, in.ID)
	finishActivity(g.ctl.launchAct[in.ID], now, "Cancelled", "")
	delete(g.ctl.launchAct, in.ID)
	if inst := r.Instances[in.ID]; inst != nil {
		r.terminateInstance(inst, "")
	}
	r.newActivity(g, now, "Terminating EC2 instance from warm pool: "+in.ID, fmt.Sprintf("At %s an instance was taken out of the warm pool in response to %s.", asgTime(now), why), "Successful", "", in.AZ)
}

// warmed ends a warm instance's launch.
func (r *Region) warmed(g *AutoScalingGroup, in *ASGInstance, state string, now time.Time) {
	in.LifecycleState = state
	finishActivity(g.ctl.launchAct[in.ID], now, "Successful", "")
	delete(g.ctl.launchAct, in.ID)
}

// warmPoolController warms new warm instances, keeps the pool at its
// size and removes a deleted pool.
func warmPoolController(r *Region, now time.Time) {
	for _, g := range r.ASGs {
		if g.ctl == nil || (g.WarmPool == nil && len(g.WarmInstances) == 0) {
			continue
		}
		kept := g.WarmInstances[:0:0]
		for _, in := range g.WarmInstances {
			inst := r.Instances[in.ID]
			if inst == nil || inst.State == "terminated" {
				continue
			}
			switch {
			case in.LifecycleState == warmPending && inst.State == "running" && in.hookDone != hookLaunching:
				holds, result := r.hookHolds(g, in, hookLaunching, now)
				switch {
				case holds:
				case result == "ABANDON":
					r.warmTerminate(g, in, now, "a lifecycle action that was abandoned")
				case g.WarmPool == nil || g.WarmPool.PoolState == "Running":
					in.hookDone = hookLaunching
					r.warmed(g, in, "Warmed:Running", now)
				default:
					// Warmed:Stopped (or Hibernated) once EC2 has stopped it.
					in.hookDone = hookLaunching
					r.stopInstance(inst, false)
				}
			case in.LifecycleState == warmPending && in.hookDone == hookLaunching && inst.State == "stopped":
				state := "Warmed:Stopped"
				if g.WarmPool != nil && g.WarmPool.PoolState == "Hibernated" {
					state = "Warmed:Hibernated"
				}
				r.warmed(g, in, state, now)
			}
			kept = append(kept, in)
		}
		g.WarmInstances = kept
		var live []*ASGInstance
		for _, in := range g.WarmInstances {
			if in.LifecycleState != warmTerminating {
				live = append(live, in)
			}
		}
		target := g.warmTarget()
		switch {
		case len(live) < target && !g.suspended("Launch") && !now.Before(g.ctl.nextLaunch):
			for n := len(live); n < target; n++ {
				if !r.launchWarm(g, now) {
					break
				}
			}
		case len(live) > target:
			for _, in := range live[:len(live)-target] {
				r.warmTerminate(g, in, now, "a difference between desired and actual warm pool capacity")
			}
		}
		if g.WarmPool != nil && g.WarmPool.Status == "PendingDelete" && len(g.WarmInstances) == 0 {
			g.WarmPool = nil
		}
	}
}

// refreshWarmPool replaces the warm pool's instances once the group's
// own are replaced: those not on the refresh's launch template version
// go, and the pool refills from it. It returns what the refresh still
// waits for in the pool ("" when nothing). AWS reports warm pool progress
// separately and does not say in which order; the stricter reading
// finishes the refresh only once the pool is replaced too.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRefreshWarmPoolProgress.html
func (r *Region) refreshWarmPool(g *AutoScalingGroup, st *refreshCtl, liveDone bool, now time.Time) string {
	if len(g.WarmInstances) == 0 && g.warmTarget() == 0 {
		return ""
	}
	stale, warming := 0, 0
	for _, in := range g.WarmInstances {
		switch {
		case in.LifecycleState == warmTerminating:
			warming++
		case !st.matches(in):
			stale++
			if liveDone {
				r.warmTerminate(g, in, now, "an instance refresh")
			}
		case !warmReady(in):
			warming++
		}
	}
	if stale+warming == 0 && len(g.WarmInstances) >= g.warmTarget() {
		return ""
	}
	return fmt.Sprintf("Waiting for the warm pool: %d instances to replace, %d warming up or leaving.", stale, warming)
}
