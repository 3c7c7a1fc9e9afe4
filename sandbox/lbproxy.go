package sandbox

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// lbServer serves the linux runtime's load balancers: every listener of a
// load balancer with an address is an HTTP server on address:port whose
// requests go, by the listener's rules, to a healthy target of the chosen
// target group through a reverse proxy.
//
// Routing reads the world under its lock for each request (a few map
// lookups); proxying happens outside it. Which listeners are bound is
// reconciled by a goroutine every lbReconcileEvery.
type lbServer struct {
	w     *World
	log   io.Writer
	proxy *httputil.ReverseProxy
	rr    atomic.Uint64
	// flying are the requests in flight to each target, cut when its
	// draining ends (lbpropagation.go).
	flying inflight
	stop   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	bound  map[string]*lbListener // by address:port
	failed map[string]bool        // addresses that could not be bound, logged once
}

type lbListener struct {
	region regionKey
	arn    string
	srv    *http.Server
}

const lbReconcileEvery = 20 * time.Millisecond

// targetKey carries the chosen target through the proxy.
type targetKey struct{}

func newLBServer(w *World, log io.Writer) *lbServer {
	s := &lbServer{
		w: w, log: log, stop: make(chan struct{}), done: make(chan struct{}),
		bound: map[string]*lbListener{}, failed: map[string]bool{},
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     5 * time.Second,
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := pr.In.Context().Value(targetKey{}).(string)
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", target
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
		ErrorHandler: func(rw http.ResponseWriter, req *http.Request, err error) {
			fmt.Fprintf(log, "sandbox: load balancer: %s %s: %v\n", req.Method, req.URL.Path, err)
			markELBError(rw)
			http.Error(rw, "502 Bad Gateway", http.StatusBadGateway)
		},
	}
	go s.run()
	return s
}

func (s *lbServer) run() {
	defer close(s.done)
	t := time.NewTicker(lbReconcileEvery)
	defer t.Stop()
	for {
		s.reconcile()
		s.cutDrained()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// reconcile binds the listeners that exist and closes the others.
func (s *lbServer) reconcile() {
	want := map[string]lbListener{}
	s.w.mu.Lock()
	for _, r := range s.w.regions {
		for _, l := range r.Listeners {
			lb := r.LoadBalancers[l.LoadBalancerARN]
			if lb == nil || lb.Address == "" {
				continue
			}
			want[net.JoinHostPort(lb.Address, strconv.Itoa(l.Port))] = lbListener{region: regionKey{r.Account, r.Name}, arn: l.ARN}
		}
	}
	s.w.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, b := range s.bound {
		if w, ok := want[addr]; !ok || w.arn != b.arn {
			b.srv.Close()
			delete(s.bound, addr)
		}
	}
	for addr, w := range want {
		if s.bound[addr] != nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if !s.failed[addr] {
				s.failed[addr] = true
				fmt.Fprintf(s.log, "sandbox: load balancer listener %s: %v\n", addr, err)
			}
			continue
		}
		delete(s.failed, addr)
		b := &lbListener{region: w.region, arn: w.arn}
		b.srv = &http.Server{Handler: s.handler(w.region, w.arn), ReadHeaderTimeout: 10 * time.Second}
		go b.srv.Serve(ln)
		s.bound[addr] = b
	}
}

// cutDrained cuts the requests still in flight to targets whose draining
// is over.
func (s *lbServer) cutDrained() {
	refs := s.flying.refs()
	if len(refs) == 0 {
		return
	}
	var over []targetRef
	s.w.mu.Lock()
	for _, ref := range refs {
		if s.w.drainOver(ref) {
			over = append(over, ref)
		}
	}
	s.w.mu.Unlock()
	for _, ref := range over {
		if n := s.flying.cut(ref); n > 0 {
			fmt.Fprintf(s.log, "sandbox: load balancer: deregistration delay of %s:%d over: %d requests in flight cut\n", ref.id, ref.port, n)
		}
	}
}

// close stops every listener at once; requests in flight are cut.
func (s *lbServer) close() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, b := range s.bound {
		b.srv.Close()
		delete(s.bound, addr)
	}
}

