package sandbox

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ELBv2 (Application and Network Load Balancers) over the AWS query
// protocol: load balancers, target groups, listeners, rules, tags and
// attributes. Target health is played by elbv2_health.go.

const elbSvc = "elasticloadbalancing"

func init() {
	for name, h := range map[string]handler{
		"CreateLoadBalancer":             elbCreateLoadBalancer,
		"DescribeLoadBalancers":          elbDescribeLoadBalancers,
		"DeleteLoadBalancer":             elbDeleteLoadBalancer,
		"DescribeLoadBalancerAttributes": elbDescribeLoadBalancerAttributes,
		"ModifyLoadBalancerAttributes":   elbModifyLoadBalancerAttributes,
		"CreateTargetGroup":              elbCreateTargetGroup,
		"ModifyTargetGroup":              elbModifyTargetGroup,
		"DescribeTargetGroups":           elbDescribeTargetGroups,
		"DeleteTargetGroup":              elbDeleteTargetGroup,
		"DescribeTargetGroupAttributes":  elbDescribeTargetGroupAttributes,
		"ModifyTargetGroupAttributes":    elbModifyTargetGroupAttributes,
		"RegisterTargets":                elbRegisterTargets,
		"DeregisterTargets":              elbDeregisterTargets,
		"DescribeTargetHealth":           elbDescribeTargetHealth,
		"CreateListener":                 elbCreateListener,
		"DescribeListeners":              elbDescribeListeners,
		"ModifyListener":                 elbModifyListener,
		"DeleteListener":                 elbDeleteListener,
		"CreateRule":                     elbCreateRule,
		"DescribeRules":                  elbDescribeRules,
		"ModifyRule":                     elbModifyRule,
		"SetRulePriorities":              elbSetRulePriorities,
		"DeleteRule":                     elbDeleteRule,
		"AddTags":                        elbAddTags,
		"RemoveTags":                     elbRemoveTags,
		"DescribeTags":                   elbDescribeTags,
	} {
		register(elbSvc, name, h)
	}
	addController(elbLoadBalancerController)
}

// verr is ELBv2's ValidationError.
func verr(format string, args ...any) *APIError { return errf("ValidationError", format, args...) }

// constraintErr is the message AWS gives for a number outside a model range.
func constraintErr(field string, v, lo, hi int) *APIError {
	if v < lo {
		return verr("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", v, field, lo)
	}
	return verr("1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", v, field, hi)
}

// intIn reads an optional integer and checks its range.
func intIn(p Params, key, field string, lo, hi int) (*int, *APIError) {
	n, err := p.IntPtr(key)
	if err != nil {
		return nil, verr("Value '%s' at '%s' is not a valid integer", p.Get(key), field)
	}
	if n != nil && (*n < lo || *n > hi) {
		return nil, constraintErr(field, *n, lo, hi)
	}
	return n, nil
}

var elbNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

// checkELBName applies the naming rules shared by load balancers and
// target groups; kind is "Load balancer" or "Target group".
func checkELBName(kind, name string) *APIError {
	switch {
	case name == "":
		return verr("%s name cannot be empty", kind)
	case len(name) > 32:
		return verr("%s name '%s' cannot be longer than '32' characters", kind, name)
	case !elbNamePattern.MatchString(name):
		return verr("%s name '%s' can only contain characters that are alphanumeric characters or hyphens(-)", kind, name)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return verr("%s name '%s' cannot begin or end with '-'", kind, name)
	case kind == "Load balancer" && strings.HasPrefix(name, "internal-"):
		return verr("Load balancer name '%s' cannot begin with 'internal-'", name)
	}
	return nil
}

// parseELBTags reads Tags.member.N.Key/Value.
func parseELBTags(p Params) (Tags, *APIError) {
	tags := Tags{}
	for _, t := range p.MemberStructs("Tags") {
		k := t.Get("Key")
		if k == "" {
			return nil, verr("A tag key must be specified")
		}
		if strings.HasPrefix(k, "aws:") {
			return nil, verr("Tag key '%s' cannot start with 'aws:'", k)
		}
		if len(k) > 128 || len(t.Get("Value")) > 256 {
			return nil, verr("Tag key or value of '%s' is too long", k)
		}
		tags[k] = t.Get("Value")
	}
	if len(tags) > 50 {
		return nil, errf("TooManyTags", "You've reached the limit on the number of tags for this resource")
	}
	return tags, nil
}

// elbPage cuts one Marker/PageSize page and returns its NextMarker.
func elbPage[T any](c *call, items []T) ([]T, *X, *APIError) {
	size, err := intIn(c.p, "PageSize", "pageSize", 1, 400)
	if err != nil {
		return nil, nil, err
	}
	max := 0
	if size != nil {
		max = *size
	}
	out, next, perr := page(items, c.p.Get("Marker"), max)
	if perr != nil {
		return nil, nil, verr("Invalid value '%s' for Marker", c.p.Get("Marker"))
	}
	return out, Opt("NextMarker", next), nil
}

// sortByCreated orders resources as AWS lists them: oldest first.
func sortByCreated[T any](items []T, created func(T) time.Time, key func(T) string) {
	sort.Slice(items, func(i, j int) bool {
		a, b := created(items[i]), created(items[j])
		if !a.Equal(b) {
			return a.Before(b)
		}
		return key(items[i]) < key(items[j])
	})
}

// Lookups. Resources hidden by an "invisible" fault are not found.

func (c *call) loadBalancer(arn string) (*LoadBalancer, *APIError) {
	lb := c.r.LoadBalancers[arn]
	if lb == nil || c.hidden(lb.Created) {
		return nil, errf("LoadBalancerNotFound", "Load balancer '%s' not found", arn)
	}
	return lb, nil
}

func (c *call) targetGroup(arn string) (*TargetGroup, *APIError) {
	tg := c.r.TargetGroups[arn]
	if tg == nil || c.hidden(tg.Created) {
		return nil, errf("TargetGroupNotFound", "Target groups '%s' not found", arn)
	}
	return tg, nil
}

func (c *call) listener(arn string) (*Listener, *APIError) {
	l := c.r.Listeners[arn]
	if l == nil || c.hidden(l.Created) {
		return nil, errf("ListenerNotFound", "Listener '%s' not found", arn)
	}
	return l, nil
}

func (c *call) rule(arn string) (*Rule, *APIError) {
	r := c.r.Rules[arn]
	if r == nil || c.hidden(r.Created) {
		return nil, errf("RuleNotFound", "One or more rules not found")
	}
	return r, nil
}

// ---- Load balancers ----

var elbHostedZones = map[string][2]string{ // region -> application, network
	"us-east-1":    {"Z35SXDOTRQ7X7K", "Z26RNL4JYFTOTI"},
	"us-east-2":    {"Z3AADJGX6KTTL2", "ZLMOA37VPKANP"},
	"us-west-1":    {"Z368ELLRRE2KJ0", "Z24FKFUX50B4VW"},
	"us-west-2":    {"Z1H1FL5HABSF5", "Z18D5FSROUN65G"},
	"eu-west-1":    {"Z32O12XQLNTSW2", "Z2IFOLAFXWLO4F"},
	"eu-central-1": {"Z215JYRZR1TBD5", "Z3F0SRJ5LGBH90"},
}

func (lb *LoadBalancer) hostedZone(region string) string {
	z, ok := elbHostedZones[region]
	if !ok {
		z = elbHostedZones["us-east-1"]
	}
	if lb.Type == "network" {
		return z[1]
	}
	return z[0]
}

// lbAttributeSpecs are the attributes each type knows, with defaults and
// a value check.
type attrSpec struct {
	def   string
	valid func(string) bool
}

func boolAttr(def string) attrSpec {
	return attrSpec{def, func(v string) bool { return v == "true" || v == "false" }}
}

func intAttr(def string, lo, hi int) attrSpec {
	return attrSpec{def, func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= lo && n <= hi }}
}

func enumAttr(def string, vals ...string) attrSpec {
	return attrSpec{def, func(v string) bool { return contains(vals, v) }}
}

func anyAttr(def string) attrSpec { return attrSpec{def, func(string) bool { return true }} }

