package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CloudWatch: metrics (PutMetricData, GetMetricStatistics, GetMetricData,
// ListMetrics) and metric alarms evaluated on the sandbox's clock.
//
// Periods are played at the time scale: a 60-second period lasts 60 s
// times the scale of wall time, and the timestamps clients see are wall
// clock times at multiples of that scaled period.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/Welcome.html

func init() {
	register(cwService, "PutMetricData", cwPutMetricData)
	register(cwService, "GetMetricStatistics", cwGetMetricStatistics)
	register(cwService, "GetMetricData", cwGetMetricData)
	register(cwService, "ListMetrics", cwListMetrics)
	register(cwService, "PutMetricAlarm", cwPutMetricAlarm)
	register(cwService, "DescribeAlarms", cwDescribeAlarms)
	register(cwService, "DescribeAlarmsForMetric", cwDescribeAlarmsForMetric)
	register(cwService, "SetAlarmState", cwSetAlarmState)
	register(cwService, "DeleteAlarms", cwDeleteAlarms)
	register(cwService, "DescribeAlarmHistory", cwDescribeAlarmHistory)
	addController(evaluateAlarms)
}

// cwAlarm is a metric alarm.
type cwAlarm struct {
	Name, ARN, Description       string
	Namespace, MetricName        string
	Dims                         []cwDim
	Statistic, ExtendedStatistic string
	Unit                         string
	Period                       int
	EvaluationPeriods            int
	DatapointsToAlarm            int
	Threshold                    float64
	Comparison                   string
	TreatMissingData             string
	ActionsEnabled               bool
	OKActions, AlarmActions      []string
	InsufficientDataActions      []string

	State, StateReason, StateReasonData string
	StateUpdated, ConfigUpdated         time.Time
	// nextEval is when the alarm is evaluated next; SetAlarmState puts it
	// a period out, so a state set by hand holds until then.
	nextEval time.Time
}

type cwHistory struct {
	Alarm, Type, Summary, Data string
	At                         time.Time
}

var cwComparisons = map[string]string{
	"GreaterThanOrEqualToThreshold": "greater than or equal to",
	"GreaterThanThreshold":          "greater than",
	"LessThanThreshold":             "less than",
	"LessThanOrEqualToThreshold":    "less than or equal to",
}

func (a *cwAlarm) breaches(v float64) bool {
	switch a.Comparison {
	case "GreaterThanOrEqualToThreshold":
		return v >= a.Threshold
	case "GreaterThanThreshold":
		return v > a.Threshold
	case "LessThanThreshold":
		return v < a.Threshold
	case "LessThanOrEqualToThreshold":
		return v <= a.Threshold
	}
	return false
}

func (a *cwAlarm) stat() string {
	if a.ExtendedStatistic != "" {
		return a.ExtendedStatistic
	}
	return a.Statistic
}

// cwLimits are CloudWatch's documented input limits.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html
const (
	cwMaxMetricData = 1000
	cwMaxDimensions = 30
	cwMaxValues     = 150
)

func missing(param string) *APIError {
	return errf("MissingParameter", "The parameter %s is required.", param)
}

func invalid(format string, args ...any) *APIError {
	return errf("InvalidParameterValue", format, args...)
}

func cwDims(p Params, key string) ([]cwDim, *APIError) {
	var out []cwDim
	seen := map[string]bool{}
	for _, d := range p.MemberStructs(key) {
		name, value := d.Get("Name"), d.Get("Value")
		if name == "" {
			return nil, missing(key + ".Name")
		}
		if value == "" {
			return nil, missing(key + ".Value")
		}
		if len(name) > 255 || len(value) > 1024 {
			return nil, invalid("The dimension %s is longer than CloudWatch allows.", name)
		}
		if seen[name] {
			return nil, invalid("The collection %s must not have duplicate names: %s.", key, name)
		}
		seen[name] = true
		out = append(out, cwDim{name, value})
	}
	if len(out) > cwMaxDimensions {
		return nil, invalid("The collection %s must not have a size greater than %d.", key, cwMaxDimensions)
	}
	return out, nil
}

func cwFloatParam(p Params, key string) (float64, bool, *APIError) {
	s := p.Get(key)
	if s == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, invalid("The value %s for parameter %s is invalid.", s, key)
	}
	return f, true, nil
}

