package sandbox

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EC2 networking: regions and zones, VPCs, subnets and security groups,
// plus the describe/paging helpers the other EC2 handler files share.

func init() {
	for action, h := range map[string]handler{
		"DescribeRegions":               ec2DescribeRegions,
		"DescribeAvailabilityZones":     ec2DescribeAvailabilityZones,
		"DescribeVpcs":                  ec2DescribeVpcs,
		"CreateVpc":                     ec2CreateVpc,
		"DeleteVpc":                     ec2DeleteVpc,
		"DescribeSubnets":               ec2DescribeSubnets,
		"CreateSubnet":                  ec2CreateSubnet,
		"DeleteSubnet":                  ec2DeleteSubnet,
		"CreateSecurityGroup":           ec2CreateSecurityGroup,
		"DeleteSecurityGroup":           ec2DeleteSecurityGroup,
		"DescribeSecurityGroups":        ec2DescribeSecurityGroups,
		"AuthorizeSecurityGroupIngress": ec2AuthorizeSG(false),
		"AuthorizeSecurityGroupEgress":  ec2AuthorizeSG(true),
		"RevokeSecurityGroupIngress":    ec2RevokeSG(false),
		"RevokeSecurityGroupEgress":     ec2RevokeSG(true),
	} {
		register("ec2", action, h)
	}
}

// selector narrows a describe call to resources whose key is one of
// values; every value must name a visible resource.
type selector[T any] struct {
	values   []string
	key      func(T) string
	notFound func(missing []string) *APIError
}

// describeSpec says how a resource type is described.
type describeSpec[T any] struct {
	id      func(T) string
	tags    func(T) Tags
	created func(T) time.Time
	fields  func(T) FilterFields
}

// describe applies selectors, Filter.N and hidden-resource faults to all,
// returning matches sorted by id.
func describe[T any](c *call, all []T, spec describeSpec[T], sels ...selector[T]) ([]T, *APIError) {
	filters, err := parseFilters(c.p)
	if err != nil {
		return nil, err
	}
	var visible []T
	for _, v := range all {
		if !c.hidden(spec.created(v)) {
			visible = append(visible, v)
		}
	}
	for _, s := range sels {
		if len(s.values) == 0 {
			continue
		}
		var kept []T
		var missing []string
		for _, want := range s.values {
			found := false
			for _, v := range visible {
				if s.key(v) == want {
					found = true
				}
			}
			if !found && !contains(missing, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return nil, s.notFound(missing)
		}
		for _, v := range visible {
			if contains(s.values, s.key(v)) {
				kept = append(kept, v)
			}
		}
		visible = kept
	}
	var out []T
	for _, v := range visible {
		ok, err := matchFilters(filters, spec.tags(v), spec.fields(v))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return spec.id(out[i]) < spec.id(out[j]) })
	return out, nil
}

// ec2Page reads MaxResults (lo..hi, refused together with an id list) and
// NextToken and returns one page with the next token element.
func ec2Page[T any](p Params, items []T, lo, hi int, idsGiven bool, idParam string) ([]T, *X, *APIError) {
	max, err := p.Int("MaxResults", 0)
	if err != nil {
		return nil, nil, err
	}
	if p.Has("MaxResults") {
		if idsGiven {
			return nil, nil, errf("InvalidParameterCombination", "The parameter %s cannot be used with the parameter maxResults", idParam)
		}
		if max < lo || max > hi {
			return nil, nil, errf("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", max, lo, hi)
		}
	}
	pg, next, err := page(items, p.Get("NextToken"), max)
	if err != nil {
		return nil, nil, err
	}
	return pg, Opt("nextToken", next), nil
}

// fieldMap turns a map of filter names to values into FilterFields.
func fieldMap(m map[string][]string) FilterFields {
	return func(name string) ([]string, bool) { v, ok := m[name]; return v, ok }
}

func one(s string) []string { return []string{s} }

func boolStr(b bool) string { return strconv.FormatBool(b) }

// Regions and zones.

var commercialRegions = []struct{ name, optIn string }{
	{"af-south-1", "not-opted-in"}, {"ap-east-1", "not-opted-in"}, {"ap-northeast-1", ""}, {"ap-northeast-2", ""},
	{"ap-northeast-3", ""}, {"ap-south-1", ""}, {"ap-south-2", "not-opted-in"}, {"ap-southeast-1", ""},
	{"ap-southeast-2", ""}, {"ap-southeast-3", "not-opted-in"}, {"ap-southeast-4", "not-opted-in"},
	{"ca-central-1", ""}, {"ca-west-1", "not-opted-in"}, {"eu-central-1", ""}, {"eu-central-2", "not-opted-in"},
	{"eu-north-1", ""}, {"eu-south-1", "not-opted-in"}, {"eu-south-2", "not-opted-in"}, {"eu-west-1", ""},
	{"eu-west-2", ""}, {"eu-west-3", ""}, {"il-central-1", "not-opted-in"}, {"me-central-1", "not-opted-in"},
	{"me-south-1", "not-opted-in"}, {"sa-east-1", ""}, {"us-east-1", ""}, {"us-east-2", ""}, {"us-west-1", ""},
	{"us-west-2", ""},
}

