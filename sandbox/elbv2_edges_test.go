package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The load balancer's edges that users meet on AWS: targets in an
// Availability Zone the load balancer does not use.

// A target whose instance runs in an Availability Zone none of the load
// balancer's subnets covers is unused with Target.NotInUse and says why,
// while a target of the same group in an enabled zone is checked and
// becomes healthy.
func TestELBv2TargetInZoneNotEnabledIsUnused(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	if len(f.subnets) < 3 {
		t.Fatalf("the default VPC has %d subnets, the test needs 3", len(f.subnets))
	}
	ec := ec2.NewFromConfig(sandboxtest.Config(t, f.sb, elbRegion))
	image := f.sb.ELBTestImage(elbRegion, "")
	run := func(subnet string) string {
		out, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(subnet)})
		f.must(err)
		id := aws.ToString(out.Instances[0].InstanceId)
		elbWaitFor(t, id+" running", 5*time.Second, func() bool { return f.sb.ELBTestInstanceState(elbRegion, id) == "running" })
		return id
	}
	inZone, outOfZone := run(f.subnets[0]), run(f.subnets[2])

	lb := f.createLB("zones") // subnets[:2]
	tg := f.createTG("zones", nil)
	_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(inZone)}, {Id: aws.String(outOfZone)}}})
	f.must(err)
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: elbForward(map[string]int32{tg: 1})})
	f.must(err)

	f.waitHealth(tg, inZone, elbtypes.TargetHealthStateEnumHealthy, "")
	f.waitHealth(tg, outOfZone, elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	if h := f.health(tg)[outOfZone]; aws.ToString(h.Description) != "Target is in an Availability Zone that is not enabled for the load balancer" {
		t.Errorf("description %q", aws.ToString(h.Description))
	}
	// The zone is what decides: the same target in a group no listener
	// uses has the other description.
	idle := f.createTG("idle", nil)
	_, err = c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(idle), Targets: []elbtypes.TargetDescription{{Id: aws.String(outOfZone)}}})
	f.must(err)
	f.waitHealth(idle, outOfZone, elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	if h := f.health(idle)[outOfZone]; aws.ToString(h.Description) != "Target group is not configured to receive traffic from the load balancer" {
		t.Errorf("description in the unused group %q", aws.ToString(h.Description))
	}

	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.Listeners[0].ListenerArn})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	for _, arn := range []string{tg, idle} {
		_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		f.must(err)
	}
	f.terminate(inZone, outOfZone)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}

// oidcAction is an authenticate-oidc action at order 1; secret "" leaves
// ClientSecret out, useExisting sets UseExistingClientSecret.
func oidcAction(secret string, useExisting bool) elbtypes.Action {
	cfg := &elbtypes.AuthenticateOidcActionConfig{
		Issuer: aws.String("https://idp.example.com"), AuthorizationEndpoint: aws.String("https://idp.example.com/authorize"),
		TokenEndpoint: aws.String("https://idp.example.com/token"), UserInfoEndpoint: aws.String("https://idp.example.com/userinfo"),
		ClientId: aws.String("web-client"), AuthenticationRequestExtraParams: map[string]string{"prompt": "login"},
	}
	if secret != "" {
		cfg.ClientSecret = aws.String(secret)
	}
	if useExisting {
		cfg.UseExistingClientSecret = aws.Bool(true)
	}
	return elbtypes.Action{Type: elbtypes.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1), AuthenticateOidcConfig: cfg}
}

