package deployer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// shape is what infrastructure code sets on a blue-green stack and a
// terraform plan would compare: each colour's capacity, launch template
// reference and phoenix tags, and the rule's actions.
type shape struct {
	groups  map[string]string
	actions string
}

func readShape(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen) shape {
	t.Helper()
	sh := shape{groups: map[string]string{}}
	for _, name := range []string{bg.Blue, bg.Green} {
		g := f.Group(name)
		var tags []string
		for _, tag := range g.Tags {
			if k := aws.ToString(tag.Key); strings.HasPrefix(k, "phoenix:") {
				tags = append(tags, k)
			}
		}
		sh.groups[name] = fmt.Sprintf("min %d max %d desired %d template %s version %s tags %v", aws.ToInt32(g.MinSize), aws.ToInt32(g.MaxSize), aws.ToInt32(g.DesiredCapacity),
			aws.ToString(g.LaunchTemplate.LaunchTemplateId), aws.ToString(g.LaunchTemplate.Version), tags)
	}
	out, err := f.Clients.ELB.DescribeRules(context.Background(), &elb.DescribeRulesInput{RuleArns: []string{bg.Rule}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.Rules[0].Actions {
		sh.actions += fmt.Sprintf("%s:", a.Type)
		if a.ForwardConfig != nil {
			for _, tg := range a.ForwardConfig.TargetGroups {
				sh.actions += fmt.Sprintf(" %s=%d", aws.ToString(tg.TargetGroupArn), aws.ToInt32(tg.Weight))
			}
		}
	}
	return sh
}

// returnHomeStack is a blue-green stack on "$Latest" as Terraform writes
// it: blue live with weight 100, green at 0.
func returnHomeStack(t *testing.T, img deploytest.ImageOptions) (*deploytest.Fixture, *deploytest.BlueGreen, string, string) {
	t.Helper()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", img)
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2, Rule: true, Version: "$Latest"})
	newAMI := f.Image("web-2", img)
	forwardToBlue(t, f, bg, nil)
	return f, bg, old, newAMI
}

// forwardToBlue writes the rule as Terraform's configuration has it: blue
// 100, green 0, with stickiness when given.
func forwardToBlue(t *testing.T, f *deploytest.Fixture, bg *deploytest.BlueGreen, sticky *elbtypes.TargetGroupStickinessConfig) {
	t.Helper()
	_, err := f.Clients.ELB.ModifyRule(context.Background(), &elb.ModifyRuleInput{RuleArn: aws.String(bg.Rule), Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
		ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(100)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(0)}},
			TargetGroupStickinessConfig: sticky}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBlueGreenReturnHome: with return_home a deploy ends where the
// infrastructure code put the stack (blue live with its capacity, green
// empty, the rule's weights, the groups on $Latest), with every blue
// instance on the new AMI, which served from green before blue took it.
func TestBlueGreenReturnHome(t *testing.T) {
	t.Parallel()
	f, bg, _, newAMI := returnHomeStack(t, deploytest.ImageOptions{})
	before := readShape(t, f, bg)
	var ev events
	var greenServed bool
	d := newBlueGreen(f, bg, &deployer.BlueGreen{Steps: []int{50, 100}, ReturnHome: true}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && e.Step == "home" {
			w := f.Weights(bg)
			g := readColour(t, f, bg.Green)
			greenServed = w[bg.GreenTG] == 100 && g.amis[newAMI] == 2 && g.pinned
		}
	}
	// The plan says so.
	p, err := d.Plan(context.Background(), newAMI)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, c := range p.Changes {
		plan = append(plan, c.Action+": "+c.Detail)
	}
	for _, want := range []string{
		"home: return_home: with all traffic on green (web-green), blue (web-blue) to 0 and up again to 2 on the new AMI, minimum pinned, until every target is healthy",
		"switch: blue 100% at once, green 0%",
		"unpin: blue (web-blue): minimum 2, maximum 6, as it is now",
		"scale: green (web-green) back to minimum 0, desired 0, maximum 6, as it is now, unpinned",
	} {
		if !strings.Contains(strings.Join(plan, "\n"), want) {
			t.Errorf("plan lacks %q:\n%s", want, strings.Join(plan, "\n"))
		}
	}
	res, err := d.Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("%v\n%s", err, ev.messages())
	}
	if !greenServed {
		t.Errorf("green did not serve %s with all traffic before blue came back:\n%s", newAMI, ev.messages())
	}
	if !strings.Contains(res.Message, "all traffic on blue (web-blue): every target healthy on "+newAMI) || !strings.Contains(res.Message, "back home") {
		t.Errorf("message: %s", res.Message)
	}
	f.WaitFor("green empty", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return len(g.amis) == 0, fmt.Sprint(g)
	})
	if b := readColour(t, f, bg.Blue); b.amis[newAMI] != 2 || len(b.amis) != 1 {
		t.Errorf("blue runs %v, want 2 instances of %s", b.amis, newAMI)
	}
	if after := readShape(t, f, bg); !reflect.DeepEqual(before, after) {
		t.Errorf("the stack's shape moved:\nbefore %+v\nafter  %+v", before, after)
	}
	// $Latest, which both groups launch from, names the new AMI.
	if _, ami := f.TemplateVersion(bg.Template, "$Latest"); ami != newAMI {
		t.Errorf("$Latest runs %s, want %s", ami, newAMI)
	}
}

