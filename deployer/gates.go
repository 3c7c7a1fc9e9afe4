package deployer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Metric gates: after target health, CloudWatch alarms (both strategies)
// and, for blue-green, a canary judge that compares the new colour's
// target group with the old one's over the same minutes. They catch an
// image that passes /health and fails real requests.

// maxAlarms is the most alarm names a target may name; Auto Scaling
// takes at most 10 in a refresh's AlarmSpecification.
const maxAlarms = 10

// validateAlarms checks alarm names as settings.
func validateAlarms(names []string) []error {
	var errs []error
	if len(names) > maxAlarms {
		errs = append(errs, fmt.Errorf("alarms: %d names, at most %d", len(names), maxAlarms))
	}
	seen := map[string]bool{}
	for _, a := range names {
		switch {
		case a == "" || len(a) > 255:
			errs = append(errs, fmt.Errorf("alarms: %q is not an alarm name", a))
		case seen[a]:
			errs = append(errs, fmt.Errorf("alarms: %q is named twice", a))
		}
		seen[a] = true
	}
	return errs
}

// describeAlarms reads the named alarms by name.
func (s *Session) describeAlarms(ctx context.Context, names []string) (map[string]cwtypes.MetricAlarm, error) {
	out := map[string]cwtypes.MetricAlarm{}
	if len(names) == 0 {
		return out, nil
	}
	if s.Clients.CloudWatch == nil {
		return nil, fmt.Errorf("alarms: no CloudWatch client")
	}
	p := cloudwatch.NewDescribeAlarmsPaginator(s.Clients.CloudWatch, &cloudwatch.DescribeAlarmsInput{AlarmNames: names, AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing CloudWatch alarms %s: %w", strings.Join(names, ", "), err)
		}
		for _, a := range page.MetricAlarms {
			out[aws.ToString(a.AlarmName)] = a
		}
	}
	return out, nil
}

// requireAlarms refuses a deploy whose alarms do not exist, or one of
// which is in ALARM already (the deploy would roll back at once, blamed
// on an image that did not cause it). It reads only.
func (s *Session) requireAlarms(ctx context.Context, names []string) error {
	alarms, err := s.describeAlarms(ctx, names)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		a, ok := alarms[n]
		switch {
		case !ok:
			errs = append(errs, &SettingError{"alarms", fmt.Errorf("alarms: no CloudWatch metric alarm named %q in %s (names are case-sensitive)", n, s.Target.Region)})
		case a.StateValue == cwtypes.StateValueAlarm:
			errs = append(errs, &SettingError{"alarms", fmt.Errorf("alarms: %s before the deploy; a deploy would be rolled back at once for what the running image does", alarmText(a))})
		}
	}
	if len(errs) > 0 {
		return &Error{Outcome: Refused, Err: joinErrors(errs)}
	}
	return nil
}

// firingAlarm returns the message of the first alarm in ALARM, naming the
// alarm, its metric and value; "" when none is.
func (s *Session) firingAlarm(ctx context.Context, names []string) (string, error) {
	alarms, err := s.describeAlarms(ctx, names)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if a, ok := alarms[n]; ok && a.StateValue == cwtypes.StateValueAlarm {
			return alarmText(a), nil
		}
	}
	return "", nil
}

var comparisonSigns = map[cwtypes.ComparisonOperator]string{
	cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold: ">=",
	cwtypes.ComparisonOperatorGreaterThanThreshold:          ">",
	cwtypes.ComparisonOperatorLessThanThreshold:             "<",
	cwtypes.ComparisonOperatorLessThanOrEqualToThreshold:    "<=",
}

