package sandbox

import "strconv"

// Target registration shared by ELBv2's RegisterTargets and Auto
// Scaling's target group attachments.

// registerTarget adds id:port to tg in the initial state, or does nothing
// when it is already registered and not draining.
func (r *Region) registerTarget(tg *TargetGroup, id string, port int) {
	if port == 0 {
		port = tg.Port
	}
	for _, t := range tg.Targets {
		if t.ID == id && t.Port == port {
			if t.State == "draining" {
				t.State, t.Reason, t.Description = "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
				t.DrainUntil = r.w.now()
				t.okRun, t.failRun = 0, 0
				t.routableAt = r.w.now().Add(r.w.timing.d("target_registration"))
			}
			return
		}
	}
	az := ""
	if inst := r.Instances[id]; inst != nil {
		az = inst.AZ
	}
	now := r.w.now()
	tg.Targets = append(tg.Targets, &Target{
		ID: id, Port: port, AZ: az, State: "initial", Reason: "Elb.RegistrationInProgress",
		Description: "Target registration is in progress", RegisteredAt: now, nextCheck: now,
		routableAt: now.Add(r.w.timing.d("target_registration")),
	})
}

// deregisterTarget starts draining id:port for the group's deregistration
// delay; the health controller removes it when the delay is over.
func (r *Region) deregisterTarget(tg *TargetGroup, id string, port int) bool {
	for _, t := range tg.Targets {
		if t.ID == id && (port == 0 || t.Port == port) && t.State != "draining" {
			t.State, t.Reason, t.Description = "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
			t.DrainUntil = r.w.afterSeconds(tg.deregistrationDelay())
			return true
		}
	}
	return false
}

// deregistrationDelay is the deregistration_delay.timeout_seconds
// attribute, 300 by default.
func (tg *TargetGroup) deregistrationDelay() int {
	if v, ok := tg.Attributes["deregistration_delay.timeout_seconds"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return 300
}

// targetGroupByARN finds a target group.
func (r *Region) targetGroupByARN(arn string) (*TargetGroup, *APIError) {
	tg, ok := r.TargetGroups[arn]
	if !ok {
		return nil, errf("TargetGroupNotFound", "Target groups '%s' not found", arn)
	}
	return tg, nil
}

// targetGroupInUse reports whether a listener or rule forwards to tg: a
// load balancer health-checks only such groups; the others' targets are
// "unused" with Target.NotInUse.
func (r *Region) targetGroupInUse(tg *TargetGroup) bool {
	uses := func(actions []Action) bool {
		for _, a := range actions {
			if a.TargetGroupARN == tg.ARN {
				return true
			}
			for _, f := range a.Forward {
				if f.ARN == tg.ARN {
					return true
				}
			}
		}
		return false
	}
	for _, l := range r.Listeners {
		if uses(l.DefaultActions) {
			return true
		}
	}
	for _, rule := range r.Rules {
		if uses(rule.Actions) {
			return true
		}
	}
	return false
}
