package sandbox_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

const elbRegion = "us-east-1"

func noELBRetry(o *elb.Options) { o.Retryer = aws.NopRetryer{} }

// waitFor polls cond until it holds or the deadline passes.
func elbWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// elbFixture is a load balancer client and the default network.
type elbFixture struct {
	t       *testing.T
	sb      *sandbox.Sandbox
	c       *elb.Client
	ctx     context.Context
	vpc     string
	subnets []string
}

func newELBFixture(t *testing.T) *elbFixture {
	sb := sandboxtest.Start(t)
	vpc, subnets := sb.ELBTestNetwork(elbRegion)
	return &elbFixture{t: t, sb: sb, c: elb.NewFromConfig(sandboxtest.Config(t, sb, elbRegion)), ctx: context.Background(), vpc: vpc, subnets: subnets}
}

func (f *elbFixture) createLB(name string) elbtypes.LoadBalancer {
	f.t.Helper()
	out, err := f.c.CreateLoadBalancer(f.ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String(name), Subnets: f.subnets[:2],
		Tags: []elbtypes.Tag{{Key: aws.String("app"), Value: aws.String(name)}},
	})
	if err != nil {
		f.t.Fatalf("CreateLoadBalancer %s: %v", name, err)
	}
	return out.LoadBalancers[0]
}

func (f *elbFixture) createTG(name string, mod func(*elb.CreateTargetGroupInput)) string {
	f.t.Helper()
	in := &elb.CreateTargetGroupInput{
		Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(f.vpc),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(3), UnhealthyThresholdCount: aws.Int32(2),
	}
	if mod != nil {
		mod(in)
	}
	out, err := f.c.CreateTargetGroup(f.ctx, in)
	if err != nil {
		f.t.Fatalf("CreateTargetGroup %s: %v", name, err)
	}
	return aws.ToString(out.TargetGroups[0].TargetGroupArn)
}

func (f *elbFixture) health(tg string) map[string]elbtypes.TargetHealth {
	f.t.Helper()
	out, err := f.c.DescribeTargetHealth(f.ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		f.t.Fatalf("DescribeTargetHealth: %v", err)
	}
	m := map[string]elbtypes.TargetHealth{}
	for _, d := range out.TargetHealthDescriptions {
		m[aws.ToString(d.Target.Id)] = *d.TargetHealth
	}
	return m
}

func (f *elbFixture) waitHealth(tg, id string, state elbtypes.TargetHealthStateEnum, reason string) {
	f.t.Helper()
	elbWaitFor(f.t, fmt.Sprintf("%s in %s to be %s %s", id, tg, state, reason), 10*time.Second, func() bool {
		h, ok := f.health(tg)[id]
		return ok && h.State == state && (reason == "" || string(h.Reason) == reason)
	})
}

func (f *elbFixture) launch(image string, n int) []string {
	f.t.Helper()
	ids := f.sb.ELBTestLaunch(elbRegion, image, f.subnets[0], n)
	for _, id := range ids {
		elbWaitFor(f.t, id+" running", 5*time.Second, func() bool { return f.sb.ELBTestInstanceState(elbRegion, id) == "running" })
	}
	return ids
}

func (f *elbFixture) terminate(ids ...string) {
	f.t.Helper()
	f.sb.ELBTestTerminate(elbRegion, ids...)
	for _, id := range ids {
		elbWaitFor(f.t, id+" terminated", 5*time.Second, func() bool { return f.sb.ELBTestInstanceState(elbRegion, id) == "terminated" })
	}
}

func (f *elbFixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func elbForward(tgs map[string]int32) []elbtypes.Action {
	var tuples []elbtypes.TargetGroupTuple
	for arn, w := range tgs {
		tuples = append(tuples, elbtypes.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(w)})
	}
	return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: tuples}}}
}