// alarmText is an alarm in words: its name, state, metric, the value
// that crossed and the threshold.
func alarmText(a cwtypes.MetricAlarm) string {
	stat := string(a.Statistic)
	if a.ExtendedStatistic != nil {
		stat = aws.ToString(a.ExtendedStatistic)
	}
	metric := aws.ToString(a.Namespace) + " " + aws.ToString(a.MetricName)
	var dims []string
	for _, d := range a.Dimensions {
		dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	if len(dims) > 0 {
		metric += " (" + strings.Join(dims, ", ") + ")"
	}
	value := "value"
	var data struct {
		Recent []float64 `json:"recentDatapoints"`
	}
	if json.Unmarshal([]byte(aws.ToString(a.StateReasonData)), &data) == nil && len(data.Recent) > 0 {
		value = fmt.Sprintf("%g", data.Recent[0])
	}
	sign := comparisonSigns[a.ComparisonOperator]
	if sign == "" {
		sign = string(a.ComparisonOperator)
	}
	return fmt.Sprintf("alarm %q is in %s: %s %s %s %s %g over %d of %d periods of %ds", aws.ToString(a.AlarmName), a.StateValue, metric, stat, value, sign,
		aws.ToFloat64(a.Threshold), aws.ToInt32(a.DatapointsToAlarm), aws.ToInt32(a.EvaluationPeriods), aws.ToInt32(a.Period))
}

// Judge is the blue-green canary judge: during each step that splits the
// traffic, the new colour's target group is compared with the old one's
// over the same minutes, from the load balancer's CloudWatch metrics.
type Judge struct {
	// MinRequests the new colour must have served in the step before it
	// is judged; the step does not end before.
	MinRequests int
	// Max5xxIncrease is how many percentage points the new colour's
	// share of 5xx answers may exceed the old colour's.
	Max5xxIncrease float64
	// LatencyStatistic is "p99" or "Average" of TargetResponseTime.
	LatencyStatistic string
	// MaxLatencyRatio is how many times the old colour's latency the new
	// colour's may be.
	MaxLatencyRatio float64
}

// Judge defaults.
const (
	DefaultJudgeMinRequests     = 100
	DefaultJudgeMax5xxIncrease  = 1.0
	DefaultJudgeLatencyStat     = "p99"
	DefaultJudgeMaxLatencyRatio = 1.5
)

func (j *Judge) validate() []error {
	var errs []error
	if j.MinRequests < 1 || j.MinRequests > 1_000_000 {
		errs = append(errs, fmt.Errorf("judge_min_requests %d must be between 1 and 1000000", j.MinRequests))
	}
	if math.IsNaN(j.Max5xxIncrease) || j.Max5xxIncrease < 0 || j.Max5xxIncrease > 100 {
		errs = append(errs, fmt.Errorf("judge_max_5xx_increase %g must be between 0 and 100 (percentage points)", j.Max5xxIncrease))
	}
	if j.LatencyStatistic != "p99" && j.LatencyStatistic != "Average" {
		errs = append(errs, fmt.Errorf("judge_latency_statistic %q must be p99 or Average", j.LatencyStatistic))
	}
	if math.IsNaN(j.MaxLatencyRatio) || j.MaxLatencyRatio < 1 || j.MaxLatencyRatio > 100 {
		errs = append(errs, fmt.Errorf("judge_max_latency_ratio %g must be between 1 and 100", j.MaxLatencyRatio))
	}
	return errs
}

func (j *Judge) summary() string {
	return fmt.Sprintf("canary judge: new colour against old over the same minutes, after %d requests: 5xx share at most %g points above, %s response time at most %gx",
		j.MinRequests, j.Max5xxIncrease, j.LatencyStatistic, j.MaxLatencyRatio)
}

// Figures are one colour's requests in a judged window.
type Figures struct {
	Colour      string  `json:"colour"`
	TargetGroup string  `json:"target_group"`
	Requests    float64 `json:"requests"`
	Errors      float64 `json:"errors_5xx"`
	// ErrorShare is the 5xx share in percent.
	ErrorShare float64 `json:"error_share_percent"`
	// Latency is the judge's statistic of TargetResponseTime in seconds;
	// -1 when the colour answered nothing.
	Latency float64 `json:"latency_seconds"`
}

func (f Figures) String() string {
	lat := "no answers"
	if f.Latency >= 0 {
		lat = fmt.Sprintf("%.0f ms", f.Latency*1000)
	}
	return fmt.Sprintf("%s %g requests, %g 5xx (%.1f%%), %s", f.Colour, f.Requests, f.Errors, f.ErrorShare, lat)
}

// Verdict is one judgement of a step.
type Verdict struct {
	// Step is the new colour's share of the traffic in percent.
	Step int `json:"step"`
	// Result is "pass", "fail" or "waiting" (too few requests yet).
	Result    string    `json:"result"`
	Statistic string    `json:"statistic"`
	New       Figures   `json:"new"`
	Old       Figures   `json:"old"`
	Reason    string    `json:"reason"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
}

func (v *Verdict) String() string {
	return fmt.Sprintf("judge at %d%%: %s: new %s; old %s: %s", v.Step, v.Result, v.New, v.Old, v.Reason)
}

// tgMetrics reads one target group's figures between from and to.
func (s *Session) tgMetrics(ctx context.Context, tg TargetGroup, lb, colour, stat string, from, to time.Time) (Figures, error) {
	f := Figures{Colour: colour, TargetGroup: tg.Name, Latency: -1}
	if s.Clients.CloudWatch == nil {
		return f, fmt.Errorf("judge: no CloudWatch client")
	}
	dims := []cwtypes.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(arnSuffix(lb, ":loadbalancer/"))}, {Name: aws.String("TargetGroup"), Value: aws.String(arnSuffix(tg.ARN, ":"))}}
	q := func(id, metric, stat string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(60), Stat: aws.String(stat),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(metric), Dimensions: dims}}}
	}
	queries := []cwtypes.MetricDataQuery{q("req", "RequestCount", "Sum"), q("err", "HTTPCode_Target_5XX_Count", "Sum"),
		q("rtsum", "TargetResponseTime", "Sum"), q("rtn", "TargetResponseTime", "SampleCount"), q("rtp", "TargetResponseTime", "p99")}
	out, err := s.Clients.CloudWatch.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: queries})
	if err != nil {
		return f, fmt.Errorf("reading the load balancer metrics of %s: %w", tg.Name, err)
	}
	sums := map[string]float64{}
	maxes := map[string]float64{}
	for _, r := range out.MetricDataResults {
		id := aws.ToString(r.Id)
		for _, v := range r.Values {
			sums[id] += v
			maxes[id] = math.Max(maxes[id], v)
		}
	}
	f.Requests, f.Errors = sums["req"], sums["err"]
	if f.Requests > 0 {
		f.ErrorShare = 100 * f.Errors / f.Requests
	}
	if sums["rtn"] > 0 {
		if stat == "Average" {
			f.Latency = sums["rtsum"] / sums["rtn"]
		} else {
			// A p99 per period; the worst period stands for the window.
			f.Latency = maxes["rtp"]
		}
	}
	return f, nil
}

func arnSuffix(arn, sep string) string {
	if i := strings.LastIndex(arn, sep); i >= 0 {
		return arn[i+len(sep):]
	}
	return arn
}

// judge compares nw with old from since to now at the given share.
func (s *Session) judge(ctx context.Context, j *Judge, nw, old *colour, share int, since time.Time) (*Verdict, error) {
	lb := ""
	for _, a := range nw.TG.LoadBalancers {
		for _, b := range old.TG.LoadBalancers {
			if a == b {
				lb = a
			}
		}
	}
	if lb == "" {
		return nil, fmt.Errorf("judge: %s and %s share no load balancer to compare them on", nw.TG.Name, old.TG.Name)
	}
	// The same whole minutes for both colours: CloudWatch's load balancer
	// metrics come in 60-second periods.
	from, to := since, s.Now().Add(time.Minute)
	v := &Verdict{Step: share, Statistic: j.LatencyStatistic, From: from.UTC(), To: to.UTC()}
	var err error
	if v.New, err = s.tgMetrics(ctx, nw.TG, lb, nw.Name, j.LatencyStatistic, from, to); err != nil {
		return nil, err
	}
	if v.Old, err = s.tgMetrics(ctx, old.TG, lb, old.Name, j.LatencyStatistic, from, to); err != nil {
		return nil, err
	}
	var fails []string
	if inc := v.New.ErrorShare - v.Old.ErrorShare; v.New.Requests > 0 && inc > j.Max5xxIncrease {
		fails = append(fails, fmt.Sprintf("5xx share %.1f%% is %.1f points above the old colour's %.1f%% (judge_max_5xx_increase %g)", v.New.ErrorShare, inc, v.Old.ErrorShare, j.Max5xxIncrease))
	}
	if v.New.Latency >= 0 && v.Old.Latency > 0 && v.New.Latency > j.MaxLatencyRatio*v.Old.Latency {
		fails = append(fails, fmt.Sprintf("%s response time %.0f ms is %.1fx the old colour's %.0f ms (judge_max_latency_ratio %g)", j.LatencyStatistic, v.New.Latency*1000, v.New.Latency/v.Old.Latency, v.Old.Latency*1000, j.MaxLatencyRatio))
	}
	switch {
	case v.New.Requests < float64(j.MinRequests):
		v.Result, v.Reason = "waiting", fmt.Sprintf("%g of judge_min_requests %d requests to %s", v.New.Requests, j.MinRequests, nw.Name)
	case len(fails) > 0:
		v.Result, v.Reason = "fail", strings.Join(fails, "; ")
	default:
		v.Result, v.Reason = "pass", fmt.Sprintf("within judge_max_5xx_increase %g and judge_max_latency_ratio %g", j.Max5xxIncrease, j.MaxLatencyRatio)
	}
	return v, nil
}

// judging reports whether the judge runs at share: only while both
// colours serve.
func (run *bgRun) judging(share int) bool {
	return run.b.Judge != nil && !run.homeward && share > 0 && share < 100
}

// metricGates runs the alarms and the judge on a step of the switch: a
// failed Step when one fails, nil to go on.
func (run *bgRun) metricGates(ctx context.Context, nw, old *colour, share int, h *Health) (*Step, error) {
	s := run.s
	if run.verdict != nil && run.verdict.Step != share {
		run.verdict = nil
	}
	if firing, err := s.firingAlarm(ctx, run.b.Alarms); err != nil {
		return nil, err
	} else if firing != "" {
		return &Step{State: StepFailed, Name: "alarm", Health: h, Message: fmt.Sprintf("%s at %d%%: %s", nw.label(), share, firing)}, nil
	}
	if !run.judging(share) {
		return nil, nil
	}
	v, err := s.judge(ctx, run.b.Judge, nw, old, share, run.bakeStart)
	if err != nil {
		return nil, err
	}
	changed := run.verdict == nil || run.verdict.Result != v.Result
	run.verdict = v
	if changed && v.Result != "pass" {
		s.Emit(Event{Kind: EventProgress, Step: "judge", Message: v.String(), Verdict: v})
	}
	if v.Result == "fail" {
		return &Step{State: StepFailed, Name: "judge", Health: h, Message: fmt.Sprintf("%s at %d%%: the canary judge failed it: %s (new %s; old %s)", nw.label(), share, v.Reason, v.New, v.Old)}, nil
	}
	return nil, nil
}

// verdictNote is the last verdict for progress lines.
func (run *bgRun) verdictNote() string {
	if run.verdict == nil {
		return ""
	}
	return "; " + run.verdict.String()
}

func orStep(st *Step) *Step {
	if st == nil {
		return &Step{}
	}
	return st
}

// gateChanges are the metric gates in a plan.
func gateChanges(alarms []string, j *Judge, when string) []Change {
	var ch []Change
	if len(alarms) > 0 {
		ch = append(ch, Change{Action: "gate", Detail: fmt.Sprintf("CloudWatch alarms %s %s: one in ALARM fails the deploy and rolls it back", strings.Join(alarms, ", "), when)})
	}
	if j != nil {
		ch = append(ch, Change{Action: "gate", Detail: j.summary() + "; a failed step rolls back"})
	}
	return ch
}

// GateStatus is what status reads of a target's metric gates.
type GateStatus struct {
	// Alarms are the strategy's alarms and their states now.
	Alarms []AlarmState `json:"alarms,omitempty"`
	// Judge compares the live colour with the other one over the last
	// JudgeStatusWindow, as the canary judge would; nil without a judge.
	Judge *Verdict `json:"judge,omitempty"`
}

// AlarmState is one alarm as status reads it.
type AlarmState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Text is the alarm in words when it is in ALARM.
	Text string `json:"text,omitempty"`
}

// JudgeStatusWindow is how far back status compares the colours.
const JudgeStatusWindow = 10 * time.Minute

// gateStatus reads the metric gates of the deployer's strategy; nil when
// it has none.
func (d *Deployer) gateStatus(ctx context.Context, s *Session) (*GateStatus, error) {
	var names []string
	var judge *Judge
	switch st := d.Strategy.(type) {
	case *Rolling:
		names = st.Alarms
	case *BlueGreen:
		names, judge = st.Alarms, st.Judge
	}
	if len(names) == 0 && judge == nil {
		return nil, nil
	}
	gs := &GateStatus{}
	alarms, err := s.describeAlarms(ctx, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		a, ok := alarms[n]
		as := AlarmState{Name: n, State: "missing"}
		if ok {
			as.State = string(a.StateValue)
			if a.StateValue == cwtypes.StateValueAlarm {
				as.Text = alarmText(a)
			}
		}
		gs.Alarms = append(gs.Alarms, as)
	}
	if judge != nil && d.Target.PeerGroup != "" {
		st, err := s.readBlueGreen(ctx)
		if err != nil {
			return nil, err
		}
		live, _, err := s.liveColour(st)
		if err != nil {
			return nil, err
		}
		v, err := s.judge(ctx, judge, live, st.other(live), st.share(live), s.Now().Add(-JudgeStatusWindow))
		if err != nil {
			return nil, err
		}
		if v.Old.Requests == 0 {
			v.Result, v.Reason = "none", fmt.Sprintf("%s served no request in the last %s: nothing to compare %s with", v.Old.Colour, JudgeStatusWindow, v.New.Colour)
		}
		gs.Judge = v
	}
	return gs, nil
}
