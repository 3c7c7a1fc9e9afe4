package sandbox_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// apiError is an error's code and message, "" when it is not an API error.
func apiError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return fmt.Sprint(err)
}

// scaled is how long the test's sandbox takes for d of AWS time.
func scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * sandboxtest.TimeScale) }

func (e *asgEnv) putScheduled(in *autoscaling.PutScheduledUpdateGroupActionInput) error {
	_, err := e.c.PutScheduledUpdateGroupAction(e.ctx, in, noRetry)
	return err
}

func (e *asgEnv) scheduled(in *autoscaling.DescribeScheduledActionsInput) ([]types.ScheduledUpdateGroupAction, *string) {
	e.t.Helper()
	out, err := e.c.DescribeScheduledActions(e.ctx, in)
	if err != nil {
		e.t.Fatalf("DescribeScheduledActions: %v", err)
	}
	return out.ScheduledUpdateGroupActions, out.NextToken
}

func scheduledNames(acts []types.ScheduledUpdateGroupAction) string {
	var names []string
	for _, a := range acts {
		names = append(names, aws.ToString(a.AutoScalingGroupName)+"/"+aws.ToString(a.ScheduledActionName))
	}
	return strings.Join(names, ",")
}

func TestScheduledActionsCreateDescribeReplaceDelete(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "sched", e.sb.FixtureImage(asgRegion, ""))
	e.createGroup("blue", lt, "1", 0, nil)
	e.createGroup("green", lt, "1", 0, nil)
	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }

	for _, in := range []*autoscaling.PutScheduledUpdateGroupActionInput{
		{AutoScalingGroupName: aws.String("blue"), ScheduledActionName: aws.String("retire"), StartTime: at(2 * time.Hour),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)},
		{AutoScalingGroupName: aws.String("blue"), ScheduledActionName: aws.String("morning"), StartTime: at(time.Hour), DesiredCapacity: aws.Int32(3)},
		{AutoScalingGroupName: aws.String("blue"), ScheduledActionName: aws.String("weekdays"), Recurrence: aws.String("0 9 * * 1-5"),
			TimeZone: aws.String("Europe/Paris"), EndTime: at(48 * time.Hour), MinSize: aws.Int32(1)},
		{AutoScalingGroupName: aws.String("green"), ScheduledActionName: aws.String("retire"), StartTime: at(3 * time.Hour), MaxSize: aws.Int32(5)},
	} {
		if err := e.putScheduled(in); err != nil {
			t.Fatalf("PutScheduledUpdateGroupAction %s: %v", aws.ToString(in.ScheduledActionName), err)
		}
	}

	// All, by group, then start time; a recurrence without a start comes first.
	all, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{})
	if got := scheduledNames(all); got != "blue/weekdays,blue/morning,blue/retire,green/retire" {
		t.Fatalf("all actions = %s", got)
	}
	retire := all[2]
	if !aws.ToTime(retire.StartTime).Equal(now.Add(2*time.Hour)) || aws.ToInt32(retire.MinSize) != 0 || retire.MaxSize == nil ||
		aws.ToInt32(retire.DesiredCapacity) != 0 || retire.DesiredCapacity == nil || retire.Recurrence != nil ||
		!strings.HasPrefix(aws.ToString(retire.ScheduledActionARN), "arn:aws:autoscaling:"+asgRegion+":123456789012:scheduledUpdateGroupAction:") ||
		!strings.HasSuffix(aws.ToString(retire.ScheduledActionARN), ":autoScalingGroupName/blue:scheduledActionName/retire") {
		t.Errorf("retire = %+v", retire)
	}
	if m := all[1]; m.MinSize != nil || m.MaxSize != nil || aws.ToInt32(m.DesiredCapacity) != 3 {
		t.Errorf("morning sets only the desired capacity: %+v", m)
	}
	if w := all[0]; aws.ToString(w.Recurrence) != "0 9 * * 1-5" || aws.ToString(w.TimeZone) != "Europe/Paris" ||
		!aws.ToTime(w.EndTime).Equal(now.Add(48*time.Hour)) || aws.ToInt32(w.MinSize) != 1 {
		t.Errorf("weekdays = %+v", w)
	}

	// Filters: group, names (which ignore the time window), time window.
	for _, tc := range []struct {
		name string
		in   autoscaling.DescribeScheduledActionsInput
		want string
	}{
		{"group", autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("green")}, "green/retire"},
		{"names", autoscaling.DescribeScheduledActionsInput{ScheduledActionNames: []string{"retire", "unknown"}}, "blue/retire,green/retire"},
		{"names ignore the window", autoscaling.DescribeScheduledActionsInput{ScheduledActionNames: []string{"morning"}, EndTime: at(time.Minute)}, "blue/morning"},
		{"window", autoscaling.DescribeScheduledActionsInput{StartTime: at(90 * time.Minute), EndTime: at(150 * time.Minute)}, "blue/retire"},
		{"from", autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("blue"), StartTime: at(90 * time.Minute)}, "blue/retire"},
	} {
		got, _ := e.scheduled(&tc.in)
		if s := scheduledNames(got); s != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, s, tc.want)
		}
	}

	// Pages of one.
	var paged []string
	var token *string
	for {
		page, next := e.scheduled(&autoscaling.DescribeScheduledActionsInput{MaxRecords: aws.Int32(1), NextToken: token})
		if len(page) != 1 {
			t.Fatalf("page of %d", len(page))
		}
		paged = append(paged, scheduledNames(page))
		if token = next; token == nil {
			break
		}
	}
	if got := strings.Join(paged, ","); got != "blue/weekdays,blue/morning,blue/retire,green/retire" {
		t.Errorf("paged = %s", got)
	}
	if _, err := e.c.DescribeScheduledActions(e.ctx, &autoscaling.DescribeScheduledActionsInput{NextToken: aws.String("bogus")}, noRetry); apiCode(err) != "InvalidNextToken" {
		t.Errorf("bad token: %v", err)
	}

	// Putting a name again updates it: what is sent changes, the rest stays.
	if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("blue"),
		ScheduledActionName: aws.String("morning"), DesiredCapacity: aws.Int32(4), MaxSize: aws.Int32(6)}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("blue"), ScheduledActionNames: []string{"morning"}})
	if len(got) != 1 || aws.ToInt32(got[0].DesiredCapacity) != 4 || aws.ToInt32(got[0].MaxSize) != 6 || !aws.ToTime(got[0].StartTime).Equal(now.Add(time.Hour)) {
		t.Fatalf("morning after update = %+v", got)
	}
	if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("blue"),
		ScheduledActionName: aws.String("morning"), StartTime: at(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("blue")}); scheduledNames(got) != "blue/weekdays,blue/retire,blue/morning" {
		t.Errorf("after moving morning: %s", scheduledNames(got))
	}

	// Batches: the good entries are applied, the bad ones reported.
	bp, err := e.c.BatchPutScheduledUpdateGroupAction(e.ctx, &autoscaling.BatchPutScheduledUpdateGroupActionInput{
		AutoScalingGroupName: aws.String("green"),
		ScheduledUpdateGroupActions: []types.ScheduledUpdateGroupActionRequest{
			{ScheduledActionName: aws.String("a"), StartTime: at(time.Hour), DesiredCapacity: aws.Int32(1)},
			{ScheduledActionName: aws.String("past"), StartTime: at(-time.Hour), DesiredCapacity: aws.Int32(1)},
			{ScheduledActionName: aws.String("b"), StartTime: at(time.Hour), MinSize: aws.Int32(2)},
			{ScheduledActionName: aws.String("empty"), StartTime: at(time.Hour)},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range bp.FailedScheduledUpdateGroupActions {
		failed = append(failed, aws.ToString(f.ScheduledActionName)+" "+aws.ToString(f.ErrorCode)+": "+aws.ToString(f.ErrorMessage))
	}
	if got := strings.Join(failed, "\n"); got != "past ValidationError: Given start time is in the past\n"+
		"empty ValidationError: At least one of MinSize, MaxSize or DesiredCapacity must be specified for scheduled action empty" {
		t.Errorf("batch put failures:\n%s", got)
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("green")}); scheduledNames(got) != "green/a,green/b,green/retire" {
		t.Errorf("green after batch put: %s", scheduledNames(got))
	}
	bd, err := e.c.BatchDeleteScheduledAction(e.ctx, &autoscaling.BatchDeleteScheduledActionInput{
		AutoScalingGroupName: aws.String("green"), ScheduledActionNames: []string{"a", "nope", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if f := bd.FailedScheduledActions; len(f) != 1 || aws.ToString(f[0].ScheduledActionName) != "nope" ||
		aws.ToString(f[0].ErrorCode) != "ValidationError" || aws.ToString(f[0].ErrorMessage) != "Scheduled action name not found" {
		t.Errorf("batch delete failures: %+v", f)
	}

	// Delete one by one; a second delete is an error.
	del := func(group, name string) error {
		_, err := e.c.DeleteScheduledAction(e.ctx, &autoscaling.DeleteScheduledActionInput{AutoScalingGroupName: aws.String(group), ScheduledActionName: aws.String(name)}, noRetry)
		return err
	}
	for _, n := range []string{"retire", "morning", "weekdays"} {
		if err := del("blue", n); err != nil {
			t.Fatalf("DeleteScheduledAction %s: %v", n, err)
		}
	}
	if err := del("blue", "retire"); apiError(err) != "ValidationError: Scheduled action name not found" {
		t.Errorf("second delete: %v", apiError(err))
	}
	if err := del("green", "morning"); apiError(err) != "ValidationError: Scheduled action name not found" {
		t.Errorf("delete of another group's action: %v", apiError(err))
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{}); scheduledNames(got) != "green/retire" {
		t.Errorf("left: %s", scheduledNames(got))
	}
	e.deleteGroup("blue")
	e.deleteGroup("green")
	e.finish()
}

func TestScheduledActionErrors(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "sched", e.sb.FixtureImage(asgRegion, ""))
	e.createGroup("app", lt, "1", 0, nil)
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Minute)
	put := func(mut func(*autoscaling.PutScheduledUpdateGroupActionInput)) func() error {
		return func() error {
			in := &autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("app"), ScheduledActionName: aws.String("x"),
				StartTime: aws.Time(future), DesiredCapacity: aws.Int32(1)}
			mut(in)
			return e.putScheduled(in)
		}
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"unknown group", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.AutoScalingGroupName = aws.String("nope") }),
			"ValidationError: AutoScalingGroup name not found - AutoScalingGroup 'nope' not found"},
		{"start in the past", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.StartTime = aws.Time(past) }),
			"ValidationError: Given start time is in the past"},
		{"no size", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.DesiredCapacity = nil }),
			"ValidationError: At least one of MinSize, MaxSize or DesiredCapacity must be specified for scheduled action x"},
		{"no start, no recurrence", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.StartTime = nil }),
			"ValidationError: Scheduled action x needs a StartTime or a Recurrence"},
		{"min above max", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) {
			in.MinSize, in.MaxSize, in.DesiredCapacity = aws.Int32(3), aws.Int32(2), nil
		}),
			"ValidationError: Max bound, 2, must be greater than or equal to min bound, 3"},
		{"desired below min", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.MinSize = aws.Int32(2) }),
			"ValidationError: Desired capacity must be greater than or equal to min size"},
		{"desired above max", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.MaxSize = aws.Int32(0) }),
			"ValidationError: Desired capacity must be less than or equal to max size"},
		{"negative", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.MinSize = aws.Int32(-1) }),
			"ValidationError: Value -1 for MinSize must be greater than or equal to 0"},
		{"end before start", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) {
			in.EndTime = aws.Time(future.Add(-time.Minute))
		}),
			"ValidationError: Given end time is before the start time"},
		{"end in the past", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.EndTime = aws.Time(past) }),
			"ValidationError: Given end time is in the past"},
		{"bad recurrence", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.Recurrence = aws.String("every day") }),
			`ValidationError: Given recurrence string is not valid: "every day". Use five cron fields: minute hour day-of-month month day-of-week`},
		{"bad time zone", put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) {
			in.Recurrence, in.TimeZone = aws.String("0 9 * * *"), aws.String("Mars/Olympus")
		}), "ValidationError: Invalid time zone: Mars/Olympus"},
		{"describe unknown group", func() error {
			_, err := e.c.DescribeScheduledActions(e.ctx, &autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("nope")}, noRetry)
			return err
		}, "ValidationError: AutoScalingGroup name not found - AutoScalingGroup 'nope' not found"},
		{"delete unknown", func() error {
			_, err := e.c.DeleteScheduledAction(e.ctx, &autoscaling.DeleteScheduledActionInput{AutoScalingGroupName: aws.String("app"), ScheduledActionName: aws.String("x")}, noRetry)
			return err
		}, "ValidationError: Scheduled action name not found"},
		{"batch put on unknown group", func() error {
			_, err := e.c.BatchPutScheduledUpdateGroupAction(e.ctx, &autoscaling.BatchPutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("nope"),
				ScheduledUpdateGroupActions: []types.ScheduledUpdateGroupActionRequest{{ScheduledActionName: aws.String("x"), StartTime: aws.Time(future), DesiredCapacity: aws.Int32(1)}}}, noRetry)
			return err
		}, "ValidationError: AutoScalingGroup name not found - AutoScalingGroup 'nope' not found"},
	} {
		if got := apiError(tc.call()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{}); len(got) != 0 {
		t.Errorf("refused puts left actions: %s", scheduledNames(got))
	}
	// A refused update leaves the stored action as it was.
	if err := put(func(*autoscaling.PutScheduledUpdateGroupActionInput) {})(); err != nil {
		t.Fatal(err)
	}
	if err := put(func(in *autoscaling.PutScheduledUpdateGroupActionInput) { in.StartTime, in.MinSize = nil, aws.Int32(5) })(); apiCode(err) != "ValidationError" {
		t.Fatalf("update to min above desired: %v", err)
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{}); len(got) != 1 || got[0].MinSize != nil || aws.ToInt32(got[0].DesiredCapacity) != 1 {
		t.Errorf("after a refused update: %+v", got)
	}
	e.deleteGroup("app")
	e.finish()
}

