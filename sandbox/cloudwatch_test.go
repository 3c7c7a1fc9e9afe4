package sandbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestCloudWatchMetricsAndAlarms drives CloudWatch with the SDK (Smithy
// RPCv2 CBOR): metrics in, statistics out, an alarm that goes to ALARM
// on M of N breaching periods, SetAlarmState overruled by the next
// evaluation, the history, all-or-nothing deletes and refused input.
func TestCloudWatchMetricsAndAlarms(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	cw := cloudwatch.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	dims := []cwtypes.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}}
	put := func(v float64) {
		t.Helper()
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Phoenix/Test"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Errors"), Dimensions: dims, Value: aws.Float64(v), Unit: cwtypes.StandardUnitCount}}}); err != nil {
			t.Fatalf("PutMetricData: %v", err)
		}
	}

	// Refused input, each before anything is stored.
	_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ApplicationELB"),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("RequestCount"), Value: aws.Float64(1)}}})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("PutMetricData into AWS/: %v, want InvalidParameterValue", err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("bad"), Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(2), DatapointsToAlarm: aws.Int32(3), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold})
	if apiCode(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), "DatapointsToAlarm") {
		t.Errorf("DatapointsToAlarm > EvaluationPeriods: %v", err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("bad"), Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(45), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("period 45: %v", err)
	}

	// Statistics of what was put.
	start := time.Now().Add(-time.Minute)
	for _, v := range []float64{1, 2, 3, 4} {
		put(v)
	}
	st, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"), Dimensions: dims,
		StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticSum, cwtypes.StatisticSampleCount, cwtypes.StatisticMaximum, cwtypes.StatisticAverage}})
	if err != nil {
		t.Fatalf("GetMetricStatistics: %v", err)
	}
	var sum, count, maxv float64
	for _, d := range st.Datapoints {
		sum += aws.ToFloat64(d.Sum)
		count += aws.ToFloat64(d.SampleCount)
		maxv = max(maxv, aws.ToFloat64(d.Maximum))
	}
	if sum != 10 || count != 4 || maxv != 4 {
		t.Errorf("statistics: sum %v count %v max %v, want 10 4 4 (%d datapoints)", sum, count, maxv, len(st.Datapoints))
	}
	md, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("p"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"), Dimensions: dims}, Period: aws.Int32(3600), Stat: aws.String("p50")}}}})
	if err != nil || len(md.MetricDataResults) != 1 {
		t.Fatalf("GetMetricData: %v %+v", err, md)
	}
	if r := md.MetricDataResults[0]; len(r.Values) == 0 || r.Values[0] < 2 || r.Values[0] > 3 {
		t.Errorf("p50 of 1..4: %v", r.Values)
	}
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Phoenix/Test")})
	if err != nil || len(lm.Metrics) != 1 || aws.ToString(lm.Metrics[0].MetricName) != "Errors" {
		t.Errorf("ListMetrics: %v %+v", err, lm)
	}

	// 2 of 3 periods at or over 5 -> ALARM.
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("web-errors"), Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"),
		Dimensions: dims, Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(3), DatapointsToAlarm: aws.Int32(2),
		Threshold: aws.Float64(5), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching")}); err != nil {
		t.Fatalf("PutMetricAlarm: %v", err)
	}
	describe := func() cwtypes.MetricAlarm {
		t.Helper()
		out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"web-errors"}})
		if err != nil || len(out.MetricAlarms) != 1 {
			t.Fatalf("DescribeAlarms: %v %+v", err, out)
		}
		return out.MetricAlarms[0]
	}
	if a := describe(); aws.ToInt32(a.DatapointsToAlarm) != 2 || aws.ToInt32(a.EvaluationPeriods) != 3 || aws.ToString(a.TreatMissingData) != "notBreaching" {
		t.Errorf("new alarm: %+v", a)
	}
	// Quiet periods (nothing put, notBreaching) keep it OK.
	poll(t, "alarm OK", func() (bool, string) {
		a := describe()
		return a.StateValue == cwtypes.StateValueOk, string(a.StateValue)
	})
	poll(t, "alarm in ALARM", func() (bool, string) {
		put(10)
		a := describe()
		return a.StateValue == cwtypes.StateValueAlarm, string(a.StateValue) + " " + aws.ToString(a.StateReason)
	})
	a := describe()
	if !strings.Contains(aws.ToString(a.StateReason), "greater than or equal to the threshold (5)") || !strings.Contains(aws.ToString(a.StateReasonData), "recentDatapoints") {
		t.Errorf("reason %q data %q", aws.ToString(a.StateReason), aws.ToString(a.StateReasonData))
	}
	fm, err := cw.DescribeAlarmsForMetric(ctx, &cloudwatch.DescribeAlarmsForMetricInput{Namespace: aws.String("Phoenix/Test"), MetricName: aws.String("Errors"), Dimensions: dims})
	if err != nil || len(fm.MetricAlarms) != 1 {
		t.Errorf("DescribeAlarmsForMetric: %v %+v", err, fm)
	}
	// SetAlarmState holds until the next evaluation, which the data
	// decides: still breaching, so back to ALARM.
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-errors"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("test")}); err != nil {
		t.Fatalf("SetAlarmState: %v", err)
	}
	poll(t, "alarm back in ALARM", func() (bool, string) {
		put(10)
		a := describe()
		return a.StateValue == cwtypes.StateValueAlarm, string(a.StateValue)
	})
	h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("web-errors"), HistoryItemType: cwtypes.HistoryItemTypeStateUpdate})
	if err != nil {
		t.Fatalf("DescribeAlarmHistory: %v", err)
	}
	var summaries []string
	for _, it := range h.AlarmHistoryItems {
		summaries = append(summaries, aws.ToString(it.HistorySummary))
	}
	// Newest first. The oldest is the first evaluation, from
	// INSUFFICIENT_DATA; SetAlarmState's OK is followed by ALARM again.
	n := len(summaries)
	toOK, backToAlarm := -1, -1
	for i := n - 1; i >= 0; i-- {
		switch summaries[i] {
		case "Alarm updated from ALARM to OK":
			toOK = i
		case "Alarm updated from OK to ALARM":
			if toOK >= 0 && backToAlarm < 0 {
				backToAlarm = i
			}
		}
	}
	if n == 0 || !strings.HasPrefix(summaries[n-1], "Alarm updated from INSUFFICIENT_DATA to ") || toOK < 0 || backToAlarm < 0 {
		t.Errorf("history (newest first): %q", summaries)
	}
	_, err = cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"), StateValue: cwtypes.StateValueOk, StateReason: aws.String("test")})
	var nf *cwtypes.ResourceNotFound
	if !errors.As(err, &nf) {
		t.Errorf("SetAlarmState on an unknown alarm: %v", err)
	}

	// Deletes are all or nothing.
	if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"web-errors", "nope"}}); err == nil {
		t.Error("DeleteAlarms with an unknown name succeeded")
	}
	if inv := sb.Inventory(); len(inv) != 1 || inv[0].Type != "alarm" || inv[0].Name != "web-errors" {
		t.Errorf("inventory: %+v, want the alarm", inv)
	}
	if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"web-errors"}}); err != nil {
		t.Fatalf("DeleteAlarms: %v", err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestInstanceRefreshAlarmRollsBack: a refresh whose AlarmSpecification
// names an alarm fails and rolls back when the alarm goes to ALARM; one
// naming an alarm that does not exist is refused.
func TestInstanceRefreshAlarmRollsBack(t *testing.T) {
	t.Parallel()
	e, lt, _, stop := elbEnv(t, "web", "", 2)
	defer stop()
	cw := cloudwatch.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
	e.waitGroup("web", "instances in service", settledOn("1", 2))
	_, err := e.c.StartInstanceRefresh(e.ctx, refreshInput("web", lt, "nope"), noRetry)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("refresh with an unknown alarm: %v", err)
	}
	if _, err := cw.PutMetricAlarm(e.ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("web-5xx"), Namespace: aws.String("AWS/ApplicationELB"),
		MetricName: aws.String("HTTPCode_Target_5XX_Count"), Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("ignore")}); err != nil {
		t.Fatal(err)
	}
	out, err := e.c.StartInstanceRefresh(e.ctx, refreshInput("web", lt, "web-5xx"))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.InstanceRefreshId)
	if _, err := cw.SetAlarmState(e.ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-5xx"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("test: 5xx")}); err != nil {
		t.Fatal(err)
	}
	rf := e.waitRefresh("web", id, astypes.InstanceRefreshStatusRollbackSuccessful, nil)
	if !strings.Contains(aws.ToString(rf.StatusReason), "web-5xx") {
		t.Errorf("reason %q does not name the alarm", aws.ToString(rf.StatusReason))
	}
	e.waitGroup("web", "back on version 1", settledOn("1", 2))
	if _, err := cw.DeleteAlarms(e.ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"web-5xx"}}); err != nil {
		t.Fatal(err)
	}
	e.deleteGroup("web")
	e.finish()
}