// PutMetricData: namespaces starting with "AWS/" are reserved for AWS
// services; values must be finite; at most 1000 entries a call.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
func cwPutMetricData(c *call) (any, *APIError) {
	ns := c.p.Get("Namespace")
	if ns == "" {
		return nil, missing("Namespace")
	}
	if strings.HasPrefix(ns, "AWS/") {
		return nil, invalid("The value AWS/ for parameter Namespace is invalid.")
	}
	data := c.p.MemberStructs("MetricData")
	if len(data) == 0 {
		return nil, missing("MetricData")
	}
	if len(data) > cwMaxMetricData {
		return nil, invalid("The collection MetricData must not have a size greater than %d.", cwMaxMetricData)
	}
	type entry struct {
		name string
		dims []cwDim
		p    cwPoint
	}
	var entries []entry
	now := c.w.now()
	for i, d := range data {
		key := fmt.Sprintf("MetricData.member.%d", i+1)
		name := d.Get("MetricName")
		if name == "" {
			return nil, missing(key + ".MetricName")
		}
		dims, err := cwDims(d, "Dimensions")
		if err != nil {
			return nil, err
		}
		t, ok, err := cwTime(d, "Timestamp")
		if err != nil {
			return nil, err
		}
		if !ok {
			t = now
		}
		p := cwPoint{t: t, unit: d.Get("Unit")}
		if p.unit == "" {
			p.unit = "None"
		}
		value, hasValue, err := cwFloatParam(d, "Value")
		if err != nil {
			return nil, err
		}
		vals := d.Members("Values")
		counts := d.Members("Counts")
		hasSet := d.HasSub("StatisticValues")
		n := 0
		for _, b := range []bool{hasValue, len(vals) > 0, hasSet} {
			if b {
				n++
			}
		}
		if n != 1 {
			return nil, errf("InvalidParameterCombination", "The parameters %s.Value, %s.Values and %s.StatisticValues are mutually exclusive and one is required.", key, key, key)
		}
		switch {
		case hasValue:
			p.count, p.sum, p.min, p.max, p.vals = 1, value, value, value, []float64{value}
		case len(vals) > 0:
			if len(vals) > cwMaxValues {
				return nil, invalid("The collection %s.Values must not have a size greater than %d.", key, cwMaxValues)
			}
			if len(counts) > 0 && len(counts) != len(vals) {
				return nil, invalid("The parameters %s.Values and %s.Counts must be of the same size.", key, key)
			}
			p.min, p.max = math.Inf(1), math.Inf(-1)
			for j, s := range vals {
				v, err := strconv.ParseFloat(s, 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, invalid("The value %s for parameter %s.Values is invalid.", s, key)
				}
				cnt := 1.0
				if len(counts) > 0 {
					if cnt, err = strconv.ParseFloat(counts[j], 64); err != nil || cnt < 0 {
						return nil, invalid("The value %s for parameter %s.Counts is invalid.", counts[j], key)
					}
				}
				p.count += cnt
				p.sum += v * cnt
				p.min, p.max = math.Min(p.min, v), math.Max(p.max, v)
				for k := 0; k < int(cnt) && k < 10000; k++ {
					p.vals = append(p.vals, v)
				}
			}
		default:
			sv := d.Sub("StatisticValues")
			var fs [4]float64
			for j, f := range []string{"SampleCount", "Sum", "Minimum", "Maximum"} {
				v, ok, err := cwFloatParam(sv, f)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, missing(key + ".StatisticValues." + f)
				}
				fs[j] = v
			}
			if fs[0] <= 0 || fs[2] > fs[3] {
				return nil, invalid("The parameter %s.StatisticValues is not a valid statistic set.", key)
			}
			p.count, p.sum, p.min, p.max = fs[0], fs[1], fs[2], fs[3]
		}
		entries = append(entries, entry{name, dims, p})
	}
	cw := c.r.cw()
	for _, e := range entries {
		cw.put(ns, e.name, e.dims, e.p, 0)
	}
	return cwObj{}, nil
}

// periodOf returns a request's period as played by the sandbox. Valid
// periods are 1, 5, 10, 20, 30 and multiples of 60 seconds.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html
func (c *call) periodOf(p Params, key string, required bool) (int, time.Duration, *APIError) {
	if !p.Has(key) {
		if required {
			return 0, 0, missing(key)
		}
		return 0, 0, nil
	}
	n, err := p.Int(key, 0)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case n == 1 || n == 5 || n == 10 || n == 20 || n == 30:
	case n >= 60 && n%60 == 0:
	default:
		return 0, 0, invalid("The parameter %s must be 1, 5, 10, 20, 30 or a multiple of 60; %d is not.", key, n)
	}
	return n, c.w.scaledPeriod(n), nil
}

