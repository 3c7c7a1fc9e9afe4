//go:build linux

package sandbox_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// appUserData starts a tiny web app on the instance's own address: / says
// the version baked into the image (/etc/app-version, "v1" without), and
// /health exists unless the image carries /etc/app-broken.
const appUserData = `#!/bin/sh
set -e
ip=$(awk -v h="$(hostname)" '$2 == h { print $1; exit }' /etc/hosts)
mkdir -p /srv/www
cat /etc/app-version 2>/dev/null > /srv/www/index.html || echo v1 > /srv/www/index.html
[ -e /etc/app-broken ] || echo ok > /srv/www/health
busybox httpd -p "$ip:80" -h /srv/www
echo "app listening on $ip:80"
`

// trafficCounter sends steady requests through the load balancer and
// counts failures and answers by version.
type trafficCounter struct {
	mu       sync.Mutex
	versions map[string]int
	last     []string
	failures []string
	total    atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startTraffic(t *testing.T, url string) *trafficCounter {
	c := &trafficCounter{versions: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(c.done)
		deadline := time.Now().Add(5 * time.Minute) // bounded, whatever happens
		for time.Now().Before(deadline) {
			select {
			case <-c.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c.total.Add(1)
			resp, err := client.Get(url)
			if err != nil {
				c.fail(err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				c.fail(fmt.Sprintf("%d %s", resp.StatusCode, body))
				continue
			}
			v := strings.TrimSpace(string(body))
			c.mu.Lock()
			c.versions[v]++
			c.last = append(c.last, v)
			if len(c.last) > 20 {
				c.last = c.last[1:]
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *trafficCounter) fail(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, why)
}

func (c *trafficCounter) snapshot() (map[string]int, []string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := map[string]int{}
	for k, n := range c.versions {
		v[k] = n
	}
	return v, append([]string(nil), c.last...), append([]string(nil), c.failures...)
}

func (c *trafficCounter) finish() {
	close(c.stop)
	<-c.done
}

// TestLinuxRollingRefreshZeroFailures: an Auto Scaling group of 3 behind
// an application load balancer serves steady traffic while an instance
// refresh (min healthy 100%, max 200%) replaces every instance with a new
// image: no request fails and the answers come from the new image. Then a
// refresh to an image whose app fails /health rolls back, and clients
// still see no failure.
func TestLinuxRollingRefreshZeroFailures(t *testing.T) {
	e := startLinux(t)
	cfg := sandboxtest.Config(t, e.sb, linuxRegion)
	asg, lbc := autoscaling.NewFromConfig(cfg), elb.NewFromConfig(cfg)
	ctx := context.Background()
	debian := e.debianImage()

	// Two images baked at once: v2, and a broken v3.
	var v2, v3 string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); v2 = e.bake(debian, "app-v2", "#!/bin/sh\necho v2 > /etc/app-version\n") }()
	go func() {
		defer wg.Done()
		v3 = e.bake(debian, "app-v3", "#!/bin/sh\necho v3 > /etc/app-version\ntouch /etc/app-broken\n")
	}()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	subnets, err := e.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(subnets.Subnets) < 2 {
		t.Fatalf("DescribeSubnets: %v", err)
	}
	sn := []string{aws.ToString(subnets.Subnets[0].SubnetId), aws.ToString(subnets.Subnets[1].SubnetId)}
	vpc := aws.ToString(subnets.Subnets[0].VpcId)

	lb, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: sn})
	if err != nil {
		t.Fatalf("CreateLoadBalancer: %v", err)
	}
	lbARN, dns := aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), VpcId: aws.String(vpc),
		HealthCheckPath: aws.String("/health"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
	})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	tgARN := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := lbc.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(tgARN),
		Attributes:     []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("20")}},
	}); err != nil {
		t.Fatalf("ModifyTargetGroupAttributes: %v", err)
	}
	ln, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbARN), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}},
	})
	if err != nil {
		t.Fatalf("CreateListener: %v", err)
	}
	t.Logf("load balancer %s serves at %s", lbARN, dns)

	userData := base64.StdEncoding.EncodeToString([]byte(appUserData))
	data := func(image string) *ec2types.RequestLaunchTemplateData {
		return &ec2types.RequestLaunchTemplateData{ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT3Micro, UserData: aws.String(userData)}
	}
	lt, err := e.ec2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"), LaunchTemplateData: data(debian)})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	for _, image := range []string{v2, v3} {
		if _, err := e.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(ltID), LaunchTemplateData: data(image)}); err != nil {
			t.Fatalf("CreateLaunchTemplateVersion: %v", err)
		}
	}
	if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"),
		LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID), Version: aws.String("1")},
		MinSize:              aws.Int32(3), MaxSize: aws.Int32(6), DesiredCapacity: aws.Int32(3),
		VPCZoneIdentifier: aws.String(strings.Join(sn, ",")), TargetGroupARNs: []string{tgARN},
		HealthCheckType: aws.String("ELB"), HealthCheckGracePeriod: aws.Int32(60),
	}); err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}

	healthy := func(n int) func() (bool, string) {
		return func() (bool, string) {
			out, err := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
			if err != nil {
				return false, err.Error()
			}
			ok, states := 0, []string{}
			for _, d := range out.TargetHealthDescriptions {
				states = append(states, string(d.TargetHealth.State))
				if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					ok++
				}
			}
			return ok == n && len(states) == n, fmt.Sprint(states)
		}
	}
	start := time.Now()
	waitFor(t, "3 healthy targets", 3*time.Minute, healthy(3))
	t.Logf("3 instances healthy behind the load balancer after %s", time.Since(start).Round(time.Millisecond))

	traffic := startTraffic(t, "http://"+dns+"/")
	refresh := func(version string, rollback bool) astypes.InstanceRefresh {
		out, err := asg.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
			AutoScalingGroupName: aws.String("web"),
			DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID), Version: aws.String(version)}},
			Preferences: &astypes.RefreshPreferences{
				MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(200),
				InstanceWarmup: aws.Int32(10), AutoRollback: aws.Bool(rollback),
			},
		})
		if err != nil {
			t.Fatalf("StartInstanceRefresh: %v", err)
		}
		id := aws.ToString(out.InstanceRefreshId)
		var rf astypes.InstanceRefresh
		waitFor(t, "instance refresh to "+version, 4*time.Minute, func() (bool, string) {
			d, err := asg.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("web"), InstanceRefreshIds: []string{id}})
			if err != nil || len(d.InstanceRefreshes) == 0 {
				return false, fmt.Sprint(err)
			}
			rf = d.InstanceRefreshes[0]
			switch rf.Status {
			case astypes.InstanceRefreshStatusSuccessful, astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled,
				astypes.InstanceRefreshStatusRollbackSuccessful, astypes.InstanceRefreshStatusRollbackFailed:
				return true, ""
			}
			return false, string(rf.Status) + " " + aws.ToString(rf.StatusReason)
		})
		return rf
	}

	start = time.Now()
	rf := refresh("2", false)
	if rf.Status != astypes.InstanceRefreshStatusSuccessful {
		t.Fatalf("refresh to v2: %s (%s)", rf.Status, aws.ToString(rf.StatusReason))
	}
	waitFor(t, "3 healthy targets on v2", time.Minute, healthy(3))
	waitFor(t, "answers from v2 only", 30*time.Second, func() (bool, string) {
		_, last, _ := traffic.snapshot()
		n := 0
		for _, v := range last {
			if v == "v2" {
				n++
			}
		}
		return n == 20, fmt.Sprint(last)
	})
	versions, _, failures := traffic.snapshot()
	t.Logf("refresh to v2 took %s: %d requests, by version %v, %d failed", time.Since(start).Round(time.Millisecond), traffic.total.Load(), versions, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d requests failed during the refresh to v2, first: %s", len(failures), failures[0])
	}

	start = time.Now()
	rf = refresh("3", true)
	versions, last, failures := traffic.snapshot()
	t.Logf("refresh to broken v3 ended %s (%s) after %s: %d requests, by version %v, %d failed",
		rf.Status, aws.ToString(rf.StatusReason), time.Since(start).Round(time.Millisecond), traffic.total.Load(), versions, len(failures))
	if rf.Status != astypes.InstanceRefreshStatusRollbackSuccessful && rf.Status != astypes.InstanceRefreshStatusFailed {
		t.Errorf("refresh to broken v3: %s, want RollbackSuccessful or Failed", rf.Status)
	}
	if versions["v3"] > 0 {
		t.Errorf("%d answers came from the broken v3", versions["v3"])
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed, first: %s", len(failures), failures[0])
	}
	waitFor(t, "3 healthy targets after the rollback", time.Minute, healthy(3))
	traffic.finish()
	_, last, failures = traffic.snapshot()
	if len(failures) > 0 {
		t.Errorf("%d requests failed in all, first: %s", len(failures), failures[0])
	}
	for _, v := range last {
		if v != "v2" {
			t.Errorf("after the rollback an answer came from %s: %v", v, last)
			break
		}
	}

	// Clean up everything.
	if _, err := asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("web"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteAutoScalingGroup: %v", err)
	}
	waitFor(t, "the group to be gone", 2*time.Minute, func() (bool, string) {
		out, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"web"}})
		return err == nil && len(out.AutoScalingGroups) == 0, fmt.Sprint(err)
	})
	waitFor(t, "instances terminated", 2*time.Minute, func() (bool, string) {
		out, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		if err != nil {
			return false, err.Error()
		}
		live := 0
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State.Name != ec2types.InstanceStateNameTerminated {
					live++
				}
			}
		}
		return live == 0, fmt.Sprint(live, " live")
	})
	lbc.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: ln.Listeners[0].ListenerArn})
	lbc.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbARN)})
	if _, err := lbc.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgARN)}); err != nil {
		t.Errorf("DeleteTargetGroup: %v", err)
	}
	e.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(ltID)})
	e.deregister(v2)
	e.deregister(v3)
	sandboxtest.RequireEmptyInventory(t, e.sb)
}
