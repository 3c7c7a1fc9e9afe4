package sandbox_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func TestEC2LaunchTemplateVersions(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-2"))
	amiV1 := sandbox.PublicImageID(sb, "us-east-2", "debian-12-amd64")
	amiV2 := sandbox.PublicImageID(sb, "us-east-2", "al2023-ami-2023")

	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("app"), Description: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("app"), VersionDescription: aws.String("first"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId: aws.String(amiV1), InstanceType: types.InstanceTypeT3Small, SecurityGroupIds: []string{aws.ToString(sg.GroupId)},
			UserData:           aws.String("IyEvYmluL3NoCg=="),
			IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String("app")},
			MetadataOptions:    &types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)},
			BlockDeviceMappings: []types.LaunchTemplateBlockDeviceMappingRequest{{DeviceName: aws.String("/dev/xvda"),
				Ebs: &types.LaunchTemplateEbsBlockDeviceRequest{VolumeSize: aws.Int32(16), Encrypted: aws.Bool(true), VolumeType: types.VolumeTypeGp3}}},
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("app")}}}},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ltID := created.LaunchTemplate.LaunchTemplateId
	if aws.ToInt64(created.LaunchTemplate.DefaultVersionNumber) != 1 || aws.ToInt64(created.LaunchTemplate.LatestVersionNumber) != 1 {
		t.Fatalf("created %+v", created.LaunchTemplate)
	}
	// A deployer changes only the AMI.
	v2, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: ltID, SourceVersion: aws.String("1"),
		VersionDescription: aws.String("new ami"), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(amiV2)}})
	if err != nil {
		t.Fatal(err)
	}
	d := v2.LaunchTemplateVersion.LaunchTemplateData
	if aws.ToInt64(v2.LaunchTemplateVersion.VersionNumber) != 2 || aws.ToString(d.ImageId) != amiV2 || d.InstanceType != types.InstanceTypeT3Small ||
		len(d.SecurityGroupIds) != 1 || aws.ToString(d.UserData) != "IyEvYmluL3NoCg==" || aws.ToString(d.IamInstanceProfile.Name) != "app" ||
		d.MetadataOptions.HttpTokens != types.LaunchTemplateHttpTokensStateRequired || len(d.BlockDeviceMappings) != 1 ||
		aws.ToInt32(d.BlockDeviceMappings[0].Ebs.VolumeSize) != 16 || len(d.TagSpecifications) != 1 {
		t.Fatalf("version 2 data %+v", d)
	}
	// Without SourceVersion a version has only what it is given.
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("app"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(amiV2)}}); err != nil {
		t.Fatal(err)
	}
	versions := func(in *ec2.DescribeLaunchTemplateVersionsInput) []types.LaunchTemplateVersion {
		t.Helper()
		out, err := c.DescribeLaunchTemplateVersions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.LaunchTemplateVersions
	}
	got := versions(&ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: ltID, Versions: []string{"$Latest", "$Default"}})
	if len(got) != 2 || aws.ToInt64(got[0].VersionNumber) != 3 || aws.ToInt64(got[1].VersionNumber) != 1 || !aws.ToBool(got[1].DefaultVersion) {
		t.Fatalf("$Latest/$Default = %+v", got)
	}
	if v3 := got[0].LaunchTemplateData; v3.InstanceType != "" || len(v3.SecurityGroupIds) != 0 {
		t.Fatalf("version 3 inherited data without SourceVersion: %+v", v3)
	}
	if _, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: ltID, DefaultVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	if got := versions(&ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("app"), Versions: []string{"$Default"}}); aws.ToInt64(got[0].VersionNumber) != 2 {
		t.Fatalf("default after modify = %d", aws.ToInt64(got[0].VersionNumber))
	}
	if got := versions(&ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: ltID, MinVersion: aws.String("2")}); len(got) != 2 {
		t.Fatalf("MinVersion 2 gave %d versions", len(got))
	}
	var pages, seen int
	p := ec2.NewDescribeLaunchTemplateVersionsPaginator(c, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: ltID, MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages, seen = pages+1, seen+len(out.LaunchTemplateVersions)
	}
	if pages != 2 || seen != 3 {
		t.Fatalf("paging: %d pages, %d versions", pages, seen)
	}

	// RunInstances from the default version, overriding the type.
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeT3Medium,
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("app"), Version: aws.String("$Default")}})
	if err != nil {
		t.Fatal(err)
	}
	in := run.Instances[0]
	tags := map[string]string{}
	for _, tg := range in.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if aws.ToString(in.ImageId) != amiV2 || in.InstanceType != types.InstanceTypeT3Medium || in.MetadataOptions.HttpTokens != types.HttpTokensStateRequired ||
		tags["Name"] != "app" || tags["aws:ec2launchtemplate:id"] != aws.ToString(ltID) || tags["aws:ec2launchtemplate:version"] != "2" ||
		aws.ToString(in.SecurityGroups[0].GroupId) != aws.ToString(sg.GroupId) {
		t.Fatalf("instance from template %+v tags %v", in, tags)
	}
	vols := sandbox.InstanceVolumes(sb, "us-east-2", aws.ToString(in.InstanceId))
	if len(vols) != 1 || !vols[0].Encrypted || vols[0].Size != 16 || vols[0].KmsKeyID == "" {
		t.Fatalf("volumes %+v", vols)
	}

	lts, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{{Name: aws.String("tag:team"), Values: []string{"ops"}}}})
	if err != nil || len(lts.LaunchTemplates) != 1 || aws.ToInt64(lts.LaunchTemplates[0].LatestVersionNumber) != 3 {
		t.Fatalf("DescribeLaunchTemplates: %v %+v", err, lts)
	}
	del, err := c.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{LaunchTemplateId: ltID, Versions: []string{"2", "3", "9"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.SuccessfullyDeletedLaunchTemplateVersions) != 1 || len(del.UnsuccessfullyDeletedLaunchTemplateVersions) != 2 ||
		del.UnsuccessfullyDeletedLaunchTemplateVersions[0].ResponseError.Code != types.LaunchTemplateErrorCodeUnexpectedError {
		t.Fatalf("DeleteLaunchTemplateVersions %+v", del)
	}

	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate name", func() error {
			_, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("app"), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(amiV1)}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateName.AlreadyExistsException"},
		{"bad name", func() error {
			_, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("a b"), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(amiV1)}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateName.MalformedException"},
		{"unknown id", func() error {
			_, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{"lt-0123456789abcdef0"}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateId.NotFound"},
		{"unknown name", func() error {
			_, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("nope")}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateName.NotFoundException"},
		{"unknown version", func() error {
			_, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: ltID, Versions: []string{"7"}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateId.VersionNotFound"},
		{"unknown source version", func() error {
			_, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: ltID, SourceVersion: aws.String("9"), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(amiV1)}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateId.VersionNotFound"},
		{"run unknown template", func() error {
			_, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0")}}, noRetryEC2)
			return err
		}, "InvalidLaunchTemplateId.NotFound"},
		{"bad user data", func() error {
			_, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: ltID, LaunchTemplateData: &types.RequestLaunchTemplateData{UserData: aws.String("%%%")}}, noRetryEC2)
			return err
		}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}

	terminateAndWait(t, c, aws.ToString(in.InstanceId))
	if _, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
