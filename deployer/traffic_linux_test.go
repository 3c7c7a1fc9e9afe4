//go:build linux

package deployer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The deployer under steady traffic on real instances: the sandbox's
// linux runtime boots each instance from a real root filesystem, the load
// balancer health-checks it over HTTP and proxies every request to it. A
// client sends requests through the load balancer during each deploy and
// counts every one that fails.

const trafficRegion = "us-east-1"

// webUserData serves the image's version on the instance's own address:
// / answers /etc/web-version ("v1" on an image without it) and the
// address, and /health exists unless the image carries /etc/web-broken.
const webUserData = `#!/bin/sh
set -e
ip=$(awk -v h="$(hostname)" '$2 == h { print $1; exit }' /etc/hosts)
mkdir -p /srv/www
echo "$(cat /etc/web-version 2>/dev/null || echo v1) $ip" >/srv/www/index.html
[ -e /etc/web-broken ] || echo ok >/srv/www/health
busybox httpd -p "$ip:80" -h /srv/www
`

// trafficEnv is a linux-runtime sandbox with three images of the web
// app: v1, v2, and a broken one that answers "broken" on / but fails
// /health.
type trafficEnv struct {
	*deploytest.Fixture
	v1, v2, broken string
}

func startTrafficEnv(t *testing.T) *trafficEnv {
	t.Helper()
	testenv.RequireE2E(t)
	testenv.RequireRoot(t)
	// Cleanups run last registered first: the inventory is checked once
	// the fixture removed what it made, then the sandbox closes, then
	// nothing of the runtime may remain.
	var leaks *sandboxtest.RuntimeLeaks
	var stateDir string
	t.Cleanup(func() {
		if leaks != nil && leaks.Seen() == 0 {
			t.Errorf("no instance namespace was seen: the leak check saw nothing")
		}
		leaks.Check(t, stateDir)
	})
	sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: 0.05, Log: &testLog{t: t}})
	stateDir = sb.StateDir()
	leaks = sandboxtest.WatchRuntime()
	t.Cleanup(func() {
		deadline := time.Now().Add(time.Minute)
		for len(sb.Inventory()) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		sandboxtest.RequireEmptyInventory(t, sb)
	})
	e := &trafficEnv{Fixture: deploytest.New(t, sb, trafficRegion)}
	e.v1 = e.Image("web-v1", deploytest.ImageOptions{})

	var wg sync.WaitGroup
	var errV2, errBroken error
	wg.Add(2)
	go func() { defer wg.Done(); e.v2, errV2 = e.bake("web-v2", "echo v2 >/etc/web-version") }()
	go func() {
		defer wg.Done()
		e.broken, errBroken = e.bake("web-broken", "echo broken >/etc/web-version && touch /etc/web-broken")
	}()
	wg.Wait()
	if err := errors.Join(errV2, errBroken); err != nil {
		t.Fatalf("baking the images: %v", err)
	}
	return e
}

// bake runs an instance of v1 whose user data runs script, stops it once
// the script has run and makes an image of it: the linux runtime
// snapshots the instance's real files.
func (e *trafficEnv) bake(name, script string) (string, error) {
	ctx := context.Background()
	c := e.Clients.EC2
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(e.v1), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeT3Micro,
		UserData: aws.String(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\nset -e\n" + script + "\n")))})
	if err != nil {
		return "", fmt.Errorf("running the %s build instance: %w", name, err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	defer func() {
		c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
		poll(2*time.Minute, func() bool { return instanceState(c, id) == ec2types.InstanceStateNameTerminated })
	}()
	if !poll(2*time.Minute, func() bool { return instanceState(c, id) == ec2types.InstanceStateNameRunning }) {
		return "", fmt.Errorf("%s (%s) did not start", id, name)
	}
	if !poll(2*time.Minute, func() bool {
		out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
		if err != nil {
			return false
		}
		text, _ := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		return bytes.Contains(text, []byte("user data script finished"))
	}) {
		return "", fmt.Errorf("the user data of %s (%s) did not finish", id, name)
	}
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return "", fmt.Errorf("stopping %s: %w", id, err)
	}
	if !poll(2*time.Minute, func() bool { return instanceState(c, id) == ec2types.InstanceStateNameStopped }) {
		return "", fmt.Errorf("%s did not stop", id)
	}
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: aws.String(id), Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("creating image %s: %w", name, err)
	}
	ami := aws.ToString(img.ImageId)
	e.T.Cleanup(func() {
		c.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: aws.String(ami), DeleteAssociatedSnapshots: aws.Bool(true)})
	})
	if !poll(2*time.Minute, func() bool {
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
		return err == nil && len(out.Images) == 1 && out.Images[0].State == ec2types.ImageStateAvailable
	}) {
		return "", fmt.Errorf("image %s (%s) did not become available", ami, name)
	}
	return ami, nil
}