var lbAttributeSpecs = map[string]map[string]attrSpec{
	"application": {
		"access_logs.s3.enabled":                                   boolAttr("false"),
		"access_logs.s3.bucket":                                    anyAttr(""),
		"access_logs.s3.prefix":                                    anyAttr(""),
		"connection_logs.s3.enabled":                               boolAttr("false"),
		"connection_logs.s3.bucket":                                anyAttr(""),
		"connection_logs.s3.prefix":                                anyAttr(""),
		"client_keep_alive.seconds":                                intAttr("3600", 60, 604800),
		"deletion_protection.enabled":                              boolAttr("false"),
		"idle_timeout.timeout_seconds":                             intAttr("60", 1, 4000),
		"load_balancing.cross_zone.enabled":                        boolAttr("true"),
		"routing.http.desync_mitigation_mode":                      enumAttr("defensive", "monitor", "defensive", "strictest"),
		"routing.http.drop_invalid_header_fields.enabled":          boolAttr("false"),
		"routing.http.preserve_host_header.enabled":                boolAttr("false"),
		"routing.http.x_amzn_tls_version_and_cipher_suite.enabled": boolAttr("false"),
		"routing.http.xff_client_port.enabled":                     boolAttr("false"),
		"routing.http.xff_header_processing.mode":                  enumAttr("append", "append", "preserve", "remove"),
		"routing.http2.enabled":                                    boolAttr("true"),
		"waf.fail_open.enabled":                                    boolAttr("false"),
	},
	"network": {
		"access_logs.s3.enabled":            boolAttr("false"),
		"access_logs.s3.bucket":             anyAttr(""),
		"access_logs.s3.prefix":             anyAttr(""),
		"deletion_protection.enabled":       boolAttr("false"),
		"load_balancing.cross_zone.enabled": boolAttr("false"),
		"dns_record.client_routing_policy":  enumAttr("any_availability_zone", "availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"),
	},
}

func defaultAttributes(specs map[string]attrSpec) map[string]string {
	out := make(map[string]string, len(specs))
	for k, s := range specs {
		out[k] = s.def
	}
	return out
}

// applyAttributes validates Attributes.member.N against specs and, when
// all are valid, applies them to attrs.
func applyAttributes(p Params, kind string, specs map[string]attrSpec, attrs map[string]string) *APIError {
	items := p.MemberStructs("Attributes")
	if len(items) == 0 {
		return verr("At least one attribute must be specified")
	}
	for _, a := range items {
		k, v := a.Get("Key"), a.Get("Value")
		spec, ok := specs[k]
		if !ok {
			return verr("%s attribute key '%s' is not recognized", kind, k)
		}
		if !spec.valid(v) {
			return verr("%s attribute value '%s' is not valid for attribute key '%s'", kind, v, k)
		}
	}
	for _, a := range items {
		attrs[a.Get("Key")] = a.Get("Value")
	}
	return nil
}

func renderAttributes(attrs map[string]string) []*X {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]*X, 0, len(keys))
	for _, k := range keys {
		items = append(items, E("member", T("Key", k), T("Value", attrs[k])))
	}
	return []*X{List("Attributes", items)}
}

func elbCreateLoadBalancer(c *call) (any, *APIError) {
	p, r := c.p, c.r
	name := p.Get("Name")
	if err := checkELBName("Load balancer", name); err != nil {
		return nil, err
	}
	lbType := p.Get("Type")
	if lbType == "" {
		lbType = "application"
	}
	if lbType != "application" && lbType != "network" {
		return nil, verr("Load balancer type '%s' is not supported; valid types are 'application' and 'network'", lbType)
	}
	scheme := p.Get("Scheme")
	if scheme == "" {
		scheme = "internet-facing"
	}
	if scheme != "internet-facing" && scheme != "internal" {
		return nil, verr("Scheme '%s' must be one of 'internet-facing' or 'internal'", scheme)
	}
	ipType := p.Get("IpAddressType")
	if ipType == "" {
		ipType = "ipv4"
	}
	if !contains([]string{"ipv4", "dualstack", "dualstack-without-public-ipv4"}, ipType) {
		return nil, verr("IP address type '%s' must be one of 'ipv4', 'dualstack' or 'dualstack-without-public-ipv4'", ipType)
	}
	subnetIDs := p.Members("Subnets")
	for _, m := range p.MemberStructs("SubnetMappings") {
		subnetIDs = append(subnetIDs, m.Get("SubnetId"))
	}
	vpcID := ""
	azs := map[string]bool{}
	for _, id := range subnetIDs {
		sn := r.Subnets[id]
		if sn == nil {
			return nil, errf("SubnetNotFound", "The subnet ID '%s' is not valid", id)
		}
		if vpcID != "" && sn.VpcID != vpcID {
			return nil, errf("InvalidConfigurationRequest", "All subnets must belong to the same VPC")
		}
		vpcID = sn.VpcID
		if azs[sn.AZ] {
			return nil, errf("InvalidConfigurationRequest", "A load balancer cannot be attached to multiple subnets in the same Availability Zone")
		}
		azs[sn.AZ] = true
	}
	if lbType == "application" && len(azs) < 2 {
		return nil, verr("At least two subnets in two different Availability Zones must be specified")
	}
	if len(azs) == 0 {
		return nil, verr("At least one subnet must be specified")
	}
	sgs := p.Members("SecurityGroups")
	for _, id := range sgs {
		if sg := r.SecurityGroups[id]; sg == nil || sg.VpcID != vpcID {
			return nil, errf("InvalidSecurityGroup", "Security group '%s' does not exist", id)
		}
	}
	if len(sgs) == 0 && lbType == "application" {
		sgs, _ = r.resolveSecurityGroups(vpcID, nil, nil)
	}
	tags, aerr := parseELBTags(p)
	if aerr != nil {
		return nil, aerr
	}
	sortedSubnets := append([]string(nil), subnetIDs...)
	sort.Strings(sortedSubnets)
	sort.Strings(sgs)
	for _, lb := range r.LoadBalancers {
		if lb.Name != name {
			continue
		}
		if lb.Type == lbType && lb.Scheme == scheme && lb.IPAddressType == ipType &&
			reflect.DeepEqual(lb.SubnetIDs, sortedSubnets) && reflect.DeepEqual(lb.SecurityGroups, sgs) {
			return []*X{List("LoadBalancers", []*X{c.renderLoadBalancer(lb)})}, nil
		}
		return nil, errf("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists, but with different settings", name)
	}
	now := c.w.now()
	lb := &LoadBalancer{
		Name: name, Scheme: scheme, Type: lbType, IPAddressType: ipType, VpcID: vpcID,
		SubnetIDs: sortedSubnets, SecurityGroups: sgs, State: "provisioning",
		Attributes: defaultAttributes(lbAttributeSpecs[lbType]), Tags: tags, Created: now,
		readyAt: now.Add(c.w.timing.d("load_balancer_active")),
	}
	prefix := ""
	if scheme == "internal" {
		prefix = "internal-"
	}
	if lbType == "application" {
		lb.ARN = r.arn(elbSvc, "loadbalancer/app/"+name+"/"+randHex(16))
		lb.DNSName = fmt.Sprintf("%s%s-%s.%s.elb.amazonaws.com", prefix, name, randDigits(10), r.Name)
	} else {
		lb.ARN = r.arn(elbSvc, "loadbalancer/net/"+name+"/"+randHex(16))
		lb.DNSName = fmt.Sprintf("%s%s-%s.elb.%s.amazonaws.com", prefix, name, randHex(16), r.Name)
	}
	if addr := c.w.runtime.LoadBalancerAddress(); addr != "" {
		// The runtime serves the load balancer on its own address: that
		// is the name clients resolve.
		lb.Address, lb.DNSName = addr, addr
	}
	r.LoadBalancers[lb.ARN] = lb
	return []*X{List("LoadBalancers", []*X{c.renderLoadBalancer(lb)})}, nil
}

func (c *call) renderLoadBalancer(lb *LoadBalancer) *X {
	var zones []*X
	for _, id := range lb.SubnetIDs {
		if sn := c.r.Subnets[id]; sn != nil {
			zones = append(zones, E("member", T("ZoneName", sn.AZ), T("SubnetId", sn.ID), List("LoadBalancerAddresses", nil)))
		}
	}
	sort.Slice(zones, func(i, j int) bool { return zones[i].Kids[0].Text < zones[j].Kids[0].Text })
	var sgs *X
	if len(lb.SecurityGroups) > 0 {
		sgs = List("SecurityGroups", Strings("member", lb.SecurityGroups))
	}
	return E("member",
		T("LoadBalancerArn", lb.ARN), T("DNSName", lb.DNSName), T("CanonicalHostedZoneId", lb.hostedZone(c.r.Name)),
		Time("CreatedTime", lb.Created), T("LoadBalancerName", lb.Name), T("Scheme", lb.Scheme), T("VpcId", lb.VpcID),
		E("State", T("Code", lb.State)), T("Type", lb.Type), List("AvailabilityZones", zones), sgs,
		T("IpAddressType", lb.IPAddressType))
}

