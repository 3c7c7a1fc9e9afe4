package sandbox_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestAWSCLICloudWatch drives CloudWatch with Debian 12's unmodified AWS
// CLI (2.9, query protocol): metrics in and out, an alarm set, listed,
// forced to ALARM, its history, a refused input and the delete.
func TestAWSCLICloudWatch(t *testing.T) {
	t.Parallel()
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	sb := sandboxtest.Start(t)
	home := t.TempDir()
	run := func(args ...string) (string, error) {
		// Debian 12's AWS CLI ignores AWS_ENDPOINT_URL: --endpoint-url too.
		cmd := exec.Command(awsCLI, append([]string{"cloudwatch", "--output", "text", "--endpoint-url", sb.URL()}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=AKIASANDBOXTEST00001", "AWS_SECRET_ACCESS_KEY=sandbox-secret",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws cloudwatch %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	for _, v := range []string{"0.1", "0.2", "0.3"} {
		cli("put-metric-data", "--namespace", "Phoenix/CLI", "--metric-name", "Latency", "--dimensions", "Service=web", "--unit", "Seconds", "--value", v)
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	got := cli("get-metric-statistics", "--namespace", "Phoenix/CLI", "--metric-name", "Latency", "--dimensions", "Name=Service,Value=web",
		"--start-time", from, "--end-time", to, "--period", "86400", "--statistics", "SampleCount", "Maximum", "--query", "Datapoints[0].[SampleCount,Maximum,Unit]")
	if f := strings.Fields(got); len(f) != 3 || (f[0] != "3.0" && f[0] != "3") || f[1] != "0.3" || f[2] != "Seconds" {
		t.Errorf("get-metric-statistics: %q", got)
	}
	if got := cli("list-metrics", "--namespace", "Phoenix/CLI", "--query", "Metrics[0].Dimensions[0].Value"); got != "web" {
		t.Errorf("list-metrics: %q", got)
	}
	cli("put-metric-alarm", "--alarm-name", "web-latency", "--namespace", "Phoenix/CLI", "--metric-name", "Latency", "--dimensions", "Name=Service,Value=web",
		"--extended-statistic", "p99", "--period", "3600", "--evaluation-periods", "2", "--datapoints-to-alarm", "1", "--threshold", "0.5",
		"--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
	if got := cli("describe-alarms", "--alarm-names", "web-latency", "--query", "MetricAlarms[0].[ExtendedStatistic,EvaluationPeriods,DatapointsToAlarm,TreatMissingData]"); strings.Join(strings.Fields(got), " ") != "p99 2 1 notBreaching" {
		t.Errorf("describe-alarms: %q", got)
	}
	// A period of an hour (36 s at the test's time scale): the state set
	// by hand holds while the CLI reads it back.
	cli("set-alarm-state", "--alarm-name", "web-latency", "--state-value", "ALARM", "--state-reason", "drill")
	if got := cli("describe-alarms", "--state-value", "ALARM", "--query", "MetricAlarms[].AlarmName"); got != "web-latency" {
		t.Errorf("alarms in ALARM: %q", got)
	}
	if got := cli("describe-alarm-history", "--alarm-name", "web-latency", "--history-item-type", "StateUpdate", "--query", "AlarmHistoryItems[].HistorySummary"); !strings.Contains(got, "INSUFFICIENT_DATA to ALARM") {
		t.Errorf("history: %q", got)
	}
	if got := cli("describe-alarms-for-metric", "--namespace", "Phoenix/CLI", "--metric-name", "Latency", "--dimensions", "Name=Service,Value=web", "--query", "MetricAlarms[0].AlarmName"); got != "web-latency" {
		t.Errorf("describe-alarms-for-metric: %q", got)
	}
	if out, err := run("delete-alarms", "--alarm-names", "web-latency", "nope"); err == nil || !strings.Contains(out, "ResourceNotFound") {
		t.Errorf("delete-alarms with an unknown name: %v %s", err, out)
	}
	if out, err := run("put-metric-data", "--namespace", "AWS/EC2", "--metric-name", "x", "--value", "1"); err == nil || !strings.Contains(out, "InvalidParameterValue") {
		t.Errorf("put-metric-data into AWS/: %v %s", err, out)
	}
	cli("delete-alarms", "--alarm-names", "web-latency")
	sandboxtest.RequireEmptyInventory(t, sb)
}
