package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is an injected failure. Service and Action narrow it ("" matches
// any); Probability (0 means always) and Count (0 means unlimited) say how
// often it fires.
type Fault struct {
	ID          string  `json:"id"`
	Service     string  `json:"service,omitempty"`
	Action      string  `json:"action,omitempty"`
	Kind        string  `json:"kind"` // throttle, error500, error503, latency, invisible
	Probability float64 `json:"probability,omitempty"`
	Count       int     `json:"count,omitempty"`
	LatencyMS   int     `json:"latency_ms,omitempty"`
	InvisibleMS int     `json:"invisible_ms,omitempty"`
	Fired       int     `json:"fired"`
}

var faultKinds = map[string]bool{"throttle": true, "error500": true, "error503": true, "latency": true, "invisible": true}

func (f *Fault) validate() error {
	if !faultKinds[f.Kind] {
		return fmt.Errorf("fault kind %q is not one of throttle, error500, error503, latency, invisible", f.Kind)
	}
	if f.Probability < 0 || f.Probability > 1 {
		return fmt.Errorf("fault probability %v is not between 0 and 1", f.Probability)
	}
	if f.Kind == "latency" && f.LatencyMS <= 0 {
		return fmt.Errorf("a latency fault needs latency_ms > 0")
	}
	if f.Kind == "invisible" && f.InvisibleMS <= 0 {
		return fmt.Errorf("an invisible fault needs invisible_ms > 0")
	}
	if f.Service != "" && handlers[f.Service] == nil {
		return fmt.Errorf("fault service %q is not emulated", f.Service)
	}
	return nil
}

func (f *Fault) matches(svc, action string) bool {
	return (f.Service == "" || f.Service == svc) && (f.Action == "" || f.Action == "*" || f.Action == action)
}

type hookState struct {
	mu     sync.Mutex
	calls  map[string]map[string]int
	faults []*Fault
	seq    int
	onCall func(service, action string)
	holds  []*Hold
	// seed and rng decide whether faults with a probability fire.
	seed uint64
	rng  *mrand.Rand
}

// FaultSeed is the seed of the source that decides whether faults with a
// probability fire (Options.FaultSeed).
func (s *Sandbox) FaultSeed() uint64 { return s.hooks.seed }

// OnCall registers f to be called before each API call is handled, from
// the serving goroutine; in-process tests use it to act at an exact point
// of a client's run (cancel a build when it creates the AMI, say). nil
// removes it.
func (s *Sandbox) OnCall(f func(service, action string)) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.onCall = f
}

func (s *Sandbox) countCall(svc, action string) {
	s.hooks.mu.Lock()
	if s.hooks.calls[svc] == nil {
		s.hooks.calls[svc] = map[string]int{}
	}
	s.hooks.calls[svc][action]++
	f := s.hooks.onCall
	s.hooks.mu.Unlock()
	if f != nil {
		f(svc, action)
	}
}

// Hold is an API call the sandbox holds, so that a test can act at an
// exact point of a client's run: send a signal to the client's process
// while its call is in flight, say. HoldCall holds a call before it is
// handled (AWS has not seen it yet); once released, it is handled whether
// or not its client still waits, as AWS carries out a request it has
// received. HoldAnswer handles the call at once and holds its answer (AWS
// did the work and the client never hears of it).
type Hold struct {
	match   func(region, service, action string) bool
	answer  bool
	reached chan struct{}
	gone    chan struct{}
	release chan struct{}
	done    sync.Once
	// handled is closed once a call held before it ran has run (its
	// effects are in the sandbox) or was dropped.
	handled chan struct{}

	// Region, Service and Action name the held call once Reached is closed.
	Region, Service, Action string
}

// HoldCall holds the first API call for which match reports true, before
// handling it. match sees each call in order of arrival, one at a time,
// until one matches; it may keep state (the first DescribeImages after
// CopyImage, say) and must not call the Sandbox.
func (s *Sandbox) HoldCall(match func(region, service, action string) bool) *Hold {
	return s.hold(match, false)
}

// HoldAnswer is HoldCall for the answer: the call is handled at once and
// its answer is held until the Hold is released.
func (s *Sandbox) HoldAnswer(match func(region, service, action string) bool) *Hold {
	return s.hold(match, true)
}

