package sandbox

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Auto Scaling (query protocol): groups, tags, processes, activities and
// load balancer target group / traffic source attachments. The group
// controller is in autoscaling_controller.go, instance refresh in
// autoscaling_refresh.go, scheduled actions in autoscaling_scheduled.go.

// asgProcesses are the scaling processes SuspendProcesses knows.
var asgProcesses = []string{"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
	"HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}

const asgDeleting = "Delete in progress"

func init() {
	for name, h := range map[string]handler{
		"CreateAutoScalingGroup":              asgCreate,
		"UpdateAutoScalingGroup":              asgUpdate,
		"DeleteAutoScalingGroup":              asgDelete,
		"DescribeAutoScalingGroups":           asgDescribe,
		"DescribeAutoScalingInstances":        asgDescribeInstances,
		"SetDesiredCapacity":                  asgSetDesired,
		"SetInstanceHealth":                   asgSetInstanceHealth,
		"TerminateInstanceInAutoScalingGroup": asgTerminateInstance,
		"AttachLoadBalancerTargetGroups":      asgAttachTargetGroups,
		"DetachLoadBalancerTargetGroups":      asgDetachTargetGroups,
		"AttachTrafficSources":                asgAttachTrafficSources,
		"DetachTrafficSources":                asgDetachTrafficSources,
		"DescribeLoadBalancerTargetGroups":    asgDescribeTargetGroups,
		"DescribeTrafficSources":              asgDescribeTrafficSources,
		"CreateOrUpdateTags":                  asgCreateTags,
		"DeleteTags":                          asgDeleteTags,
		"DescribeTags":                        asgDescribeTags,
		"SuspendProcesses":                    asgSuspend,
		"ResumeProcesses":                     asgResume,
		"DescribeScalingActivities":           asgDescribeActivities,
		"DescribeScalingProcessTypes":         asgDescribeProcessTypes,
	} {
		register("autoscaling", name, h)
	}
}

func validation(format string, args ...any) *APIError {
	return errf("ValidationError", format, args...)
}

// asgTime is the timestamp format of activity causes.
func asgTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// group finds a group by name for any action.
func (c *call) group(name string) (*AutoScalingGroup, *APIError) {
	if name == "" {
		return nil, validation("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null")
	}
	g, ok := c.r.ASGs[name]
	if !ok || c.hidden(g.Created) {
		return nil, validation("AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
	}
	return g, nil
}

// liveGroup is group for actions that change a group, which AWS refuses
// while the group is being deleted.
func (c *call) liveGroup(name string) (*AutoScalingGroup, *APIError) {
	g, err := c.group(name)
	if err != nil {
		return nil, err
	}
	if g.Status == asgDeleting {
		return nil, errf("ResourceInUse", "AutoScalingGroup %s is pending delete.", name)
	}
	return g, nil
}

// parseLaunchTemplateRef reads a LaunchTemplateSpecification and checks
// the template and version exist, filling in both id and name.
func (r *Region) parseLaunchTemplateRef(p Params) (*LaunchTemplateRef, *APIError) {
	ref := &LaunchTemplateRef{ID: p.Get("LaunchTemplateId"), Name: p.Get("LaunchTemplateName"), Version: p.Get("Version")}
	if (ref.ID == "") == (ref.Name == "") {
		return nil, validation("Valid requests must contain either launchTemplateId or LaunchTemplateName")
	}
	lt, v, err := r.resolveLaunchTemplate(ref.ID, ref.Name, ref.Version)
	if err != nil {
		return nil, validation("You must use a valid fully-formed launch template. %s", err.Message)
	}
	// "On each call to create or update your Auto Scaling group, Amazon
	// EC2 Auto Scaling will resolve the Systems Manager parameter in the
	// launch template."
	// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
	if _, err := r.resolveImageAlias(v.Data.ImageID); err != nil {
		return nil, validation("You must use a valid fully-formed launch template. %s", err.Message)
	}
	ref.ID, ref.Name = lt.ID, lt.Name
	if ref.Version == "" {
		ref.Version = "$Default"
	}
	return ref, nil
}

// parseASGTags reads Tags.member.N for a group (CreateAutoScalingGroup,
// CreateOrUpdateTags, DeleteTags).
func parseASGTags(p Params, group string) (map[string][]ASGTag, *APIError) {
	out := map[string][]ASGTag{}
	for _, t := range p.MemberStructs("Tags") {
		tag := ASGTag{Key: t.Get("Key"), Value: t.Get("Value")}
		if tag.Key == "" {
			return nil, validation("1 validation error detected: Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null")
		}
		if strings.HasPrefix(tag.Key, "aws:") {
			return nil, validation("Tag keys starting with 'aws:' are reserved for internal use")
		}
		var err *APIError
		if tag.PropagateAtLaunch, err = t.Bool("PropagateAtLaunch", false); err != nil {
			return nil, validation("%s", err.Message)
		}
		id := t.Get("ResourceId")
		if id == "" {
			id = group
		}
		if rt := t.Get("ResourceType"); rt != "" && rt != "auto-scaling-group" {
			return nil, validation("Invalid resource type %s; the only valid resource type is auto-scaling-group", rt)
		}
		out[id] = append(out[id], tag)
	}
	return out, nil
}

func setASGTag(g *AutoScalingGroup, t ASGTag) {
	for i := range g.Tags {
		if g.Tags[i].Key == t.Key {
			g.Tags[i] = t
			return
		}
	}
	g.Tags = append(g.Tags, t)
	sort.Slice(g.Tags, func(i, j int) bool { return g.Tags[i].Key < g.Tags[j].Key })
}

// applyGroupInput reads the fields Create and Update share into ng.
func (c *call) applyGroupInput(ng *AutoScalingGroup, create bool) *APIError {
	p, r := c.p, c.r
	named, err := c.applyLaunchSource(ng)
	if err != nil {
		return err
	}
	if !named && create {
		return validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	} else if !named && ng.LaunchTemplate != nil {
		// Every update resolves the parameter of the group's launch
		// template, also when it leaves the template as it is.
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
		if _, v, err := r.resolveLaunchTemplate(ng.LaunchTemplate.ID, "", ng.LaunchTemplate.Version); err == nil {
			if _, err := r.resolveImageAlias(v.Data.ImageID); err != nil {
				return validation("You must use a valid fully-formed launch template. %s", err.Message)
			}
		}
	}
	ints := []struct {
		key string
		dst *int
	}{{"MinSize", &ng.MinSize}, {"MaxSize", &ng.MaxSize}, {"DefaultCooldown", &ng.DefaultCooldown}, {"HealthCheckGracePeriod", &ng.HealthCheckGracePeriod}}
	for _, f := range ints {
		v, err := p.IntPtr(f.key)
		if err != nil {
			return validation("%s", err.Message)
		}
		if v != nil {
			if *v < 0 {
				return validation("Value %d for %s must be greater than or equal to 0", *v, f.key)
			}
			*f.dst = *v
		}
	}
	desired, err := p.IntPtr("DesiredCapacity")
	if err != nil {
		return validation("%s", err.Message)
	}
	switch {
	case desired != nil:
		ng.DesiredCapacity = *desired
	case create:
		ng.DesiredCapacity = ng.MinSize
	case p.Has("MinSize") && ng.MinSize > ng.DesiredCapacity:
		ng.DesiredCapacity = ng.MinSize
	case p.Has("MaxSize") && ng.MaxSize < ng.DesiredCapacity:
		ng.DesiredCapacity = ng.MaxSize
	}
	if ng.MaxSize < ng.MinSize {
		return validation("Max bound, %d, must be greater than or equal to min bound, %d", ng.MaxSize, ng.MinSize)
	}
	if ng.DesiredCapacity < ng.MinSize || ng.DesiredCapacity > ng.MaxSize {
		return validation("Desired capacity:%d must be between the specified min size:%d and max size:%d", ng.DesiredCapacity, ng.MinSize, ng.MaxSize)
	}
	if w, err := p.IntPtr("DefaultInstanceWarmup"); err != nil {
		return validation("%s", err.Message)
	} else if w != nil {
		switch {
		case *w == -1 && !create:
			ng.DefaultInstanceWarmup = nil
		case *w < 0:
			return validation("DefaultInstanceWarmup must be greater than or equal to 0, or -1 to remove a previously set value.")
		default:
			ng.DefaultInstanceWarmup = w
		}
	}
	if arn := p.Get("ServiceLinkedRoleARN"); arn != "" {
		// The group's launches use this role; it must be an Auto Scaling
		// service-linked role of the account (the default one or one with
		// a custom suffix).
		// https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
		m := asgServiceLinkedRole.FindStringSubmatch(arn)
		if m == nil || m[1] != c.r.Account {
			return validation("ARN specified is not a valid service-linked role for Amazon EC2 Auto Scaling: %s", arn)
		}
		ng.ServiceLinkedRoleARN = arn
	} else if create {
		ng.ServiceLinkedRoleARN = defaultASGRole(c.r.Account)
	}
	if t := p.Get("HealthCheckType"); t != "" {
		if t != "EC2" && t != "ELB" {
			return validation("Health check type must be one of EC2 or ELB; the sandbox does not support %s", t)
		}
		ng.HealthCheckType = t
	}
	if v := p.Get("VPCZoneIdentifier"); v != "" {
		var subnets, azs []string
		vpc := ""
		for _, id := range strings.Split(v, ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			sn, ok := r.Subnets[id]
			if !ok {
				return validation("The subnet ID '%s' does not exist", id)
			}
			if vpc != "" && sn.VpcID != vpc {
				return validation("The subnets %s must all be in the same VPC", v)
			}
			vpc = sn.VpcID
			subnets = append(subnets, id)
			if !contains(azs, sn.AZ) {
				azs = append(azs, sn.AZ)
			}
		}
		sort.Strings(azs)
		ng.SubnetIDs, ng.AZs = subnets, azs
	} else if azs := p.Members("AvailabilityZones"); len(azs) > 0 {
		for _, az := range azs {
			if !contains(r.azs(), az) {
				return validation("Invalid Availability Zone: [%s]", az)
			}
		}
		ng.AZs, ng.SubnetIDs = azs, nil
	}
	if create && len(ng.AZs) == 0 {
		return validation("At least one Availability Zone or VPC Subnet is required.")
	}
	return c.applyStatesInput(ng)
}

var asgServiceLinkedRole = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/aws-service-role/autoscaling\.amazonaws\.com/AWSServiceRoleForAutoScaling(_[\w+=,.@-]{1,64})?$`)

// defaultASGRole is an account's default Auto Scaling service-linked role.
func defaultASGRole(account string) string {
	return "arn:aws:iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
}

func asgCreate(c *call) (any, *APIError) {
	name := c.p.Get("AutoScalingGroupName")
	if name == "" || len(name) > 255 {
		return nil, validation("1 validation error detected: Value at 'autoScalingGroupName' failed to satisfy constraint: Member must have length between 1 and 255")
	}
	if _, ok := c.r.ASGs[name]; ok {
		return nil, errf("AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name %s already exists", name)
	}
	now := c.w.now()
	g := &AutoScalingGroup{
		Name: name, ARN: c.r.arn("autoscaling", "autoScalingGroup:"+newUUID()+":autoScalingGroupName/"+name),
		DefaultCooldown: 300, HealthCheckType: "EC2", Created: now,
	}
	if err := c.applyGroupInput(g, true); err != nil {
		return nil, err
	}
	tgs, err := c.targetGroupsParam(c.p.Members("TargetGroupARNs"), c.p.MemberStructs("TrafficSources"))
	if err != nil {
		return nil, err
	}
	g.TargetGroupARNs = tgs
	tags, err := parseASGTags(c.p, name)
	if err != nil {
		return nil, err
	}
	for id, ts := range tags {
		if id != name {
			return nil, validation("The tag resource id %s does not match the group %s", id, name)
		}
		for _, t := range ts {
			setASGTag(g, t)
		}
	}
	g.ctl = newASGControl()
	g.ctl.setCause(now, fmt.Sprintf("a user request created an AutoScalingGroup changing the desired capacity from 0 to %d.", g.DesiredCapacity))
	c.r.ASGs[name] = g
	return nil, nil
}

func asgUpdate(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if rf := g.activeRefresh(); rf != nil && (rf.Desired != nil || rf.DesiredMixed != nil) && (c.p.HasSub("LaunchTemplate") || c.p.HasSub("MixedInstancesPolicy") || c.p.Get("LaunchConfigurationName") != "") {
		return nil, validation("An active instance refresh with a desired configuration exists. All configuration options derived from the desired configuration are not available for update while the instance refresh is active.")
	}
	ng := *g
	if err := c.applyGroupInput(&ng, false); err != nil {
		return nil, err
	}
	if ng.DesiredCapacity != g.DesiredCapacity {
		ng.ctl.setCause(c.w.now(), fmt.Sprintf("a user request update of AutoScalingGroup constraints to min: %d, max: %d, desired: %d changing the desired capacity from %d to %d.",
			ng.MinSize, ng.MaxSize, ng.DesiredCapacity, g.DesiredCapacity, ng.DesiredCapacity))
	}
	*g = ng
	return nil, nil
}

func asgDelete(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	force, err := c.p.Bool("ForceDelete", false)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	if g.Status == asgDeleting {
		return nil, nil
	}
	if (len(g.Instances) > 0 || len(g.WarmInstances) > 0) && !force {
		return nil, errf("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
	}
	now := c.w.now()
	if rf := g.activeRefresh(); rf != nil {
		rf.Status, rf.EndTime, rf.StatusReason = "Cancelled", now, "Cancelled because the Auto Scaling group is being deleted."
	}
	old := g.DesiredCapacity
	g.ScheduledActions = nil // they go with the group, at once
	g.Status, g.MinSize, g.MaxSize, g.DesiredCapacity = asgDeleting, 0, 0, 0
	g.ctl.force = force
	g.ctl.setCause(now, fmt.Sprintf("a user request deleted the AutoScalingGroup changing the desired capacity from %d to 0.", old))
	return nil, nil
}

func asgSetDesired(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	if !c.p.Has("DesiredCapacity") {
		return nil, validation("1 validation error detected: Value null at 'desiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	d, err := c.p.Int("DesiredCapacity", 0)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	if d > g.MaxSize {
		return nil, validation("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", d, g.MaxSize)
	}
	if d < g.MinSize {
		return nil, validation("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", d, g.MinSize)
	}
	if d != g.DesiredCapacity {
		g.ctl.setCause(c.w.now(), fmt.Sprintf("a user request explicitly set group desired capacity changing the desired capacity from %d to %d.", g.DesiredCapacity, d))
		g.DesiredCapacity = d
	}
	return nil, nil
}

// findASGInstance finds the group and group instance of an instance id.
func (r *Region) findASGInstance(id string) (*AutoScalingGroup, *ASGInstance) {
	for _, g := range r.ASGs {
		for _, in := range g.Instances {
			if in.ID == id {
				return g, in
			}
		}
	}
	return nil, nil
}

func (c *call) managedInstance() (*AutoScalingGroup, *ASGInstance, *APIError) {
	id := c.p.Get("InstanceId")
	g, in := c.r.findASGInstance(id)
	if in == nil {
		return nil, nil, validation("Instance Id not found - No managed instance found for instance ID: %s", id)
	}
	return g, in, nil
}

func asgSetInstanceHealth(c *call) (any, *APIError) {
	g, in, err := c.managedInstance()
	if err != nil {
		return nil, err
	}
	status := c.p.Get("HealthStatus")
	if status != "Healthy" && status != "Unhealthy" {
		return nil, validation("Valid values for HealthStatus are Healthy and Unhealthy")
	}
	respect, err := c.p.Bool("ShouldRespectGracePeriod", true)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	now := c.w.now()
	if respect && status == "Unhealthy" && now.Before(in.launchedAt.Add(c.w.timing.scale(time.Duration(g.HealthCheckGracePeriod)*time.Second))) {
		return nil, nil
	}
	if in.LifecycleState != "Terminating" {
		in.HealthStatus = status
		if status == "Unhealthy" {
			g.ctl.unhealthyCause[in.ID] = fmt.Sprintf("At %s an instance was taken out of service in response to a user health-check.", asgTime(now))
		}
	}
	return nil, nil
}

func asgTerminateInstance(c *call) (any, *APIError) {
	g, in, err := c.managedInstance()
	if err != nil {
		return nil, err
	}
	if !c.p.Has("ShouldDecrementDesiredCapacity") {
		return nil, validation("1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	dec, err := c.p.Bool("ShouldDecrementDesiredCapacity", false)
	if err != nil {
		return nil, validation("%s", err.Message)
	}
	if in.LifecycleState == "Terminating" {
		if act := g.ctl.termAct[in.ID]; act != nil {
			return []*X{renderActivity("Activity", g, act)}, nil
		}
	}
	now := c.w.now()
	cause := fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", asgTime(now), in.ID)
	if dec {
		if g.DesiredCapacity <= g.MinSize {
			return nil, validation("Currently, desiredCapacity (%d) is at minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.DesiredCapacity, g.MinSize)
		}
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.", asgTime(now), in.ID, g.DesiredCapacity, g.DesiredCapacity-1)
		g.DesiredCapacity--
	}
	act := c.r.asgStartTerminate(g, in, cause, false)
	return []*X{renderActivity("Activity", g, act)}, nil
}

// targetGroupsParam checks TargetGroupARNs.member and TrafficSources of
// type elbv2 and returns the ARNs.
func (c *call) targetGroupsParam(arns []string, sources []Params) ([]string, *APIError) {
	for _, s := range sources {
		arn, typ := s.Get("Identifier"), s.Get("Type")
		if typ != "" && typ != "elbv2" {
			return nil, validation("The sandbox supports traffic sources of type elbv2 only, not %s", typ)
		}
		arns = append(arns, arn)
	}
	var out []string
	for _, arn := range arns {
		if _, ok := c.r.TargetGroups[arn]; !ok {
			return nil, validation("Provided Target Groups may not be valid. Please ensure they exist and try again.")
		}
		if !contains(out, arn) {
			out = append(out, arn)
		}
	}
	return out, nil
}

func (c *call) attachTargetGroups(sources []Params) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	arns, err := c.targetGroupsParam(c.p.Members("TargetGroupARNs"), sources)
	if err != nil {
		return nil, err
	}
	for _, arn := range arns {
		if contains(g.TargetGroupARNs, arn) {
			continue
		}
		g.TargetGroupARNs = append(g.TargetGroupARNs, arn)
		if g.suspended("AddToLoadBalancer") {
			continue
		}
		for _, in := range g.Instances {
			if in.LifecycleState != "Terminating" {
				c.r.registerTarget(c.r.TargetGroups[arn], in.ID, 0)
			}
		}
	}
	return nil, nil
}

func (c *call) detachTargetGroups(sources []Params) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	arns := c.p.Members("TargetGroupARNs")
	for _, s := range sources {
		arns = append(arns, s.Get("Identifier"))
	}
	for _, arn := range arns {
		if !contains(g.TargetGroupARNs, arn) {
			return nil, validation("Trying to remove Target Groups that are not part of the group {%s}.", arn)
		}
	}
	for _, arn := range arns {
		for i, a := range g.TargetGroupARNs {
			if a == arn {
				g.TargetGroupARNs = append(g.TargetGroupARNs[:i:i], g.TargetGroupARNs[i+1:]...)
				break
			}
		}
		if tg := c.r.TargetGroups[arn]; tg != nil {
			for _, in := range g.Instances {
				c.r.deregisterTarget(tg, in.ID, 0)
			}
		}
	}
	return nil, nil
}

func asgAttachTargetGroups(c *call) (any, *APIError) { return c.attachTargetGroups(nil) }
func asgDetachTargetGroups(c *call) (any, *APIError) { return c.detachTargetGroups(nil) }
func asgAttachTrafficSources(c *call) (any, *APIError) {
	return c.attachTargetGroups(c.p.MemberStructs("TrafficSources"))
}
func asgDetachTrafficSources(c *call) (any, *APIError) {
	return c.detachTargetGroups(c.p.MemberStructs("TrafficSources"))
}

// targetGroupState is the attachment state AWS reports: Added once
// registered, InService once an instance passed the ELB health check.
func (r *Region) targetGroupState(g *AutoScalingGroup, arn string) string {
	tg := r.TargetGroups[arn]
	if tg == nil {
		return "Removed"
	}
	for _, t := range tg.Targets {
		for _, in := range g.Instances {
			if t.ID == in.ID && t.State == "healthy" {
				return "InService"
			}
		}
	}
	return "Added"
}

// pageASG pages autoscaling lists with MaxRecords (at most 100) and the
// InvalidNextToken error.
func pageASG[T any](c *call, items []T, def int) ([]T, *X, *APIError) {
	max, err := c.p.Int("MaxRecords", def)
	if err != nil {
		return nil, nil, validation("%s", err.Message)
	}
	if max < 1 || max > 100 {
		return nil, nil, validation("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100", max)
	}
	tok := c.p.Get("NextToken")
	out, next, perr := page(items, tok, max)
	if perr != nil {
		return nil, nil, errf("InvalidNextToken", "The token '%s' is invalid.", tok)
	}
	return out, Opt("NextToken", next), nil
}

func asgDescribeTargetGroups(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	arns, next, err := pageASG(c, g.TargetGroupARNs, 100)
	if err != nil {
		return nil, err
	}
	return []*X{List("LoadBalancerTargetGroups", Items("member", arns, func(a string) []*X {
		return []*X{T("LoadBalancerTargetGroupARN", a), T("State", c.r.targetGroupState(g, a))}
	})), next}, nil
}

func asgDescribeTrafficSources(c *call) (any, *APIError) {
	g, err := c.group(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	arns := g.TargetGroupARNs
	if t := c.p.Get("TrafficSourceType"); t != "" && t != "elbv2" {
		arns = nil
	}
	arns, next, err := pageASG(c, arns, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("TrafficSources", Items("member", arns, func(a string) []*X {
		return []*X{T("TrafficSource", a), T("State", c.r.targetGroupState(g, a)), T("Identifier", a), T("Type", "elbv2")}
	})), next}, nil
}

// sortedGroups returns the region's visible groups by name.
func (c *call) sortedGroups() []*AutoScalingGroup {
	var out []*AutoScalingGroup
	for _, g := range c.r.ASGs {
		if !c.hidden(g.Created) {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// asgFilter is one Filters.member of the Describe actions.
type asgFilter struct {
	Name   string
	Values []string
}

func parseASGFilters(p Params, allowed func(string) bool, allowedText string) ([]asgFilter, *APIError) {
	var out []asgFilter
	for _, f := range p.MemberStructs("Filters") {
		n := f.Get("Name")
		if !allowed(n) {
			return nil, validation("Filter type %s is not correct. Allowed Filter types are: %s", n, allowedText)
		}
		out = append(out, asgFilter{Name: n, Values: f.Members("Values")})
	}
	return out, nil
}

// matchASGFilters ANDs filters and ORs each filter's values; fields
// returns a filter's values for the item.
func matchASGFilters(fs []asgFilter, fields func(name string) []string) bool {
	for _, f := range fs {
		ok := false
		for _, v := range fields(f.Name) {
			if contains(f.Values, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func asgDescribe(c *call) (any, *APIError) {
	names := c.p.Members("AutoScalingGroupNames")
	filters, err := parseASGFilters(c.p, func(n string) bool {
		return n == "tag-key" || n == "tag-value" || strings.HasPrefix(n, "tag:")
	}, "tag-key tag-value tag:<key>")
	if err != nil {
		return nil, err
	}
	var groups []*AutoScalingGroup
	for _, g := range c.sortedGroups() {
		if len(names) > 0 && !contains(names, g.Name) {
			continue
		}
		if !matchASGFilters(filters, func(n string) []string {
			var vals []string
			for _, t := range g.Tags {
				switch {
				case n == "tag-key":
					vals = append(vals, t.Key)
				case n == "tag-value":
					vals = append(vals, t.Value)
				case n == "tag:"+t.Key:
					vals = append(vals, t.Value)
				}
			}
			return vals
		}) {
			continue
		}
		groups = append(groups, g)
	}
	groups, next, err := pageASG(c, groups, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("AutoScalingGroups", Items("member", groups, func(g *AutoScalingGroup) []*X { return c.r.renderGroup(g) })), next}, nil
}

func renderASGLaunchTemplate(name string, ref *LaunchTemplateRef) *X {
	if ref == nil {
		return nil
	}
	return E(name, Opt("LaunchTemplateId", ref.ID), Opt("LaunchTemplateName", ref.Name), Opt("Version", ref.Version))
}

func renderASGTags(g *AutoScalingGroup, tags []ASGTag) *X {
	return List("Tags", Items("member", tags, func(t ASGTag) []*X {
		return []*X{T("ResourceId", g.Name), T("ResourceType", "auto-scaling-group"), T("Key", t.Key), T("Value", t.Value), B("PropagateAtLaunch", t.PropagateAtLaunch)}
	}))
}

func (r *Region) renderGroup(g *AutoScalingGroup) []*X {
	suspended := Items("member", g.Suspended, func(p string) []*X {
		return []*X{T("ProcessName", p), T("SuspensionReason", "User suspended at "+asgTime(g.ctl.suspendedAt[p]))}
	})
	var vpcZone *X
	if len(g.SubnetIDs) > 0 {
		vpcZone = T("VPCZoneIdentifier", strings.Join(g.SubnetIDs, ","))
	}
	return []*X{
		T("AutoScalingGroupName", g.Name), T("AutoScalingGroupARN", g.ARN),
		Opt("LaunchConfigurationName", g.LaunchConfiguration),
		renderASGLaunchTemplate("LaunchTemplate", g.LaunchTemplate),
		renderMixedInstancesPolicy("MixedInstancesPolicy", g.MixedInstancesPolicy),
		I("MinSize", g.MinSize), I("MaxSize", g.MaxSize), I("DesiredCapacity", g.DesiredCapacity),
		I("DefaultCooldown", g.DefaultCooldown),
		List("AvailabilityZones", Strings("member", g.AZs)),
		List("LoadBalancerNames", nil),
		List("TargetGroupARNs", Strings("member", g.TargetGroupARNs)),
		T("HealthCheckType", g.HealthCheckType), I("HealthCheckGracePeriod", g.HealthCheckGracePeriod),
		List("Instances", Items("member", g.Instances, func(in *ASGInstance) []*X {
			return []*X{T("InstanceId", in.ID), T("InstanceType", in.InstanceType), T("AvailabilityZone", in.AZ),
				T("LifecycleState", in.lifecycleState()), T("HealthStatus", in.HealthStatus),
				renderInstanceLaunchSource(in), B("ProtectedFromScaleIn", in.ProtectedFromScaleIn)}
		})),
		Time("CreatedTime", g.Created),
		List("SuspendedProcesses", suspended),
		vpcZone,
		List("EnabledMetrics", nil),
		Opt("Status", g.Status),
		renderASGTags(g, g.Tags),
		List("TerminationPolicies", Strings("member", []string{"Default"})),
		B("NewInstancesProtectedFromScaleIn", g.NewInstancesProtectedFromScaleIn),
		renderMaintenancePolicy(g),
		T("ServiceLinkedRoleARN", g.launchRole(r.Account)),
		B("CapacityRebalance", false),
		List("TrafficSources", Items("member", g.TargetGroupARNs, func(a string) []*X {
			return []*X{T("Identifier", a), T("Type", "elbv2")}
		})),
		IPtr("DefaultInstanceWarmup", g.DefaultInstanceWarmup),
	}
}

func asgDescribeInstances(c *call) (any, *APIError) {
	ids := c.p.Members("InstanceIds")
	type pair struct {
		g  *AutoScalingGroup
		in *ASGInstance
	}
	var all []pair
	for _, g := range c.sortedGroups() {
		for _, in := range g.Instances {
			if len(ids) == 0 || contains(ids, in.ID) {
				all = append(all, pair{g, in})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].in.ID < all[j].in.ID })
	all, next, err := pageASG(c, all, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("AutoScalingInstances", Items("member", all, func(p pair) []*X {
		return []*X{T("InstanceId", p.in.ID), T("InstanceType", p.in.InstanceType), T("AutoScalingGroupName", p.g.Name),
			T("AvailabilityZone", p.in.AZ), T("LifecycleState", p.in.lifecycleState()), T("HealthStatus", strings.ToUpper(p.in.HealthStatus)),
			renderInstanceLaunchSource(p.in), B("ProtectedFromScaleIn", p.in.ProtectedFromScaleIn)}
	})), next}, nil
}

// Tags.

func (c *call) tagTargets() (map[*AutoScalingGroup][]ASGTag, *APIError) {
	byID, err := parseASGTags(c.p, "")
	if err != nil {
		return nil, err
	}
	out := map[*AutoScalingGroup][]ASGTag{}
	for id, tags := range byID {
		g, err := c.liveGroup(id)
		if err != nil {
			return nil, err
		}
		out[g] = tags
	}
	return out, nil
}

func asgCreateTags(c *call) (any, *APIError) {
	targets, err := c.tagTargets()
	if err != nil {
		return nil, err
	}
	for g, tags := range targets {
		for _, t := range tags {
			setASGTag(g, t)
		}
		if len(g.Tags) > 50 {
			return nil, errf("LimitExceeded", "The number of tags for the AutoScalingGroup %s exceeds the limit of 50.", g.Name)
		}
	}
	return nil, nil
}

func asgDeleteTags(c *call) (any, *APIError) {
	targets, err := c.tagTargets()
	if err != nil {
		return nil, err
	}
	for g, tags := range targets {
		kept := g.Tags[:0:0]
		for _, have := range g.Tags {
			drop := false
			for _, t := range tags {
				if t.Key == have.Key {
					drop = true
				}
			}
			if !drop {
				kept = append(kept, have)
			}
		}
		g.Tags = kept
	}
	return nil, nil
}

func asgDescribeTags(c *call) (any, *APIError) {
	names := map[string]bool{"auto-scaling-group": true, "key": true, "value": true, "propagate-at-launch": true}
	filters, err := parseASGFilters(c.p, func(n string) bool { return names[n] }, "auto-scaling-group key value propagate-at-launch")
	if err != nil {
		return nil, err
	}
	type tagOf struct {
		g *AutoScalingGroup
		t ASGTag
	}
	var all []tagOf
	for _, g := range c.sortedGroups() {
		for _, t := range g.Tags {
			if matchASGFilters(filters, func(n string) []string {
				return map[string][]string{"auto-scaling-group": {g.Name}, "key": {t.Key}, "value": {t.Value},
					"propagate-at-launch": {strconv.FormatBool(t.PropagateAtLaunch)}}[n]
			}) {
				all = append(all, tagOf{g, t})
			}
		}
	}
	all, next, err := pageASG(c, all, 50)
	if err != nil {
		return nil, err
	}
	return []*X{List("Tags", Items("member", all, func(x tagOf) []*X {
		return []*X{T("ResourceId", x.g.Name), T("ResourceType", "auto-scaling-group"), T("Key", x.t.Key), T("Value", x.t.Value), B("PropagateAtLaunch", x.t.PropagateAtLaunch)}
	})), next}, nil
}

// Processes.

func (c *call) processesParam() ([]string, *APIError) {
	procs := c.p.Members("ScalingProcesses")
	for _, p := range procs {
		if !contains(asgProcesses, p) {
			return nil, validation("Invalid processes: [%s]", p)
		}
	}
	if len(procs) == 0 {
		procs = asgProcesses
	}
	return procs, nil
}

func asgSuspend(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	procs, err := c.processesParam()
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		if !contains(g.Suspended, p) {
			g.Suspended = append(g.Suspended, p)
			g.ctl.suspendedAt[p] = c.w.now()
		}
	}
	sort.Strings(g.Suspended)
	return nil, nil
}

func asgResume(c *call) (any, *APIError) {
	g, err := c.liveGroup(c.p.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	procs, err := c.processesParam()
	if err != nil {
		return nil, err
	}
	kept := g.Suspended[:0:0]
	for _, p := range g.Suspended {
		if !contains(procs, p) {
			kept = append(kept, p)
		}
	}
	g.Suspended = kept
	return nil, nil
}

func asgDescribeProcessTypes(c *call) (any, *APIError) {
	procs := append([]string(nil), asgProcesses...)
	sort.Strings(procs)
	return []*X{List("Processes", Items("member", procs, func(p string) []*X { return []*X{T("ProcessName", p)} }))}, nil
}

// Activities.

func renderActivity(name string, g *AutoScalingGroup, a *ScalingActivity) *X {
	return E(name, T("ActivityId", a.ID), T("AutoScalingGroupName", g.Name), T("AutoScalingGroupARN", g.ARN),
		T("Description", a.Description), T("Cause", a.Cause), Time("StartTime", a.StartTime), Time("EndTime", a.EndTime),
		T("StatusCode", a.Status), Opt("StatusMessage", a.StatusMsg), I("Progress", a.Progress),
		T("Details", g.ctl.details[a.ID]))
}

func asgDescribeActivities(c *call) (any, *APIError) {
	name := c.p.Get("AutoScalingGroupName")
	var groups []*AutoScalingGroup
	if name != "" {
		g, err := c.group(name)
		if err != nil {
			return nil, err
		}
		groups = []*AutoScalingGroup{g}
	} else {
		groups = c.sortedGroups()
	}
	ids := c.p.Members("ActivityIds")
	type actOf struct {
		g *AutoScalingGroup
		a *ScalingActivity
	}
	var all []actOf
	for _, g := range groups {
		for i := len(g.Activities) - 1; i >= 0; i-- {
			if a := g.Activities[i]; len(ids) == 0 || contains(ids, a.ID) {
				all = append(all, actOf{g, a})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].a.StartTime.After(all[j].a.StartTime) })
	all, next, err := pageASG(c, all, 100)
	if err != nil {
		return nil, err
	}
	items := make([]*X, 0, len(all))
	for _, x := range all {
		items = append(items, renderActivity("member", x.g, x.a))
	}
	return []*X{List("Activities", items), next}, nil
}
