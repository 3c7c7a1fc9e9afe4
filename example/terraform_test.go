package example

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/zclconf/go-cty/cty"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// terraformCase is one way of running phoenix next to Terraform: a root
// module in example/ and how phoenix deploys to its resources.
type terraformCase struct {
	name     string
	dir      string // the module, relative to example/
	template string // the aws_launch_template phoenix adds versions to
	// target is phoenix's target among the module's resources.
	target   func(m *tfModule) deployer.Target
	strategy func(t *testing.T) deployer.Strategy
	// during starts the message of the first deploy's event at which the
	// plan is read while that deploy runs.
	during string
	// param is the aws_ssm_parameter the launch template names its image
	// by (image_id = "resolve:ssm:…"), which phoenix moves; "" when the
	// template holds the AMI itself.
	param string
	// moving are the attributes, as "resource.key" prefixes, a deploy
	// changes while it runs and puts back when it has an outcome.
	moving []string
}

// terraformCases are the ways phoenix supports: the launch template
// version path, with a rolling group and with blue-green colours, and the
// SSM parameter path (image_id = "resolve:ssm:/web/ami" in the launch
// template, phoenix moving the parameter) with a rolling group and with
// blue-green colours that return home (no ignore_changes on the groups or
// the rule).
// launchBeforeTerminate is the rolling strategy the rolling cases use:
// new instances start before old ones go.
func launchBeforeTerminate(t *testing.T) deployer.Strategy {
	r, _, errs := deployer.RollingSettings{MinHealthyPercentage: aws.Int(100), MaxHealthyPercentage: aws.Int(150)}.Rolling()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return r
}

var terraformCases = []terraformCase{{
	name:     "launch-template-version/rolling",
	dir:      "terraform",
	template: "aws_launch_template.web",
	target: func(m *tfModule) deployer.Target {
		return deployer.Target{Group: m.out("aws_autoscaling_group.web", "name")}
	},
	strategy: launchBeforeTerminate,
	during:   "started instance refresh",
}, {
	name:     "launch-template-version/blue-green",
	dir:      "terraform/blue-green",
	template: "aws_launch_template.web",
	target: func(m *tfModule) deployer.Target {
		return deployer.Target{Group: m.out("aws_autoscaling_group.blue", "name"), PeerGroup: m.out("aws_autoscaling_group.green", "name"),
			ListenerARN: m.out("aws_lb_listener.http", "arn"), RuleARN: m.out("aws_lb_listener_rule.web", "arn")}
	},
	strategy: func(*testing.T) deployer.Strategy {
		return &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: 200 * time.Millisecond}
	},
	during: "moved 50% of the traffic",
}, {
	name:     "ssm-parameter/rolling",
	dir:      "terraform/ssm",
	template: "aws_launch_template.web",
	param:    "aws_ssm_parameter.ami",
	target: func(m *tfModule) deployer.Target {
		return deployer.Target{Group: m.out("aws_autoscaling_group.web", "name")}
	},
	strategy: launchBeforeTerminate,
	during:   "started instance refresh",
}, {
	name:     "ssm-parameter/blue-green-return-home",
	dir:      "terraform/ssm-blue-green",
	template: "aws_launch_template.web",
	param:    "aws_ssm_parameter.ami",
	target: func(m *tfModule) deployer.Target {
		return deployer.Target{Group: m.out("aws_autoscaling_group.blue", "name"), PeerGroup: m.out("aws_autoscaling_group.green", "name"),
			ListenerARN: m.out("aws_lb_listener.http", "arn"), RuleARN: m.out("aws_lb_listener_rule.web", "arn")}
	},
	strategy: func(*testing.T) deployer.Strategy {
		return &deployer.BlueGreen{Steps: []int{50, 100}, BakeTime: 200 * time.Millisecond, ReturnHome: true}
	},
	during: "moved 50% of the traffic",
	// While traffic moves, green has blue's capacity (pinned) and the
	// weights are split; the deploy ends with both as written.
	moving: []string{"aws_autoscaling_group.green.min_size", "aws_autoscaling_group.green.desired_capacity", "aws_lb_listener_rule.web.action.0.forward."},
}}