func ec2DescribeRegions(c *call) (any, *APIError) {
	all, err := c.p.Bool("AllRegions", false)
	if err != nil {
		return nil, err
	}
	type region struct{ name, endpoint, optIn string }
	var regions []region
	for _, r := range commercialRegions {
		optIn := r.optIn
		if optIn == "" {
			optIn = "opt-in-not-required"
		}
		if all || optIn != "not-opted-in" {
			regions = append(regions, region{r.name, "ec2." + r.name + ".amazonaws.com", optIn})
		}
	}
	out, err := describe(c, regions, describeSpec[region]{
		id: func(r region) string { return r.name }, tags: func(region) Tags { return nil },
		created: func(region) time.Time { return time.Time{} },
		fields: func(r region) FilterFields {
			return fieldMap(map[string][]string{"region-name": one(r.name), "endpoint": one(r.endpoint), "opt-in-status": one(r.optIn)})
		},
	}, selector[region]{values: c.p.List("RegionName"), key: func(r region) string { return r.name },
		notFound: func(m []string) *APIError {
			return errf("InvalidParameterValue", "Invalid region names: %s", strings.Join(m, ", "))
		}})
	if err != nil {
		return nil, err
	}
	return ec2Out(List("regionInfo", Items("item", out, func(r region) []*X {
		return []*X{T("regionName", r.name), T("regionEndpoint", r.endpoint), T("optInStatus", r.optIn)}
	}))), nil
}

func ec2DescribeAvailabilityZones(c *call) (any, *APIError) {
	type zone struct{ name, id string }
	var zones []zone
	for i, az := range c.r.azs() {
		zones = append(zones, zone{az, fmt.Sprintf("%s-az%d", regionShort(c.r.Name), i+1)})
	}
	region := c.r.Name
	spec := describeSpec[zone]{
		id: func(z zone) string { return z.name }, tags: func(zone) Tags { return nil },
		created: func(zone) time.Time { return time.Time{} },
		fields: func(z zone) FilterFields {
			return fieldMap(map[string][]string{
				"zone-name": one(z.name), "zone-id": one(z.id), "state": one("available"), "region-name": one(region),
				"zone-type": one("availability-zone"), "opt-in-status": one("opt-in-not-required"),
				"group-name": one(region), "network-border-group": one(region),
			})
		},
	}
	bad := func(m []string) *APIError {
		return errf("InvalidParameterValue", "Invalid availability zone: [%s]", strings.Join(m, ", "))
	}
	out, err := describe(c, zones, spec,
		selector[zone]{values: c.p.List("ZoneName"), key: func(z zone) string { return z.name }, notFound: bad},
		selector[zone]{values: c.p.List("ZoneId"), key: func(z zone) string { return z.id }, notFound: bad})
	if err != nil {
		return nil, err
	}
	return ec2Out(List("availabilityZoneInfo", Items("item", out, func(z zone) []*X {
		return []*X{T("zoneName", z.name), T("zoneId", z.id), T("zoneState", "available"), T("regionName", region),
			T("optInStatus", "opt-in-not-required"), T("groupName", region), T("networkBorderGroup", region),
			T("zoneType", "availability-zone"), List("messageSet", nil)}
	}))), nil
}

// VPCs.

func vpcSpec(account string) describeSpec[*VPC] {
	return describeSpec[*VPC]{
		id: func(v *VPC) string { return v.ID }, tags: func(v *VPC) Tags { return v.Tags },
		created: func(v *VPC) time.Time { return v.Created },
		fields: func(v *VPC) FilterFields {
			return fieldMap(map[string][]string{
				"vpc-id": one(v.ID), "cidr": one(v.CIDR), "cidr-block-association.cidr-block": one(v.CIDR),
				"is-default": one(boolStr(v.IsDefault)), "state": one("available"), "owner-id": one(account),
				"dhcp-options-id": one("dopt-default"),
			})
		},
	}
}

