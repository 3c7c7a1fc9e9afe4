package deployer

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"
)

// Blue-green and warm pools. A scale-out takes a group's warmed
// instances before it launches new ones, and a new launch template
// version leaves the instances already in the pool as they were:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html#update-warm-pool
// so the new colour, scaled up on its new version, would serve from
// instances warmed on the image it ran before. An instance refresh
// replaces a warm pool's instances as well:
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRefreshWarmPoolProgress.html
// so before the new colour scales up, phoenix refreshes it (it has no
// instances in service then, only the pool) to the new version.

// warmPoolRun is a blue-green deploy's refresh of the new colour's warm
// pool.
type warmPoolRun struct {
	refresh string // the refresh replacing the pool
	done    bool   // the pool runs the new AMI (or there is none)
}

// staleWarmPool is how many of group's warm instances run another AMI
// than ami, with the pool; 0 when none or no pool.
func (s *Session) staleWarmPool(ctx context.Context, group, ami string) (int, *WarmPoolStatus, error) {
	w, err := s.readWarmPool(ctx, group)
	if err != nil || w == nil {
		return 0, nil, err
	}
	stale := 0
	for _, u := range w.AMIs {
		if u.AMI != ami {
			stale += u.Instances
		}
	}
	return stale, w, nil
}

// warmPoolChanges is the plan's line for the idle colour's warm pool.
func (s *Session) warmPoolChanges(ctx context.Context, idle *colour, ami string) ([]Change, error) {
	stale, w, err := s.staleWarmPool(ctx, idle.group(), ami)
	if err != nil || stale == 0 {
		return nil, err
	}
	return []Change{{Action: "refresh", Detail: fmt.Sprintf("the warm pool of %s first (an instance refresh to the new version while the colour has no instance in service): %d of its instances run %s, and a scale-out takes warm instances before it launches new ones", idle.label(), stale, amiUses(w.AMIs))}}, nil
}

// warmPoolStep is the new colour's warm pool step, before it scales up:
// it returns handled = false once the pool runs the new AMI.
func (run *bgRun) warmPoolStep(ctx context.Context, nw *colour) (st Step, handled bool, err error) {
	s := run.s
	if run.pool.done {
		return Step{}, false, nil
	}
	group := nw.group()
	if run.pool.refresh != "" {
		rf, err := s.latestRefresh(ctx, group)
		if err != nil {
			return Step{}, true, err
		}
		if rf == nil || aws.ToString(rf.InstanceRefreshId) != run.pool.refresh {
			return Step{State: StepFailed, Name: "scale", Message: fmt.Sprintf("instance refresh %s of %s's warm pool is gone", run.pool.refresh, nw.label())}, true, nil
		}
		r := refreshOf(rf)
		switch rf.Status {
		case astypes.InstanceRefreshStatusSuccessful:
			run.pool.done = true
			return Step{Name: "scale", Refresh: r, Action: fmt.Sprintf("the warm pool of %s runs %s (instance refresh %s)", nw.label(), run.ami, r.ID)}, true, nil
		case astypes.InstanceRefreshStatusPending, astypes.InstanceRefreshStatusInProgress, astypes.InstanceRefreshStatusBaking:
			return Step{Name: "scale", Refresh: r, Progress: fmt.Sprintf("refreshing the warm pool of %s to %s", nw.label(), run.version)}, true, nil
		}
		return Step{State: StepFailed, Name: "scale", Refresh: r, Message: fmt.Sprintf("instance refresh %s of %s's warm pool ended %s: %s", r.ID, nw.label(), r.Status, r.Reason)}, true, nil
	}
	stale, w, err := s.staleWarmPool(ctx, group, run.ami)
	if err != nil {
		return Step{}, true, err
	}
	if stale == 0 {
		run.pool.done = true
		return Step{}, false, nil
	}
	out, err := s.Clients.AutoScaling.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
		AutoScalingGroupName: aws.String(group), Strategy: astypes.RefreshStrategyRolling,
		DesiredConfiguration: &astypes.DesiredConfiguration{LaunchTemplate: &astypes.LaunchTemplateSpecification{
			LaunchTemplateId: aws.String(run.version.ID), Version: aws.String(strconv.FormatInt(run.version.Version, 10)),
		}},
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InstanceRefreshInProgress" {
			// The answer to an earlier start was lost: follow that refresh.
			if rf, rerr := s.latestRefresh(ctx, group); rerr == nil && rf != nil && refreshActive[rf.Status] {
				run.pool.refresh = aws.ToString(rf.InstanceRefreshId)
				return Step{Name: "scale", Action: fmt.Sprintf("following instance refresh %s of %s's warm pool", run.pool.refresh, nw.label())}, true, nil
			}
		}
		return Step{State: StepFailed, Name: "scale", Message: fmt.Sprintf("starting an instance refresh of %q for its warm pool: %v", group, err)}, true, nil
	}
	run.pool.refresh = aws.ToString(out.InstanceRefreshId)
	return Step{Name: "scale", Action: fmt.Sprintf("started instance refresh %s of %s to %s: %d of its warm instances run %s, and its scale-out would take them", run.pool.refresh, nw.label(), run.version, stale, amiUses(w.AMIs))}, true, nil
}
