package deployer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// The load balancer's edges a user meets on AWS: targets the load
// balancer does not use, for either of AWS's two reasons.

// zoneOf is a subnet's Availability Zone.
func zoneOf(t *testing.T, f *deploytest.Fixture, subnet string) string {
	t.Helper()
	out, err := f.Clients.EC2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
	if err != nil || len(out.Subnets) != 1 {
		t.Fatalf("describing subnet %s: %v", subnet, err)
	}
	return aws.ToString(out.Subnets[0].AvailabilityZone)
}

// A target group no listener or rule forwards to: status says so and
// names the fix.
func TestGateSaysNoRuleForwardsToTheTargetGroup(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("norule-1", deploytest.ImageOptions{})
	f.Stack("norule", old, deploytest.StackOptions{Desired: 1, UnusedTargetGroup: true})
	st, err := newDeployer(f, "norule", nil, nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(st.Health.Problems, "\n")
	if !strings.Contains(all, "is unused: no listener or rule forwards to target group norule-unused") || strings.Contains(all, "Availability Zone") {
		t.Errorf("problems:\n%s", all)
	}
}

// A colour whose group launches into a zone the load balancer does not
// use: plan warns, changing nothing; the deploy never sends it traffic,
// fails at health_timeout with the zone named, and rolls back.
func TestBlueGreenColourInAZoneTheLoadBalancerDoesNotUse(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 3}, deploytest.ImageOptions{})
	if len(f.Subnets) < 3 {
		t.Fatalf("the default VPC has %d subnets, the test needs 3", len(f.Subnets))
	}
	zone := zoneOf(t, f, f.Subnets[2])
	_, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(context.Background(), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(bg.Green),
		VPCZoneIdentifier: aws.String(strings.Join(f.Subnets[:3], ","))})
	if err != nil {
		t.Fatal(err)
	}

	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil)
	f.SB.ResetCalls()
	p, err := d.Plan(context.Background(), newAMI)
	if err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, c := range p.Changes {
		if c.Action == "warn" {
			warns = append(warns, c.Detail)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"web-green" launches into `+zone+", which load balancer web does not use") ||
		!strings.Contains(warns[0], "Target.NotInUse") {
		t.Errorf("plan warnings:\n%s", strings.Join(warns, "\n"))
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("plan made %d mutating calls", n)
	}

	var ev events
	d = newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	d.HealthTimeout = 5 * time.Second
	res, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v (%+v): %v\n%s", deployer.OutcomeOf(err), res, err, ev.messages())
	}
	if !strings.Contains(err.Error(), "runs in "+zone+", which the load balancer does not use") {
		t.Errorf("error does not name the zone: %v", err)
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 0 {
		t.Errorf("green got traffic: %v", w)
	}
	requireOnBlue(t, f, bg, old, 3)
}

// authenticateBlueGreen makes the stack's listener HTTPS and puts an
// authenticate-oidc action before the forward that blue-green moves, in
// the rule or in the listener's default action, and returns a reader of
// that action as AWS describes it.
func authenticateBlueGreen(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen) func() *elbtypes.AuthenticateOidcActionConfig {
	t.Helper()
	ctx := context.Background()
	oidc := elbtypes.Action{Type: elbtypes.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1), AuthenticateOidcConfig: &elbtypes.AuthenticateOidcActionConfig{
		Issuer: aws.String("https://idp.example.com"), AuthorizationEndpoint: aws.String("https://idp.example.com/authorize"),
		TokenEndpoint: aws.String("https://idp.example.com/token"), UserInfoEndpoint: aws.String("https://idp.example.com/userinfo"),
		ClientId: aws.String("web-client"), ClientSecret: aws.String("s3cret"), Scope: aws.String("openid email"),
	}}
	actions := []elbtypes.Action{oidc, {Type: elbtypes.ActionTypeEnumForward, Order: aws.Int32(2), ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
		{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(0)}}}}}
	in := &elb.ModifyListenerInput{ListenerArn: aws.String(bg.Listener), Protocol: elbtypes.ProtocolEnumHttps,
		Certificates: []elbtypes.Certificate{{CertificateArn: aws.String("arn:aws:acm:" + f.Region + ":123456789012:certificate/0b0e6c8f-5a1d-4d3e-9b7c-2f1e0d9c8b7a")}}}
	if bg.Rule == "" {
		in.DefaultActions = actions
	}
	if _, err := f.Clients.ELB.ModifyListener(ctx, in); err != nil {
		t.Fatal(err)
	}
	if bg.Rule != "" {
		if _, err := f.Clients.ELB.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(bg.Rule), Actions: actions}); err != nil {
			t.Fatal(err)
		}
	}
	return func() *elbtypes.AuthenticateOidcActionConfig {
		t.Helper()
		var got []elbtypes.Action
		if bg.Rule != "" {
			out, err := f.Clients.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{bg.Rule}})
			if err != nil {
				t.Fatal(err)
			}
			got = out.Rules[0].Actions
		} else {
			out, err := f.Clients.ELB.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{bg.Listener}})
			if err != nil {
				t.Fatal(err)
			}
			got = out.Listeners[0].DefaultActions
		}
		if len(got) != 2 || got[0].Type != elbtypes.ActionTypeEnumAuthenticateOidc || got[1].Type != elbtypes.ActionTypeEnumForward {
			t.Fatalf("actions %+v, want the OIDC action, then the forward", got)
		}
		return got[0].AuthenticateOidcConfig
	}
}

// requireOIDC checks that the authentication action is the one the user
// made.
func requireOIDC(t *testing.T, when string, cfg *elbtypes.AuthenticateOidcActionConfig) {
	t.Helper()
	if cfg == nil || aws.ToString(cfg.ClientId) != "web-client" || aws.ToString(cfg.Issuer) != "https://idp.example.com" || aws.ToString(cfg.Scope) != "openid email" || cfg.ClientSecret != nil {
		t.Errorf("%s: OIDC action %+v", when, cfg)
	}
}

// A weight change and a warm rollback keep the rule's (or the listener's)
// authentication: AWS never returns the client secret, so each move asks
// for the existing one.
func testBlueGreenKeepsAuthentication(t *testing.T, rule bool) {
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2, Rule: rule}, deploytest.ImageOptions{})
	oidc := authenticateBlueGreen(t, f, bg)
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, KeepOldFor: time.Hour}, &ev)
	if _, err := d.Run(context.Background(), newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights after the deploy %v", w)
	}
	requireOIDC(t, "after the deploy", oidc())
	res, err := d.Rollback(context.Background())
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("rollback: %+v %v\n%s", res, err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights after the rollback %v", w)
	}
	requireOIDC(t, "after the rollback", oidc())
	requireOnBlue(t, f, bg, old, 2)
}

func TestBlueGreenKeepsTheRulesAuthentication(t *testing.T) {
	t.Parallel()
	testBlueGreenKeepsAuthentication(t, true)
}

func TestBlueGreenKeepsTheListenersAuthentication(t *testing.T) {
	t.Parallel()
	testBlueGreenKeepsAuthentication(t, false)
}

// stickyClient is a browser with a cookie jar, asking the sandbox's load
// balancer which target group its requests reach.
type stickyClient struct {
	f        *deploytest.Fixture
	listener string
	cookies  map[string]*http.Cookie
}

func (c *stickyClient) targetGroup(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://web.example.com/", nil)
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rt := c.f.SB.Route(c.f.Region, c.listener, req)
	if rt.Target == "" {
		t.Fatalf("no target for the request: %+v", rt)
	}
	for _, ck := range rt.Cookies {
		if c.cookies == nil {
			c.cookies = map[string]*http.Cookie{}
		}
		c.cookies[ck.Name] = ck
	}
	return rt.TargetGroup
}

// enableStickiness turns on target group stickiness for secs in the
// listener's forward, blue live.
func enableStickiness(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen, secs int32) {
	t.Helper()
	_, err := f.Clients.ELB.ModifyListener(context.Background(), &elb.ModifyListenerInput{ListenerArn: aws.String(bg.Listener), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
		ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(0)}},
			TargetGroupStickinessConfig: &elbtypes.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(secs)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The change reaches traffic once it has propagated to the load
	// balancer's nodes (docs/sandbox.md): from then on answers carry the
	// stickiness cookie.
	f.WaitFor("stickiness to reach traffic", 10*time.Second, func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://web.example.com/", nil)
		rt := f.SB.Route(f.Region, bg.Listener, req)
		return len(rt.Cookies) > 0, fmt.Sprintf("%+v", rt)
	})
}

// A deploy that fails during a step with stickiness on: all traffic goes
// back at once, the output says how long the clients the new colour
// served keep going there, and the failed colour still scales to zero.
func TestBlueGreenFailedStepWithStickinessSaysWhoStays(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	enableStickiness(t, f, bg, 600)
	var ev events
	var rollback []string
	var mu sync.Mutex
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{10, 100}, BakeTime: time.Minute}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind != deployer.EventStep {
			return
		}
		if e.Step == "rollback" {
			mu.Lock()
			rollback = append(rollback, e.Message)
			mu.Unlock()
		}
		if e.Step == "switch" {
			if _, err := f.Clients.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{newAMI}, Tags: []ec2types.Tag{{Key: aws.String(sandbox.HealthTag), Value: aws.String("fail")}}}); err != nil {
				t.Error(err)
			}
		}
	}
	_, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	mu.Lock()
	if len(rollback) == 0 || rollback[0] != "moved all traffic back to blue (web-blue) ("+old+"); clients green served before keep going to its target group web-green for up to 10m0s (target group stickiness, AWSALBTG cookie)" {
		t.Errorf("rollback steps %q", rollback)
	}
	mu.Unlock()
	requireOnBlue(t, f, bg, old, 2)
}

// A forward with target group stickiness: a switch moves new clients at
// once while sticky ones stay on the old colour, which is therefore not
// scaled to zero until their cookies have expired; a warm rollback moves
// the traffic back in one call and says how long the new colour's sticky
// clients stay, keeping it up for them; status shows the stickiness.
func TestBlueGreenWithTargetGroupStickiness(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
	ctx := context.Background()
	// 600 s of AWS time: 6 s at the test time scale.
	const sticky = 600
	enableStickiness(t, f, bg, sticky)
	early := &stickyClient{f: f, listener: bg.Listener}
	if tg := early.targetGroup(t); tg != bg.BlueTG {
		t.Fatalf("before the deploy the client went to %s", tg)
	}

	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	p, err := d.Plan(ctx, newAMI)
	if err != nil {
		t.Fatal(err)
	}
	if last := p.Changes[len(p.Changes)-2]; last.Action != "schedule" || !strings.Contains(last.Detail, "blue (web-blue) to scale to 0 after 10m0s") {
		t.Errorf("plan's retirement: %+v", last)
	}
	start := time.Now()
	if _, err := d.Run(ctx, newAMI); err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights %v", w)
	}
	if tg := early.targetGroup(t); tg != bg.BlueTG {
		t.Errorf("the sticky client moved to %s at once", tg)
	}
	late := &stickyClient{f: f, listener: bg.Listener}
	if tg := late.targetGroup(t); tg != bg.GreenTG {
		t.Errorf("a new client went to %s", tg)
	}
	if b := readColour(t, f, bg.Blue); b.desired != 2 || b.amis[old] != 2 {
		t.Errorf("blue was scaled in while sticky clients use it: %+v", b)
	}
	at := scheduledScaleIns(t, f, bg.Blue)
	if len(at) != 1 || at[0].Before(start.Add(sticky*time.Second-time.Minute)) || at[0].After(time.Now().Add(sticky*time.Second+time.Minute)) {
		t.Errorf("blue's scheduled scale-in %v, want one %ds from now", at, sticky)
	}
	if !strings.Contains(ev.messages(), "clients blue served before keep going to its target group web-blue for up to 10m0s") {
		t.Errorf("events:\n%s", ev.messages())
	}
	st, err := d.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.StickinessSeconds != sticky {
		t.Errorf("status stickiness %d", st.StickinessSeconds)
	}
	// Another deploy now would empty blue under its sticky clients: plan
	// and deploy refuse it.
	third := f.Image("web-3", deploytest.ImageOptions{})
	f.SB.ResetCalls()
	_, err = newBlueGreen(f, bg, &deployer.BlueGreen{}, nil).Plan(ctx, third)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), "blue (web-blue) may still serve clients with a target group stickiness cookie until ") {
		t.Errorf("a plan within the stickiness window: %v", err)
	}
	_, err = newBlueGreen(f, bg, &deployer.BlueGreen{}, nil).Run(ctx, third)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), "blue (web-blue) may still serve clients with a target group stickiness cookie until ") {
		t.Errorf("a deploy within the stickiness window: %v", err)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("the refused deploy made %d mutating calls", n)
	}

	// The warm rollback: one call moves the traffic; green keeps its
	// sticky clients and its instances until their cookies expire.
	var rev events
	d.Events = rev.add
	res, err := d.Rollback(ctx)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("rollback: %+v %v\n%s", res, err, rev.messages())
	}
	if w := f.Weights(bg); w[bg.BlueTG] != 100 || w[bg.GreenTG] != 0 {
		t.Errorf("weights after the rollback %v", w)
	}
	if !strings.Contains(rev.messages(), "new clients at once; clients green served before keep going to its target group web-green for up to 10m0s") {
		t.Errorf("rollback events:\n%s", rev.messages())
	}
	if tg := late.targetGroup(t); tg != bg.GreenTG {
		t.Errorf("green's sticky client moved to %s at once", tg)
	}
	if tg := (&stickyClient{f: f, listener: bg.Listener}).targetGroup(t); tg != bg.BlueTG {
		t.Errorf("a new client after the rollback went to %s", tg)
	}
	if g := readColour(t, f, bg.Green); g.desired != 2 || g.min != 0 || g.amis[newAMI] != 2 || len(scheduledScaleIns(t, f, bg.Green)) != 1 {
		t.Errorf("green after the rollback: %+v", g)
	}
	if len(scheduledScaleIns(t, f, bg.Blue)) != 0 {
		t.Error("blue, live again, still has its scheduled scale-in")
	}
	// Once the cookies have expired, green's client is on blue and green
	// scales in by its scheduled action.
	f.WaitFor("green's sticky client back on blue", 20*time.Second, func() (bool, string) { return late.targetGroup(t) == bg.BlueTG, "" })
	f.WaitFor("green scaled in", 30*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return g.desired == 0 && len(g.amis) == 0, fmt.Sprintf("%+v", g)
	})
	if b := readColour(t, f, bg.Blue); b.amis[old] != 2 || b.min != 2 {
		t.Errorf("blue %+v", b)
	}
}
