package ebs

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepStopInstance stops the build instance so the AMI is consistent.
type stepStopInstance struct{}

func (s *stepStopInstance) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	inst, ok := state.Get(stateInstance).(*instanceInfo)
	if !ok {
		return halt(state, fmt.Errorf("no build instance in the build state"))
	}
	e := cl.EC2(c.Region)
	ui.Say(fmt.Sprintf("Stopping the build instance %s...", inst.ID))
	if _, err := e.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{inst.ID}}); err != nil {
		return halt(state, fmt.Errorf("stopping %s: %w", inst.ID, err))
	}
	err := waitFor(ctx, "instance "+inst.ID+" to stop", "instance_stopped_timeout", c.InstanceStoppedTimeout, c.PollInterval,
		func(ctx context.Context) (bool, string, error) {
			got, err := describeInstance(ctx, e, inst.ID)
			if err != nil || got == nil {
				return false, "not visible", err
			}
			if got.State.Name == ec2types.InstanceStateNameTerminated {
				return false, "terminated", fmt.Errorf("instance %s terminated instead of stopping", inst.ID)
			}
			return got.State.Name == ec2types.InstanceStateNameStopped, string(got.State.Name), nil
		})
	if err != nil {
		return halt(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepStopInstance) Cleanup(multistep.StateBag) {}
