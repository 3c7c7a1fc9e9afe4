package deployer_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// BenchmarkDeployAPICalls counts the API calls of one rolling deploy by
// action, for groups of 3, 12 and 48 instances behind one target group
// and 12 behind three. The figure to watch is DescribeTargetHealth per
// pass: it equals the number of target groups whatever the number of
// instances. The baseline, from the same run, is what checking each
// instance's health on its own would cost over the same passes.
func BenchmarkDeployAPICalls(b *testing.B) {
	cases := []struct{ instances, targetGroups int }{{3, 1}, {12, 1}, {48, 1}, {12, 3}}
	// b.Run calls each case with growing b.N; the last call's figures stand.
	report := map[string]string{}
	var names []string
	for _, c := range cases {
		name := fmt.Sprintf("instances=%d/target-groups=%d", c.instances, c.targetGroups)
		names = append(names, name)
		b.Run(name, func(b *testing.B) {
			f := deploytest.New(b, nil, region)
			amis := []string{f.Image("bench-1", deploytest.ImageOptions{}), f.Image("bench-2", deploytest.ImageOptions{})}
			f.Stack("bench", amis[0], deploytest.StackOptions{Desired: c.instances, TargetGroups: c.targetGroups})
			r := defaultRolling()
			r.MinHealthyPercentage = 50
			var passes, dth, describeInstances, total int64
			actions := map[string]int{}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f.SB.ResetCalls()
				var n int64
				d := newDeployer(f, "bench", r, nil)
				d.Events = func(e deployer.Event) {
					if e.Kind == deployer.EventProgress {
						atomic.AddInt64(&n, 1)
					}
				}
				b.StartTimer()
				if _, err := d.Run(context.Background(), amis[(i+1)%2]); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				calls := f.SB.Calls()
				passes += atomic.LoadInt64(&n)
				dth += int64(calls["elasticloadbalancing"]["DescribeTargetHealth"])
				describeInstances += int64(calls["ec2"]["DescribeInstances"])
				for svc, m := range calls {
					for a, k := range m {
						actions[svc+":"+a] += k
						total += int64(k)
					}
				}
				b.StartTimer()
			}
			per := func(v int64) float64 { return float64(v) / float64(b.N) }
			b.ReportMetric(per(passes), "passes/deploy")
			b.ReportMetric(per(dth), "DescribeTargetHealth/deploy")
			b.ReportMetric(float64(dth)/float64(passes), "DescribeTargetHealth/pass")
			b.ReportMetric(per(passes)*float64(c.instances*c.targetGroups), "baseline-per-instance-DescribeTargetHealth/deploy")
			b.ReportMetric(per(describeInstances), "DescribeInstances/deploy")
			b.ReportMetric(per(total), "calls/deploy")
			var keys []string
			for k := range actions {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s=%.1f", k, per(int64(actions[k]))))
			}
			report[name] = fmt.Sprintf("%-32s passes %5.1f  DescribeTargetHealth %6.1f (%.2f/pass; per-instance baseline %7.1f)  calls %6.1f\n    %s",
				name, per(passes), per(dth), float64(dth)/float64(passes), per(passes)*float64(c.instances*c.targetGroups), per(total), strings.Join(parts, " "))
		})
	}
	// Printed, not logged: the table is the point of the benchmark.
	fmt.Printf("API calls per rolling deploy, by action (the baseline checks each instance on each pass):\n%s\n", lines(names, report))
}

func lines(names []string, report map[string]string) string {
	var out []string
	for _, n := range names {
		if l, ok := report[n]; ok {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
