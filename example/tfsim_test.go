package example

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// A small stand-in for Terraform, enough to hold phoenix to what a
// `terraform plan` would say about the resources in example/terraform/:
// it reads the module's .tf files with hcl/v2, evaluates each resource's
// arguments (variables, references to other resources, base64encode and
// templatefile), creates the resources in the sandbox through the AWS SDK
// with those values, and reads them back the way the AWS provider's Read
// functions do, so that plan can compare what the configuration says with
// what is there. Each read follows the provider
// (hashicorp/terraform-provider-aws): resourceLaunchTemplateRead in
// internal/service/ec2/ec2_launch_template.go reads the template's
// latest version, not its default one, and its description;
// resourceGroupRead in internal/service/autoscaling/group.go reads the
// group's capacities, launch template reference, health check settings,
// target groups and every tag; resourceParameterRead in
// internal/service/ssm/parameter.go reads a parameter's value, type and
// version (GetParameter) and its data type, description, allowed pattern,
// key and tier (DescribeParameters).

// tfModule is a Terraform root module.
type tfModule struct {
	dir       string
	vars      map[string]cty.Value
	resources []*tfResource // in dependency order
}

// tfResource is one resource block.
type tfResource struct {
	Type, Name string
	block      *hclsyntax.Block
	deps       []string
	// Ignore is lifecycle.ignore_changes, as flat keys (image_id,
	// launch_template.0.version).
	Ignore []string
	// Config is the evaluated arguments, flattened (see flattenValue); set by
	// apply.
	Config map[string]string
	// Out is what other resources may refer to (id, arn, name, …).
	Out map[string]cty.Value
}

func (r *tfResource) addr() string { return r.Type + "." + r.Name }

// tfKeyed names, for repeatable blocks that the provider keeps in a set,
// the argument that identifies each one; other blocks are numbered.
var tfKeyed = map[string]string{"tag": "key", "target_group": "arn"}

// loadModule parses every .tf file of dir, takes the variables' defaults
// with vars over them, and orders the resources so that each comes after
// those it refers to.
func loadModule(t *testing.T, dir string, vars map[string]cty.Value) *tfModule {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s: %v", dir, err)
	}
	sort.Strings(files)
	m := &tfModule{dir: dir, vars: map[string]cty.Value{}}
	p := hclparse.NewParser()
	var all []*tfResource
	for _, file := range files {
		f, diags := p.ParseHCLFile(file)
		if diags.HasErrors() {
			t.Fatalf("parsing %s: %s", file, diags.Error())
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "variable":
				if d, ok := b.Body.Attributes["default"]; ok {
					v, diags := d.Expr.Value(nil)
					if diags.HasErrors() {
						t.Fatalf("%s: variable %q: %s", file, b.Labels[0], diags.Error())
					}
					m.vars[b.Labels[0]] = v
				}
			case "resource":
				r := &tfResource{Type: b.Labels[0], Name: b.Labels[1], block: b}
				r.deps = references(b.Body)
				r.Ignore = ignoreChanges(t, b)
				all = append(all, r)
			case "terraform", "provider", "output", "data", "locals", "module":
			default:
				t.Fatalf("%s: unexpected block %q", file, b.Type)
			}
		}
	}
	for k, v := range vars {
		m.vars[k] = v
	}
	done := map[string]bool{}
	for len(m.resources) < len(all) {
		progress := false
		for _, r := range all {
			if done[r.addr()] {
				continue
			}
			ready := true
			for _, d := range r.deps {
				ready = ready && done[d]
			}
			if ready {
				m.resources, done[r.addr()], progress = append(m.resources, r), true, true
			}
		}
		if !progress {
			t.Fatalf("%s: the resources refer to each other in a cycle", dir)
		}
	}
	return m
}

// references are the resources (type.name) that body's expressions refer to.
func references(body *hclsyntax.Body) []string {
	seen := map[string]bool{}
	var out []string
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		e, ok := n.(hclsyntax.Expression)
		if !ok {
			return nil
		}
		for _, tr := range e.Variables() {
			if len(tr) < 2 || !strings.HasPrefix(tr.RootName(), "aws_") {
				continue
			}
			if a, ok := tr[1].(hcl.TraverseAttr); ok && !seen[tr.RootName()+"."+a.Name] {
				seen[tr.RootName()+"."+a.Name] = true
				out = append(out, tr.RootName()+"."+a.Name)
			}
		}
		return nil
	})
	return out
}

// ignoreChanges reads lifecycle { ignore_changes = [...] } as flat keys.
func ignoreChanges(t *testing.T, b *hclsyntax.Block) []string {
	t.Helper()
	var out []string
	for _, lb := range b.Body.Blocks {
		if lb.Type != "lifecycle" {
			continue
		}
		a, ok := lb.Body.Attributes["ignore_changes"]
		if !ok {
			continue
		}
		exprs, diags := hcl.ExprList(a.Expr)
		if diags.HasErrors() {
			t.Fatalf("%s.%s: ignore_changes: %s", b.Labels[0], b.Labels[1], diags.Error())
		}
		for _, e := range exprs {
			tr, diags := hcl.RelTraversalForExpr(e)
			if diags.HasErrors() {
				t.Fatalf("%s.%s: ignore_changes: %s", b.Labels[0], b.Labels[1], diags.Error())
			}
			var parts []string
			for _, step := range tr {
				switch s := step.(type) {
				case hcl.TraverseAttr:
					parts = append(parts, s.Name)
				case hcl.TraverseIndex:
					parts = append(parts, s.Key.AsBigFloat().Text('f', -1))
				}
			}
			out = append(out, strings.Join(parts, "."))
		}
	}
	return out
}

