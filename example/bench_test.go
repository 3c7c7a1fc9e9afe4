package example

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/benchreport"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The bakes play the sandbox's AWS-like timing profile ten times faster,
// so a bake takes seconds to a minute. Both tools poll once a second where
// they allow it: phoenix-ebs's poll_interval everywhere; amazon-ebs's
// aws_polling delay_seconds (whole seconds) for its instance waits, from
// which its SDK waiters back off. Its AMI waits in v1.8.2 drop that setting
// and keep the SDK's 15 s minimum delay; a faster scale would inflate that
// cost beyond what it is on AWS.
const (
	benchTimeScale   = 0.1
	benchPollSeconds = 1
	amazonVersion    = "v1.8.2"
)

// bakeTool is one way to run the encrypted bake.
type bakeTool struct {
	name     string
	template string
	env      []string
}

// bakeRun is what one packer build cost.
type bakeRun struct {
	wall  time.Duration
	calls map[string]int // "service:Action" -> count
}

// BenchmarkBake runs the same encrypted bake with phoenix-ebs and with
// amazon-ebs (packer-plugin-amazon v1.8.2), both through the real Packer
// v1.15.0 against the sandbox: the Debian 12 source image, t3.small, no
// communicator, a customer KMS key, in one region and copied to two more
// under each region's key. It measures the wall time of `packer build`
// and counts AWS calls by action. Each iteration bakes once with each tool;
// the figures are medians over the iterations (make bench runs three).
func BenchmarkBake(b *testing.B) {
	p := installPacker(b)
	run(b, p.root, nil, "./scripts/install-plugin-amazon.sh")
	run(b, p.root, p.env, p.packer, "plugins", "install", "--path", filepath.Join(p.root, "bin", "packer-plugin-amazon"), "github.com/hashicorp/amazon")

	for _, regions := range []int{1, 3} {
		b.Run(fmt.Sprintf("regions=%d", regions), func(b *testing.B) {
			benchBake(b, p, regions)
		})
	}
}

func benchBake(b *testing.B, p *packerEnv, regions int) {
	sb := sandboxtest.StartWith(b, sandbox.Options{TimeScale: benchTimeScale})
	b.Cleanup(func() { sandboxtest.RequireEmptyInventory(b, sb) })

	copyRegions := []string{"eu-west-1", "us-west-2"}[:regions-1]
	keys := map[string]string{}
	for _, region := range append([]string{"us-east-1"}, copyRegions...) {
		keys[region] = createKey(b, sb, region)
	}
	var copyKeys []string
	for _, region := range copyRegions {
		copyKeys = append(copyKeys, fmt.Sprintf("%q=%q", region, keys[region]))
	}
	vars := []string{
		"-var", "endpoint=" + sb.URL(),
		"-var", "kms_key_id=" + keys["us-east-1"],
		"-var", "copy_kms_key_ids={" + strings.Join(copyKeys, ",") + "}",
		"-var", "poll_seconds=" + strconv.Itoa(benchPollSeconds),
	}
	tools := []bakeTool{
		{name: "phoenix-ebs", template: "example/testdata/bench-phoenix-ebs.pkr.hcl", env: p.env},
		// amazon-ebs reaches STS and KMS through the standard endpoint variable.
		{name: "amazon-ebs", template: "example/testdata/bench-amazon-ebs.pkr.hcl", env: append([]string{"AWS_ENDPOINT_URL=" + sb.URL()}, p.env...)},
	}
	for _, tl := range tools {
		run(b, p.root, tl.env, p.packer, append(append([]string{"validate", "-var", "ami_name=bench"}, vars...), tl.template)...)
	}

	runs := map[string][]bakeRun{}
	i := 0
	for b.Loop() {
		// Alternate which tool bakes first, so neither always meets a
		// sandbox that has just been busy.
		order := tools
		if i%2 == 1 {
			order = []bakeTool{tools[1], tools[0]}
		}
		for _, tl := range order {
			name := fmt.Sprintf("bench-%s-%d-%d", tl.name, regions, i)
			sb.ResetCalls()
			start := time.Now()
			out := run(b, p.root, tl.env, p.packer, append(append([]string{"build", "-var", "ami_name=" + name}, vars...), tl.template)...)
			wall := time.Since(start)
			calls := flatten(sb.Calls())
			if !strings.Contains(out, "AMIs were created") {
				b.Fatalf("%s: packer build output lacks the artifact:\n%s", tl.name, out)
			}
			requireEncryptedImages(b, sb, name, keys)
			runs[tl.name] = append(runs[tl.name], bakeRun{wall: wall, calls: calls})
		}
		i++
	}

	ph, am := runs["phoenix-ebs"], runs["amazon-ebs"]
	phWall, amWall := medianWall(ph), medianWall(am)
	phCalls, amCalls := medianCalls(ph), medianCalls(am)
	phTotal, amTotal := medianOf(ph, totalCalls), medianOf(am, totalCalls)
	phMut, amMut := medianOf(ph, mutatingCalls), medianOf(am, mutatingCalls)
	b.ReportMetric(phWall, "phoenix-ebs-s/bake")
	b.ReportMetric(amWall, "amazon-ebs-s/bake")
	b.ReportMetric(phWall/amWall, "wall-ratio")
	b.ReportMetric(phTotal, "phoenix-ebs-calls/bake")
	b.ReportMetric(amTotal, "amazon-ebs-calls/bake")
	b.ReportMetric(phTotal/amTotal, "calls-ratio")

	settings := fmt.Sprintf("phoenix-ebs poll_interval %ds; amazon-ebs aws_polling delay %ds (its AMI waits keep the SDK's 15s); time scale %g; median of %d",
		benchPollSeconds, benchPollSeconds, benchTimeScale, len(ph))
	where := "1 region"
	if regions > 1 {
		where = fmt.Sprintf("%d regions", regions)
	}
	vs := "phoenix-ebs vs amazon-ebs " + amazonVersion
	if err := benchreport.Add(
		benchreport.NewRow(fmt.Sprintf("bake, encrypted, %s: wall time (%s)", where, vs), phWall, amWall, "s", settings),
		benchreport.NewRow(fmt.Sprintf("bake, encrypted, %s: AWS calls (%s)", where, vs), phTotal, amTotal, "calls", settings),
		benchreport.NewRow(fmt.Sprintf("bake, encrypted, %s: mutating AWS calls (%s)", where, vs), phMut, amMut, "calls", settings),
	); err != nil {
		b.Fatal(err)
	}
	// Printed, not logged: the side-by-side counts are the point.
	fmt.Printf("\nEncrypted bake, %s (%s):\n%s\n", where, settings, callTable(phCalls, amCalls, phTotal, amTotal, phWall, amWall))
}