// TestLoadBalancerMetricsSimTraffic: on the sim runtime, a load balancer
// tagged with a request rate gets traffic, and its metrics follow the
// image tags of the targets: a 50% error share shows in the target 5XX
// count, the latency tag in TargetResponseTime.
func TestLoadBalancerMetricsSimTraffic(t *testing.T) {
	t.Parallel()
	e, _, tg, stop := elbEnv(t, "web", "", 2)
	defer stop()
	cfg := sandboxtest.Config(t, e.sb, asgRegion)
	cw, lbc, ec := cloudwatch.NewFromConfig(cfg), elb.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	g := e.waitGroup("web", "instances in service", settledOn("1", 2))
	waitTargetsHealthy(t, e, tg, 2)
	inst, err := ec.DescribeInstances(e.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(g.Instances[0].InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	image := aws.ToString(inst.Reservations[0].Instances[0].ImageId)
	if _, err := ec.CreateTags(e.ctx, &ec2.CreateTagsInput{Resources: []string{image}, Tags: []ec2types.Tag{
		{Key: aws.String(sandbox.TagSimErrorShare), Value: aws.String("0.5")}, {Key: aws.String(sandbox.TagSimLatencyMS), Value: aws.String("300")}}}); err != nil {
		t.Fatal(err)
	}
	// The fixture's listener has no default rule; replace it with one made
	// through the API, on a load balancer of its own.
	fixtureLB, err := lbc.DescribeLoadBalancers(e.ctx, &elb.DescribeLoadBalancersInput{Names: []string{"web"}})
	if err != nil || len(fixtureLB.LoadBalancers) != 1 {
		t.Fatalf("DescribeLoadBalancers: %v", err)
	}
	fl, err := lbc.DescribeListeners(e.ctx, &elb.DescribeListenersInput{LoadBalancerArn: fixtureLB.LoadBalancers[0].LoadBalancerArn})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range fl.Listeners {
		if _, err := lbc.DeleteListener(e.ctx, &elb.DeleteListenerInput{ListenerArn: l.ListenerArn}); err != nil {
			t.Fatal(err)
		}
	}
	lb, err := lbc.CreateLoadBalancer(e.ctx, &elb.CreateLoadBalancerInput{Name: aws.String("metrics"), Subnets: e.sb.FixtureDefaultSubnets(asgRegion),
		Tags: []elbtypes.Tag{{Key: aws.String(sandbox.TagSimRequestsPerSecond), Value: aws.String("20")}}})
	if err != nil {
		t.Fatal(err)
	}
	lbARN := aws.ToString(lb.LoadBalancers[0].LoadBalancerArn)
	l, err := lbc.CreateListener(e.ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbARN), Port: aws.Int32(80), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})
	if err != nil {
		t.Fatal(err)
	}
	lbDim := lbARN[strings.Index(lbARN, ":loadbalancer/")+len(":loadbalancer/"):]
	tgDim := tg[strings.LastIndex(tg, ":")+1:]
	dims := []cwtypes.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lbDim)}, {Name: aws.String("TargetGroup"), Value: aws.String(tgDim)}}
	stat := func(metric string, s cwtypes.Statistic) (float64, int) {
		out, err := cw.GetMetricStatistics(e.ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String(metric), Dimensions: dims,
			StartTime: aws.Time(time.Now().Add(-time.Hour)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(86400), Statistics: []cwtypes.Statistic{s}})
		if err != nil {
			t.Fatalf("GetMetricStatistics %s: %v", metric, err)
		}
		v := 0.0
		for _, d := range out.Datapoints {
			switch s {
			case cwtypes.StatisticSum:
				v += aws.ToFloat64(d.Sum)
			case cwtypes.StatisticAverage:
				v = aws.ToFloat64(d.Average)
			case cwtypes.StatisticMaximum:
				v = max(v, aws.ToFloat64(d.Maximum))
			}
		}
		return v, len(out.Datapoints)
	}
	poll(t, "400 requests", func() (bool, string) {
		n, _ := stat("RequestCount", cwtypes.StatisticSum)
		lm, _ := cw.ListMetrics(e.ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/ApplicationELB")})
		var names []string
		for _, m := range lm.Metrics {
			names = append(names, aws.ToString(m.MetricName))
		}
		return n >= 400, fmt.Sprint(n, names)
	})
	// Stop the traffic before reading, so the figures agree.
	if _, err := lbc.RemoveTags(e.ctx, &elb.RemoveTagsInput{ResourceArns: []string{lbARN}, TagKeys: []string{sandbox.TagSimRequestsPerSecond}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	requests, _ := stat("RequestCount", cwtypes.StatisticSum)
	errs, _ := stat("HTTPCode_Target_5XX_Count", cwtypes.StatisticSum)
	oks, _ := stat("HTTPCode_Target_2XX_Count", cwtypes.StatisticSum)
	if errs+oks != requests {
		t.Errorf("2xx %v + 5xx %v != requests %v", oks, errs, requests)
	}
	// Both targets run the tagged image: about half the answers are 500.
	if share := errs / requests; share < 0.35 || share > 0.65 {
		t.Errorf("5xx share %.2f of %v requests, want about 0.5", share, requests)
	}
	avg, _ := stat("TargetResponseTime", cwtypes.StatisticAverage)
	if avg < 0.24 || avg > 0.36 {
		t.Errorf("average TargetResponseTime %.3f s, want about 0.3", avg)
	}
	// The host counts are published as the load balancer health-checks,
	// which may come after the requests: wait for the count to reach 2.
	poll(t, "HealthyHostCount 2", func() (bool, string) {
		healthy, _ := stat("HealthyHostCount", cwtypes.StatisticMaximum)
		return healthy == 2, fmt.Sprintf("HealthyHostCount %v", healthy)
	})
	lm, err := cw.ListMetrics(e.ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("AWS/ApplicationELB"), Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("LoadBalancer")}}})
	if err != nil || len(lm.Metrics) < 8 {
		t.Errorf("ListMetrics: %v, %d metrics", err, len(lm.Metrics))
	}
	if _, err := lbc.DeleteListener(e.ctx, &elb.DeleteListenerInput{ListenerArn: l.Listeners[0].ListenerArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := lbc.DeleteLoadBalancer(e.ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbARN)}); err != nil {
		t.Fatal(err)
	}
	e.deleteGroup("web")
	e.finish()
}