// Authentication actions as AWS plays them: on HTTPS listeners only,
// before the routing action; the client secret is required on create,
// never returned, and kept on a modify only with UseExistingClientSecret.
func TestELBv2AuthenticationActions(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	lb := f.createLB("auth")
	blue, green := f.createTG("blue", nil), f.createTG("green", nil)
	forward := func(order int32, wBlue, wGreen int32) elbtypes.Action {
		a := elbForward(map[string]int32{blue: wBlue, green: wGreen})[0]
		a.Order = aws.Int32(order)
		return a
	}
	cert := []elbtypes.Certificate{{CertificateArn: aws.String("arn:aws:acm:us-east-1:123456789012:certificate/0b0e6c8f-5a1d-4d3e-9b7c-2f1e0d9c8b7a")}}
	cognito := elbtypes.Action{Type: elbtypes.ActionTypeEnumAuthenticateCognito, Order: aws.Int32(1), AuthenticateCognitoConfig: &elbtypes.AuthenticateCognitoActionConfig{
		UserPoolArn: aws.String("arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_aBcDeFgHi"), UserPoolClientId: aws.String("client"), UserPoolDomain: aws.String("auth-web"),
		OnUnauthenticatedRequest: elbtypes.AuthenticateCognitoActionConditionalBehaviorEnumDeny}}

	_, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{cognito, forward(2, 1, 0)}}, noELBRetry)
	wantCode(t, "authentication on an HTTP listener", err, "InvalidLoadBalancerAction")
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttps, Port: aws.Int32(443), Certificates: cert,
		DefaultActions: []elbtypes.Action{cognito, forward(2, 1, 0)}})
	f.must(err)
	listener := l.Listeners[0].ListenerArn
	if got := l.Listeners[0].DefaultActions; len(got) != 2 || got[0].AuthenticateCognitoConfig == nil || aws.ToString(got[0].AuthenticateCognitoConfig.SessionCookieName) != "AWSELBAuthSessionCookie" ||
		got[0].AuthenticateCognitoConfig.OnUnauthenticatedRequest != elbtypes.AuthenticateCognitoActionConditionalBehaviorEnumDeny {
		t.Errorf("listener default actions %+v", got)
	}

	cond := []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: []string{"/app/*"}}}}
	for _, tc := range []struct {
		name    string
		actions []elbtypes.Action
		code    string
	}{
		{"no client secret", []elbtypes.Action{oidcAction("", false), forward(2, 1, 0)}, "ValidationError"},
		{"UseExistingClientSecret on create", []elbtypes.Action{oidcAction("", true), forward(2, 1, 0)}, "ValidationError"},
		{"authentication last", []elbtypes.Action{forward(1, 1, 0), func() elbtypes.Action { a := oidcAction("s3cret", false); a.Order = aws.Int32(2); return a }()}, "InvalidLoadBalancerAction"},
		{"http issuer", []elbtypes.Action{func() elbtypes.Action {
			a := oidcAction("s3cret", false)
			a.AuthenticateOidcConfig.Issuer = aws.String("http://idp.example.com")
			return a
		}(), forward(2, 1, 0)}, "ValidationError"},
	} {
		_, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: listener, Priority: aws.Int32(5), Conditions: cond, Actions: tc.actions}, noELBRetry)
		wantCode(t, tc.name, err, tc.code)
	}
	r, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: listener, Priority: aws.Int32(5), Conditions: cond, Actions: []elbtypes.Action{oidcAction("s3cret", false), forward(2, 1, 0)}})
	f.must(err)
	rule := r.Rules[0].RuleArn

	described := func() elbtypes.Rule {
		t.Helper()
		out, err := c.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{aws.ToString(rule)}})
		f.must(err)
		return out.Rules[0]
	}
	got := described()
	oidc := got.Actions[0].AuthenticateOidcConfig
	if oidc == nil || aws.ToString(oidc.ClientId) != "web-client" || oidc.ClientSecret != nil || oidc.AuthenticationRequestExtraParams["prompt"] != "login" ||
		aws.ToString(oidc.Scope) != "openid" || aws.ToInt64(oidc.SessionTimeout) != 604800 || oidc.OnUnauthenticatedRequest != elbtypes.AuthenticateOidcActionConditionalBehaviorEnumAuthenticate {
		t.Fatalf("described OIDC action %+v", oidc)
	}

	// A weight change that sends the action back as described has no
	// secret: refused unless it asks for the existing one.
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{{Type: got.Actions[0].Type, Order: aws.Int32(1), AuthenticateOidcConfig: oidc}, forward(2, 0, 1)}}, noELBRetry)
	wantCode(t, "modify without a secret", err, "ValidationError")
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{oidcAction("other", true), forward(2, 0, 1)}}, noELBRetry)
	wantCode(t, "both a secret and UseExistingClientSecret", err, "ValidationError")
	for i, w := range [][2]int32{{0, 1}, {1, 0}} {
		// Twice: the secret the first modify kept is there for the second.
		if _, err := c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{oidcAction("", true), forward(2, w[0], w[1])}}); err != nil {
			t.Fatalf("modify %d with UseExistingClientSecret: %v", i+1, err)
		}
	}
	if got := described(); got.Actions[0].AuthenticateOidcConfig == nil || got.Actions[0].AuthenticateOidcConfig.ClientSecret != nil {
		t.Errorf("after the modifies: %+v", got.Actions[0])
	}
	// A rule without an authentication action has no secret to keep.
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{forward(1, 1, 0)}})
	f.must(err)
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{oidcAction("", true), forward(2, 1, 0)}}, noELBRetry)
	wantCode(t, "UseExistingClientSecret with no existing secret", err, "ValidationError")
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rule, Actions: []elbtypes.Action{oidcAction("s3cret", false), forward(2, 1, 0)}})
	f.must(err)
	// The listener cannot become HTTP while its actions authenticate.
	_, err = c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: listener, Protocol: elbtypes.ProtocolEnumHttp, DefaultActions: []elbtypes.Action{forward(1, 1, 0)}}, noELBRetry)
	wantCode(t, "HTTP listener with an authenticating rule", err, "InvalidLoadBalancerAction")

	_, err = c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: rule})
	f.must(err)
	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: listener})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	for _, arn := range []string{blue, green} {
		_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		f.must(err)
	}
	sandboxtest.RequireEmptyInventory(t, f.sb)
}

