package ebs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	registryimage "github.com/hashicorp/packer-plugin-sdk/packer/registry/image"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func (e *env) ssm(region string) *ssm.Client {
	return ssm.NewFromConfig(sandboxtest.Config(e.t, e.sb, region))
}

// parameter reads name (with a selector) in region; ok is false when it
// or the version does not exist.
func (e *env) parameter(region, name string) (p ssmtypes.Parameter, ok bool) {
	e.t.Helper()
	out, err := e.ssm(region).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if code := apiCode(err); code == "ParameterNotFound" || code == "ParameterVersionNotFound" {
		return ssmtypes.Parameter{}, false
	}
	if err != nil {
		e.t.Fatalf("GetParameter %s in %s: %v", name, region, err)
	}
	return *out.Parameter, true
}

func (e *env) history(region, name string) []ssmtypes.ParameterHistory {
	e.t.Helper()
	out, err := e.ssm(region).GetParameterHistory(context.Background(), &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	if err != nil {
		e.t.Fatalf("GetParameterHistory %s in %s: %v", name, region, err)
	}
	return out.Parameters
}

// putImageParameter writes an aws:ec2:image parameter as someone other
// than the build would, and waits until Parameter Store has validated it.
func (e *env) putImageParameter(region, name, ami string, labels ...string) int64 {
	e.t.Helper()
	c := e.ssm(region)
	_, exists := e.parameter(region, name)
	out, err := c.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(ami),
		Type: ssmtypes.ParameterTypeString, DataType: aws.String(ssmImageDataType), Overwrite: aws.Bool(exists)})
	if err != nil {
		e.t.Fatalf("PutParameter %s: %v", name, err)
	}
	e.waitParameter(region, fmt.Sprintf("%s:%d", name, out.Version))
	if len(labels) > 0 {
		if _, err := c.LabelParameterVersion(context.Background(), &ssm.LabelParameterVersionInput{Name: aws.String(name), ParameterVersion: aws.Int64(out.Version), Labels: labels}); err != nil {
			e.t.Fatal(err)
		}
	}
	return out.Version
}

func (e *env) waitParameter(region, ref string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := e.parameter(region, ref); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("%s in %s never became readable", ref, region)
}

// deleteParameters deletes the parameters a test made, so that the
// inventory check sees nothing.
func (e *env) deleteParameters(region string, names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.ssm(region).DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(n)}); err != nil && apiCode(err) != "ParameterNotFound" {
			e.t.Fatalf("DeleteParameter %s in %s: %v", n, region, err)
		}
	}
}

// publicImage is a public Debian image of region: an AMI that Parameter
// Store accepts, as a parameter's value before the build.
func (e *env) publicImage(region string) string {
	e.t.Helper()
	out, err := e.ec2(region).DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"debian-12-amd64-*"}}}})
	if err != nil || len(out.Images) == 0 {
		e.t.Fatalf("no public Debian image in %s: %v", region, err)
	}
	return aws.ToString(out.Images[0].ImageId)
}