func instanceState(c *ec2.Client, id string) ec2types.InstanceStateName {
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		return ""
	}
	return out.Reservations[0].Instances[0].State.Name
}

// poll calls cond every 50ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// address is the load balancer's address, where its listeners serve.
func (e *trafficEnv) address(arn string) string {
	e.T.Helper()
	for _, lb := range e.SB.LoadBalancers() {
		if lb.ARN == arn && lb.Address != "" {
			return lb.Address
		}
	}
	e.T.Fatalf("load balancer %s has no address", arn)
	return ""
}

// groupAMIs counts the AMIs the group's instances run, whatever their
// lifecycle state.
func (e *trafficEnv) groupAMIs(group string) map[string]int {
	n := map[string]int{}
	for _, ami := range e.InstanceAMIs(group) {
		n[ami]++
	}
	return n
}

// waitGroupOn waits until the group's instances are exactly n on ami (no
// instance at all when n is 0).
func (e *trafficEnv) waitGroupOn(group, ami string, n int) {
	e.T.Helper()
	e.WaitFor(fmt.Sprintf("%s: %d instances, all on %s", group, n, ami), time.Minute, func() (bool, string) {
		amis := e.groupAMIs(group)
		if n == 0 {
			return len(amis) == 0, fmt.Sprint(amis)
		}
		return len(amis) == 1 && amis[ami] == n, fmt.Sprint(amis)
	})
}

// timeline records, every 50ms, each change in what the load balancer and
// Auto Scaling report of the given groups and target groups: the story a
// failed request is explained by. It is logged when the test fails.
type timeline struct {
	mu    sync.Mutex
	lines []string
	stop  chan struct{}
	done  chan struct{}
}

func (e *trafficEnv) watch(groups, targetGroups []string) *timeline {
	tl := &timeline{stop: make(chan struct{}), done: make(chan struct{})}
	ctx := context.Background()
	go func() {
		defer close(tl.done)
		last := ""
		for {
			var b strings.Builder
			if out, err := e.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: groups}); err == nil {
				for _, g := range out.AutoScalingGroups {
					fmt.Fprintf(&b, " %s[%d]:", aws.ToString(g.AutoScalingGroupName), aws.ToInt32(g.DesiredCapacity))
					for _, in := range g.Instances {
						fmt.Fprintf(&b, " %s/%s/%s", aws.ToString(in.InstanceId), in.LifecycleState, aws.ToString(in.HealthStatus))
					}
				}
			}
			for _, tg := range targetGroups {
				if out, err := e.Clients.ELB.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)}); err == nil {
					fmt.Fprintf(&b, " | %s:", tg[strings.LastIndexByte(tg, ':')+1:])
					for _, d := range out.TargetHealthDescriptions {
						fmt.Fprintf(&b, " %s=%s", aws.ToString(d.Target.Id), d.TargetHealth.State)
						if d.TargetHealth.Reason != "" {
							fmt.Fprintf(&b, "(%s)", d.TargetHealth.Reason)
						}
					}
				}
			}
			if now := b.String(); now != last {
				tl.mu.Lock()
				tl.lines = append(tl.lines, time.Now().Format("15:04:05.000")+now)
				tl.mu.Unlock()
				last = now
			}
			select {
			case <-tl.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	e.T.Cleanup(func() {
		close(tl.stop)
		<-tl.done
		if e.T.Failed() {
			tl.mu.Lock()
			e.T.Logf("timeline:\n%s", strings.Join(tl.lines, "\n"))
			tl.mu.Unlock()
		}
	})
	return tl
}

