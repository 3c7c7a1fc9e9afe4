//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Settings,AssumeRole
//go:generate ../../scripts/struct-markdown.sh

// Package awsconfig is the one place that turns phoenix's access settings
// (region, profile, static keys, assume role, endpoint, retries) into an
// aws.Config. The builder, the post-processor and the CLI all use it, so a
// setting means the same everywhere.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AssumeRole configures a role to assume after the base credentials.
type AssumeRole struct {
	// The ARN of the role to assume, e.g. arn:aws:iam::123456789012:role/packer.
	RoleARN string `mapstructure:"role_arn" hcl:"role_arn,optional"`
	// The session name shown in CloudTrail. Defaults to phoenix-<unix time>.
	SessionName string `mapstructure:"session_name" hcl:"session_name,optional"`
	// The external id the role's trust policy requires, if any.
	ExternalID string `mapstructure:"external_id" hcl:"external_id,optional"`
	// How long the assumed credentials last, as a duration ("1h"). Defaults to 1h.
	Duration string `mapstructure:"duration" hcl:"duration,optional"`
}

// Settings are the access settings every phoenix component shares.
type Settings struct {
	// The AWS region to work in, e.g. us-east-1. Defaults to AWS_REGION or the profile's region.
	Region string `mapstructure:"region" hcl:"region,optional"`
	// A named profile from the shared AWS config and credentials files.
	Profile string `mapstructure:"profile" hcl:"profile,optional"`
	// A static access key. Prefer profiles, SSO or instance roles.
	AccessKey string `mapstructure:"access_key" hcl:"access_key,optional"`
	// The secret key that goes with access_key.
	SecretKey string `mapstructure:"secret_key" hcl:"secret_key,optional"`
	// A session token that goes with temporary access keys.
	Token string `mapstructure:"token" hcl:"token,optional"`
	// Assume this role on top of the base credentials.
	AssumeRole AssumeRole `mapstructure:"assume_role" hcl:"assume_role,block"`
	// An endpoint URL for every AWS service, e.g. the phoenix sandbox. The
	// standard AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> variables work too.
	Endpoint string `mapstructure:"endpoint" hcl:"endpoint,optional"`
	// How many times the SDK retries a throttled or failed call. Defaults to 10.
	MaxRetries int `mapstructure:"max_retries" hcl:"max_retries,optional"`
}

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+$`)

// RegionPattern matches AWS region names: us-east-1, us-gov-west-1,
// us-isob-east-1.
var RegionPattern = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)

// Validate reports every problem with the settings, each naming the
// setting, with prefix before the names (e.g. "" or "assume_role.").
func (s *Settings) Validate() []error {
	var errs []error
	if s.Region != "" && !RegionPattern.MatchString(s.Region) {
		errs = append(errs, fmt.Errorf("region %q is not an AWS region name such as us-east-1", s.Region))
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		errs = append(errs, errors.New("access_key and secret_key must be set together"))
	}
	if s.AccessKey != "" && s.Profile != "" {
		errs = append(errs, errors.New("profile and access_key cannot both be set: choose one source of credentials"))
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint %q is not an http(s) URL", s.Endpoint))
		}
	}
	if s.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("max_retries %d must be 0 or more", s.MaxRetries))
	}
	ar := s.AssumeRole
	if ar.RoleARN == "" && (ar.SessionName != "" || ar.ExternalID != "" || ar.Duration != "") {
		errs = append(errs, errors.New("assume_role.role_arn is required when other assume_role settings are set"))
	}
	if ar.RoleARN != "" && !roleARN.MatchString(ar.RoleARN) {
		errs = append(errs, fmt.Errorf("assume_role.role_arn %q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", ar.RoleARN))
	}
	if ar.Duration != "" {
		d, err := time.ParseDuration(ar.Duration)
		if err != nil {
			errs = append(errs, fmt.Errorf("assume_role.duration %q is not a duration (e.g. \"1h\")", ar.Duration))
		} else if d < 15*time.Minute || d > 12*time.Hour {
			errs = append(errs, fmt.Errorf("assume_role.duration %s must be between 15m and 12h", ar.Duration))
		}
	}
	return errs
}

// ErrNoRegion is Load's error when neither the settings, the environment
// nor the profile name a region.
var ErrNoRegion = errors.New("no AWS region: set region, AWS_REGION or a profile's region")

// DefaultMaxRetries is how many attempts the SDK makes when max_retries is
// not set: generous, since a build is long and throttling is common.
const DefaultMaxRetries = 10

// Load builds an aws.Config for region (the settings' region when empty).
// It makes no AWS call: credentials are resolved lazily by the SDK.
func (s *Settings) Load(ctx context.Context, region string) (aws.Config, error) {
	if region == "" {
		region = s.Region
	}
	opts := []func(*config.LoadOptions) error{}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, s.Token)))
	}
	if s.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(s.Endpoint))
	}
	attempts := s.MaxRetries
	if attempts == 0 {
		attempts = DefaultMaxRetries
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts + 1
			o.MaxBackoff = 20 * time.Second
			// A build or a deploy must ride out throttling, not fail on
			// the client's own rate limit.
			o.RateLimiter = noRateLimit{}
		})
	}))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	if ar := s.AssumeRole; ar.RoleARN != "" {
		name := ar.SessionName
		if name == "" {
			name = fmt.Sprintf("phoenix-%d", time.Now().Unix())
		}
		dur := time.Hour
		if ar.Duration != "" {
			if d, err := time.ParseDuration(ar.Duration); err == nil {
				dur = d
			}
		}
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), ar.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = name
			o.Duration = dur
			if ar.ExternalID != "" {
				o.ExternalID = aws.String(ar.ExternalID)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return cfg, nil
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }
