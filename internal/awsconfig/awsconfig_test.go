package awsconfig

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func TestValidateNamesTheSetting(t *testing.T) {
	cases := []struct {
		name string
		s    Settings
		want string
	}{
		{"half a key pair", Settings{AccessKey: "AKIA"}, "access_key and secret_key"},
		{"two credential sources", Settings{AccessKey: "a", SecretKey: "b", Profile: "p"}, "profile and access_key"},
		{"bad endpoint", Settings{Endpoint: "localhost:4566"}, "endpoint"},
		{"bad region", Settings{Region: "Europe"}, `region "Europe" is not an AWS region name`},
		{"negative retries", Settings{MaxRetries: -1}, "max_retries"},
		{"bad role", Settings{AssumeRole: AssumeRole{RoleARN: "deployer"}}, "assume_role.role_arn"},
		{"role settings without role", Settings{AssumeRole: AssumeRole{SessionName: "x"}}, "assume_role.role_arn is required"},
		{"short duration", Settings{AssumeRole: AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", Duration: "1m"}}, "assume_role.duration"},
		{"bad duration", Settings{AssumeRole: AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", Duration: "soon"}}, "assume_role.duration"},
	}
	for _, tc := range cases {
		errs := tc.s.Validate()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: errors %v, want one naming %q", tc.name, errs, tc.want)
		}
	}
	for _, r := range []string{"eu-west-1", "us-gov-west-1", "us-isob-east-1", "ap-southeast-5"} {
		if errs := (&Settings{Region: r}).Validate(); len(errs) != 0 {
			t.Errorf("region %s: %v", r, errs)
		}
	}
	ok := Settings{Region: "us-east-1", Endpoint: "http://127.0.0.1:4566", AssumeRole: AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/x", Duration: "1h"}}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Errorf("valid settings: %v", errs)
	}
}

func TestLoadWithEndpointAndAssumedRole(t *testing.T) {
	sb := sandboxtest.Start(t)
	// The role's trust policy lets the account's principals assume it.
	if err := sb.TrustRole("arn:aws:iam::123456789012:role/packer", "123456789012"); err != nil {
		t.Fatal(err)
	}
	s := Settings{
		Region: "eu-central-1", AccessKey: "AKIAEXAMPLE", SecretKey: "secret", Endpoint: sb.URL(),
		AssumeRole: AssumeRole{RoleARN: "arn:aws:iam::123456789012:role/packer", SessionName: "bake"},
	}
	cfg, err := s.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-central-1" {
		t.Fatalf("region %q", cfg.Region)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(id.Arn); got != "arn:aws:sts::123456789012:assumed-role/packer/bake" {
		t.Fatalf("caller %q, want the assumed role", got)
	}
	other, err := s.Load(context.Background(), "ap-southeast-2")
	if err != nil || other.Region != "ap-southeast-2" {
		t.Fatalf("region override: %v %q", err, other.Region)
	}
	if cfg.RetryMaxAttempts != 0 && cfg.RetryMaxAttempts != DefaultMaxRetries+1 {
		t.Fatalf("retry attempts %d", cfg.RetryMaxAttempts)
	}
	if got := cfg.Retryer().MaxAttempts(); got != DefaultMaxRetries+1 {
		t.Fatalf("max attempts %d, want %d", got, DefaultMaxRetries+1)
	}
}

func TestLoadWithoutRegionFails(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	s := Settings{AccessKey: "a", SecretKey: "b"}
	if _, err := s.Load(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("error %v, want one about the region", err)
	}
}
