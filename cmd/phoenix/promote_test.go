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
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// writePromoteConfig writes a phoenix.hcl with a staging environment in
// staging's region and a prod environment in prod's, each with one target
// "web"; prodExtra goes inside prod's block.
func writePromoteConfig(t *testing.T, staging, prod *deploytest.Fixture, stagingGroup, prodGroup, prodExtra string) string {
	t.Helper()
	env := func(name string, f *deploytest.Fixture, group, extra string) string {
		return fmt.Sprintf(`environment %q {
  region        = %q
  endpoint      = %q
  access_key    = "AKIASANDBOXTEST00001"
  secret_key    = "sandbox-secret"
  poll_interval = "50ms"
  target "web" {
    asg = %q
  }
  strategy "rolling" {
    min_healthy_percentage = 50
    instance_warmup        = "10s"
    health_timeout         = "30s"
  }
%s}
`, name, f.Region, f.SB.URL(), group, extra)
	}
	src := env("staging", staging, stagingGroup, "") + "\n" + env("prod", prod, prodGroup, prodExtra)
	path := filepath.Join(t.TempDir(), "phoenix.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// provenance tags an image as phoenix-ebs would and returns the tags.
func provenance(t *testing.T, f *deploytest.Fixture, ami string) map[string]string {
	t.Helper()
	tags := map[string]string{"phoenix:source-ami": "ami-0123456789abcdef0", "phoenix:build-name": "web", "phoenix:hardening-score": "97.5", "team": "web"}
	var list []ec2types.Tag
	for k, v := range tags {
		list = append(list, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := f.Clients.EC2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{ami}, Tags: list}); err != nil {
		t.Fatal(err)
	}
	return tags
}

func describeImage(t *testing.T, f *deploytest.Fixture, ami string) ec2types.Image {
	t.Helper()
	out, err := f.Clients.EC2.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil || len(out.Images) != 1 {
		t.Fatalf("describing %s: %v", ami, err)
	}
	return out.Images[0]
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestPromoteCopiesAcrossRegionsAndDeploys(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, "eu-west-1")
	prod := deploytest.New(t, staging.SB, "us-east-1")
	prod.CleanupImagesTagged(deployer.PromotedFromTag, 1)
	keyARN := prod.KMSKey("alias/phoenix-prod")

	x := staging.Image("web-2", deploytest.ImageOptions{Encrypted: true})
	want := provenance(t, staging, x)
	staging.Stack("web-staging", x, deploytest.StackOptions{Desired: 2})
	old := prod.Image("web-1", deploytest.ImageOptions{})
	prod.Stack("web-prod", old, deploytest.StackOptions{Desired: 2})
	cfg := writePromoteConfig(t, staging, prod, "web-staging", "web-prod", `  kms_key_id = "alias/phoenix-prod"
`)
	ctx := context.Background()

	// prod's key has the default key policy: Auto Scaling's role could
	// not launch a copy encrypted with it, so nothing is copied.
	staging.SB.ResetCalls()
	out, code, err := runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg)
	if code != 3 || !strings.Contains(out+fmt.Sprint(err), "aws kms create-grant --region us-east-1 --key-id "+keyARN) {
		t.Fatalf("promote under a key Auto Scaling cannot use: exit %d: %v\n%s", code, err, out)
	}
	if n := sandbox.MutatingCalls(staging.SB.Calls()); n != 0 || len(prod.ImagesTagged(deployer.PromotedFromTag)) != 0 {
		t.Fatalf("a refused promote made %d mutating calls: %v", n, staging.SB.Calls())
	}

	staging.SB.ResetCalls()
	out, code, err = runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg, "--grant-kms")
	if code != 0 {
		t.Fatalf("promote: exit %d: %v\n%s", code, err, out)
	}
	if !strings.Contains(out, "web: granted Auto Scaling's role "+deploytest.AutoScalingRole+" the use of KMS key "+keyARN+" (alias/phoenix-prod)") {
		t.Errorf("no grant line:\n%s", out)
	}
	copies := prod.ImagesTagged(deployer.PromotedFromTag)
	if len(copies) != 1 {
		t.Fatalf("%d copies in us-east-1, want 1\n%s", len(copies), out)
	}
	y := aws.ToString(copies[0].ImageId)
	var lines []string // without the copy's progress lines, whose number depends on timing
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "web: [copy] copy "+y+" is pending") {
			lines = append(lines, l)
		}
	}
	if !strings.Contains(out, "web: [copy] copy "+y+" is pending\n") {
		t.Errorf("no progress line while the copy was pending:\n%s", out)
	}
	for i, w := range []string{
		fmt.Sprintf("web: staging serves %s (web-2) in eu-west-1, healthy 2/2", x),
		fmt.Sprintf("web: copying %s (web-2) from eu-west-1 to us-east-1 as %s, encrypted with alias/phoenix-prod, tagged phoenix:promoted-from=eu-west-1:%s", x, y, x),
		fmt.Sprintf("web: copy %s is available in us-east-1 after ", y),
		`web: locked "web-prod" for deploy `,
	} {
		if len(lines) <= i || !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d is not %q:\n%s", i+1, w, out)
		}
	}
	if !strings.Contains(out, "\nweb: succeeded: ") || !strings.Contains(out, "healthy 2/2 on "+y) {
		t.Errorf("the deploy's own output is missing:\n%s", out)
	}

	// The copy is X by name and provenance, in prod's key, and prod runs it.
	cp := describeImage(t, prod, y)
	if aws.ToString(cp.Name) != "web-2" || cp.State != ec2types.ImageStateAvailable {
		t.Errorf("copy %s is %q, %s; want web-2, available", y, aws.ToString(cp.Name), cp.State)
	}
	tags := tagMap(cp.Tags)
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("copy tag %s = %q, want %q (the source's)", k, tags[k], v)
		}
	}
	if got := tags[deployer.PromotedFromTag]; got != "eu-west-1:"+x {
		t.Errorf("%s = %q, want eu-west-1:%s", deployer.PromotedFromTag, got, x)
	}
	var snaps []string
	for _, b := range cp.BlockDeviceMappings {
		if b.Ebs != nil && b.Ebs.SnapshotId != nil {
			snaps = append(snaps, *b.Ebs.SnapshotId)
		}
	}
	ds, err := prod.Clients.EC2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: snaps})
	if err != nil || len(snaps) == 0 || len(ds.Snapshots) != len(snaps) {
		t.Fatalf("snapshots %v of the copy: %v", snaps, err)
	}
	for _, s := range ds.Snapshots {
		if !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != keyARN {
			t.Errorf("snapshot %s: encrypted %v with %s, want prod's key %s", aws.ToString(s.SnapshotId), aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId), keyARN)
		}
		if tagMap(s.Tags)[deployer.PromotedFromTag] != "eu-west-1:"+x {
			t.Errorf("snapshot %s lacks %s: %v", aws.ToString(s.SnapshotId), deployer.PromotedFromTag, tagMap(s.Tags))
		}
	}
	for id, ami := range prod.InstanceAMIs("web-prod") {
		if ami != y {
			t.Errorf("prod instance %s runs %s, want the copy %s", id, ami, y)
		}
	}
	calls := staging.SB.Calls()
	if n := calls["ec2"]["CopyImage"]; n != 1 {
		t.Errorf("%d CopyImage calls, want 1", n)
	}
	if n := calls["ec2"]["ModifyImageAttribute"] + calls["ec2"]["ModifySnapshotAttribute"]; n != 0 {
		t.Errorf("%d permission changes within one account, want none", n)
	}

	// Again: the copy is found, prod is live on it, nothing changes.
	staging.SB.ResetCalls()
	out, code, err = runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg)
	if code != 0 {
		t.Fatalf("second promote: exit %d: %v\n%s", code, err, out)
	}
	if m := sandbox.MutatingCalls(staging.SB.Calls()); m != 0 {
		t.Errorf("second promote made %d mutating calls: %v", m, staging.SB.Calls())
	}
	wantOut := fmt.Sprintf(`web: staging serves %[1]s (web-2) in eu-west-1, healthy 2/2
web: found copy %[2]s made by an earlier promote (phoenix:promoted-from=eu-west-1:%[1]s), available in us-east-1
web: %[2]s is already live and healthy in prod (2/2): nothing to deploy
web: succeeded: %[2]s is already live and healthy in prod (2/2): nothing to deploy
`, x, y)
	if out != wantOut {
		t.Errorf("second promote output:\n%s\nwant:\n%s", out, wantOut)
	}

	// JSON lines: the same steps as events, then the result.
	out, code, err = runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg, "--output", "json")
	if code != 0 {
		t.Fatalf("promote --output json: exit %d: %v\n%s", code, err, out)
	}
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct {
			Type    string             `json:"type"`
			Step    string             `json:"step"`
			Outcome string             `json:"outcome"`
			AMI     string             `json:"ami"`
			Extra   []deployer.KeyText `json:"extra"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		kinds = append(kinds, v.Type+":"+v.Step+v.Outcome)
		if v.Type == "result" && v.AMI != y {
			t.Errorf("result ami %s, want %s", v.AMI, y)
		}
	}
	if got := strings.Join(kinds, " "); got != "event:read event:copy event:deploy result:succeeded" {
		t.Errorf("json lines %s:\n%s", got, out)
	}
}

func TestPromoteRefusals(t *testing.T) {
	t.Parallel()
	staging := deploytest.New(t, nil, "eu-west-1")
	prod := deploytest.New(t, staging.SB, "us-east-1")
	x := staging.Image("api-2", deploytest.ImageOptions{})
	st := staging.Stack("api-staging", x, deploytest.StackOptions{Desired: 1})
	prod.Stack("api-prod", prod.Image("api-1", deploytest.ImageOptions{}), deploytest.StackOptions{Desired: 1})
	cfg := writePromoteConfig(t, staging, prod, "api-staging", "api-prod", "")
	noGroup := writePromoteConfig(t, staging, prod, "api-staging", "nope", "")
	badKey := writePromoteConfig(t, staging, prod, "api-staging", "api-prod", `  kms_key_id = "alias/missing"
`)
	otherRegionKey := writePromoteConfig(t, staging, prod, "api-staging", "api-prod", `  kms_key_id = "arn:aws:kms:eu-west-1:123456789012:key/0f0e0d0c-1111-2222-3333-444455556666"
`)
	twoTargets := filepath.Join(t.TempDir(), "phoenix.hcl")
	os.WriteFile(twoTargets, []byte(strings.Replace(mustRead(t, cfg), `  target "web" {`, "  target \"api\" {\n    asg = \"api-staging\"\n  }\n  target \"web\" {", 1)), 0o644)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no --from", []string{"--to", "prod", "--config", cfg}, []string{"--from"}},
		{"no --to", []string{"--from", "staging", "--config", cfg}, []string{"--to"}},
		{"from is to", []string{"--from", "prod", "--to", "prod", "--config", cfg}, []string{`--from and --to are both "prod"`}},
		{"unknown --to", []string{"--from", "staging", "--to", "dev", "--config", cfg}, []string{"--to dev", `environment "dev" is not in`, "it has: prod, staging"}},
		{"unknown --from", []string{"--from", "qa", "--to", "prod", "--config", cfg}, []string{"--from qa", `environment "qa" is not in`}},
		{"bad copy timeout", []string{"--from", "staging", "--to", "prod", "--config", cfg, "--copy-timeout", "0s"}, []string{"--copy-timeout"}},
		{"bad output", []string{"--from", "staging", "--to", "prod", "--config", cfg, "--output", "yaml"}, []string{"--output"}},
		{"unknown flag", []string{"--from", "staging", "--to", "prod", "--config", cfg, "--ami", x}, []string{"--ami"}},
		{"an argument", []string{"prod", "--from", "staging", "--to", "prod", "--config", cfg}, []string{`phoenix promote: unexpected argument "prod" (usage: phoenix promote --from ENVIRONMENT --to ENVIRONMENT [flags])`}},
		{"several targets", []string{"--from", "staging", "--to", "prod", "--config", twoTargets}, []string{"--from staging", "several targets (api, web): choose one with --target"}},
		{"unknown target", []string{"--from", "staging", "--to", "prod", "--config", cfg, "--target", "db"}, []string{`target "db" is not in environment "staging"`}},
		{"no prod group", []string{"--from", "staging", "--to", "prod", "--config", noGroup}, []string{"reading what prod serves", `auto scaling group "nope" not found in us-east-1`}},
		{"missing key", []string{"--from", "staging", "--to", "prod", "--config", badKey}, []string{`kms_key_id "alias/missing" of environment prod not found in us-east-1`}},
		{"key of another region", []string{"--from", "staging", "--to", "prod", "--config", otherRegionKey}, []string{"is in eu-west-1, not in the environment's region us-east-1"}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		staging.SB.ResetCalls()
		out, code, err := runCLI(ctx, append([]string{"promote"}, tc.args...)...)
		if code != exitRefused {
			t.Errorf("%s: exit %d, want 3: %v\n%s", tc.name, code, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message does not say %q:\n%v", tc.name, w, err)
			}
		}
		if m := sandbox.MutatingCalls(staging.SB.Calls()); m != 0 {
			t.Errorf("%s: %d mutating calls: %v", tc.name, m, staging.SB.Calls())
		}
	}

	// Staging's group moved to a launch template version whose AMI fails
	// its health checks, but no instance runs it yet: what staging
	// serves is not proven, so nothing is promoted.
	bad := staging.Image("api-3", deploytest.ImageOptions{Health: "fail"})
	v, err := staging.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(st.Template), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(bad)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = staging.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("api-staging"),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template), Version: aws.String(fmt.Sprint(aws.ToInt64(v.LaunchTemplateVersion.VersionNumber)))}})
	if err != nil {
		t.Fatal(err)
	}
	staging.SB.ResetCalls()
	out, code, err := runCLI(ctx, "promote", "--from", "staging", "--to", "prod", "--config", cfg)
	if code != exitRefused {
		t.Fatalf("promote from an unproven staging: exit %d: %v\n%s", code, err, out)
	}
	for _, w := range []string{`staging's target web (group "api-staging" in eu-west-1) is not live and healthy on ` + bad, "is healthy but runs " + x + ", not " + bad} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal does not say %q:\n%v", w, err)
		}
	}
	if m := sandbox.MutatingCalls(staging.SB.Calls()); m != 0 {
		t.Errorf("refused promote made %d mutating calls: %v", m, staging.SB.Calls())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