func TestELBv2WeightedForwardAndHealth(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	good := f.sb.ELBTestImage(elbRegion, "")
	bad := f.sb.ELBTestImage(elbRegion, "fail")
	insts := f.launch(good, 2)
	broken := f.launch(bad, 1)[0]

	created := time.Now()
	lb := f.createLB("web")
	if lb.State.Code != elbtypes.LoadBalancerStateEnumProvisioning {
		t.Fatalf("new load balancer state %s, want provisioning", lb.State.Code)
	}
	if !regexp.MustCompile(`^web-\d{10}\.us-east-1\.elb\.amazonaws\.com$`).MatchString(aws.ToString(lb.DNSName)) {
		t.Errorf("DNSName %q", aws.ToString(lb.DNSName))
	}
	if !regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/[0-9a-f]{16}$`).MatchString(aws.ToString(lb.LoadBalancerArn)) {
		t.Errorf("LoadBalancerArn %q", aws.ToString(lb.LoadBalancerArn))
	}
	if len(lb.AvailabilityZones) != 2 || len(lb.SecurityGroups) != 1 || lb.Type != elbtypes.LoadBalancerTypeEnumApplication {
		t.Errorf("load balancer %+v", lb)
	}
	lbARN := lb.LoadBalancerArn

	blue := f.createTG("blue", nil)
	green := f.createTG("green", nil)
	idle := f.createTG("idle", nil)
	register := func(tg string, ids ...string) {
		var targets []elbtypes.TargetDescription
		for _, id := range ids {
			targets = append(targets, elbtypes.TargetDescription{Id: aws.String(id)})
		}
		_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: targets})
		f.must(err)
	}
	register(blue, insts[0], broken)
	register(green, insts[1])
	register(idle, insts[0])
	f.waitHealth(blue, insts[0], elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	if h := f.health(blue)[insts[0]]; aws.ToString(h.Description) != "Target group is not configured to receive traffic from the load balancer" {
		t.Errorf("unused description %q", aws.ToString(h.Description))
	}

	start := time.Now()
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: lbARN, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: elbForward(map[string]int32{blue: 100, green: 0}),
	})
	f.must(err)
	listenerARN := l.Listeners[0].ListenerArn
	if h := f.health(blue)[insts[0]]; h.State != elbtypes.TargetHealthStateEnumInitial && h.State != elbtypes.TargetHealthStateEnumUnused {
		t.Errorf("state right after the listener: %s", h.State)
	}
	f.waitHealth(blue, insts[0], elbtypes.TargetHealthStateEnumInitial, "Elb.RegistrationInProgress")
	f.waitHealth(blue, insts[0], elbtypes.TargetHealthStateEnumInitial, "Elb.InitialHealthChecking")
	f.waitHealth(blue, insts[0], elbtypes.TargetHealthStateEnumHealthy, "")
	// The load balancer becomes active (60 s), then three passing checks
	// five seconds apart, all scaled.
	scaled := func(s int) time.Duration {
		return time.Duration(float64(time.Duration(s)*time.Second) * sandboxtest.TimeScale)
	}
	if time.Since(created) < scaled(60+3*5) || time.Since(start) < scaled(3*5) {
		t.Errorf("healthy %v after the load balancer and %v after the listener: too early", time.Since(created), time.Since(start))
	}
	f.waitHealth(green, insts[1], elbtypes.TargetHealthStateEnumHealthy, "") // weight 0 is still checked
	f.waitHealth(blue, broken, elbtypes.TargetHealthStateEnumUnhealthy, "Target.ResponseCodeMismatch")
	if h := f.health(blue)[broken]; !strings.Contains(aws.ToString(h.Description), "[500]") {
		t.Errorf("unhealthy description %q", aws.ToString(h.Description))
	}
	if h := f.health(idle)[insts[0]]; h.State != elbtypes.TargetHealthStateEnumUnused || h.Reason != "Target.NotInUse" {
		t.Errorf("idle group target %s %s", h.State, h.Reason)
	}
	lbs, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"web"}})
	f.must(err)
	if lbs.LoadBalancers[0].State.Code != elbtypes.LoadBalancerStateEnumActive {
		t.Errorf("load balancer state %s", lbs.LoadBalancers[0].State.Code)
	}

	// Target groups list their load balancer once a listener uses them.
	tgs, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: lbARN})
	f.must(err)
	if len(tgs.TargetGroups) != 2 {
		t.Fatalf("target groups of the load balancer: %d, want 2", len(tgs.TargetGroups))
	}
	for _, tg := range tgs.TargetGroups {
		if len(tg.LoadBalancerArns) != 1 || tg.LoadBalancerArns[0] != aws.ToString(lbARN) || aws.ToInt32(tg.HealthCheckIntervalSeconds) != 5 || aws.ToString(tg.Matcher.HttpCode) != "200" {
			t.Errorf("target group %+v", tg)
		}
	}
	_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(green)}, noELBRetry)
	if apiCode(err) != "ResourceInUse" || !strings.Contains(err.Error(), "Target group '"+green+"' is currently in use by a listener or a rule") {
		t.Errorf("deleting a used target group: %v", err)
	}

	// Blue/green: shift all traffic to green.
	rules, err := c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: listenerARN})
	f.must(err)
	_, err = c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: rules.Rules[0].RuleArn, Actions: elbForward(map[string]int32{blue: 0, green: 100})})
	f.must(err)
	ls, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{aws.ToString(listenerARN)}})
	f.must(err)
	for _, tg := range ls.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups {
		if want := map[string]int32{blue: 0, green: 100}[aws.ToString(tg.TargetGroupArn)]; aws.ToInt32(tg.Weight) != want {
			t.Errorf("weight of %s = %d, want %d", aws.ToString(tg.TargetGroupArn), aws.ToInt32(tg.Weight), want)
		}
	}

	// Draining lasts the deregistration delay, then the target is gone.
	_, err = c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(blue),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("20")}}})
	f.must(err)
	drained := time.Now()
	_, err = c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(blue), Targets: []elbtypes.TargetDescription{{Id: aws.String(insts[0])}}})
	f.must(err)
	if h := f.health(blue)[insts[0]]; h.State != elbtypes.TargetHealthStateEnumDraining || h.Reason != "Target.DeregistrationInProgress" {
		t.Errorf("deregistered target %s %s", h.State, h.Reason)
	}
	elbWaitFor(t, "drained target to leave", 5*time.Second, func() bool { _, ok := f.health(blue)[insts[0]]; return !ok })
	if d := time.Since(drained); d < time.Duration(float64(20*time.Second)*sandboxtest.TimeScale) {
		t.Errorf("target left after %v, before its deregistration delay", d)
	}
	out, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(blue), Targets: []elbtypes.TargetDescription{{Id: aws.String(insts[0])}}})
	f.must(err)
	if h := out.TargetHealthDescriptions[0].TargetHealth; h.State != elbtypes.TargetHealthStateEnumUnused || h.Reason != "Target.NotRegistered" {
		t.Errorf("unregistered target %s %s", h.State, h.Reason)
	}

	// A stopped instance is unused with Target.InvalidState.
	f.sb.ELBTestStop(elbRegion, insts[1])
	f.waitHealth(green, insts[1], elbtypes.TargetHealthStateEnumUnused, "Target.InvalidState")
	elbWaitFor(t, "stopped state", 5*time.Second, func() bool {
		return aws.ToString(f.health(green)[insts[1]].Description) == "Target is in the stopped state"
	})

	// Deleting the load balancer deletes its listener and rules.
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lbARN})
	f.must(err)
	_, err = c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{aws.ToString(listenerARN)}}, noELBRetry)
	if apiCode(err) != "ListenerNotFound" {
		t.Errorf("listener after its load balancer: %v", err)
	}
	f.waitHealth(green, insts[1], elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	for _, tg := range []string{blue, green, idle} {
		_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tg)})
		f.must(err)
	}
	f.terminate(append(insts, broken)...)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}

func elbRuleSummary(rules []elbtypes.Rule) string {
	var parts []string
	for _, r := range rules {
		s := aws.ToString(r.Priority)
		for _, cnd := range r.Conditions {
			s += " " + aws.ToString(cnd.Field) + "=" + strings.Join(cnd.Values, ",")
			if cnd.HttpHeaderConfig != nil {
				s += aws.ToString(cnd.HttpHeaderConfig.HttpHeaderName) + ":" + strings.Join(cnd.HttpHeaderConfig.Values, ",")
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestELBv2ListenersAndRules(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	lb := f.createLB("rules")
	other := f.createLB("other")
	blue, green := f.createTG("blue", nil), f.createTG("green", nil)

	fixed := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
		StatusCode: aws.String("404"), ContentType: aws.String("text/plain"), MessageBody: aws.String("nope")}}}
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: fixed})
	f.must(err)
	lARN := l.Listeners[0].ListenerArn
	if !strings.Contains(aws.ToString(lARN), ":listener/app/rules/") {
		t.Errorf("listener arn %s", aws.ToString(lARN))
	}
	// Creating the same listener again is idempotent; another one on the port is not.
	again, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: fixed})
	if err != nil || aws.ToString(again.Listeners[0].ListenerArn) != aws.ToString(lARN) {
		t.Errorf("identical CreateListener: %v", err)
	}
	_, err = c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: elbForward(map[string]int32{blue: 1})}, noELBRetry)
	if apiCode(err) != "DuplicateListener" {
		t.Errorf("second listener on port 80: %v", err)
	}

	rules, err := c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: lARN})
	f.must(err)
	if len(rules.Rules) != 1 || !aws.ToBool(rules.Rules[0].IsDefault) || aws.ToString(rules.Rules[0].Priority) != "default" ||
		aws.ToString(rules.Rules[0].Actions[0].FixedResponseConfig.StatusCode) != "404" {
		t.Fatalf("default rule %+v", rules.Rules)
	}
	defaultRule := rules.Rules[0].RuleArn

	api, err := c.CreateRule(ctx, &elb.CreateRuleInput{
		ListenerArn: lARN, Priority: aws.Int32(10), Actions: elbForward(map[string]int32{blue: 80, green: 20}),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*"}}},
	})
	f.must(err)
	apiRule := api.Rules[0].RuleArn
	host, err := c.CreateRule(ctx, &elb.CreateRuleInput{
		ListenerArn: lARN, Priority: aws.Int32(5),
		Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumRedirect, RedirectConfig: &elbtypes.RedirectActionConfig{Protocol: aws.String("HTTPS"), StatusCode: elbtypes.RedirectActionStatusCodeEnumHttp301}}},
		Conditions: []elbtypes.RuleCondition{
			{Field: aws.String("host-header"), HostHeaderConfig: &elbtypes.HostHeaderConditionConfig{Values: []string{"old.example.com"}}},
			{Field: aws.String("http-header"), HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{HttpHeaderName: aws.String("X-Env"), Values: []string{"blue"}}},
		},
		Tags: []elbtypes.Tag{{Key: aws.String("kind"), Value: aws.String("redirect")}},
	})
	f.must(err)
	hostRule := host.Rules[0].RuleArn
	if rc := host.Rules[0].Actions[0].RedirectConfig; aws.ToString(rc.Port) != "#{port}" || aws.ToString(rc.Path) != "/#{path}" {
		t.Errorf("redirect defaults %+v", rc)
	}
	_, err = c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lARN, Priority: aws.Int32(10), Actions: fixed,
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/x"}}}}, noELBRetry)
	if apiCode(err) != "PriorityInUse" {
		t.Errorf("duplicate priority: %v", err)
	}
	rules, err = c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: lARN})
	f.must(err)
	if got, want := elbRuleSummary(rules.Rules), "5 host-header=old.example.com http-header=X-Env:blue; 10 path-pattern=/api/*; default"; got != want {
		t.Errorf("rules %q, want %q", got, want)
	}
	if pp := rules.Rules[1].Conditions[0].PathPatternConfig; pp == nil || pp.Values[0] != "/api/*" {
		t.Errorf("path pattern config %+v", pp)
	}

	// Paging through the rules one at a time.
	var paged []string
	p := elb.NewDescribeRulesPaginator(c, &elb.DescribeRulesInput{ListenerArn: lARN, PageSize: aws.Int32(1)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		f.must(err)
		if len(pg.Rules) != 1 {
			t.Fatalf("page of %d rules", len(pg.Rules))
		}
		paged = append(paged, aws.ToString(pg.Rules[0].Priority))
	}
	if strings.Join(paged, ",") != "5,10,default" {
		t.Errorf("paged priorities %v", paged)
	}

	// Weights change through ModifyRule; conditions too.
	mod, err := c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: apiRule, Actions: elbForward(map[string]int32{blue: 0, green: 100}),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: []string{"/v2/*"}}}}})
	f.must(err)
	fc := mod.Rules[0].Actions[0].ForwardConfig
	if len(fc.TargetGroups) != 2 || mod.Rules[0].Conditions[0].Values[0] != "/v2/*" {
		t.Errorf("modified rule %+v", mod.Rules[0])
	}
	for _, tg := range fc.TargetGroups {
		if want := map[string]int32{blue: 0, green: 100}[aws.ToString(tg.TargetGroupArn)]; aws.ToInt32(tg.Weight) != want {
			t.Errorf("weight %d, want %d", aws.ToInt32(tg.Weight), want)
		}
	}
	tgs, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{blue}})
	f.must(err)
	if len(tgs.TargetGroups[0].LoadBalancerArns) != 1 {
		t.Errorf("blue's load balancers %v", tgs.TargetGroups[0].LoadBalancerArns)
	}

	// Priorities swap in one call; the default rule has none to set.
	_, err = c.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []elbtypes.RulePriorityPair{
		{RuleArn: apiRule, Priority: aws.Int32(5)}, {RuleArn: hostRule, Priority: aws.Int32(10)}}})
	f.must(err)
	rules, err = c.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{aws.ToString(apiRule)}})
	f.must(err)
	if aws.ToString(rules.Rules[0].Priority) != "5" {
		t.Errorf("priority after swap %s", aws.ToString(rules.Rules[0].Priority))
	}

	// The default rule follows ModifyListener and cannot be deleted.
	_, err = c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: lARN, DefaultActions: elbForward(map[string]int32{green: 1})})
	f.must(err)
	rules, err = c.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{aws.ToString(defaultRule)}})
	f.must(err)
	if a := rules.Rules[0].Actions[0]; a.Type != elbtypes.ActionTypeEnumForward || aws.ToString(a.TargetGroupArn) != green {
		t.Errorf("default rule after ModifyListener %+v", a)
	}

	// Tags on every kind of ARN.
	arns := []string{aws.ToString(lb.LoadBalancerArn), blue, aws.ToString(lARN), aws.ToString(hostRule)}
	_, err = c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: arns, Tags: []elbtypes.Tag{{Key: aws.String("team"), Value: aws.String("core")}}})
	f.must(err)
	_, err = c.RemoveTags(ctx, &elb.RemoveTagsInput{ResourceArns: []string{aws.ToString(hostRule)}, TagKeys: []string{"kind"}})
	f.must(err)
	td, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: arns})
	f.must(err)
	for i, d := range td.TagDescriptions {
		want := map[int]int{0: 2, 1: 1, 2: 1, 3: 1}[i]
		if aws.ToString(d.ResourceArn) != arns[i] || len(d.Tags) != want {
			t.Errorf("tags of %s: %+v, want %d", arns[i], d.Tags, want)
		}
	}

	errCases := []struct {
		name, code string
		call       func() error
	}{
		{"delete default rule", "OperationNotPermitted", func() error {
			_, err := c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: defaultRule}, noELBRetry)
			return err
		}},
		{"default rule priority", "OperationNotPermitted", func() error {
			_, err := c.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []elbtypes.RulePriorityPair{{RuleArn: defaultRule, Priority: aws.Int32(7)}}}, noELBRetry)
			return err
		}},
		{"priority 0", "ValidationError", func() error {
			_, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lARN, Priority: aws.Int32(0), Actions: fixed,
				Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/x"}}}}, noELBRetry)
			return err
		}},
		{"bad condition field", "ValidationError", func() error {
			_, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lARN, Priority: aws.Int32(20), Actions: fixed,
				Conditions: []elbtypes.RuleCondition{{Field: aws.String("cookie"), Values: []string{"x"}}}}, noELBRetry)
			return err
		}},
		{"weight 1000", "ValidationError", func() error {
			_, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lARN, Priority: aws.Int32(20), Actions: elbForward(map[string]int32{blue: 1000}),
				Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/x"}}}}, noELBRetry)
			return err
		}},
		{"unknown target group", "TargetGroupNotFound", func() error {
			_, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lARN, Priority: aws.Int32(20),
				Actions:    elbForward(map[string]int32{strings.Replace(blue, "/blue/", "/gone/", 1): 1}),
				Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/x"}}}}, noELBRetry)
			return err
		}},
		{"target group of another load balancer", "TargetGroupAssociationLimit", func() error {
			_, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: other.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
				DefaultActions: elbForward(map[string]int32{green: 1})}, noELBRetry)
			return err
		}},
		{"unknown rule", "RuleNotFound", func() error {
			_, err := c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(aws.ToString(hostRule) + "0")}, noELBRetry)
			return err
		}},
		{"tcp listener on alb", "UnsupportedProtocol", func() error {
			_, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(81), DefaultActions: fixed}, noELBRetry)
			return err
		}},
		{"listeners without filter", "ValidationError", func() error {
			_, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{}, noELBRetry)
			return err
		}},
	}
	for _, tc := range errCases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	// Deletion order: rules and listener, then target groups.
	for _, r := range []*string{apiRule, hostRule} {
		_, err := c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: r})
		f.must(err)
	}
	_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(green)}, noELBRetry)
	if apiCode(err) != "ResourceInUse" {
		t.Errorf("green is the default action's group: %v", err)
	}
	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: lARN})
	f.must(err)
	for _, arn := range []*string{lb.LoadBalancerArn, other.LoadBalancerArn} {
		_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: arn})
		f.must(err)
	}
	for _, tg := range []string{blue, green} {
		_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tg)})
		f.must(err)
	}
	sandboxtest.RequireEmptyInventory(t, f.sb)
}

func TestELBv2ValidationPagingAndErrors(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	// An instance that stays pending however slow the run: launched while
	// pending lasts a million seconds, then the default again.
	f.must(f.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"instance_pending": 1e6}}))
	pending := f.sb.ELBTestLaunch(elbRegion, f.sb.ELBTestImage(elbRegion, ""), f.subnets[0], 1)[0]
	f.must(f.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"instance_pending": 15}}))

	lb := f.createLB("main")
	var tgARNs []string
	for i := 0; i < 5; i++ {
		tgARNs = append(tgARNs, f.createTG(fmt.Sprintf("tg-%d", i), nil))
	}
	// Identical settings return the same group; other settings conflict.
	if again := f.createTG("tg-0", nil); again != tgARNs[0] {
		t.Errorf("identical CreateTargetGroup made %s", again)
	}
	var names []string
	p := elb.NewDescribeTargetGroupsPaginator(c, &elb.DescribeTargetGroupsInput{PageSize: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		f.must(err)
		pages++
		for _, tg := range pg.TargetGroups {
			names = append(names, aws.ToString(tg.TargetGroupName))
		}
	}
	if pages != 3 || strings.Join(names, ",") != "tg-0,tg-1,tg-2,tg-3,tg-4" {
		t.Errorf("%d pages: %v", pages, names)
	}
	tg, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"tg-1"}})
	f.must(err)
	if g := tg.TargetGroups[0]; aws.ToString(g.HealthCheckPath) != "/" || aws.ToString(g.HealthCheckPort) != "traffic-port" || g.HealthCheckProtocol != elbtypes.ProtocolEnumHttp || len(g.LoadBalancerArns) != 0 {
		t.Errorf("target group defaults %+v", g)
	}
	attrs, err := c.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tgARNs[0])})
	f.must(err)
	found := false
	for _, a := range attrs.Attributes {
		if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" && aws.ToString(a.Value) == "300" {
			found = true
		}
	}
	if !found {
		t.Errorf("deregistration delay default missing: %+v", attrs.Attributes)
	}
	mtg, err := c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(tgARNs[1]), HealthCheckPath: aws.String("/healthz"), Matcher: &elbtypes.Matcher{HttpCode: aws.String("200-299")}})
	f.must(err)
	if g := mtg.TargetGroups[0]; aws.ToString(g.HealthCheckPath) != "/healthz" || aws.ToString(g.Matcher.HttpCode) != "200-299" {
		t.Errorf("modified target group %+v", g)
	}
	tcp := f.createTG("tcp", func(in *elb.CreateTargetGroupInput) {
		in.Protocol, in.HealthCheckTimeoutSeconds = elbtypes.ProtocolEnumTcp, nil
		in.HealthCheckIntervalSeconds, in.HealthyThresholdCount, in.UnhealthyThresholdCount = nil, nil, nil
	})
	tg, err = c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{tcp}})
	f.must(err)
	if g := tg.TargetGroups[0]; g.HealthCheckProtocol != elbtypes.ProtocolEnumTcp || aws.ToInt32(g.HealthCheckTimeoutSeconds) != 10 || g.Matcher != nil || g.HealthCheckPath != nil {
		t.Errorf("tcp target group %+v", g)
	}

	lbs, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(1)})
	f.must(err)
	if len(lbs.LoadBalancers) != 1 || lbs.NextMarker != nil {
		t.Errorf("one load balancer, marker %v", lbs.NextMarker)
	}
	same, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("main"), Subnets: f.subnets[:2]})
	if err != nil || aws.ToString(same.LoadBalancers[0].LoadBalancerArn) != aws.ToString(lb.LoadBalancerArn) {
		t.Errorf("identical CreateLoadBalancer: %v", err)
	}
	lbAttrs, err := c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn,
		Attributes: []elbtypes.LoadBalancerAttribute{{Key: aws.String("deletion_protection.enabled"), Value: aws.String("true")}}})
	f.must(err)
	if len(lbAttrs.Attributes) < 5 {
		t.Errorf("load balancer attributes %+v", lbAttrs.Attributes)
	}

	hc := func(mod func(*elb.CreateTargetGroupInput)) func() error {
		return func() error {
			in := &elb.CreateTargetGroupInput{Name: aws.String("bad"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(f.vpc)}
			mod(in)
			_, err := c.CreateTargetGroup(ctx, in, noELBRetry)
			return err
		}
	}
	errCases := []struct {
		name, code string
		call       func() error
	}{
		{"long name", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(strings.Repeat("a", 33)), Subnets: f.subnets[:2]}, noELBRetry)
			return err
		}},
		{"name with underscore", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("a_b"), Subnets: f.subnets[:2]}, noELBRetry)
			return err
		}},
		{"one availability zone", "ValidationError", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("one"), Subnets: f.subnets[:1]}, noELBRetry)
			return err
		}},
		{"unknown subnet", "SubnetNotFound", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("nosub"), Subnets: []string{"subnet-0123456789abcdef0", f.subnets[0]}}, noELBRetry)
			return err
		}},
		{"duplicate name other settings", "DuplicateLoadBalancerName", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("main"), Subnets: f.subnets[:3]}, noELBRetry)
			return err
		}},
		{"unknown load balancer arn", "LoadBalancerNotFound", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{aws.ToString(lb.LoadBalancerArn) + "0"}}, noELBRetry)
			return err
		}},
		{"unknown load balancer name", "LoadBalancerNotFound", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"nope"}}, noELBRetry)
			return err
		}},
		{"page size 500", "ValidationError", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(500)}, noELBRetry)
			return err
		}},
		{"bad marker", "ValidationError", func() error {
			_, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Marker: aws.String("!!")}, noELBRetry)
			return err
		}},
		{"deletion protection", "OperationNotPermitted", func() error {
			_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}, noELBRetry)
			return err
		}},
		{"unknown lb attribute", "ValidationError", func() error {
			_, err := c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn,
				Attributes: []elbtypes.LoadBalancerAttribute{{Key: aws.String("nope.enabled"), Value: aws.String("true")}}}, noELBRetry)
			return err
		}},
		{"bad tg attribute value", "ValidationError", func() error {
			_, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgARNs[0]),
				Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("4000")}}}, noELBRetry)
			return err
		}},
		{"interval 4", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.HealthCheckIntervalSeconds = aws.Int32(4) })},
		{"timeout 121", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.HealthCheckTimeoutSeconds = aws.Int32(121) })},
		{"timeout not below interval", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) {
			in.HealthCheckIntervalSeconds, in.HealthCheckTimeoutSeconds = aws.Int32(10), aws.Int32(10)
		})},
		{"healthy threshold 11", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.HealthyThresholdCount = aws.Int32(11) })},
		{"unhealthy threshold 1", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.UnhealthyThresholdCount = aws.Int32(1) })},
		{"matcher 600", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.Matcher = &elbtypes.Matcher{HttpCode: aws.String("600")} })},
		{"unknown vpc", "ValidationError", hc(func(in *elb.CreateTargetGroupInput) { in.VpcId = aws.String("vpc-0123456789abcdef0") })},
		{"duplicate target group", "DuplicateTargetGroupName", hc(func(in *elb.CreateTargetGroupInput) { in.Name = aws.String("tg-0"); in.Port = aws.Int32(8080) })},
		{"unknown target group", "TargetGroupNotFound", func() error {
			_, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARNs[0] + "0")}, noELBRetry)
			return err
		}},
		{"unknown target group name", "TargetGroupNotFound", func() error {
			_, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"nope"}}, noELBRetry)
			return err
		}},
		{"unknown instance", "InvalidTarget", func() error {
			_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARNs[0]), Targets: []elbtypes.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}}}, noELBRetry)
			return err
		}},
		{"pending instance", "InvalidTarget", func() error {
			_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgARNs[0]), Targets: []elbtypes.TargetDescription{{Id: aws.String(pending)}}}, noELBRetry)
			if err != nil && !strings.Contains(err.Error(), "The following targets are not in a running state and cannot be registered: '"+pending+"'") {
				t.Errorf("pending instance message: %v", err)
			}
			return err
		}},
		{"unknown listener", "ListenerNotFound", func() error {
			_, err := c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(strings.Replace(aws.ToString(lb.LoadBalancerArn), ":loadbalancer/", ":listener/", 1) + "/0123456789abcdef")}, noELBRetry)
			return err
		}},
		{"tags of unknown resource", "TargetGroupNotFound", func() error {
			_, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{tgARNs[0] + "0"}}, noELBRetry)
			return err
		}},
	}
	for _, tc := range errCases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	_, err = c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn,
		Attributes: []elbtypes.LoadBalancerAttribute{{Key: aws.String("deletion_protection.enabled"), Value: aws.String("false")}}})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	// Deleting again succeeds, as on AWS.
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	for _, arn := range append(tgARNs, tcp) {
		_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		f.must(err)
	}
	f.terminate(pending)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}