// The blue-green case: a group of two is scaled to zero by an action put a
// little ahead, with nobody calling the API in between.
func TestScheduledActionScalesGroupToZero(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "old", e.sb.FixtureImage(asgRegion, ""))
	e.createGroup("old", lt, "1", 2, func(in *autoscaling.CreateAutoScalingGroupInput) { in.MinSize = aws.Int32(2) })
	e.waitGroup("old", "two instances in service", settledOn("1", 2))

	ahead := 200 * time.Second // 2 s at the tests' time scale
	put := time.Now()
	if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("old"),
		ScheduledActionName: aws.String("keep-old-for"), StartTime: aws.Time(put.Add(ahead)),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(0), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	if g, _ := e.group("old"); aws.ToInt32(g.DesiredCapacity) != 2 {
		t.Fatalf("the action ran at once: desired %d", aws.ToInt32(g.DesiredCapacity))
	}
	g := e.waitGroup("old", "scaled to zero", func(g types.AutoScalingGroup) bool { return len(g.Instances) == 0 })
	if aws.ToInt32(g.MinSize) != 0 || aws.ToInt32(g.MaxSize) != 0 || aws.ToInt32(g.DesiredCapacity) != 0 {
		t.Errorf("sizes after the action: min %d max %d desired %d", aws.ToInt32(g.MinSize), aws.ToInt32(g.MaxSize), aws.ToInt32(g.DesiredCapacity))
	}
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("old")}); len(got) != 0 {
		t.Errorf("one-time action still there: %s", scheduledNames(got))
	}

	var ran *types.Activity
	terminations := 0
	for _, a := range e.activities("old") {
		switch d := aws.ToString(a.Description); {
		case d == "Executing scheduled action keep-old-for":
			ran = &a
		case strings.HasPrefix(d, "Terminating EC2 instance: "):
			terminations++
			if c := aws.ToString(a.Cause); !strings.Contains(c, "a scheduled action update of AutoScalingGroup constraints to min: 0, max: 0, desired: 0 changing the desired capacity from 2 to 0.") {
				t.Errorf("termination cause: %s", c)
			}
		}
	}
	if ran == nil || ran.StatusCode != types.ScalingActivityStatusCodeSuccessful {
		t.Fatalf("no successful activity for the action: %+v", e.activities("old"))
	}
	if terminations != 2 {
		t.Errorf("%d terminations, want 2", terminations)
	}
	// It ran when its start time came, on the sandbox's scaled clock.
	if waited := aws.ToTime(ran.StartTime).Sub(put); waited < scaled(ahead)-50*time.Millisecond || waited > scaled(ahead)+5*time.Second {
		t.Errorf("ran %v after it was put, want about %v", waited, scaled(ahead))
	}
	if c := aws.ToString(ran.Cause); !strings.HasSuffix(c, " a scheduled action update of AutoScalingGroup constraints to min: 0, max: 0, desired: 0 changing the desired capacity from 2 to 0.") {
		t.Errorf("activity cause: %s", c)
	}
	if _, err := e.c.DeleteScheduledAction(e.ctx, &autoscaling.DeleteScheduledActionInput{AutoScalingGroupName: aws.String("old"),
		ScheduledActionName: aws.String("keep-old-for")}, noRetry); apiCode(err) != "ValidationError" {
		t.Errorf("deleting the action after it ran: %v", err)
	}
	e.deleteGroup("old")
	e.finish()
}