func elbDescribeLoadBalancers(c *call) (any, *APIError) {
	arns, names := c.p.Members("LoadBalancerArns"), c.p.Members("Names")
	if len(arns) > 0 && len(names) > 0 {
		return nil, verr("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	var lbs []*LoadBalancer
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			lb, err := c.loadBalancer(a)
			if err != nil {
				return nil, errf("LoadBalancerNotFound", "One or more load balancers not found")
			}
			lbs = append(lbs, lb)
		}
	case len(names) > 0:
		var err *APIError
		if lbs, err = byNames(c, names, c.r.LoadBalancers, func(lb *LoadBalancer) (string, time.Time) { return lb.Name, lb.Created },
			"LoadBalancerNotFound", "Load balancers"); err != nil {
			return nil, err
		}
	default:
		for _, lb := range c.r.LoadBalancers {
			if !c.hidden(lb.Created) {
				lbs = append(lbs, lb)
			}
		}
		sortByCreated(lbs, func(l *LoadBalancer) time.Time { return l.Created }, func(l *LoadBalancer) string { return l.ARN })
	}
	pg, next, err := elbPage(c, lbs)
	if err != nil {
		return nil, err
	}
	items := make([]*X, 0, len(pg))
	for _, lb := range pg {
		items = append(items, c.renderLoadBalancer(lb))
	}
	return []*X{List("LoadBalancers", items), next}, nil
}

func elbDeleteLoadBalancer(c *call) (any, *APIError) {
	arn := c.p.Get("LoadBalancerArn")
	lb := c.r.LoadBalancers[arn]
	if lb == nil {
		if !strings.Contains(arn, ":loadbalancer/") {
			return nil, verr("'%s' is not a valid load balancer ARN", arn)
		}
		return nil, nil // deleting a deleted load balancer succeeds
	}
	if lb.Attributes["deletion_protection.enabled"] == "true" {
		return nil, errf("OperationNotPermitted", "Load balancer '%s' cannot be deleted because deletion protection is enabled", arn)
	}
	for _, l := range c.r.Listeners {
		if l.LoadBalancerARN == arn {
			c.r.deleteListener(l)
		}
	}
	delete(c.r.LoadBalancers, arn)
	if lb.Address != "" {
		c.w.runtime.ReleaseIP(lb.Address)
	}
	return nil, nil
}

