package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// A blue-green target whose forward has target group stickiness, through
// the CLI: the deploy says until when the old colour stays up for its
// sticky clients, status shows the stickiness, and another deploy before
// then is refused (exit 3) without a change.
func TestBlueGreenStickinessThroughTheCLI(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	// Blue keeps serving its sticky clients after the switch: its
	// scale-in is scheduled for when their cookies expire, by design.
	f.Allow(func(r sandbox.Resource) bool {
		return r.Type == "scheduled-action" && strings.HasSuffix(r.ID, "-blue/"+deployer.ScaleInAction)
	})
	old := f.Image("sticky-1", deploytest.ImageOptions{})
	bg := f.BlueGreen("sticky", old, deploytest.BlueGreenOptions{Desired: 1})
	newAMI := f.Image("sticky-2", deploytest.ImageOptions{})
	third := f.Image("sticky-3", deploytest.ImageOptions{})
	ctx := context.Background()
	_, err := f.Clients.ELB.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(bg.Listener), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward,
		ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String(bg.BlueTG), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(bg.GreenTG), Weight: aws.Int32(0)}},
			TargetGroupStickinessConfig: &elbtypes.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(3600)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeBlueGreenConfig(t, f, bg, `    health_timeout = "30s"`)

	out, code, err := runCLI(ctx, "deploy", "prod", "--config", cfg, "--ami", newAMI)
	if code != 0 {
		t.Fatalf("deploy: exit %d: %v\n%s", code, err, out)
	}
	for _, want := range []string{"blue (sticky-blue) stays up on " + old + " until ", "clients blue served before keep going to its target group sticky-blue for up to 1h0m0s (target group stickiness, AWSALBTG cookie)"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy output lacks %q:\n%s", want, out)
		}
	}
	out, code, err = runCLI(ctx, "status", "prod", "--config", cfg)
	if code != 0 || !strings.Contains(out, "stickiness     target group stickiness 1h0m0s: a client stays on the colour that first served it for 1h0m0s, whatever the weights") {
		t.Errorf("status: exit %d: %v\n%s", code, err, out)
	}
	f.SB.ResetCalls()
	out, code, _ = runCLI(ctx, "deploy", "prod", "--config", cfg, "--ami", third)
	if code != 3 || !strings.Contains(out, "blue (sticky-blue) may still serve clients with a target group stickiness cookie until ") {
		t.Errorf("deploy within the stickiness window: exit %d\n%s", code, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("the refused deploy made %d mutating calls", m)
	}
}