// lbAnswer is what routing decided: a target address to proxy to, or a
// response to give at once.
type lbAnswer struct {
	target      string
	targetGroup string    // the forward's choice, for the route hook
	ref         targetRef // the chosen target, for connection draining
	status      int
	body        string
	ctype       string
	location    string
	cookies     []*http.Cookie
}

func (s *lbServer) handler(region regionKey, listenerARN string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		m := meterLB(s.w, region, listenerARN, rw) // CloudWatch metrics (cloudwatch_lb.go)
		rw = m
		a := s.route(region, listenerARN, req)
		defer m.done(a)
		for _, c := range a.cookies {
			http.SetCookie(rw, c)
		}
		if a.target != "" {
			ctx, done := s.flying.start(req.Context(), a.ref)
			defer done()
			req = req.WithContext(context.WithValue(ctx, targetKey{}, a.target))
			s.proxy.ServeHTTP(rw, req)
			return
		}
		if a.location != "" {
			rw.Header().Set("Location", a.location)
		}
		if a.ctype == "" {
			a.ctype = "text/plain; charset=utf-8"
		}
		rw.Header().Set("Content-Type", a.ctype)
		rw.WriteHeader(a.status)
		io.WriteString(rw, a.body)
	})
}

// route picks the listener rule, its action and, for a forward, a target.
func (s *lbServer) route(region regionKey, listenerARN string, req *http.Request) lbAnswer {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.regions[region]
	if r == nil {
		return lbUnavailable
	}
	a := r.routeRequest(listenerARN, req, &s.rr)
	a.ref.region = region
	return a
}

var lbUnavailable = lbAnswer{status: http.StatusServiceUnavailable, body: "503 Service Temporarily Unavailable"}

// routeRequest is route under the world lock: the rule, its actions in
// order and, for a forward, a target group and a target (rr turns the
// round robin).
func (r *Region) routeRequest(listenerARN string, req *http.Request, rr *atomic.Uint64) lbAnswer {
	unavailable := lbUnavailable
	if r.Listeners[listenerARN] == nil {
		return unavailable
	}
	var rules []*Rule
	for _, rule := range r.Rules {
		if rule.ListenerARN == listenerARN {
			rules = append(rules, rule)
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rulePriority(rules[i]) < rulePriority(rules[j]) })
	var actions []Action
	matched := ""
	now := r.w.now()
	for _, rule := range rules {
		if rule.Priority == "default" || ruleMatches(rule.Conditions, req) {
			actions, matched = rule.routedActions(now), rule.ARN
			break
		}
	}
	for _, a := range actions {
		switch a.Type {
		case "authenticate-oidc", "authenticate-cognito":
			if ans, stop := authAnswer(a, req); stop {
				return ans
			}
		case "fixed-response":
			code, _ := strconv.Atoi(a.FixedStatus)
			return lbAnswer{status: code, body: a.FixedBody, ctype: a.FixedType}
		case "redirect":
			return redirectAnswer(a, req)
		case "forward":
			tg, cookies := r.pickForward(matched, a, req, func(fwd []WeightedTargetGroup) *TargetGroup { return pickTargetGroup(r, fwd) })
			if tg == nil {
				return unavailable
			}
			ans := unavailable
			if target, t := pickTarget(r, tg, rr, now); t != nil {
				ans = lbAnswer{target: target, ref: targetRef{targetGroup: tg.ARN, id: t.ID, port: t.Port}}
			}
			ans.targetGroup, ans.cookies = tg.ARN, cookies
			return ans
		}
	}
	return unavailable
}

// pickTargetGroup draws a target group by weight.
func pickTargetGroup(r *Region, fwd []WeightedTargetGroup) *TargetGroup {
	total := 0
	for _, f := range fwd {
		total += f.Weight
	}
	if total == 0 {
		return nil
	}
	n := rand.IntN(total)
	for _, f := range fwd {
		if n < f.Weight {
			return r.TargetGroups[f.ARN]
		}
		n -= f.Weight
	}
	return nil
}

