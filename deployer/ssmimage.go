package deployer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// A launch template may name its image by an SSM parameter,
// "resolve:ssm:/web/ami", and EC2 resolves it at every launch:
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id
// That is how infrastructure code can leave the image to phoenix: the
// template never changes, a deploy moves the parameter. Writing the
// parameter first would make every launch use an image that has not
// passed the gate, and Auto Scaling neither refreshes to nor rolls back
// such a template with a desired configuration:
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html
// So a deploy holds the group on a copy of its version with the AMI the
// parameter resolves to written out, deploys as for any template, and
// moves the parameter only once the new image has passed the gate; then
// the group goes back to the version that names the parameter.

const aliasPrefix = "resolve:ssm:"

// imageParam is the parameter an image alias names.
type imageParam struct {
	Name     string // the parameter's name
	Selector string // a version number or label after the name, or ""
}

func (p imageParam) ref() string {
	if p.Selector == "" {
		return p.Name
	}
	return p.Name + ":" + p.Selector
}

// label is the selector when it is a label (not a version number).
func (p imageParam) label() string {
	if _, err := strconv.Atoi(p.Selector); err == nil {
		return ""
	}
	return p.Selector
}

// parseAlias reads "resolve:ssm:NAME[:VERSION|:LABEL]", NAME being a
// parameter name or ARN.
func parseAlias(alias string) imageParam {
	rest := strings.TrimPrefix(alias, aliasPrefix)
	if strings.HasPrefix(rest, "arn:") {
		// arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, where a hierarchical
		// name loses its leading slash.
		if i := strings.Index(rest, ":parameter/"); i >= 0 {
			rest = rest[i+len(":parameter/"):]
			if strings.Contains(strings.SplitN(rest, ":", 2)[0], "/") {
				rest = "/" + rest
			}
		}
	}
	name, sel, _ := strings.Cut(rest, ":")
	return imageParam{Name: name, Selector: sel}
}

// resolveAlias returns the AMI an image alias resolves to now.
func (s *Session) resolveAlias(ctx context.Context, alias string) (string, error) {
	p := parseAlias(alias)
	out, err := s.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.ref())})
	var nf *ssmtypes.ParameterNotFound
	var vnf *ssmtypes.ParameterVersionNotFound
	if errors.As(err, &nf) || errors.As(err, &vnf) {
		return "", refuse("its image is %s, and SSM parameter %s does not exist: every launch would fail; create the parameter (phoenix-ebs ssm_parameter publishes it) or fix the launch template", alias, p.ref())
	}
	if err != nil {
		return "", fmt.Errorf("reading SSM parameter %s (the launch template's image %s): %w", p.ref(), alias, err)
	}
	prm := out.Parameter
	if dt := aws.ToString(prm.DataType); dt != "aws:ec2:image" {
		return "", refuse("its image is %s, and SSM parameter %s has data type %q, not aws:ec2:image: EC2 launches only from an aws:ec2:image parameter; write it with --data-type aws:ec2:image", alias, p.Name, dt)
	}
	return aws.ToString(prm.Value), nil
}

// publishImage writes ami as the parameter's new version and returns the
// version; with a label selector the label moves to it once SSM has
// validated the version.
func (s *Session) publishImage(ctx context.Context, p imageParam, ami string) (int64, error) {
	out, err := s.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(p.Name), Value: aws.String(ami), Type: ssmtypes.ParameterTypeString,
		DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(true)})
	if err != nil {
		return 0, fmt.Errorf("writing %s to SSM parameter %s: %w", ami, p.Name, err)
	}
	return out.Version, nil
}

// imageVersionReady reports whether SSM has validated version of the
// parameter (aws:ec2:image values are validated after PutParameter
// answers; until then the version cannot be read):
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
func (s *Session) imageVersionReady(ctx context.Context, p imageParam, version int64, ami string) (bool, error) {
	out, err := s.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.Name + ":" + strconv.FormatInt(version, 10))})
	var nf *ssmtypes.ParameterNotFound
	var vnf *ssmtypes.ParameterVersionNotFound
	if errors.As(err, &nf) || errors.As(err, &vnf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading SSM parameter %s version %d: %w", p.Name, version, err)
	}
	if v := aws.ToString(out.Parameter.Value); v != ami {
		return false, fmt.Errorf("SSM parameter %s version %d is %s, not %s", p.Name, version, v, ami)
	}
	return true, nil
}