func renderVPC(account string, v *VPC) []*X {
	return ec2Out(
		T("vpcId", v.ID), T("ownerId", account), T("state", "available"), T("cidrBlock", v.CIDR),
		List("cidrBlockAssociationSet", []*X{E("item", T("associationId", "vpc-cidr-assoc-"+strings.TrimPrefix(v.ID, "vpc-")),
			T("cidrBlock", v.CIDR), E("cidrBlockState", T("state", "associated")))}),
		T("dhcpOptionsId", "dopt-default"), T("instanceTenancy", "default"), B("isDefault", v.IsDefault), renderTagSet(v.Tags),
	)
}

func (r *Region) vpcList() []*VPC {
	out := make([]*VPC, 0, len(r.VPCs))
	for _, v := range r.VPCs {
		out = append(out, v)
	}
	return out
}

func ec2DescribeVpcs(c *call) (any, *APIError) {
	ids := c.p.List("VpcId")
	vpcs, err := describe(c, c.r.vpcList(), vpcSpec(c.r.Account), selector[*VPC]{values: ids, key: func(v *VPC) string { return v.ID },
		notFound: func(m []string) *APIError { return notFound("InvalidVpcID.NotFound", m[0], "vpc ID") }})
	if err != nil {
		return nil, err
	}
	pg, next, err := ec2Page(c.p, vpcs, 5, 1000, len(ids) > 0, "vpcIds")
	if err != nil {
		return nil, err
	}
	return ec2Out(List("vpcSet", Items("item", pg, func(v *VPC) []*X { return renderVPC(c.r.Account, v) })), next), nil
}

func ec2CreateVpc(c *call) (any, *APIError) {
	cidr := c.p.Get("CidrBlock")
	if cidr == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter CidrBlock")
	}
	pfx, perr := netip.ParsePrefix(cidr)
	if perr != nil || !pfx.Addr().Is4() || pfx.Masked() != pfx {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", cidr)
	}
	if pfx.Bits() < 16 || pfx.Bits() > 28 {
		return nil, errf("InvalidVpc.Range", "The CIDR '%s' is invalid.", cidr)
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "vpc")
	if err != nil {
		return nil, err
	}
	now := c.w.now()
	v := &VPC{ID: newID("vpc"), CIDR: cidr, Tags: Tags{}, Created: now}
	for k, val := range tags["vpc"] {
		v.Tags[k] = val
	}
	c.r.VPCs[v.ID] = v
	sg := &SecurityGroup{ID: newID("sg"), Name: defaultSGName, Description: "default VPC security group", VpcID: v.ID,
		IsDefault: true, Tags: Tags{}, Created: now, Egress: []IPPermission{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}}
	sg.Ingress = []IPPermission{{Protocol: "-1", GroupIDs: []string{sg.ID}}}
	c.r.SecurityGroups[sg.ID] = sg
	return ec2Out(E("vpc", renderVPC(c.r.Account, v)...)), nil
}

func ec2DeleteVpc(c *call) (any, *APIError) {
	id := c.p.Get("VpcId")
	v, ok := c.r.VPCs[id]
	if !ok {
		return nil, notFound("InvalidVpcID.NotFound", id, "vpc ID")
	}
	for _, s := range c.r.Subnets {
		if s.VpcID == id {
			return nil, errf("DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted.", id)
		}
	}
	for _, sg := range c.r.SecurityGroups {
		if sg.VpcID == id && !sg.IsDefault {
			return nil, errf("DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted.", id)
		}
	}
	for sid, sg := range c.r.SecurityGroups {
		if sg.VpcID == id {
			delete(c.r.SecurityGroups, sid)
		}
	}
	delete(c.r.VPCs, v.ID)
	return ec2Out(B("return", true)), nil
}

// Subnets.

func (r *Region) subnetFree(s *Subnet) int {
	pfx, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return 0
	}
	n := 1<<(32-pfx.Bits()) - 5
	for _, in := range r.Instances {
		if in.SubnetID == s.ID && in.State != "terminated" {
			n--
		}
	}
	return n
}

