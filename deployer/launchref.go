package deployer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	original string           // "$Latest" or "$Default", or a version number for a version naming an SSM parameter
	before   *TemplateVersion // the version the reference resolved to when the deploy began
	literal  *TemplateVersion // for a version naming an SSM parameter: its copy with the AMI written out
	tagged   bool             // RefTag is written
	pinned   bool             // the group is on a numbered version (for an alias: on literal)
	done     bool
}

// alias reports whether the group's version names its image by an SSM
// parameter.
func (h *heldGroup) alias() bool { return h.before.Alias != "" }

// tagValue is RefTag's value: the reference, and for an alias the
// version that names the parameter ("$Latest;5").
func (h *heldGroup) tagValue() string {
	if h.alias() {
		return h.original + ";" + strconv.FormatInt(h.before.Version, 10)
	}
	return h.original
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
	lt := groupTemplate(g)
	if lt == nil {
		return ""
	}
	if v := aws.ToString(lt.Version); v != "" {
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
		lt := groupTemplate(g)
		if lt == nil {
			continue
		}
		ref, tag := groupRef(g), groupTag(g, RefTag)
		if tag == "" && noop {
			continue
		}
		before, err := s.templateVersion(ctx, aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), ref)
		if err != nil {
			return nil, err
		}
		if tag == "" && numbered(ref) && before.Alias == "" {
			continue
		}
		h := &heldGroup{group: aws.ToString(g.AutoScalingGroupName), original: ref, before: before, tagged: tag != "", pinned: numbered(ref) && before.Alias == ""}
		if tag != "" {
			// Left by a stopped deploy: the group is on the numbered
			// version it was held on.
			orig, aliasVersion, isAlias := strings.Cut(tag, ";")
			h.original, h.pinned = orig, true
			if isAlias {
				h.literal = before
				if h.before, err = s.templateVersion(ctx, before.ID, "", aliasVersion); err != nil {
					return nil, err
				}
			}
		}
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
		if h.alias() && !h.tagged {
			p := parseAlias(h.before.Alias)
			ch = append(ch, Change{Action: "hold", Detail: fmt.Sprintf("%q launches from %s (%s), whose image is SSM parameter %s (now %s): held on a copy of that version with %s written out, so no launch uses the new AMI before it passes the gate; then %s is set to the new AMI and the group goes back to %s",
				h.group, h.original, h.before, p.ref(), h.before.AMI, h.before.AMI, p.Name, h.original)})
			continue
		}
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
	aliases []string // the image parameters the groups launch from
	first   bool     // move the parameters before the execution's first step
	done    *Step    // the execution's final step, once it has one
	pubs    map[string]*publication
	outcome *Step // the final step once the parameters are moved
}

// publication is one SSM parameter a deploy moves to its AMI.
type publication struct {
	version int64
	since   time.Time
	done    bool
}

// publisher is an execution that, when done, has put an AMI in place that
// the groups' SSM parameters must now name.
type publisher interface {
	published(forward bool) (ami string, ok bool)
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
	gr := &guardedRun{Execution: run, s: s}
	for _, h := range held {
		if h.alias() && !contains(gr.aliases, h.before.Alias) {
			gr.aliases = append(gr.aliases, h.before.Alias)
		}
	}
	if pf, ok := run.(prepublisher); ok && pf.publishFirst() {
		// Back to an image that has passed the gate before: the
		// parameter moves first, and the groups need no hold.
		gr.first = true
		for _, h := range held {
			if !h.alias() || h.tagged {
				gr.held = append(gr.held, h)
			}
		}
	} else {
		gr.held = held
	}
	if len(gr.held) == 0 && len(gr.aliases) == 0 {
		return run, nil
	}
	return gr, nil
}

// prepublisher is an execution that moves the image parameters before
// anything else: a rollback to a warm colour, whose image has passed the
// gate already and must be what its scale-outs launch from the moment it
// takes the traffic back.
type prepublisher interface{ publishFirst() bool }

func (gr *guardedRun) Step(ctx context.Context) (Step, error) {
	return gr.step(ctx, true, gr.Execution.Step)
}

func (gr *guardedRun) RollbackStep(ctx context.Context) (Step, error) {
	return gr.step(ctx, false, gr.Execution.RollbackStep)
}

