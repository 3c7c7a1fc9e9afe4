package deployer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// simBehaviour tags an image with how it answers the sim runtime's
// traffic: a share of 500s and a response time.
func simBehaviour(t *testing.T, f *deploytest.Fixture, ami, errorShare, latencyMS string) {
	t.Helper()
	var tags []ec2types.Tag
	if errorShare != "" {
		tags = append(tags, ec2types.Tag{Key: aws.String(sandbox.TagSimErrorShare), Value: aws.String(errorShare)})
	}
	if latencyMS != "" {
		tags = append(tags, ec2types.Tag{Key: aws.String(sandbox.TagSimLatencyMS), Value: aws.String(latencyMS)})
	}
	if _, err := f.Clients.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{ami}, Tags: tags}); err != nil {
		t.Fatal(err)
	}
}

// simTraffic turns on the sim runtime's traffic source on a load
// balancer: rps requests per sandbox second.
func simTraffic(t *testing.T, f *deploytest.Fixture, lb, rps string) {
	t.Helper()
	if _, err := f.Clients.ELB.AddTags(context.Background(), &elb.AddTagsInput{ResourceArns: []string{lb},
		Tags: []elbtypes.Tag{{Key: aws.String(sandbox.TagSimRequestsPerSecond), Value: aws.String(rps)}}}); err != nil {
		t.Fatal(err)
	}
}

// tgAlarm creates an alarm on a target group's metric (Sum over one
// minute at or above threshold, missing data not breaching) and deletes it
// when the test ends.
func tgAlarm(t *testing.T, f *deploytest.Fixture, name, lb, tg, metric string, threshold float64) {
	t.Helper()
	dims := []cwtypes.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lb[strings.Index(lb, ":loadbalancer/")+len(":loadbalancer/"):])},
		{Name: aws.String("TargetGroup"), Value: aws.String(tg[strings.LastIndex(tg, ":")+1:])}}
	if _, err := f.Clients.CloudWatch.PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String(name), Namespace: aws.String("AWS/ApplicationELB"),
		MetricName: aws.String(metric), Dimensions: dims, Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(threshold), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Clients.CloudWatch.DeleteAlarms(context.Background(), &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{name}})
	})
}

// TestRollingAlarmRollsBack: a rolling deploy of an image that answers
// half its requests with 500 (its /health passes) is rolled back by an
// alarm on the target group's 5XX count, and the message names the
// alarm, its metric and the value; the same deploy of a good image
// passes the alarm.
func TestRollingAlarmRollsBack(t *testing.T) {
	t.Parallel()
	for _, bad := range []bool{true, false} {
		t.Run(map[bool]string{true: "broken", false: "good"}[bad], func(t *testing.T) {
			t.Parallel()
			f := deploytest.New(t, nil, region)
			old := f.Image("web-1", deploytest.ImageOptions{})
			st := f.Stack("web", old, deploytest.StackOptions{Desired: 2})
			newAMI := f.Image("web-2", deploytest.ImageOptions{})
			if bad {
				simBehaviour(t, f, newAMI, "0.5", "")
			}
			simTraffic(t, f, st.LoadBalancer, "20")
			tgAlarm(t, f, "web-5xx", st.LoadBalancer, st.TargetGroups[0], "HTTPCode_Target_5XX_Count", 5)
			r := defaultRolling()
			// The refresh bakes 5 minutes (3 s at the sandbox's time
			// scale) while the alarm is watched: it needs a whole
			// period of the broken image's traffic to go to ALARM.
			r.Alarms, r.MinHealthyPercentage, r.BakeTime = []string{"web-5xx"}, 50, 5*time.Minute
			var ev events
			res, err := newDeployer(f, "web", r, &ev).Run(context.Background(), newAMI)
			if !bad {
				if err != nil {
					t.Fatalf("good image: %v\n%s", err, ev.messages())
				}
				return
			}
			if deployer.OutcomeOf(err) != deployer.RolledBack {
				t.Fatalf("outcome %v (%v), want rolled back\n%s", res.Outcome, err, ev.messages())
			}
			t.Logf("%v", err)
			for _, want := range []string{`alarm "web-5xx" is in ALARM`, "HTTPCode_Target_5XX_Count", "Sum"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			status, err := newDeployer(f, "web", r, nil).Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if g := status.Gates; g == nil || len(g.Alarms) != 1 || g.Alarms[0].Name != "web-5xx" || (g.Alarms[0].State != "ALARM" && g.Alarms[0].State != "OK") {
				t.Errorf("status gates %+v", g)
			}
			f.WaitFor("back on web-1", 20*time.Second, func() (bool, string) {
				for _, ami := range f.InstanceAMIs("web") {
					if ami != old {
						return false, ami
					}
				}
				return true, ""
			})
		})
	}
}

// TestBlueGreenJudge: the canary judge rolls a blue-green deploy back at
// its first step when the new colour answers half its requests with 500,
// or three times slower, and passes a good image; the verdicts carry the
// figures of both colours.
func TestBlueGreenJudge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, errorShare, latency string
		want                      string // "" for success
	}{
		{"5xx", "0.5", "", "5xx share"},
		{"latency", "", "30", "p99 response time"},
		{"good", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 2}, deploytest.ImageOptions{})
			simBehaviour(t, f, old, "", "10")
			if c.errorShare != "" || c.latency != "" {
				simBehaviour(t, f, newAMI, c.errorShare, c.latency)
			} else {
				simBehaviour(t, f, newAMI, "", "10")
			}
			simTraffic(t, f, bg.LoadBalancer, "20")
			b := &deployer.BlueGreen{Steps: []int{20, 50, 100}, BakeTime: 200 * time.Millisecond,
				Judge: &deployer.Judge{MinRequests: 40, Max5xxIncrease: 1, LatencyStatistic: "p99", MaxLatencyRatio: 1.5}}
			var ev events
			d := newBlueGreen(f, bg, b, &ev)
			_, err := d.Run(context.Background(), newAMI)
			var verdicts []*deployer.Verdict
			for _, e := range ev.all {
				if e.Verdict != nil {
					verdicts = append(verdicts, e.Verdict)
				}
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("good image: %v\n%s", err, ev.messages())
				}
				passed := map[int]bool{}
				for _, v := range verdicts {
					if v.Result == "pass" {
						passed[v.Step] = true
						if v.New.Requests < 40 || v.Old.Requests == 0 || v.New.Errors != 0 {
							t.Errorf("pass verdict with figures %+v", v)
						}
					}
				}
				for _, v := range verdicts {
					t.Logf("%s", v)
				}
				if !passed[20] || !passed[50] {
					t.Errorf("verdicts %+v, want a pass at 20%% and 50%%", verdicts)
				}
				// Status compares the colours over the last minutes.
				st, err := d.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if st.Gates == nil || st.Gates.Judge == nil || st.Gates.Judge.Result != "pass" || st.Gates.Judge.New.Colour != "green" || st.Gates.Judge.Old.Requests == 0 {
					t.Errorf("status gates %+v", st.Gates)
				} else {
					t.Logf("status: %s", st.Gates.Judge)
				}
				// And the deploy's own verdicts, from its history record.
				requireLastVerdicts(t, st.LastDeploy, deployer.Succeeded, verdicts)
				return
			}
			if deployer.OutcomeOf(err) != deployer.RolledBack || !strings.Contains(err.Error(), "canary judge failed") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("deploy: %v, want rolled back by the judge on %s\n%s", err, c.want, ev.messages())
			}
			last := verdicts[len(verdicts)-1]
			t.Logf("%s", last)
			if last.Result != "fail" || last.Step != 20 || last.New.Requests < 40 {
				t.Errorf("last verdict %+v, want a fail at the first step (20%%) after 40 requests", last)
			}
			if c.errorShare != "" && (last.New.ErrorShare < 25 || last.Old.ErrorShare != 0) {
				t.Errorf("5xx shares new %.1f%% old %.1f%%", last.New.ErrorShare, last.Old.ErrorShare)
			}
			requireOnBlue(t, f, bg, old, 2)
			st, err := d.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			requireLastVerdicts(t, st.LastDeploy, deployer.RolledBack, verdicts)
		})
	}
}