// evalContext has the variables, path.module, the resources made so far
// and the functions the module uses.
func (m *tfModule) evalContext() *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":  cty.ObjectVal(m.vars),
		"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.dir)}),
	}
	byType := map[string]map[string]cty.Value{}
	for _, r := range m.resources {
		if r.Out == nil {
			continue
		}
		if byType[r.Type] == nil {
			byType[r.Type] = map[string]cty.Value{}
		}
		byType[r.Type][r.Name] = cty.ObjectVal(r.Out)
	}
	for typ, rs := range byType {
		vars[typ] = cty.ObjectVal(rs)
	}
	return &hcl.EvalContext{Variables: vars, Functions: map[string]function.Function{
		"base64encode": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "str", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(args[0].AsString()))), nil
			},
		}),
		"templatefile": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				src, err := os.ReadFile(args[0].AsString())
				if err != nil {
					return cty.NilVal, err
				}
				tmpl, diags := hclsyntax.ParseTemplate(src, args[0].AsString(), hcl.InitialPos)
				if diags.HasErrors() {
					return cty.NilVal, diags
				}
				v, diags := tmpl.Value(&hcl.EvalContext{Variables: args[1].AsValueMap()})
				if diags.HasErrors() {
					return cty.NilVal, diags
				}
				return v, nil
			},
		}),
	}}
}

// evaluate flattens r's arguments and nested blocks (lifecycle aside)
// with the module's values.
func (m *tfModule) evaluate(t *testing.T, r *tfResource) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string, body *hclsyntax.Body)
	walk = func(prefix string, body *hclsyntax.Body) {
		for name, a := range body.Attributes {
			v, diags := a.Expr.Value(m.evalContext())
			if diags.HasErrors() {
				t.Fatalf("%s: %s", r.addr(), diags.Error())
			}
			flattenValue(out, prefix+name, v)
		}
		count := map[string]int{}
		for _, b := range body.Blocks {
			if b.Type == "lifecycle" {
				continue
			}
			key := strconv.Itoa(count[b.Type])
			count[b.Type]++
			if id, ok := tfKeyed[b.Type]; ok {
				a, ok := b.Body.Attributes[id]
				if !ok {
					t.Fatalf("%s: a %s block without %s", r.addr(), b.Type, id)
				}
				v, diags := a.Expr.Value(m.evalContext())
				if diags.HasErrors() {
					t.Fatalf("%s: %s", r.addr(), diags.Error())
				}
				key = v.AsString()
			}
			walk(prefix+b.Type+"."+key+".", b.Body)
		}
	}
	walk("", r.block.Body)
	return out
}

// flattenValue writes v under key: primitives as text, lists and sets of
// primitives sorted and joined with commas (every list argument in the
// module is a set in the provider's schema), maps and objects key by key.
func flattenValue(out map[string]string, key string, v cty.Value) {
	switch {
	case v.IsNull():
	case v.Type() == cty.String:
		out[key] = v.AsString()
	case v.Type() == cty.Number:
		out[key] = v.AsBigFloat().Text('f', -1)
	case v.Type() == cty.Bool:
		out[key] = strconv.FormatBool(v.True())
	case v.Type().IsListType() || v.Type().IsSetType() || v.Type().IsTupleType():
		var items []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			one := map[string]string{}
			flattenValue(one, "x", e)
			items = append(items, one["x"])
		}
		sort.Strings(items)
		out[key] = strings.Join(items, ",")
	case v.Type().IsMapType() || v.Type().IsObjectType():
		for k, e := range v.AsValueMap() {
			flattenValue(out, key+"."+k, e)
		}
	}
}

// tfType is how the stand-in applies, reads and destroys one resource
// type, and which of the type's keys matter to plan beyond those the
// configuration sets.
type tfType struct {
	create  func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error)
	read    func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, c tfConfig) (map[string]string, error)
	destroy func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error
	// update applies a changed configuration; nil for types the scenarios
	// never change.
	update func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, planned tfConfig) error
	// optional are prefixes of keys the provider reads that are optional
	// and not computed: a value there that the configuration does not set
	// is a diff (Terraform plans to remove it).
	optional []string
	// unread are arguments that live only in the state (the provider never
	// reads them from AWS), so they never diff.
	unread []string
}

// tfConfig is a resource's flattened arguments.
type tfConfig map[string]string

func (c tfConfig) int32(k string) *int32 {
	v, ok := c[k]
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("%s = %q is not a number", k, v))
	}
	return aws.Int32(int32(n))
}

func (c tfConfig) str(k string) *string {
	if v, ok := c[k]; ok {
		return aws.String(v)
	}
	return nil
}

