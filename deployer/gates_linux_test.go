//go:build linux

package deployer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// gatesUserData is webUserData with one more kind of image: one carrying
// /etc/web-errors answers every other request to / with 500 (a busybox
// CGI script) while its /health passes. The load balancer finds it
// healthy; only the metric gates can see it.
const gatesUserData = `#!/bin/sh
set -e
ip=$(awk -v h="$(hostname)" '$2 == h { print $1; exit }' /etc/hosts)
v=$(cat /etc/web-version 2>/dev/null || echo v1)
mkdir -p /srv/www/cgi-bin
echo ok >/srv/www/health
if [ -e /etc/web-errors ]; then
  cat >/srv/www/cgi-bin/index.cgi <<EOF
#!/bin/sh
n=\$(cat /tmp/requests 2>/dev/null || echo 0)
n=\$((n + 1))
echo \$n >/tmp/requests
if [ \$((n % 2)) -eq 0 ]; then
  printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nfailed\n'
  exit 0
fi
printf 'Content-Type: text/plain\r\n\r\n%s\n' "$v $ip"
EOF
  chmod +x /srv/www/cgi-bin/index.cgi
else
  echo "$v $ip" >/srv/www/index.html
fi
busybox httpd -p "$ip:80" -h /srv/www
`

// weightCalls records when the listener's weights change.
type weightCalls struct {
	mu    sync.Mutex
	times []time.Time
}

func (w *weightCalls) all() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.times...)
}

