package sandbox_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// propagationEnv is a load balancer served by the sandbox's real proxy on
// a loopback address of its own, in front of backends that answer their
// name, and hold requests to /slow until released.
type propagationEnv struct {
	*elbFixture
	lb      elbtypes.LoadBalancer
	base    string
	client  *http.Client
	port    int
	arrived chan string
	release chan struct{}
}

func newPropagationEnv(t *testing.T, addr string, timing map[string]float64) *propagationEnv {
	f := newELBFixture(t)
	if err := f.sb.SetTiming(sandbox.TimingProfile{Seconds: timing}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e := &propagationEnv{elbFixture: f, lb: f.createLB("propagation"), base: "http://" + net.JoinHostPort(addr, strconv.Itoa(port)),
		client: &http.Client{Timeout: 10 * time.Second}, arrived: make(chan string, 16), release: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-e.release:
		default:
			close(e.release)
		}
	})
	e.port = port
	return e
}

// backend starts a backend named name and returns its port.
func (e *propagationEnv) backend(name string) int32 {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			e.arrived <- name
			<-e.release
		}
		io.WriteString(rw, name)
	}))
	e.t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	n, _ := strconv.Atoi(p)
	return int32(n)
}

func (e *propagationEnv) ipGroup(name string, delay string) string {
	tg := e.createTG(name, func(in *elb.CreateTargetGroupInput) { in.TargetType = elbtypes.TargetTypeEnumIp })
	_, err := e.c.ModifyTargetGroupAttributes(e.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(delay)}}})
	e.must(err)
	return tg
}

func (e *propagationEnv) register(tg string, port int32) {
	_, err := e.c.RegisterTargets(e.ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(port), AvailabilityZone: aws.String("all")}}})
	e.must(err)
}

func (e *propagationEnv) deregister(tg string, port int32) {
	_, err := e.c.DeregisterTargets(e.ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(port), AvailabilityZone: aws.String("all")}}})
	e.must(err)
}

func (e *propagationEnv) listen(weights map[string]int32) string {
	l, err := e.c.CreateListener(e.ctx, &elb.CreateListenerInput{LoadBalancerArn: e.lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(e.port)), DefaultActions: elbForward(weights)})
	e.must(err)
	e.sb.ELBTestProxy(e.t, elbRegion, aws.ToString(e.lb.LoadBalancerArn), strings.TrimPrefix(e.base[:strings.LastIndexByte(e.base, ':')], "http://"))
	return aws.ToString(l.Listeners[0].ListenerArn)
}