func (c tfConfig) list(k string) []string {
	if c[k] == "" {
		return nil
	}
	return strings.Split(c[k], ",")
}

// sub is the part of c under prefix ("health_check.0."), prefix removed.
func (c tfConfig) sub(prefix string) tfConfig {
	out := tfConfig{}
	for k, v := range c {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v
		}
	}
	return out
}

// blocks are the keys of c's blocks of one type ("0", "1", or their
// identifying argument), sorted.
func (c tfConfig) blocks(typ string) []string {
	seen := map[string]bool{}
	var out []string
	for k := range c {
		if rest, ok := strings.CutPrefix(k, typ+"."); ok {
			if key, _, ok := strings.Cut(rest, "."); ok && !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
		}
	}
	sort.Strings(out)
	return out
}

func sorted(v []string) string {
	v = append([]string(nil), v...)
	sort.Strings(v)
	return strings.Join(v, ",")
}

func itoa(n *int32) string { return strconv.Itoa(int(aws.ToInt32(n))) }

// tfTypes are the resource types the stand-in knows, each following the
// AWS provider's Create and Read.
var tfTypes = map[string]tfType{
	"aws_security_group": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			out, err := f.Clients.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: c.str("name"), Description: c.str("description"), VpcId: c.str("vpc_id")})
			if err != nil {
				return nil, err
			}
			id := aws.ToString(out.GroupId)
			// The provider revokes the egress rule AWS gives a new group
			// (everything to anywhere): only the configured rules remain.
			_, err = f.Clients.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id),
				IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
			return map[string]cty.Value{"id": cty.StringVal(id), "name": cty.StringVal(aws.ToString(c.str("name")))}, err
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			d, err := f.Clients.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{out["id"].AsString()}})
			if err != nil || len(d.SecurityGroups) != 1 {
				return nil, fmt.Errorf("security group %s: %v", out["id"].AsString(), err)
			}
			sg := d.SecurityGroups[0]
			return map[string]string{"name": aws.ToString(sg.GroupName), "description": aws.ToString(sg.Description), "vpc_id": aws.ToString(sg.VpcId)}, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			// Instances and load balancers let go of a group only once
			// they are gone; the provider retries DependencyViolation too.
			var err error
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if _, err = f.Clients.EC2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(out["id"].AsString())}); err == nil {
					return nil
				}
			}
			return err
		},
	},
	"aws_vpc_security_group_ingress_rule": sgRule(true),
	"aws_vpc_security_group_egress_rule":  sgRule(false),
	"aws_lb": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			scheme := elbtypes.LoadBalancerSchemeEnumInternetFacing
			if c["internal"] == "true" {
				scheme = elbtypes.LoadBalancerSchemeEnumInternal
			}
			out, err := f.Clients.ELB.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: c.str("name"), Type: elbtypes.LoadBalancerTypeEnum(c["load_balancer_type"]),
				Scheme: scheme, SecurityGroups: c.list("security_groups"), Subnets: c.list("subnets")})
			if err != nil {
				return nil, err
			}
			lb := out.LoadBalancers[0]
			arn := aws.ToString(lb.LoadBalancerArn)
			return map[string]cty.Value{"id": cty.StringVal(arn), "arn": cty.StringVal(arn), "name": cty.StringVal(aws.ToString(lb.LoadBalancerName)), "dns_name": cty.StringVal(aws.ToString(lb.DNSName))}, nil
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			d, err := f.Clients.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{out["arn"].AsString()}})
			if err != nil || len(d.LoadBalancers) != 1 {
				return nil, fmt.Errorf("load balancer %s: %v", out["arn"].AsString(), err)
			}
			lb := d.LoadBalancers[0]
			var subnets []string
			for _, az := range lb.AvailabilityZones {
				subnets = append(subnets, aws.ToString(az.SubnetId))
			}
			return map[string]string{"name": aws.ToString(lb.LoadBalancerName), "load_balancer_type": string(lb.Type),
				"internal":        strconv.FormatBool(lb.Scheme == elbtypes.LoadBalancerSchemeEnumInternal),
				"security_groups": sorted(lb.SecurityGroups), "subnets": sorted(subnets)}, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.ELB.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(out["arn"].AsString())})
			return err
		},
	},
	"aws_lb_target_group": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			hc := c.sub("health_check.0.")
			in := &elb.CreateTargetGroupInput{Name: c.str("name"), Port: c.int32("port"), Protocol: elbtypes.ProtocolEnum(c["protocol"]), VpcId: c.str("vpc_id"),
				HealthCheckPath: hc.str("path"), HealthCheckIntervalSeconds: hc.int32("interval"), HealthCheckTimeoutSeconds: hc.int32("timeout"),
				HealthyThresholdCount: hc.int32("healthy_threshold"), UnhealthyThresholdCount: hc.int32("unhealthy_threshold")}
			if m := hc.str("matcher"); m != nil {
				in.Matcher = &elbtypes.Matcher{HttpCode: m}
			}
			out, err := f.Clients.ELB.CreateTargetGroup(ctx, in)
			if err != nil {
				return nil, err
			}
			arn := aws.ToString(out.TargetGroups[0].TargetGroupArn)
			if d, ok := c["deregistration_delay"]; ok {
				_, err = f.Clients.ELB.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
					Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(d)}}})
			}
			return map[string]cty.Value{"id": cty.StringVal(arn), "arn": cty.StringVal(arn), "name": cty.StringVal(c["name"])}, err
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			arn := out["arn"].AsString()
			d, err := f.Clients.ELB.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
			if err != nil || len(d.TargetGroups) != 1 {
				return nil, fmt.Errorf("target group %s: %v", arn, err)
			}
			tg := d.TargetGroups[0]
			s := map[string]string{"name": aws.ToString(tg.TargetGroupName), "port": itoa(tg.Port), "protocol": string(tg.Protocol), "vpc_id": aws.ToString(tg.VpcId),
				"health_check.0.path": aws.ToString(tg.HealthCheckPath), "health_check.0.interval": itoa(tg.HealthCheckIntervalSeconds),
				"health_check.0.timeout": itoa(tg.HealthCheckTimeoutSeconds), "health_check.0.healthy_threshold": itoa(tg.HealthyThresholdCount),
				"health_check.0.unhealthy_threshold": itoa(tg.UnhealthyThresholdCount)}
			if tg.Matcher != nil {
				s["health_check.0.matcher"] = aws.ToString(tg.Matcher.HttpCode)
			}
			attrs, err := f.Clients.ELB.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
			if err != nil {
				return nil, err
			}
			for _, a := range attrs.Attributes {
				if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
					s["deregistration_delay"] = aws.ToString(a.Value)
				}
			}
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.ELB.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(out["arn"].AsString())})
			return err
		},
	},
	"aws_lb_listener": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			out, err := f.Clients.ELB.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: c.str("load_balancer_arn"), Port: c.int32("port"),
				Protocol: elbtypes.ProtocolEnum(c["protocol"]), DefaultActions: actions(c, "default_action")})
			if err != nil {
				return nil, err
			}
			arn := aws.ToString(out.Listeners[0].ListenerArn)
			return map[string]cty.Value{"id": cty.StringVal(arn), "arn": cty.StringVal(arn)}, nil
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, c tfConfig) (map[string]string, error) {
			d, err := f.Clients.ELB.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{out["arn"].AsString()}})
			if err != nil || len(d.Listeners) != 1 {
				return nil, fmt.Errorf("listener %s: %v", out["arn"].AsString(), err)
			}
			l := d.Listeners[0]
			s := map[string]string{"load_balancer_arn": aws.ToString(l.LoadBalancerArn), "port": itoa(l.Port), "protocol": string(l.Protocol)}
			readActions(s, "default_action", l.DefaultActions, c)
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.ELB.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: aws.String(out["arn"].AsString())})
			return err
		},
	},
	"aws_lb_listener_rule": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			var conds []elbtypes.RuleCondition
			for _, k := range c.blocks("condition") {
				if v := c.list("condition." + k + ".path_pattern.0.values"); v != nil {
					conds = append(conds, elbtypes.RuleCondition{Field: aws.String("path-pattern"), PathPatternConfig: &elbtypes.PathPatternConditionConfig{Values: v}})
				}
			}
			out, err := f.Clients.ELB.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: c.str("listener_arn"), Priority: c.int32("priority"), Actions: actions(c, "action"), Conditions: conds})
			if err != nil {
				return nil, err
			}
			arn := aws.ToString(out.Rules[0].RuleArn)
			return map[string]cty.Value{"id": cty.StringVal(arn), "arn": cty.StringVal(arn), "listener_arn": cty.StringVal(c["listener_arn"])}, nil
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, c tfConfig) (map[string]string, error) {
			d, err := f.Clients.ELB.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{out["arn"].AsString()}})
			if err != nil || len(d.Rules) != 1 {
				return nil, fmt.Errorf("listener rule %s: %v", out["arn"].AsString(), err)
			}
			r := d.Rules[0]
			// The provider derives listener_arn from the rule's ARN.
			s := map[string]string{"listener_arn": out["listener_arn"].AsString(), "priority": aws.ToString(r.Priority)}
			readActions(s, "action", r.Actions, c)
			for i, cond := range r.Conditions {
				if p := cond.PathPatternConfig; p != nil {
					s["condition."+strconv.Itoa(i)+".path_pattern.0.values"] = sorted(p.Values)
				}
			}
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.ELB.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: aws.String(out["arn"].AsString())})
			return err
		},
	},
	"aws_launch_template": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			out, err := f.Clients.EC2.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: c.str("name"), VersionDescription: c.str("description"), LaunchTemplateData: launchTemplateData(c)})
			if err != nil {
				return nil, err
			}
			lt := out.LaunchTemplate
			return map[string]cty.Value{"id": cty.StringVal(aws.ToString(lt.LaunchTemplateId)), "name": cty.StringVal(aws.ToString(lt.LaunchTemplateName))}, nil
		},
		// resourceLaunchTemplateUpdate: a new version with every argument
		// as planned (ignored ones as the state has them), made the
		// default version with update_default_version.
		update: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, planned tfConfig) error {
			v, err := f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(out["id"].AsString()),
				VersionDescription: planned.str("description"), LaunchTemplateData: launchTemplateData(planned)})
			if err != nil || planned["update_default_version"] != "true" {
				return err
			}
			_, err = f.Clients.EC2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(out["id"].AsString()),
				DefaultVersion: aws.String(strconv.FormatInt(aws.ToInt64(v.LaunchTemplateVersion.VersionNumber), 10))})
			return err
		},
		// resourceLaunchTemplateRead: the template, then its latest
		// version's data and description.
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			id := out["id"].AsString()
			d, err := f.Clients.EC2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{id}})
			if err != nil || len(d.LaunchTemplates) != 1 {
				return nil, fmt.Errorf("launch template %s: %v", id, err)
			}
			lt := d.LaunchTemplates[0]
			latest := strconv.FormatInt(aws.ToInt64(lt.LatestVersionNumber), 10)
			v, err := f.Clients.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{latest}})
			if err != nil || len(v.LaunchTemplateVersions) != 1 {
				return nil, fmt.Errorf("launch template %s version %s: %v", id, latest, err)
			}
			ltv := v.LaunchTemplateVersions[0]
			data := ltv.LaunchTemplateData
			s := map[string]string{"name": aws.ToString(lt.LaunchTemplateName), "description": aws.ToString(ltv.VersionDescription),
				"latest_version": latest, "default_version": strconv.FormatInt(aws.ToInt64(lt.DefaultVersionNumber), 10),
				"image_id": aws.ToString(data.ImageId), "instance_type": string(data.InstanceType), "user_data": aws.ToString(data.UserData),
				"vpc_security_group_ids": sorted(data.SecurityGroupIds)}
			if md := data.MetadataOptions; md != nil {
				s["metadata_options.0.http_endpoint"], s["metadata_options.0.http_tokens"] = string(md.HttpEndpoint), string(md.HttpTokens)
			}
			for i, ts := range data.TagSpecifications {
				k := "tag_specifications." + strconv.Itoa(i) + "."
				s[k+"resource_type"] = string(ts.ResourceType)
				for _, tag := range ts.Tags {
					s[k+"tags."+aws.ToString(tag.Key)] = aws.ToString(tag.Value)
				}
			}
			for _, tag := range lt.Tags {
				if k := aws.ToString(tag.Key); !strings.HasPrefix(k, "aws:") {
					s["tags."+k] = aws.ToString(tag.Value)
				}
			}
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.EC2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(out["id"].AsString())})
			return err
		},
		optional: []string{"description", "image_id", "user_data", "tags."},
		unread:   []string{"update_default_version"},
	},
	"aws_ssm_parameter": {
		// resourceParameterCreate: PutParameter (not overwriting, with the
		// configured data type), then resourceParameterRead, which for an
		// aws:ec2:image parameter retries GetParameter until SSM has
		// validated the value (up to 2 minutes): only then does a launch
		// template that names the parameter get made.
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			in := &ssm.PutParameterInput{Name: c.str("name"), Type: ssmtypes.ParameterType(c["type"]), Value: c.str("value"), DataType: c.str("data_type"),
				Description: c.str("description"), AllowedPattern: aws.String(c["allowed_pattern"]), Overwrite: aws.Bool(false)}
			if _, err := f.Clients.SSM.PutParameter(ctx, in); err != nil {
				return nil, err
			}
			var p *ssmtypes.Parameter
			for deadline := time.Now().Add(2 * time.Minute); p == nil; time.Sleep(50 * time.Millisecond) {
				out, err := f.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: c.str("name"), WithDecryption: aws.Bool(true)})
				var nf *ssmtypes.ParameterNotFound
				switch {
				case err == nil:
					p = out.Parameter
				case !errors.As(err, &nf) || c["data_type"] != "aws:ec2:image" || time.Now().After(deadline):
					return nil, err
				}
			}
			return map[string]cty.Value{"id": cty.StringVal(aws.ToString(p.Name)), "name": cty.StringVal(aws.ToString(p.Name)), "arn": cty.StringVal(aws.ToString(p.ARN))}, nil
		},
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			name := out["name"].AsString()
			g, err := f.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
			if err != nil {
				return nil, fmt.Errorf("SSM parameter %s: %v", name, err)
			}
			p := g.Parameter
			s := map[string]string{"name": aws.ToString(p.Name), "arn": aws.ToString(p.ARN), "type": string(p.Type), "value": aws.ToString(p.Value),
				"version": strconv.FormatInt(p.Version, 10)}
			d, err := f.Clients.SSM.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []ssmtypes.ParameterStringFilter{{
				Key: aws.String("Name"), Option: aws.String("Equals"), Values: []string{name}}}})
			if err != nil || len(d.Parameters) != 1 {
				return nil, fmt.Errorf("SSM parameter %s metadata: %v", name, err)
			}
			md := d.Parameters[0]
			s["data_type"], s["description"], s["allowed_pattern"] = aws.ToString(md.DataType), aws.ToString(md.Description), aws.ToString(md.AllowedPattern)
			s["key_id"], s["tier"] = aws.ToString(md.KeyId), string(md.Tier)
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			_, err := f.Clients.SSM.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(out["name"].AsString())})
			var nf *ssmtypes.ParameterNotFound
			if errors.As(err, &nf) {
				return nil
			}
			return err
		},
		// arn, data_type, key_id, tier, value and version are computed.
		optional: []string{"description", "allowed_pattern"},
	},
	"aws_autoscaling_group": {
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			in := &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: c.str("name"), MinSize: c.int32("min_size"), MaxSize: c.int32("max_size"),
				DesiredCapacity: c.int32("desired_capacity"), VPCZoneIdentifier: aws.String(strings.Join(c.list("vpc_zone_identifier"), ",")),
				TargetGroupARNs: c.list("target_group_arns"), HealthCheckType: c.str("health_check_type"), HealthCheckGracePeriod: c.int32("health_check_grace_period"),
				LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: c.str("launch_template.0.id"), LaunchTemplateName: c.str("launch_template.0.name"), Version: c.str("launch_template.0.version")}}
			for _, k := range c.blocks("tag") {
				tag := c.sub("tag." + k + ".")
				in.Tags = append(in.Tags, astypes.Tag{Key: tag.str("key"), Value: tag.str("value"), PropagateAtLaunch: aws.Bool(tag["propagate_at_launch"] == "true")})
			}
			if _, err := f.Clients.AutoScaling.CreateAutoScalingGroup(ctx, in); err != nil {
				return nil, err
			}
			name := cty.StringVal(c["name"])
			return map[string]cty.Value{"id": name, "name": name}, nil
		},
		// resourceGroupRead: every tag but aws:*, the launch template
		// reference as the group has it.
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, _ tfConfig) (map[string]string, error) {
			g := f.Group(out["name"].AsString())
			s := map[string]string{"name": aws.ToString(g.AutoScalingGroupName), "min_size": itoa(g.MinSize), "max_size": itoa(g.MaxSize),
				"desired_capacity": itoa(g.DesiredCapacity), "health_check_type": aws.ToString(g.HealthCheckType),
				"health_check_grace_period": itoa(g.HealthCheckGracePeriod), "target_group_arns": sorted(g.TargetGroupARNs),
				"vpc_zone_identifier": sorted(strings.Split(aws.ToString(g.VPCZoneIdentifier), ","))}
			if lt := g.LaunchTemplate; lt != nil {
				s["launch_template.0.id"], s["launch_template.0.name"], s["launch_template.0.version"] = aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version)
			}
			for _, tag := range g.Tags {
				k := aws.ToString(tag.Key)
				if strings.HasPrefix(k, "aws:") {
					continue
				}
				s["tag."+k+".key"], s["tag."+k+".value"], s["tag."+k+".propagate_at_launch"] = k, aws.ToString(tag.Value), strconv.FormatBool(aws.ToBool(tag.PropagateAtLaunch))
			}
			return s, nil
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			// Force-deletes the group and the lock parameters phoenix
			// keeps for it (one, released, after every deploy).
			f.DeleteGroup(out["name"].AsString())
			return nil
		},
		optional: []string{"tag."},
	},
}

