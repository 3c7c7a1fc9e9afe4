package sandbox

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EC2 instances: RunInstances and the instance lifecycle actions. The
// validation and the state machine live in instances_core.go; this file
// reads requests and renders the shapes the SDK reads.

func init() {
	register("ec2", "RunInstances", ec2RunInstances)
	register("ec2", "DescribeInstances", ec2DescribeInstances)
	register("ec2", "DescribeInstanceStatus", ec2DescribeInstanceStatus)
	register("ec2", "StartInstances", ec2ChangeState(startTransition))
	register("ec2", "StopInstances", ec2ChangeState(stopTransition))
	register("ec2", "TerminateInstances", ec2ChangeState(terminateTransition))
	register("ec2", "RebootInstances", ec2RebootInstances)
	register("ec2", "GetConsoleOutput", ec2GetConsoleOutput)
	register("ec2", "ModifyInstanceMetadataOptions", ec2ModifyInstanceMetadataOptions)
	register("ec2", "ModifyInstanceAttribute", ec2ModifyInstanceAttribute)
}

// instanceLimit is the region's instance quota the sandbox enforces.
const instanceLimit = 64

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// instanceIDs reads InstanceId.N, refusing malformed ids.
func instanceIDs(p Params) ([]string, *APIError) {
	ids := p.List("InstanceId")
	if len(ids) == 0 && p.Has("InstanceId") {
		ids = []string{p.Get("InstanceId")}
	}
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return nil, errf("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
	}
	return ids, nil
}

