package deployer

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// leftVersion finds the launch template version an interrupted run of the
// same deploy made but never heard of (Ctrl-C while AWS answered
// CreateLaunchTemplateVersion) or never used: the template's latest
// version, newer than source, whose description is desc (phoenix's, naming
// the AMI and the version it was made from) and whose image is ami.
// Versions are immutable, so it is the very version this run would make;
// a rerun takes it up instead of leaving it behind unused, as the deploy
// loop picks up where AWS is. nil when there is none.
func (s *Session) leftVersion(ctx context.Context, templateID string, source int64, desc, ami string) (*TemplateVersion, error) {
	out, err := s.Clients.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(templateID), Versions: []string{"$Latest"}})
	if err != nil {
		return nil, fmt.Errorf("describing the latest version of launch template %s: %w", templateID, err)
	}
	if len(out.LaunchTemplateVersions) == 0 {
		return nil, nil
	}
	v := out.LaunchTemplateVersions[0]
	if aws.ToInt64(v.VersionNumber) <= source || aws.ToString(v.VersionDescription) != desc || v.LaunchTemplateData == nil || aws.ToString(v.LaunchTemplateData.ImageId) != ami {
		return nil, nil
	}
	return &TemplateVersion{ID: templateID, Name: aws.ToString(v.LaunchTemplateName), Version: aws.ToInt64(v.VersionNumber), AMI: ami, Description: desc}, nil
}

// weightSettlePolls is how many poll intervals a deploy lets pass after
// it changed the weights before it takes capacity away from the colour
// that lost traffic, or says that all traffic is where it moved it (30 s
// at the default poll interval). ModifyListener and ModifyRule answer
// before every node of the load balancer routes by the new weights, and
// AWS documents no bound; scaling a colour in while nodes still send it
// requests would fail them, as the traffic tests show on the sandbox,
// which plays the delay (docs/sandbox.md).
const weightSettlePolls = 3

// weightsSettling reports whether the last weight change of this deploy
// may not have reached every node of the load balancer yet.
func (s *Session) weightsSettling() bool {
	return !s.weightsAt.IsZero() && s.Now().Sub(s.weightsAt) < weightSettlePolls*s.d.PollInterval
}

// settlingStep is the pass that waits for the weights to settle.
func settlingStep(name string, h *Health) Step {
	return Step{Name: name, Health: h, Progress: "waiting for the load balancer's nodes to route by the new weights"}
}
