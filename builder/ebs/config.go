//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config,AMIFilter,SubnetFilter,MetadataOptions,BlockDevice,SSMParameter
//go:generate ../../scripts/struct-markdown.sh

package ebs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// AMIFilter selects the source AMI by owners and filters, like
// DescribeImages.
type AMIFilter struct {
	// Filters as in DescribeImages, e.g. `name = "debian-12-amd64-*"`.
	// Values may use * and ? wildcards.
	Filters map[string]string `mapstructure:"filters"`
	// Account ids or aliases (`self`, `amazon`) that must own the image.
	// Required, so a look-alike public image cannot be picked.
	Owners []string `mapstructure:"owners"`
	// Pick the newest image when several match, instead of failing.
	MostRecent bool `mapstructure:"most_recent"`
}

// Empty reports whether no filter was given.
func (f *AMIFilter) Empty() bool { return len(f.Filters) == 0 && len(f.Owners) == 0 && !f.MostRecent }

// SubnetFilter selects the subnet to build in.
type SubnetFilter struct {
	// Filters as in DescribeSubnets, e.g. `"tag:Name" = "build-*"`.
	Filters map[string]string `mapstructure:"filters"`
	// Pick the matching subnet with the most free addresses, instead of
	// failing when several match.
	MostFree bool `mapstructure:"most_free"`
}

// MetadataOptions are the build instance's instance metadata (IMDS)
// settings. The default requires IMDSv2 session tokens.
type MetadataOptions struct {
	// `required` (default: IMDSv2 only) or `optional`.
	HttpTokens string `mapstructure:"http_tokens"`
	// `enabled` (default) or `disabled`.
	HttpEndpoint string `mapstructure:"http_endpoint"`
	// How many network hops a metadata response may travel, 1 to 64. Default 1.
	HttpPutResponseHopLimit int `mapstructure:"http_put_response_hop_limit"`
	// `enabled` to expose instance tags in the metadata, or `disabled` (default).
	InstanceMetadataTags string `mapstructure:"instance_metadata_tags"`
}

// BlockDevice is a block device of the build instance.
type BlockDevice struct {
	// The device name, e.g. `/dev/xvdb`.
	DeviceName string `mapstructure:"device_name" required:"true"`
	// Size in GiB; defaults to the snapshot's size.
	VolumeSize int `mapstructure:"volume_size"`
	// `gp3` (default), `gp2`, `io1`, `io2`, `st1`, `sc1` or `standard`.
	VolumeType string `mapstructure:"volume_type"`
	// Provisioned IOPS for io1/io2/gp3.
	IOPS int `mapstructure:"iops"`
	// Throughput in MiB/s for gp3.
	Throughput int `mapstructure:"throughput"`
	// Create the volume from this snapshot.
	SnapshotID string `mapstructure:"snapshot_id"`
	// Delete the volume when the instance terminates. Default true.
	DeleteOnTermination *bool `mapstructure:"delete_on_termination"`
}

// SSMParameter is an SSM parameter the build writes its AMI id to, so
// that launch templates whose image is `resolve:ssm:NAME` launch it.
type SSMParameter struct {
	// The parameter's name, e.g. `/web/ami`: letters, digits and `_ . - /`,
	// starting with `/` when it has levels, at most 15 levels, not starting
	// with `aws` or `ssm`.
	Name string `mapstructure:"name" required:"true"`
	// The parameter's region, which gets that region's AMI: the build
	// region (default) or one of ami_regions.
	Region string `mapstructure:"region"`
	// Labels to attach to the version the build writes; a label on an
	// older version of the parameter moves to it.
	Labels []string `mapstructure:"labels"`
	// Tags for the parameter, set only when the build creates it (AWS takes
	// no tags on an overwrite).
	Tags map[string]string `mapstructure:"tags"`
	// The parameter's description, at most 1024 characters.
	Description string `mapstructure:"description"`
}