// knownVersions are the versions the images answer.
var knownVersions = map[string]bool{"v1": true, "v2": true, "broken": true}

// answer is one request through the load balancer.
type answer struct {
	sent    time.Time
	version string // the first word of a 200's body
	server  string // its second word: the instance's address
	failure string // a connection error or a status other than 200
}

// traffic sends requests through a load balancer from two clients, each
// waiting 20ms between requests, every request with a 2s timeout.
type traffic struct {
	mu      sync.Mutex
	answers []answer
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// startTraffic starts the clients; they stop at finish or when the test
// ends.
func startTraffic(t *testing.T, url string) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
	deadline := time.Now().Add(10 * time.Minute) // bounded, whatever happens
	for range 2 {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-tr.stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				a := answer{sent: time.Now()}
				resp, err := client.Get(url)
				if err != nil {
					a.failure = err.Error()
				} else {
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case err != nil:
						a.failure = "reading the body: " + err.Error()
					case resp.StatusCode != http.StatusOK:
						a.failure = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
					default:
						// Every answer is checked, not only its status: the
						// app answers its version and its address, nothing
						// else (a proxy's or a half-written page fails).
						f := strings.Fields(string(body))
						switch {
						case len(f) != 2 || !knownVersions[f[0]] || net.ParseIP(f[1]) == nil:
							a.failure = fmt.Sprintf("200 with an unexpected body %q", body)
						default:
							a.version, a.server = f[0], f[1]
						}
					}
				}
				tr.mu.Lock()
				tr.answers = append(tr.answers, a)
				tr.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { tr.finish() })
	return tr
}

// waitAnswers waits until n requests have been answered.
func (tr *traffic) waitAnswers(t *testing.T, n int) {
	t.Helper()
	if !poll(30*time.Second, func() bool { return len(tr.sentBetween(time.Time{}, time.Now())) >= n }) {
		t.Fatalf("fewer than %d requests answered in 30s", n)
	}
}

// finish stops the clients and returns every answer in the order sent.
func (tr *traffic) finish() []answer {
	tr.stopped.Do(func() { close(tr.stop) })
	tr.wg.Wait()
	return tr.sentBetween(time.Time{}, time.Now())
}

// inFlight is how long before a weight change a request may have been
// sent and still be routed after it.
const inFlight = 200 * time.Millisecond

// sentBetween returns the answers to the requests sent in [from, to).
func (tr *traffic) sentBetween(from, to time.Time) []answer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []answer
	for _, a := range tr.answers {
		if !a.sent.Before(from) && a.sent.Before(to) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sent.Before(out[j].sent) })
	return out
}

// tally counts answers by version, and failures.
type tally struct {
	total    int
	versions map[string]int
	failures []string
}

func count(answers []answer) tally {
	c := tally{total: len(answers), versions: map[string]int{}}
	for _, a := range answers {
		if a.failure != "" {
			c.failures = append(c.failures, a.sent.Format("15:04:05.000")+" "+a.failure)
		} else {
			c.versions[a.version]++
			if a.version == "broken" {
				c.failures = append(c.failures, a.sent.Format("15:04:05.000")+" answered by the broken image on "+a.server)
			}
		}
	}
	return c
}

func (c tally) String() string {
	return fmt.Sprintf("%d requests, by version %v, %d failed", c.total, c.versions, len(c.failures))
}

