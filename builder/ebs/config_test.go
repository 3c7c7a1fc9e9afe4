package ebs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func minimalConfig() map[string]interface{} {
	return map[string]interface{}{
		"region":        "us-east-1",
		"source_ami":    "ami-0123456789abcdef0",
		"instance_type": "t3.micro",
		"communicator":  "none",
		"ami_name":      "web-{{timestamp}}",
	}
}

func with(kv ...interface{}) map[string]interface{} {
	m := minimalConfig()
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(m, k)
			continue
		}
		m[k] = kv[i+1]
	}
	return m
}

func TestPrepareDefaults(t *testing.T) {
	var c Config
	warnings, err := c.Prepare(minimalConfig())
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	checks := []struct {
		name      string
		got, want interface{}
	}{
		{"encrypt", *c.Encrypt, true},
		{"imds_support", *c.IMDSSupport, "v2.0"},
		{"http_tokens", c.MetadataOptions.HttpTokens, "required"},
		{"hop limit", c.MetadataOptions.HttpPutResponseHopLimit, 1},
		{"root_volume_type", c.RootVolumeType, "gp3"},
		{"key type", c.Comm.SSHTemporaryKeyPairType, "ed25519"},
		{"instance_running_timeout", c.InstanceRunningTimeout, 10 * time.Minute},
		{"ami_ready_timeout", c.AMIReadyTimeout, 60 * time.Minute},
		{"ami_copy_timeout", c.AMICopyTimeout, 90 * time.Minute},
		{"poll_interval", c.PollInterval, 5 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if !strings.HasPrefix(c.AMIName, "web-") || strings.Contains(c.AMIName, "{{") {
		t.Errorf("ami_name not rendered: %q", c.AMIName)
	}
}

func TestPrepareCopyRegions(t *testing.T) {
	var c Config
	_, err := c.Prepare(with("ami_regions", []string{"eu-west-1", "us-east-1", "ap-south-1", "eu-west-1"},
		"kms_key_id", "alias/images", "region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AMIRegions, ","); got != "ap-south-1,eu-west-1" {
		t.Errorf("ami_regions = %s: the build region and duplicates are no copies", got)
	}
	if c.kmsKeyFor("us-east-1") != "alias/images" || c.kmsKeyFor("eu-west-1") != "alias/images-eu" || c.kmsKeyFor("ap-south-1") != "" {
		t.Errorf("keys per region wrong")
	}
}

// Each bad setting gives one error that names it.
func TestPrepareErrorsNameTheSetting(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]interface{}
		want string
	}{
		{"no source", with("source_ami", nil), "source_ami or source_ami_filter is required"},
		{"both sources", with("source_ami_filter", map[string]interface{}{"owners": []string{"self"}}), "cannot both be set"},
		{"bad source id", with("source_ami", "debian"), "source_ami \"debian\""},
		{"filter without owners", with("source_ami", nil, "source_ami_filter", map[string]interface{}{"filters": map[string]string{"name": "x*"}}), "source_ami_filter.owners"},
		{"no instance type", with("instance_type", nil), "instance_type is required"},
		{"no ami name", with("ami_name", nil), "ami_name is required"},
		{"bad ami name", with("ami_name", "a!"), "ami_name \"a!\""},
		{"bad region", with("region", "mars-1"), "region \"mars-1\""},
		{"bad copy region", with("ami_regions", []string{"eu-west-1", "moon"}), "ami_regions: \"moon\""},
		{"kms without encryption", with("encrypt", false, "kms_key_id", "alias/x"), "kms_key_id requires encrypt = true"},
		{"key for a region not copied to", with("region_kms_key_ids", map[string]string{"eu-west-1": "alias/x"}), "region_kms_key_ids has a key for eu-west-1"},
		{"share under the AWS managed key", with("ami_users", []string{"210987654321"}), "cannot be shared"},
		{"bad account", with("kms_key_id", "alias/x", "ami_users", []string{"12"}), "ami_users: \"12\""},
		{"bad group", with("kms_key_id", "alias/x", "ami_groups", []string{"friends"}), "ami_groups: \"friends\""},
		{"bad imds", with("imds_support", "v1"), "imds_support \"v1\""},
		{"both deprecations", with("deprecate_at", "2027-01-01T00:00:00Z", "deprecate_after", "24h"), "deprecate_at and deprecate_after"},
		{"bad deprecate_at", with("deprecate_at", "next year"), "deprecate_at \"next year\""},
		{"bad http_tokens", with("metadata_options", map[string]interface{}{"http_tokens": "maybe"}), "metadata_options.http_tokens"},
		{"bad hop limit", with("metadata_options", map[string]interface{}{"http_put_response_hop_limit": 99}), "http_put_response_hop_limit"},
		{"bad volume type", with("root_volume_type", "ssd"), "root_volume_type \"ssd\""},
		{"device without name", with("launch_block_device_mappings", []map[string]interface{}{{"volume_size": 10}}), "launch_block_device_mappings[0].device_name is required"},
		{"both subnets", with("subnet_id", "subnet-1", "subnet_filter", map[string]interface{}{"filters": map[string]string{"tag:Name": "x"}}), "subnet_id and subnet_filter"},
		{"bad cidr", with("temporary_security_group_source_cidrs", []string{"home"}), "temporary_security_group_source_cidrs: \"home\""},
		{"both user data", with("user_data", "x", "user_data_file", "/etc/hostname"), "user_data and user_data_file"},
		{"missing user data file", with("user_data_file", "/nonexistent/file"), "user_data_file"},
		{"force delete without deregister", with("force_delete_snapshot", true), "force_delete_snapshot requires force_deregister"},
		{"negative timeout", with("ami_ready_timeout", "-1m"), "ami_ready_timeout"},
		{"bad endpoint", with("endpoint", "localhost"), "endpoint"},
		{"half a key", with("access_key", "AKIA"), "access_key and secret_key"},
		{"bad role", with("assume_role", map[string]interface{}{"role_arn": "admin"}), "assume_role.role_arn"},
		{"ssh without user", with("communicator", "ssh"), "ssh_username is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			_, err := c.Prepare(tc.cfg)
			if err == nil {
				t.Fatalf("no error, want one naming %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// All problems are reported at once.
func TestPrepareReportsEveryProblem(t *testing.T) {
	var c Config
	_, err := c.Prepare(with("instance_type", nil, "ami_name", nil, "imds_support", "v1"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"instance_type", "ami_name", "imds_support"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

func ssmParams(blocks ...map[string]interface{}) []map[string]interface{} { return blocks }

// Valid ssm_parameter blocks: the region defaults to the build region,
// and a name may be as long as Parameter Store allows counting its ARN.
func TestPrepareSSMParameters(t *testing.T) {
	// "arn:aws:ssm:us-east-1:123456789012:parameter/" has 45 characters.
	longest := "/" + strings.Repeat("a", ssmMaxNameLength-45)
	var c Config
	_, err := c.Prepare(with("ami_regions", []string{"eu-west-1"}, "ssm_parameter", ssmParams(
		map[string]interface{}{"name": "/web/ami", "labels": []string{"staging", "Prod_2.x-y"}, "tags": map[string]string{"team": "web", "cost centre": "a:b/c=d+e-f@g"}},
		map[string]interface{}{"name": "/web/ami", "region": "eu-west-1"},
		map[string]interface{}{"name": "web-ami"},
		map[string]interface{}{"name": longest},
		map[string]interface{}{"name": "/" + strings.TrimSuffix(strings.Repeat("l/", 15), "/")},
	)))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if got := c.SSMParameters[0].Region; got != "us-east-1" {
		t.Errorf("region %q, want the build region", got)
	}
	if c.SSMParameterTimeout != 5*time.Minute {
		t.Errorf("ssm_parameter_timeout %s, want 5m", c.SSMParameterTimeout)
	}
	if ssmParameterARNLength("us-east-1", longest) != ssmMaxNameLength {
		t.Errorf("the longest name test is off by %d", ssmParameterARNLength("us-east-1", longest)-ssmMaxNameLength)
	}
	// AWS's own example: the name counts 65 characters, not 20.
	if n := ssmParameterARNLength("us-east-2", "ExampleParameterName"); n != 65 {
		t.Errorf("ARN length %d, want 65", n)
	}
}

// Each bad ssm_parameter setting gives exactly one error, which names it.
func TestPrepareSSMParameterErrors(t *testing.T) {
	name := func(n string) map[string]interface{} { return map[string]interface{}{"name": n} }
	labels := func(l ...string) map[string]interface{} {
		return map[string]interface{}{"name": "/web/ami", "labels": l}
	}
	tags := func(m map[string]string) map[string]interface{} {
		return map[string]interface{}{"name": "/web/ami", "tags": m}
	}
	many := map[string]string{}
	for i := 0; i < 51; i++ {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	cases := []struct {
		name   string
		blocks []map[string]interface{}
		kv     []interface{}
		want   string
	}{
		{"no name", ssmParams(map[string]interface{}{"labels": []string{"x"}}), nil, "ssm_parameter[0].name is required"},
		{"space", ssmParams(name("/web ami")), nil, `ssm_parameter[0].name "/web ami" must not contain spaces`},
		{"bad character", ssmParams(name("/web/ami!")), nil, `ssm_parameter[0].name "/web/ami!" may contain only letters, digits and _ . - /`},
		{"levels without a leading slash", ssmParams(name("web/ami")), nil, `ssm_parameter[0].name "web/ami" has levels, so it must begin with a /: "/web/ami"`},
		{"empty level", ssmParams(name("/web//ami")), nil, `ssm_parameter[0].name "/web//ami" has an empty level`},
		{"slash at the end", ssmParams(name("/web/")), nil, `ssm_parameter[0].name "/web/" has an empty level`},
		{"aws prefix", ssmParams(name("/AWS-web/ami")), nil, `ssm_parameter[0].name "/AWS-web/ami" must not begin with "aws" or "ssm"`},
		{"ssm prefix", ssmParams(name("ssmweb")), nil, `ssm_parameter[0].name "ssmweb" must not begin with "aws" or "ssm"`},
		{"16 levels", ssmParams(name("/" + strings.TrimSuffix(strings.Repeat("l/", 16), "/"))), nil, "has 16 levels; Parameter Store allows 15"},
		{"too long", ssmParams(name("/" + strings.Repeat("a", ssmMaxNameLength-44))), nil, "is too long: with the ARN before it (arn:aws:ssm:us-east-1:ACCOUNT:parameter/) it has 1012 characters; Parameter Store allows 1011"},
		{"too long in GovCloud", ssmParams(map[string]interface{}{"name": "/" + strings.Repeat("a", ssmMaxNameLength-55), "region": "us-gov-west-1"}), []interface{}{"ami_regions", []string{"us-gov-west-1"}}, "(arn:aws-us-gov:ssm:us-gov-west-1:ACCOUNT:parameter/) it has 1012 characters"},
		{"region not a region", ssmParams(map[string]interface{}{"name": "/web/ami", "region": "mars"}), nil, `ssm_parameter[0].region "mars" is not an AWS region name`},
		{"region not built", ssmParams(map[string]interface{}{"name": "/web/ami", "region": "eu-west-1"}), []interface{}{"ami_regions", []string{"ap-south-1"}}, `ssm_parameter[0].region "eu-west-1" is not a region this build makes an AMI in (us-east-1, ap-south-1): add it to ami_regions`},
		{"same parameter twice", ssmParams(name("/web/ami"), map[string]interface{}{"name": "/web/ami", "region": "us-east-1"}), nil, `ssm_parameter[1] writes "/web/ami" in us-east-1, as ssm_parameter[0] does`},
		{"same parameter with and without its slash", ssmParams(name("web"), name("/web")), nil, `ssm_parameter[1] writes "/web" in us-east-1, as ssm_parameter[0] does`},
		{"label starting with a digit", ssmParams(labels("1st")), nil, `ssm_parameter[0].labels: "1st" is not a parameter label`},
		{"label starting with aws", ssmParams(labels("AwsProd")), nil, `ssm_parameter[0].labels: "AwsProd" is not a parameter label`},
		{"label with a space", ssmParams(labels("pro d")), nil, `ssm_parameter[0].labels: "pro d" is not a parameter label`},
		{"label too long", ssmParams(labels(strings.Repeat("l", 101))), nil, "is not a parameter label: 1 to 100 letters"},
		{"eleven labels", ssmParams(labels("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")), nil, "ssm_parameter[0].labels has 11 labels; a parameter version takes at most 10"},
		{"label twice", ssmParams(labels("prod", "prod")), nil, `ssm_parameter[0].labels: "prod" appears twice`},
		{"tag key of AWS", ssmParams(tags(map[string]string{"aws:team": "web"})), nil, `ssm_parameter[0].tags: key "aws:team": keys beginning with aws: are AWS's`},
		{"tag key with a star", ssmParams(tags(map[string]string{"a*b": "web"})), nil, `ssm_parameter[0].tags: key "a*b" must be 1 to 128`},
		{"tag value too long", ssmParams(tags(map[string]string{"team": strings.Repeat("v", 257)})), nil, `ssm_parameter[0].tags: the value of "team" must be up to 256`},
		{"51 tags", ssmParams(tags(many)), nil, "ssm_parameter[0].tags has 51 tags; a parameter takes at most 50"},
		{"description too long", ssmParams(map[string]interface{}{"name": "/web/ami", "description": strings.Repeat("d", 1025)}), nil, "ssm_parameter[0].description has 1025 characters; at most 1024"},
		{"negative timeout", nil, []interface{}{"ssm_parameter_timeout", "-1m"}, "ssm_parameter_timeout -1m0s must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := tc.kv
			if tc.blocks != nil {
				kv = append(kv, "ssm_parameter", tc.blocks)
			}
			var c Config
			_, err := c.Prepare(with(kv...))
			var me *packersdk.MultiError
			if !errors.As(err, &me) || len(me.Errors) != 1 {
				t.Fatalf("error %v, want exactly one containing %q", err, tc.want)
			}
			if !strings.Contains(me.Errors[0].Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", me.Errors[0], tc.want)
			}
		})
	}
}