// Config is the phoenix-ebs builder's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`
	awsconfig.Settings  `mapstructure:",squash"`

	// The source AMI id. Either this or source_ami_filter is required.
	SourceAMI string `mapstructure:"source_ami"`
	// Find the source AMI by owners and filters.
	SourceAMIFilter AMIFilter `mapstructure:"source_ami_filter"`

	// The build instance's type, e.g. `t3.small`.
	InstanceType string `mapstructure:"instance_type" required:"true"`
	// The subnet to build in. Defaults to a default subnet of the default VPC.
	SubnetID string `mapstructure:"subnet_id"`
	// Find the subnet by filters instead of naming it.
	SubnetFilter SubnetFilter `mapstructure:"subnet_filter"`
	// Existing security groups for the build instance. When empty, a
	// temporary group is created that admits SSH only from the builder.
	SecurityGroupIDs []string `mapstructure:"security_group_ids"`
	// CIDR blocks the temporary security group admits SSH from. Defaults to
	// the builder's own address (/32); set this when the builder reaches
	// instances through NAT.
	TemporarySGSourceCIDRs []string `mapstructure:"temporary_security_group_source_cidrs"`
	// An IAM instance profile name or ARN for the build instance.
	IAMInstanceProfile string `mapstructure:"iam_instance_profile"`
	// User data for the build instance.
	UserData string `mapstructure:"user_data"`
	// A file whose contents are the user data.
	UserDataFile string `mapstructure:"user_data_file"`
	// Instance metadata settings; IMDSv2 is required by default.
	MetadataOptions MetadataOptions `mapstructure:"metadata_options"`
	// Extra or changed block devices of the build instance.
	LaunchBlockDeviceMappings []BlockDevice `mapstructure:"launch_block_device_mappings"`
	// Root volume size in GiB; defaults to the source AMI's.
	RootVolumeSize int `mapstructure:"root_volume_size"`
	// Root volume type. Default `gp3`.
	RootVolumeType string `mapstructure:"root_volume_type"`
	// Tags for the build instance and its volumes. Templated like tags.
	RunTags map[string]string `mapstructure:"run_tags"`

	Comm                      communicator.Config `mapstructure:",squash"`
	communicator.SSHInterface `mapstructure:",squash"`

	// The AMI's name, templated (e.g. `web-{{timestamp}}`). 3 to 128
	// characters: letters, digits, spaces and ( ) [ ] . / - ' @ _.
	AMIName string `mapstructure:"ami_name" required:"true"`
	// The AMI's description. Templated like tags.
	AMIDescription string `mapstructure:"ami_description"`
	// Encrypt the build instance's volumes and so the AMI's snapshots.
	// Default true; snapshots are encrypted from the first write, with no
	// throw-away AMI and no encrypting copy.
	Encrypt *bool `mapstructure:"encrypt"`
	// The KMS key (id, ARN or alias) for the build region. Defaults to the
	// account's EBS default key (alias/aws/ebs).
	KMSKeyID string `mapstructure:"kms_key_id"`
	// More regions to copy the AMI to, in parallel.
	AMIRegions []string `mapstructure:"ami_regions"`
	// The KMS key to use in each copy region, by region. Regions without an
	// entry use that region's EBS default key.
	RegionKMSKeyIDs map[string]string `mapstructure:"region_kms_key_ids"`
	// Tags for the AMI and its snapshots in every region, set at creation.
	// Values are templated with the build's data: `{{ .SourceAMI }}`,
	// `{{ .SourceAMIName }}`, `{{ .BuildRegion }}`.
	Tags map[string]string `mapstructure:"tags"`
	// Extra tags for the snapshots only.
	SnapshotTags map[string]string `mapstructure:"snapshot_tags"`
	// `v2.0` (default) makes instances launched from the AMI require IMDSv2;
	// `""` leaves it to the launch.
	IMDSSupport *string `mapstructure:"imds_support"`
	// When the AMI becomes deprecated, RFC 3339 (`2027-01-01T00:00:00Z`).
	DeprecateAt string `mapstructure:"deprecate_at"`
	// Deprecate the AMI this long after the build, e.g. `2160h` (90 days).
	DeprecateAfter time.Duration `mapstructure:"deprecate_after"`
	// Account ids allowed to launch the AMI.
	AMIUsers []string `mapstructure:"ami_users"`
	// Groups allowed to launch the AMI; `all` makes it public.
	AMIGroups []string `mapstructure:"ami_groups"`
	// AWS Organizations ARNs allowed to launch the AMI.
	AMIOrgARNs []string `mapstructure:"ami_org_arns"`
	// Organizational unit ARNs allowed to launch the AMI.
	AMIOUARNs []string `mapstructure:"ami_ou_arns"`
	// Account ids allowed to create volumes from the AMI's snapshots, which
	// another account needs to copy the AMI (phoenix promote across accounts);
	// launching needs only `ami_users`. Snapshots cannot be shared with an
	// organization or OU.
	SnapshotUsers []string `mapstructure:"snapshot_users"`
	// Groups allowed to create volumes from the AMI's snapshots; `all` makes
	// them public, which AWS refuses for encrypted snapshots.
	SnapshotGroups []string `mapstructure:"snapshot_groups"`
	// Deregister an existing AMI with the same name (in every target region) first.
	ForceDeregister bool `mapstructure:"force_deregister"`
	// With force_deregister, also delete the old AMI's snapshots.
	ForceDeleteSnapshot bool `mapstructure:"force_delete_snapshot"`
	// Run the instance and the provisioners but create no AMI.
	SkipCreateAMI bool `mapstructure:"skip_create_ami"`
	// Write the AMI id to an SSM parameter of type String and data type
	// `aws:ec2:image`, as the build's last step (one block per parameter).
	SSMParameters []SSMParameter `mapstructure:"ssm_parameter"`

	// How long to wait for the build instance to be running. Default 10m.
	InstanceRunningTimeout time.Duration `mapstructure:"instance_running_timeout"`
	// How long to wait for the build instance to stop. Default 10m.
	InstanceStoppedTimeout time.Duration `mapstructure:"instance_stopped_timeout"`
	// How long to wait for the build instance to terminate on cleanup. Default 10m.
	InstanceTerminatedTimeout time.Duration `mapstructure:"instance_terminated_timeout"`
	// How long to wait for the AMI to become available. Default 60m.
	AMIReadyTimeout time.Duration `mapstructure:"ami_ready_timeout"`
	// How long to wait for each region copy to become available. Default 90m.
	AMICopyTimeout time.Duration `mapstructure:"ami_copy_timeout"`
	// How long to wait for Parameter Store to validate each parameter
	// version the build writes (and, on failure, puts back). Default 5m.
	SSMParameterTimeout time.Duration `mapstructure:"ssm_parameter_timeout"`
	// How often to poll AWS while waiting, at first: a wait that goes on polls every quarter of the time it has waited, up to four times this. Default 5s.
	PollInterval time.Duration `mapstructure:"poll_interval"`

	ctx interpolate.Context
}

