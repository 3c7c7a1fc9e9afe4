package ebs

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
)

// stepPreValidate checks, before anything is created, what would make the
// build fail late: an AMI name already taken, a KMS key missing, disabled
// or not shareable, in any region the AMI goes to, an SSM parameter that
// exists with another type or data type (or cannot be read). It only
// reads.
type stepPreValidate struct{}

func (s *stepPreValidate) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	what := "the AMI name and KMS keys"
	if len(c.SSMParameters) > 0 && !c.SkipCreateAMI {
		what = "the AMI name, KMS keys and SSM parameters"
	}
	ui.Say(fmt.Sprintf("Checking %s in %s...", what, strings.Join(c.regions(), ", ")))
	var problems []string
	for _, region := range c.regions() {
		if !c.SkipCreateAMI && !c.ForceDeregister {
			out, err := cl.EC2(region).DescribeImages(ctx, &ec2.DescribeImagesInput{
				Owners:  []string{"self"},
				Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{c.AMIName}}},
			})
			if err != nil {
				return halt(state, fmt.Errorf("checking whether ami_name %q is free in %s: %w", c.AMIName, region, err))
			}
			for _, im := range out.Images {
				problems = append(problems, fmt.Sprintf("ami_name %q is already used by %s in %s; set force_deregister = true to replace it", c.AMIName, aws.ToString(im.ImageId), region))
			}
		}
		if !*c.Encrypt {
			continue
		}
		setting := "kms_key_id"
		if region != c.Region {
			setting = fmt.Sprintf("region_kms_key_ids[%q]", region)
		}
		key := c.kmsKeyFor(region)
		if key == "" {
			continue // the region's EBS default key always exists
		}
		out, err := cl.KMS(region).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
		switch {
		case apiCode(err) == "NotFoundException" || apiCode(err) == "InvalidArnException":
			problems = append(problems, fmt.Sprintf("%s: KMS key %q does not exist in %s", setting, key, region))
			continue
		case err != nil:
			return halt(state, fmt.Errorf("checking KMS key %q in %s: %w", key, region, err))
		}
		md := out.KeyMetadata
		if md.KeyState != kmstypes.KeyStateEnabled {
			problems = append(problems, fmt.Sprintf("%s: KMS key %s in %s is %s, not Enabled", setting, aws.ToString(md.Arn), region, md.KeyState))
		}
		if c.sharesAMI() && md.KeyManager == kmstypes.KeyManagerTypeAws {
			problems = append(problems, fmt.Sprintf("%s: %s is an AWS managed key; images encrypted with it cannot be shared with ami_users, ami_groups or ami_org_arns", setting, key))
		}
	}
	if !c.SkipCreateAMI {
		for i, p := range c.SSMParameters {
			problem, err := checkExistingParameter(ctx, cl, i, p)
			if err != nil {
				return halt(state, err)
			}
			if problem != "" {
				problems = append(problems, problem)
			}
		}
	}
	if len(problems) > 0 {
		return halt(state, fmt.Errorf("the build cannot succeed:\n  %s", strings.Join(problems, "\n  ")))
	}
	return multistep.ActionContinue
}

func (s *stepPreValidate) Cleanup(multistep.StateBag) {}

// checkExistingParameter returns why the build could not write parameter
// p, which it would learn only at the end: it exists, but not as a
// String of data type aws:ec2:image, which no parameter changes to.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-data-types.html
func checkExistingParameter(ctx context.Context, cl *clients, i int, p SSMParameter) (string, error) {
	out, err := cl.SSM(p.Region).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.Name)})
	switch {
	case apiCode(err) == "ParameterNotFound":
		return "", nil
	case apiCode(err) == "AccessDeniedException":
		return "", fmt.Errorf("ssm_parameter[%d]: reading SSM parameter %q in %s: the build needs ssm:GetParameter, ssm:PutParameter, ssm:LabelParameterVersion and ssm:DeleteParameter on it: %w", i, p.Name, p.Region, err)
	case err != nil:
		return "", fmt.Errorf("ssm_parameter[%d]: reading SSM parameter %q in %s: %w", i, p.Name, p.Region, err)
	}
	typ, dataType := out.Parameter.Type, aws.ToString(out.Parameter.DataType)
	if typ == ssmtypes.ParameterTypeString && dataType == ssmImageDataType {
		return "", nil
	}
	return fmt.Sprintf("ssm_parameter[%d]: SSM parameter %q in %s is a %s of data type %s; the build writes a String of data type %s, and a parameter's type and that data type never change: delete it or choose another name",
		i, p.Name, p.Region, typ, orDefault(dataType, "text"), ssmImageDataType), nil
}
