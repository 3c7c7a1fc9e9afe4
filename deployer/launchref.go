package deployer

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// A group whose launch template reference is "$Latest" (what Terraform's
// usual launch template + Auto Scaling group pattern writes) launches a
// new version the moment it exists; one on "$Default" launches whatever
// becomes the default. Auto Scaling resolves the reference at each launch:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/launch-templates.html
// A deploy that created its version with the new AMI before the gate
// passed would let any scale-out launch an image nobody vetted, and a
// failed deploy would leave $Latest on it. So before its first version a
// deploy holds such a group on the numbered version it resolves to (the
// RefTag tag keeps the reference it had, for any later run), and once
// the deploy has an outcome it puts the reference back, with the
// template made to resolve to the vetted image: on success the new
// version (the default version too, for "$Default"); after a rollback a
// copy of the version the group went back to becomes $Latest. Holding
// on a numbered version also lets Auto Scaling roll a refresh back,
// which it cannot do for a group on $Latest or $Default:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/instance-refresh-rollback.html

// RefTag marks a group that a deploy holds on a numbered launch template
// version; its value is the reference to put back ("$Latest" or
// "$Default").
const RefTag = "phoenix:launch-template-version"

// heldGroup is one group whose reference a deploy holds.
type heldGroup struct {
	group    string
	original string           // "$Latest" or "$Default"
	before   *TemplateVersion // the version the reference resolved to when the deploy began
	tagged   bool             // RefTag is written
	pinned   bool             // the group is on a numbered version
	done     bool
}

// settler says, once an execution has an outcome, which launch template
// version the target's groups now run (good) and which version the run
// made that must not be launched (discard, nil when none).
type settler interface {
	settled(success bool) (good, discard *TemplateVersion)
}

// numbered reports whether a launch template reference is a version number.
func numbered(v string) bool {
	_, err := strconv.Atoi(v)
	return err == nil
}

// groupRef is g's launch template reference, "$Default" when unset.
func groupRef(g astypes.AutoScalingGroup) string {
	if g.LaunchTemplate == nil {
		return ""
	}
	if v := aws.ToString(g.LaunchTemplate.Version); v != "" {
		return v
	}
	return "$Default"
}

func groupTag(g astypes.AutoScalingGroup, key string) string {
	for _, t := range g.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// heldGroups finds the target's groups that a deploy must hold: those on
// $Latest or $Default (unless the deploy changes nothing), and those a
// stopped deploy left held.
func (s *Session) heldGroups(ctx context.Context, noop bool) ([]*heldGroup, error) {
	var out []*heldGroup
	for _, g := range s.Groups {
		lt := g.LaunchTemplate
		if lt == nil {
			continue
		}
		ref, tag := groupRef(g), groupTag(g, RefTag)
		if tag == "" && (numbered(ref) || noop) {
			continue
		}
		h := &heldGroup{group: aws.ToString(g.AutoScalingGroupName), original: ref, tagged: tag != "", pinned: numbered(ref)}
		if tag != "" {
			h.original = tag
		}
		before, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), ref)
		if err != nil {
			return nil, err
		}
		h.before = before
		out = append(out, h)
	}
	return out, nil
}

// refChanges are the plan's lines for the groups a deploy would hold.
func (s *Session) refChanges(ctx context.Context, noop bool) ([]Change, error) {
	held, err := s.heldGroups(ctx, noop)
	if err != nil {
		return nil, err
	}
	var ch []Change
	for _, h := range held {
		if h.tagged {
			ch = append(ch, Change{Action: "restore", Detail: fmt.Sprintf("%q is held on %s by a deploy that stopped (%s tag): its reference goes back to %s once this deploy has an outcome", h.group, h.before, RefTag, h.original)})
			continue
		}
		after := "the new version is $Latest, so " + h.original + " launches it"
		if h.original == "$Default" {
			after = "the new version becomes the template's default version"
		}
		ch = append(ch, Change{Action: "hold", Detail: fmt.Sprintf("%q launches from %s (%s): held on version %d (%s tag) before the new version exists, so no scale-out launches the new AMI before it passes the gate; %s again afterwards: on success %s; after a rollback the template resolves to the image the group went back to",
			h.group, h.original, h.before, h.before.Version, RefTag, h.original, after)})
	}
	return ch, nil
}

// guardedRun holds the target's $Latest/$Default groups around an
// execution: it pins them before the execution's first step, and puts
// their references back after its outcome, one action per pass like
// every step.
type guardedRun struct {
	Execution
	s       *Session
	held    []*heldGroup
	outcome *Step // the execution's final step, once it has one
}

// noopRun is an execution that may find nothing to change.
type noopRun interface{ isNoop() bool }