// Defaults for the named waits.
const (
	defaultInstanceTimeout = 10 * time.Minute
	defaultAMIReadyTimeout = 60 * time.Minute
	defaultAMICopyTimeout  = 90 * time.Minute
	defaultSSMTimeout      = 5 * time.Minute
	defaultPollInterval    = 5 * time.Second
	defaultIMDSSupport     = "v2.0"
)

var (
	amiNamePattern = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)
	accountPattern = regexp.MustCompile(`^\d{12}$`)
)

// badDuration is the decoder's message for a duration it cannot parse.
var badDuration = regexp.MustCompile(`^error decoding '([^']+)': time: .*"([^"]*)"$`)

// decodeError rewrites the decoder's messages about durations, which
// quote Go's parser, into ones that say what a duration looks like.
func decodeError(err error) error {
	w, ok := err.(interface{ WrappedErrors() []error })
	if !ok {
		return err
	}
	var errs *packersdk.MultiError
	for _, e := range w.WrappedErrors() {
		if m := badDuration.FindStringSubmatch(e.Error()); m != nil {
			e = fmt.Errorf("%s %q is not a duration (e.g. \"90s\", \"5m\")", m[1], m[2])
		}
		errs = packersdk.MultiErrorAppend(errs, e)
	}
	return errs
}

