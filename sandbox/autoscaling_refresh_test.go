package sandbox_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// TestInstanceRefreshKeepsAHealthyTarget: a refresh of a group of 2 to an
// image that fails its health checks, with the default preferences (90%
// healthy, one instance at a time) and auto rollback, never leaves the
// load balancer without a healthy target. A new instance that Auto
// Scaling has just put in service, whose target the load balancer has not
// checked yet (unused with Target.InvalidState, then initial), is not
// healthy capacity: counting it as such let the refresh terminate the
// last healthy instance, and the load balancer failed open to the broken
// one.
func TestInstanceRefreshKeepsAHealthyTarget(t *testing.T) {
	t.Parallel()
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			e, lt, tg, stop := elbEnv(t, "web", "fail", 2)
			defer stop()
			// Old instances leave at once, as they do on real instances:
			// the next replacement is decided as soon as the new instance
			// is in service, before the load balancer has checked it.
			if err := e.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"instance_shutting_down": 0}}); err != nil {
				t.Fatal(err)
			}
			lbc := elb.NewFromConfig(sandboxtest.Config(t, e.sb, asgRegion))
			if _, err := lbc.ModifyTargetGroupAttributes(e.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
				Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}}); err != nil {
				t.Fatal(err)
			}
			e.waitGroup("web", "instances in service", settledOn("1", 2))
			waitTargetsHealthy(t, e, tg, 2)
			id := e.startRefresh("web", lt, "2", &types.RefreshPreferences{AutoRollback: aws.Bool(true)})
			worst := 2
			e.waitRefresh("web", id, types.InstanceRefreshStatusRollbackSuccessful, func(g types.AutoScalingGroup, rf types.InstanceRefresh) {
				ts := e.sb.FixtureTargets(asgRegion, tg)
				healthy := 0
				for _, s := range ts {
					if s == "healthy" {
						healthy++
					}
				}
				if healthy < worst {
					worst = healthy
				}
				if healthy == 0 {
					t.Errorf("no healthy target (%s): %v; group %s", rf.Status, ts, describeInstances(g))
				}
			})
			if worst != 1 {
				t.Errorf("at worst %d healthy targets, want 1 (one instance replaced at a time)", worst)
			}
			e.waitGroup("web", "back on version 1", settledOn("1", 2))
			e.deleteGroup("web")
			e.finish()
		})
	}
}
