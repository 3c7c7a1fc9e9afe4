package deployer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// The load balancer's edges a user meets on AWS: targets the load
// balancer does not use, for either of AWS's two reasons.

// zoneOf is a subnet's Availability Zone.
func zoneOf(t *testing.T, f *deploytest.Fixture, subnet string) string {
	t.Helper()
	out, err := f.Clients.EC2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
	if err != nil || len(out.Subnets) != 1 {
		t.Fatalf("describing subnet %s: %v", subnet, err)
	}
	return aws.ToString(out.Subnets[0].AvailabilityZone)
}

// A target group no listener or rule forwards to: status says so and
// names the fix.
func TestGateSaysNoRuleForwardsToTheTargetGroup(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("norule-1", deploytest.ImageOptions{})
	f.Stack("norule", old, deploytest.StackOptions{Desired: 1, UnusedTargetGroup: true})
	st, err := newDeployer(f, "norule", nil, nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(st.Health.Problems, "\n")
	if !strings.Contains(all, "is unused: no listener or rule forwards to target group norule-unused") || strings.Contains(all, "Availability Zone") {
		t.Errorf("problems:\n%s", all)
	}
}

// A colour whose group launches into a zone the load balancer does not
// use: plan warns, changing nothing; the deploy never sends it traffic,
// fails at health_timeout with the zone named, and rolls back.
func TestBlueGreenColourInAZoneTheLoadBalancerDoesNotUse(t *testing.T) {
	t.Parallel()
	f, bg, old, newAMI := newBlueGreenStack(t, deploytest.BlueGreenOptions{Desired: 3}, deploytest.ImageOptions{})
	if len(f.Subnets) < 3 {
		t.Fatalf("the default VPC has %d subnets, the test needs 3", len(f.Subnets))
	}
	zone := zoneOf(t, f, f.Subnets[2])
	_, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(context.Background(), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(bg.Green),
		VPCZoneIdentifier: aws.String(strings.Join(f.Subnets[:3], ","))})
	if err != nil {
		t.Fatal(err)
	}

	d := newBlueGreen(f, bg, &deployer.BlueGreen{}, nil)
	f.SB.ResetCalls()
	p, err := d.Plan(context.Background(), newAMI)
	if err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, c := range p.Changes {
		if c.Action == "warn" {
			warns = append(warns, c.Detail)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"web-green" launches into `+zone+", which load balancer web does not use") ||
		!strings.Contains(warns[0], "Target.NotInUse") {
		t.Errorf("plan warnings:\n%s", strings.Join(warns, "\n"))
	}
	if n := f.Mutating(); n != 0 {
		t.Errorf("plan made %d mutating calls", n)
	}

	var ev events
	d = newBlueGreen(f, bg, &deployer.BlueGreen{}, &ev)
	d.HealthTimeout = 5 * time.Second
	res, err := d.Run(context.Background(), newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack {
		t.Fatalf("outcome %v (%+v): %v\n%s", deployer.OutcomeOf(err), res, err, ev.messages())
	}
	if !strings.Contains(err.Error(), "runs in "+zone+", which the load balancer does not use") {
		t.Errorf("error does not name the zone: %v", err)
	}
	if w := f.Weights(bg); w[bg.GreenTG] != 0 {
		t.Errorf("green got traffic: %v", w)
	}
	requireOnBlue(t, f, bg, old, 3)
}