// Prepare decodes raws into c, applies defaults and reports every problem
// at once. It makes no AWS call.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter: &interpolate.RenderFilter{
			Exclude: []string{"ami_description", "run_tags", "tags", "snapshot_tags"},
		},
	}, raws...)
	if err != nil {
		return nil, decodeError(err)
	}
	var errs *packersdk.MultiError
	add := func(e error) { errs = packersdk.MultiErrorAppend(errs, e) }
	var warnings []string

	for _, e := range c.Settings.Validate() {
		add(e)
	}
	// Settings.Validate checked a region set here; one from the
	// environment is checked now.
	if c.Region == "" {
		if r := firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"); r != "" {
			c.Region = r
			if !awsconfig.RegionPattern.MatchString(r) {
				add(fmt.Errorf("region %q (from the environment) is not an AWS region name such as us-east-1", r))
			}
		} else if c.Profile == "" {
			add(errors.New("region is required (or set AWS_REGION, or a profile with a region)"))
		}
	}

	// Source.
	switch {
	case c.SourceAMI == "" && c.SourceAMIFilter.Empty():
		add(errors.New("source_ami or source_ami_filter is required"))
	case c.SourceAMI != "" && !c.SourceAMIFilter.Empty():
		add(errors.New("source_ami and source_ami_filter cannot both be set"))
	case c.SourceAMI != "" && !strings.HasPrefix(c.SourceAMI, "ami-"):
		add(fmt.Errorf("source_ami %q is not an AMI id (ami-…)", c.SourceAMI))
	case !c.SourceAMIFilter.Empty() && len(c.SourceAMIFilter.Owners) == 0:
		add(errors.New("source_ami_filter.owners is required, so that a look-alike public image cannot be chosen"))
	}

	// Launch.
	if c.InstanceType == "" {
		add(errors.New("instance_type is required"))
	}
	if c.SubnetID != "" && len(c.SubnetFilter.Filters) > 0 {
		add(errors.New("subnet_id and subnet_filter cannot both be set"))
	}
	if len(c.SecurityGroupIDs) > 0 && len(c.TemporarySGSourceCIDRs) > 0 {
		add(errors.New("temporary_security_group_source_cidrs applies only without security_group_ids"))
	}
	for _, cidr := range c.TemporarySGSourceCIDRs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			add(fmt.Errorf("temporary_security_group_source_cidrs: %q is not a CIDR block", cidr))
		}
	}
	if c.UserData != "" && c.UserDataFile != "" {
		add(errors.New("user_data and user_data_file cannot both be set"))
	}
	if c.UserDataFile != "" {
		if _, err := os.Stat(c.UserDataFile); err != nil {
			add(fmt.Errorf("user_data_file: %w", err))
		}
	}
	md := &c.MetadataOptions
	if md.HttpTokens == "" {
		md.HttpTokens = "required"
	}
	if md.HttpEndpoint == "" {
		md.HttpEndpoint = "enabled"
	}
	if md.HttpPutResponseHopLimit == 0 {
		md.HttpPutResponseHopLimit = 1
	}
	if md.InstanceMetadataTags == "" {
		md.InstanceMetadataTags = "disabled"
	}
	checkEnum := func(setting, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		add(fmt.Errorf("%s %q must be one of %s", setting, v, strings.Join(allowed, ", ")))
	}
	checkEnum("metadata_options.http_tokens", md.HttpTokens, "required", "optional")
	checkEnum("metadata_options.http_endpoint", md.HttpEndpoint, "enabled", "disabled")
	checkEnum("metadata_options.instance_metadata_tags", md.InstanceMetadataTags, "enabled", "disabled")
	if md.HttpPutResponseHopLimit < 1 || md.HttpPutResponseHopLimit > 64 {
		add(fmt.Errorf("metadata_options.http_put_response_hop_limit %d must be between 1 and 64", md.HttpPutResponseHopLimit))
	}
	if md.HttpTokens == "optional" {
		warnings = append(warnings, "metadata_options.http_tokens = \"optional\" allows IMDSv1 on the build instance")
	}
	volumeTypes := []string{"gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"}
	if c.RootVolumeType == "" {
		c.RootVolumeType = "gp3"
	}
	checkEnum("root_volume_type", c.RootVolumeType, volumeTypes...)
	if c.RootVolumeSize < 0 {
		add(fmt.Errorf("root_volume_size %d must be positive", c.RootVolumeSize))
	}
	seenDev := map[string]bool{}
	for i, b := range c.LaunchBlockDeviceMappings {
		where := fmt.Sprintf("launch_block_device_mappings[%d]", i)
		if b.DeviceName == "" {
			add(fmt.Errorf("%s.device_name is required", where))
		} else if seenDev[b.DeviceName] {
			add(fmt.Errorf("%s.device_name %q appears twice", where, b.DeviceName))
		}
		seenDev[b.DeviceName] = true
		if b.VolumeType != "" {
			checkEnum(where+".volume_type", b.VolumeType, volumeTypes...)
		}
		if b.VolumeSize < 0 {
			add(fmt.Errorf("%s.volume_size %d must be positive", where, b.VolumeSize))
		}
	}

	// Communicator: a temporary ed25519 key pair unless the user brings keys.
	if c.Comm.Type == "" {
		c.Comm.Type = "ssh"
	}
	if c.Comm.SSHTemporaryKeyPairType == "" {
		c.Comm.SSHTemporaryKeyPairType = "ed25519"
	}
	if c.Comm.SSHUsername == "" && c.Comm.Type == "ssh" {
		add(errors.New("ssh_username is required (admin for Debian, ubuntu for Ubuntu, ec2-user for Amazon Linux)"))
	}
	for _, e := range c.Comm.Prepare(&c.ctx) {
		add(e)
	}
	if c.SSHInterface.SSHInterface != "" {
		checkEnum("ssh_interface", c.SSHInterface.SSHInterface, "public_ip", "private_ip", "public_dns", "private_dns")
	}

	// AMI.
	if c.AMIName == "" && !c.SkipCreateAMI {
		add(errors.New("ami_name is required"))
	} else if c.AMIName != "" && !amiNamePattern.MatchString(c.AMIName) {
		add(fmt.Errorf("ami_name %q must be 3 to 128 characters of letters, digits, spaces and ( ) [ ] . / - ' @ _", c.AMIName))
	}
	if c.Encrypt == nil {
		t := true
		c.Encrypt = &t
	}
	if !*c.Encrypt {
		if c.KMSKeyID != "" {
			add(errors.New("kms_key_id requires encrypt = true"))
		}
		if len(c.RegionKMSKeyIDs) > 0 {
			add(errors.New("region_kms_key_ids requires encrypt = true"))
		}
		warnings = append(warnings, "encrypt = false: the AMI's snapshots will not be encrypted")
	}
	seenRegion := map[string]bool{c.Region: true}
	var regions []string
	for _, r := range c.AMIRegions {
		if !awsconfig.RegionPattern.MatchString(r) {
			add(fmt.Errorf("ami_regions: %q is not an AWS region name", r))
			continue
		}
		if seenRegion[r] {
			continue // the build region and duplicates are no copies
		}
		seenRegion[r] = true
		regions = append(regions, r)
	}
	sort.Strings(regions)
	c.AMIRegions = regions
	for r := range c.RegionKMSKeyIDs {
		if r != c.Region && !contains(c.AMIRegions, r) {
			add(fmt.Errorf("region_kms_key_ids has a key for %s, which is not in ami_regions", r))
		}
	}
	if k, ok := c.RegionKMSKeyIDs[c.Region]; ok && c.KMSKeyID != "" && k != c.KMSKeyID {
		add(fmt.Errorf("kms_key_id and region_kms_key_ids[%q] disagree; set one", c.Region))
	}
	if c.IMDSSupport == nil {
		v := defaultIMDSSupport
		c.IMDSSupport = &v
	} else if *c.IMDSSupport != "" && *c.IMDSSupport != defaultIMDSSupport {
		add(fmt.Errorf("imds_support %q must be \"v2.0\" or \"\"", *c.IMDSSupport))
	}
	if c.DeprecateAt != "" && c.DeprecateAfter != 0 {
		add(errors.New("deprecate_at and deprecate_after cannot both be set"))
	}
	if c.DeprecateAt != "" {
		if _, err := time.Parse(time.RFC3339, c.DeprecateAt); err != nil {
			add(fmt.Errorf("deprecate_at %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", c.DeprecateAt))
		}
	}
	if c.DeprecateAfter < 0 {
		add(fmt.Errorf("deprecate_after %s must be positive", c.DeprecateAfter))
	}
	for _, u := range c.AMIUsers {
		if !accountPattern.MatchString(u) {
			add(fmt.Errorf("ami_users: %q is not a 12-digit account id", u))
		}
	}
	for _, g := range c.AMIGroups {
		if g != "all" {
			add(fmt.Errorf("ami_groups: %q is not a group; the only group is \"all\"", g))
		}
	}
	if c.sharesAMI() && *c.Encrypt && (c.KMSKeyID == "" || strings.HasSuffix(c.KMSKeyID, "alias/aws/ebs")) {
		add(errors.New("ami_users, ami_groups, ami_org_arns and ami_ou_arns need kms_key_id set to a customer managed key: images encrypted under the AWS managed key (alias/aws/ebs) cannot be shared"))
	}
	// Snapshots share with accounts or with everyone ("all"), never with an
	// organization; encrypted ones never with everyone, nor under the AWS
	// managed key.
	// https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html
	for _, u := range c.SnapshotUsers {
		if !accountPattern.MatchString(u) {
			add(fmt.Errorf("snapshot_users: %q is not a 12-digit account id", u))
		}
	}
	for _, g := range c.SnapshotGroups {
		if g != "all" {
			add(fmt.Errorf("snapshot_groups: %q is not a group; the only group is \"all\"", g))
		} else if *c.Encrypt {
			add(errors.New("snapshot_groups: encrypted snapshots cannot be made public (\"all\"); share them with snapshot_users, or set encrypt = false"))
		}
	}
	if len(c.SnapshotUsers) > 0 && *c.Encrypt && (c.KMSKeyID == "" || strings.HasSuffix(c.KMSKeyID, "alias/aws/ebs")) {
		add(errors.New("snapshot_users needs kms_key_id set to a customer managed key: snapshots encrypted under the AWS managed key (alias/aws/ebs) cannot be shared"))
	}
	if c.ForceDeleteSnapshot && !c.ForceDeregister {
		add(errors.New("force_delete_snapshot requires force_deregister"))
	}
	if c.SkipCreateAMI && (len(c.AMIRegions) > 0 || c.sharesAMI() || len(c.SSMParameters) > 0) {
		warnings = append(warnings, "skip_create_ami is set: ami_regions, ssm_parameter and sharing settings are ignored")
	}
	for _, e := range c.prepareSSMParameters() {
		add(e)
	}

	// Waits.
	for _, w := range []struct {
		setting string
		v       *time.Duration
		def     time.Duration
	}{
		{"instance_running_timeout", &c.InstanceRunningTimeout, defaultInstanceTimeout},
		{"instance_stopped_timeout", &c.InstanceStoppedTimeout, defaultInstanceTimeout},
		{"instance_terminated_timeout", &c.InstanceTerminatedTimeout, defaultInstanceTimeout},
		{"ami_ready_timeout", &c.AMIReadyTimeout, defaultAMIReadyTimeout},
		{"ami_copy_timeout", &c.AMICopyTimeout, defaultAMICopyTimeout},
		{"ssm_parameter_timeout", &c.SSMParameterTimeout, defaultSSMTimeout},
		{"poll_interval", &c.PollInterval, defaultPollInterval},
	} {
		if *w.v < 0 {
			add(fmt.Errorf("%s %s must be positive", w.setting, *w.v))
		}
		if *w.v == 0 {
			*w.v = w.def
		}
	}

	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

func (c *Config) sharesAMI() bool {
	return len(c.AMIUsers)+len(c.AMIGroups)+len(c.AMIOrgARNs)+len(c.AMIOUARNs) > 0
}

func (c *Config) sharesSnapshots() bool {
	return len(c.SnapshotUsers)+len(c.SnapshotGroups) > 0
}

// regions returns the build region then the copy regions.
func (c *Config) regions() []string { return append([]string{c.Region}, c.AMIRegions...) }

// kmsKeyFor returns the key the AMI uses in region ("" means the region's
// EBS default key).
func (c *Config) kmsKeyFor(region string) string {
	if region == c.Region && c.KMSKeyID != "" {
		return c.KMSKeyID
	}
	return c.RegionKMSKeyIDs[region]
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
