package sandbox

import "strings"

// Launch templates (and RunInstances) may name their AMI with a Systems
// Manager parameter, "resolve:ssm:NAME", "resolve:ssm:NAME:VERSION" or
// "resolve:ssm:NAME:LABEL" (or the parameter's ARN in place of NAME). The
// version keeps the alias as written; every launch resolves it then.
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/create-launch-template.html#use-an-ssm-parameter-instead-of-an-ami-id
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html

const imageAliasPrefix = "resolve:ssm:"

func isImageAlias(imageID string) bool { return strings.HasPrefix(imageID, imageAliasPrefix) }

// resolveImageAlias returns the AMI id a launch uses for imageID: imageID
// itself, or the value of the parameter version its alias names. The
// parameter must exist now and be a String of data type aws:ec2:image.
// EC2 answers SsmInvalidParameter for a parameter of another data type;
// the sandbox uses the same code when the parameter, version or label is
// missing.
func (r *Region) resolveImageAlias(imageID string) (string, *APIError) {
	if !isImageAlias(imageID) {
		return imageID, nil
	}
	ref, err := r.parseParameterRef(strings.TrimPrefix(imageID, imageAliasPrefix), true)
	if err != nil {
		return "", errf("SsmInvalidParameter", "The Systems Manager parameter in %s is not valid: %s", imageID, strings.TrimSuffix(err.Message, "."))
	}
	p := r.ssmParameter(ref.name)
	if p == nil {
		return "", errf("SsmInvalidParameter", "The Systems Manager parameter %s in %s does not exist", ref.name, imageID)
	}
	v, err := p.version(ref.selector)
	if err != nil {
		return "", errf("SsmInvalidParameter", "The Systems Manager parameter in %s cannot be resolved: %s", imageID, strings.TrimSuffix(err.Message, "."))
	}
	if v.Type != "String" || v.DataType != ssmImageDataType {
		return "", errf("SsmInvalidParameter", "Unsupported data type. The following parameter data types are supported: aws:ec2:image")
	}
	return v.Value, nil
}

// usesImageAlias reports whether the launch template version ref points
// at names its AMI with a Systems Manager parameter.
func (r *Region) usesImageAlias(ref *LaunchTemplateRef) bool {
	if ref == nil {
		return false
	}
	_, v, err := r.resolveLaunchTemplate(ref.ID, ref.Name, ref.Version)
	return err == nil && isImageAlias(v.Data.ImageID)
}
