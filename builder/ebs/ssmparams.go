package ebs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
)

// Parameter Store's rules for what the build writes, checked in Prepare so
// that a build does not fail on them after an hour of baking.
const (
	// ssmImageDataType is the data type that makes Parameter Store check
	// that the value is an AMI the account can launch, and that
	// resolve:ssm: requires.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
	ssmImageDataType = "aws:ec2:image"
	// ssmMaxNameLength counts the parameter's ARN before the name:
	// "arn:aws:ssm:us-east-2:111222333444:parameter/ExampleParameterName"
	// is 65 characters, not 20.
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html#sysman-parameter-name-constraints
	ssmMaxNameLength = 1011
	// ssmMaxLevels is the deepest hierarchy a name may have.
	ssmMaxLevels = 15
	// ssmMaxLabels is how many labels one version can carry.
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_LabelParameterVersion.html
	ssmMaxLabels = 10
	// ssmMaxTags is how many tags a parameter can have.
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html
	ssmMaxTags = 50
	// ssmMaxDescription is the longest description PutParameter takes.
	ssmMaxDescription = 1024
)

var (
	ssmNameChars = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)
	// A label: letters, digits, . - _, up to 100 characters, not starting
	// with a digit (nor "aws" or "ssm", checked apart).
	// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-labels.html
	ssmLabel = regexp.MustCompile(`^[a-zA-Z._\-][a-zA-Z0-9._\-]{0,99}$`)
	// Tag keys and values as Systems Manager takes them.
	// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html
	ssmTagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

// ssmReserved reports whether s begins with "aws" or "ssm" in any case,
// which parameter names (their first level) and labels may not.
func ssmReserved(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "aws") || strings.HasPrefix(l, "ssm")
}

// partition is the ARN partition of an AWS region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	}
	return "aws"
}

// ssmParameterARNLength is the length of the parameter's ARN, which
// Parameter Store counts against ssmMaxNameLength. An account id always
// has 12 digits.
func ssmParameterARNLength(region, name string) int {
	return len("arn:" + partition(region) + ":ssm:" + region + ":123456789012:parameter/" + strings.TrimPrefix(name, "/"))
}

// checkSSMName returns the first reason why Parameter Store would refuse
// name, or "".
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
func checkSSMName(name, region string) string {
	if strings.ContainsAny(name, " \t\n") {
		return "must not contain spaces"
	}
	if !ssmNameChars.MatchString(name) {
		return "may contain only letters, digits and _ . - /"
	}
	levels := strings.Split(strings.TrimPrefix(name, "/"), "/")
	if strings.Contains(name, "/") && !strings.HasPrefix(name, "/") {
		return fmt.Sprintf("has levels, so it must begin with a /: %q", "/"+name)
	}
	for _, l := range levels {
		if l == "" {
			return "has an empty level (// or a / at the end)"
		}
	}
	if ssmReserved(levels[0]) {
		return `must not begin with "aws" or "ssm" (in any case)`
	}
	if len(levels) > ssmMaxLevels {
		return fmt.Sprintf("has %d levels; Parameter Store allows %d", len(levels), ssmMaxLevels)
	}
	if n := ssmParameterARNLength(region, name); n > ssmMaxNameLength {
		return fmt.Sprintf("is too long: with the ARN before it (arn:%s:ssm:%s:ACCOUNT:parameter/) it has %d characters; Parameter Store allows %d", partition(region), region, n, ssmMaxNameLength)
	}
	return ""
}

// ssmKey is the parameter a name means: "/web" and "web" are the same
// parameter, "/a/web" and "a/web" are not (the latter is no name at all).
func ssmKey(name string) string {
	if strings.Count(name, "/") == 1 {
		return strings.TrimPrefix(name, "/")
	}
	return name
}

// prepareSSMParameters defaults and checks the ssm_parameter blocks; it
// runs after ami_regions is settled. Each problem is one error naming
// the block and the setting.
func (c *Config) prepareSSMParameters() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	built := c.regions()
	seen := map[string]int{} // region and name -> block
	for i := range c.SSMParameters {
		p := &c.SSMParameters[i]
		where := fmt.Sprintf("ssm_parameter[%d]", i)
		if p.Region == "" {
			p.Region = c.Region
		}
		regionOK := true
		switch {
		case !awsconfig.RegionPattern.MatchString(p.Region):
			if p.Region != "" || c.Profile == "" { // a profile may still give the build region
				add("%s.region %q is not an AWS region name", where, p.Region)
			}
			regionOK = false
		case !contains(built, p.Region):
			add("%s.region %q is not a region this build makes an AMI in (%s): add it to ami_regions", where, p.Region, strings.Join(built, ", "))
			regionOK = false
		}
		switch {
		case p.Name == "":
			add("%s.name is required", where)
		default:
			if why := checkSSMName(p.Name, p.Region); why != "" {
				add("%s.name %q %s", where, p.Name, why)
			} else if regionOK {
				key := p.Region + " " + ssmKey(p.Name)
				if j, dup := seen[key]; dup {
					add("%s writes %q in %s, as ssm_parameter[%d] does: one block per parameter", where, p.Name, p.Region, j)
				} else {
					seen[key] = i
				}
			}
		}
		if len(p.Labels) > ssmMaxLabels {
			add("%s.labels has %d labels; a parameter version takes at most %d", where, len(p.Labels), ssmMaxLabels)
		}
		seenLabel := map[string]bool{}
		for _, l := range p.Labels {
			switch {
			case !ssmLabel.MatchString(l) || ssmReserved(l):
				add(`%s.labels: %q is not a parameter label: 1 to 100 letters, digits, . - _, not beginning with a digit, "aws" or "ssm"`, where, l)
			case seenLabel[l]:
				add("%s.labels: %q appears twice", where, l)
			}
			seenLabel[l] = true
		}
		if len(p.Tags) > ssmMaxTags {
			add("%s.tags has %d tags; a parameter takes at most %d", where, len(p.Tags), ssmMaxTags)
		}
		for _, k := range sortedKeys(p.Tags) {
			v := p.Tags[k]
			switch {
			case k == "" || utf8.RuneCountInString(k) > 128 || !ssmTagChars.MatchString(k):
				add("%s.tags: key %q must be 1 to 128 letters, digits, spaces and _ . : / = + - @", where, k)
			case strings.HasPrefix(strings.ToLower(k), "aws:"):
				add("%s.tags: key %q: keys beginning with aws: are AWS's", where, k)
			case utf8.RuneCountInString(v) > 256 || !ssmTagChars.MatchString(v):
				add("%s.tags: the value of %q must be up to 256 letters, digits, spaces and _ . : / = + - @", where, k)
			}
		}
		if n := utf8.RuneCountInString(p.Description); n > ssmMaxDescription {
			add("%s.description has %d characters; at most %d", where, n, ssmMaxDescription)
		}
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