func elbDescribeLoadBalancerAttributes(c *call) (any, *APIError) {
	lb, err := c.loadBalancer(c.p.Get("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	return renderAttributes(lb.Attributes), nil
}

func elbModifyLoadBalancerAttributes(c *call) (any, *APIError) {
	lb, err := c.loadBalancer(c.p.Get("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	if err := applyAttributes(c.p, "Load balancer", lbAttributeSpecs[lb.Type], lb.Attributes); err != nil {
		return nil, err
	}
	return renderAttributes(lb.Attributes), nil
}

// elbLoadBalancerController makes provisioning load balancers active.
func elbLoadBalancerController(r *Region, now time.Time) {
	for _, lb := range r.LoadBalancers {
		if lb.State == "provisioning" && !now.Before(lb.readyAt) {
			lb.State = "active"
		}
	}
}

// ---- Target groups ----

var (
	tgProtocols    = []string{"HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP"}
	matcherPattern = regexp.MustCompile(`^\d{3}(-\d{3}|(,\d{3})*)$`)
)

func isHTTP(protocol string) bool { return protocol == "HTTP" || protocol == "HTTPS" }

// defaultHealthCheck is what AWS gives a new group of protocol.
func defaultHealthCheck(protocol string) TargetGroupHealthCheck {
	if isHTTP(protocol) {
		return TargetGroupHealthCheck{Enabled: true, Protocol: protocol, Port: "traffic-port", Path: "/",
			IntervalSeconds: 30, TimeoutSeconds: 5, HealthyThreshold: 5, UnhealthyThreshold: 2, Matcher: "200"}
	}
	return TargetGroupHealthCheck{Enabled: true, Protocol: "TCP", Port: "traffic-port",
		IntervalSeconds: 30, TimeoutSeconds: 10, HealthyThreshold: 5, UnhealthyThreshold: 2}
}

// parseHealthCheck applies the HealthCheck* parameters to hc and checks
// the result as AWS does.
func parseHealthCheck(p Params, hc TargetGroupHealthCheck, tg *TargetGroup) (TargetGroupHealthCheck, *APIError) {
	if v := p.Get("HealthCheckProtocol"); v != "" {
		allowed := []string{"HTTP", "HTTPS", "TCP"}
		if isHTTP(tg.Protocol) {
			allowed = allowed[:2]
		}
		if !contains(allowed, v) {
			return hc, verr("Health check protocol '%s' is not supported for target groups with the protocol '%s'", v, tg.Protocol)
		}
		if isHTTP(v) && !isHTTP(hc.Protocol) {
			hc.Path, hc.Matcher = "/", "200-399"
		}
		hc.Protocol = v
	}
	if v := p.Get("HealthCheckPort"); v != "" {
		if n, err := strconv.Atoi(v); v != "traffic-port" && (err != nil || n < 1 || n > 65535) {
			return hc, verr("Health check port '%s' must be 'traffic-port' or a number between 1 and 65535", v)
		}
		hc.Port = v
	}
	if v := p.Get("HealthCheckPath"); v != "" {
		if !isHTTP(hc.Protocol) {
			return hc, verr("Health check path cannot be specified for the '%s' health check protocol", hc.Protocol)
		}
		if !strings.HasPrefix(v, "/") || len(v) > 1024 {
			return hc, verr("Health check path '%s' must begin with '/' and be at most 1024 characters", v)
		}
		hc.Path = v
	}
	if v := p.Get("Matcher.HttpCode"); v != "" {
		if !isHTTP(hc.Protocol) {
			return hc, verr("A matcher cannot be specified for the '%s' health check protocol", hc.Protocol)
		}
		if !matcherPattern.MatchString(v) {
			return hc, verr("Health check matcher HTTP code '%s' must be a code such as '200', a list such as '200,202' or a range such as '200-299'", v)
		}
		for _, code := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '-' }) {
			if n, _ := strconv.Atoi(code); n < 200 || n > 499 {
				return hc, verr("Health check matcher HTTP code '%s' must be within '200-499'", code)
			}
		}
		hc.Matcher = v
	}
	for _, f := range []struct {
		key, field string
		lo, hi     int
		dst        *int
	}{
		{"HealthCheckIntervalSeconds", "healthCheckIntervalSeconds", 5, 300, &hc.IntervalSeconds},
		{"HealthCheckTimeoutSeconds", "healthCheckTimeoutSeconds", 2, 120, &hc.TimeoutSeconds},
		{"HealthyThresholdCount", "healthyThresholdCount", 2, 10, &hc.HealthyThreshold},
		{"UnhealthyThresholdCount", "unhealthyThresholdCount", 2, 10, &hc.UnhealthyThreshold},
	} {
		n, err := intIn(p, f.key, f.field, f.lo, f.hi)
		if err != nil {
			return hc, err
		}
		if n != nil {
			*f.dst = *n
		}
	}
	if hc.TimeoutSeconds >= hc.IntervalSeconds {
		return hc, verr("Health check interval must be greater than the timeout.")
	}
	en, err := p.BoolPtr("HealthCheckEnabled")
	if err != nil {
		return hc, verr("Health check enabled '%s' must be a boolean", p.Get("HealthCheckEnabled"))
	}
	if en != nil {
		if !*en {
			return hc, verr("Health check enabled must be true for target groups with target type '%s'", tg.TargetType)
		}
		hc.Enabled = true
	}
	return hc, nil
}

func elbCreateTargetGroup(c *call) (any, *APIError) {
	p, r := c.p, c.r
	name := p.Get("Name")
	if err := checkELBName("Target group", name); err != nil {
		return nil, err
	}
	tg := &TargetGroup{Name: name, Protocol: p.Get("Protocol"), VpcID: p.Get("VpcId"), TargetType: p.Get("TargetType")}
	if tg.TargetType == "" {
		tg.TargetType = "instance"
	}
	switch tg.TargetType {
	case "instance", "ip":
	case "lambda", "alb":
		return nil, verr("Target type '%s' is not supported by the sandbox", tg.TargetType)
	default:
		return nil, verr("Target type '%s' must be one of 'instance', 'ip', 'lambda' or 'alb'", tg.TargetType)
	}
	if tg.Protocol == "" {
		return nil, verr("A protocol must be specified")
	}
	if !contains(tgProtocols, tg.Protocol) {
		return nil, verr("Protocol '%s' must be one of '%s'", tg.Protocol, strings.Join(tgProtocols, ", "))
	}
	port, err := intIn(p, "Port", "port", 1, 65535)
	if err != nil {
		return nil, err
	}
	if port == nil {
		return nil, verr("A port must be specified")
	}
	tg.Port = *port
	if tg.VpcID == "" {
		return nil, verr("A VPC ID must be specified")
	}
	if r.VPCs[tg.VpcID] == nil {
		return nil, verr("The VPC ID '%s' is not found", tg.VpcID)
	}
	if tg.HealthCheck, err = parseHealthCheck(p, defaultHealthCheck(tg.Protocol), tg); err != nil {
		return nil, err
	}
	if tg.Tags, err = parseELBTags(p); err != nil {
		return nil, err
	}
	for _, old := range r.TargetGroups {
		if old.Name != name {
			continue
		}
		if old.Protocol == tg.Protocol && old.Port == tg.Port && old.VpcID == tg.VpcID &&
			old.TargetType == tg.TargetType && old.HealthCheck == tg.HealthCheck {
			return []*X{List("TargetGroups", []*X{c.renderTargetGroup(old, nil)})}, nil
		}
		return nil, errf("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
	}
	tg.ARN = r.arn(elbSvc, "targetgroup/"+name+"/"+randHex(16))
	tg.Attributes = defaultAttributes(tgAttributeSpecs(tg))
	tg.Created = c.w.now()
	r.TargetGroups[tg.ARN] = tg
	return []*X{List("TargetGroups", []*X{c.renderTargetGroup(tg, nil)})}, nil
}

// tgAttributeSpecs are the attributes a target group of this protocol knows.
func tgAttributeSpecs(tg *TargetGroup) map[string]attrSpec {
	specs := map[string]attrSpec{
		"deregistration_delay.timeout_seconds": intAttr("300", 0, 3600),
		"stickiness.enabled":                   boolAttr("false"),
		"load_balancing.cross_zone.enabled":    enumAttr("use_load_balancer_configuration", "true", "false", "use_load_balancer_configuration"),
	}
	if isHTTP(tg.Protocol) {
		specs["stickiness.type"] = enumAttr("lb_cookie", "lb_cookie", "app_cookie")
		specs["stickiness.lb_cookie.duration_seconds"] = intAttr("86400", 1, 604800)
		specs["stickiness.app_cookie.cookie_name"] = anyAttr("")
		specs["stickiness.app_cookie.duration_seconds"] = intAttr("86400", 1, 604800)
		specs["slow_start.duration_seconds"] = attrSpec{"0", func(v string) bool {
			n, err := strconv.Atoi(v)
			return err == nil && (n == 0 || (n >= 30 && n <= 900))
		}}
		specs["load_balancing.algorithm.type"] = enumAttr("round_robin", "round_robin", "least_outstanding_requests", "weighted_random")
		specs["load_balancing.algorithm.anomaly_mitigation"] = enumAttr("off", "on", "off")
		specs["target_group_health.dns_failover.minimum_healthy_targets.count"] = anyAttr("1")
		specs["target_group_health.dns_failover.minimum_healthy_targets.percentage"] = anyAttr("off")
		specs["target_group_health.unhealthy_state_routing.minimum_healthy_targets.count"] = anyAttr("1")
		specs["target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage"] = anyAttr("off")
	} else {
		specs["stickiness.type"] = enumAttr("source_ip", "source_ip")
		specs["deregistration_delay.connection_termination.enabled"] = boolAttr("false")
		specs["preserve_client_ip.enabled"] = boolAttr(strconv.FormatBool(tg.TargetType == "instance"))
		specs["proxy_protocol_v2.enabled"] = boolAttr("false")
		specs["target_health_state.unhealthy.connection_termination.enabled"] = boolAttr("true")
	}
	return specs
}

// targetGroupUsers maps every target group that a listener or rule
// forwards to onto the load balancers using it.
func (r *Region) targetGroupUsers() map[string][]string {
	out := map[string][]string{}
	add := func(actions []Action, lbARN string) {
		for _, a := range actions {
			arns := []string{a.TargetGroupARN}
			for _, f := range a.Forward {
				arns = append(arns, f.ARN)
			}
			for _, arn := range arns {
				if arn != "" && !contains(out[arn], lbARN) {
					out[arn] = append(out[arn], lbARN)
				}
			}
		}
	}
	for _, l := range r.Listeners {
		add(l.DefaultActions, l.LoadBalancerARN)
	}
	for _, rule := range r.Rules {
		if l := r.Listeners[rule.ListenerARN]; l != nil && rule.Priority != "default" {
			add(rule.Actions, l.LoadBalancerARN)
		}
	}
	return out
}

// renderTargetGroup renders tg; users is targetGroupUsers(), nil to
// compute it.
func (c *call) renderTargetGroup(tg *TargetGroup, users map[string][]string) *X {
	if users == nil {
		users = c.r.targetGroupUsers()
	}
	hc := tg.HealthCheck
	lbs := append([]string(nil), users[tg.ARN]...)
	sort.Strings(lbs)
	var path, matcher, version *X
	if isHTTP(hc.Protocol) {
		path, matcher = T("HealthCheckPath", hc.Path), E("Matcher", T("HttpCode", hc.Matcher))
	}
	if isHTTP(tg.Protocol) {
		version = T("ProtocolVersion", "HTTP1")
	}
	return E("member",
		T("TargetGroupArn", tg.ARN), T("TargetGroupName", tg.Name), T("Protocol", tg.Protocol), I("Port", tg.Port),
		T("VpcId", tg.VpcID), T("HealthCheckProtocol", hc.Protocol), T("HealthCheckPort", hc.Port),
		B("HealthCheckEnabled", hc.Enabled), I("HealthCheckIntervalSeconds", hc.IntervalSeconds),
		I("HealthCheckTimeoutSeconds", hc.TimeoutSeconds), I("HealthyThresholdCount", hc.HealthyThreshold),
		I("UnhealthyThresholdCount", hc.UnhealthyThreshold), path, matcher,
		List("LoadBalancerArns", Strings("member", lbs)), T("TargetType", tg.TargetType), version,
		T("IpAddressType", "ipv4"))
}

func elbModifyTargetGroup(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	hc, err := parseHealthCheck(c.p, tg.HealthCheck, tg)
	if err != nil {
		return nil, err
	}
	tg.HealthCheck = hc
	return []*X{List("TargetGroups", []*X{c.renderTargetGroup(tg, nil)})}, nil
}

func elbDescribeTargetGroups(c *call) (any, *APIError) {
	arns, names, lbARN := c.p.Members("TargetGroupArns"), c.p.Members("Names"), c.p.Get("LoadBalancerArn")
	n := 0
	for _, set := range []bool{len(arns) > 0, len(names) > 0, lbARN != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, verr("Target group names, target group ARNs, and a load balancer ARN cannot be specified at the same time")
	}
	var tgs []*TargetGroup
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			tg, err := c.targetGroup(a)
			if err != nil {
				return nil, errf("TargetGroupNotFound", "One or more target groups not found")
			}
			tgs = append(tgs, tg)
		}
	case len(names) > 0:
		var err *APIError
		if tgs, err = byNames(c, names, c.r.TargetGroups, func(tg *TargetGroup) (string, time.Time) { return tg.Name, tg.Created },
			"TargetGroupNotFound", "Target groups"); err != nil {
			return nil, err
		}
	default:
		if lbARN != "" {
			if _, err := c.loadBalancer(lbARN); err != nil {
				return nil, err
			}
		}
		users := c.r.targetGroupUsers()
		for _, tg := range c.r.TargetGroups {
			if !c.hidden(tg.Created) && (lbARN == "" || contains(users[tg.ARN], lbARN)) {
				tgs = append(tgs, tg)
			}
		}
		sortByCreated(tgs, func(t *TargetGroup) time.Time { return t.Created }, func(t *TargetGroup) string { return t.ARN })
	}
	pg, next, err := elbPage(c, tgs)
	if err != nil {
		return nil, err
	}
	users := c.r.targetGroupUsers()
	items := make([]*X, 0, len(pg))
	for _, tg := range pg {
		items = append(items, c.renderTargetGroup(tg, users))
	}
	return []*X{List("TargetGroups", items), next}, nil
}

