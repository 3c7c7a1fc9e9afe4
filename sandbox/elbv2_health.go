package sandbox

import (
	"strconv"
	"time"
)

// The ELBv2 health controller plays target health as AWS reports it in
// DescribeTargetHealth: targets of groups no listener or rule uses are
// "unused", targets whose instance is not running are "unused" with
// Target.InvalidState, targets behind a provisioning load balancer wait in
// "initial", and the others are checked every HealthCheckIntervalSeconds
// (scaled) until HealthyThresholdCount passes or UnhealthyThresholdCount
// failures in a row decide their state. Targets in an Availability Zone
// none of the load balancer's subnets covers are "unused" with
// Target.NotInUse. Draining targets leave when their
// deregistration delay is over.
//
// It runs every tick over every region under the world lock, so it does
// one pass over listeners and rules per region and then only touches
// targets whose next check is due. The check itself is the runtime's: it
// may finish at once (sim) or in a goroutine (a real HTTP request in the
// linux runtime); its result is applied on the tick that finds it done,
// and the next check starts an interval after the previous one started.

func init() { addController(elbHealthController) }

func elbHealthController(r *Region, now time.Time) {
	if len(r.TargetGroups) == 0 {
		return
	}
	var users map[string][]string
	var byIP map[string]*Instance
	for _, tg := range r.TargetGroups {
		if len(tg.Targets) == 0 {
			continue
		}
		if users == nil {
			users = r.targetGroupUsers()
		}
		lbs := users[tg.ARN]
		provisioning := false
		for _, arn := range lbs {
			if lb := r.LoadBalancers[arn]; lb != nil && lb.State == "provisioning" {
				provisioning = true
			}
		}
		zones := r.enabledZones(lbs)
		if tg.TargetType == "ip" && byIP == nil {
			byIP = map[string]*Instance{}
			for _, inst := range r.Instances {
				if inst.State != "terminated" {
					byIP[inst.PrivateIP] = inst
				}
			}
		}
		kept := tg.Targets[:0]
		for _, t := range tg.Targets {
			if t.State == "draining" {
				if now.Before(t.DrainUntil) {
					kept = append(kept, t)
				}
				continue
			}
			inst := r.Instances[t.ID]
			if tg.TargetType == "ip" {
				inst = byIP[t.ID]
			} else if inst == nil {
				continue // the terminated instance is gone: so is the target
			}
			kept = append(kept, t)
			notInUse := ""
			switch {
			case len(lbs) == 0:
				notInUse = "Target group is not configured to receive traffic from the load balancer"
			case inst != nil && !zones[inst.AZ]:
				// A load balancer routes only to targets in the
				// Availability Zones of its subnets, cross-zone load
				// balancing or not; the others are unused with the
				// reason code of a group no listener forwards to.
				// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
				notInUse = "Target is in an Availability Zone that is not enabled for the load balancer"
			}
			r.stepTarget(tg, t, inst, notInUse, provisioning, now)
		}
		for i := len(kept); i < len(tg.Targets); i++ {
			tg.Targets[i] = nil
		}
		tg.Targets = kept
	}
}

// enabledZones is the set of Availability Zones the subnets of the load
// balancers lbs cover.
func (r *Region) enabledZones(lbs []string) map[string]bool {
	zones := map[string]bool{}
	for _, arn := range lbs {
		if lb := r.LoadBalancers[arn]; lb != nil {
			for _, id := range lb.SubnetIDs {
				if sn := r.Subnets[id]; sn != nil {
					zones[sn.AZ] = true
				}
			}
		}
	}
	return zones
}

// setTargetState changes a target's reported health; a change of
// condition restarts the health check sequence.
func (t *Target) setState(state, reason, desc string) {
	if t.State != state || t.Reason != reason {
		t.okRun, t.failRun = 0, 0
		t.check = nil // a check in flight no longer counts
	}
	t.State, t.Reason, t.Description = state, reason, desc
}

// stepTarget moves one target's health on; notInUse, when set, is why
// the load balancer does not use it (Target.NotInUse).
func (r *Region) stepTarget(tg *TargetGroup, t *Target, inst *Instance, notInUse string, provisioning bool, now time.Time) {
	hc := tg.HealthCheck
	switch {
	case notInUse != "":
		t.setState("unused", "Target.NotInUse", notInUse)
		t.nextCheck = time.Time{}
		return
	case tg.TargetType == "instance" && inst.State != "running":
		state := inst.State
		if state == "shutting-down" {
			state = "terminated"
		}
		t.setState("unused", "Target.InvalidState", "Target is in the "+state+" state")
		t.nextCheck = time.Time{}
		return
	case provisioning, now.Before(t.routableAt):
		// Health checks start once the registration has completed
		// (lbpropagation.go).
		t.setState("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
		t.nextCheck = time.Time{}
		return
	case !hc.Enabled:
		t.setState("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")
		return
	}
	interval := r.w.timing.scale(time.Duration(hc.IntervalSeconds) * time.Second)
	if t.nextCheck.IsZero() || t.State == "unused" || t.Reason == "Elb.RegistrationInProgress" {
		// Checking (re)starts: the first result comes one interval later.
		t.setState("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
		t.nextCheck = now.Add(interval)
		return
	}
	if t.check != nil {
		if t.check.ready() {
			t.applyCheck(hc)
		}
		return
	}
	if now.Before(t.nextCheck) {
		return
	}
	t.nextCheck = now.Add(interval)
	if inst == nil { // an ip target nothing answers on
		t.check = healthResult(false, "Target.Timeout", "Request timed out")
	} else {
		ip := inst.PrivateIP
		if tg.TargetType == "ip" {
			ip = t.ID
		}
		t.check = r.w.runtime.HealthCheck(r, inst, tg, ip, healthCheckPort(tg, t))
	}
	if t.check.ready() {
		t.applyCheck(hc)
	}
}

// applyCheck counts the finished health check in t.check towards the
// healthy or unhealthy threshold.
func (t *Target) applyCheck(hc TargetGroupHealthCheck) {
	ok, reason, desc := true, "", ""
	if t.check != nil {
		ok, reason, desc = t.check.healthy, t.check.reason, t.check.description
	}
	t.check = nil
	if ok {
		t.okRun, t.failRun = t.okRun+1, 0
		if t.okRun >= hc.HealthyThreshold && t.State != "healthy" {
			t.State, t.Reason, t.Description = "healthy", "", ""
		}
		return
	}
	t.okRun, t.failRun = 0, t.failRun+1
	if t.failRun >= hc.UnhealthyThreshold {
		t.State, t.Reason, t.Description = "unhealthy", reason, desc
	}
}

// healthCheckPort is the port a target is checked on.
func healthCheckPort(tg *TargetGroup, t *Target) int {
	if n, err := strconv.Atoi(tg.HealthCheck.Port); err == nil {
		return n
	}
	return t.Port
}