func (s *Sandbox) hold(match func(region, service, action string) bool, answer bool) *Hold {
	h := &Hold{match: match, answer: answer, reached: make(chan struct{}), gone: make(chan struct{}), release: make(chan struct{}), handled: make(chan struct{})}
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.holds = append(s.hooks.holds, h)
	return h
}

// Reached is closed when the held call has arrived (HoldCall) or has been
// handled (HoldAnswer).
func (h *Hold) Reached() <-chan struct{} { return h.reached }

// ClientGone is closed when the held call's client stopped waiting for
// the answer (it closed the connection) while the call was held.
func (h *Hold) ClientGone() <-chan struct{} { return h.gone }

// Handled is closed once a call held before it ran (HoldCall) has run
// after its release, or was dropped: a test waits on it instead of
// guessing how long a late request takes.
func (h *Hold) Handled() <-chan struct{} { return h.handled }

// Release lets the held call (or, before it arrives, the next matching
// call) go on. It is safe to call more than once.
func (h *Hold) Release() { h.done.Do(func() { close(h.release) }) }

// holdCall blocks a call that a Hold of this kind (answer or not)
// matches until the Hold is released or the sandbox closes, and returns
// that Hold (nil when none matched).
func (s *Sandbox) holdCall(ctx context.Context, region, svc, action string, answer bool) *Hold {
	s.hooks.mu.Lock()
	var h *Hold
	for i, c := range s.hooks.holds {
		if c.answer == answer && c.match(region, svc, action) {
			h = c
			s.hooks.holds = append(s.hooks.holds[:i:i], s.hooks.holds[i+1:]...)
			break
		}
	}
	s.hooks.mu.Unlock()
	if h == nil {
		return nil
	}
	h.Region, h.Service, h.Action = region, svc, action
	close(h.reached)
	client := ctx.Done()
	for {
		select {
		case <-client:
			close(h.gone)
			client = nil
		case <-h.release:
			return h
		case <-s.stop:
			return h
		}
	}
}

// faultFor decides whether a fault fires for this call: an error to answer
// with and/or a delay to add first.
func (s *Sandbox) faultFor(svc, action string) (*APIError, time.Duration) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	var aerr *APIError
	var delay time.Duration
	for _, f := range s.hooks.faults {
		if f.Kind == "invisible" || !f.matches(svc, action) || (f.Count > 0 && f.Fired >= f.Count) {
			continue
		}
		if f.Probability > 0 && s.hooks.rng.Float64() >= f.Probability {
			continue
		}
		f.Fired++
		switch f.Kind {
		case "latency":
			delay += time.Duration(f.LatencyMS) * time.Millisecond
		case "throttle":
			if aerr == nil {
				t := throttleCodes[svc]
				aerr = &APIError{Code: t.code, Message: "Rate exceeded", Status: t.status}
			}
		case "error500":
			if aerr == nil {
				aerr = &APIError{Code: "InternalError", Message: "An internal error has occurred", Status: 500}
				switch svc {
				case "kms":
					aerr.Code = "KMSInternalException"
				case "ssm":
					aerr.Code = "InternalServerError"
				}
			}
		case "error503":
			if aerr == nil {
				aerr = &APIError{Code: "ServiceUnavailable", Message: "The service is unavailable. Please try again shortly.", Status: 503}
			}
		}
	}
	return aerr, delay
}

// hidden reports whether a resource created at created is still invisible
// to this call because of an invisible fault (eventual consistency).
func (c *call) hidden(created time.Time) bool {
	s := c.w.sandbox
	if s == nil {
		return false
	}
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	for _, f := range s.hooks.faults {
		if f.Kind == "invisible" && f.matches(c.service, c.action) &&
			time.Since(created) < time.Duration(f.InvisibleMS)*time.Millisecond {
			f.Fired++
			return true
		}
	}
	return false
}

// Calls returns the per-service, per-action call counts so far.
func (s *Sandbox) Calls() map[string]map[string]int {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	out := map[string]map[string]int{}
	for svc, m := range s.hooks.calls {
		out[svc] = map[string]int{}
		for a, n := range m {
			out[svc][a] = n
		}
	}
	return out
}

// ResetCalls sets every call count to zero.
func (s *Sandbox) ResetCalls() {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.calls = map[string]map[string]int{}
}

