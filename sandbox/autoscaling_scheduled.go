package sandbox

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Auto Scaling scheduled actions: one-time updates of a group's min, max
// and desired capacity at a start time, run by the group controller.
// Recurrences (cron) are accepted, stored and described but never run.
//
// The wait until StartTime is a user-facing duration, so it passes through
// the time scale like every other: an action put at T for T+1h runs at
// T+36s with a scale of 0.01, while StartTime reads back as given.
//
// Error codes are AWS's; messages marked "approximation" are close to
// AWS's wording where its exact text is not known.

func init() {
	for name, h := range map[string]handler{
		"PutScheduledUpdateGroupAction":      asgPutScheduledAction,
		"BatchPutScheduledUpdateGroupAction": asgBatchPutScheduledActions,
		"DescribeScheduledActions":           asgDescribeScheduledActions,
		"DeleteScheduledAction":              asgDeleteScheduledAction,
		"BatchDeleteScheduledAction":         asgBatchDeleteScheduledActions,
	} {
		register("autoscaling", name, h)
	}
}

// maxScheduledActions is AWS's quota of scheduled actions per group.
const maxScheduledActions = 125

// errScheduledNotFound is AWS's message for an unknown action name.
const errScheduledNotFound = "Scheduled action name not found"

// cronField is what one field of a Recurrence may hold.
var cronField = regexp.MustCompile(`^[0-9A-Za-z*?,/#-]+$`)

// scheduledInput is one action's fields as sent, before it is merged into
// an existing action of the same name.
type scheduledInput struct {
	name                   string
	start, end             *time.Time
	recurrence, timeZone   *string
	minSize, maxSize, want *int
}

func parseScheduledTime(p Params, key string) (*time.Time, *APIError) {
	raw := p.Get(key)
	if raw == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		// approximation
		return nil, validation("Invalid value '%s' for %s: use the format YYYY-MM-DDThh:mm:ssZ", raw, key)
	}
	return &t, nil
}

// parseScheduledInput reads one action (PutScheduledUpdateGroupAction's
// parameters, or one ScheduledUpdateGroupActions member) and checks what
// can be checked without the stored action.
func parseScheduledInput(p Params, now time.Time) (*scheduledInput, *APIError) {
	in := &scheduledInput{name: p.Get("ScheduledActionName")}
	if !p.Has("ScheduledActionName") {
		return nil, validation("1 validation error detected: Value null at 'scheduledActionName' failed to satisfy constraint: Member must not be null")
	}
	if in.name == "" || len(in.name) > 255 {
		return nil, validation("1 validation error detected: Value at 'scheduledActionName' failed to satisfy constraint: Member must have length between 1 and 255")
	}
	var err *APIError
	if in.start, err = parseScheduledTime(p, "StartTime"); err != nil {
		return nil, err
	}
	if in.start == nil { // Time is StartTime's old, deprecated name
		if in.start, err = parseScheduledTime(p, "Time"); err != nil {
			return nil, err
		}
	}
	if in.end, err = parseScheduledTime(p, "EndTime"); err != nil {
		return nil, err
	}
	if in.start != nil && in.start.Before(now) {
		return nil, validation("Given start time is in the past")
	}
	if in.end != nil && in.end.Before(now) {
		return nil, validation("Given end time is in the past") // approximation
	}
	if p.Has("Recurrence") {
		r := strings.TrimSpace(p.Get("Recurrence"))
		fields := strings.Fields(r)
		ok := len(fields) == 5
		for _, f := range fields {
			ok = ok && cronField.MatchString(f)
		}
		if !ok {
			// approximation
			return nil, validation("Given recurrence string is not valid: %q. Use five cron fields: minute hour day-of-month month day-of-week", p.Get("Recurrence"))
		}
		in.recurrence = &r
	}
	if p.Has("TimeZone") {
		tz := p.Get("TimeZone")
		if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
			return nil, validation("Invalid time zone: %s", tz) // approximation
		}
		in.timeZone = &tz
	}
	for _, f := range []struct {
		key string
		dst **int
	}{{"MinSize", &in.minSize}, {"MaxSize", &in.maxSize}, {"DesiredCapacity", &in.want}} {
		v, err := p.IntPtr(f.key)
		if err != nil {
			return nil, validation("%s", err.Message)
		}
		if v != nil && *v < 0 {
			return nil, validation("Value %d for %s must be greater than or equal to 0", *v, f.key)
		}
		*f.dst = v
	}
	return in, nil
}