func elbDeleteTargetGroup(c *call) (any, *APIError) {
	arn := c.p.Get("TargetGroupArn")
	tg := c.r.TargetGroups[arn]
	if tg == nil {
		if !strings.Contains(arn, ":targetgroup/") {
			return nil, verr("'%s' is not a valid target group ARN", arn)
		}
		return nil, nil
	}
	if c.r.targetGroupInUse(tg) {
		return nil, errf("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	delete(c.r.TargetGroups, arn)
	return nil, nil
}

func elbDescribeTargetGroupAttributes(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	return renderAttributes(tg.Attributes), nil
}

func elbModifyTargetGroupAttributes(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	if err := applyAttributes(c.p, "Target group", tgAttributeSpecs(tg), tg.Attributes); err != nil {
		return nil, err
	}
	return renderAttributes(tg.Attributes), nil
}

// elbTarget is one Targets.member.N.
type elbTarget struct {
	ID   string
	Port int
	AZ   string
}

func parseTargets(p Params, required bool) ([]elbTarget, *APIError) {
	var out []elbTarget
	for _, t := range p.MemberStructs("Targets") {
		port, err := intIn(t, "Port", "port", 1, 65535)
		if err != nil {
			return nil, err
		}
		et := elbTarget{ID: t.Get("Id"), AZ: t.Get("AvailabilityZone")}
		if et.ID == "" {
			return nil, verr("A target ID must be specified")
		}
		if port != nil {
			et.Port = *port
		}
		out = append(out, et)
	}
	if required && len(out) == 0 {
		return nil, verr("At least one target must be specified")
	}
	return out, nil
}

// checkTargets answers the InvalidTarget errors AWS gives for targets that
// do not exist, are in another VPC, or (when registering) are not running.
func (r *Region) checkTargets(tg *TargetGroup, targets []elbTarget, registering bool) *APIError {
	var notRunning []string
	for _, t := range targets {
		if tg.TargetType == "ip" {
			ip, err := netip.ParseAddr(t.ID)
			if err != nil {
				return verr("The IP address '%s' is not a valid IPv4 address", t.ID)
			}
			vpc := r.VPCs[tg.VpcID]
			if pfx, err := netip.ParsePrefix(vpc.CIDR); registering && err == nil && !pfx.Contains(ip) && t.AZ != "all" {
				return verr("The IP address '%s' is not within a VPC CIDR of the target group's VPC", t.ID)
			}
			continue
		}
		inst := r.Instances[t.ID]
		if inst == nil || inst.VpcID != tg.VpcID {
			return errf("InvalidTarget", "The specified target does not exist, is not in the same VPC as the target group, or has an unsupported instance type.")
		}
		if registering && inst.State != "running" {
			notRunning = append(notRunning, "'"+t.ID+"'")
		}
	}
	if len(notRunning) > 0 {
		return errf("InvalidTarget", "The following targets are not in a running state and cannot be registered: %s", strings.Join(notRunning, ", "))
	}
	return nil
}

func elbRegisterTargets(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	targets, err := parseTargets(c.p, true)
	if err != nil {
		return nil, err
	}
	if err := c.r.checkTargets(tg, targets, true); err != nil {
		return nil, err
	}
	for _, t := range targets {
		c.r.registerTarget(tg, t.ID, t.Port)
		if t.AZ != "" {
			for _, rt := range tg.Targets {
				if rt.ID == t.ID && rt.AZ == "" {
					rt.AZ = t.AZ
				}
			}
		}
	}
	return nil, nil
}

func elbDeregisterTargets(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	targets, err := parseTargets(c.p, true)
	if err != nil {
		return nil, err
	}
	if err := c.r.checkTargets(tg, targets, false); err != nil {
		return nil, err
	}
	for _, t := range targets {
		c.r.deregisterTarget(tg, t.ID, t.Port)
	}
	return nil, nil
}

func elbDescribeTargetHealth(c *call) (any, *APIError) {
	tg, err := c.targetGroup(c.p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	filter, err := parseTargets(c.p, false)
	if err != nil {
		return nil, err
	}
	if err := c.r.checkTargets(tg, filter, false); err != nil {
		return nil, err
	}
	hcPort := func(port int) string {
		if tg.HealthCheck.Port == "traffic-port" {
			return strconv.Itoa(port)
		}
		return tg.HealthCheck.Port
	}
	render := func(id string, port int, az, state, reason, desc string) *X {
		return E("member", E("Target", T("Id", id), I("Port", port), Opt("AvailabilityZone", az)),
			T("HealthCheckPort", hcPort(port)),
			E("TargetHealth", T("State", state), Opt("Reason", reason), Opt("Description", desc)))
	}
	var items []*X
	if len(filter) == 0 {
		for _, t := range tg.Targets {
			items = append(items, render(t.ID, t.Port, t.AZ, t.State, t.Reason, t.Description))
		}
	}
	for _, f := range filter {
		found := false
		for _, t := range tg.Targets {
			if t.ID == f.ID && (f.Port == 0 || f.Port == t.Port) {
				items = append(items, render(t.ID, t.Port, t.AZ, t.State, t.Reason, t.Description))
				found = true
			}
		}
		if !found {
			port := f.Port
			if port == 0 {
				port = tg.Port
			}
			items = append(items, render(f.ID, port, f.AZ, "unused", "Target.NotRegistered", "Target is not registered to the target group"))
		}
	}
	return []*X{List("TargetHealthDescriptions", items)}, nil
}

// ---- Actions and conditions ----

var (
	fixedStatusPattern = regexp.MustCompile(`^[245]\d\d$`)
	fixedContentTypes  = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}
	redirectDefaults   = [][2]string{{"Protocol", "#{protocol}"}, {"Port", "#{port}"}, {"Host", "#{host}"}, {"Path", "/#{path}"}, {"Query", "#{query}"}}
)

// parseActions reads Key.member.N actions for a listener or rule of lb and
// checks them, including the target groups they forward to.
func (c *call) parseActions(key string, lb *LoadBalancer) ([]Action, *APIError) {
	items := c.p.MemberStructs(key)
	if len(items) == 0 {
		return nil, verr("At least one action must be specified")
	}
	var out []Action
	terminal := 0
	orders := map[int]bool{}
	for i, s := range items {
		a := Action{Type: s.Get("Type"), Order: i + 1}
		order, err := intIn(s, "Order", "order", 1, 50000)
		if err != nil {
			return nil, err
		}
		if order != nil {
			a.Order = *order
		} else if len(items) > 1 {
			return nil, verr("An order must be specified for each action when more than one action is specified")
		}
		if orders[a.Order] {
			return nil, verr("Action order '%d' is used more than once", a.Order)
		}
		orders[a.Order] = true
		if lb.Type == "network" && a.Type != "forward" {
			return nil, errf("InvalidLoadBalancerAction", "The action type '%s' is not supported for a load balancer of type 'network'", a.Type)
		}
		switch a.Type {
		case "forward":
			if err := c.parseForward(s, lb, &a); err != nil {
				return nil, err
			}
		case "fixed-response":
			f := s.Sub("FixedResponseConfig")
			a.FixedStatus, a.FixedBody, a.FixedType = f.Get("StatusCode"), f.Get("MessageBody"), f.Get("ContentType")
			if !fixedStatusPattern.MatchString(a.FixedStatus) {
				return nil, verr("Fixed response status code '%s' must be a 2XX, 4XX or 5XX code", a.FixedStatus)
			}
			if a.FixedType != "" && !contains(fixedContentTypes, a.FixedType) {
				return nil, verr("Fixed response content type '%s' must be one of '%s'", a.FixedType, strings.Join(fixedContentTypes, ", "))
			}
			if len(a.FixedBody) > 1024 {
				return nil, verr("Fixed response message body cannot be longer than 1024 characters")
			}
		case "redirect":
			rc := s.Sub("RedirectConfig")
			a.Redirect = map[string]string{"StatusCode": rc.Get("StatusCode")}
			if a.Redirect["StatusCode"] != "HTTP_301" && a.Redirect["StatusCode"] != "HTTP_302" {
				return nil, verr("Redirect status code '%s' must be one of 'HTTP_301' or 'HTTP_302'", a.Redirect["StatusCode"])
			}
			for _, kv := range redirectDefaults {
				a.Redirect[kv[0]] = kv[1]
				if v := rc.Get(kv[0]); v != "" {
					a.Redirect[kv[0]] = v
				}
			}
			if p := a.Redirect["Protocol"]; !contains([]string{"HTTP", "HTTPS", "#{protocol}"}, p) {
				return nil, verr("Redirect protocol '%s' must be one of 'HTTP', 'HTTPS' or '#{protocol}'", p)
			}
		case "":
			return nil, verr("An action type must be specified")
		case "authenticate-oidc", "authenticate-cognito":
			if a.Auth, err = parseAuth(s, a.Type); err != nil {
				return nil, err
			}
			out = append(out, a)
			continue
		case "jwt-validation":
			return nil, verr("The action type '%s' is not supported by the sandbox", a.Type)
		default:
			return nil, verr("Action type '%s' must be one of 'forward', 'redirect', 'fixed-response', 'authenticate-oidc', 'authenticate-cognito'", a.Type)
		}
		terminal++
		out = append(out, a)
	}
	if terminal != 1 {
		return nil, errf("TooManyActions", "Only one of the action types 'forward', 'redirect' and 'fixed-response' can be specified")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	// "Each rule must include exactly one of the following routing
	// actions: forward, redirect, or fixed-response, and it must be the
	// last action to be performed."
	// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.html
	if isAuthAction(out[len(out)-1].Type) {
		return nil, errf("InvalidLoadBalancerAction", "The action of type '%s' must come before the action of type forward, redirect or fixed-response", out[len(out)-1].Type)
	}
	return out, nil
}

// parseForward reads a forward action: TargetGroupArn and/or ForwardConfig.
func (c *call) parseForward(s Params, lb *LoadBalancer, a *Action) *APIError {
	a.TargetGroupARN = s.Get("TargetGroupArn")
	fc := s.Sub("ForwardConfig")
	for _, t := range fc.MemberStructs("TargetGroups") {
		w, err := intIn(t, "Weight", "weight", 0, 999)
		if err != nil {
			return err
		}
		wt := WeightedTargetGroup{ARN: t.Get("TargetGroupArn"), Weight: 1}
		if w != nil {
			wt.Weight = *w
		}
		for _, prev := range a.Forward {
			if prev.ARN == wt.ARN {
				return verr("Target group '%s' is specified more than once in the forward action", wt.ARN)
			}
		}
		a.Forward = append(a.Forward, wt)
	}
	switch {
	case a.TargetGroupARN == "" && len(a.Forward) == 0:
		return verr("A target group ARN must be specified for a forward action")
	case a.TargetGroupARN != "" && len(a.Forward) == 0:
		a.Forward = []WeightedTargetGroup{{ARN: a.TargetGroupARN, Weight: 1}}
	case a.TargetGroupARN != "" && (len(a.Forward) != 1 || a.Forward[0].ARN != a.TargetGroupARN):
		return verr("You cannot specify a target group ARN and a forward config with different target groups")
	}
	if len(a.Forward) > 5 {
		return verr("A forward action can have at most 5 target groups")
	}
	if len(a.Forward) == 1 {
		a.TargetGroupARN = a.Forward[0].ARN
	} else {
		a.TargetGroupARN = ""
	}
	st := fc.Sub("TargetGroupStickinessConfig")
	en, err := st.Bool("Enabled", false)
	if err != nil {
		return verr("Stickiness enabled '%s' must be a boolean", st.Get("Enabled"))
	}
	a.Stickiness = en
	d, aerr := intIn(st, "DurationSeconds", "durationSeconds", 1, 604800)
	if aerr != nil {
		return aerr
	}
	if en && d == nil {
		return verr("A duration must be specified when target group stickiness is enabled")
	}
	if d != nil && en {
		a.StickinessSecs = *d
	}
	users := c.r.targetGroupUsers()
	var others []string
	for _, f := range a.Forward {
		tg, err := c.targetGroup(f.ARN)
		if err != nil {
			return err
		}
		if tg.VpcID != lb.VpcID {
			return errf("InvalidConfigurationRequest", "Target group '%s' is not in the same VPC as load balancer '%s'", tg.ARN, lb.ARN)
		}
		if isHTTP(tg.Protocol) != (lb.Type == "application") {
			return errf("InvalidConfigurationRequest", "The target group '%s' has protocol '%s', which is not supported for a load balancer of type '%s'", tg.ARN, tg.Protocol, lb.Type)
		}
		for _, u := range users[tg.ARN] {
			if u != lb.ARN {
				others = append(others, tg.ARN)
				break
			}
		}
	}
	if len(others) > 0 {
		return errf("TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: %s", strings.Join(others, ", "))
	}
	return nil
}

func renderAction(a Action) []*X {
	kids := []*X{T("Type", a.Type), I("Order", a.Order)}
	switch a.Type {
	case "forward":
		var dur *X
		if a.Stickiness {
			dur = I("DurationSeconds", a.StickinessSecs)
		}
		kids = append(kids, Opt("TargetGroupArn", a.TargetGroupARN), E("ForwardConfig",
			List("TargetGroups", Items("member", a.Forward, func(f WeightedTargetGroup) []*X {
				return []*X{T("TargetGroupArn", f.ARN), I("Weight", f.Weight)}
			})),
			E("TargetGroupStickinessConfig", B("Enabled", a.Stickiness), dur)))
	case "authenticate-oidc", "authenticate-cognito":
		kids = append(kids, renderAuth(a))
	case "fixed-response":
		kids = append(kids, E("FixedResponseConfig", Opt("MessageBody", a.FixedBody), T("StatusCode", a.FixedStatus), Opt("ContentType", a.FixedType)))
	case "redirect":
		rc := E("RedirectConfig")
		for _, k := range []string{"Protocol", "Port", "Host", "Path", "Query", "StatusCode"} {
			rc.Kids = append(rc.Kids, T(k, a.Redirect[k]))
		}
		kids = append(kids, rc)
	}
	return kids
}

func renderActions(name string, actions []Action) *X {
	return List(name, Items("member", actions, renderAction))
}

// conditionConfigs names each condition field's config structure; the
// first two also accept the older Values list.
var conditionConfigs = map[string]string{
	"path-pattern":        "PathPatternConfig",
	"host-header":         "HostHeaderConfig",
	"http-header":         "HttpHeaderConfig",
	"http-request-method": "HttpRequestMethodConfig",
	"query-string":        "QueryStringConfig",
	"source-ip":           "SourceIpConfig",
}

func legacyValues(field string) bool { return field == "path-pattern" || field == "host-header" }

func parseConditions(p Params) ([]RuleCondition, *APIError) {
	var out []RuleCondition
	seen := map[string]bool{}
	for _, s := range p.MemberStructs("Conditions") {
		rc := RuleCondition{Field: s.Get("Field")}
		cfgName, ok := conditionConfigs[rc.Field]
		if !ok {
			return nil, verr("Condition field '%s' must be one of '[http-header, http-request-method, host-header, path-pattern, query-string, source-ip]'", rc.Field)
		}
		if seen[rc.Field] && rc.Field != "http-header" && rc.Field != "query-string" {
			return nil, verr("A rule can only have one '%s' condition", rc.Field)
		}
		seen[rc.Field] = true
		values, cfg := s.Members("Values"), s.Sub(cfgName)
		hasCfg := s.HasSub(cfgName)
		if len(values) > 0 && !legacyValues(rc.Field) {
			return nil, verr("Values cannot be specified for the '%s' condition; use '%s'", rc.Field, cfgName)
		}
		if len(values) > 0 && hasCfg {
			return nil, verr("You cannot specify both 'Values' and '%s' for a condition", cfgName)
		}
		switch rc.Field {
		case "query-string":
			for _, kv := range cfg.MemberStructs("Values") {
				if kv.Get("Value") == "" {
					return nil, verr("A query string condition value must be specified")
				}
				rc.QueryPairs = append(rc.QueryPairs, [2]string{kv.Get("Key"), kv.Get("Value")})
			}
		case "http-header":
			rc.HeaderName = cfg.Get("HttpHeaderName")
			if rc.HeaderName == "" {
				return nil, verr("An HTTP header name must be specified for the 'http-header' condition")
			}
			rc.Values = cfg.Members("Values")
		default:
			rc.Values = values
			if hasCfg {
				rc.Values = cfg.Members("Values")
			}
		}
		if len(rc.Values) == 0 && len(rc.QueryPairs) == 0 {
			return nil, verr("A condition value must be specified for the '%s' condition", rc.Field)
		}
		for _, v := range rc.Values {
			if len(v) > 128 {
				return nil, verr("Condition value '%s' cannot be longer than 128 characters", v)
			}
		}
		out = append(out, rc)
	}
	if len(out) == 0 {
		return nil, verr("At least one condition must be specified")
	}
	return out, nil
}

func renderCondition(rc RuleCondition) []*X {
	kids := []*X{T("Field", rc.Field)}
	vals := List("Values", Strings("member", rc.Values))
	if legacyValues(rc.Field) {
		kids = append(kids, vals)
	}
	cfg := E(conditionConfigs[rc.Field])
	switch rc.Field {
	case "http-header":
		cfg.Kids = append(cfg.Kids, T("HttpHeaderName", rc.HeaderName), vals)
	case "query-string":
		cfg.Kids = append(cfg.Kids, List("Values", Items("member", rc.QueryPairs, func(kv [2]string) []*X {
			return []*X{Opt("Key", kv[0]), T("Value", kv[1])}
		})))
	default:
		cfg.Kids = append(cfg.Kids, vals)
	}
	return append(kids, cfg)
}

// ---- Listeners ----

var listenerProtocols = map[string][]string{
	"application": {"HTTP", "HTTPS"},
	"network":     {"TCP", "TLS", "UDP", "TCP_UDP"},
}

// parseListenerProtoPort reads Protocol and Port, defaulting to old's.
func parseListenerProtoPort(p Params, lb *LoadBalancer, protocol string, port int) (string, int, *APIError) {
	if v := p.Get("Protocol"); v != "" {
		protocol = v
	}
	if protocol == "" {
		return "", 0, verr("A listener protocol must be specified")
	}
	if !contains(listenerProtocols[lb.Type], protocol) {
		return "", 0, errf("UnsupportedProtocol", "Protocol '%s' is not supported for load balancers of type '%s'", protocol, lb.Type)
	}
	if p.Get("Protocol") != "" && (protocol == "HTTPS" || protocol == "TLS") && len(p.MemberStructs("Certificates")) == 0 {
		return "", 0, verr("A certificate must be specified for %s listeners", protocol)
	}
	n, err := intIn(p, "Port", "port", 1, 65535)
	if err != nil {
		return "", 0, err
	}
	if n != nil {
		port = *n
	}
	if port == 0 {
		return "", 0, verr("A listener port must be specified")
	}
	return protocol, port, nil
}

func elbCreateListener(c *call) (any, *APIError) {
	lb, err := c.loadBalancer(c.p.Get("LoadBalancerArn"))
	if err != nil {
		return nil, err
	}
	protocol, port, err := parseListenerProtoPort(c.p, lb, "", 0)
	if err != nil {
		return nil, err
	}
	actions, err := c.parseActions("DefaultActions", lb)
	if err != nil {
		return nil, err
	}
	if err := finishAuth(actions, protocol, nil, false); err != nil {
		return nil, err
	}
	tags, err := parseELBTags(c.p)
	if err != nil {
		return nil, err
	}
	for _, l := range c.r.Listeners {
		if l.LoadBalancerARN == lb.ARN && l.Port == port {
			if l.Protocol == protocol && reflect.DeepEqual(l.DefaultActions, actions) {
				return []*X{List("Listeners", []*X{renderListener(l)})}, nil
			}
			return nil, errf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lb.ARN)
		}
	}
	now := c.w.now()
	lbID := strings.SplitN(lb.ARN, ":loadbalancer/", 2)[1]
	l := &Listener{
		ARN: c.r.arn(elbSvc, "listener/"+lbID+"/"+randHex(16)), LoadBalancerARN: lb.ARN,
		Port: port, Protocol: protocol, DefaultActions: actions, Tags: tags, Created: now,
	}
	c.r.Listeners[l.ARN] = l
	def := &Rule{
		ARN:         c.r.arn(elbSvc, "listener-rule/"+strings.SplitN(l.ARN, ":listener/", 2)[1]+"/"+randHex(16)),
		ListenerARN: l.ARN, Priority: "default", Actions: actions, Tags: Tags{}, Created: now,
	}
	c.r.Rules[def.ARN] = def
	return []*X{List("Listeners", []*X{renderListener(l)})}, nil
}

func renderListener(l *Listener) *X {
	return E("member", T("ListenerArn", l.ARN), T("LoadBalancerArn", l.LoadBalancerARN), I("Port", l.Port),
		T("Protocol", l.Protocol), renderActions("DefaultActions", l.DefaultActions))
}

func elbDescribeListeners(c *call) (any, *APIError) {
	arns, lbARN := c.p.Members("ListenerArns"), c.p.Get("LoadBalancerArn")
	if (len(arns) == 0) == (lbARN == "") {
		return nil, verr("You must specify either listener ARNs or a load balancer ARN")
	}
	var ls []*Listener
	if lbARN != "" {
		if _, err := c.loadBalancer(lbARN); err != nil {
			return nil, err
		}
		for _, l := range c.r.Listeners {
			if l.LoadBalancerARN == lbARN && !c.hidden(l.Created) {
				ls = append(ls, l)
			}
		}
		sortByCreated(ls, func(l *Listener) time.Time { return l.Created }, func(l *Listener) string { return l.ARN })
	}
	for _, a := range arns {
		l, err := c.listener(a)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	pg, next, err := elbPage(c, ls)
	if err != nil {
		return nil, err
	}
	items := make([]*X, 0, len(pg))
	for _, l := range pg {
		items = append(items, renderListener(l))
	}
	return []*X{List("Listeners", items), next}, nil
}

// defaultRule returns a listener's default rule.
func (r *Region) defaultRule(l *Listener) *Rule {
	for _, rule := range r.Rules {
		if rule.ListenerARN == l.ARN && rule.Priority == "default" {
			return rule
		}
	}
	return nil
}

func elbModifyListener(c *call) (any, *APIError) {
	l, err := c.listener(c.p.Get("ListenerArn"))
	if err != nil {
		return nil, err
	}
	lb := c.r.LoadBalancers[l.LoadBalancerARN]
	protocol, port, err := parseListenerProtoPort(c.p, lb, l.Protocol, l.Port)
	if err != nil {
		return nil, err
	}
	actions := l.DefaultActions
	if c.p.HasSub("DefaultActions") {
		if actions, err = c.parseActions("DefaultActions", lb); err != nil {
			return nil, err
		}
	}
	if err := finishAuth(actions, protocol, l.DefaultActions, true); err != nil {
		return nil, err
	}
	for _, rule := range c.r.Rules {
		if rule.ListenerARN == l.ARN && rule.Priority != "default" {
			if err := finishAuth(rule.Actions, protocol, rule.Actions, true); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range c.r.Listeners {
		if o != l && o.LoadBalancerARN == lb.ARN && o.Port == port {
			return nil, errf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", lb.ARN)
		}
	}
	l.Protocol, l.Port, l.DefaultActions = protocol, port, actions
	if def := c.r.defaultRule(l); def != nil {
		c.r.setRuleActions(def, actions)
	}
	return []*X{List("Listeners", []*X{renderListener(l)})}, nil
}

// deleteListener removes a listener and its rules.
func (r *Region) deleteListener(l *Listener) {
	for arn, rule := range r.Rules {
		if rule.ListenerARN == l.ARN {
			delete(r.Rules, arn)
		}
	}
	delete(r.Listeners, l.ARN)
}

func elbDeleteListener(c *call) (any, *APIError) {
	l, err := c.listener(c.p.Get("ListenerArn"))
	if err != nil {
		return nil, err
	}
	c.r.deleteListener(l)
	return nil, nil
}

// ---- Rules ----

func rulePriority(rule *Rule) int {
	if rule.Priority == "default" {
		return 1 << 30
	}
	n, _ := strconv.Atoi(rule.Priority)
	return n
}

// priorityInUse reports whether another rule of the listener has priority.
func (r *Region) priorityInUse(listenerARN string, priority int, except map[string]bool) bool {
	for _, rule := range r.Rules {
		if rule.ListenerARN == listenerARN && !except[rule.ARN] && rule.Priority == strconv.Itoa(priority) {
			return true
		}
	}
	return false
}

func renderRule(rule *Rule) *X {
	return E("member", T("RuleArn", rule.ARN), T("Priority", rule.Priority),
		List("Conditions", Items("member", rule.Conditions, renderCondition)),
		renderActions("Actions", rule.Actions), B("IsDefault", rule.Priority == "default"))
}

func parsePriority(p Params, key string) (int, *APIError) {
	n, err := intIn(p, key, "priority", 1, 50000)
	if err != nil {
		return 0, err
	}
	if n == nil {
		return 0, verr("A rule priority must be specified")
	}
	return *n, nil
}

func elbCreateRule(c *call) (any, *APIError) {
	l, err := c.listener(c.p.Get("ListenerArn"))
	if err != nil {
		return nil, err
	}
	lb := c.r.LoadBalancers[l.LoadBalancerARN]
	if lb.Type == "network" {
		return nil, errf("InvalidConfigurationRequest", "Rules are not supported for listeners of load balancers of type 'network'")
	}
	priority, err := parsePriority(c.p, "Priority")
	if err != nil {
		return nil, err
	}
	conds, err := parseConditions(c.p)
	if err != nil {
		return nil, err
	}
	actions, err := c.parseActions("Actions", lb)
	if err != nil {
		return nil, err
	}
	if err := finishAuth(actions, l.Protocol, nil, false); err != nil {
		return nil, err
	}
	tags, err := parseELBTags(c.p)
	if err != nil {
		return nil, err
	}
	if c.r.priorityInUse(l.ARN, priority, nil) {
		return nil, errf("PriorityInUse", "Priority '%d' is currently in use", priority)
	}
	n := 0
	for _, o := range c.r.Rules {
		if o.ListenerARN == l.ARN && o.Priority != "default" {
			n++
		}
	}
	if n >= 100 {
		return nil, errf("TooManyRules", "You've reached the limit on the number of rules per load balancer")
	}
	rule := &Rule{
		ARN:         c.r.arn(elbSvc, "listener-rule/"+strings.SplitN(l.ARN, ":listener/", 2)[1]+"/"+randHex(16)),
		ListenerARN: l.ARN, Priority: strconv.Itoa(priority), Conditions: conds, Actions: actions, Tags: tags,
		Created: c.w.now(),
	}
	c.r.Rules[rule.ARN] = rule
	return []*X{List("Rules", []*X{renderRule(rule)})}, nil
}

func elbDescribeRules(c *call) (any, *APIError) {
	arns, lARN := c.p.Members("RuleArns"), c.p.Get("ListenerArn")
	if (len(arns) == 0) == (lARN == "") {
		return nil, verr("You must specify either listener rule ARNs or a listener ARN")
	}
	var rules []*Rule
	if lARN != "" {
		if _, err := c.listener(lARN); err != nil {
			return nil, err
		}
		for _, rule := range c.r.Rules {
			if rule.ListenerARN == lARN && !c.hidden(rule.Created) {
				rules = append(rules, rule)
			}
		}
		sort.Slice(rules, func(i, j int) bool { return rulePriority(rules[i]) < rulePriority(rules[j]) })
	}
	for _, a := range arns {
		rule, err := c.rule(a)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule)
	}
	pg, next, err := elbPage(c, rules)
	if err != nil {
		return nil, err
	}
	return []*X{List("Rules", Items("member", pg, func(r *Rule) []*X { return renderRule(r).Kids })), next}, nil
}

func elbModifyRule(c *call) (any, *APIError) {
	rule, err := c.rule(c.p.Get("RuleArn"))
	if err != nil {
		return nil, err
	}
	l := c.r.Listeners[rule.ListenerARN]
	lb := c.r.LoadBalancers[l.LoadBalancerARN]
	conds, actions := rule.Conditions, rule.Actions
	if c.p.HasSub("Conditions") {
		if rule.Priority == "default" {
			return nil, errf("OperationNotPermitted", "Conditions cannot be specified for the default rule '%s'", rule.ARN)
		}
		if conds, err = parseConditions(c.p); err != nil {
			return nil, err
		}
	}
	if c.p.HasSub("Actions") {
		if actions, err = c.parseActions("Actions", lb); err != nil {
			return nil, err
		}
		if err := finishAuth(actions, l.Protocol, rule.Actions, true); err != nil {
			return nil, err
		}
	}
	rule.Conditions = conds
	c.r.setRuleActions(rule, actions)
	if rule.Priority == "default" {
		l.DefaultActions = actions
	}
	return []*X{List("Rules", []*X{renderRule(rule)})}, nil
}

func elbSetRulePriorities(c *call) (any, *APIError) {
	items := c.p.MemberStructs("RulePriorities")
	if len(items) == 0 {
		return nil, verr("At least one rule priority must be specified")
	}
	type change struct {
		rule     *Rule
		priority int
	}
	var changes []change
	moving := map[string]bool{}
	for _, s := range items {
		rule, err := c.rule(s.Get("RuleArn"))
		if err != nil {
			return nil, err
		}
		if rule.Priority == "default" {
			return nil, errf("OperationNotPermitted", "Default rule '%s' cannot have its priority changed", rule.ARN)
		}
		n, err := parsePriority(s, "Priority")
		if err != nil {
			return nil, err
		}
		changes = append(changes, change{rule, n})
		moving[rule.ARN] = true
	}
	for i, ch := range changes {
		for _, o := range changes[:i] {
			if o.rule.ListenerARN == ch.rule.ListenerARN && o.priority == ch.priority {
				return nil, errf("PriorityInUse", "Priority '%d' is currently in use", ch.priority)
			}
		}
		if c.r.priorityInUse(ch.rule.ListenerARN, ch.priority, moving) {
			return nil, errf("PriorityInUse", "Priority '%d' is currently in use", ch.priority)
		}
	}
	var out []*X
	for _, ch := range changes {
		ch.rule.Priority = strconv.Itoa(ch.priority)
		out = append(out, renderRule(ch.rule))
	}
	return []*X{List("Rules", out)}, nil
}

func elbDeleteRule(c *call) (any, *APIError) {
	rule, err := c.rule(c.p.Get("RuleArn"))
	if err != nil {
		return nil, err
	}
	if rule.Priority == "default" {
		return nil, errf("OperationNotPermitted", "Default rule '%s' cannot be deleted", rule.ARN)
	}
	delete(c.r.Rules, rule.ARN)
	return nil, nil
}

// ---- Tags ----

// elbTags finds the tags of any ELBv2 resource by ARN.
func (c *call) elbTags(arn string) (*Tags, *APIError) {
	res := ""
	if i := strings.Index(arn, ":"+c.r.Account+":"); i >= 0 && strings.HasPrefix(arn, "arn:aws:elasticloadbalancing:") {
		res = arn[i+len(c.r.Account)+2:]
	}
	switch {
	case strings.HasPrefix(res, "loadbalancer/"):
		lb, err := c.loadBalancer(arn)
		if err != nil {
			return nil, err
		}
		return &lb.Tags, nil
	case strings.HasPrefix(res, "targetgroup/"):
		tg, err := c.targetGroup(arn)
		if err != nil {
			return nil, err
		}
		return &tg.Tags, nil
	case strings.HasPrefix(res, "listener/"):
		l, err := c.listener(arn)
		if err != nil {
			return nil, err
		}
		return &l.Tags, nil
	case strings.HasPrefix(res, "listener-rule/"):
		r, err := c.rule(arn)
		if err != nil {
			return nil, err
		}
		return &r.Tags, nil
	}
	return nil, verr("'%s' is not a valid ELB resource ARN", arn)
}

// taggedResources resolves ResourceArns.member.N.
func (c *call) taggedResources(max int) ([]string, []*Tags, *APIError) {
	arns := c.p.Members("ResourceArns")
	if len(arns) == 0 {
		return nil, nil, verr("At least one resource ARN must be specified")
	}
	if len(arns) > max {
		return nil, nil, constraintErr("resourceArns", len(arns), 1, max)
	}
	var out []*Tags
	for _, a := range arns {
		t, err := c.elbTags(a)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, t)
	}
	return arns, out, nil
}

func elbAddTags(c *call) (any, *APIError) {
	_, targets, err := c.taggedResources(20)
	if err != nil {
		return nil, err
	}
	tags, err := parseELBTags(c.p)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, verr("At least one tag must be specified")
	}
	for _, t := range targets {
		n := len(*t)
		for k := range tags {
			if _, ok := (*t)[k]; !ok {
				n++
			}
		}
		if n > 50 {
			return nil, errf("TooManyTags", "You've reached the limit on the number of tags for this resource")
		}
	}
	for _, t := range targets {
		if *t == nil {
			*t = Tags{}
		}
		for k, v := range tags {
			(*t)[k] = v
		}
	}
	return nil, nil
}

func elbRemoveTags(c *call) (any, *APIError) {
	_, targets, err := c.taggedResources(20)
	if err != nil {
		return nil, err
	}
	keys := c.p.Members("TagKeys")
	if len(keys) == 0 {
		return nil, verr("At least one tag key must be specified")
	}
	for _, t := range targets {
		for _, k := range keys {
			delete(*t, k)
		}
	}
	return nil, nil
}

func elbDescribeTags(c *call) (any, *APIError) {
	arns, targets, err := c.taggedResources(20)
	if err != nil {
		return nil, err
	}
	var items []*X
	for i, a := range arns {
		tags := *targets[i]
		items = append(items, E("member", T("ResourceArn", a), List("Tags", Items("member", tags.Keys(), func(k string) []*X {
			return []*X{T("Key", k), T("Value", tags[k])}
		}))))
	}
	return []*X{List("TagDescriptions", items)}, nil
}

// byNames finds each named resource among all, skipping those an
// invisible fault hides, and names every missing one in AWS's
// "'[a, b]' not found" form.
func byNames[T any](c *call, names []string, all map[string]T, key func(T) (string, time.Time), code, what string) ([]T, *APIError) {
	var out []T
	var missing []string
	for _, n := range names {
		found := false
		for _, v := range all {
			if name, created := key(v); name == n && !c.hidden(created) {
				out, found = append(out, v), true
				break
			}
		}
		if !found {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, errf(code, "%s '[%s]' not found", what, strings.Join(missing, ", "))
	}
	return out, nil
}