// launchTemplateData is an aws_launch_template's arguments as the
// provider's expandRequestLaunchTemplateData sends them.
func launchTemplateData(c tfConfig) *ec2types.RequestLaunchTemplateData {
	data := &ec2types.RequestLaunchTemplateData{ImageId: c.str("image_id"), InstanceType: ec2types.InstanceType(c["instance_type"]),
		SecurityGroupIds: c.list("vpc_security_group_ids"), UserData: c.str("user_data")}
	if md := c.sub("metadata_options.0."); len(md) > 0 {
		data.MetadataOptions = &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpEndpoint: ec2types.LaunchTemplateInstanceMetadataEndpointState(md["http_endpoint"]),
			HttpTokens: ec2types.LaunchTemplateHttpTokensState(md["http_tokens"])}
	}
	for _, k := range c.blocks("tag_specifications") {
		ts := c.sub("tag_specifications." + k + ".")
		spec := ec2types.LaunchTemplateTagSpecificationRequest{ResourceType: ec2types.ResourceType(ts["resource_type"])}
		for key, v := range ts.sub("tags.") {
			spec.Tags = append(spec.Tags, ec2types.Tag{Key: aws.String(key), Value: aws.String(v)})
		}
		data.TagSpecifications = append(data.TagSpecifications, spec)
	}
	return data
}