// guardRefs wraps run when the target has groups to hold.
func (d *Deployer) guardRefs(ctx context.Context, s *Session, run Execution) (Execution, error) {
	nr, ok := run.(noopRun)
	held, err := s.heldGroups(ctx, ok && nr.isNoop())
	if err != nil {
		return nil, err
	}
	if len(held) == 0 {
		return run, nil
	}
	return &guardedRun{Execution: run, s: s, held: held}, nil
}

func (gr *guardedRun) Step(ctx context.Context) (Step, error) {
	return gr.step(ctx, true, gr.Execution.Step)
}

func (gr *guardedRun) RollbackStep(ctx context.Context) (Step, error) {
	return gr.step(ctx, false, gr.Execution.RollbackStep)
}

func (gr *guardedRun) step(ctx context.Context, forward bool, inner func(context.Context) (Step, error)) (Step, error) {
	if st, acted := gr.hold(ctx); acted {
		if st.State == StepFailed && !forward {
			// A rollback goes on without the hold: it moves the group
			// back to a version that passed the gate, and the reference
			// is still put back at the end.
			gr.s.Emit(Event{Kind: EventWarning, Step: "launch-template", Message: st.Message})
			for _, h := range gr.held {
				h.tagged, h.pinned = true, true
			}
			return Step{Name: "launch-template"}, nil
		}
		return st, nil
	}
	if gr.outcome == nil {
		st, err := inner(ctx)
		if err != nil || st.State == StepWorking {
			return st, err
		}
		if st.State == StepFailed && forward {
			// The rollback that follows restores the references.
			return st, nil
		}
		gr.outcome = &st
	}
	success := forward && gr.outcome.State == StepDone
	if st, acted := gr.restore(ctx, success); acted {
		return st, nil
	}
	out := *gr.outcome
	var left []string
	for _, h := range gr.held {
		if !h.done {
			left = append(left, h.group)
		}
	}
	if len(left) > 0 && out.State == StepDone {
		out.Message += fmt.Sprintf("; %s still held on a numbered launch template version (%s tag): see the warning above", strings.Join(left, ", "), RefTag)
	}
	return out, nil
}

// hold writes the tag, then pins, for the next group that needs it.
func (gr *guardedRun) hold(ctx context.Context) (Step, bool) {
	for _, h := range gr.held {
		switch {
		case !h.tagged:
			if err := gr.s.setGroupTag(ctx, h.group, RefTag, h.original); err != nil {
				return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, true
			}
			h.tagged = true
			return Step{Name: "launch-template", Action: fmt.Sprintf("recorded %q's launch template reference %s (%s tag)", h.group, h.original, RefTag)}, true
		case !h.pinned:
			if err := gr.s.setGroupRef(ctx, h.group, h.before.ID, strconv.FormatInt(h.before.Version, 10)); err != nil {
				return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, true
			}
			h.pinned = true
			return Step{Name: "launch-template", Action: fmt.Sprintf("held %q on %s (%s), which %s resolves to, until the new AMI has passed the gate", h.group, h.before, h.before.AMI, h.original)}, true
		}
	}
	return Step{}, false
}