func ec2DescribeSubnets(c *call) (any, *APIError) {
	r := c.r
	all := make([]*Subnet, 0, len(r.Subnets))
	for _, s := range r.Subnets {
		all = append(all, s)
	}
	ids := c.p.List("SubnetId")
	subnets, err := describe(c, all, describeSpec[*Subnet]{
		id: func(s *Subnet) string { return s.ID }, tags: func(s *Subnet) Tags { return s.Tags },
		created: func(s *Subnet) time.Time { return s.Created },
		fields: func(s *Subnet) FilterFields {
			return fieldMap(map[string][]string{
				"subnet-id": one(s.ID), "vpc-id": one(s.VpcID), "availability-zone": one(s.AZ), "availability-zone-id": one(s.AZID),
				"default-for-az": one(boolStr(s.IsDefault)), "defaultForAz": one(boolStr(s.IsDefault)),
				"cidr-block": one(s.CIDR), "cidr": one(s.CIDR), "cidrBlock": one(s.CIDR), "state": one("available"),
				"owner-id": one(r.Account), "map-public-ip-on-launch": one(boolStr(s.IsDefault)),
				"subnet-arn": one(r.arn("ec2", "subnet/"+s.ID)),
			})
		},
	}, selector[*Subnet]{values: ids, key: func(s *Subnet) string { return s.ID },
		notFound: func(m []string) *APIError { return notFound("InvalidSubnetID.NotFound", m[0], "subnet ID") }})
	if err != nil {
		return nil, err
	}
	pg, next, err := ec2Page(c.p, subnets, 5, 1000, len(ids) > 0, "subnetIds")
	if err != nil {
		return nil, err
	}
	return ec2Out(List("subnetSet", Items("item", pg, r.renderSubnet)), next), nil
}

func (r *Region) renderSubnet(s *Subnet) []*X {
	return ec2Out(
		T("subnetId", s.ID), T("subnetArn", r.arn("ec2", "subnet/"+s.ID)), T("state", "available"), T("vpcId", s.VpcID),
		T("cidrBlock", s.CIDR), I("availableIpAddressCount", r.subnetFree(s)), T("availabilityZone", s.AZ),
		T("availabilityZoneId", s.AZID), B("defaultForAz", s.IsDefault), B("mapPublicIpOnLaunch", s.IsDefault),
		B("assignIpv6AddressOnCreation", false), T("ownerId", r.Account), renderTagSet(s.Tags),
	)
}

func ec2CreateSubnet(c *call) (any, *APIError) {
	vpcID, cidr := c.p.Get("VpcId"), c.p.Get("CidrBlock")
	if vpcID == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter VpcId")
	}
	vpc, ok := c.r.VPCs[vpcID]
	if !ok {
		return nil, notFound("InvalidVpcID.NotFound", vpcID, "vpc ID")
	}
	pfx, perr := netip.ParsePrefix(cidr)
	vpcPfx, _ := netip.ParsePrefix(vpc.CIDR)
	if perr != nil || pfx.Masked() != pfx || pfx.Bits() > 28 || pfx.Bits() < vpcPfx.Bits() || !vpcPfx.Contains(pfx.Addr()) {
		return nil, errf("InvalidSubnet.Range", "The CIDR '%s' is invalid.", cidr)
	}
	for _, s := range c.r.Subnets {
		if other, err := netip.ParsePrefix(s.CIDR); err == nil && s.VpcID == vpcID && other.Overlaps(pfx) {
			return nil, errf("InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet", cidr)
		}
	}
	azs := c.r.azs()
	az := c.p.Get("AvailabilityZone")
	if az == "" {
		az = azs[0]
	}
	idx := -1
	for i, a := range azs {
		if a == az {
			idx = i
		}
	}
	if idx < 0 {
		return nil, errf("InvalidParameterValue", "Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %s.", az, strings.Join(azs, ", "))
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "subnet")
	if err != nil {
		return nil, err
	}
	s := &Subnet{ID: newID("subnet"), VpcID: vpcID, AZ: az, AZID: fmt.Sprintf("%s-az%d", regionShort(c.r.Name), idx+1),
		CIDR: cidr, Tags: Tags{}, Created: c.w.now()}
	for k, v := range tags["subnet"] {
		s.Tags[k] = v
	}
	c.r.Subnets[s.ID] = s
	return ec2Out(E("subnet", c.r.renderSubnet(s)...)), nil
}

func ec2DeleteSubnet(c *call) (any, *APIError) {
	id := c.p.Get("SubnetId")
	if _, ok := c.r.Subnets[id]; !ok {
		return nil, notFound("InvalidSubnetID.NotFound", id, "subnet ID")
	}
	for _, in := range c.r.Instances {
		if in.SubnetID == id && in.State != "terminated" {
			return nil, errf("DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted.", id)
		}
	}
	for _, lb := range c.r.LoadBalancers {
		if contains(lb.SubnetIDs, id) {
			return nil, errf("DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted.", id)
		}
	}
	delete(c.r.Subnets, id)
	return ec2Out(B("return", true)), nil
}

// Security groups.