func (gr *guardedRun) step(ctx context.Context, forward bool, inner func(context.Context) (Step, error)) (Step, error) {
	if gr.first {
		if st, acted := gr.publish(ctx, forward); acted {
			return st, nil
		}
	}
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
		if gr.done == nil {
			st, err := inner(ctx)
			if err != nil || st.State == StepWorking {
				return st, err
			}
			if st.State == StepFailed && forward {
				// The rollback that follows restores the references.
				return st, nil
			}
			gr.done = &st
		}
		if gr.done.State == StepDone {
			if st, acted := gr.publish(ctx, forward); acted {
				if st.State == StepFailed {
					gr.done = nil
				}
				return st, nil
			}
		}
		gr.outcome = gr.done
	}
	// A rollback that redeploys the previous image succeeds like a
	// deploy: the template ends on the version it made.
	redeploy := false
	if pub, ok := gr.Execution.(publisher); ok {
		_, redeploy = pub.published(false)
	}
	success := (forward || redeploy) && gr.outcome.State == StepDone
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
			if err := gr.s.setGroupTag(ctx, h.group, RefTag, h.tagValue()); err != nil {
				return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, true
			}
			h.tagged = true
			return Step{Name: "launch-template", Action: fmt.Sprintf("recorded %q's launch template reference %s (%s tag)", h.group, h.tagValue(), RefTag)}, true
		case h.alias() && h.literal == nil:
			tv, err := gr.s.literalCopy(ctx, h.before)
			if err != nil {
				return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, true
			}
			h.literal = tv
			if r, ok := gr.Execution.(*rollingRun); ok && r.previous != nil && r.previous.ID == tv.ID && r.previous.Version == h.before.Version {
				// The deploy builds on, and rolls back to, the copy.
				r.previous = tv
				gr.s.Template = tv
			}
			return Step{Name: "launch-template", Action: fmt.Sprintf("created %s: %s with its image %s written out as %s, to hold %q on while the deploy runs", tv, h.before, h.before.Alias, tv.AMI, h.group)}, true
		case h.alias() && !h.pinned:
			if err := gr.s.setGroupRef(ctx, h.group, h.literal.ID, strconv.FormatInt(h.literal.Version, 10)); err != nil {
				return Step{State: StepFailed, Name: "launch-template", Message: err.Error()}, true
			}
			h.pinned = true
			return Step{Name: "launch-template", Action: fmt.Sprintf("held %q on %s (%s) until the new AMI has passed the gate and %s names it", h.group, h.literal, h.literal.AMI, parseAlias(h.before.Alias).ref())}, true
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
		if h.alias() {
			if st, acted, err := gr.restoreAlias(ctx, h); err != nil {
				return fail(err)
			} else if acted {
				return st, true
			}
			continue
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

// setGroupRef points group at launch template id, version ref: its
// launch template, or its mixed instances policy's (the whole policy is
// sent again, with only the version changed).
func (s *Session) setGroupRef(ctx context.Context, group, id, ref string) error {
	spec := &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id), Version: aws.String(ref)}
	in := &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group), LaunchTemplate: spec}
	if s.groupIsMixed(group) {
		g, err := s.describeGroup(ctx, group)
		if err != nil {
			return err
		}
		if m := mixedWith(*g, spec); m != nil {
			in.LaunchTemplate, in.MixedInstancesPolicy = nil, m
		}
	}
	_, err := s.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, in)
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

// restoreAlias takes the next action that puts a group whose version
// names an SSM parameter back on its reference: that version itself, or
// $Latest/$Default resolving to a version that names the parameter.
func (gr *guardedRun) restoreAlias(ctx context.Context, h *heldGroup) (Step, bool, error) {
	if numbered(h.original) {
		if err := gr.s.setGroupRef(ctx, h.group, h.before.ID, h.original); err != nil {
			return Step{}, false, err
		}
		return Step{Name: "launch-template", Action: fmt.Sprintf("put %q back on %s, which launches %s", h.group, h.before, h.before.Alias)}, true, nil
	}
	resolved, err := gr.s.templateVersion(ctx, h.before.ID, "", h.original)
	if err != nil {
		return Step{}, false, err
	}
	if resolved.Alias == h.before.Alias {
		if err := gr.s.setGroupRef(ctx, h.group, h.before.ID, h.original); err != nil {
			return Step{}, false, err
		}
		return Step{Name: "launch-template", Action: fmt.Sprintf("put %q back on %s, which is %s and launches %s", h.group, h.original, resolved, h.before.Alias)}, true, nil
	}
	if h.original == "$Latest" && isPhoenixVersion(resolved) {
		// The versions this deploy made are newer: a copy of the version
		// that names the parameter becomes $Latest again.
		out, err := gr.s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId: aws.String(h.before.ID), SourceVersion: aws.String(strconv.FormatInt(h.before.Version, 10)),
			VersionDescription: aws.String(h.before.Description), LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(h.before.Alias)},
		})
		if err != nil {
			return Step{}, false, fmt.Errorf("creating a copy of %s so that $Latest names %s again: %w", h.before, h.before.Alias, err)
		}
		return Step{Name: "launch-template", Action: fmt.Sprintf("created launch template %s version %d, a copy of version %d, so that $Latest launches %s again", h.before.ID, aws.ToInt64(out.LaunchTemplateVersion.VersionNumber), h.before.Version, h.before.Alias)}, true, nil
	}
	h.done = true
	gr.s.Emit(Event{Kind: EventWarning, Step: "launch-template", Message: fmt.Sprintf("%q stays on %s: %s of launch template %s is now version %d, which phoenix did not make and which does not name %s; set the group back by hand, and remove its %s tag",
		h.group, h.literal, h.original, h.before.ID, resolved.Version, h.before.Alias, RefTag)})
	return Step{}, false, nil
}

