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

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The load balancer's real HTTP proxy (the linux runtime's, served here on
// a loopback address in any runtime) sets the AWSALBTG cookie of a sticky
// forward on the target's response and answers authentication actions as
// AWS does for a request without a session: authenticate redirects to the
// identity provider, deny answers 401, allow lets it through.
func TestELBv2ProxyStickinessAndAuthentication(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	backend := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) { io.WriteString(rw, "hello from the target") }))
	defer backend.Close()
	_, portText, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	backendPort, _ := strconv.Atoi(portText)

	// A free port on an address of the loopback network of its own.
	const addr = "127.77.0.1"
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	lb := f.createLB("proxy")
	tg := f.createTG("proxy", func(in *elb.CreateTargetGroupInput) { in.TargetType = elbtypes.TargetTypeEnumIp })
	_, err = c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(int32(backendPort)), AvailabilityZone: aws.String("all")}}})
	f.must(err)
	forward := func(order int32) elbtypes.Action {
		return elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, Order: aws.Int32(order), ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups:                []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(tg), Weight: aws.Int32(1)}},
			TargetGroupStickinessConfig: &elbtypes.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(3600)}}}
	}
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(int32(port)),
		Certificates:   []elbtypes.Certificate{{CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/0b0e6c8f-5a1d-4d3e-9b7c-2f1e0d9c8b7a")}},
		DefaultActions: []elbtypes.Action{forward(1)}})
	f.must(err)
	listener := l.Listeners[0].ListenerArn
	var rules []string
	for i, tc := range []struct {
		path   string
		action elbtypes.Action
	}{
		{"/secure/*", oidcAction("s3cret", false)},
		{"/open/*", func() elbtypes.Action {
			a := oidcAction("s3cret", false)
			a.AuthenticateOidcConfig.OnUnauthenticatedRequest = elbtypes.AuthenticateOidcActionConditionalBehaviorEnumAllow
			return a
		}()},
		{"/deny/*", func() elbtypes.Action {
			a := oidcAction("s3cret", false)
			a.AuthenticateOidcConfig.OnUnauthenticatedRequest = elbtypes.AuthenticateOidcActionConditionalBehaviorEnumDeny
			return a
		}()},
	} {
		r, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: listener, Priority: aws.Int32(int32(i + 1)), Actions: []elbtypes.Action{tc.action, forward(2)},
			Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: []string{tc.path}}}}})
		f.must(err)
		rules = append(rules, aws.ToString(r.Rules[0].RuleArn))
	}
	f.sb.ELBTestProxy(t, elbRegion, aws.ToString(lb.LoadBalancerArn), addr)

	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + net.JoinHostPort(addr, strconv.Itoa(port))
	get := func(path string) (*http.Response, string) {
		t.Helper()
		var resp *http.Response
		// The target gets requests once its registration has reached
		// the load balancer (lbpropagation.go): until then, 503.
		elbWaitFor(t, "the proxy to answer", 5*time.Second, func() bool {
			var err error
			resp, err = client.Get(base + path)
			if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
				resp.Body.Close()
				return false
			}
			return err == nil
		})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	resp, body := get("/")
	if resp.StatusCode != http.StatusOK || body != "hello from the target" {
		t.Errorf("GET /: %d %q", resp.StatusCode, body)
	}
	names := map[string]bool{}
	for _, ck := range resp.Cookies() {
		names[ck.Name] = true
	}
	if !names["AWSALBTG"] || !names["AWSALBTGCORS"] {
		t.Errorf("GET / set cookies %v, want AWSALBTG and AWSALBTGCORS", resp.Header.Values("Set-Cookie"))
	}
	resp, _ = get("/secure/page")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://idp.example.com/authorize?") || !strings.Contains(loc, "client_id=web-client") || !strings.Contains(loc, "prompt=login") {
		t.Errorf("GET /secure/page: %d, Location %q", resp.StatusCode, loc)
	}
	if resp, _ = get("/deny/page"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /deny/page: %d", resp.StatusCode)
	}
	if resp, body = get("/open/page"); resp.StatusCode != http.StatusOK || body != "hello from the target" {
		t.Errorf("GET /open/page: %d %q", resp.StatusCode, body)
	}

	for _, r := range rules {
		_, err = c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(r)})
		f.must(err)
	}
	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: listener})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tg)})
	f.must(err)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}