// createKey creates a customer managed key in region and schedules its
// deletion when the benchmark ends.
func createKey(b *testing.B, sb *sandbox.Sandbox, region string) string {
	b.Helper()
	ctx := context.Background()
	c := kms.NewFromConfig(sandboxtest.Config(b, sb, region))
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("images")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
	})
	return aws.ToString(k.KeyMetadata.Arn)
}

// requireEncryptedImages checks that the bake left exactly one AMI named
// name in each region, its snapshots encrypted under that region's key,
// and deletes it with its snapshots so the next bake starts from the same
// account (the cleanup's calls are not counted: counts were read before).
func requireEncryptedImages(b *testing.B, sb *sandbox.Sandbox, name string, keys map[string]string) {
	b.Helper()
	ctx := context.Background()
	for region, key := range keys {
		e := ec2.NewFromConfig(sandboxtest.Config(b, sb, region))
		imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil {
			b.Fatal(err)
		}
		if len(imgs.Images) != 1 || aws.ToString(imgs.Images[0].Name) != name {
			b.Fatalf("%s: want the one AMI %s, have %d images", region, name, len(imgs.Images))
		}
		im := imgs.Images[0]
		for _, bd := range im.BlockDeviceMappings {
			if bd.Ebs == nil || bd.Ebs.SnapshotId == nil {
				continue
			}
			snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(bd.Ebs.SnapshotId)}})
			if err != nil || len(snaps.Snapshots) != 1 {
				b.Fatalf("%s: snapshot %s: %v", region, aws.ToString(bd.Ebs.SnapshotId), err)
			}
			if s := snaps.Snapshots[0]; !aws.ToBool(s.Encrypted) || aws.ToString(s.KmsKeyId) != key {
				b.Fatalf("%s: snapshot %s of %s not encrypted under %s (encrypted %v, key %s)", region, aws.ToString(s.SnapshotId), name, key, aws.ToBool(s.Encrypted), aws.ToString(s.KmsKeyId))
			}
		}
		if _, err := e.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
			b.Fatal(err)
		}
	}
	// The keys stay for the next bake; nothing else may.
	for _, r := range sb.Inventory() {
		if r.Service != "kms" {
			b.Fatalf("after %s, %s %s %s (%s) is left in %s", name, r.Service, r.Type, r.ID, r.State, r.Region)
		}
	}
}

// flatten turns the sandbox's per-service counts into "service:Action".
func flatten(calls map[string]map[string]int) map[string]int {
	out := map[string]int{}
	for svc, m := range calls {
		for a, n := range m {
			out[svc+":"+a] = n
		}
	}
	return out
}

