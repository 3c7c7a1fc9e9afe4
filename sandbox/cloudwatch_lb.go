package sandbox

import (
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The load balancers' AWS/ApplicationELB metrics. AWS publishes them only
// while requests flow (a 5XX count with no 5xx is missing, not 0), from
// client requests only (health checks excluded), per load balancer and
// per target group; the host counts per target group.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
//
// On the linux runtime the figures come from the requests the proxy
// serves (lbproxy.go calls meterLB); on the sim runtime from a built-in
// traffic source, switched on per load balancer by the tag
// phoenix:sim-requests-per-second, whose answers follow the tags of each
// target's image: phoenix:sim-error-share (share of 500s, 0 to 1) and
// phoenix:sim-latency-ms (response time).

const (
	albNamespace = "AWS/ApplicationELB"

	// TagSimRequestsPerSecond on a load balancer turns on the sim
	// runtime's traffic source: that many requests per sandbox second.
	TagSimRequestsPerSecond = "phoenix:sim-requests-per-second"
	// TagSimErrorShare on an image: the share of requests its instances
	// answer with 500 on the sim runtime.
	TagSimErrorShare = "phoenix:sim-error-share"
	// TagSimLatencyMS on an image: its instances' response time on the
	// sim runtime, in milliseconds.
	TagSimLatencyMS = "phoenix:sim-latency-ms"
)

func init() {
	addController(publishHostCounts)
	addController(runSimTraffic)
}

// lbDimension is the LoadBalancer dimension: the ARN's final part
// ("app/web/50dc6c495c0c9188").
func lbDimension(arn string) string {
	if i := strings.Index(arn, ":loadbalancer/"); i >= 0 {
		return arn[i+len(":loadbalancer/"):]
	}
	return arn
}

// tgDimension is the TargetGroup dimension ("targetgroup/web/73e2d6bc24d8a067").
func tgDimension(arn string) string {
	if i := strings.LastIndex(arn, ":"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

// lbRequest is one client request as the load balancer saw it.
type lbRequest struct {
	lbARN, tgARN string
	// targetStatus is the target's answer (0 when no target answered);
	// elbStatus the load balancer's own (503 no target, 502 the target
	// failed, fixed responses, redirects).
	targetStatus, elbStatus int
	latency                 time.Duration
}

// recordLBRequest adds one request to the load balancer's metrics.
// Callers hold w.mu.
func (r *Region) recordLBRequest(now time.Time, q lbRequest) {
	cw := r.cw()
	merge := r.w.timing.scale(time.Second)
	lb := []cwDim{{"LoadBalancer", lbDimension(q.lbARN)}}
	var tg []cwDim
	if q.tgARN != "" {
		tg = []cwDim{{"LoadBalancer", lbDimension(q.lbARN)}, {"TargetGroup", tgDimension(q.tgARN)}}
	}
	one := cwPoint{t: now, count: 1, sum: 1, min: 1, max: 1, unit: "Count"}
	put := func(name string, dims []cwDim, p cwPoint) {
		if dims != nil {
			cw.put(albNamespace, name, dims, p, merge)
		}
	}
	put("RequestCount", lb, one)
	put("RequestCount", tg, one)
	if q.targetStatus > 0 {
		class := "HTTPCode_Target_" + strconv.Itoa(q.targetStatus/100) + "XX_Count"
		put(class, lb, one)
		put(class, tg, one)
		secs := q.latency.Seconds()
		rt := cwPoint{t: now, count: 1, sum: secs, min: secs, max: secs, vals: []float64{secs}, unit: "Seconds"}
		put("TargetResponseTime", lb, rt)
		put("TargetResponseTime", tg, rt)
	}
	if q.elbStatus >= 300 {
		put("HTTPCode_ELB_"+strconv.Itoa(q.elbStatus/100)+"XX_Count", lb, one)
	}
}

// lbMeter measures one request the linux runtime's proxy serves.
type lbMeter struct {
	http.ResponseWriter
	w        *World
	region   regionKey
	listener string
	start    time.Time
	status   int
	elbError bool
}

func (m *lbMeter) WriteHeader(code int) {
	if m.status == 0 {
		m.status = code
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *lbMeter) Write(b []byte) (int, error) {
	if m.status == 0 {
		m.status = http.StatusOK
	}
	return m.ResponseWriter.Write(b)
}

func (m *lbMeter) Flush() {
	if f, ok := m.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// meterLB wraps a proxy response writer; done records the request.
func meterLB(w *World, region regionKey, listenerARN string, rw http.ResponseWriter) *lbMeter {
	return &lbMeter{ResponseWriter: rw, w: w, region: region, listener: listenerARN, start: time.Now()}
}

// markELBError notes that the proxy, not the target, answered (502).
func markELBError(rw http.ResponseWriter) {
	if m, ok := rw.(*lbMeter); ok {
		m.elbError = true
	}
}

// done records the request: the route's target group, and whether a
// target answered. The latency is unscaled: it is what clients saw.
func (m *lbMeter) done(a lbAnswer) {
	q := lbRequest{tgARN: a.targetGroup, latency: time.Since(m.start)}
	status := m.status
	if status == 0 {
		status = http.StatusOK
	}
	if a.target != "" && !m.elbError {
		q.targetStatus = status
	} else {
		q.elbStatus = status
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	r := m.w.regions[m.region]
	if r == nil || r.Listeners[m.listener] == nil {
		return
	}
	q.lbARN = r.Listeners[m.listener].LoadBalancerARN
	r.recordLBRequest(m.w.now(), q)
}

// lbTargetGroups returns the target groups each load balancer forwards
// to, by load balancer ARN.
func (r *Region) lbTargetGroups() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	addAction := func(lbARN string, acts []Action) {
		for _, a := range acts {
			if a.Type != "forward" {
				continue
			}
			if out[lbARN] == nil {
				out[lbARN] = map[string]bool{}
			}
			if a.TargetGroupARN != "" {
				out[lbARN][a.TargetGroupARN] = true
			}
			for _, f := range a.Forward {
				out[lbARN][f.ARN] = true
			}
		}
	}
	for _, l := range r.Listeners {
		addAction(l.LoadBalancerARN, l.DefaultActions)
	}
	for _, rule := range r.Rules {
		if l := r.Listeners[rule.ListenerARN]; l != nil {
			addAction(l.LoadBalancerARN, rule.Actions)
		}
	}
	return out
}

// publishHostCounts publishes HealthyHostCount and UnHealthyHostCount of
// each target group behind a load balancer once a (scaled) minute.
func publishHostCounts(r *Region, now time.Time) {
	if len(r.LoadBalancers) == 0 {
		return
	}
	every := r.w.scaledPeriod(60)
	cw := r.cw()
	for lbARN, tgs := range r.lbTargetGroups() {
		if r.LoadBalancers[lbARN] == nil {
			continue
		}
		for tgARN := range tgs {
			tg := r.TargetGroups[tgARN]
			if tg == nil {
				continue
			}
			key := lbARN + " " + tgARN
			if last, ok := cw.published[key]; ok && now.Sub(last) < every {
				continue
			}
			cw.published[key] = now
			healthy, unhealthy := 0.0, 0.0
			for _, t := range tg.Targets {
				switch t.State {
				case "healthy":
					healthy++
				case "unhealthy":
					unhealthy++
				}
			}
			dims := []cwDim{{"LoadBalancer", lbDimension(lbARN)}, {"TargetGroup", tgDimension(tgARN)}}
			cw.put(albNamespace, "HealthyHostCount", dims, cwPoint{t: now, count: 1, sum: healthy, min: healthy, max: healthy, vals: []float64{healthy}, unit: "Count"}, 0)
			cw.put(albNamespace, "UnHealthyHostCount", dims, cwPoint{t: now, count: 1, sum: unhealthy, min: unhealthy, max: unhealthy, vals: []float64{unhealthy}, unit: "Count"}, 0)
		}
	}
}

// simTraffic is the sim runtime's request source for one load balancer.
type simTraffic struct {
	last  time.Time
	carry float64
}

// simRR turns the sim traffic source's round robin.
var simRR atomic.Uint64

// simMaxPerTick bounds the requests one tick plays, so a high rate at a
// small time scale cannot stall the controllers.
const simMaxPerTick = 200

// runSimTraffic plays the built-in traffic source on the sim runtime:
// requests routed by the listeners' rules as the linux proxy routes them,
// answered as the chosen target's image tags say.
func runSimTraffic(r *Region, now time.Time) {
	if r.w.runtime == nil || r.w.runtime.Name() != "sim" {
		return
	}
	cw := r.cw()
	for _, lb := range r.LoadBalancers {
		rps, err := strconv.ParseFloat(lb.Tags[TagSimRequestsPerSecond], 64)
		if err != nil || rps <= 0 || lb.State != "active" {
			delete(cw.traffic, lb.ARN)
			continue
		}
		st := cw.traffic[lb.ARN]
		if st == nil {
			cw.traffic[lb.ARN] = &simTraffic{last: now}
			continue
		}
		scale := r.w.timing.Scale()
		st.carry += rps * now.Sub(st.last).Seconds() / scale
		st.last = now
		n := int(st.carry)
		st.carry -= float64(n)
		n = min(n, simMaxPerTick)
		var listeners []*Listener
		for _, l := range r.Listeners {
			if l.LoadBalancerARN == lb.ARN {
				listeners = append(listeners, l)
			}
		}
		if len(listeners) == 0 {
			continue
		}
		for i := 0; i < n; i++ {
			l := listeners[i%len(listeners)]
			req, _ := http.NewRequest(http.MethodGet, "http://"+lb.DNSName+"/", nil)
			req.Host = lb.DNSName
			req.RemoteAddr = "127.0.0.1:40000"
			a := r.routeRequest(l.ARN, req, &simRR)
			q := lbRequest{lbARN: lb.ARN, tgARN: a.targetGroup}
			if a.target == "" {
				q.elbStatus = a.status
			} else {
				q.targetStatus, q.latency = r.simAnswer(a.targetGroup, a.target)
			}
			r.recordLBRequest(now, q)
		}
	}
}

// simAnswer is how the target at addr answers on the sim runtime.
func (r *Region) simAnswer(tgARN, addr string) (int, time.Duration) {
	status, latency := http.StatusOK, 5*time.Millisecond
	tg := r.TargetGroups[tgARN]
	host, _, _ := net.SplitHostPort(addr)
	if tg == nil {
		return status, latency
	}
	var img *Image
	for _, t := range tg.Targets {
		inst := r.Instances[t.ID]
		if inst != nil && (inst.PrivateIP == host || t.ID == host) {
			img = r.Images[inst.ImageID]
			break
		}
	}
	if img == nil {
		return status, latency
	}
	if ms, err := strconv.ParseFloat(img.Tags[TagSimLatencyMS], 64); err == nil && ms >= 0 {
		// A spread of ±20% around the tag's value.
		latency = time.Duration(ms * (0.8 + 0.4*rand.Float64()) * float64(time.Millisecond))
	}
	if share, err := strconv.ParseFloat(img.Tags[TagSimErrorShare], 64); err == nil && share > 0 && rand.Float64() < math.Min(share, 1) {
		status = http.StatusInternalServerError
	}
	return status, latency
}

// checkRefreshAlarms refuses an instance refresh whose AlarmSpecification
// names more than 10 alarms or an alarm that does not exist. AWS documents
// the limit of 10; that it refuses unknown names is the stricter reading
// (docs/sandbox.md).
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_AlarmSpecification.html
func (r *Region) checkRefreshAlarms(names []string) *APIError {
	if len(names) > 10 {
		return validation("1 validation error detected: Value at 'preferences.alarmSpecification.alarms' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	for _, n := range names {
		if r.cw().alarms[n] == nil {
			return validation("The request isn't valid. The CloudWatch alarm %s does not exist.", n)
		}
	}
	return nil
}

// refreshAlarmReason says why a refresh fails on its alarms: any alarm of
// its AlarmSpecification in ALARM (checked on every step, bake time
// included); "" when none is.
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-rollback.html
func (r *Region) refreshAlarmReason(rf *InstanceRefresh) string {
	if r.cloudWatch == nil || rf.Status == "RollbackInProgress" {
		return ""
	}
	for _, n := range rf.Preferences.AlarmNames {
		a := r.cloudWatch.alarms[n]
		if a == nil {
			return "The instance refresh failed because the CloudWatch alarm " + n + " was deleted."
		}
		if a.State == "ALARM" {
			return "The instance refresh failed because the CloudWatch alarm " + n + " went into the ALARM state."
		}
	}
	return ""
}