// checkScheduledSizes checks the sizes an action sets against each other;
// the group's own sizes are checked when it runs.
func checkScheduledSizes(a *ScheduledAction) *APIError {
	if a.MinSize == nil && a.MaxSize == nil && a.DesiredCapacity == nil {
		// approximation
		return validation("At least one of MinSize, MaxSize or DesiredCapacity must be specified for scheduled action %s", a.Name)
	}
	if a.MinSize != nil && a.MaxSize != nil && *a.MaxSize < *a.MinSize {
		return validation("Max bound, %d, must be greater than or equal to min bound, %d", *a.MaxSize, *a.MinSize)
	}
	if a.DesiredCapacity != nil && a.MinSize != nil && *a.DesiredCapacity < *a.MinSize {
		return validation("Desired capacity must be greater than or equal to min size")
	}
	if a.DesiredCapacity != nil && a.MaxSize != nil && *a.DesiredCapacity > *a.MaxSize {
		return validation("Desired capacity must be less than or equal to max size") // approximation
	}
	return nil
}

// putScheduled creates the action or updates the one of the same name:
// fields not sent keep their values, as on AWS. Nothing changes on error.
func (r *Region) putScheduled(g *AutoScalingGroup, in *scheduledInput, now time.Time) *APIError {
	old := g.ScheduledActions[in.name]
	var a ScheduledAction
	if old != nil {
		a = *old
	} else {
		if len(g.ScheduledActions) >= maxScheduledActions {
			// approximation
			return errf("LimitExceeded", "Maximum number of scheduled actions (%d) reached for AutoScalingGroup %s", maxScheduledActions, g.Name)
		}
		a = ScheduledAction{Name: in.name, ARN: r.arn("autoscaling", "scheduledUpdateGroupAction:"+newUUID()+":autoScalingGroupName/"+g.Name+":scheduledActionName/"+in.name)}
	}
	if in.start != nil {
		a.StartTime = *in.start
		a.due = now.Add(r.w.timing.scale(in.start.Sub(now)))
	}
	if in.end != nil {
		a.EndTime = *in.end
	}
	if in.recurrence != nil {
		a.Recurrence = *in.recurrence
	}
	if in.timeZone != nil {
		a.TimeZone = *in.timeZone
	}
	if in.minSize != nil {
		a.MinSize = in.minSize
	}
	if in.maxSize != nil {
		a.MaxSize = in.maxSize
	}
	if in.want != nil {
		a.DesiredCapacity = in.want
	}
	if a.StartTime.IsZero() && a.Recurrence == "" {
		// AWS's behaviour here is not known; the sandbox refuses rather
		// than guess when such an action would run.
		return validation("Scheduled action %s needs a StartTime or a Recurrence", a.Name)
	}
	if !a.StartTime.IsZero() && !a.EndTime.IsZero() && a.EndTime.Before(a.StartTime) {
		return validation("Given end time is before the start time") // approximation
	}
	if err := checkScheduledSizes(&a); err != nil {
		return err
	}
	if g.ScheduledActions == nil {
		g.ScheduledActions = map[string]*ScheduledAction{}
	}
	g.ScheduledActions[a.Name] = &a
	return nil
}