func (w *World) scaledPeriod(seconds int) time.Duration {
	d := w.timing.scale(time.Duration(seconds) * time.Second)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// GetMetricStatistics returns at most 1440 datapoints.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html
func cwGetMetricStatistics(c *call) (any, *APIError) {
	ns, name, dims, err := cwMetricOf(c.p)
	if err != nil {
		return nil, err
	}
	from, to, err := cwRange(c.p)
	if err != nil {
		return nil, err
	}
	_, period, err := c.periodOf(c.p, "Period", true)
	if err != nil {
		return nil, err
	}
	stats := c.p.Members("Statistics")
	ext := c.p.Members("ExtendedStatistics")
	if len(stats) == 0 && len(ext) == 0 {
		return nil, errf("InvalidParameterCombination", "Must specify either Statistics or ExtendedStatistics, but not both.")
	}
	if len(stats) > 0 && len(ext) > 0 {
		return nil, errf("InvalidParameterCombination", "Must specify either Statistics or ExtendedStatistics, but not both.")
	}
	for _, s := range stats {
		if !validStatistic(s) {
			return nil, invalid("The parameter Statistics.member.1 must be a value in the set [ Maximum, Minimum, Sum, SampleCount, Average ].")
		}
	}
	for _, s := range ext {
		if _, ok := percentile(s); !ok {
			return nil, invalid("The value %s for parameter ExtendedStatistics is not a valid percentile.", s)
		}
	}
	if to.Sub(from)/period > 1440 {
		return nil, invalid("You have requested up to %d datapoints, which exceeds the limit of 1440.", int(to.Sub(from)/period))
	}
	var points []any
	if s := c.r.cw().find(ns, name, dims); s != nil {
		aggs := s.aggregate(from, to, period, c.p.Get("Unit"))
		keys := make([]time.Time, 0, len(aggs))
		for t := range aggs {
			keys = append(keys, t)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].Before(keys[j]) })
		for _, t := range keys {
			a := aggs[t]
			dp := cwObj{{"Timestamp", t}}
			for _, st := range stats {
				v, _ := a.stat(st)
				dp = append(dp, cwField{st, v})
			}
			if len(ext) > 0 {
				m := cwMap{}
				for _, st := range ext {
					if v, ok := a.stat(st); ok {
						m[st] = v
					}
				}
				dp = append(dp, cwField{"ExtendedStatistics", m})
			}
			dp = append(dp, cwField{"Unit", a.unit})
			points = append(points, dp)
		}
	}
	return cwObj{{"Label", name}, {"Datapoints", points}}, nil
}

// GetMetricData: metric queries (MetricStat); metric math expressions are
// refused (docs/sandbox.md).
// cwMetricOf reads a metric's Namespace and MetricName (both required)
// and its Dimensions.
func cwMetricOf(p Params) (ns, name string, dims []cwDim, err *APIError) {
	ns, name = p.Get("Namespace"), p.Get("MetricName")
	if ns == "" {
		return "", "", nil, missing("Namespace")
	}
	if name == "" {
		return "", "", nil, missing("MetricName")
	}
	dims, err = cwDims(p, "Dimensions")
	return ns, name, dims, err
}

// cwRange reads StartTime and EndTime, both required, the start before
// the end.
func cwRange(p Params) (from, to time.Time, err *APIError) {
	from, ok, err := cwTime(p, "StartTime")
	if err != nil {
		return from, to, err
	}
	if !ok {
		return from, to, missing("StartTime")
	}
	to, ok, err = cwTime(p, "EndTime")
	if err != nil {
		return from, to, err
	}
	if !ok {
		return from, to, missing("EndTime")
	}
	if !from.Before(to) {
		return from, to, invalid("The parameter StartTime must be less than the parameter EndTime.")
	}
	return from, to, nil
}

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
func cwGetMetricData(c *call) (any, *APIError) {
	queries := c.p.MemberStructs("MetricDataQueries")
	if len(queries) == 0 {
		return nil, missing("MetricDataQueries")
	}
	if len(queries) > 500 {
		return nil, invalid("The collection MetricDataQueries must not have a size greater than 500.")
	}
	from, to, err := cwRange(c.p)
	if err != nil {
		return nil, err
	}
	asc := c.p.Get("ScanBy") == "TimestampAscending"
	var results []any
	ids := map[string]bool{}
	for i, q := range queries {
		key := fmt.Sprintf("MetricDataQueries.member.%d", i+1)
		id := q.Get("Id")
		if id == "" {
			return nil, missing(key + ".Id")
		}
		if ids[id] {
			return nil, invalid("The values for parameter id in MetricDataQueries are not unique.")
		}
		ids[id] = true
		if q.Get("Expression") != "" {
			return nil, invalid("The sandbox does not evaluate metric math: %s.Expression (%s).", key, q.Get("Expression"))
		}
		ms := q.Sub("MetricStat")
		m := ms.Sub("Metric")
		ns, name := m.Get("Namespace"), m.Get("MetricName")
		if ns == "" || name == "" {
			return nil, missing(key + ".MetricStat.Metric")
		}
		dims, err := cwDims(m, "Dimensions")
		if err != nil {
			return nil, err
		}
		_, period, err := c.periodOf(ms, "Period", true)
		if err != nil {
			return nil, err
		}
		stat := ms.Get("Stat")
		if _, ok := percentile(stat); !ok && !validStatistic(stat) {
			return nil, invalid("The value %s for parameter %s.MetricStat.Stat is invalid.", stat, key)
		}
		if rd, _ := q.Bool("ReturnData", true); !rd {
			continue
		}
		var ts []any
		var vs []any
		if s := c.r.cw().find(ns, name, dims); s != nil {
			aggs := s.aggregate(from, to, period, ms.Get("Unit"))
			keys := make([]time.Time, 0, len(aggs))
			for t := range aggs {
				keys = append(keys, t)
			}
			sort.Slice(keys, func(i, j int) bool {
				if asc {
					return keys[i].Before(keys[j])
				}
				return keys[i].After(keys[j])
			})
			for _, t := range keys {
				if v, ok := aggs[t].stat(stat); ok {
					ts = append(ts, t)
					vs = append(vs, v)
				}
			}
		}
		label := q.Get("Label")
		if label == "" {
			label = name
		}
		results = append(results, cwObj{{"Id", id}, {"Label", label}, {"Timestamps", ts}, {"Values", vs}, {"StatusCode", "Complete"}})
	}
	return cwObj{{"MetricDataResults", results}, {"Messages", []any{}}}, nil
}