// sgRule is aws_vpc_security_group_ingress_rule or _egress_rule.
func sgRule(ingress bool) tfType {
	perm := func(c tfConfig) ec2types.IpPermission {
		p := ec2types.IpPermission{IpProtocol: c.str("ip_protocol"), FromPort: c.int32("from_port"), ToPort: c.int32("to_port")}
		if cidr := c.str("cidr_ipv4"); cidr != nil {
			p.IpRanges = []ec2types.IpRange{{CidrIp: cidr, Description: c.str("description")}}
		}
		if g := c.str("referenced_security_group_id"); g != nil {
			p.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: g, Description: c.str("description")}}
		}
		return p
	}
	return tfType{
		create: func(ctx context.Context, f *deploytest.Fixture, c tfConfig) (map[string]cty.Value, error) {
			var rules []ec2types.SecurityGroupRule
			if ingress {
				out, err := f.Clients.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: c.str("security_group_id"), IpPermissions: []ec2types.IpPermission{perm(c)}})
				if err != nil {
					return nil, err
				}
				rules = out.SecurityGroupRules
			} else {
				out, err := f.Clients.EC2.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: c.str("security_group_id"), IpPermissions: []ec2types.IpPermission{perm(c)}})
				if err != nil {
					return nil, err
				}
				rules = out.SecurityGroupRules
			}
			if len(rules) != 1 {
				return nil, fmt.Errorf("%d rules made, want 1", len(rules))
			}
			return map[string]cty.Value{"id": cty.StringVal(aws.ToString(rules[0].SecurityGroupRuleId)), "security_group_id": cty.StringVal(c["security_group_id"])}, nil
		},
		// The provider reads the rule by its id (DescribeSecurityGroupRules);
		// here it is found among the group's permissions.
		read: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value, c tfConfig) (map[string]string, error) {
			d, err := f.Clients.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{out["security_group_id"].AsString()}})
			if err != nil || len(d.SecurityGroups) != 1 {
				return nil, fmt.Errorf("security group %s: %v", out["security_group_id"].AsString(), err)
			}
			perms := d.SecurityGroups[0].IpPermissionsEgress
			if ingress {
				perms = d.SecurityGroups[0].IpPermissions
			}
			for _, p := range perms {
				if aws.ToString(p.IpProtocol) != c["ip_protocol"] || itoa(p.FromPort) != c["from_port"] || itoa(p.ToPort) != c["to_port"] {
					continue
				}
				s := map[string]string{"security_group_id": out["security_group_id"].AsString(), "ip_protocol": aws.ToString(p.IpProtocol), "from_port": itoa(p.FromPort), "to_port": itoa(p.ToPort)}
				for _, r := range p.IpRanges {
					if aws.ToString(r.CidrIp) == c["cidr_ipv4"] {
						s["cidr_ipv4"], s["description"] = aws.ToString(r.CidrIp), aws.ToString(r.Description)
						return s, nil
					}
				}
				for _, g := range p.UserIdGroupPairs {
					if aws.ToString(g.GroupId) == c["referenced_security_group_id"] {
						s["referenced_security_group_id"], s["description"] = aws.ToString(g.GroupId), aws.ToString(g.Description)
						return s, nil
					}
				}
			}
			return map[string]string{}, nil // gone: every configured argument diffs
		},
		destroy: func(ctx context.Context, f *deploytest.Fixture, out map[string]cty.Value) error {
			id := []string{out["id"].AsString()}
			var err error
			if ingress {
				_, err = f.Clients.EC2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(out["security_group_id"].AsString()), SecurityGroupRuleIds: id})
			} else {
				_, err = f.Clients.EC2.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(out["security_group_id"].AsString()), SecurityGroupRuleIds: id})
			}
			return err
		},
	}
}

