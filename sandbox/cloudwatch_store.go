package sandbox

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cloudWatch is one region's metrics and alarms.
type cloudWatch struct {
	series map[string]*cwSeries // by seriesKey
	alarms map[string]*cwAlarm  // by name
	// history outlives the alarms it tells of, as in AWS.
	history []cwHistory
	// traffic is the sim runtime's built-in traffic source, per load
	// balancer ARN (cloudwatch_lb.go).
	traffic map[string]*simTraffic
	// published is when each target group's host counts were last
	// published, by "lbARN tgARN".
	published map[string]time.Time
}

// cw returns the region's CloudWatch, creating it on first use.
func (r *Region) cw() *cloudWatch {
	if r.cloudWatch == nil {
		r.cloudWatch = &cloudWatch{
			series:    map[string]*cwSeries{},
			alarms:    map[string]*cwAlarm{},
			traffic:   map[string]*simTraffic{},
			published: map[string]time.Time{},
		}
	}
	return r.cloudWatch
}

// cwDim is one dimension of a metric.
type cwDim struct{ Name, Value string }

// cwSeries is one metric: namespace, name and dimension set.
type cwSeries struct {
	Namespace string
	Name      string
	Dims      []cwDim // sorted by name
	points    []cwPoint
}

// cwPoint is what one PutMetricData entry (or one batch of load balancer
// requests) added: a statistic set, and the raw values when known
// (percentiles need them).
type cwPoint struct {
	t        time.Time
	count    float64
	sum      float64
	min, max float64
	vals     []float64
	unit     string
}

// cwMaxPoints bounds a series; the oldest points go first.
const cwMaxPoints = 50000

func seriesKey(ns, name string, dims []cwDim) string {
	var b strings.Builder
	b.WriteString(ns + "\x00" + name)
	for _, d := range dims {
		b.WriteString("\x00" + d.Name + "=" + d.Value)
	}
	return b.String()
}

func sortDims(d []cwDim) []cwDim {
	out := append([]cwDim(nil), d...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// put adds a point to a series, merging it into the last point when both
// fall in the same scaled second (a busy load balancer adds thousands).
func (c *cloudWatch) put(ns, name string, dims []cwDim, p cwPoint, mergeWithin time.Duration) {
	dims = sortDims(dims)
	key := seriesKey(ns, name, dims)
	s := c.series[key]
	if s == nil {
		s = &cwSeries{Namespace: ns, Name: name, Dims: dims}
		c.series[key] = s
	}
	if n := len(s.points); n > 0 && mergeWithin > 0 {
		last := &s.points[n-1]
		if last.unit == p.unit && !p.t.Before(last.t) && p.t.Sub(last.t) < mergeWithin && len(last.vals)+len(p.vals) < 20000 {
			last.count += p.count
			last.sum += p.sum
			last.min = math.Min(last.min, p.min)
			last.max = math.Max(last.max, p.max)
			if last.vals != nil || p.vals != nil {
				last.vals = append(last.vals, p.vals...)
			}
			return
		}
	}
	s.points = append(s.points, p)
	if len(s.points) > cwMaxPoints {
		s.points = append([]cwPoint(nil), s.points[len(s.points)-cwMaxPoints:]...)
	}
}

// cwAgg is the statistics of the points in one period.
type cwAgg struct {
	count, sum, min, max float64
	vals                 []float64
	exact                bool // every point carried its raw values
	unit                 string
}

// aggregate returns the points of s in [from, to), bucketed by period,
// keyed by bucket start. A unit other than "" keeps only points in it.
func (s *cwSeries) aggregate(from, to time.Time, period time.Duration, unit string) map[time.Time]*cwAgg {
	out := map[time.Time]*cwAgg{}
	for _, p := range s.points {
		if p.t.Before(from) || !p.t.Before(to) {
			continue
		}
		if unit != "" && p.unit != unit {
			continue
		}
		b := p.t.Truncate(period)
		a := out[b]
		if a == nil {
			a = &cwAgg{min: math.Inf(1), max: math.Inf(-1), exact: true, unit: p.unit}
			out[b] = a
		}
		a.count += p.count
		a.sum += p.sum
		a.min = math.Min(a.min, p.min)
		a.max = math.Max(a.max, p.max)
		if p.vals == nil {
			a.exact = false
		} else {
			a.vals = append(a.vals, p.vals...)
		}
	}
	return out
}

// stat returns one statistic of a period: SampleCount, Average, Sum,
// Minimum, Maximum or a percentile pNN(.NN); ok is false when the period
// cannot give it (a percentile of statistic sets).
func (a *cwAgg) stat(name string) (float64, bool) {
	switch name {
	case "SampleCount":
		return a.count, true
	case "Sum":
		return a.sum, true
	case "Average":
		if a.count == 0 {
			return 0, false
		}
		return a.sum / a.count, true
	case "Minimum":
		return a.min, true
	case "Maximum":
		return a.max, true
	}
	q, ok := percentile(name)
	if !ok || !a.exact || len(a.vals) == 0 {
		return 0, false
	}
	v := append([]float64(nil), a.vals...)
	sort.Float64s(v)
	// Nearest rank.
	i := int(math.Ceil(q/100*float64(len(v)))) - 1
	if i < 0 {
		i = 0
	}
	return v[i], true
}

// percentile parses "p99" or "p99.9".
func percentile(s string) (float64, bool) {
	if !strings.HasPrefix(s, "p") {
		return 0, false
	}
	q, err := strconv.ParseFloat(s[1:], 64)
	if err != nil || q < 0 || q > 100 {
		return 0, false
	}
	return q, true
}

var cwStatistics = []string{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}

func validStatistic(s string) bool {
	for _, v := range cwStatistics {
		if v == s {
			return true
		}
	}
	return false
}

// matches reports whether a series has exactly these dimensions.
func (s *cwSeries) matches(ns, name string, dims []cwDim) bool {
	return s.Namespace == ns && s.Name == name && seriesKey(ns, name, sortDims(dims)) == seriesKey(s.Namespace, s.Name, s.Dims)
}

// find returns the series with exactly these dimensions, or nil.
func (c *cloudWatch) find(ns, name string, dims []cwDim) *cwSeries {
	return c.series[seriesKey(ns, name, sortDims(dims))]
}