// literalCopy creates a copy of tv, a version naming its image by an SSM
// parameter, with the AMI the parameter resolves to now written out.
func (s *Session) literalCopy(ctx context.Context, tv *TemplateVersion) (*TemplateVersion, error) {
	out, err := s.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId: aws.String(tv.ID), SourceVersion: aws.String(strconv.FormatInt(tv.Version, 10)),
		VersionDescription: aws.String(fmt.Sprintf("phoenix: %s, holds version %d (%s) during deploy %s", tv.AMI, tv.Version, tv.Alias, s.ID)),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(tv.AMI)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating a copy of %s with its image written out: %w", tv, err)
	}
	v := out.LaunchTemplateVersion
	return &TemplateVersion{ID: tv.ID, Name: tv.Name, Version: aws.ToInt64(v.VersionNumber), AMI: tv.AMI, Description: aws.ToString(v.VersionDescription), KMSKeys: tv.KMSKeys}, nil
}

// publish takes the next action that moves the SSM parameters of held
// groups to the AMI the execution has put in place and proven: one
// PutParameter each, then the wait until SSM has validated the version,
// then the selector's label. acted is false once every parameter names
// the AMI.
func (gr *guardedRun) publish(ctx context.Context, forward bool) (Step, bool) {
	pub, ok := gr.Execution.(publisher)
	if !ok {
		return Step{}, false
	}
	ami, ok := pub.published(forward)
	if !ok {
		return Step{}, false
	}
	if gr.pubs == nil {
		gr.pubs = map[string]*publication{}
	}
	failed := func(format string, args ...any) (Step, bool) {
		return Step{State: StepFailed, Name: "publish", Message: fmt.Sprintf(format, args...)}, true
	}
	for _, alias := range gr.aliases {
		p := parseAlias(alias)
		st := gr.pubs[p.Name]
		switch {
		case st == nil:
			cur, err := gr.s.resolveAlias(ctx, alias)
			if err != nil {
				return failed("%v", err)
			}
			if cur == ami {
				gr.pubs[p.Name] = &publication{done: true}
				continue
			}
			v, err := gr.s.publishImage(ctx, p, ami)
			if err != nil {
				return failed("%s passed the gate, but %v", ami, err)
			}
			gr.pubs[p.Name] = &publication{version: v, since: gr.s.Now()}
			return Step{Name: "publish", Action: fmt.Sprintf("wrote %s to SSM parameter %s as version %d (it was %s); SSM validates an aws:ec2:image value before launches can use it", ami, p.Name, v, cur)}, true
		case !st.done:
			ready, err := gr.s.imageVersionReady(ctx, p, st.version, ami)
			if err != nil {
				return failed("%v", err)
			}
			if !ready {
				if gr.s.Now().Sub(st.since) > publishTimeout {
					return failed("SSM did not validate version %d of parameter %s (%s as aws:ec2:image) within %s: launches would not use it", st.version, p.Name, ami, publishTimeout)
				}
				return Step{Name: "publish", Progress: fmt.Sprintf("waiting for SSM to validate version %d of %s (%s)", st.version, p.Name, ami)}, true
			}
			st.done = true
			if l := p.label(); l != "" {
				if err := gr.s.labelVersion(ctx, p, st.version); err != nil {
					return failed("%v", err)
				}
				return Step{Name: "publish", Action: fmt.Sprintf("moved label %s of SSM parameter %s to version %d (%s)", l, p.Name, st.version, ami)}, true
			}
			return Step{Name: "publish", Action: fmt.Sprintf("SSM parameter %s names %s (version %d): the groups that launch from it launch the new AMI", p.Name, ami, st.version)}, true
		}
	}
	return Step{}, false
}
