package sandbox_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// The instance states, lifecycle hooks, warm pools and maintenance
// policies through the unmodified AWS CLI: its requests are understood
// and its parsing of the answers gives what the SDK gives.
func TestAWSCLIInstanceStates(t *testing.T) {
	t.Parallel()
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	e, lt, _, stop := elbEnv(t, "cli", "", 2)
	defer stop()
	g := e.waitGroup("cli", "2 in service", settledOn("1", 2))
	id := firstASGInstance(t, g)
	home := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		// Debian 12's AWS CLI ignores AWS_ENDPOINT_URL: --endpoint-url too.
		cmd := exec.Command(awsCLI, append([]string{"autoscaling", "--output", "text", "--endpoint-url", e.sb.URL()}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+e.sb.URL(), "AWS_REGION="+asgRegion, "AWS_DEFAULT_REGION="+asgRegion,
			"AWS_ACCESS_KEY_ID=AKIASANDBOXTEST00001", "AWS_SECRET_ACCESS_KEY=sandbox-secret",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws autoscaling %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cli("set-instance-protection", "--auto-scaling-group-name", "cli", "--instance-ids", id, "--protected-from-scale-in")
	if got := cli("describe-auto-scaling-instances", "--instance-ids", id, "--query", "AutoScalingInstances[0].ProtectedFromScaleIn"); got != "True" {
		t.Errorf("ProtectedFromScaleIn %q", got)
	}
	// Debian 12's AWS CLI (2.9) predates instance maintenance policies
	// and the refresh's ScaleInProtectedInstances / StandbyInstances: the
	// policy is set with the SDK (TestInstanceMaintenancePolicy drives it
	// fully) and only what this CLI knows is read back below.
	if _, err := e.c.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("cli"),
		InstanceMaintenancePolicy: &types.InstanceMaintenancePolicy{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(200)}}); err != nil {
		t.Fatal(err)
	}
	cli("put-lifecycle-hook", "--auto-scaling-group-name", "cli", "--lifecycle-hook-name", "drain", "--lifecycle-transition", "autoscaling:EC2_INSTANCE_TERMINATING", "--heartbeat-timeout", "30", "--default-result", "CONTINUE")
	if got := cli("describe-lifecycle-hooks", "--auto-scaling-group-name", "cli", "--query", "LifecycleHooks[0].[LifecycleHookName,GlobalTimeout,DefaultResult]"); strings.Join(strings.Fields(got), " ") != "drain 3000 CONTINUE" {
		t.Errorf("lifecycle hook %q", got)
	}
	cli("put-warm-pool", "--auto-scaling-group-name", "cli", "--max-group-prepared-capacity", "3", "--pool-state", "Stopped")
	if got := cli("describe-warm-pool", "--auto-scaling-group-name", "cli", "--query", "WarmPoolConfiguration.[PoolState,MaxGroupPreparedCapacity]"); strings.Join(strings.Fields(got), " ") != "Stopped 3" {
		t.Errorf("warm pool %q", got)
	}
	if got := cli("enter-standby", "--auto-scaling-group-name", "cli", "--instance-ids", id, "--should-decrement-desired-capacity", "--query", "Activities[0].Description"); got != "Moving EC2 instance to Standby: "+id {
		t.Errorf("enter-standby activity %q", got)
	}
	rid := cli("start-instance-refresh", "--auto-scaling-group-name", "cli", "--desired-configuration", `{"LaunchTemplate":{"LaunchTemplateId":"`+lt+`","Version":"2"}}`, "--query", "InstanceRefreshId")
	if got := cli("describe-instance-refreshes", "--auto-scaling-group-name", "cli", "--instance-refresh-ids", rid, "--query",
		"InstanceRefreshes[0].Preferences.MinHealthyPercentage"); got != "100" {
		t.Errorf("refresh preferences %q: want the policy's percentages", got)
	}
	cli("cancel-instance-refresh", "--auto-scaling-group-name", "cli")
	e.waitRefresh("cli", rid, types.InstanceRefreshStatusCancelled, nil)
	if _, ok := asgInstanceByID(e.waitGroup("cli", "in standby", func(g types.AutoScalingGroup) bool {
		in, _ := asgInstanceByID(g, id)
		return in.LifecycleState == types.LifecycleStateStandby
	}), id); !ok {
		t.Errorf("%s left the group", id)
	}
	e.deleteGroup("cli")
	e.finish()
}