// TestTrafficMetricGates proves the metric gates on real traffic: two
// clients send steady requests through the linux runtime's load balancer
// while a build that answers every other request with 500, and passes
// /health, is deployed. Blue-green with the canary judge rolls it back at
// its first step (10%), and the failed requests the clients saw stay
// within what that step exposes; a rolling deploy with an alarm on the
// target group's 5XX count is rolled back by the alarm. A good build
// passes both gates with no failed request.
func TestTrafficMetricGates(t *testing.T) {
	e := startTrafficEnv(t)
	errs, err := e.bake("web-errors", "echo v3 >/etc/web-version && touch /etc/web-errors")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("blue-green judge", func(t *testing.T) {
		bg := e.BlueGreen("web", e.v1, deploytest.BlueGreenOptions{Desired: 2, UserData: gatesUserData, HealthCheckPath: "/health"})
		lbURL := "http://" + e.address(bg.LoadBalancer) + "/"
		e.watch([]string{bg.Blue, bg.Green}, []string{bg.BlueTG, bg.GreenTG})
		var wc weightCalls
		e.SB.OnCall(func(service, action string) {
			if action == "ModifyListener" || action == "ModifyRule" {
				wc.mu.Lock()
				wc.times = append(wc.times, time.Now())
				wc.mu.Unlock()
			}
		})
		// Latency is judged loosely: a CGI script is slower than a
		// static file, and this test is about the 5xx share.
		b := &deployer.BlueGreen{Steps: []int{10, 50, 100}, BakeTime: 3 * time.Second,
			Judge: &deployer.Judge{MinRequests: 20, Max5xxIncrease: 1, LatencyStatistic: "p99", MaxLatencyRatio: 20}}
		var ev events
		d := newBlueGreen(e.Fixture, bg, b, &ev)
		d.PollInterval, d.HealthTimeout = 100*time.Millisecond, time.Minute

		// The good build passes every step, no request fails.
		tr := startTraffic(t, lbURL)
		tr.waitAnswers(t, 20)
		if _, err := d.Run(ctx, e.v2); err != nil {
			t.Fatalf("deploy of v2: %v\n%s", err, ev.messages())
		}
		e.waitGroupOn(bg.Blue, "", 0)
		c := count(tr.finish())
		t.Logf("blue-green deploy of v2 with the judge: %s", c)
		requireNoFailures(t, "blue-green deploy of v2", c)
		passes := 0
		for _, x := range ev.all {
			if x.Verdict != nil && x.Verdict.Result == "pass" {
				passes++
				t.Logf("%s", x.Verdict)
			}
		}
		if passes != 2 {
			t.Errorf("%d pass verdicts, want 2 (10%% and 50%%)\n%s", passes, ev.messages())
		}

		// The build that fails every other request: rolled back at 10%.
		ev = events{}
		before := len(wc.all())
		tr = startTraffic(t, lbURL)
		tr.waitAnswers(t, 20)
		res, err := d.Run(ctx, errs)
		if deployer.OutcomeOf(err) != deployer.RolledBack || !strings.Contains(res.Message, "canary judge failed") {
			t.Fatalf("deploy of the failing build: %v\n%s", err, ev.messages())
		}
		e.waitGroupOn(bg.Blue, "", 0)
		time.Sleep(time.Second)
		all := tr.finish()
		c = count(all)
		var last *deployer.Verdict
		for _, x := range ev.all {
			if x.Verdict != nil {
				last = x.Verdict
			}
		}
		if last == nil || last.Result != "fail" || last.Step != 10 {
			t.Fatalf("last verdict %v, want a fail at 10%%\n%s", last, ev.messages())
		}
		t.Logf("%s", last)
		calls := wc.all()[before:]
		if len(calls) != 2 {
			t.Fatalf("%d weight changes, want 2 (to 10%% and back)", len(calls))
		}
		// What the step exposed: the requests sent while blue had 10% of
		// the weight, half of which it fails. The bound allows twice the
		// expected count plus 5 for the randomness of the weighted pick.
		exposed := tr.sentBetween(calls[0].Add(-inFlight), calls[1].Add(inFlight))
		bound := 2*len(exposed)*10*50/(100*100) + 5
		t.Logf("failing build rolled back at 10%%: %d requests during the step, bound %d failed, measured %d failed; all: %s", len(exposed), bound, len(c.failures), c)
		if len(c.failures) == 0 {
			t.Errorf("no failed request: the judge failed the step without the clients seeing what it saw")
		}
		if len(c.failures) > bound {
			t.Errorf("%d failed requests, more than the bound %d of the step", len(c.failures), bound)
		}
		if w := e.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
			t.Errorf("weights after the rollback %v, want green 100", w)
		}
	})

	t.Run("rolling alarm", func(t *testing.T) {
		st := e.Stack("api", e.v1, deploytest.StackOptions{Desired: 2, UserData: gatesUserData, HealthCheckPath: "/health"})
		lbURL := "http://" + e.address(st.LoadBalancer) + "/"
		e.watch([]string{"api"}, st.TargetGroups)
		tgAlarm(t, e.Fixture, "api-5xx", st.LoadBalancer, st.TargetGroups[0], "HTTPCode_Target_5XX_Count", 3)
		r := defaultRolling()
		// The refresh bakes 200 s (10 s at the time scale of 0.05): a few
		// alarm periods of 60 s (3 s) of the new image's traffic.
		r.Alarms, r.MinHealthyPercentage, r.BakeTime = []string{"api-5xx"}, 50, 200*time.Second
		r.InstanceWarmup = new(time.Duration)
		var ev events
		d := newDeployer(e.Fixture, "api", r, &ev)
		d.PollInterval, d.HealthTimeout = 100*time.Millisecond, time.Minute

		tr := startTraffic(t, lbURL)
		tr.waitAnswers(t, 20)
		if _, err := d.Run(ctx, e.v2); err != nil {
			t.Fatalf("deploy of v2: %v\n%s", err, ev.messages())
		}
		c := count(tr.finish())
		t.Logf("rolling deploy of v2 with the alarm: %s", c)
		requireNoFailures(t, "rolling deploy of v2", c)

		ev = events{}
		tr = startTraffic(t, lbURL)
		tr.waitAnswers(t, 20)
		res, err := d.Run(ctx, errs)
		if deployer.OutcomeOf(err) != deployer.RolledBack || !strings.Contains(res.Message, `alarm "api-5xx" is in ALARM`) || !strings.Contains(res.Message, "HTTPCode_Target_5XX_Count") {
			t.Fatalf("deploy of the failing build: %v\n%s", err, ev.messages())
		}
		e.waitGroupOn("api", e.v2, 2)
		time.Sleep(time.Second)
		c = count(tr.finish())
		t.Logf("rolling deploy of the failing build rolled back by the alarm (%s): %s", res.Message, c)
		if len(c.failures) == 0 {
			t.Errorf("no failed request, yet the alarm on 5xx went off")
		}
		if g := e.Group("api"); aws.ToString(g.LaunchTemplate.Version) != "2" {
			t.Errorf("group on version %q after the rollback, want 2 (v2)", aws.ToString(g.LaunchTemplate.Version))
		}
	})
}