func instanceNotFound(missing []string) *APIError {
	if len(missing) == 1 {
		return errf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	}
	return errf("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
}

// lookupInstances finds visible instances by id, in request order.
func (c *call) lookupInstances(ids []string) ([]*Instance, *APIError) {
	if len(ids) == 0 {
		return nil, errf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	var out []*Instance
	var missing []string
	for _, id := range ids {
		in, ok := c.r.Instances[id]
		if !ok || c.hidden(in.Created) {
			missing = append(missing, id)
			continue
		}
		if !contains(out, in) {
			out = append(out, in)
		}
	}
	if len(missing) > 0 {
		return nil, instanceNotFound(missing)
	}
	return out, nil
}

func (c *call) lookupInstance(id string) (*Instance, *APIError) {
	if id == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter InstanceId")
	}
	if !instanceIDPattern.MatchString(id) {
		return nil, errf("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
	}
	ins, err := c.lookupInstances([]string{id})
	if err != nil {
		return nil, err
	}
	return ins[0], nil
}

var profileARN = regexp.MustCompile(`^arn:aws:iam::\d{12}:instance-profile/[\w+=,.@/-]+$`)

// instanceProfileARN turns a profile name into its ARN.
func instanceProfileARN(account, ref string) string {
	if ref == "" || strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return "arn:aws:iam::" + account + ":instance-profile/" + ref
}

func ec2RunInstances(c *call) (any, *APIError) {
	for _, k := range []string{"MinCount", "MaxCount"} {
		if !c.p.Has(k) {
			return nil, errf("MissingParameter", "The request must contain the parameter %s", k)
		}
	}
	minC, err := c.p.Int("MinCount", 0)
	if err != nil {
		return nil, err
	}
	maxC, err := c.p.Int("MaxCount", 0)
	if err != nil {
		return nil, err
	}
	if minC < 1 {
		return nil, errf("InvalidParameterValue", "Value (%d) for parameter minCount is invalid. Expected a positive integer.", minC)
	}
	if maxC < minC {
		return nil, errf("InvalidParameterValue", "Value (%d) for parameter maxCount is invalid. Expected a value greater than or equal to minCount (%d).", maxC, minC)
	}
	var spec launchSpec
	var base LaunchTemplateData
	if c.p.HasSub("LaunchTemplate") {
		lt := c.p.Sub("LaunchTemplate")
		t, v, err := c.r.resolveLaunchTemplate(lt.Get("LaunchTemplateId"), lt.Get("LaunchTemplateName"), lt.Get("Version"))
		if err != nil {
			return nil, err
		}
		base = v.Data
		spec.LaunchTemplateID, spec.LaunchTemplateV = t.ID, strconv.Itoa(v.Number)
		spec.ExtraTags = Tags{"aws:ec2launchtemplate:id": t.ID, "aws:ec2launchtemplate:version": spec.LaunchTemplateV}
	}
	d, err := mergeLaunchData(base, c.p)
	if err != nil {
		return nil, err
	}
	d.IamInstanceProfile = instanceProfileARN(c.r.Account, d.IamInstanceProfile)
	if d.IamInstanceProfile != "" && !profileARN.MatchString(d.IamInstanceProfile) {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid ARN", d.IamInstanceProfile)
	}
	live := 0
	for _, in := range c.r.Instances {
		if in.State != "terminated" && in.ClientToken != c.p.Get("ClientToken") {
			live++
		}
	}
	if live+minC > instanceLimit {
		return nil, errf("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.", minC, instanceLimit-live)
	}
	spec.Data, spec.Count, spec.ClientToken = d, min(maxC, instanceLimit-live), c.p.Get("ClientToken")
	spec.Principal = c.principal()
	// A repeated request with the same client token answers with what the
	// first one launched (EC2's idempotency), whatever state it is in now.
	insts := c.r.instancesByClientToken(spec.ClientToken)
	if len(insts) == 0 {
		if insts, err = c.r.launchInstances(spec); err != nil {
			return nil, err
		}
	}
	items := make([]*X, len(insts))
	for i, in := range insts {
		items[i] = E("item", append(c.r.renderInstance(in), I("amiLaunchIndex", i))...)
	}
	return ec2Out(T("reservationId", insts[0].ReservationID), T("ownerId", c.r.Account), List("groupSet", nil), List("instancesSet", items)), nil
}

// instancesByClientToken are the instances a RunInstances with token
// launched, in launch order; none for an empty token.
func (r *Region) instancesByClientToken(token string) []*Instance {
	if token == "" {
		return nil
	}
	var out []*Instance
	for _, in := range r.Instances {
		if in.ClientToken == token {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchTime.Equal(out[j].LaunchTime) {
			return out[i].LaunchTime.Before(out[j].LaunchTime)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func privateDNS(region, ip string) string {
	if ip == "" {
		return ""
	}
	suffix := "." + region + ".compute.internal"
	if region == "us-east-1" {
		suffix = ".ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + suffix
}

func stateX(name string, state string) *X {
	return E(name, I("code", stateCodes[state]), T("name", state))
}

// stateReasonX renders "Code: message" reasons as EC2 does: the message
// repeats the code.
func stateReasonX(reason string) *X {
	if reason == "" {
		return nil
	}
	code, _, _ := strings.Cut(reason, ": ")
	return E("stateReason", T("code", code), T("message", reason))
}

func (r *Region) groupSet(ids []string) []*X {
	return Items("item", ids, func(id string) []*X {
		name := ""
		if sg := r.SecurityGroups[id]; sg != nil {
			name = sg.Name
		}
		return ec2Out(T("groupId", id), Opt("groupName", name))
	})
}

// renderInstance is a types.Instance.
func (r *Region) renderInstance(in *Instance) []*X {
	arch, platform := "x86_64", "Linux/UNIX"
	if img := r.Images[in.ImageID]; img != nil {
		arch = img.Architecture
		if img.PlatformDetails != "" {
			platform = img.PlatformDetails
		}
	}
	gone := in.State == "terminated"
	out := []*X{
		T("instanceId", in.ID), T("imageId", in.ImageID), stateX("instanceState", in.State),
		T("privateDnsName", map[bool]string{false: privateDNS(r.Name, in.PrivateIP)}[gone]), T("dnsName", ""),
		T("reason", in.StateTransition), Opt("keyName", in.KeyName), T("instanceType", in.InstanceType),
		Time("launchTime", in.LaunchTime),
		E("placement", T("availabilityZone", in.AZ), T("groupName", ""), T("tenancy", orDefault(in.Tenancy, "default"))),
		E("monitoring", T("state", orDefault(in.Monitoring, "disabled"))), Opt("instanceLifecycle", in.Lifecycle),
	}
	if !gone {
		out = append(out, T("subnetId", in.SubnetID), T("vpcId", in.VpcID), Opt("privateIpAddress", in.PrivateIP))
	}
	out = append(out, B("sourceDestCheck", true), List("groupSet", r.groupSet(in.SecurityGroupIDs)),
		stateReasonX(in.StateReason), T("architecture", arch), T("rootDeviceType", "ebs"), Opt("rootDeviceName", in.RootDeviceName))
	var bdm []*X
	if !gone {
		for _, bd := range in.BlockDevices {
			bdm = append(bdm, E("item", T("deviceName", bd.DeviceName), E("ebs", T("volumeId", bd.VolumeID), T("status", "attached"),
				Time("attachTime", in.LaunchTime), B("deleteOnTermination", bd.DeleteOnTermination))))
		}
	}
	out = append(out, List("blockDeviceMapping", bdm), T("virtualizationType", "hvm"), Opt("clientToken", in.ClientToken),
		renderTagSet(in.Tags), T("hypervisor", "xen"))
	if arn := instanceProfileARN(r.Account, in.IamInstanceProfile); arn != "" {
		sum := sha1.Sum([]byte(arn))
		out = append(out, E("iamInstanceProfile", T("arn", arn), T("id", "AIPA"+strings.ToUpper(hex.EncodeToString(sum[:]))[:17])))
	}
	var nis []*X
	if !gone {
		suffix := strings.TrimPrefix(in.ID, "i-")
		sum := sha1.Sum([]byte(in.ID))
		mac := strings.Join([]string{"0a", hex.EncodeToString(sum[0:1]), hex.EncodeToString(sum[1:2]), hex.EncodeToString(sum[2:3]),
			hex.EncodeToString(sum[3:4]), hex.EncodeToString(sum[4:5])}, ":")
		nis = append(nis, E("item", T("networkInterfaceId", "eni-"+suffix), T("subnetId", in.SubnetID), T("vpcId", in.VpcID),
			T("description", ""), T("ownerId", r.Account), T("status", "in-use"), T("macAddress", mac),
			T("privateIpAddress", in.PrivateIP), T("privateDnsName", privateDNS(r.Name, in.PrivateIP)), B("sourceDestCheck", true),
			List("groupSet", r.groupSet(in.SecurityGroupIDs)),
			E("attachment", T("attachmentId", "eni-attach-"+suffix), I("deviceIndex", 0), T("status", "attached"),
				Time("attachTime", in.LaunchTime), B("deleteOnTermination", true), I("networkCardIndex", 0)),
			List("privateIpAddressesSet", []*X{E("item", T("privateIpAddress", in.PrivateIP),
				T("privateDnsName", privateDNS(r.Name, in.PrivateIP)), B("primary", true))}),
			T("interfaceType", "interface")))
	}
	m := in.Metadata
	out = append(out, List("networkInterfaceSet", nis), B("ebsOptimized", in.EbsOptimized), B("enaSupport", true),
		E("metadataOptions", T("state", "applied"), T("httpTokens", m.HttpTokens), I("httpPutResponseHopLimit", m.HttpPutResponseHopLimit),
			T("httpEndpoint", m.HttpEndpoint), T("httpProtocolIpv6", "disabled"), T("instanceMetadataTags", m.InstanceMetadataTags)),
		T("platformDetails", platform), T("usageOperation", "RunInstances"), Time("usageOperationUpdateTime", in.LaunchTime),
		E("privateDnsNameOptions", T("hostnameType", "ip-name"), B("enableResourceNameDnsARecord", false), B("enableResourceNameDnsAAAARecord", false)),
		E("maintenanceOptions", T("autoRecovery", "default")), T("currentInstanceBootMode", "uefi"),
	)
	return out
}

// instanceFields are DescribeInstances' filters.
func (r *Region) instanceFields(in *Instance) FilterFields {
	var groupNames, volumes, devices []string
	for _, id := range in.SecurityGroupIDs {
		if sg := r.SecurityGroups[id]; sg != nil {
			groupNames = append(groupNames, sg.Name)
		}
	}
	for _, bd := range in.BlockDevices {
		volumes, devices = append(volumes, bd.VolumeID), append(devices, bd.DeviceName)
	}
	arch := ""
	if img := r.Images[in.ImageID]; img != nil {
		arch = img.Architecture
	}
	reasonCode, _, _ := strings.Cut(in.StateReason, ": ")
	m := map[string][]string{
		"instance-state-name": one(in.State), "instance-state-code": one(strconv.Itoa(stateCodes[in.State])),
		"instance-id": one(in.ID), "image-id": one(in.ImageID), "subnet-id": one(in.SubnetID), "vpc-id": one(in.VpcID),
		"availability-zone": one(in.AZ), "instance-type": one(in.InstanceType), "key-name": one(in.KeyName),
		"private-ip-address": one(in.PrivateIP), "private-dns-name": one(privateDNS(r.Name, in.PrivateIP)),
		"reservation-id": one(in.ReservationID), "instance.group-id": in.SecurityGroupIDs, "group-id": in.SecurityGroupIDs,
		"instance.group-name": groupNames, "group-name": groupNames, "iam-instance-profile.arn": one(instanceProfileARN(r.Account, in.IamInstanceProfile)),
		"client-token": one(in.ClientToken), "architecture": one(arch), "root-device-type": one("ebs"),
		"root-device-name": one(in.RootDeviceName), "launch-time": one(in.LaunchTime.UTC().Format("2006-01-02T15:04:05.000Z")),
		"metadata-options.http-tokens": one(in.Metadata.HttpTokens), "metadata-options.http-endpoint": one(in.Metadata.HttpEndpoint),
		"metadata-options.http-put-response-hop-limit": one(strconv.Itoa(in.Metadata.HttpPutResponseHopLimit)),
		"metadata-options.instance-metadata-tags":      one(in.Metadata.InstanceMetadataTags),
		"network-interface.subnet-id":                  one(in.SubnetID), "network-interface.vpc-id": one(in.VpcID),
		"tenancy": one("default"), "owner-id": one(r.Account), "state-reason-code": one(reasonCode),
		"block-device-mapping.volume-id": volumes, "block-device-mapping.device-name": devices,
		"launch-template.launch-template-id": one(in.LaunchTemplateID), "launch-template.version": one(in.LaunchTemplateVer),
	}
	return fieldMap(m)
}

func (c *call) describeInstances() ([]*Instance, bool, *APIError) {
	ids, err := instanceIDs(c.p)
	if err != nil {
		return nil, false, err
	}
	all := make([]*Instance, 0, len(c.r.Instances))
	for _, in := range c.r.Instances {
		all = append(all, in)
	}
	out, err := describe(c, all, describeSpec[*Instance]{
		id: func(in *Instance) string { return in.ID }, tags: func(in *Instance) Tags { return in.Tags },
		created: func(in *Instance) time.Time { return in.Created }, fields: c.r.instanceFields,
	}, selector[*Instance]{values: ids, key: func(in *Instance) string { return in.ID }, notFound: instanceNotFound})
	return out, len(ids) > 0, err
}

func ec2DescribeInstances(c *call) (any, *APIError) {
	insts, idsGiven, err := c.describeInstances()
	if err != nil {
		return nil, err
	}
	pg, next, err := ec2Page(c.p, insts, 5, 1000, idsGiven, "instancesSet")
	if err != nil {
		return nil, err
	}
	var order []string
	byRes := map[string][]*X{}
	for _, in := range pg {
		if _, ok := byRes[in.ReservationID]; !ok {
			order = append(order, in.ReservationID)
		}
		byRes[in.ReservationID] = append(byRes[in.ReservationID], E("item", c.r.renderInstance(in)...))
	}
	res := make([]*X, 0, len(order))
	for _, id := range order {
		res = append(res, E("item", T("reservationId", id), T("ownerId", c.r.Account), List("groupSet", nil), List("instancesSet", byRes[id])))
	}
	return ec2Out(List("reservationSet", res), next), nil
}

func ec2DescribeInstanceStatus(c *call) (any, *APIError) {
	includeAll, err := c.p.Bool("IncludeAllInstances", false)
	if err != nil {
		return nil, err
	}
	ids, err := instanceIDs(c.p)
	if err != nil {
		return nil, err
	}
	all := make([]*Instance, 0, len(c.r.Instances))
	for _, in := range c.r.Instances {
		if includeAll || in.State == "running" || contains(ids, in.ID) {
			all = append(all, in)
		}
	}
	status := func(in *Instance) string {
		if in.State == "running" {
			return "ok"
		}
		return "not-applicable"
	}
	insts, err := describe(c, all, describeSpec[*Instance]{
		id: func(in *Instance) string { return in.ID }, tags: func(in *Instance) Tags { return in.Tags },
		created: func(in *Instance) time.Time { return in.Created },
		fields: func(in *Instance) FilterFields {
			return fieldMap(map[string][]string{"availability-zone": one(in.AZ), "instance-state-name": one(in.State),
				"instance-state-code": one(strconv.Itoa(stateCodes[in.State])), "instance-status.status": one(status(in)),
				"system-status.status": one(status(in)), "instance-status.reachability": one("passed"),
				"system-status.reachability": one("passed")})
		},
	}, selector[*Instance]{values: ids, key: func(in *Instance) string { return in.ID }, notFound: instanceNotFound})
	if err != nil {
		return nil, err
	}
	var shown []*Instance
	for _, in := range insts {
		if includeAll || in.State == "running" {
			shown = append(shown, in)
		}
	}
	pg, next, err := ec2Page(c.p, shown, 5, 1000, len(ids) > 0, "instancesSet")
	if err != nil {
		return nil, err
	}
	summary := func(name, st string) *X {
		detail := "passed"
		if st != "ok" {
			detail = st
		}
		return E(name, T("status", st), List("details", []*X{E("item", T("name", "reachability"), T("status", detail))}))
	}
	return ec2Out(List("instanceStatusSet", Items("item", pg, func(in *Instance) []*X {
		return []*X{T("instanceId", in.ID), T("availabilityZone", in.AZ), stateX("instanceState", in.State),
			summary("systemStatus", status(in)), summary("instanceStatus", status(in)), List("eventsSet", nil)}
	})), next), nil
}

// transition is one of Start/Stop/Terminate: which states refuse it and
// what it does.
type transition struct {
	refused func(state string) bool
	verb    string
	act     func(r *Region, in *Instance, p Params)
}

var (
	startTransition = transition{
		refused: func(s string) bool { return s == "stopping" || s == "shutting-down" || s == "terminated" }, verb: "started",
		act: func(r *Region, in *Instance, _ Params) { r.startInstance(in) },
	}
	stopTransition = transition{
		refused: func(s string) bool { return s == "pending" || s == "shutting-down" || s == "terminated" }, verb: "stopped",
		act: func(r *Region, in *Instance, p Params) {
			force, _ := p.Bool("Force", false)
			r.stopInstance(in, force)
		},
	}
	terminateTransition = transition{
		refused: func(string) bool { return false },
		act:     func(r *Region, in *Instance, _ Params) { r.terminateInstance(in, "") },
	}
)

func ec2ChangeState(t transition) handler {
	return func(c *call) (any, *APIError) {
		ids, err := instanceIDs(c.p)
		if err != nil {
			return nil, err
		}
		if _, err := c.p.Bool("Force", false); err != nil {
			return nil, err
		}
		insts, err := c.lookupInstances(ids)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			if t.refused(in.State) {
				return nil, errf("IncorrectInstanceState", "This instance '%s' is not in a state from which it can be %s.", in.ID, t.verb)
			}
		}
		items := make([]*X, 0, len(insts))
		for _, in := range insts {
			prev := in.State
			t.act(c.r, in, c.p)
			items = append(items, E("item", T("instanceId", in.ID), stateX("currentState", in.State), stateX("previousState", prev)))
		}
		return ec2Out(List("instancesSet", items)), nil
	}
}

func ec2RebootInstances(c *call) (any, *APIError) {
	ids, err := instanceIDs(c.p)
	if err != nil {
		return nil, err
	}
	insts, err := c.lookupInstances(ids)
	if err != nil {
		return nil, err
	}
	for _, in := range insts {
		if in.State != "running" && in.State != "pending" {
			return nil, errf("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be rebooted.", in.ID)
		}
	}
	return ec2Out(B("return", true)), nil
}

func ec2GetConsoleOutput(c *call) (any, *APIError) {
	in, err := c.lookupInstance(c.p.Get("InstanceId"))
	if err != nil {
		return nil, err
	}
	var out *X
	if console := c.w.runtime.ConsoleOutput(in); len(console) > 0 {
		out = T("output", base64.StdEncoding.EncodeToString(console))
	}
	return ec2Out(T("instanceId", in.ID), Time("timestamp", c.w.now()), out), nil
}

func ec2ModifyInstanceMetadataOptions(c *call) (any, *APIError) {
	in, err := c.lookupInstance(c.p.Get("InstanceId"))
	if err != nil {
		return nil, err
	}
	if in.State == "terminated" || in.State == "shutting-down" {
		return nil, errf("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", in.ID)
	}
	m := MetadataOptions{HttpTokens: c.p.Get("HttpTokens"), HttpEndpoint: c.p.Get("HttpEndpoint"), InstanceMetadataTags: c.p.Get("InstanceMetadataTags")}
	if m.HttpPutResponseHopLimit, err = c.p.Int("HttpPutResponseHopLimit", 0); err != nil {
		return nil, err
	}
	if err := validateMetadata(m); err != nil {
		return nil, err
	}
	md := &in.Metadata
	for _, f := range []struct{ src, dst *string }{{&m.HttpTokens, &md.HttpTokens}, {&m.HttpEndpoint, &md.HttpEndpoint},
		{&m.InstanceMetadataTags, &md.InstanceMetadataTags}} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if m.HttpPutResponseHopLimit != 0 {
		md.HttpPutResponseHopLimit = m.HttpPutResponseHopLimit
	}
	return ec2Out(T("instanceId", in.ID), E("instanceMetadataOptions", T("state", "pending"), T("httpTokens", md.HttpTokens),
		I("httpPutResponseHopLimit", md.HttpPutResponseHopLimit), T("httpEndpoint", md.HttpEndpoint),
		T("httpProtocolIpv6", "disabled"), T("instanceMetadataTags", md.InstanceMetadataTags))), nil
}

func ec2ModifyInstanceAttribute(c *call) (any, *APIError) {
	in, err := c.lookupInstance(c.p.Get("InstanceId"))
	if err != nil {
		return nil, err
	}
	if in.State == "terminated" || in.State == "shutting-down" {
		return nil, errf("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", in.ID)
	}
	get := func(attr, field string) (string, bool) {
		if c.p.Has(field + ".Value") {
			return c.p.Get(field + ".Value"), true
		}
		if c.p.Get("Attribute") == attr {
			return c.p.Get("Value"), true
		}
		return "", false
	}
	needStopped := func() *APIError {
		if in.State != "stopped" {
			return errf("IncorrectInstanceState", "The instance '%s' is not in the 'stopped' state.", in.ID)
		}
		return nil
	}
	switch {
	case c.p.HasSub("GroupId"):
		sgs, err := c.r.resolveSecurityGroups(in.VpcID, c.p.List("GroupId"), nil)
		if err != nil {
			return nil, err
		}
		in.SecurityGroupIDs = sgs
	default:
		if v, ok := get("instanceType", "InstanceType"); ok {
			if err := needStopped(); err != nil {
				return nil, err
			}
			if !instanceTypePattern.MatchString(v) {
				return nil, errf("InvalidParameterValue", "Invalid value '%s' for InstanceType.", v)
			}
			in.InstanceType = v
		} else if v, ok := get("userData", "UserData"); ok {
			if err := needStopped(); err != nil {
				return nil, err
			}
			in.UserData = v
		} else if c.p.Get("Attribute") != "" {
			return nil, errf("InvalidParameterValue", "Value (%s) for parameter attribute is not supported by the sandbox", c.p.Get("Attribute"))
		} else {
			return nil, errf("MissingParameter", "The request must contain an attribute to modify")
		}
	}
	return ec2Out(B("return", true)), nil
}