// restore takes the next action that puts a held group's reference back.
func (gr *guardedRun) restore(ctx context.Context, success bool) (Step, bool) {
	var good, discard *TemplateVersion
	if st, ok := gr.Execution.(settler); ok {
		good, discard = st.settled(success)
	}
	fail := func(err error) (Step, bool) {
		gr.s.Emit(Event{Kind: EventWarning, Step: "launch-template", Message: err.Error()})
		return Step{}, false
	}
	for _, h := range gr.held {
		if h.done {
			continue
		}
		target, bad := h.before, (*TemplateVersion)(nil)
		if good != nil && good.ID == h.before.ID {
			target = good
			if discard != nil && discard.ID == good.ID {
				bad = discard
			}
		}
		g, err := gr.s.describeGroup(ctx, h.group)
		if err != nil {
			return fail(err)
		}
		if groupRef(*g) == h.original {
			if err := gr.s.deleteGroupTag(ctx, h.group, RefTag); err != nil {
				return fail(err)
			}
			h.done = true
			return Step{Name: "launch-template", Action: fmt.Sprintf("%q is on %s again (%s tag removed)", h.group, h.original, RefTag)}, true
		}
		resolved, err := gr.s.templateVersion(ctx, target.ID, "", h.original)
		if err != nil {
			return fail(err)
		}
		if resolved.AMI == target.AMI {
			if err := gr.s.setGroupRef(ctx, h.group, target.ID, h.original); err != nil {
				return fail(err)
			}
			return Step{Name: "launch-template", Action: fmt.Sprintf("put %q back on %s, which is %s (%s)", h.group, h.original, resolved, resolved.AMI)}, true
		}
		switch {
		case h.original == "$Default":
			if _, err := gr.s.Clients.EC2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(target.ID), DefaultVersion: aws.String(strconv.FormatInt(target.Version, 10))}); err != nil {
				return fail(fmt.Errorf("making version %d the default version of launch template %s: %w", target.Version, target.ID, err))
			}
			return Step{Name: "launch-template", Action: fmt.Sprintf("made %s (%s) the default version of launch template %s (it was version %d)", target, target.AMI, target.ID, resolved.Version)}, true
		case bad != nil && resolved.Version == bad.Version || !success && resolved.Version > target.Version && isPhoenixVersion(resolved):
			// $Latest is the version this deploy made (or a version
			// phoenix made that the group has rolled back from): a copy of
			// the version the group went back to takes its place, which
			// holds on AWS whatever deleting a latest version would do.
			out, err := gr.s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
				LaunchTemplateId: aws.String(target.ID), SourceVersion: aws.String(strconv.FormatInt(target.Version, 10)),
				VersionDescription: aws.String(orText(target.Description, versionDescription(target.AMI, nil))),
				LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(target.AMI)},
			})
			if err != nil {
				return fail(fmt.Errorf("creating a copy of %s so that $Latest launches %s again: %w", target, target.AMI, err))
			}
			n := aws.ToInt64(out.LaunchTemplateVersion.VersionNumber)
			return Step{Name: "launch-template", Action: fmt.Sprintf("created launch template %s version %d, a copy of version %d (%s), so that $Latest no longer launches %s (version %d)", target.ID, n, target.Version, target.AMI, resolved.AMI, resolved.Version)}, true
		}
		h.done = true
		gr.s.Emit(Event{Kind: EventWarning, Step: "launch-template", Message: fmt.Sprintf("%q stays on %s (%s): %s of launch template %s is now version %d (%s), which this deploy did not make, so putting the group back on %s would launch an image that has not passed the gate; set it back by hand once that version is safe, and remove its %s tag",
			h.group, target, target.AMI, h.original, target.ID, resolved.Version, resolved.AMI, h.original, RefTag)})
	}
	return Step{}, false
}

// isPhoenixVersion reports whether phoenix wrote the version.
func isPhoenixVersion(tv *TemplateVersion) bool {
	return strings.HasPrefix(tv.Description, "phoenix: ")
}

// Abort stops a rolling refresh that a Ctrl-C leaves behind on a held
// group: left alone, it would end with the group on the new version,
// launching an image that never passed the gate. Blue-green's own abort
// runs first.
func (gr *guardedRun) Abort(ctx context.Context) (string, error) {
	var did []string
	if a, ok := gr.Execution.(Aborter); ok {
		d, err := a.Abort(ctx)
		if d != "" {
			did = append(did, d)
		}
		if err != nil {
			return strings.Join(did, "; "), err
		}
	}
	if r, ok := gr.Execution.(*rollingRun); ok {
		d, err := r.stopRefresh(ctx)
		if d != "" {
			did = append(did, d)
		}
		if err != nil {
			return strings.Join(did, "; "), err
		}
	}
	if len(did) > 0 {
		did = append(did, fmt.Sprintf("the group stays held on its version (%s tag) until the same deploy runs again or phoenix rollback puts its reference back", RefTag))
	}
	return strings.Join(did, "; "), nil
}

// describeGroup reads one group by name.
func (s *Session) describeGroup(ctx context.Context, name string) (*astypes.AutoScalingGroup, error) {
	out, err := s.Clients.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return nil, fmt.Errorf("describing auto scaling group %q: %w", name, err)
	}
	for i := range out.AutoScalingGroups {
		if aws.ToString(out.AutoScalingGroups[i].AutoScalingGroupName) == name {
			return &out.AutoScalingGroups[i], nil
		}
	}
	return nil, fmt.Errorf("auto scaling group %q not found", name)
}

// setGroupRef points group at launch template id, version ref.
func (s *Session) setGroupRef(ctx context.Context, group, id, ref string) error {
	_, err := s.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id), Version: aws.String(ref)}})
	if err != nil {
		return fmt.Errorf("setting the launch template of %q to %s version %s: %w", group, id, ref, err)
	}
	return nil
}

func (s *Session) setGroupTag(ctx context.Context, group, key, value string) error {
	_, err := s.Clients.AutoScaling.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(group), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(key), Value: aws.String(value), PropagateAtLaunch: aws.Bool(false)}}})
	if err != nil {
		return fmt.Errorf("writing the %s tag of %q: %w", key, group, err)
	}
	return nil
}

func (s *Session) deleteGroupTag(ctx context.Context, group, key string) error {
	_, err := s.Clients.AutoScaling.DeleteTags(ctx, &autoscaling.DeleteTagsInput{Tags: []astypes.Tag{{
		ResourceId: aws.String(group), ResourceType: aws.String("auto-scaling-group"), Key: aws.String(key)}}})
	if err != nil {
		return fmt.Errorf("deleting the %s tag of %q: %w", key, group, err)
	}
	return nil
}
