package deployer_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/benchreport"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// benchTimeScale plays the sandbox's AWS-like timing profile fifty times
// faster: a 25 s replacement takes 0.5 s, ten times the controllers' tick.
const benchTimeScale = 0.02

// benchBake is blue-green's bake time per step, in AWS time.
const benchBake = 30 * time.Second

// waits are the AWS-side durations a deploy cannot go faster than, in AWS
// seconds: the sandbox's timing profile and the stack's own settings.
type waits struct {
	refreshPending, instancePending, shuttingDown float64
	// healthy is how long a running instance takes to pass its target
	// group's health checks: interval × healthy threshold.
	healthy float64
	// deregistration is the target group's deregistration delay, warmup
	// the group's instance warmup (its health check grace period here).
	deregistration, warmup float64
}

func readWaits(b *testing.B, f *deploytest.Fixture, group, tg string) waits {
	b.Helper()
	ctx := context.Background()
	p := f.SB.Timing().Seconds
	w := waits{refreshPending: p["refresh_pending"], instancePending: p["instance_pending"], shuttingDown: p["instance_shutting_down"]}
	tgs, err := f.Clients.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{tg}})
	if err != nil || len(tgs.TargetGroups) != 1 {
		b.Fatalf("describing %s: %v", tg, err)
	}
	w.healthy = float64(aws.ToInt32(tgs.TargetGroups[0].HealthCheckIntervalSeconds) * aws.ToInt32(tgs.TargetGroups[0].HealthyThresholdCount))
	attrs, err := f.Clients.ELB.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(tg)})
	if err != nil {
		b.Fatal(err)
	}
	w.deregistration = 300 // ELB's default
	for _, a := range attrs.Attributes {
		if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
			w.deregistration, _ = strconv.ParseFloat(aws.ToString(a.Value), 64)
		}
	}
	g, err := f.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(g.AutoScalingGroups) != 1 {
		b.Fatalf("describing %s: %v", group, err)
	}
	w.warmup = float64(aws.ToInt32(g.AutoScalingGroups[0].HealthCheckGracePeriod))
	if dw := g.AutoScalingGroups[0].DefaultInstanceWarmup; dw != nil {
		w.warmup = float64(*dw)
	}
	return w
}

// rollingSpare is how many ready instances an instance refresh with a
// maximum healthy percentage of 100 may take out of service at once: those
// above ceil(n × min / 100). When it is 0 the refresh replaces one
// instance at a time, and only once the group has settled.
func rollingSpare(n, minHealthy int) int {
	return n - (n*minHealthy+99)/100
}

// rollingBound is a rolling deploy's lower bound in AWS seconds, as the
// sandbox's instance refresh (sandbox/autoscaling_refresh.go) plays it.
// The refresh leaves Pending, then replaces instances in batches. A new
// instance is ready when it is running and, from then on, both its
// target's health checks have passed and its warmup is over (the two run
// at the same time: warmup counts from InService, which is when the
// instance runs). With spare ready instances the next batch starts as
// soon as the new ones are ready; with none, one instance goes at a time
// and the next only when the group has settled: the new instance ready
// and the old one through its deregistration delay and shutdown. The
// refresh ends when the last new instances are ready and the last old
// ones are gone.
func (w waits) rollingBound(n, minHealthy int) float64 {
	launch := w.instancePending + math.Max(w.healthy, w.warmup)
	drain := w.deregistration + w.shuttingDown
	if spare := rollingSpare(n, minHealthy); spare > 0 {
		batches := (n + spare - 1) / spare
		return w.refreshPending + float64(batches-1)*launch + math.Max(launch, drain)
	}
	return w.refreshPending + float64(n)*math.Max(launch, drain)
}

// blueGreenBound is a blue-green deploy's lower bound in AWS seconds: the
// idle colour's instances launch together and pass their health checks,
// then every step bakes. The old colour's scale-in is not waited for.
func (w waits) blueGreenBound(steps int, bake time.Duration) float64 {
	return w.instancePending + w.healthy + float64(steps)*bake.Seconds()
}