// An action whose sizes do not fit the group's when it runs fails, changes
// nothing and is gone; one that falls due while ScheduledActions is
// suspended is skipped.
func TestScheduledActionFailsOrIsSkipped(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "app", e.sb.FixtureImage(asgRegion, ""))
	e.createGroup("big", lt, "1", 0, nil)                // max 10
	e.createGroup("paused", lt, "1", 0, nil)             // max 10
	start := aws.Time(time.Now().Add(100 * time.Second)) // 1 s scaled
	if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("big"),
		ScheduledActionName: aws.String("too-big"), StartTime: start, DesiredCapacity: aws.Int32(20)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SuspendProcesses(e.ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("paused"), ScalingProcesses: []string{"ScheduledActions"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("paused"),
		ScheduledActionName: aws.String("grow"), StartTime: start, MaxSize: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	poll(t, "actions gone", func() (bool, string) {
		got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{})
		return len(got) == 0, scheduledNames(got)
	})
	acts := e.activities("big")
	if len(acts) != 1 || acts[0].StatusCode != types.ScalingActivityStatusCodeFailed ||
		aws.ToString(acts[0].Description) != "Executing scheduled action too-big.  Status Reason: Desired capacity:20 must be between the specified min size:0 and max size:10" {
		t.Errorf("big activities: %+v", acts)
	}
	if g, _ := e.group("big"); aws.ToInt32(g.DesiredCapacity) != 0 || aws.ToInt32(g.MaxSize) != 10 {
		t.Errorf("big changed: desired %d max %d", aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MaxSize))
	}
	if acts := e.activities("paused"); len(acts) != 0 {
		t.Errorf("paused activities: %+v", acts)
	}
	if g, _ := e.group("paused"); aws.ToInt32(g.MaxSize) != 10 {
		t.Errorf("suspended action ran: max %d", aws.ToInt32(g.MaxSize))
	}
	e.deleteGroup("big")
	e.deleteGroup("paused")
	e.finish()
}