// actions are the listener (or rule) actions of c's blocks of type typ:
// a forward to one target group, or weighted forward blocks.
func actions(c tfConfig, typ string) []elbtypes.Action {
	var out []elbtypes.Action
	for _, k := range c.blocks(typ) {
		a := c.sub(typ + "." + k + ".")
		act := elbtypes.Action{Type: elbtypes.ActionTypeEnum(a["type"]), TargetGroupArn: a.str("target_group_arn")}
		if fr := a.sub("fixed_response.0."); len(fr) > 0 {
			act.FixedResponseConfig = &elbtypes.FixedResponseActionConfig{ContentType: fr.str("content_type"), MessageBody: fr.str("message_body"), StatusCode: fr.str("status_code")}
		}
		if fw := a.sub("forward.0."); len(fw) > 0 {
			act.ForwardConfig = &elbtypes.ForwardActionConfig{}
			for _, arn := range fw.blocks("target_group") {
				tg := fw.sub("target_group." + arn + ".")
				act.ForwardConfig.TargetGroups = append(act.ForwardConfig.TargetGroups, elbtypes.TargetGroupTuple{TargetGroupArn: tg.str("arn"), Weight: tg.int32("weight")})
			}
		}
		out = append(out, act)
	}
	return out
}

// readActions flattens actions as the provider does: a forward's target
// group as target_group_arn, and the weighted target groups of a forward
// block, keyed by ARN, when the configuration has that block.
func readActions(s map[string]string, typ string, acts []elbtypes.Action, c tfConfig) {
	for i, a := range acts {
		k := typ + "." + strconv.Itoa(i) + "."
		s[k+"type"] = string(a.Type)
		if arn := aws.ToString(a.TargetGroupArn); arn != "" {
			s[k+"target_group_arn"] = arn
		}
		if fr := a.FixedResponseConfig; fr != nil {
			s[k+"fixed_response.0.content_type"], s[k+"fixed_response.0.message_body"], s[k+"fixed_response.0.status_code"] = aws.ToString(fr.ContentType), aws.ToString(fr.MessageBody), aws.ToString(fr.StatusCode)
		}
		if fc := a.ForwardConfig; fc != nil {
			if len(fc.TargetGroups) == 1 && s[k+"target_group_arn"] == "" {
				s[k+"target_group_arn"] = aws.ToString(fc.TargetGroups[0].TargetGroupArn)
			}
			if len(c.sub(k+"forward.")) > 0 {
				for _, tg := range fc.TargetGroups {
					arn := aws.ToString(tg.TargetGroupArn)
					s[k+"forward.0.target_group."+arn+".arn"], s[k+"forward.0.target_group."+arn+".weight"] = arn, itoa(tg.Weight)
				}
			}
		}
	}
}

