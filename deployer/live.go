package deployer

import (
	"context"
)

// Live is the image a target serves now, as phoenix promote reads it.
type Live struct {
	// AMI is the image of the group's launch template version (for
	// blue-green, of the colour the listener forwards to).
	AMI string `json:"ami"`
	// Group is the Auto Scaling group that serves it.
	Group string `json:"group"`
	// Health is the load balancer's view of the serving group against AMI.
	Health *Health `json:"health"`
}

// Healthy reports whether every target serves AMI and is healthy.
func (l *Live) Healthy() bool { return l.AMI != "" && l.Health != nil && l.Health.OK() }

// Live reads what the target serves now. It makes no mutating call.
func (d *Deployer) Live(ctx context.Context) (*Live, error) {
	st, err := d.Status(ctx)
	if err != nil {
		return nil, err
	}
	l := &Live{Group: st.Group, Health: st.Health}
	if st.Template != nil {
		l.AMI = st.Template.AMI
	}
	return l, nil
}