// requireNoFailures fails the test for every failed request.
func requireNoFailures(t *testing.T, what string, c tally) {
	t.Helper()
	if len(c.failures) > 0 {
		t.Errorf("%s: %d of %d requests failed:\n%s", what, len(c.failures), c.total, strings.Join(c.failures[:min(len(c.failures), 20)], "\n"))
	}
}

// TestTrafficRollingDeploys: a group of 2 serves steady traffic through
// its load balancer while the deployer rolls v2 onto it with the default
// rolling settings (instance refresh, minimum 90% healthy) but no instance
// warmup, then while it
// deploys a broken image that Auto Scaling rolls back. No request fails;
// the answers move from v1 to v2, never come from the broken image, and
// the group ends on v2 with its lock released.
func TestTrafficRollingDeploys(t *testing.T) {
	e := startTrafficEnv(t)
	st := e.Stack("web", e.v1, deploytest.StackOptions{Desired: 2, UserData: webUserData, HealthCheckPath: "/health"})
	lbURL := "http://" + e.address(st.LoadBalancer) + "/"
	e.watch([]string{"web"}, st.TargetGroups)
	ctx := context.Background()

	var ev events
	// No warmup: the refresh goes on as soon as the load balancer finds
	// a new instance healthy, the tightest a rolling deploy can run.
	r := defaultRolling()
	r.InstanceWarmup = new(time.Duration)
	d := newDeployer(e.Fixture, "web", r, &ev)
	d.PollInterval, d.HealthTimeout = 100*time.Millisecond, time.Minute

	// v1 -> v2.
	tr := startTraffic(t, lbURL)
	tr.waitAnswers(t, 20)
	start := time.Now()
	res, err := d.Run(ctx, e.v2)
	ended := time.Now()
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy of v2: %v\n%s", err, ev.messages())
	}
	e.waitGroupOn("web", e.v2, 2)
	time.Sleep(time.Second)
	all := tr.finish()
	c := count(all)
	t.Logf("rolling deploy of v2 took %s: %s", ended.Sub(start).Round(time.Millisecond), c)
	t.Logf("events:\n%s", ev.messages())
	requireNoFailures(t, "rolling deploy of v2", c)
	if v := all[0].version; v != "v1" {
		t.Errorf("the first answer came from %q, want v1", v)
	}
	if c.versions["v1"] == 0 || c.versions["v2"] == 0 {
		t.Errorf("answers by version %v: want both v1 and v2", c.versions)
	}
	// Success means every target is healthy on v2 and the old ones have
	// left the target group: from then on only v2 answers.
	if after := count(tr.sentBetween(ended, time.Now())); after.total == 0 || after.versions["v2"] != after.total {
		t.Errorf("after the deploy succeeded: %s, want v2 only", after)
	}
	if g := e.Group("web"); aws.ToString(g.LaunchTemplate.Version) != "2" {
		t.Errorf("group on launch template version %q, want 2", aws.ToString(g.LaunchTemplate.Version))
	}

	// v2 -> broken: the refresh fails its health checks and rolls back.
	ev = events{}
	tr = startTraffic(t, lbURL)
	tr.waitAnswers(t, 20)
	start = time.Now()
	res, err = d.Run(ctx, e.broken)
	ended = time.Now()
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("deploy of the broken image: outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	e.waitGroupOn("web", e.v2, 2)
	time.Sleep(time.Second)
	c = count(tr.finish())
	t.Logf("rolling deploy of the broken image rolled back after %s (%s): %s", ended.Sub(start).Round(time.Millisecond), res.Message, c)
	t.Logf("events:\n%s", ev.messages())
	requireNoFailures(t, "rolling deploy of the broken image", c)
	if c.versions["broken"] > 0 || c.versions["v2"] != c.total {
		t.Errorf("answers by version %v: want v2 only, never the broken image", c.versions)
	}
	g := e.Group("web")
	if v := aws.ToString(g.LaunchTemplate.Version); v != "2" {
		t.Errorf("after the rollback the group is on launch template version %q, want 2 (v2)", v)
	}
	if n := aws.ToInt32(g.DesiredCapacity); n != 2 {
		t.Errorf("desired capacity %d after the rollback, want 2", n)
	}
	for _, tag := range g.Tags {
		if k := aws.ToString(tag.Key); k == deployer.LockTag || k == deployer.PinTag {
			t.Errorf("tag %s left behind: %s", k, aws.ToString(tag.Value))
		}
	}
}