// TestBlueGreenReturnHomeFailsOnTheWayBack: when blue cannot come back
// (here: Auto Scaling's role lost the key once the AMI had passed the gate
// on green), all traffic stays on green, which runs the vetted AMI,
// nothing is pinned, and a rerun of the same deploy goes home.
func TestBlueGreenReturnHomeFailsOnTheWayBack(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	key := f.KMSKeyForAutoScaling("alias/home")
	img := deploytest.ImageOptions{KMSKey: key}
	old := f.Image("web-1", img)
	bg := f.BlueGreen("web", old, deploytest.BlueGreenOptions{Desired: 2, Rule: true, Version: "$Latest"})
	newAMI := f.Image("web-2", img)
	forwardToBlue(t, f, bg, nil)
	before := readShape(t, f, bg)
	kc := kms.NewFromConfig(f.Config)
	setPolicy := func(policy string) {
		if _, err := kc.PutKeyPolicy(context.Background(), &kms.PutKeyPolicyInput{KeyId: aws.String(key), PolicyName: aws.String("default"), Policy: aws.String(policy)}); err != nil {
			t.Error(err)
		}
	}
	rootOnly := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root"}, "Action": "kms:*", "Resource": "*"}]}`, sandbox.AccountID)
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{ReturnHome: true}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && e.Step == "home" {
			setPolicy(rootOnly)
		}
	}
	res, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	want := newAMI + " passed the gate and serves from green (web-green), but going back to blue (web-blue) failed: all traffic stays on green"
	if !strings.Contains(res.Message, want) {
		t.Errorf("message %q, want it to say %q", res.Message, want)
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights %v, want all on green", w)
	}
	f.WaitFor("blue empty and unpinned", 20*time.Second, func() (bool, string) {
		b := readColour(t, f, bg.Blue)
		return len(b.amis) == 0 && b.desired == 0 && !b.pinned, fmt.Sprint(b)
	})
	if g := readColour(t, f, bg.Green); g.pinned || g.amis[newAMI] != 2 || g.min != 2 {
		t.Errorf("green %+v, want 2 instances of %s, minimum 2, unpinned", g, newAMI)
	}
	// Every group on $Latest again, and $Latest names the vetted AMI.
	if _, ami := f.TemplateVersion(bg.Template, "$Latest"); ami != newAMI {
		t.Errorf("$Latest runs %s, want %s", ami, newAMI)
	}
	// The role gets the key back; the same deploy again goes home.
	setPolicy(deploytest.AutoScalingKeyPolicy())
	// A deploy counts failed launches from its start, less 5 s for clock
	// skew: the rerun must not count the first run's.
	time.Sleep(6 * time.Second)
	var ev2 events
	res, err = newBlueGreen(f, bg, &deployer.BlueGreen{ReturnHome: true}, &ev2).Run(context.Background(), newAMI)
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, ev2.messages())
	}
	if !strings.Contains(ev2.messages(), "green (web-green) runs "+newAMI+" with all traffic: going back to blue (web-blue) (return_home)") {
		t.Errorf("rerun events:\n%s", ev2.messages())
	}
	f.WaitFor("green empty", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return len(g.amis) == 0, fmt.Sprint(g)
	})
	if b := readColour(t, f, bg.Blue); b.amis[newAMI] != 2 {
		t.Errorf("blue runs %v after the rerun", b.amis)
	}
	if after := readShape(t, f, bg); !reflect.DeepEqual(before, after) {
		t.Errorf("the stack's shape after the rerun:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestBlueGreenReturnHomeInterrupted: Ctrl-C on the way back to blue
// leaves all traffic on green, which runs the vetted AMI, nothing pinned
// and blue at 0; the same deploy again goes home and ends with the
// stack's shape as it was.
func TestBlueGreenReturnHomeInterrupted(t *testing.T) {
	t.Parallel()
	f, bg, _, newAMI := returnHomeStack(t, deploytest.ImageOptions{})
	before := readShape(t, f, bg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ev events
	d := newBlueGreen(f, bg, &deployer.BlueGreen{ReturnHome: true}, nil)
	d.Events = func(e deployer.Event) {
		ev.add(e)
		if e.Kind == deployer.EventStep && strings.HasPrefix(e.Message, "scaled blue (web-blue) to 2 on") {
			cancel() // Ctrl-C while blue comes back
		}
	}
	res, err := d.Run(ctx, newAMI)
	if !res.Interrupted || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted %v: %v\n%s", res.Interrupted, err, ev.messages())
	}
	if !strings.Contains(err.Error(), "unpinned green (web-green): it keeps the traffic") {
		t.Errorf("message: %v", err)
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights %v, want all on green", w)
	}
	f.WaitFor("blue empty and unpinned", 20*time.Second, func() (bool, string) {
		b := readColour(t, f, bg.Blue)
		return len(b.amis) == 0 && b.desired == 0 && !b.pinned, fmt.Sprint(b)
	})
	if g := readColour(t, f, bg.Green); g.pinned || g.amis[newAMI] != 2 {
		t.Errorf("green %+v, want 2 instances of %s, unpinned", g, newAMI)
	}
	var ev2 events
	if _, err := newBlueGreen(f, bg, &deployer.BlueGreen{ReturnHome: true}, &ev2).Run(context.Background(), newAMI); err != nil {
		t.Fatalf("rerun: %v\n%s", err, ev2.messages())
	}
	f.WaitFor("green empty", 20*time.Second, func() (bool, string) {
		g := readColour(t, f, bg.Green)
		return len(g.amis) == 0, fmt.Sprint(g)
	})
	if b := readColour(t, f, bg.Blue); b.amis[newAMI] != 2 {
		t.Errorf("blue runs %v after the rerun", b.amis)
	}
	if after := readShape(t, f, bg); !reflect.DeepEqual(before, after) {
		t.Errorf("the stack's shape after the rerun:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestBlueGreenReturnHomeRefusesStickiness: the way back empties blue
// while its sticky clients would still be sent there, so return_home on a
// sticky forward is refused before any change.
func TestBlueGreenReturnHomeRefusesStickiness(t *testing.T) {
	t.Parallel()
	f, bg, _, newAMI := returnHomeStack(t, deploytest.ImageOptions{})
	forwardToBlue(t, f, bg, &elbtypes.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(600)})
	f.SB.ResetCalls()
	d := newBlueGreen(f, bg, &deployer.BlueGreen{ReturnHome: true}, nil)
	want := "return_home with target group stickiness (10m0s)"
	if _, err := d.Plan(context.Background(), newAMI); deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("plan: %v, want refused with %q", err, want)
	}
	if _, err := d.Run(context.Background(), newAMI); deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("deploy: %v, want refused with %q", err, want)
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("the refusals made %d mutating calls", n)
	}
}