// previousImage is the AMI the parameter held before its current value,
// from its history: what phoenix rollback returns to.
func (s *Session) previousImage(ctx context.Context, p imageParam, current string) (string, error) {
	versions, err := s.parameterHistory(ctx, p.Name)
	if err != nil {
		return "", err
	}
	// The current version is the labelled one, or the newest.
	cur := len(versions) - 1
	if l := p.label(); l != "" {
		for i, v := range versions {
			if contains(v.Labels, l) {
				cur = i
			}
		}
	}
	for i := cur - 1; i >= 0; i-- {
		if v := aws.ToString(versions[i].Value); v != current && v != "" {
			return v, nil
		}
	}
	return "", refuse("SSM parameter %s has no earlier image than %s in its history: there is nothing to roll back to", p.Name, current)
}

// labelVersion moves the selector's label to version.
func (s *Session) labelVersion(ctx context.Context, p imageParam, version int64) error {
	if _, err := s.Clients.SSM.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String(p.Name), ParameterVersion: aws.Int64(version), Labels: []string{p.label()}}); err != nil {
		return fmt.Errorf("moving label %s of SSM parameter %s to version %d: %w", p.label(), p.Name, version, err)
	}
	return nil
}

// publishTimeout bounds the wait for SSM to validate a new image version.
const publishTimeout = 10 * time.Minute

// keptParameterVersions is how many of an image parameter's newest
// versions status shows and images prune keeps the AMIs of, as rollback
// targets.
const keptParameterVersions = 5

// ImageParameter is an image parameter as status shows it.
type ImageParameter struct {
	Name     string `json:"name"`
	Selector string `json:"selector,omitempty"`
	// Versions are its newest versions, newest first, and every labelled
	// one.
	Versions []ParameterVersion `json:"versions"`
}

// ParameterVersion is one version of an image parameter.
type ParameterVersion struct {
	Version  int64     `json:"version"`
	AMI      string    `json:"ami"`
	Labels   []string  `json:"labels,omitempty"`
	Modified time.Time `json:"modified"`
}

// imageParameter reads the parameter an alias names, with its history.
func (s *Session) imageParameter(ctx context.Context, alias string) (*ImageParameter, error) {
	p := parseAlias(alias)
	versions, err := s.parameterHistory(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	ip := &ImageParameter{Name: p.Name, Selector: p.Selector}
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if i >= len(versions)-keptParameterVersions || len(v.Labels) > 0 {
			ip.Versions = append(ip.Versions, ParameterVersion{Version: v.Version, AMI: aws.ToString(v.Value), Labels: v.Labels, Modified: aws.ToTime(v.LastModifiedDate).UTC()})
		}
	}
	return ip, nil
}

// parameterHistory reads every version of parameter name, oldest first.
func (s *Session) parameterHistory(ctx context.Context, name string) ([]ssmtypes.ParameterHistory, error) {
	var versions []ssmtypes.ParameterHistory
	pg := ssm.NewGetParameterHistoryPaginator(s.Clients.SSM, &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the history of SSM parameter %s: %w", name, err)
		}
		versions = append(versions, out.Parameters...)
	}
	return versions, nil
}

// resolveImageArg turns an AMI given as resolve:ssm:NAME[:VERSION|:LABEL]
// into the AMI the parameter names in the target's region, so that a
// pipeline can hand a bake's AMI to the deploy through Parameter Store
// (phoenix-ebs ssm_parameter) instead of a job output. It only reads.
func (d *Deployer) resolveImageArg(ctx context.Context, ref string) (string, error) {
	p := parseAlias(ref)
	if p.Name == "" {
		return "", refuse("AMI %q names no SSM parameter: write resolve:ssm:NAME, resolve:ssm:NAME:VERSION or resolve:ssm:NAME:LABEL", ref)
	}
	out, err := d.Clients.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.ref())})
	var nf *ssmtypes.ParameterNotFound
	var vnf *ssmtypes.ParameterVersionNotFound
	if errors.As(err, &nf) || errors.As(err, &vnf) {
		return "", refuse("AMI %s: SSM parameter %s does not exist in %s", ref, p.ref(), d.Target.Region)
	}
	if err != nil {
		return "", refuse("AMI %s: reading SSM parameter %s: %v", ref, p.ref(), err)
	}
	if dt := aws.ToString(out.Parameter.DataType); dt != "aws:ec2:image" {
		return "", refuse("AMI %s: SSM parameter %s has data type %q, not aws:ec2:image: it may name anything, not only an AMI", ref, p.Name, dt)
	}
	return aws.ToString(out.Parameter.Value), nil
}