// BenchmarkDeploy times one rolling and one blue-green deploy of 3, 12
// and 48 instances on the sandbox's AWS-like timing profile (played at
// benchTimeScale) against the lower bound that profile implies, and counts
// its API calls by action. The rolling deploy uses the defaults (minimum
// healthy 90%, maximum 100%); blue-green moves the traffic in steps of
// 50% and 100% with a 30 s bake each. The deploy polls every 10 s of AWS
// time (the default poll interval, scaled).
//
// Metrics per deploy: wall-s and lower-bound-s (wall seconds at the
// scale), aws-s and lower-bound-aws-s (the same in AWS seconds), ratio
// (wall / lower bound), passes, calls and mutating-calls, one
// <Action>-calls per action, and baseline-DescribeTargetHealth-calls:
// what reading each instance's health on its own would cost over the same
// passes. Each case adds two rows to the results of `make bench`
// (internal/benchreport): wall time against the lower bound, and
// DescribeTargetHealth calls against that per-instance baseline. A case
// faster than its lower bound fails.
func BenchmarkDeploy(b *testing.B) {
	type result struct {
		name               string
		wall, bound        float64
		passes, calls, dth float64
		baseline           float64
		actions            map[string]float64
	}
	var results []result
	for _, strategy := range []string{"rolling", "blue-green"} {
		for _, n := range []int{3, 12, 48} {
			name := fmt.Sprintf("%s/instances=%d", strategy, n)
			b.Run(name, func(b *testing.B) {
				f := deploytest.New(b, nil, region)
				// The images are setup: copied in 10 s of AWS time, not 3 minutes.
				if err := f.SB.SetTiming(sandbox.TimingProfile{TimeScale: benchTimeScale, Seconds: map[string]float64{"image_copy": 10}}); err != nil {
					b.Fatal(err)
				}
				scaled := func(d time.Duration) time.Duration { return time.Duration(float64(d) * benchTimeScale) }
				amis := []string{f.Image("bench-1", deploytest.ImageOptions{}), f.Image("bench-2", deploytest.ImageOptions{})}
				var newDeploy func() *deployer.Deployer
				var bound float64
				switch strategy {
				case "rolling":
					st := f.Stack("bench", amis[0], deploytest.StackOptions{Desired: n})
					r := defaultRolling()
					bound = readWaits(b, f, "bench", st.TargetGroups[0]).rollingBound(n, r.MinHealthyPercentage)
					newDeploy = func() *deployer.Deployer { return newDeployer(f, "bench", r, nil) }
				default:
					bg := f.BlueGreen("bench", amis[0], deploytest.BlueGreenOptions{Desired: n})
					s := &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: scaled(benchBake)}
					bound = readWaits(b, f, bg.Blue, bg.BlueTG).blueGreenBound(len(s.Steps), benchBake)
					newDeploy = func() *deployer.Deployer { return newBlueGreen(f, bg, s, nil) }
				}
				var wall time.Duration
				var passes int64
				actions := map[string]int{}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					f.SB.ResetCalls()
					d := newDeploy()
					d.PollInterval, d.HealthTimeout = scaled(deployer.DefaultPollInterval), scaled(deployer.DefaultHealthTimeout)
					d.Events = func(e deployer.Event) {
						if e.Kind == deployer.EventProgress {
							atomic.AddInt64(&passes, 1)
						}
					}
					b.StartTimer()
					start := time.Now()
					if _, err := d.Run(context.Background(), amis[(i+1)%2]); err != nil {
						b.Fatal(err)
					}
					wall += time.Since(start)
					b.StopTimer()
					for svc, m := range f.SB.Calls() {
						for a, k := range m {
							if svc == "ec2" && a == "CopyImage" {
								continue
							}
							actions[a] += k
						}
					}
					b.StartTimer()
				}
				b.StopTimer()
				per := func(v float64) float64 { return v / float64(b.N) }
				r := result{name: name, wall: per(wall.Seconds()), bound: bound * benchTimeScale, passes: per(float64(passes)), actions: map[string]float64{}}
				var mutating float64
				for a, k := range actions {
					r.actions[a] = per(float64(k))
					r.calls += r.actions[a]
					if sandbox.IsMutating(a) {
						mutating += r.actions[a]
					}
					b.ReportMetric(r.actions[a], a+"-calls")
				}
				r.dth = r.actions["DescribeTargetHealth"]
				r.baseline = r.passes * float64(n)
				b.ReportMetric(r.wall, "wall-s")
				b.ReportMetric(r.bound, "lower-bound-s")
				b.ReportMetric(r.wall/benchTimeScale, "aws-s")
				b.ReportMetric(bound, "lower-bound-aws-s")
				b.ReportMetric(r.wall/r.bound, "ratio")
				b.ReportMetric(r.passes, "passes")
				b.ReportMetric(r.calls, "calls")
				b.ReportMetric(mutating, "mutating-calls")
				b.ReportMetric(r.baseline, "baseline-DescribeTargetHealth-calls")
				// A deploy faster than its lower bound means the bound or
				// the sandbox does not play what the profile says.
				if r.wall < r.bound {
					b.Errorf("%s took %.1f AWS seconds, less than its lower bound of %.1f", name, r.wall/benchTimeScale, bound)
				}
				results = append(results, r)
			})
		}
	}
	// Printed, not logged: the table is the point of the benchmark. With
	// b.N > 1 a case appears once per round b.Run made; the last stands.
	seen := map[string]int{}
	for i, r := range results {
		seen[r.name] = i
	}
	fmt.Printf("Deploys at time scale %v (wall and lower bound in AWS seconds; ratio = wall / lower bound):\n", benchTimeScale)
	var rows []benchreport.Row
	for i, r := range results {
		if seen[r.name] != i {
			continue
		}
		strategy, n, _ := strings.Cut(r.name, "/instances=")
		settings := fmt.Sprintf("%s instances, sandbox timing profile at time scale %v, poll interval %s of AWS time", n, benchTimeScale, deployer.DefaultPollInterval)
		if strategy == "rolling" {
			settings += ", minimum healthy 90%, maximum 100%"
		} else {
			settings += fmt.Sprintf(", steps 50%% and 100%%, bake %s each", benchBake)
		}
		rows = append(rows,
			benchreport.NewRow(fmt.Sprintf("deploy %s %s: wall time vs lower bound", strategy, n), r.wall/benchTimeScale, r.bound/benchTimeScale, "s",
				"AWS seconds; the lower bound is what the timing profile allows (launch, health checks, warmup, draining, bakes); "+settings),
			benchreport.NewRow(fmt.Sprintf("deploy %s %s: DescribeTargetHealth calls vs one per instance per pass", strategy, n), r.dth, r.baseline, "calls",
				fmt.Sprintf("phoenix reads each target group once per pass; the baseline reads each instance's health on its own over the same %.0f passes; %s", r.passes, settings)))
		var keys []string
		for a := range r.actions {
			keys = append(keys, a)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for j, a := range keys {
			parts[j] = fmt.Sprintf("%s=%.0f", a, r.actions[a])
		}
		fmt.Printf("%-24s wall %6.1f s  lower bound %6.1f s  ratio %.2f  passes %4.0f  calls %5.0f  DescribeTargetHealth %4.0f (per-instance baseline %5.0f)\n    %s\n",
			r.name, r.wall/benchTimeScale, r.bound/benchTimeScale, r.wall/r.bound, r.passes, r.calls, r.dth, r.baseline, strings.Join(parts, " "))
	}
	if err := benchreport.Add(rows...); err != nil {
		b.Error(err)
	}
}