// IsMutating reports whether an action changes state: everything but
// Describe*, List*, Get* and the like.
func IsMutating(action string) bool {
	for _, p := range []string{"Describe", "List", "Get"} {
		if strings.HasPrefix(action, p) {
			return false
		}
	}
	return true
}

// MutatingCalls counts calls to actions that change state.
func MutatingCalls(calls map[string]map[string]int) int {
	n := 0
	for _, m := range calls {
		for a, c := range m {
			if IsMutating(a) {
				n += c
			}
		}
	}
	return n
}

// AddFault injects a fault and returns it with its id.
func (s *Sandbox) AddFault(f Fault) (Fault, error) {
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.seq++
	f.ID = fmt.Sprintf("fault-%d", s.hooks.seq)
	f.Fired = 0
	s.hooks.faults = append(s.hooks.faults, &f)
	return f, nil
}

// Faults lists the injected faults with how often each fired.
func (s *Sandbox) Faults() []Fault {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	out := make([]Fault, 0, len(s.hooks.faults))
	for _, f := range s.hooks.faults {
		out = append(out, *f)
	}
	return out
}

// ClearFaults removes every injected fault.
func (s *Sandbox) ClearFaults() {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.faults = nil
}

// Timing returns the timing profile.
func (s *Sandbox) Timing() TimingProfile { return s.world.timing.profile() }

// SetTiming changes the time scale and named durations.
func (s *Sandbox) SetTiming(p TimingProfile) error {
	if unknown := s.world.timing.set(p); len(unknown) > 0 {
		return fmt.Errorf("unknown timing entries: %s", strings.Join(unknown, ", "))
	}
	return nil
}

func (s *Sandbox) serveHook(rw http.ResponseWriter, req *http.Request) {
	reply := func(v any) {
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	}
	fail := func(status int, err error) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		json.NewEncoder(rw).Encode(map[string]string{"error": err.Error()})
	}
	path := strings.TrimPrefix(req.URL.Path, "/_sandbox/")
	switch {
	case path == "health":
		reply(map[string]any{"status": "ok", "runtime": s.world.runtime.Name(), "time_scale": s.world.timing.Scale()})
	case path == "calls" && req.Method == http.MethodGet:
		calls := s.Calls()
		reply(map[string]any{"calls": calls, "mutating": MutatingCalls(calls)})
	case path == "calls" && req.Method == http.MethodDelete:
		s.ResetCalls()
		reply(map[string]any{"calls": map[string]any{}})
	case path == "inventory" && req.Method == http.MethodGet:
		inv := s.Inventory()
		if inv == nil {
			inv = []Resource{}
		}
		reply(map[string]any{"resources": inv})
	case path == "faults" && req.Method == http.MethodGet:
		reply(map[string]any{"faults": s.Faults(), "seed": s.FaultSeed()})
	case path == "faults" && req.Method == http.MethodPost:
		var f Fault
		if err := json.NewDecoder(req.Body).Decode(&f); err != nil {
			fail(http.StatusBadRequest, fmt.Errorf("decoding fault: %w", err))
			return
		}
		added, err := s.AddFault(f)
		if err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		reply(added)
	case path == "faults" && req.Method == http.MethodDelete:
		s.ClearFaults()
		reply(map[string]any{"faults": []Fault{}})
	case path == "route" && req.Method == http.MethodPost:
		rt, err := s.routeHook(req)
		if err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		reply(rt)
	case path == "load-balancers" && req.Method == http.MethodGet:
		reply(map[string]any{"load_balancers": s.LoadBalancers()})
	case strings.HasPrefix(path, "images/") && strings.HasSuffix(path, "/files") && req.Method == http.MethodGet:
		s.serveImageFiles(rw, req, strings.TrimSuffix(strings.TrimPrefix(path, "images/"), "/files"))
	case path == "timing" && req.Method == http.MethodGet:
		reply(s.Timing())
	case path == "timing" && (req.Method == http.MethodPut || req.Method == http.MethodPost):
		var p TimingProfile
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			fail(http.StatusBadRequest, fmt.Errorf("decoding timing: %w", err))
			return
		}
		if err := s.SetTiming(p); err != nil {
			fail(http.StatusBadRequest, err)
			return
		}
		reply(s.Timing())
	default:
		fail(http.StatusNotFound, fmt.Errorf("no hook %s %s", req.Method, req.URL.Path))
	}
}
