package sandbox_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The load balancer's edges that users meet on AWS: targets in an
// Availability Zone the load balancer does not use.

// A target whose instance runs in an Availability Zone none of the load
// balancer's subnets covers is unused with Target.NotInUse and says why,
// while a target of the same group in an enabled zone is checked and
// becomes healthy.
func TestELBv2TargetInZoneNotEnabledIsUnused(t *testing.T) {
	f := newELBFixture(t)
	ctx, c := f.ctx, f.c
	if len(f.subnets) < 3 {
		t.Fatalf("the default VPC has %d subnets, the test needs 3", len(f.subnets))
	}
	ec := ec2.NewFromConfig(sandboxtest.Config(t, f.sb, elbRegion))
	image := f.sb.ELBTestImage(elbRegion, "")
	run := func(subnet string) string {
		out, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(subnet)})
		f.must(err)
		id := aws.ToString(out.Instances[0].InstanceId)
		elbWaitFor(t, id+" running", 5*time.Second, func() bool { return f.sb.ELBTestInstanceState(elbRegion, id) == "running" })
		return id
	}
	inZone, outOfZone := run(f.subnets[0]), run(f.subnets[2])

	lb := f.createLB("zones") // subnets[:2]
	tg := f.createTG("zones", nil)
	_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tg), Targets: []elbtypes.TargetDescription{{Id: aws.String(inZone)}, {Id: aws.String(outOfZone)}}})
	f.must(err)
	l, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: elbForward(map[string]int32{tg: 1})})
	f.must(err)

	f.waitHealth(tg, inZone, elbtypes.TargetHealthStateEnumHealthy, "")
	f.waitHealth(tg, outOfZone, elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	if h := f.health(tg)[outOfZone]; aws.ToString(h.Description) != "Target is in an Availability Zone that is not enabled for the load balancer" {
		t.Errorf("description %q", aws.ToString(h.Description))
	}
	// The zone is what decides: the same target in a group no listener
	// uses has the other description.
	idle := f.createTG("idle", nil)
	_, err = c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(idle), Targets: []elbtypes.TargetDescription{{Id: aws.String(outOfZone)}}})
	f.must(err)
	f.waitHealth(idle, outOfZone, elbtypes.TargetHealthStateEnumUnused, "Target.NotInUse")
	if h := f.health(idle)[outOfZone]; aws.ToString(h.Description) != "Target group is not configured to receive traffic from the load balancer" {
		t.Errorf("description in the unused group %q", aws.ToString(h.Description))
	}

	_, err = c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.Listeners[0].ListenerArn})
	f.must(err)
	_, err = c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})
	f.must(err)
	for _, arn := range []string{tg, idle} {
		_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(arn)})
		f.must(err)
	}
	f.terminate(inZone, outOfZone)
	sandboxtest.RequireEmptyInventory(t, f.sb)
}