// A build with a region copy publishes each region's AMI to the
// parameter of that region, labelled, and tags a parameter it creates; a
// second build overwrites both, moving the label. A launch template that
// names the parameter launches the new AMI.
func TestBuildPublishesSSMParameters(t *testing.T) {
	e := newEnv(t)
	cfg := func(name string) map[string]interface{} {
		return e.config("ami_name", name, "ami_regions", []string{"eu-west-1"}, "ssm_parameter", []map[string]interface{}{
			{"name": "/web/ami", "labels": []string{"staging"}, "tags": map[string]string{"team": "web"}, "description": "the web AMI"},
			{"name": "/web/ami", "region": "eu-west-1", "labels": []string{"staging", "canary"}},
		})
	}
	first := e.build(context.Background(), cfg("web-1"))
	if first.err != nil {
		t.Fatalf("first build: %v\n%s", first.err, first.out)
	}
	a1 := first.artifact.(*Artifact)
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		p, ok := e.parameter(region, "/web/ami")
		if !ok {
			t.Fatalf("%s: no parameter /web/ami", region)
		}
		if aws.ToString(p.Value) != a1.AMIs[region] || p.Type != ssmtypes.ParameterTypeString || aws.ToString(p.DataType) != ssmImageDataType || p.Version != 1 {
			t.Errorf("%s: parameter %s = %s (%s, %s) version %d, want %s, String, aws:ec2:image, version 1",
				region, aws.ToString(p.Name), aws.ToString(p.Value), p.Type, aws.ToString(p.DataType), p.Version, a1.AMIs[region])
		}
		if l, ok := e.parameter(region, "/web/ami:staging"); !ok || l.Version != 1 {
			t.Errorf("%s: label staging not on version 1: %+v", region, l)
		}
	}
	if _, ok := e.parameter("eu-west-1", "/web/ami:canary"); !ok {
		t.Errorf("eu-west-1: label canary missing")
	}
	tags, err := e.ssm("us-east-1").ListTagsForResource(context.Background(), &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String("/web/ami")})
	if err != nil || len(tags.TagList) != 1 || aws.ToString(tags.TagList[0].Key) != "team" || aws.ToString(tags.TagList[0].Value) != "web" {
		t.Errorf("tags of the new parameter: %+v %v", tags, err)
	}
	want1 := []PublishedParameter{{"eu-west-1", "/web/ami", 1, a1.AMIs["eu-west-1"]}, {"us-east-1", "/web/ami", 1, a1.AMIs["us-east-1"]}}
	if fmt.Sprint(a1.Parameters) != fmt.Sprint(want1) {
		t.Errorf("artifact parameters %v, want %v", a1.Parameters, want1)
	}
	if gd := a1.State("generated_data").(map[string]interface{}); gd["SSMParameters"] != "eu-west-1:/web/ami:1,us-east-1:/web/ami:1" {
		t.Errorf("generated SSMParameters = %v", gd["SSMParameters"])
	}
	for _, im := range a1.State(registryimage.ArtifactStateURI).([]*registryimage.Image) {
		if im.Labels["ssm_parameters"] != "/web/ami:1" {
			t.Errorf("HCP labels of %s: %v", im.ProviderRegion, im.Labels)
		}
	}

	second := e.build(context.Background(), cfg("web-2"))
	if second.err != nil {
		t.Fatalf("second build: %v\n%s", second.err, second.out)
	}
	a2 := second.artifact.(*Artifact)
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		h := e.history(region, "/web/ami")
		if len(h) != 2 || aws.ToString(h[0].Value) != a1.AMIs[region] || aws.ToString(h[1].Value) != a2.AMIs[region] {
			t.Fatalf("%s: history %+v, want the two builds' AMIs", region, h)
		}
		if len(h[0].Labels) != 0 || !contains(h[1].Labels, "staging") {
			t.Errorf("%s: labels %v then %v: staging should have moved to version 2", region, h[0].Labels, h[1].Labels)
		}
	}
	if d := e.describeParameter("us-east-1", "/web/ami"); aws.ToString(d.Description) != "the web AMI" {
		t.Errorf("description %q", aws.ToString(d.Description))
	}

	// What the parameter is for: a template naming it launches the new AMI.
	lt, err := e.ec2("us-east-1").CreateLaunchTemplate(context.Background(), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("resolve:ssm:/web/ami")}})
	if err != nil {
		t.Fatal(err)
	}
	versions, err := e.ec2("us-east-1").DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, ResolveAlias: aws.Bool(true)})
	if err != nil || len(versions.LaunchTemplateVersions) != 1 || aws.ToString(versions.LaunchTemplateVersions[0].LaunchTemplateData.ImageId) != a2.AMIs["us-east-1"] {
		t.Errorf("resolve:ssm:/web/ami resolves to %+v (%v), want %s", versions, err, a2.AMIs["us-east-1"])
	}
	if _, err := e.ec2("us-east-1").DeleteLaunchTemplate(context.Background(), &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}); err != nil {
		t.Fatal(err)
	}

	for _, a := range []*Artifact{a1, a2} {
		if err := a.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	e.deleteParameters("us-east-1", "/web/ami")
	e.deleteParameters("eu-west-1", "/web/ami")
	e.waitInventoryClean()
}

func (e *env) describeParameter(region, name string) ssmtypes.ParameterMetadata {
	e.t.Helper()
	out, err := e.ssm(region).DescribeParameters(context.Background(), &ssm.DescribeParametersInput{
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{name}}}})
	if err != nil || len(out.Parameters) != 1 {
		e.t.Fatalf("DescribeParameters %s: %+v %v", name, out, err)
	}
	return out.Parameters[0]
}

// A build cancelled after it wrote a parameter puts back what was there:
// a parameter it created is deleted, one that existed gets its previous
// value back as a new version. Cancelled while Parameter Store validates
// the build's version, or while the answer to the write is on its way
// (the build never learns its version number).
func TestCancelledBuildPutsBackSSMParameters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		existed bool
		lost    bool // the answer to PutParameter is lost
	}{
		{"new parameter, cancelled during the validation wait", false, false},
		{"new parameter, answer to the write lost", false, true},
		{"existing parameter, cancelled during the validation wait", true, false},
		{"existing parameter, answer to the write lost", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// A validation of 1 s scaled: the cancel lands while it runs.
			if err := e.sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"ssm_image_validation": 100}}); err != nil {
				t.Fatal(err)
			}
			before := e.publicImage("us-east-1")
			if tc.existed {
				e.putImageParameter("us-east-1", "/web/ami", before)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.lost {
				hold := e.sb.HoldAnswer(func(_, _, action string) bool { return action == "PutParameter" })
				go func() {
					<-hold.Reached()
					cancel()
				}()
				defer hold.Release()
			} else {
				var once sync.Once
				put := false
				var mu sync.Mutex
				e.sb.OnCall(func(_, action string) {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case action == "PutParameter":
						put = true
					case action == "GetParameter" && put:
						once.Do(cancel) // the first read of the validation wait
					}
				})
			}
			res := e.build(ctx, e.config("ssm_parameter", []map[string]interface{}{{"name": "/web/ami"}}))
			e.sb.OnCall(nil)
			if res.err == nil {
				t.Fatalf("build finished despite the cancel\n%s", res.out)
			}
			if !strings.Contains(res.out, "putting back the SSM parameters") {
				t.Errorf("the cleanup did not say it puts back parameters:\n%s", res.out)
			}
			p, ok := e.parameter("us-east-1", "/web/ami")
			if !tc.existed {
				if ok {
					t.Fatalf("the parameter the build created is still there: %+v\n%s", p, res.out)
				}
				e.waitInventoryClean()
				return
			}
			if !ok || aws.ToString(p.Value) != before {
				t.Fatalf("parameter %+v (exists %v), want %s back\n%s", p, ok, before, res.out)
			}
			h := e.history("us-east-1", "/web/ami")
			if len(h) != 3 || aws.ToString(h[2].Value) != before || aws.ToString(h[1].Value) == before {
				t.Errorf("history %+v: want the value before, the build's AMI, the value before", h)
			}
			e.deleteParameters("us-east-1", "/web/ami")
			e.waitInventoryClean()
		})
	}
}