func TestDeletingGroupDeletesScheduledActions(t *testing.T) {
	t.Parallel()
	e := newASGEnv(t)
	lt := e.sb.FixtureLaunchTemplate(asgRegion, "app", e.sb.FixtureImage(asgRegion, ""))
	e.createGroup("app", lt, "1", 1, nil)
	for _, n := range []string{"a", "b"} {
		if err := e.putScheduled(&autoscaling.PutScheduledUpdateGroupActionInput{AutoScalingGroupName: aws.String("app"),
			ScheduledActionName: aws.String(n), StartTime: aws.Time(time.Now().Add(time.Hour)), DesiredCapacity: aws.Int32(0)}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitGroup("app", "one instance in service", settledOn("1", 1))
	if _, err := e.c.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("app"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	// Gone at once, while the group still drains its instance.
	got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("app")})
	if g, ok := e.group("app"); !ok || aws.ToString(g.Status) != "Delete in progress" || len(got) != 0 {
		t.Errorf("group %v %q, actions %s", ok, aws.ToString(g.Status), scheduledNames(got))
	}
	e.deleteGroup("app")
	// A new group of the same name does not inherit them.
	e.createGroup("app", lt, "1", 0, nil)
	if got, _ := e.scheduled(&autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String("app")}); len(got) != 0 {
		t.Errorf("new group has actions: %s", scheduledNames(got))
	}
	e.deleteGroup("app")
	e.finish()
}