// stickyClient is a client with a cookie jar that asks the sandbox where
// its requests go.
type stickyClient struct {
	sb       *sandbox.Sandbox
	listener string
	cookies  map[string]*http.Cookie
}

func (c *stickyClient) get(t *testing.T) sandbox.Route {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://web.example.com/app", nil)
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rt := c.sb.Route(elbRegion, c.listener, req)
	for _, ck := range rt.Cookies {
		if c.cookies == nil {
			c.cookies = map[string]*http.Cookie{}
		}
		c.cookies[ck.Name] = ck
	}
	return rt
}

// Target group stickiness in a weighted forward: a client stays on the
// target group that first served it across weight changes, at weight 0
// too, until the duration is over; a forged cookie counts for nothing; a
// sticky target group without targets answers 503.
func TestELBv2TargetGroupStickiness(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	// Stickiness, not propagation, is what this test is about: weight
	// changes reach traffic at once (TestELBv2Propagation plays the delay).
	if err := f.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"lb_config_propagation": 0}}); err != nil {
		t.Fatal(err)
	}
	image := f.sb.ELBTestImage(elbRegion, "")
	insts := f.launch(image, 2)
	lb := f.createLB("sticky")
	blue, green := f.createTG("blue", nil), f.createTG("green", nil)
	for i, tg := range []string{blue, green} {
		_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(insts[i])}}})
		f.must(err)
		_, err = c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
			Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}})
		f.must(err)
	}
	forward := func(wBlue, wGreen int32, sticky bool) []elbtypes.Action {
		a := elbForward(map[string]int32{blue: wBlue, green: wGreen})
		if sticky {
			a[0].ForwardConfig.TargetGroupStickinessConfig = &elbtypes.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(300)}
		}
		return a
	}
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: forward(1, 0, false)})
	f.must(err)
	listener := aws.ToString(l.Listeners[0].ListenerArn)
	f.waitHealth(blue, insts[0], elbtypes.TargetHealthStateEnumHealthy, "")
	f.waitHealth(green, insts[1], elbtypes.TargetHealthStateEnumHealthy, "")
	setWeights := func(wBlue, wGreen int32) {
		t.Helper()
		_, err := c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(listener), DefaultActions: forward(wBlue, wGreen, true)})
		f.must(err)
	}

	plain := &stickyClient{sb: f.sb, listener: listener}
	if rt := plain.get(t); rt.TargetGroup != blue || rt.Target == "" || len(rt.Cookies) != 0 {
		t.Fatalf("without stickiness: %+v", rt)
	}
	setWeights(1, 0)
	a := &stickyClient{sb: f.sb, listener: listener}
	start := time.Now()
	rt := a.get(t)
	if rt.TargetGroup != blue || a.cookies["AWSALBTG"] == nil || a.cookies["AWSALBTGCORS"] == nil {
		t.Fatalf("first sticky request: %+v", rt)
	}
	if ck := a.cookies["AWSALBTGCORS"]; ck.SameSite != http.SameSiteNoneMode || !ck.Secure {
		t.Errorf("AWSALBTGCORS %s", ck)
	}
	setWeights(0, 1)
	for i := 0; i < 20; i++ {
		if rt := a.get(t); rt.TargetGroup != blue || rt.Target == "" {
			t.Fatalf("request %d of the sticky client after the switch: %+v", i, rt)
		}
	}
	b := &stickyClient{sb: f.sb, listener: listener}
	if rt := b.get(t); rt.TargetGroup != green {
		t.Errorf("a new client after the switch went to %s", rt.TargetGroup)
	}
	forged := &stickyClient{sb: f.sb, listener: listener, cookies: map[string]*http.Cookie{"AWSALBTG": {Name: "AWSALBTG", Value: a.cookies["AWSALBTG"].Value + "A"}}}
	if rt := forged.get(t); rt.TargetGroup != green {
		t.Errorf("a forged cookie went to %s", rt.TargetGroup)
	}
	// Through the HTTP hook, as a script would ask.
	body := fmt.Sprintf(`{"region":%q,"listener_arn":%q,"path":"/app","headers":{"Cookie":"AWSALBTG=%s"}}`, elbRegion, listener, a.cookies["AWSALBTG"].Value)
	resp, err := http.Post(f.sb.URL()+"/_sandbox/route", "application/json", strings.NewReader(body))
	f.must(err)
	var hook sandbox.Route
	f.must(json.NewDecoder(resp.Body).Decode(&hook))
	resp.Body.Close()
	if hook.TargetGroup != blue || len(hook.SetCookie) != 2 {
		t.Errorf("route hook: %+v", hook)
	}

	// Blue loses its target: the sticky client gets 503, not green.
	_, err = c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(blue), Targets: []elbtypes.TargetDescription{{Id: aws.String(insts[0])}}})
	f.must(err)
	elbWaitFor(t, "blue's target gone", 10*time.Second, func() bool { return len(f.health(blue)) == 0 })
	if rt := a.get(t); rt.TargetGroup != blue || rt.Status != http.StatusServiceUnavailable {
		t.Errorf("the sticky client of an empty target group: %+v", rt)
	}
	// 300 s of AWS time after the first response the cookie is spent.
	elbWaitFor(t, "the cookie to expire", 10*time.Second, func() bool { return a.get(t).TargetGroup == green })
	if waited := time.Since(start); waited < time.Duration(float64(300*time.Second)*sandboxtest.TimeScale) {
		t.Errorf("the cookie expired after %v", waited)
	}

	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(listener)})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	for _, arn := range []string{blue, green} {
		_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		f.must(err)
	}
	f.terminate(insts...)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}