// apply creates the module's resources in order.
func (m *tfModule) apply(t *testing.T, f *deploytest.Fixture) {
	t.Helper()
	ctx := context.Background()
	for _, r := range m.resources {
		typ, ok := tfTypes[r.Type]
		if !ok {
			t.Fatalf("%s: the Terraform stand-in does not know resource type %s", r.addr(), r.Type)
		}
		r.Config = m.evaluate(t, r)
		out, err := typ.create(ctx, f, tfConfig(r.Config))
		if err != nil {
			t.Fatalf("creating %s: %v", r.addr(), err)
		}
		r.Out = out
		t.Cleanup(func() {
			if err := typ.destroy(context.Background(), f, r.Out); err != nil {
				t.Errorf("destroying %s: %v", r.addr(), err)
			}
		})
	}
}

// tfDiff is one line of a plan: key would go from State to Config.
type tfDiff struct {
	Resource, Key string
	State, Config string
	Ignored       bool // lifecycle.ignore_changes covers it
	ConfigAbsent  bool
}

func (d tfDiff) String() string {
	want := strconv.Quote(d.Config)
	if d.ConfigAbsent {
		want = "null"
	}
	s := fmt.Sprintf("%s.%s: %q -> %s", d.Resource, d.Key, d.State, want)
	if d.Ignored {
		s += " (ignore_changes)"
	}
	return s
}