// pickTarget returns the address of the next healthy target in round
// robin; when none is healthy, of any target that is registered and not
// draining (AWS fails open); "" when there is none. Only targets whose
// registration has reached the load balancer count (lbpropagation.go).
func pickTarget(r *Region, tg *TargetGroup, rr *atomic.Uint64, now time.Time) (string, *Target) {
	var healthy, open []string
	var healthyT, openT []*Target
	for _, t := range tg.Targets {
		if !t.routable(now) {
			continue
		}
		ip := t.ID
		if tg.TargetType != "ip" {
			inst := r.Instances[t.ID]
			if inst == nil || inst.State != "running" {
				continue
			}
			ip = inst.PrivateIP
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(t.Port))
		open, openT = append(open, addr), append(openT, t)
		if t.State == "healthy" {
			healthy, healthyT = append(healthy, addr), append(healthyT, t)
		}
	}
	if len(healthy) == 0 {
		healthy, healthyT = open, openT
	}
	if len(healthy) == 0 {
		return "", nil
	}
	i := int(rr.Add(1) % uint64(len(healthy)))
	return healthy[i], healthyT[i]
}

// ruleMatches applies a rule's conditions: all must match, and a
// condition matches when any of its values does.
func ruleMatches(conds []RuleCondition, req *http.Request) bool {
	for _, c := range conds {
		ok := false
		switch c.Field {
		case "path-pattern":
			for _, v := range c.Values {
				ok = ok || globMatch(v, req.URL.Path, false)
			}
		case "host-header":
			host := req.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			for _, v := range c.Values {
				ok = ok || globMatch(v, host, true)
			}
		case "http-header":
			for _, v := range c.Values {
				for _, hv := range req.Header.Values(c.HeaderName) {
					ok = ok || globMatch(v, hv, true)
				}
			}
		case "http-request-method":
			for _, v := range c.Values {
				ok = ok || v == req.Method
			}
		case "query-string":
			q := req.URL.Query()
			for _, kv := range c.QueryPairs {
				for k, vs := range q {
					if kv[0] != "" && !globMatch(kv[0], k, true) {
						continue
					}
					for _, v := range vs {
						ok = ok || globMatch(kv[1], v, true)
					}
				}
			}
		case "source-ip":
			host, _, _ := net.SplitHostPort(req.RemoteAddr)
			ip := net.ParseIP(host)
			for _, v := range c.Values {
				if _, n, err := net.ParseCIDR(v); err == nil && ip != nil && n.Contains(ip) {
					ok = true
				}
			}
		default:
			ok = true
		}
		if !ok {
			return false
		}
	}
	return true
}

// globMatch matches ELB's wildcards: * any characters, ? one.
func globMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// path.Match treats '/' specially and knows classes; ELB has neither.
	pattern = strings.NewReplacer("[", `\[`, "]", `\]`, `\`, `\\`).Replace(pattern)
	s2 := strings.ReplaceAll(s, "/", "\x00")
	p2 := strings.ReplaceAll(pattern, "/", "\x00")
	ok, err := path.Match(p2, s2)
	return err == nil && ok
}

// redirectAnswer builds a redirect action's Location from its
// #{protocol}, #{host}, #{port}, #{path} and #{query} placeholders.
func redirectAnswer(a Action, req *http.Request) lbAnswer {
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		host, port = req.Host, "80"
	}
	repl := strings.NewReplacer("#{protocol}", "HTTP", "#{host}", host, "#{port}", port,
		"#{path}", strings.TrimPrefix(req.URL.Path, "/"), "#{query}", req.URL.RawQuery)
	proto := strings.ToLower(repl.Replace(a.Redirect["Protocol"]))
	loc := proto + "://" + repl.Replace(a.Redirect["Host"]) + ":" + repl.Replace(a.Redirect["Port"]) + repl.Replace(a.Redirect["Path"])
	if q := repl.Replace(a.Redirect["Query"]); q != "" {
		loc += "?" + q
	}
	code := http.StatusMovedPermanently
	if a.Redirect["StatusCode"] == "HTTP_302" {
		code = http.StatusFound
	}
	return lbAnswer{status: code, location: loc}
}