// refreshInput is a refresh of group to version 2 of lt with auto
// rollback, failing on alarm.
func refreshInput(group, lt, alarm string) *autoscaling.StartInstanceRefreshInput {
	return &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(group),
		DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("2")}},
		Preferences: &astypes.RefreshPreferences{AutoRollback: aws.Bool(true), AlarmSpecification: &astypes.AlarmSpecification{Alarms: []string{alarm}},
			MinHealthyPercentage: aws.Int32(50), InstanceWarmup: aws.Int32(30)}}
}

// TestCloudWatchJSONProtocol: CloudWatch also answers AWS JSON 1.0 (what
// SDKs between the query protocol and RPCv2 CBOR send): a signed request
// by X-Amz-Target, timestamps as epoch seconds, errors with __type and
// the query code in X-Amzn-Query-Error.
func TestCloudWatchJSONProtocol(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	cfg := sandboxtest.Config(t, sb, "us-east-1")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call := func(action, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, sb.URL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801."+action)
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "monitoring", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s: decoding the answer: %v", action, err)
		}
		return resp.StatusCode, resp.Header, out
	}
	if code, _, out := call("PutMetricData", `{"Namespace":"Phoenix/JSON","MetricData":[{"MetricName":"Hits","Value":3,"Timestamp":`+fmt.Sprint(time.Now().Unix())+`}]}`); code != 200 {
		t.Fatalf("PutMetricData: %d %v", code, out)
	}
	_, _, out := call("ListMetrics", `{"Namespace":"Phoenix/JSON"}`)
	if ms, _ := out["Metrics"].([]any); len(ms) != 1 {
		t.Errorf("ListMetrics: %v", out)
	}
	code, hdr, out := call("SetAlarmState", `{"AlarmName":"nope","StateValue":"OK","StateReason":"x"}`)
	if code != 404 || out["__type"] != "com.amazonaws.cloudwatch#ResourceNotFound" || !strings.HasPrefix(hdr.Get("X-Amzn-Query-Error"), "ResourceNotFound;") {
		t.Errorf("SetAlarmState on an unknown alarm: %d %v %q", code, out, hdr.Get("X-Amzn-Query-Error"))
	}
}
