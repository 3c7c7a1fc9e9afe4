package deployer_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// A deploy changes the image and nothing else: the launch template version
// it writes keeps IMDSv2 required and adds no key pair, and so do the
// instances the refresh launches from it.
func TestDeployKeepsIMDSv2AndAddsNoKeyPair(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("imds-1", deploytest.ImageOptions{})
	st := f.Stack("imds", old, deploytest.StackOptions{Desired: 2})
	newAMI := f.Image("imds-2", deploytest.ImageOptions{})

	// The group's own version 2 requires IMDSv2, as a hardened template does.
	var v2 *ec2.CreateLaunchTemplateVersionOutput
	f.Setup(func() {
		var err error
		v2, err = f.Clients.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId: aws.String(st.Template), SourceVersion: aws.String("1"),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{
				HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: ec2types.LaunchTemplateInstanceMetadataEndpointStateEnabled}},
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if n := aws.ToInt64(v2.LaunchTemplateVersion.VersionNumber); n != 2 {
		t.Fatalf("version %d, want 2", n)
	}
	if _, err := f.Clients.AutoScaling.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("imds"),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(st.Template), Version: aws.String("2")}}); err != nil {
		t.Fatal(err)
	}

	var ev events
	res, err := newDeployer(f, "imds", nil, &ev).Run(ctx, newAMI)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, ev.messages())
	}
	if res.Outcome != deployer.Succeeded || res.Version != 3 {
		t.Fatalf("result %+v, want version 3 written", res)
	}

	out, err := f.Clients.EC2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(st.Template), Versions: []string{"2", "3"}})
	if err != nil || len(out.LaunchTemplateVersions) != 2 {
		t.Fatalf("versions: %v %+v", err, out)
	}
	data := map[int64]*ec2types.ResponseLaunchTemplateData{}
	for _, v := range out.LaunchTemplateVersions {
		data[aws.ToInt64(v.VersionNumber)] = v.LaunchTemplateData
	}
	src, written := data[2], data[3]
	if src == nil || written == nil {
		t.Fatalf("versions %v", data)
	}
	if aws.ToString(written.ImageId) != newAMI || aws.ToString(src.ImageId) != old {
		t.Errorf("images: version 2 %s, version 3 %s; want %s then %s", aws.ToString(src.ImageId), aws.ToString(written.ImageId), old, newAMI)
	}
	if written.MetadataOptions == nil || written.MetadataOptions.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired ||
		aws.ToInt32(written.MetadataOptions.HttpPutResponseHopLimit) != 1 {
		t.Errorf("version 3 metadata options %+v, want HttpTokens required and hop limit 1 as in version 2", written.MetadataOptions)
	}
	if written.KeyName != nil || src.KeyName != nil {
		t.Errorf("key pair: version 2 %q, version 3 %q; want none", aws.ToString(src.KeyName), aws.ToString(written.KeyName))
	}
	if written.InstanceType != src.InstanceType {
		t.Errorf("instance type %s, want %s as in version 2", written.InstanceType, src.InstanceType)
	}

	// The instances serving now were launched from version 3.
	amis := f.InstanceAMIs("imds")
	var ids []string
	for id, ami := range amis {
		if ami != newAMI {
			t.Errorf("%s runs %s", id, ami)
		}
		ids = append(ids, id)
	}
	if len(ids) != 2 {
		t.Fatalf("instances %v", amis)
	}
	in, err := f.Clients.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range in.Reservations {
		for _, i := range r.Instances {
			if i.MetadataOptions == nil || i.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired || i.KeyName != nil {
				t.Errorf("instance %s: metadata %+v key %q, want IMDSv2 required and no key pair", aws.ToString(i.InstanceId), i.MetadataOptions, aws.ToString(i.KeyName))
			}
		}
	}
}