// TestTerraformOwnsTheShape creates the resources of each case's module in
// the sandbox as Terraform would (same names, same values, read from the
// .tf files), then runs phoenix on them: a deploy, a deploy of an image
// that fails its health checks, a rollback, then a terraform apply that
// changes the instance type and one more deploy. After each, a `terraform
// plan` must have nothing to change outside lifecycle.ignore_changes, the
// groups with instances must run the image phoenix vetted and each group's
// launch template reference must launch that image; while a deploy runs,
// only the hold on a numbered version and phoenix's tags may differ (and,
// for a template that names an SSM parameter, its latest version, the copy
// with the AMI written out that the group is held on). For the SSM
// parameter path, the parameter must name the image the groups run (a
// failed deploy must not write it) and the versions Terraform wrote must
// name the parameter. Each
// ignore_changes entry must have been needed at least once, and nothing
// may be left in the sandbox at the end (phoenix's released lock
// parameters go with the groups).
func TestTerraformOwnsTheShape(t *testing.T) {
	t.Parallel()
	for _, tc := range terraformCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runTerraformCase(t, tc)
		})
	}
}

func runTerraformCase(t *testing.T, tc terraformCase) {
	f := deploytest.New(t, nil, "eu-west-1")
	first := f.Image("web-1", deploytest.ImageOptions{})
	second := f.Image("web-2", deploytest.ImageOptions{})
	broken := f.Image("web-3", deploytest.ImageOptions{Health: "fail"})

	subnets := []cty.Value{cty.StringVal(f.Subnets[0]), cty.StringVal(f.Subnets[1])}
	m := loadModule(t, tc.dir, map[string]cty.Value{"region": cty.StringVal(f.Region), "ami_id": cty.StringVal(first),
		"vpc_id": cty.StringVal(f.VPC), "subnet_ids": cty.ListVal(subnets)})
	m.apply(t, f)
	template := m.out(tc.template, "id")
	// alias is what the versions Terraform writes say instead of an AMI;
	// tfVersions are those versions.
	var alias string
	tfVersions := []string{"1"}
	if tc.param != "" {
		alias = "resolve:ssm:" + m.out(tc.param, "name")
	}
	// launches is the AMI that the template's version ref launches.
	launches := func(ref string) string {
		_, ami := f.TemplateVersion(template, ref)
		if tc.param != "" && strings.HasPrefix(ami, "resolve:ssm:") {
			if ami != alias {
				t.Errorf("%s of %s names %s, want %s", ref, template, ami, alias)
			}
			ami = f.ParameterValue(m.out(tc.param, "name"))
		}
		return ami
	}
	var groups []*tfResource
	for _, r := range m.resources {
		if r.Type == "aws_autoscaling_group" {
			groups = append(groups, r)
			desired := int(aws.ToInt32(tfConfig(r.Config).int32("desired_capacity")))
			f.WaitHealthy(&deploytest.Stack{Name: r.Out["name"].AsString(), TargetGroups: strings.Split(r.Config["target_group_arns"], ",")}, desired)
		}
	}

	// Straight after the apply the plan is empty: the stand-in reads back
	// what it made.
	if diffs := m.plan(t, f); len(diffs) > 0 {
		t.Fatalf("terraform plan right after apply:\n%s", lines(diffs))
	}

	target := tc.target(m)
	target.Name, target.Region = "web", f.Region
	d := &deployer.Deployer{Clients: f.Clients, Target: target, Strategy: tc.strategy(t),
		PollInterval: 50 * time.Millisecond, HealthTimeout: 20 * time.Second, Owner: "ci@terraform-test"}
	var log []string
	var during []tfDiff // the plan while the first deploy runs
	planned := false
	d.Events = func(e deployer.Event) {
		if e.Kind != deployer.EventProgress {
			log = append(log, e.Kind+": "+e.Message)
		}
		if strings.HasPrefix(e.Message, tc.during) && !planned {
			during, planned = m.plan(t, f), true
		}
	}

	deploy := func(ami string) func() error {
		return func() error { _, err := d.Run(context.Background(), ami); return err }
	}
	needed := map[string]bool{} // resource.key of each ignored change seen
	for _, step := range []struct {
		name string
		run  func() error
		want deployer.Outcome
		ami  string // what the groups run, and their launch template reference launches, afterwards
	}{
		{"deploy", deploy(second), deployer.Succeeded, second},
		{"failed deploy", deploy(broken), deployer.RolledBack, second},
		{"rollback", func() error { _, err := d.Rollback(context.Background()); return err }, deployer.Succeeded, first},
		// Terraform still owns the shape: an apply that changes the
		// instance type makes a version that keeps phoenix's image…
		{"terraform apply of a new instance type", func() error {
			applied := m.change(t, f, map[string]cty.Value{"instance_type": cty.StringVal("t3.small")})
			if len(applied) != 1 || applied[0].Resource != tc.template || applied[0].Key != "instance_type" {
				t.Errorf("terraform apply changed:\n%s\nwant only %s.instance_type", lines(applied), tc.template)
			}
			latest, _ := f.TemplateVersion(template, "$Latest")
			tfVersions = append(tfVersions, strconv.FormatInt(latest, 10))
			return nil
		}, deployer.Succeeded, first},
		// …and the next deploy rolls the new shape out with the new image.
		{"deploy after the apply", deploy(second), deployer.Succeeded, second},
		// A rollback now returns the image, not the shape: Terraform's
		// instance type stays (checked below, after the last step).
		{"rollback after the apply", func() error { _, err := d.Rollback(context.Background()); return err }, deployer.Succeeded, first},
	} {
		log = nil
		var history []ssmtypes.ParameterHistory
		if tc.param != "" {
			history = parameterHistory(t, f, m.out(tc.param, "name"))
		}
		err := step.run()
		if got := deployer.OutcomeOf(err); err != nil && got != step.want || err == nil && step.want != deployer.Succeeded {
			t.Fatalf("%s: outcome %v (%v), want %v\n%s", step.name, got, err, step.want, strings.Join(log, "\n"))
		}
		t.Logf("%s: %v\n%s", step.name, err, strings.Join(log, "\n"))

		diffs := m.plan(t, f)
		var drift []tfDiff
		for _, df := range diffs {
			if df.Ignored {
				needed[df.Resource+"."+df.Key] = true
			} else {
				drift = append(drift, df)
			}
		}
		if len(drift) > 0 {
			t.Errorf("after the %s, terraform plan would change what phoenix must leave alone:\n%s", step.name, lines(drift))
		}
		t.Logf("terraform plan after the %s (ignored changes included):\n%s", step.name, lines(diffs))

		for _, r := range groups {
			group := r.Out["name"].AsString()
			if g := f.Group(group); aws.ToInt32(g.DesiredCapacity) > 0 {
				for id, ami := range f.InstanceAMIs(group) {
					if ami != step.ami {
						t.Errorf("after the %s, instance %s of %s runs %s, want %s", step.name, id, group, ami, step.ami)
					}
				}
			}
			ref := r.Config["launch_template.0.version"]
			if ami := launches(ref); ami != step.ami {
				t.Errorf("after the %s, %s of %s launches %s, want %s: a scale-out would launch an image that did not pass the gate", step.name, ref, group, ami, step.ami)
			}
			locks, err := f.Clients.SSM.GetParametersByPath(context.Background(), &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(deployer.LockPath(group), "/"))})
			if err != nil || len(locks.Parameters) != 1 {
				t.Errorf("after the %s: %v lock parameters under %s, want the released one (%v)", step.name, locks, deployer.LockPath(group), err)
			}
		}
		if tc.param != "" {
			name := m.out(tc.param, "name")
			if v := f.ParameterValue(name); v != step.ami {
				t.Errorf("after the %s, SSM parameter %s names %s, want %s", step.name, name, v, step.ami)
			}
			if after := parameterHistory(t, f, name); step.want == deployer.RolledBack && len(after) != len(history) {
				t.Errorf("the %s wrote SSM parameter %s: %d versions, %d before it", step.name, name, len(after), len(history))
			}
			for _, v := range tfVersions {
				if _, id := f.TemplateVersion(template, v); id != alias {
					t.Errorf("after the %s, version %s of %s (Terraform's) has image %s, want %s", step.name, v, template, id, alias)
				}
			}
		}
	}

	// While a deploy runs, the groups are held on a numbered version and
	// carry phoenix's tags: an apply then would put "$Latest" back (on the
	// image not yet vetted) and, without the provider's ignore_tags, delete
	// the tags. Nothing else differs.
	if !planned {
		t.Errorf("no plan was made while the first deploy ran")
	}
	for _, df := range during {
		if df.Ignored {
			continue
		}
		// A template that names an SSM parameter: its latest version is
		// one the deploy made, with an AMI written out (the copy the
		// group is held on, then the one with the new AMI) and phoenix's
		// description. An apply would make a version that names the
		// parameter again, which phoenix puts the group back on once the
		// deploy has an outcome.
		if tc.param != "" && df.Resource == tc.template && (df.Key == "image_id" || df.Key == "description") {
			continue
		}
		moving := false
		for _, m := range tc.moving {
			moving = moving || strings.HasPrefix(df.Resource+"."+df.Key, m)
		}
		if moving {
			continue
		}
		if !strings.HasPrefix(df.Resource, "aws_autoscaling_group.") || df.Key != "launch_template.0.version" && !strings.HasPrefix(df.Key, "tag.phoenix:") {
			t.Errorf("while a deploy ran, terraform plan would change %s", df)
		}
	}
	t.Logf("terraform plan while the first deploy ran (ignored changes included):\n%s", lines(during))

	// The last deploy brought Terraform's new shape to every instance in
	// service, and the rollback after it kept it (a blue-green colour that
	// lost the traffic is scaling to 0).
	for _, r := range groups {
		group := r.Out["name"].AsString()
		n := int(aws.ToInt32(f.Group(group).DesiredCapacity))
		if n == 0 {
			continue
		}
		if types := instanceTypes(t, f, group); len(types) != n || types[0] != "t3.small" || types[n-1] != "t3.small" {
			t.Errorf("after the last deploy and the rollback the instances of %s are %v, want %d t3.small (Terraform's new shape)", group, types, n)
		}
	}

	// Every ignore_changes entry is needed: phoenix changed it at least
	// once, so without it an apply would undo phoenix's work.
	for _, r := range m.resources {
		for _, ig := range r.Ignore {
			used := false
			for k := range needed {
				used = used || k == r.addr()+"."+ig || strings.HasPrefix(k, r.addr()+"."+ig+".")
			}
			if !used {
				t.Errorf("%s: lifecycle.ignore_changes lists %s, which phoenix never changed", r.addr(), ig)
			}
		}
	}
}

// parameterHistory is every version of SSM parameter name.
func parameterHistory(t *testing.T, f *deploytest.Fixture, name string) []ssmtypes.ParameterHistory {
	t.Helper()
	var out []ssmtypes.ParameterHistory
	pg := ssm.NewGetParameterHistoryPaginator(f.Clients.SSM, &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatalf("reading the history of SSM parameter %s: %v", name, err)
		}
		out = append(out, page.Parameters...)
	}
	return out
}

func lines(diffs []tfDiff) string {
	var s []string
	for _, d := range diffs {
		s = append(s, "  "+d.String())
	}
	if len(s) == 0 {
		return "  (no changes)"
	}
	return strings.Join(s, "\n")
}

// instanceTypes are the types of the group's instances, sorted.
func instanceTypes(t *testing.T, f *deploytest.Fixture, group string) []string {
	t.Helper()
	var ids []string
	for id := range f.InstanceAMIs(group) {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	out, err := f.Clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			types = append(types, string(in.InstanceType))
		}
	}
	sort.Strings(types)
	return types
}