func totalCalls(r bakeRun) float64 {
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return float64(n)
}

func mutatingCalls(r bakeRun) float64 {
	n := 0
	for k, c := range r.calls {
		if sandbox.IsMutating(k[strings.Index(k, ":")+1:]) {
			n += c
		}
	}
	return float64(n)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func medianOf(runs []bakeRun, f func(bakeRun) float64) float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, f(r))
	}
	return median(v)
}

func medianWall(runs []bakeRun) float64 {
	return medianOf(runs, func(r bakeRun) float64 { return r.wall.Seconds() })
}

// medianCalls is the median count of each action over the runs (an action
// a run did not call counts 0 there).
func medianCalls(runs []bakeRun) map[string]float64 {
	out := map[string]float64{}
	for _, r := range runs {
		for k := range r.calls {
			out[k] = 0
		}
	}
	for k := range out {
		out[k] = medianOf(runs, func(r bakeRun) float64 { return float64(r.calls[k]) })
	}
	return out
}

// callTable lays the two tools' counts side by side, one action a line.
func callTable(ph, am map[string]float64, phTotal, amTotal, phWall, amWall float64) string {
	var actions []string
	for k := range ph {
		actions = append(actions, k)
	}
	for k := range am {
		if _, ok := ph[k]; !ok {
			actions = append(actions, k)
		}
	}
	sort.Strings(actions)
	var b strings.Builder
	fmt.Fprintf(&b, "  %-44s %11s %11s\n", "action", "phoenix-ebs", "amazon-ebs")
	for _, a := range actions {
		fmt.Fprintf(&b, "  %-44s %11s %11s\n", a, count(ph[a]), count(am[a]))
	}
	fmt.Fprintf(&b, "  %-44s %11s %11s  ratio %.2f\n", "total calls", count(phTotal), count(amTotal), phTotal/amTotal)
	fmt.Fprintf(&b, "  %-44s %11.1f %11.1f  ratio %.2f", "wall time of packer build (s)", phWall, amWall, phWall/amWall)
	return b.String()
}

func count(v float64) string {
	if v == float64(int(v)) {
		return strconv.Itoa(int(v))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// BenchmarkPluginStart compares the plugin binaries: size on disk, and the
// time `describe` takes (what Packer runs for every plugin it loads), as
// the median of interleaved runs. Both are built the same way, as
// scripts/install-plugin-amazon.sh builds packer-plugin-amazon and the
// release builds phoenix (CGO_ENABLED=0 go build -trimpath), without the
// release's -s -w.
func BenchmarkPluginStart(b *testing.B) {
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	run(b, root, nil, "./scripts/install-plugin-amazon.sh")
	amazon := filepath.Join(root, "bin", "packer-plugin-amazon")
	phoenix := filepath.Join(b.TempDir(), "packer-plugin-phoenix")
	run(b, root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", phoenix, ".")

	size := func(path string) float64 {
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return float64(st.Size()) / (1 << 20)
	}
	describe := func(path string) time.Duration {
		start := time.Now()
		out, err := exec.Command(path, "describe").Output()
		d := time.Since(start)
		if err != nil || !strings.Contains(string(out), `"api_version"`) {
			b.Fatalf("%s describe: %v %s", path, err, out)
		}
		return d
	}
	// One run each first, so neither pays for reading its binary from disk.
	describe(phoenix)
	describe(amazon)
	var ph, am []float64
	for b.Loop() {
		ph = append(ph, describe(phoenix).Seconds()*1000)
		am = append(am, describe(amazon).Seconds()*1000)
	}
	phMS, amMS := median(ph), median(am)
	phMiB, amMiB := size(phoenix), size(amazon)
	b.ReportMetric(phMS, "phoenix-describe-ms")
	b.ReportMetric(amMS, "amazon-describe-ms")
	b.ReportMetric(phMS/amMS, "describe-ratio")
	b.ReportMetric(phMiB, "phoenix-MiB")
	b.ReportMetric(amMiB, "amazon-MiB")
	b.ReportMetric(phMiB/amMiB, "size-ratio")
	build := fmt.Sprintf("both CGO_ENABLED=0 go build -trimpath, %s/%s", runtime.GOOS, runtime.GOARCH)
	if err := benchreport.Add(
		benchreport.NewRow("plugin binary size (packer-plugin-phoenix vs packer-plugin-amazon "+amazonVersion+")", phMiB, amMiB, "MiB", build),
		benchreport.NewRow("plugin describe time (packer-plugin-phoenix vs packer-plugin-amazon "+amazonVersion+")", phMS, amMS, "ms",
			fmt.Sprintf("median of %d interleaved runs each; %s", len(ph), build)),
	); err != nil {
		b.Fatal(err)
	}
}