// requireLastVerdicts checks that status's last deploy is the one just
// made, with its outcome and the judge's decided verdicts in order.
func requireLastVerdicts(t *testing.T, r *deployer.Record, outcome deployer.Outcome, seen []*deployer.Verdict) {
	t.Helper()
	var want []string
	for _, v := range seen {
		if v.Result != "waiting" {
			want = append(want, v.String())
		}
	}
	if r == nil {
		t.Fatal("status has no last deploy")
	}
	var got []string
	for _, v := range r.Verdicts {
		got = append(got, v.String())
	}
	if r.Outcome != outcome || len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("last deploy %s with verdicts:\n%s\nwant %s with:\n%s", r.Outcome, strings.Join(got, "\n"), outcome, strings.Join(want, "\n"))
	}
}

// TestGatesRefuseBeforeAnyChange: an alarm that does not exist, one in
// ALARM before the deploy, and a judge without a split step are refused
// before any change.
func TestGatesRefuseBeforeAnyChange(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("web-1", deploytest.ImageOptions{})
	st := f.Stack("web", old, deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("web-2", deploytest.ImageOptions{})
	tgAlarm(t, f, "web-5xx", st.LoadBalancer, st.TargetGroups[0], "HTTPCode_Target_5XX_Count", 5)
	before := f.Mutating()
	r := defaultRolling()
	r.Alarms = []string{"web-5XX"}
	_, err := newDeployer(f, "web", r, nil).Run(context.Background(), newAMI)
	var se *deployer.SettingError
	if deployer.OutcomeOf(err) != deployer.Refused || !errors.As(err, &se) || se.Setting != "alarms" || !strings.Contains(err.Error(), `"web-5XX"`) {
		t.Errorf("unknown alarm: %v", err)
	}
	if _, err := f.Clients.CloudWatch.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-5xx"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("drill")}); err != nil {
		t.Fatal(err)
	}
	before++ // the SetAlarmState above
	r.Alarms = []string{"web-5xx"}
	_, err = newDeployer(f, "web", r, nil).Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(err.Error(), "before the deploy") {
		t.Errorf("alarm in ALARM before the deploy: %v", err)
	}
	b := &deployer.BlueGreen{Judge: &deployer.Judge{MinRequests: 10, Max5xxIncrease: 1, LatencyStatistic: "p99", MaxLatencyRatio: 1.5}}
	if errs := b.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "judge") {
		t.Errorf("judge with steps [100]: %v", errs)
	}
	if n := f.Mutating() - before; n != 0 {
		t.Errorf("%d mutating calls by refused deploys: %v", n, f.SB.Calls())
	}
}