// ListMetrics filters by namespace, name and dimension (a filter without
// a value matches any value).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListMetrics.html
func cwListMetrics(c *call) (any, *APIError) {
	ns, name := c.p.Get("Namespace"), c.p.Get("MetricName")
	var filters []cwDim
	for _, d := range c.p.MemberStructs("Dimensions") {
		if d.Get("Name") == "" {
			return nil, missing("Dimensions.Name")
		}
		filters = append(filters, cwDim{d.Get("Name"), d.Get("Value")})
	}
	var keys []string
	cw := c.r.cw()
	for k, s := range cw.series {
		if ns != "" && s.Namespace != ns || name != "" && s.Name != name {
			continue
		}
		ok := true
		for _, f := range filters {
			found := false
			for _, d := range s.Dims {
				if d.Name == f.Name && (f.Value == "" || d.Value == f.Value) {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	start, err := pageStart(c.p.Get("NextToken"), len(keys))
	if err != nil {
		return nil, err
	}
	const page = 500
	end := min(start+page, len(keys))
	var metrics []any
	for _, k := range keys[start:end] {
		metrics = append(metrics, metricObj(cw.series[k].Namespace, cw.series[k].Name, cw.series[k].Dims))
	}
	out := cwObj{{"Metrics", metrics}}
	if end < len(keys) {
		out = append(out, cwField{"NextToken", strconv.Itoa(end)})
	}
	return out, nil
}

func pageStart(token string, n int) (int, *APIError) {
	if token == "" {
		return 0, nil
	}
	i, err := strconv.Atoi(token)
	if err != nil || i < 0 || i > n {
		return 0, errf("InvalidNextToken", "The service couldn't process the NextToken %q.", token)
	}
	return i, nil
}

func dimsObj(dims []cwDim) []any {
	out := []any{}
	for _, d := range dims {
		out = append(out, cwObj{{"Name", d.Name}, {"Value", d.Value}})
	}
	return out
}

func metricObj(ns, name string, dims []cwDim) cwObj {
	return cwObj{{"Namespace", ns}, {"MetricName", name}, {"Dimensions", dimsObj(dims)}}
}

// PutMetricAlarm creates or replaces a metric alarm. An update keeps the
// alarm's state and replaces its configuration.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
func cwPutMetricAlarm(c *call) (any, *APIError) {
	p := c.p
	a := &cwAlarm{
		Name: p.Get("AlarmName"), Description: p.Get("AlarmDescription"),
		Namespace: p.Get("Namespace"), MetricName: p.Get("MetricName"),
		Statistic: p.Get("Statistic"), ExtendedStatistic: p.Get("ExtendedStatistic"),
		Unit: p.Get("Unit"), Comparison: p.Get("ComparisonOperator"), TreatMissingData: p.Get("TreatMissingData"),
		OKActions: p.Members("OKActions"), AlarmActions: p.Members("AlarmActions"), InsufficientDataActions: p.Members("InsufficientDataActions"),
	}
	if a.Name == "" {
		return nil, missing("AlarmName")
	}
	if len(a.Name) > 255 {
		return nil, invalid("The parameter AlarmName must be at most 255 characters long.")
	}
	if p.HasSub("Metrics") {
		// Metric math alarms need expressions the sandbox does not play.
		return nil, invalid("The sandbox does not evaluate metric math alarms (Metrics); use MetricName and Namespace.")
	}
	if p.Has("ThresholdMetricId") {
		return nil, invalid("The sandbox does not evaluate anomaly detection alarms (ThresholdMetricId).")
	}
	if a.MetricName == "" {
		return nil, missing("MetricName")
	}
	if a.Namespace == "" {
		return nil, missing("Namespace")
	}
	if (a.Statistic == "") == (a.ExtendedStatistic == "") {
		return nil, errf("InvalidParameterCombination", "Exactly one of Statistic or ExtendedStatistic must be specified.")
	}
	if a.Statistic != "" && !validStatistic(a.Statistic) {
		return nil, invalid("The value %s for parameter Statistic is not a valid statistic.", a.Statistic)
	}
	if a.ExtendedStatistic != "" {
		if _, ok := percentile(a.ExtendedStatistic); !ok {
			return nil, invalid("The value %s for parameter ExtendedStatistic is not a valid percentile.", a.ExtendedStatistic)
		}
	}
	var err *APIError
	if a.Dims, err = cwDims(p, "Dimensions"); err != nil {
		return nil, err
	}
	if a.Period, _, err = c.periodOf(p, "Period", true); err != nil {
		return nil, err
	}
	if a.Period < 10 {
		return nil, invalid("The parameter Period must be 10, 20, 30 or a multiple of 60 for an alarm; %d is not.", a.Period)
	}
	if !p.Has("EvaluationPeriods") {
		return nil, missing("EvaluationPeriods")
	}
	if a.EvaluationPeriods, err = p.Int("EvaluationPeriods", 0); err != nil {
		return nil, err
	}
	if a.EvaluationPeriods < 1 {
		return nil, invalid("The parameter EvaluationPeriods must be at least 1.")
	}
	// An alarm's evaluation range is at most seven days.
	if a.EvaluationPeriods*a.Period > 7*24*3600 {
		return nil, invalid("EvaluationPeriods times Period must not exceed 604800 seconds (7 days).")
	}
	if a.DatapointsToAlarm, err = p.Int("DatapointsToAlarm", a.EvaluationPeriods); err != nil {
		return nil, err
	}
	if a.DatapointsToAlarm < 1 || a.DatapointsToAlarm > a.EvaluationPeriods {
		return nil, invalid("DatapointsToAlarm (%d) must be between 1 and EvaluationPeriods (%d).", a.DatapointsToAlarm, a.EvaluationPeriods)
	}
	th, ok, err := cwFloatParam(p, "Threshold")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missing("Threshold")
	}
	a.Threshold = th
	if a.Comparison == "" {
		return nil, missing("ComparisonOperator")
	}
	if _, ok := cwComparisons[a.Comparison]; !ok {
		return nil, invalid("The value %s for parameter ComparisonOperator is not valid for a static threshold.", a.Comparison)
	}
	switch a.TreatMissingData {
	case "":
		a.TreatMissingData = "missing"
	case "breaching", "notBreaching", "ignore", "missing":
	default:
		return nil, invalid("The value %s for parameter TreatMissingData is invalid: breaching, notBreaching, ignore or missing.", a.TreatMissingData)
	}
	if a.ActionsEnabled, err = p.Bool("ActionsEnabled", true); err != nil {
		return nil, err
	}
	cw := c.r.cw()
	now := c.w.now()
	a.ARN = c.r.arn("cloudwatch", "alarm:"+a.Name)
	a.ConfigUpdated = now
	if old := cw.alarms[a.Name]; old != nil {
		a.State, a.StateReason, a.StateReasonData, a.StateUpdated = old.State, old.StateReason, old.StateReasonData, old.StateUpdated
		cw.history = append(cw.history, cwHistory{Alarm: a.Name, Type: "ConfigurationUpdate", Summary: `Alarm "` + a.Name + `" updated`, At: now})
	} else {
		if len(cw.alarms) >= 10000 {
			return nil, errf("LimitExceeded", "The maximum number of alarms (10000) for this account and region has been reached.")
		}
		a.State, a.StateReason, a.StateUpdated = "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", now
		cw.history = append(cw.history, cwHistory{Alarm: a.Name, Type: "ConfigurationUpdate", Summary: `Alarm "` + a.Name + `" created`, At: now})
	}
	// The first evaluation comes one period after the alarm is put.
	a.nextEval = now.Add(c.w.scaledPeriod(a.Period))
	cw.alarms[a.Name] = a
	return cwObj{}, nil
}

func (a *cwAlarm) obj() cwObj {
	strs := func(v []string) []any {
		out := []any{}
		for _, s := range v {
			out = append(out, s)
		}
		return out
	}
	o := cwObj{
		{"AlarmName", a.Name}, {"AlarmArn", a.ARN},
		{"AlarmConfigurationUpdatedTimestamp", a.ConfigUpdated},
		{"ActionsEnabled", a.ActionsEnabled},
		{"OKActions", strs(a.OKActions)}, {"AlarmActions", strs(a.AlarmActions)}, {"InsufficientDataActions", strs(a.InsufficientDataActions)},
		{"StateValue", a.State}, {"StateReason", a.StateReason},
	}
	if a.Description != "" {
		o = append(o, cwField{"AlarmDescription", a.Description})
	}
	if a.StateReasonData != "" {
		o = append(o, cwField{"StateReasonData", a.StateReasonData})
	}
	o = append(o, cwField{"StateUpdatedTimestamp", a.StateUpdated}, cwField{"StateTransitionedTimestamp", a.StateUpdated},
		cwField{"MetricName", a.MetricName}, cwField{"Namespace", a.Namespace})
	if a.Statistic != "" {
		o = append(o, cwField{"Statistic", a.Statistic})
	} else {
		o = append(o, cwField{"ExtendedStatistic", a.ExtendedStatistic})
	}
	o = append(o, cwField{"Dimensions", dimsObj(a.Dims)}, cwField{"Period", a.Period})
	if a.Unit != "" {
		o = append(o, cwField{"Unit", a.Unit})
	}
	return append(o, cwField{"EvaluationPeriods", a.EvaluationPeriods}, cwField{"DatapointsToAlarm", a.DatapointsToAlarm},
		cwField{"Threshold", a.Threshold}, cwField{"ComparisonOperator", a.Comparison}, cwField{"TreatMissingData", a.TreatMissingData})
}

// DescribeAlarms lists metric alarms by names, prefix and state.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
func cwDescribeAlarms(c *call) (any, *APIError) {
	names := c.p.Members("AlarmNames")
	prefix := c.p.Get("AlarmNamePrefix")
	if len(names) > 0 && prefix != "" {
		return nil, errf("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be specified together.")
	}
	if len(names) > 100 {
		return nil, invalid("The collection AlarmNames must not have a size greater than 100.")
	}
	state := c.p.Get("StateValue")
	switch state {
	case "", "OK", "ALARM", "INSUFFICIENT_DATA":
	default:
		return nil, invalid("The value %s for parameter StateValue is invalid.", state)
	}
	max, err := c.p.Int("MaxRecords", 50)
	if err != nil {
		return nil, err
	}
	if max < 1 || max > 100 {
		return nil, invalid("The parameter MaxRecords must be between 1 and 100.")
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	types := c.p.Members("AlarmTypes")
	metricAlarms := len(types) == 0
	for _, t := range types {
		metricAlarms = metricAlarms || t == "MetricAlarm"
	}
	cw := c.r.cw()
	var keys []string
	for n, a := range cw.alarms {
		if len(names) > 0 && !want[n] || !strings.HasPrefix(n, prefix) || state != "" && a.State != state {
			continue
		}
		keys = append(keys, n)
	}
	if !metricAlarms {
		keys = nil
	}
	sort.Strings(keys)
	start, err := pageStart(c.p.Get("NextToken"), len(keys))
	if err != nil {
		return nil, err
	}
	end := min(start+max, len(keys))
	var out []any
	for _, n := range keys[start:end] {
		out = append(out, cw.alarms[n].obj())
	}
	res := cwObj{{"MetricAlarms", out}, {"CompositeAlarms", []any{}}}
	if end < len(keys) {
		res = append(res, cwField{"NextToken", strconv.Itoa(end)})
	}
	return res, nil
}

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmsForMetric.html
func cwDescribeAlarmsForMetric(c *call) (any, *APIError) {
	ns, name, dims, err := cwMetricOf(c.p)
	if err != nil {
		return nil, err
	}
	period, _, err := c.periodOf(c.p, "Period", false)
	if err != nil {
		return nil, err
	}
	cw := c.r.cw()
	var keys []string
	for n, a := range cw.alarms {
		if a.Namespace != ns || a.MetricName != name {
			continue
		}
		if c.p.HasSub("Dimensions") && seriesKey("", "", sortDims(dims)) != seriesKey("", "", sortDims(a.Dims)) {
			continue
		}
		if s := c.p.Get("Statistic"); s != "" && a.Statistic != s {
			continue
		}
		if s := c.p.Get("ExtendedStatistic"); s != "" && a.ExtendedStatistic != s {
			continue
		}
		if period != 0 && a.Period != period {
			continue
		}
		if u := c.p.Get("Unit"); u != "" && a.Unit != u {
			continue
		}
		keys = append(keys, n)
	}
	sort.Strings(keys)
	var out []any
	for _, n := range keys {
		out = append(out, cw.alarms[n].obj())
	}
	return cwObj{{"MetricAlarms", out}}, nil
}

// SetAlarmState sets the state until the next evaluation, which returns
// the alarm to the state its data says.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html
func cwSetAlarmState(c *call) (any, *APIError) {
	name := c.p.Get("AlarmName")
	if name == "" {
		return nil, missing("AlarmName")
	}
	state := c.p.Get("StateValue")
	switch state {
	case "OK", "ALARM", "INSUFFICIENT_DATA":
	case "":
		return nil, missing("StateValue")
	default:
		return nil, invalid("The value %s for parameter StateValue is invalid.", state)
	}
	reason := c.p.Get("StateReason")
	if reason == "" {
		return nil, missing("StateReason")
	}
	data := c.p.Get("StateReasonData")
	if data != "" && !json.Valid([]byte(data)) {
		return nil, errf("InvalidFormat", "The StateReasonData is not valid JSON.")
	}
	cw := c.r.cw()
	a := cw.alarms[name]
	if a == nil {
		return nil, &APIError{Code: "ResourceNotFound", Message: "Alarm " + name + " does not exist", Status: 404}
	}
	now := c.w.now()
	cw.transition(a, state, reason, data, now)
	// The next evaluation comes one period later.
	a.nextEval = now.Add(c.w.scaledPeriod(a.Period))
	return cwObj{}, nil
}

// transition changes an alarm's state and records it in the history.
func (cw *cloudWatch) transition(a *cwAlarm, state, reason, data string, now time.Time) {
	old := a.State
	a.StateReason, a.StateReasonData = reason, data
	if old == state {
		return
	}
	a.State, a.StateUpdated = state, now
	hd, _ := json.Marshal(map[string]any{
		"version":  "1.0",
		"oldState": map[string]string{"stateValue": old},
		"newState": map[string]any{"stateValue": state, "stateReason": reason},
	})
	cw.history = append(cw.history, cwHistory{Alarm: a.Name, Type: "StateUpdate", Summary: "Alarm updated from " + old + " to " + state, Data: string(hd), At: now})
}

// DeleteAlarms deletes all or nothing: an unknown name fails the call.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html
func cwDeleteAlarms(c *call) (any, *APIError) {
	names := c.p.Members("AlarmNames")
	if len(names) == 0 {
		return nil, missing("AlarmNames")
	}
	if len(names) > 100 {
		return nil, invalid("The collection AlarmNames must not have a size greater than 100.")
	}
	cw := c.r.cw()
	for _, n := range names {
		if cw.alarms[n] == nil {
			return nil, &APIError{Code: "ResourceNotFound", Message: "1 or more alarms do not exist: " + n, Status: 404}
		}
	}
	for _, n := range names {
		delete(cw.alarms, n)
		cw.history = append(cw.history, cwHistory{Alarm: n, Type: "ConfigurationUpdate", Summary: `Alarm "` + n + `" deleted`, At: c.w.now()})
	}
	return cwObj{}, nil
}

// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html
func cwDescribeAlarmHistory(c *call) (any, *APIError) {
	name := c.p.Get("AlarmName")
	typ := c.p.Get("HistoryItemType")
	switch typ {
	case "", "ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate", "AlarmContributorAction":
	default:
		return nil, invalid("The value %s for parameter HistoryItemType is invalid.", typ)
	}
	from, hasFrom, err := cwTime(c.p, "StartDate")
	if err != nil {
		return nil, err
	}
	to, hasTo, err := cwTime(c.p, "EndDate")
	if err != nil {
		return nil, err
	}
	max, err := c.p.Int("MaxRecords", 100)
	if err != nil {
		return nil, err
	}
	if max < 1 || max > 100 {
		return nil, invalid("The parameter MaxRecords must be between 1 and 100.")
	}
	var items []cwHistory
	for _, h := range c.r.cw().history {
		if name != "" && h.Alarm != name || typ != "" && h.Type != typ || hasFrom && h.At.Before(from) || hasTo && h.At.After(to) {
			continue
		}
		items = append(items, h)
	}
	// Newest first unless asked otherwise.
	if c.p.Get("ScanBy") != "TimestampAscending" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	start, err := pageStart(c.p.Get("NextToken"), len(items))
	if err != nil {
		return nil, err
	}
	end := min(start+max, len(items))
	var out []any
	for _, h := range items[start:end] {
		o := cwObj{{"AlarmName", h.Alarm}, {"AlarmType", "MetricAlarm"}, {"Timestamp", h.At}, {"HistoryItemType", h.Type}, {"HistorySummary", h.Summary}}
		if h.Data != "" {
			o = append(o, cwField{"HistoryData", h.Data})
		}
		out = append(out, o)
	}
	res := cwObj{{"AlarmHistoryItems", out}}
	if end < len(items) {
		res = append(res, cwField{"NextToken", strconv.Itoa(end)})
	}
	return res, nil
}

// evaluateAlarms evaluates each alarm once a period: the last
// EvaluationPeriods complete periods, of which DatapointsToAlarm must
// breach for ALARM; missing periods count as TreatMissingData says.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
func evaluateAlarms(r *Region, now time.Time) {
	if r.cloudWatch == nil {
		return
	}
	cw := r.cloudWatch
	for _, a := range cw.alarms {
		if now.Before(a.nextEval) {
			continue
		}
		period := r.w.scaledPeriod(a.Period)
		a.nextEval = now.Add(period)
		state, reason, data := cw.evaluate(a, now, period)
		if state != "" {
			cw.transition(a, state, reason, data, now)
		}
	}
}

// evaluate returns the state an alarm's data says, "" to keep the state.
func (cw *cloudWatch) evaluate(a *cwAlarm, now time.Time, period time.Duration) (string, string, string) {
	end := now.Truncate(period)
	from := end.Add(-time.Duration(a.EvaluationPeriods) * period)
	var aggs map[time.Time]*cwAgg
	if s := cw.find(a.Namespace, a.MetricName, a.Dims); s != nil {
		aggs = s.aggregate(from, end, period, a.Unit)
	}
	type dp struct {
		t     time.Time
		v     float64
		found bool
	}
	var points []dp
	for t := from; t.Before(end); t = t.Add(period) {
		d := dp{t: t}
		if ag := aggs[t]; ag != nil {
			d.v, d.found = ag.stat(a.stat())
		}
		points = append(points, d)
	}
	breaching, present := 0, 0
	var recent []float64
	var shown []string
	for i := len(points) - 1; i >= 0; i-- {
		d := points[i]
		if !d.found {
			switch a.TreatMissingData {
			case "breaching":
				breaching++
			}
			continue
		}
		present++
		recent = append(recent, d.v)
		shown = append(shown, fmt.Sprintf("%s (%s)", cwFloat(d.v), d.t.UTC().Format("02/01/06 15:04:05")))
		if a.breaches(d.v) {
			breaching++
		}
	}
	if present == 0 && (a.TreatMissingData == "missing" || a.TreatMissingData == "ignore") {
		if a.TreatMissingData == "ignore" {
			return "", "", ""
		}
		return "INSUFFICIENT_DATA", "Insufficient Data: " + strconv.Itoa(a.EvaluationPeriods) + " datapoints were unknown.", ""
	}
	data, _ := json.Marshal(map[string]any{
		"version": "1.0", "queryDate": now.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"startDate": from.UTC().Format("2006-01-02T15:04:05.000+0000"),
		"statistic": a.stat(), "period": a.Period, "recentDatapoints": recent, "threshold": a.Threshold,
	})
	cmp := cwComparisons[a.Comparison]
	if breaching >= a.DatapointsToAlarm {
		return "ALARM", fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was %s the threshold (%s) (minimum %d datapoint for OK -> ALARM transition).",
			breaching, a.EvaluationPeriods, strings.Join(shown, ", "), cmp, cwFloat(a.Threshold), a.DatapointsToAlarm), string(data)
	}
	return "OK", fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints [%s] was not %s the threshold (%s) (minimum %d datapoint for ALARM -> OK transition).",
		a.EvaluationPeriods-breaching, a.EvaluationPeriods, strings.Join(shown, ", "), cmp, cwFloat(a.Threshold), a.DatapointsToAlarm), string(data)
}

// AlarmState returns an alarm's state, "" when there is no such alarm
// (tests).
func (s *Sandbox) AlarmState(region, name string) string {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	r, err := w.region(region)
	if err != nil {
		return ""
	}
	if a := r.cw().alarms[name]; a != nil {
		return a.State
	}
	return ""
}

// cloudWatchInventory lists alarms for the leak check.
func (r *Region) cloudWatchInventory(add func(svc, typ, id, name, state string)) {
	if r.cloudWatch == nil {
		return
	}
	for _, a := range r.cloudWatch.alarms {
		add("cloudwatch", "alarm", a.ARN, a.Name, a.State)
	}
}