// plan reads every resource back and lists what Terraform would change,
// ignored changes included (marked).
func (m *tfModule) plan(t *testing.T, f *deploytest.Fixture) []tfDiff {
	t.Helper()
	var out []tfDiff
	for _, r := range m.resources {
		out = append(out, m.diff(t, f, r)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// diff reads r back and compares it with its configuration.
func (m *tfModule) diff(t *testing.T, f *deploytest.Fixture, r *tfResource) []tfDiff {
	t.Helper()
	typ := tfTypes[r.Type]
	state, err := typ.read(context.Background(), f, r.Out, tfConfig(r.Config))
	if err != nil {
		t.Fatalf("reading %s: %v", r.addr(), err)
	}
	ignored := func(k string) bool {
		for _, ig := range r.Ignore {
			if k == ig || strings.HasPrefix(k, ig+".") {
				return true
			}
		}
		return false
	}
	var out []tfDiff
	for k, want := range r.Config {
		if got := state[k]; got != want && !slices.Contains(typ.unread, k) {
			out = append(out, tfDiff{Resource: r.addr(), Key: k, State: got, Config: want, Ignored: ignored(k)})
		}
	}
	for k, got := range state {
		if _, set := r.Config[k]; set || got == "" {
			continue
		}
		for _, p := range typ.optional {
			if k == p || strings.HasSuffix(p, ".") && strings.HasPrefix(k, p) {
				out = append(out, tfDiff{Resource: r.addr(), Key: k, State: got, ConfigAbsent: true, Ignored: ignored(k)})
				break
			}
		}
	}
	return out
}

// change is `terraform apply` of the module with vars changed: each
// resource with a diff that ignore_changes does not cover is updated with
// the planned values, in which an ignored argument keeps the value the
// state has. It returns the changes applied.
func (m *tfModule) change(t *testing.T, f *deploytest.Fixture, vars map[string]cty.Value) []tfDiff {
	t.Helper()
	for k, v := range vars {
		m.vars[k] = v
	}
	var applied []tfDiff
	for _, r := range m.resources {
		r.Config = m.evaluate(t, r)
		diffs := m.diff(t, f, r)
		planned := tfConfig{}
		for k, v := range r.Config {
			planned[k] = v
		}
		changed := false
		for _, d := range diffs {
			if d.Ignored {
				planned[d.Key] = d.State
				continue
			}
			changed = true
			applied = append(applied, d)
		}
		if !changed {
			continue
		}
		typ := tfTypes[r.Type]
		if typ.update == nil {
			t.Fatalf("the Terraform stand-in cannot update %s", r.addr())
		}
		if err := typ.update(context.Background(), f, r.Out, planned); err != nil {
			t.Fatalf("updating %s: %v", r.addr(), err)
		}
	}
	return applied
}

// out is the attribute attr of the resource at addr, once applied.
func (m *tfModule) out(addr, attr string) string {
	for _, r := range m.resources {
		if r.addr() == addr && r.Out != nil && !r.Out[attr].IsNull() {
			return r.Out[attr].AsString()
		}
	}
	panic(fmt.Sprintf("%s: no %s.%s applied", m.dir, addr, attr))
}