// TestTrafficBlueGreenDeploys: two colours of 2 behind one listener serve
// steady traffic while the deployer moves it from blue (v1) to green (v2)
// in steps of 20%, 50% and 100%, then while it deploys a broken image to
// the idle blue. No request fails; each step's share of the answers comes
// from v2 as its weight says, only v2 answers after the last step, the
// broken image never answers nor gets weight, and the colours end as the
// deployer promises: green live and unpinned at blue's minimum, blue at
// zero.
func TestTrafficBlueGreenDeploys(t *testing.T) {
	e := startTrafficEnv(t)
	bg := e.BlueGreen("web", e.v1, deploytest.BlueGreenOptions{Desired: 2, UserData: webUserData, HealthCheckPath: "/health"})
	lbURL := "http://" + e.address(bg.LoadBalancer) + "/"
	e.watch([]string{bg.Blue, bg.Green}, []string{bg.BlueTG, bg.GreenTG})
	ctx := context.Background()

	// The weights change inside ModifyListener: requests sent before the
	// call follow the old weights, those sent after its event the new.
	var mu sync.Mutex
	var calls, switches []time.Time
	times := func() ([]time.Time, []time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), calls...), append([]time.Time(nil), switches...)
	}
	e.SB.OnCall(func(service, action string) {
		if action == "ModifyListener" || action == "ModifyRule" {
			mu.Lock()
			calls = append(calls, time.Now())
			mu.Unlock()
		}
	})
	var ev events
	b := &deployer.BlueGreen{Steps: []int{20, 50, 100}, BakeTime: 3 * time.Second}
	d := newBlueGreen(e.Fixture, bg, b, nil)
	d.PollInterval, d.HealthTimeout = 100*time.Millisecond, time.Minute
	d.Events = func(x deployer.Event) {
		ev.add(x)
		if x.Kind == deployer.EventStep && x.Step == "switch" {
			mu.Lock()
			switches = append(switches, time.Now())
			mu.Unlock()
		}
	}

	// blue v1 -> green v2 in steps.
	tr := startTraffic(t, lbURL)
	tr.waitAnswers(t, 20)
	start := time.Now()
	res, err := d.Run(ctx, e.v2)
	ended := time.Now()
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy of v2: %v\n%s", err, ev.messages())
	}
	e.waitGroupOn(bg.Blue, "", 0)
	time.Sleep(time.Second)
	all := tr.finish()
	c := count(all)
	t.Logf("blue-green deploy of v2 took %s: %s", ended.Sub(start).Round(time.Millisecond), c)
	t.Logf("events:\n%s", ev.messages())
	requireNoFailures(t, "blue-green deploy of v2", c)
	changed, switched := times()
	if len(changed) != 3 || len(switched) != 3 {
		t.Fatalf("%d weight changes, %d switch events, want 3 of each\n%s", len(changed), len(switched), ev.messages())
	}
	// A request sent in the instant before the call can still reach the
	// load balancer after it: the window ends a little earlier.
	if before := count(tr.sentBetween(time.Time{}, changed[0].Add(-inFlight))); before.total == 0 || before.versions["v1"] != before.total {
		t.Errorf("before the first switch: %s, want v1 only", before)
	}
	// A weight change reaches traffic once it has propagated to the load
	// balancer's nodes (docs/sandbox.md): each step's window starts then.
	settle := configPropagation(e.SB)
	for i, share := range b.Steps {
		to := time.Now()
		if i+1 < len(changed) {
			to = changed[i+1].Add(-inFlight)
		}
		w := count(tr.sentBetween(switched[i].Add(settle), to))
		got := 0
		if w.total > 0 {
			got = 100 * w.versions["v2"] / w.total
		}
		t.Logf("green at %d%%: %s: %d%% from v2", share, w, got)
		if share == 100 {
			if w.total == 0 || w.versions["v2"] != w.total {
				t.Errorf("after the switch to 100%%: %s, want v2 only", w)
			}
			continue
		}
		if w.total < 50 || got < share-15 || got > share+15 {
			t.Errorf("green at %d%%: %s (%d%% from v2), want %d%% ± 15 of at least 50", share, w, got, share)
		}
	}
	if w := e.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights after the deploy %v, want green 100, blue 0", w)
	}
	green, blue := readColour(t, e.Fixture, bg.Green), readColour(t, e.Fixture, bg.Blue)
	if green.desired != 2 || green.min != 2 || green.pinned || green.amis[e.v2] != 2 || len(green.amis) != 1 {
		t.Errorf("green after the deploy: %+v, want 2 on v2 %s, minimum 2 as blue had, no pin", green, e.v2)
	}
	if blue.desired != 0 || blue.min != 0 || blue.pinned || len(blue.amis) != 0 {
		t.Errorf("blue after the deploy: %+v, want scaled to zero, no pin", blue)
	}

	// green v2 live, broken -> blue: blue never becomes healthy, never
	// gets weight, and scales back to zero.
	ev = events{}
	d.HealthTimeout = 10 * time.Second
	tr = startTraffic(t, lbURL)
	tr.waitAnswers(t, 20)
	start = time.Now()
	res, err = d.Run(ctx, e.broken)
	ended = time.Now()
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("deploy of the broken image: outcome %v: %v\n%s", deployer.OutcomeOf(err), err, ev.messages())
	}
	// Caught at its first failed target, or, on a loaded machine where
	// blue boots slowly, at health_timeout.
	if !strings.Contains(res.Message, "blue (web-blue): a new instance on "+e.broken+" failed its load balancer health checks") && !strings.Contains(res.Message, "blue (web-blue) is not healthy on "+e.broken+" after health_timeout") {
		t.Errorf("message: %s", res.Message)
	}
	if after, _ := times(); len(after) != len(changed) {
		t.Errorf("the weights changed %d times although blue was never healthy", len(after)-len(changed))
	}
	e.waitGroupOn(bg.Blue, "", 0)
	time.Sleep(time.Second)
	c = count(tr.finish())
	t.Logf("blue-green deploy of the broken image rolled back after %s: %s", ended.Sub(start).Round(time.Millisecond), c)
	t.Logf("events:\n%s", ev.messages())
	requireNoFailures(t, "blue-green deploy of the broken image", c)
	if c.versions["broken"] > 0 || c.versions["v2"] != c.total {
		t.Errorf("answers by version %v: want v2 only, never the broken image", c.versions)
	}
	if w := e.Weights(bg); w[bg.GreenTG] != 100 || w[bg.BlueTG] != 0 {
		t.Errorf("weights after the rollback %v, want green 100, blue 0", w)
	}
	green, blue = readColour(t, e.Fixture, bg.Green), readColour(t, e.Fixture, bg.Blue)
	if green.desired != 2 || green.pinned || green.amis[e.v2] != 2 || len(green.amis) != 1 {
		t.Errorf("green after the rollback: %+v, want 2 on v2 %s, no pin", green, e.v2)
	}
	if blue.desired != 0 || blue.min != 0 || blue.pinned || len(blue.amis) != 0 {
		t.Errorf("blue after the rollback: %+v, want scaled to zero, no pin", blue)
	}
}

// configPropagation is how long the sandbox's load balancer takes to
// route by a listener's new weights (lb_config_propagation, scaled).
func configPropagation(sb *sandbox.Sandbox) time.Duration {
	p := sb.Timing()
	return time.Duration(p.Seconds["lb_config_propagation"] * p.TimeScale * float64(time.Second))
}

// testLog passes the sandbox's log to the test's.
type testLog struct {
	mu sync.Mutex
	t  testing.TB
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
