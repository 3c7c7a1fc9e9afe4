package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

var snapPattern = regexp.MustCompile(`\bsnap-[0-9a-f]{8,17}\b`)

// normalizeSnapshots names snapshots by the image they belong to.
func normalizeSnapshots(s string, owner map[string]string) string {
	return snapPattern.ReplaceAllStringFunc(s, func(id string) string {
		if name, ok := owner[id]; ok {
			return "snap-of-" + name
		}
		return id
	})
}

// imageLines are the per-image lines of prune's text output.
func imageLines(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Not parallel: the run from flags alone sets the environment.
func TestImagesPrune(t *testing.T) {
	f := deploytest.New(t, nil, testRegion)
	ctx := context.Background()
	names := []string{"web-1", "web_2", "webapp-1", "golden-3", "web.4", "api-1", "web/5", "web-6"}
	ids := map[string]string{}
	var order []string
	for _, name := range names {
		ids[name] = f.Image(name, deploytest.ImageOptions{})
		order = append(order, ids[name])
	}
	if _, err := f.Clients.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ids["golden-3"]}, Tags: []ec2types.Tag{{Key: aws.String(deployer.FamilyTag), Value: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}
	// The group stays on version 1 (web-1) while $Latest moves to web.4.
	st := f.Stack("web", ids["web-1"], deploytest.StackOptions{Desired: 0, TargetGroups: -1})
	if _, err := f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(st.Template), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(ids["web.4"])}}); err != nil {
		t.Fatal(err)
	}
	// web_2 runs on an instance of its own.
	run, err := f.Clients.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ids["web_2"]), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(f.Subnets[0])})
	if err != nil {
		t.Fatal(err)
	}
	instance := aws.ToString(run.Instances[0].InstanceId)
	t.Cleanup(func() {
		f.Clients.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{instance}})
	})
	f.WaitFor(instance+" running", 30*time.Second, func() (bool, string) {
		d, err := f.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
		if err != nil || len(d.Reservations) == 0 {
			return false, fmt.Sprint(err)
		}
		return d.Reservations[0].Instances[0].State.Name == ec2types.InstanceStateNameRunning, ""
	})
	cfg := writeConfig(t, f, "web", "")
	before := f.OwnedImages()
	owner := map[string]string{}
	for name, id := range ids {
		for _, s := range before[id] {
			owner[s] = name
		}
	}
	var n normalizer
	n.normalize(strings.Join(order, " ")) // ami-1 is web-1, ami-2 web_2, …
	norm := func(s string) string { return normalizeSnapshots(n.normalize(s), owner) }

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"--keep", "2"}, []string{"--family"}},
			{[]string{"--family", "web"}, []string{"--keep", "rollbacks need one"}},
			{[]string{"--family", "web", "--keep", "0"}, []string{"--keep", "keep 0"}},
			{[]string{"--family", "web", "--keep", "-3"}, []string{"--keep"}},
			{[]string{"--family", "*", "--keep", "2"}, []string{"--family", "matches every image"}},
			{[]string{"--keep", "0"}, []string{"--family", "--keep"}},
			{[]string{"--family", "web", "--keep", "two"}, []string{"--keep"}},
			{[]string{"--family", "web", "--keep", "2", "--output", "yaml"}, []string{"--output"}},
			{[]string{"--family", "web", "--keep", "2", "--config", filepath.Join(t.TempDir(), "none.hcl")}, []string{"not found", "--config"}},
		} {
			f.SB.ResetCalls()
			args := append([]string{"images", "prune", "staging", "--config", cfg}, tc.args...)
			out, code, err := runCLI(ctx, args...)
			if code != exitRefused {
				t.Errorf("%v: exit %d, want 3: %v\n%s", tc.args, code, err, out)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: message does not say %q: %v", tc.args, w, err)
				}
			}
			if m := f.Mutating(); m != 0 {
				t.Errorf("%v: %d mutating calls", tc.args, m)
			}
		}
	})

	f.SB.ResetCalls()
	dry, code, err := runCLI(ctx, "images", "prune", "staging", "--config", cfg, "--family", "web", "--keep", "2", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d: %v\n%s", code, err, dry)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("dry run made %d mutating calls: %v", m, f.SB.Calls())
	}
	golden(t, "prune-dry-run.txt", norm(dry))

	out, code, err := runCLI(ctx, "images", "prune", "staging", "--config", cfg, "--family", "web", "--keep", "2")
	if code != 0 {
		t.Fatalf("prune: exit %d: %v\n%s", code, err, out)
	}
	golden(t, "prune.txt", norm(out))
	if imageLines(out) != imageLines(dry) {
		t.Errorf("the dry run decided otherwise:\n%s\nthe prune:\n%s", imageLines(dry), imageLines(out))
	}
	after := f.OwnedImages()
	left := f.OwnedSnapshots()
	for _, name := range names {
		id := ids[name]
		_, registered := after[id]
		gone := name == "golden-3" || name == "web.4"
		if registered == gone {
			t.Errorf("%s (%s): registered %v after the prune", name, id, registered)
		}
		for _, s := range before[id] {
			if left[s] == gone {
				t.Errorf("snapshot %s of %s: present %v after the prune", s, name, left[s])
			}
		}
	}

	// From flags alone, as JSON lines: nothing left to prune.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASANDBOXTEST00001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	f.SB.ResetCalls()
	out, code, err = runCLI(ctx, "images", "prune", "--region", testRegion, "--endpoint", f.SB.URL(), "--family", "web", "--keep", "2", "--output", "json")
	if code != 0 {
		t.Fatalf("prune from flags: exit %d: %v\n%s", code, err, out)
	}
	if m := f.Mutating(); m != 0 {
		t.Errorf("a prune with nothing to prune made %d mutating calls", m)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 4 image lines and a summary:\n%s", out)
	}
	for _, l := range lines[:4] {
		if !strings.HasPrefix(l, `{"type":"image","id":"ami-`) || !strings.Contains(l, `"action":"keep","reasons":[`) {
			t.Errorf("image line %s", l)
		}
	}
	if want := `{"type":"prune","region":"eu-west-1","family":"web","keep":2,"dry_run":false,"kept":4,"to_deregister":0,"deregistered":0,"snapshots_deleted":0,"failed":0,"left_behind":0}`; lines[4] != want {
		t.Errorf("summary\n%s\nwant\n%s", lines[4], want)
	}
}