// get sends one request and returns its status and body; a refused
// connection (the proxy not listening yet) is status 0.
func (e *propagationEnv) get(path string) (int, string) {
	resp, err := e.client.Get(e.base + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitAnswer waits until a request to / is answered 200 by want.
func (e *propagationEnv) waitAnswer(want string) {
	e.t.Helper()
	last := ""
	elbWaitFor(e.t, "an answer from "+want+" (last: "+last+")", 20*time.Second, func() bool {
		code, body := e.get("/")
		last = strconv.Itoa(code) + " " + body
		return code == http.StatusOK && body == want
	})
}

// A registration reaches traffic only once it has completed; a weight
// change only once it has propagated: until then requests follow what
// was there before.
func TestELBv2Propagation(t *testing.T) {
	// 300 s of AWS time each: 3 s at the test time scale, far longer
	// than the few requests sent right after each change take.
	e := newPropagationEnv(t, "127.78.0.1", map[string]float64{"target_registration": 300, "lb_config_propagation": 300})
	a, b := e.ipGroup("a", "5"), e.ipGroup("b", "5")
	e.listen(map[string]int32{a: 1, b: 0})
	portA, portB := e.backend("A"), e.backend("B")
	e.register(a, portA)
	elbWaitFor(t, "the proxy to listen", 5*time.Second, func() bool { code, _ := e.get("/"); return code != 0 })
	if code, body := e.get("/"); code != http.StatusServiceUnavailable {
		t.Errorf("right after RegisterTargets: %d %q, want 503 (registration in progress)", code, body)
	}
	if h := e.health(a)["127.0.0.1"]; h.State != elbtypes.TargetHealthStateEnumInitial || h.Reason != elbtypes.TargetHealthReasonEnumRegistrationInProgress {
		t.Errorf("target health right after RegisterTargets: %s %s, want initial Elb.RegistrationInProgress", h.State, h.Reason)
	}
	e.waitAnswer("A")

	e.register(b, portB)
	elbWaitFor(t, "b's registration to complete", 20*time.Second, func() bool {
		return e.health(b)["127.0.0.1"].Reason != elbtypes.TargetHealthReasonEnumRegistrationInProgress
	})
	_, err := e.c.ModifyListener(e.ctx, &elb.ModifyListenerInput{ListenerArn: e.listenerARN(), DefaultActions: elbForward(map[string]int32{a: 0, b: 1})})
	e.must(err)
	for i := 0; i < 5; i++ {
		if code, body := e.get("/"); code != http.StatusOK || body != "A" {
			t.Errorf("request %d right after the weight change: %d %q, want A (the change still propagating)", i, code, body)
		}
	}
	e.waitAnswer("B")
	for i := 0; i < 10; i++ {
		if code, body := e.get("/"); code != http.StatusOK || body != "B" {
			t.Errorf("request %d once the change propagated: %d %q, want B", i, code, body)
		}
	}
}

func (e *propagationEnv) listenerARN() *string {
	out, err := e.c.DescribeListeners(e.ctx, &elb.DescribeListenersInput{LoadBalancerArn: e.lb.LoadBalancerArn})
	e.must(err)
	return out.Listeners[0].ListenerArn
}

// A deregistered target gets no new request; a request in flight to it
// goes on while its deregistration delay lasts, and is cut when the delay
// is over.
func TestELBv2ConnectionDraining(t *testing.T) {
	e := newPropagationEnv(t, "127.78.0.2", map[string]float64{"target_registration": 0})
	tg := e.ipGroup("drain", "300") // 3 s at the test time scale
	e.listen(map[string]int32{tg: 1})
	ports := map[string]int32{"X": e.backend("X"), "Y": e.backend("Y")}
	e.register(tg, ports["X"])
	e.register(tg, ports["Y"])
	e.waitAnswer("X")
	e.waitAnswer("Y")

	type result struct {
		code int
		body string
	}
	slow := func() (string, chan result) {
		done := make(chan result, 1)
		go func() { code, body := e.get("/slow"); done <- result{code, body} }()
		select {
		case name := <-e.arrived:
			return name, done
		case <-time.After(10 * time.Second):
			t.Fatal("the slow request reached no backend")
		}
		return "", nil
	}
	// A request in flight to P while P is deregistered: new requests go
	// to the other, and it completes once released, within the delay.
	p, done := slow()
	other := map[string]string{"X": "Y", "Y": "X"}[p]
	e.deregister(tg, ports[p])
	for i := 0; i < 10; i++ {
		if code, body := e.get("/"); code != http.StatusOK || body != other {
			t.Errorf("request %d while %s drains: %d %q, want %s", i, p, code, body, other)
		}
	}
	e.release <- struct{}{}
	if r := <-done; r.code != http.StatusOK || r.body != p {
		t.Errorf("the request in flight to the draining %s: %d %q, want 200 %s", p, r.code, r.body, p)
	}

	// A request in flight when the delay is over (0 s) is cut.
	_, err := e.c.ModifyTargetGroupAttributes(e.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}})
	e.must(err)
	q, done := slow()
	if q != other {
		t.Fatalf("the second slow request reached %s, want %s (the only target left)", q, other)
	}
	e.deregister(tg, ports[q])
	select {
	case r := <-done:
		if r.code != http.StatusBadGateway {
			t.Errorf("the request in flight when %s's delay ended: %d %q, want 502", q, r.code, r.body)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the request in flight to %s was not cut when its deregistration delay ended", q)
	}
	close(e.release)
}