func asgPutScheduledAction(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	now := c.w.now()
	in, err := parseScheduledInput(c.p, now)
	if err != nil {
		return nil, err
	}
	return nil, c.r.putScheduled(g, in, now)
}

// batchLimit refuses more than 50 entries in a Batch* list, as AWS does.
func batchLimit(n int, member string) *APIError {
	if n == 0 {
		return validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	if n > 50 {
		return validation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to 50", member)
	}
	return nil
}

type failedScheduled struct{ name, code, msg string }

// renderFailedScheduled lists a batch's failures under list: BatchPut's
// FailedScheduledUpdateGroupActions, BatchDelete's FailedScheduledActions.
func renderFailedScheduled(list string, failed []failedScheduled) []*X {
	return []*X{List(list, Items("member", failed, func(f failedScheduled) []*X {
		return []*X{T("ScheduledActionName", f.name), T("ErrorCode", f.code), T("ErrorMessage", f.msg)}
	}))}
}

func asgBatchPutScheduledActions(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	items := c.p.MemberStructs("ScheduledUpdateGroupActions")
	if err := batchLimit(len(items), "scheduledUpdateGroupActions"); err != nil {
		return nil, err
	}
	now := c.w.now()
	var failed []failedScheduled
	seen := map[string]bool{}
	for _, p := range items {
		in, err := parseScheduledInput(p, now)
		if err == nil && seen[in.name] {
			// approximation
			err = errf("AlreadyExists", "Scheduled action %s appears more than once in the request", in.name)
		}
		if err == nil {
			seen[in.name] = true
			err = c.r.putScheduled(g, in, now)
		}
		if err != nil {
			failed = append(failed, failedScheduled{p.Get("ScheduledActionName"), err.Code, err.Message})
		}
	}
	return renderFailedScheduled("FailedScheduledUpdateGroupActions", failed), nil
}

func asgDeleteScheduledAction(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	name := c.p.Get("ScheduledActionName")
	if name == "" {
		return nil, validation("1 validation error detected: Value null at 'scheduledActionName' failed to satisfy constraint: Member must not be null")
	}
	if g.ScheduledActions[name] == nil {
		return nil, validation("%s", errScheduledNotFound)
	}
	delete(g.ScheduledActions, name)
	return nil, nil
}

func asgBatchDeleteScheduledActions(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	names := c.p.Members("ScheduledActionNames")
	if err := batchLimit(len(names), "scheduledActionNames"); err != nil {
		return nil, err
	}
	var failed []failedScheduled
	for _, name := range names {
		if g.ScheduledActions[name] == nil {
			failed = append(failed, failedScheduled{name, "ValidationError", errScheduledNotFound})
			continue
		}
		delete(g.ScheduledActions, name)
	}
	return renderFailedScheduled("FailedScheduledActions", failed), nil
}

// sortedScheduled returns a group's actions by start time, then name.
func (g *AutoScalingGroup) sortedScheduled() []*ScheduledAction {
	out := make([]*ScheduledAction, 0, len(g.ScheduledActions))
	for _, a := range g.ScheduledActions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartTime.Equal(out[j].StartTime) {
			return out[i].StartTime.Before(out[j].StartTime)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func asgDescribeScheduledActions(c *call) (any, *APIError) {
	var groups []*AutoScalingGroup
	if name := c.p.Get("AutoScalingGroupName"); name != "" {
		g, err := c.group(name)
		if err != nil {
			return nil, err
		}
		groups = []*AutoScalingGroup{g}
	} else {
		groups = c.sortedGroups()
	}
	names := c.p.Members("ScheduledActionNames")
	if len(names) > 50 {
		return nil, validation("1 validation error detected: Value at 'scheduledActionNames' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	var from, to *time.Time
	if len(names) == 0 { // AWS ignores the window when names are given
		var err *APIError
		if from, err = parseScheduledTime(c.p, "StartTime"); err != nil {
			return nil, err
		}
		if to, err = parseScheduledTime(c.p, "EndTime"); err != nil {
			return nil, err
		}
	}
	type actionOf struct {
		g *AutoScalingGroup
		a *ScheduledAction
	}
	var all []actionOf
	for _, g := range groups {
		for _, a := range g.sortedScheduled() {
			switch {
			case len(names) > 0 && !contains(names, a.Name):
			case from != nil && (a.StartTime.IsZero() || a.StartTime.Before(*from)):
			case to != nil && (a.StartTime.IsZero() || a.StartTime.After(*to)):
			default:
				all = append(all, actionOf{g, a})
			}
		}
	}
	all, next, err := pageASG(c, all, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("ScheduledUpdateGroupActions", Items("member", all, func(x actionOf) []*X {
		a := x.a
		return []*X{T("AutoScalingGroupName", x.g.Name), T("ScheduledActionName", a.Name), T("ScheduledActionARN", a.ARN),
			Time("Time", a.StartTime), Time("StartTime", a.StartTime), Time("EndTime", a.EndTime),
			Opt("Recurrence", a.Recurrence), IPtr("MinSize", a.MinSize), IPtr("MaxSize", a.MaxSize),
			IPtr("DesiredCapacity", a.DesiredCapacity), Opt("TimeZone", a.TimeZone)}
	})), next}, nil
}

// runScheduledActions runs the group's one-time actions that are due and
// deletes them. While ScheduledActions is suspended, actions that fall due
// are skipped (and, being one-time, deleted), as on AWS.
func (r *Region) runScheduledActions(g *AutoScalingGroup, now time.Time) {
	if g.Status == asgDeleting {
		return
	}
	for _, a := range g.sortedScheduled() {
		if a.Recurrence != "" || now.Before(a.due) {
			continue
		}
		delete(g.ScheduledActions, a.Name)
		if !g.suspended("ScheduledActions") {
			r.runScheduled(g, a, now)
		}
	}
}

// runScheduled applies an action's sizes the way UpdateAutoScalingGroup
// applies them (a new min or max moves the desired capacity when the
// action sets none) and records the activity; sizes that do not fit
// together with the group's fail the action and change nothing.
func (r *Region) runScheduled(g *AutoScalingGroup, a *ScheduledAction, now time.Time) {
	lo, hi, want := g.MinSize, g.MaxSize, g.DesiredCapacity
	if a.MinSize != nil {
		lo = *a.MinSize
	}
	if a.MaxSize != nil {
		hi = *a.MaxSize
	}
	switch {
	case a.DesiredCapacity != nil:
		want = *a.DesiredCapacity
	case a.MinSize != nil && lo > want:
		want = lo
	case a.MaxSize != nil && hi < want:
		want = hi
	}
	desc := "Executing scheduled action " + a.Name
	text := fmt.Sprintf("a scheduled action update of AutoScalingGroup constraints to min: %d, max: %d, desired: %d", lo, hi, want)
	fail := ""
	switch {
	case hi < lo:
		fail = fmt.Sprintf("Max bound, %d, must be greater than or equal to min bound, %d", hi, lo)
	case want < lo || want > hi:
		fail = fmt.Sprintf("Desired capacity:%d must be between the specified min size:%d and max size:%d", want, lo, hi)
	case want != g.DesiredCapacity:
		text += fmt.Sprintf(" changing the desired capacity from %d to %d", g.DesiredCapacity, want)
	}
	text += "."
	cause := "At " + asgTime(now) + " " + text
	if fail != "" {
		finishActivity(r.newActivity(g, now, desc, cause, "InProgress", "", ""), now, "Failed", fail)
		return
	}
	r.newActivity(g, now, desc, cause, "Successful", "", "")
	if want != g.DesiredCapacity {
		g.ctl.setCause(now, text) // the launches and terminations it causes say so
	}
	g.MinSize, g.MaxSize, g.DesiredCapacity = lo, hi, want
}