func TestImagesPrunePartialFailure(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	var ids []string
	for _, name := range []string{"job-1", "job-2", "job-3"} {
		ids = append(ids, f.Image(name, deploytest.ImageOptions{}))
	}
	cfg := writeConfig(t, f, "none", "  max_retries = 1\n")
	// The first DeregisterImage fails its 2 attempts (1 retry).
	if _, err := f.SB.AddFault(sandbox.Fault{Service: "ec2", Action: "DeregisterImage", Kind: "error500", Probability: 1, Count: 2}); err != nil {
		t.Fatal(err)
	}
	out, code, err := runCLI(context.Background(), "images", "prune", "staging", "--config", cfg, "--family", "job", "--keep", "1")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1: %v\n%s", code, err, out)
	}
	if !strings.Contains(err.Error(), "1 of 2 images failed") {
		t.Errorf("error %v", err)
	}
	var n normalizer
	n.normalize(strings.Join(ids, " "))
	got := regexp.MustCompile(`snap-[0-9a-f]+`).ReplaceAllString(n.normalize(out), "snap-N")
	got = regexp.MustCompile(`failed: deregistering: .*`).ReplaceAllString(got, "failed: deregistering: …")
	want := `Pruning image family job in eu-west-1: keeping the newest 1 and every image in use
  keep        ami-3 (job-3): newest 1
  deregister  ami-2 (job-2): snapshots snap-N
  deregister  ami-1 (job-1): snapshots snap-N: failed: deregistering: …
job: deregistered 1 of 2 images, deleted 1 snapshot, kept 1; 1 failed
`
	if got != want {
		t.Errorf("output\n%s\nwant\n%s", got, want)
	}
	after := f.OwnedImages()
	if _, ok := after[ids[0]]; !ok {
		t.Errorf("%s went though deregistering it failed", ids[0])
	}
	if _, ok := after[ids[1]]; ok {
		t.Errorf("%s is still registered", ids[1])
	}
}

// TestImagesPruneLeftBehindSnapshot: a snapshot an earlier prune tagged
// and could not delete (its image deregistered, EC2 still saying it was in
// use) is listed by the next prune, dry run or not, and deleted.
func TestImagesPruneLeftBehindSnapshot(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, testRegion)
	ctx := context.Background()
	gone := f.Image("cron-1", deploytest.ImageOptions{})
	kept := f.Image("cron-2", deploytest.ImageOptions{})
	snaps := f.OwnedImages()[gone]
	// What an interrupted prune leaves: the tags, the image gone, the
	// snapshot kept (and in use for a while yet).
	if _, err := f.Clients.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: snaps, Tags: []ec2types.Tag{
		{Key: aws.String(deployer.PrunedFromTag), Value: aws.String(gone)}, {Key: aws.String(deployer.PrunedFamilyTag), Value: aws.String("cron")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Clients.EC2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, f, "none", "")
	owner := map[string]string{}
	for _, s := range snaps {
		owner[s] = "cron-1"
	}
	var n normalizer
	n.normalize(gone + " " + kept)
	for _, dry := range []bool{true, false} {
		args := []string{"images", "prune", "staging", "--config", cfg, "--family", "cron", "--keep", "1"}
		if dry {
			args = append(args, "--dry-run")
		}
		out, code, err := runCLI(ctx, args...)
		if code != 0 {
			t.Fatalf("exit %d: %v\n%s", code, err, out)
		}
		got := normalizeSnapshots(n.normalize(out), owner)
		want := `  keep        ami-2 (cron-2): newest 1
  delete      snap-of-cron-1: left behind by an earlier prune (its image ami-1 is gone)
cron: deregistered 0 images, deleted 1 snapshot, kept 1
`
		if dry {
			want = `  keep        ami-2 (cron-2): newest 1
  delete      snap-of-cron-1: left behind by an earlier prune (its image ami-1 is gone)
cron: dry run: would deregister 0 images and delete 1 snapshot, keep 1
`
		}
		if _, rest, _ := strings.Cut(got, "\n"); rest != want {
			t.Errorf("dry run %v: output\n%s\nwant\n%s", dry, got, want)
		}
	}
	left := f.OwnedSnapshots()
	for _, s := range snaps {
		if left[s] {
			t.Errorf("snapshot %s is still there", s)
		}
	}
}
