package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// TestPromoteInWavesUnderPolicy: prod spans two regions in two waves and
// admits only AMIs hardened to 90 that were live in staging. phoenix
// promote copies staging's AMI to us-east-1, deploys wave by wave and
// lists every target; phoenix history shows each target's record; an AMI
// that fails the policy is refused with every failed rule, before any
// copy or change.
func TestPromoteInWavesUnderPolicy(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, "eu-west-1")
	east := deploytest.New(t, staging.SB, "us-east-1")
	east.CleanupImagesTagged(deployer.PromotedFromTag, 1)

	x := staging.Image("web-2", deploytest.ImageOptions{Encrypted: true})
	provenance(t, staging, x) // phoenix:hardening-score 97.5
	staging.Stack("web-staging", x, deploytest.StackOptions{Desired: 1})
	oldEast := east.Image("web-1", deploytest.ImageOptions{})
	east.Stack("web-prod", oldEast, deploytest.StackOptions{Desired: 1})
	oldWest := staging.Image("web-1", deploytest.ImageOptions{})
	staging.Stack("web-prod-eu", oldWest, deploytest.StackOptions{Desired: 1})
	unvetted := east.Image("web-3", deploytest.ImageOptions{Encrypted: true})

	access := fmt.Sprintf(`  endpoint      = %q
  access_key    = "AKIASANDBOXTEST00001"
  secret_key    = "sandbox-secret"
  poll_interval = "50ms"
  strategy "rolling" {
    min_healthy_percentage = 50
    instance_warmup        = "10s"
    health_timeout         = "30s"
  }
`, staging.SB.URL())
	src := `environment "staging" {
  region = "eu-west-1"
` + access + `  target "web" {
    asg = "web-staging"
  }
}

environment "prod" {
  region = "us-east-1"
` + access + `  target "use1" {
    asg = "web-prod"
  }
  target "euw1" {
    region = "eu-west-1"
    asg    = "web-prod-eu"
  }
  waves           = [["use1"], ["*"]]
  on_wave_failure = "rollback"
  policy {
    min_hardening_score = 90
    promoted_from       = "staging"
  }
}
`
	cfg := filepath.Join(t.TempDir(), "phoenix.hcl")
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Refused before anything changes: both failed rules listed.
	staging.SB.ResetCalls()
	out, code, err := runCLI(ctx, "deploy", "prod", "--config", cfg, "--ami", unvetted)
	msg := out + fmt.Sprint(err)
	if code != 3 || !strings.Contains(msg, fmt.Sprintf("AMI %s (web-3) is not admitted by environment prod's policy (2 of 2 rules failed):", unvetted)) ||
		!strings.Contains(msg, "  min_hardening_score: "+unvetted+" has no phoenix:hardening-score tag") ||
		!strings.Contains(msg, "  promoted_from: us-east-1:"+unvetted+" comes from us-east-1, where staging has no target") {
		t.Fatalf("deploy of an unvetted AMI: exit %d: %v\n%s", code, err, out)
	}
	if n := sandbox.MutatingCalls(staging.SB.Calls()); n != 0 {
		t.Fatalf("a refused deploy made %d mutating calls: %v", n, staging.SB.Calls())
	}

	out, code, err = runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg)
	if code != 0 {
		t.Fatalf("promote: exit %d: %v\n%s", code, err, out)
	}
	copies := east.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 {
		t.Fatalf("%d copies in us-east-1, want 1\n%s", len(copies), out)
	}
	y := aws.ToString(copies[0].ImageId)
	for _, want := range []string{
		"Rollout of eu-west-1:" + x + ": succeeded",
		fmt.Sprintf("  wave 1  %-12s %-14s %-16s %-22s %s", "use1", "us-east-1", "web-prod", y, "succeeded"),
		fmt.Sprintf("  wave 2  %-12s %-14s %-16s %-22s %s", "euw1", "eu-west-1", "web-prod-eu", x, "succeeded"),
		"eu-west-1:" + x + " is live and healthy on all 2 targets",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("promote output lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, "wave 1 of 2 is live and healthy"), strings.Index(out, "wave 2 of 2: euw1"); i < 0 || j < i {
		t.Errorf("wave 2 did not start after wave 1 was live:\n%s", out)
	}
	for id, ami := range east.InstanceAMIs("web-prod") {
		if ami != y {
			t.Errorf("us-east-1 instance %s runs %s, want the copy %s", id, ami, y)
		}
	}
	for id, ami := range staging.InstanceAMIs("web-prod-eu") {
		if ami != x {
			t.Errorf("eu-west-1 instance %s runs %s, want %s", id, ami, x)
		}
	}

	out, code, err = runCLI(ctx, "history", "prod", "--config", cfg, "-o", "json")
	if code != 0 {
		t.Fatalf("history: exit %d: %v\n%s", code, err, out)
	}
	var recs []deployer.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Type string `json:"type"`
			deployer.Record
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Type != "record" {
			t.Fatalf("history line %q: %v", line, err)
		}
		recs = append(recs, r.Record)
	}
	if len(recs) != 2 || recs[0].Target != "use1" || recs[0].AMI != y || recs[0].Source != "promoted from eu-west-1:"+x || recs[0].Previous != oldEast ||
		recs[1].Target != "euw1" || recs[1].AMI != x || recs[1].Previous != oldWest {
		t.Errorf("history records: %+v", recs)
	}
	for _, r := range recs {
		if r.Outcome != deployer.Succeeded || r.Environment != "prod" || r.Action != "deploy" || !strings.Contains(r.By, " as arn:aws:") {
			t.Errorf("record %+v", r)
		}
	}
	// A stricter prod refuses what staging serves before any copy or
	// change, listing the rule.
	strict := filepath.Join(t.TempDir(), "phoenix.hcl")
	if err := os.WriteFile(strict, []byte(strings.Replace(src, "min_hardening_score = 90", "min_hardening_score = 99", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	staging.SB.ResetCalls()
	out, code, err = runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", strict)
	if code != 3 || !strings.Contains(out+fmt.Sprint(err), "  min_hardening_score: "+x+" scores 97.5 (phoenix:hardening-score), the minimum is 99") {
		t.Errorf("promote under a stricter policy: exit %d: %v\n%s", code, err, out)
	}
	if n := sandbox.MutatingCalls(staging.SB.Calls()); n != 0 {
		t.Errorf("a refused promote made %d mutating calls: %v", n, staging.SB.Calls())
	}

	out, code, _ = runCLI(ctx, "history", "prod", "--config", cfg, "--target", "use1")
	if code != 0 || !strings.Contains(out, "History of use1 in us-east-1 (group web-prod, /phoenix/history/web-prod), newest first") ||
		!strings.Contains(out, "deploy   "+y+" (web-2) over "+oldEast+" to prod: succeeded") || !strings.Contains(out, "source: promoted from eu-west-1:"+x) {
		t.Errorf("history text: exit %d\n%s", code, out)
	}
}
