package deployer

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