// Labels the build moved go back where they were, and labels it added are
// removed, when the build is cancelled after labelling.
func TestCancelledBuildMovesLabelsBack(t *testing.T) {
	e := newEnv(t)
	before := e.publicImage("us-east-1")
	e.putImageParameter("us-east-1", "/web/ami", before, "staging")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold := e.sb.HoldAnswer(func(_, _, action string) bool { return action == "LabelParameterVersion" })
	go func() {
		<-hold.Reached()
		cancel()
	}()
	res := e.build(ctx, e.config("ssm_parameter", []map[string]interface{}{{"name": "/web/ami", "labels": []string{"staging", "canary"}}}))
	hold.Release()
	if res.err == nil {
		t.Fatalf("build finished despite the cancel\n%s", res.out)
	}
	if l, ok := e.parameter("us-east-1", "/web/ami:staging"); !ok || l.Version != 1 {
		t.Errorf("staging is on %+v, want version 1 again\n%s", l, res.out)
	}
	if l, ok := e.parameter("us-east-1", "/web/ami:canary"); ok {
		t.Errorf("canary is still on version %d", l.Version)
	}
	if p, _ := e.parameter("us-east-1", "/web/ami"); aws.ToString(p.Value) != before || p.Version != 3 {
		t.Errorf("parameter %s version %d, want %s back as version 3", aws.ToString(p.Value), p.Version, before)
	}
	e.deleteParameters("us-east-1", "/web/ami")
	e.waitInventoryClean()
}

// When Parameter Store drops the build's value (here: the AMI is
// deregistered behind the build's back as it writes), the build fails
// naming the parameter and the setting to raise, and leaves nothing.
func TestDroppedSSMParameterFailsTheBuild(t *testing.T) {
	e := newEnv(t)
	var once sync.Once
	e.sb.OnCall(func(_, action string) {
		if action != "PutParameter" {
			return
		}
		once.Do(func() {
			c := e.ec2("us-east-1")
			out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
			if err != nil || len(out.Images) != 1 {
				t.Errorf("the build's AMI: %+v %v", out, err)
				return
			}
			c.DeregisterImage(context.Background(), &ec2.DeregisterImageInput{ImageId: out.Images[0].ImageId})
		})
	})
	res := e.build(context.Background(), e.config("ssm_parameter_timeout", "1s", "ssm_parameter", []map[string]interface{}{{"name": "/web/ami"}}))
	e.sb.OnCall(nil)
	if res.err == nil {
		t.Fatalf("build succeeded\n%s", res.out)
	}
	for _, want := range []string{`ssm_parameter "/web/ami" in us-east-1: timed out after 1s waiting for Parameter Store to validate version 1 of SSM parameter "/web/ami"`,
		"drops a value that fails validation", "raise ssm_parameter_timeout"} {
		if !strings.Contains(res.err.Error(), want) {
			t.Errorf("error %q lacks %q", res.err, want)
		}
	}
	if _, ok := e.parameter("us-east-1", "/web/ami"); ok {
		t.Error("the dropped value created the parameter")
	}
	e.waitInventoryClean()
}

// A parameter that exists as plain text cannot become aws:ec2:image: the
// build says so before it creates anything.
func TestExistingTextParameterRefusedFirst(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ssm("us-east-1").PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String("/web/ami"), Value: aws.String("ami-0123456789abcdef0"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	e.sb.ResetCalls()
	res := e.build(context.Background(), e.config("ssm_parameter", []map[string]interface{}{{"name": "/web/ami"}}))
	want := `ssm_parameter[0]: SSM parameter "/web/ami" in us-east-1 is a String of data type text; the build writes a String of data type aws:ec2:image`
	if res.err == nil || !strings.Contains(res.err.Error(), want) {
		t.Fatalf("error %v, want %q", res.err, want)
	}
	if m := sandbox.MutatingCalls(e.sb.Calls()); m != 0 {
		t.Errorf("%d mutating calls before refusing: %v", m, e.sb.Calls())
	}
	e.deleteParameters("us-east-1", "/web/ami")
	e.waitInventoryClean()
}