func (r *Region) sgByRef(id, name string) (*SecurityGroup, *APIError) {
	if id != "" {
		if !strings.HasPrefix(id, "sg-") {
			return nil, errf("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
		if sg, ok := r.SecurityGroups[id]; ok {
			return sg, nil
		}
		return nil, notFound("InvalidGroup.NotFound", id, "security group")
	}
	if name == "" {
		return nil, errf("MissingParameter", "The request must contain the parameter groupName or groupId")
	}
	def, _ := r.pickSubnet("")
	for _, sg := range r.SecurityGroups {
		if sg.Name == name && def != nil && sg.VpcID == def.VpcID {
			return sg, nil
		}
	}
	return nil, errf("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", name, func() string {
		if def != nil {
			return def.VpcID
		}
		return ""
	}())
}

func ec2CreateSecurityGroup(c *call) (any, *APIError) {
	name, desc := c.p.Get("GroupName"), c.p.Get("GroupDescription")
	switch {
	case name == "":
		return nil, errf("MissingParameter", "The request must contain the parameter GroupName")
	case desc == "":
		return nil, errf("MissingParameter", "The request must contain the parameter GroupDescription")
	case strings.HasPrefix(name, "sg-"):
		return nil, errf("InvalidParameterValue", "Group names may not be in the format sg-*")
	case len(name) > 255 || len(desc) > 255:
		return nil, errf("InvalidParameterValue", "Value for parameter GroupName or GroupDescription is longer than 255 characters")
	}
	vpcID := c.p.Get("VpcId")
	if vpcID == "" {
		def, err := c.r.pickSubnet("")
		if err != nil {
			return nil, err
		}
		vpcID = def.VpcID
	} else if _, ok := c.r.VPCs[vpcID]; !ok {
		return nil, notFound("InvalidVpcID.NotFound", vpcID, "vpc ID")
	}
	for _, sg := range c.r.SecurityGroups {
		if sg.Name == name && sg.VpcID == vpcID {
			return nil, errf("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
		}
	}
	specs, err := parseTagSpecifications(c.p, "TagSpecification")
	if err != nil {
		return nil, err
	}
	tags, err := tagsFor(specs, "security-group")
	if err != nil {
		return nil, err
	}
	sg := &SecurityGroup{ID: newID("sg"), Name: name, Description: desc, VpcID: vpcID, Tags: Tags{}, Created: c.w.now(),
		Egress: []IPPermission{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}, RuleID: newID("sgr")}}}
	for k, v := range tags["security-group"] {
		sg.Tags[k] = v
	}
	c.r.SecurityGroups[sg.ID] = sg
	return ec2Out(B("return", true), T("groupId", sg.ID), T("securityGroupArn", c.r.arn("ec2", "security-group/"+sg.ID)), renderTagSet(sg.Tags)), nil
}

func ec2DeleteSecurityGroup(c *call) (any, *APIError) {
	sg, err := c.r.sgByRef(c.p.Get("GroupId"), c.p.Get("GroupName"))
	if err != nil {
		return nil, err
	}
	if sg.IsDefault {
		return nil, errf("CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", sg.ID)
	}
	inUse := false
	for _, in := range c.r.Instances {
		inUse = inUse || (in.State != "terminated" && contains(in.SecurityGroupIDs, sg.ID))
	}
	for _, lb := range c.r.LoadBalancers {
		inUse = inUse || contains(lb.SecurityGroups, sg.ID)
	}
	for _, other := range c.r.SecurityGroups {
		if other.ID == sg.ID {
			continue
		}
		for _, p := range append(append([]IPPermission{}, other.Ingress...), other.Egress...) {
			inUse = inUse || contains(p.GroupIDs, sg.ID)
		}
	}
	if inUse {
		return nil, errf("DependencyViolation", "resource %s has a dependent object", sg.ID)
	}
	delete(c.r.SecurityGroups, sg.ID)
	return ec2Out(B("return", true), T("groupId", sg.ID)), nil
}

func ec2DescribeSecurityGroups(c *call) (any, *APIError) {
	r := c.r
	all := make([]*SecurityGroup, 0, len(r.SecurityGroups))
	for _, sg := range r.SecurityGroups {
		all = append(all, sg)
	}
	ids, names := c.p.List("GroupId"), c.p.List("GroupName")
	for _, id := range ids {
		if !strings.HasPrefix(id, "sg-") {
			return nil, errf("InvalidGroupId.Malformed", "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
	}
	groups, err := describe(c, all, describeSpec[*SecurityGroup]{
		id: func(s *SecurityGroup) string { return s.ID }, tags: func(s *SecurityGroup) Tags { return s.Tags },
		created: func(s *SecurityGroup) time.Time { return s.Created },
		fields: func(s *SecurityGroup) FilterFields {
			return func(name string) ([]string, bool) {
				switch name {
				case "group-id":
					return one(s.ID), true
				case "group-name":
					return one(s.Name), true
				case "vpc-id":
					return one(s.VpcID), true
				case "description":
					return one(s.Description), true
				case "owner-id":
					return one(r.Account), true
				}
				dir := s.Ingress
				if strings.HasPrefix(name, "egress.") {
					dir, name = s.Egress, strings.TrimPrefix(name, "egress.")
				}
				var vals []string
				for _, p := range dir {
					switch name {
					case "ip-permission.cidr":
						vals = append(vals, p.CIDRs...)
					case "ip-permission.group-id":
						vals = append(vals, p.GroupIDs...)
					case "ip-permission.protocol":
						vals = append(vals, p.Protocol)
					case "ip-permission.from-port":
						vals = append(vals, strconv.Itoa(p.FromPort))
					case "ip-permission.to-port":
						vals = append(vals, strconv.Itoa(p.ToPort))
					default:
						return nil, false
					}
				}
				return vals, true
			}
		},
	},
		selector[*SecurityGroup]{values: ids, key: func(s *SecurityGroup) string { return s.ID },
			notFound: func(m []string) *APIError { return notFound("InvalidGroup.NotFound", m[0], "security group") }},
		selector[*SecurityGroup]{values: names, key: func(s *SecurityGroup) string { return s.Name },
			notFound: func(m []string) *APIError {
				def, _ := r.pickSubnet("")
				vpc := ""
				if def != nil {
					vpc = def.VpcID
				}
				return errf("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", m[0], vpc)
			}})
	if err != nil {
		return nil, err
	}
	pg, next, err := ec2Page(c.p, groups, 5, 1000, len(ids)+len(names) > 0, "groupIds")
	if err != nil {
		return nil, err
	}
	return ec2Out(List("securityGroupInfo", Items("item", pg, r.renderSG)), next), nil
}

func (r *Region) renderSG(sg *SecurityGroup) []*X {
	r.ensureRuleIDs(sg)
	return ec2Out(
		T("ownerId", r.Account), T("groupId", sg.ID), T("groupName", sg.Name), T("groupDescription", sg.Description),
		T("vpcId", sg.VpcID), T("securityGroupArn", r.arn("ec2", "security-group/"+sg.ID)),
		List("ipPermissions", renderPermissions(r.Account, sg.Ingress)), List("ipPermissionsEgress", renderPermissions(r.Account, sg.Egress)),
		renderTagSet(sg.Tags),
	)
}

// ensureRuleIDs splits permissions into single-peer rules with ids (the
// seeded default groups are written in the grouped form).
func (r *Region) ensureRuleIDs(sg *SecurityGroup) {
	split := func(perms []IPPermission) []IPPermission {
		var out []IPPermission
		for _, p := range perms {
			for _, s := range singlePeers(p) {
				if s.RuleID == "" {
					s.RuleID = newID("sgr")
				}
				out = append(out, s)
			}
		}
		return out
	}
	sg.Ingress, sg.Egress = split(sg.Ingress), split(sg.Egress)
}

// singlePeers breaks a permission into one permission per CIDR or group.
func singlePeers(p IPPermission) []IPPermission {
	if len(p.CIDRs)+len(p.GroupIDs) <= 1 {
		return []IPPermission{p}
	}
	var out []IPPermission
	for _, cidr := range p.CIDRs {
		out = append(out, IPPermission{Protocol: p.Protocol, FromPort: p.FromPort, ToPort: p.ToPort, CIDRs: []string{cidr}, Description: p.Description})
	}
	for _, g := range p.GroupIDs {
		out = append(out, IPPermission{Protocol: p.Protocol, FromPort: p.FromPort, ToPort: p.ToPort, GroupIDs: []string{g}, Description: p.Description})
	}
	return out
}

// renderPermissions groups single-peer rules by protocol and ports, as
// EC2 shows them.
func renderPermissions(account string, perms []IPPermission) []*X {
	type key struct {
		proto    string
		from, to int
	}
	var order []key
	byKey := map[key][]IPPermission{}
	for _, p := range perms {
		k := key{p.Protocol, p.FromPort, p.ToPort}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], p)
	}
	var out []*X
	for _, k := range order {
		var ranges, groups []*X
		for _, p := range byKey[k] {
			for _, cidr := range p.CIDRs {
				ranges = append(ranges, E("item", T("cidrIp", cidr), Opt("description", p.Description)))
			}
			for _, g := range p.GroupIDs {
				groups = append(groups, E("item", T("userId", account), T("groupId", g), Opt("description", p.Description)))
			}
		}
		item := E("item", T("ipProtocol", k.proto))
		if k.proto != "-1" {
			item.Kids = append(item.Kids, I("fromPort", k.from), I("toPort", k.to))
		}
		item.Kids = append(item.Kids, List("groups", groups), List("ipRanges", ranges), List("ipv6Ranges", nil), List("prefixListIds", nil))
		out = append(out, item)
	}
	return out
}

var protocolNumbers = map[string]string{"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}

// parsePermissions reads IpPermissions.N (or the legacy top-level
// CidrIp/IpProtocol/FromPort/ToPort/SourceSecurityGroupName form) into
// single-peer rules.
func (r *Region) parsePermissions(p Params, sg *SecurityGroup) ([]IPPermission, *APIError) {
	sets := p.Structs("IpPermissions")
	legacy := p.Has("IpProtocol") || p.Has("CidrIp") || p.Has("SourceSecurityGroupName")
	if legacy {
		sets = append(sets, p)
	}
	var out []IPPermission
	for _, s := range sets {
		proto := strings.ToLower(s.Get("IpProtocol"))
		if proto == "" {
			if !legacy {
				return nil, errf("MissingParameter", "The request must contain the parameter ipProtocol")
			}
			proto = "-1"
		}
		if n, ok := protocolNumbers[proto]; ok {
			proto = n
		}
		from, err := s.IntPtr("FromPort")
		if err != nil {
			return nil, err
		}
		to, err := s.IntPtr("ToPort")
		if err != nil {
			return nil, err
		}
		base := IPPermission{Protocol: proto}
		switch proto {
		case "-1":
		case "tcp", "udp":
			if from == nil || to == nil {
				return nil, errf("InvalidParameterValue", "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
			}
			if *from < 0 || *to > 65535 || *from > *to {
				return nil, errf("InvalidParameterValue", "Invalid value '%d-%d' for portRange. Valid values are 0-65535 with from <= to.", *from, *to)
			}
			base.FromPort, base.ToPort = *from, *to
		case "icmp", "icmpv6":
			base.FromPort, base.ToPort = -1, -1
			if from != nil {
				base.FromPort = *from
			}
			if to != nil {
				base.ToPort = *to
			}
		default:
			if n, err := strconv.Atoi(proto); err != nil || n < 0 || n > 255 {
				return nil, errf("InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", s.Get("IpProtocol"))
			}
		}
		cidrs := []struct{ cidr, desc string }{}
		for _, rg := range s.Structs("IpRanges") {
			cidrs = append(cidrs, struct{ cidr, desc string }{rg.Get("CidrIp"), rg.Get("Description")})
		}
		if s.Get("CidrIp") != "" {
			cidrs = append(cidrs, struct{ cidr, desc string }{s.Get("CidrIp"), ""})
		}
		n := 0
		for _, cr := range cidrs {
			pfx, perr := netip.ParsePrefix(cr.cidr)
			if perr != nil || !pfx.Addr().Is4() {
				return nil, errf("InvalidParameterValue", "CIDR block %s is malformed", cr.cidr)
			}
			if pfx.Masked() != pfx {
				return nil, errf("InvalidParameterValue", "CIDR block %s is malformed", cr.cidr)
			}
			q := base
			q.CIDRs, q.Description = []string{cr.cidr}, cr.desc
			out = append(out, q)
			n++
		}
		groups := s.Structs("Groups")
		if name := s.Get("SourceSecurityGroupName"); name != "" {
			groups = append(groups, Params{v: map[string][]string{"GroupName": {name}}})
		}
		for _, g := range groups {
			peer, err := r.sgByRef(g.Get("GroupId"), g.Get("GroupName"))
			if err != nil {
				return nil, err
			}
			if peer.VpcID != sg.VpcID {
				return nil, errf("InvalidGroup.NotFound", "You have specified two resources that belong to different networks.")
			}
			q := base
			q.GroupIDs, q.Description = []string{peer.ID}, g.Get("Description")
			out = append(out, q)
			n++
		}
		if n == 0 {
			// A permission with no peer means every address in legacy form.
			if !legacy {
				return nil, errf("InvalidParameterValue", "The request must contain at least one IP range or security group for each permission")
			}
			q := base
			q.CIDRs = []string{"0.0.0.0/0"}
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		return nil, errf("MissingParameter", "The request must contain the parameter ipPermissions")
	}
	return out, nil
}

func samePermission(a, b IPPermission) bool {
	return a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		strings.Join(a.CIDRs, ",") == strings.Join(b.CIDRs, ",") && strings.Join(a.GroupIDs, ",") == strings.Join(b.GroupIDs, ",")
}

func describePermission(p IPPermission) string {
	peer := strings.Join(append(append([]string{}, p.CIDRs...), p.GroupIDs...), ",")
	proto := strings.ToUpper(p.Protocol)
	if p.Protocol == "-1" {
		return fmt.Sprintf("peer: %s, ALL, ALLOW", peer)
	}
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, proto, p.FromPort, p.ToPort)
}

func (r *Region) renderRule(sg *SecurityGroup, p IPPermission, egress bool) []*X {
	out := []*X{T("securityGroupRuleId", p.RuleID), T("groupId", sg.ID), T("groupOwnerId", r.Account), B("isEgress", egress),
		T("ipProtocol", p.Protocol), I("fromPort", p.FromPort), I("toPort", p.ToPort),
		T("securityGroupRuleArn", r.arn("ec2", "security-group-rule/"+p.RuleID)), Opt("description", p.Description)}
	if p.Protocol == "-1" {
		out[5], out[6] = I("fromPort", -1), I("toPort", -1)
	}
	if len(p.CIDRs) > 0 {
		out = append(out, T("cidrIpv4", p.CIDRs[0]))
	}
	if len(p.GroupIDs) > 0 {
		out = append(out, E("referencedGroupInfo", T("groupId", p.GroupIDs[0]), T("userId", r.Account)))
	}
	return out
}

func ec2AuthorizeSG(egress bool) handler {
	return func(c *call) (any, *APIError) {
		sg, err := c.r.sgByRef(c.p.Get("GroupId"), c.p.Get("GroupName"))
		if err != nil {
			return nil, err
		}
		c.r.ensureRuleIDs(sg)
		perms, err := c.r.parsePermissions(c.p, sg)
		if err != nil {
			return nil, err
		}
		rules := &sg.Ingress
		if egress {
			rules = &sg.Egress
		}
		for i, p := range perms {
			for _, q := range append(append([]IPPermission{}, *rules...), perms[:i]...) {
				if samePermission(p, q) {
					return nil, errf("InvalidPermission.Duplicate", "the specified rule \"%s\" already exists", describePermission(p))
				}
			}
		}
		var set []*X
		for _, p := range perms {
			p.RuleID = newID("sgr")
			*rules = append(*rules, p)
			set = append(set, E("item", c.r.renderRule(sg, p, egress)...))
		}
		return ec2Out(B("return", true), List("securityGroupRuleSet", set)), nil
	}
}

func ec2RevokeSG(egress bool) handler {
	return func(c *call) (any, *APIError) {
		sg, err := c.r.sgByRef(c.p.Get("GroupId"), c.p.Get("GroupName"))
		if err != nil {
			return nil, err
		}
		c.r.ensureRuleIDs(sg)
		rules := &sg.Ingress
		if egress {
			rules = &sg.Egress
		}
		remove := map[string]bool{}
		var unknown []IPPermission
		if ruleIDs := c.p.List("SecurityGroupRuleId"); len(ruleIDs) > 0 {
			for _, id := range ruleIDs {
				found := false
				for _, q := range *rules {
					if q.RuleID == id {
						remove[id], found = true, true
					}
				}
				if !found {
					return nil, errf("InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", id)
				}
			}
		} else {
			perms, err := c.r.parsePermissions(c.p, sg)
			if err != nil {
				return nil, err
			}
			for _, p := range perms {
				found := false
				for _, q := range *rules {
					if samePermission(p, q) {
						remove[q.RuleID], found = true, true
					}
				}
				if !found {
					unknown = append(unknown, p)
				}
			}
		}
		var kept []IPPermission
		var revoked []*X
		for _, q := range *rules {
			if remove[q.RuleID] {
				revoked = append(revoked, E("item", T("securityGroupRuleId", q.RuleID), T("groupId", sg.ID), B("isEgress", egress),
					T("ipProtocol", q.Protocol), I("fromPort", q.FromPort), I("toPort", q.ToPort)))
				continue
			}
			kept = append(kept, q)
		}
		*rules = kept
		out := []*X{B("return", true), List("revokedSecurityGroupRuleSet", revoked)}
		if len(unknown) > 0 {
			out = append(out, List("unknownIpPermissionSet", renderPermissions(c.r.Account, unknown)))
		}
		return out, nil
	}
}

// ec2Out drops absent (nil) elements from a result.
func ec2Out(kids ...*X) []*X {
	out := kids[:0]
	for _, k := range kids {
		if k != nil {
			out = append(out, k)
		}
	}
	return out
}
