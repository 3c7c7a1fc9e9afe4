package deployer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// Target group stickiness: when the forward that blue-green moves has
// TargetGroupStickinessConfig enabled, the load balancer gives each client
// an AWSALBTG cookie naming the target group that first served it and
// keeps sending it there for DurationSeconds, whatever the weights say by
// then (also at weight 0). A switch therefore moves new clients at once
// and sticky ones only as their cookies expire: the colour that lost the
// traffic keeps serving them for up to the duration, so it is not scaled
// to zero before that, and a rollback says how long they stay.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html
// https://docs.aws.amazon.com/prescriptive-guidance/latest/load-balancer-stickiness/target-group-stickiness.html

// stickiness is the forward's target group stickiness duration, 0 when it
// is off.
func (st *bgState) stickiness() time.Duration {
	fc := st.traffic.forward()
	if fc == nil || fc.TargetGroupStickinessConfig == nil || !aws.ToBool(fc.TargetGroupStickinessConfig.Enabled) {
		return 0
	}
	return time.Duration(aws.ToInt32(fc.TargetGroupStickinessConfig.DurationSeconds)) * time.Second
}

// stickyClients says how long clients the colour c served keep going to
// it after it lost the traffic.
func stickyClients(c *colour, d time.Duration) string {
	return fmt.Sprintf("clients %s served before keep going to its target group %s for up to %s (target group stickiness, AWSALBTG cookie)", c.Name, c.TG.Name, d)
}

// scaleInAt is when group's pending phoenix scale-in runs; zero when it
// has none.
func (s *Session) scaleInAt(ctx context.Context, group string) (time.Time, error) {
	out, err := s.Clients.AutoScaling.DescribeScheduledActions(ctx, &autoscaling.DescribeScheduledActionsInput{AutoScalingGroupName: aws.String(group), ScheduledActionNames: []string{ScaleInAction}})
	if err != nil {
		return time.Time{}, fmt.Errorf("describing the scheduled actions of %q: %w", group, err)
	}
	for _, a := range out.ScheduledUpdateGroupActions {
		if aws.ToString(a.ScheduledActionName) == ScaleInAction && a.StartTime != nil {
			return *a.StartTime, nil
		}
	}
	return time.Time{}, nil
}

// checkStickyIdle refuses a deploy that would empty the idle colour while
// clients with a stickiness cookie for it may still be sent there. The
// colour lost the traffic max(keep_old_for, stickiness) before its
// scheduled scale-in (a retirement and a warm rollback schedule it so),
// so its last sticky client leaves at that moment plus the stickiness.
func (b *BlueGreen) checkStickyIdle(ctx context.Context, s *Session, st *bgState, idle *colour) error {
	d := st.stickiness()
	if d == 0 || idle.desired() == 0 {
		return nil
	}
	at, err := s.scaleInAt(ctx, idle.group())
	if err != nil || at.IsZero() {
		return err
	}
	end := at.Add(d - max(b.KeepOldFor, d))
	if !s.Now().Before(end) {
		return nil
	}
	return refuse("%s may still serve clients with a target group stickiness cookie until %s (%s after it lost the traffic): a deploy would empty it under them; deploy after %s, or run phoenix rollback to move the traffic back to it",
		idle.label(), end.UTC().Format(time.RFC3339), d, end.UTC().Format(time.RFC3339))
}
