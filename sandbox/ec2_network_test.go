package sandbox_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func TestEC2KeyPairs(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))

	for _, kt := range []types.KeyType{types.KeyTypeRsa, types.KeyTypeEd25519} {
		name := "k-" + string(kt)
		out, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(name), KeyType: kt,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey([]byte(aws.ToString(out.KeyMaterial)))
		if err != nil {
			t.Fatalf("%s key material does not parse: %v", kt, err)
		}
		desc, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		info := desc.KeyPairs[0]
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(aws.ToString(info.PublicKey)))
		if err != nil || string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Fatalf("%s public key %q does not match the private key: %v", kt, aws.ToString(info.PublicKey), err)
		}
		if info.KeyType != kt || aws.ToString(info.KeyFingerprint) != aws.ToString(out.KeyFingerprint) || !strings.HasPrefix(aws.ToString(info.KeyPairId), "key-") || len(info.Tags) != 1 {
			t.Fatalf("%s info %+v", kt, info)
		}
		if kt == types.KeyTypeEd25519 {
			sum := sha256.Sum256(pub.Marshal())
			if want := base64.StdEncoding.EncodeToString(sum[:]); aws.ToString(out.KeyFingerprint) != want {
				t.Fatalf("ed25519 fingerprint %s, want %s", aws.ToString(out.KeyFingerprint), want)
			}
		} else if len(strings.Split(aws.ToString(out.KeyFingerprint), ":")) != 20 {
			t.Fatalf("rsa fingerprint %s is not a colon-separated SHA-1", aws.ToString(out.KeyFingerprint))
		}
	}

	pk, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pk)
	imp, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("imported"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(sshPub)})
	if err != nil {
		t.Fatal(err)
	}
	byFP, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("fingerprint"), Values: []string{aws.ToString(imp.KeyFingerprint)}}}})
	if err != nil || len(byFP.KeyPairs) != 1 || aws.ToString(byFP.KeyPairs[0].KeyName) != "imported" {
		t.Fatalf("describe by fingerprint: %v %+v", err, byFP)
	}
	tagged, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []types.Filter{{Name: aws.String("tag:team"), Values: []string{"ops"}}}})
	if err != nil || len(tagged.KeyPairs) != 2 {
		t.Fatalf("describe by tag: %v %d", err, len(tagged.KeyPairs))
	}

	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate", func() error {
			_, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("imported")}, noRetryEC2)
			return err
		}, "InvalidKeyPair.Duplicate"},
		{"bad material", func() error {
			_, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: []byte("ssh-rsa nonsense")}, noRetryEC2)
			return err
		}, "InvalidKey.Format"},
		{"bad type", func() error {
			_, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("dsa"), KeyType: "dsa"}, noRetryEC2)
			return err
		}, "InvalidParameterValue"},
		{"unknown name", func() error {
			_, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"nope"}}, noRetryEC2)
			return err
		}, "InvalidKeyPair.NotFound"},
	}
	for _, tc := range cases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyPairId: imp.KeyPairId}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"k-rsa", "k-ed25519", "k-ed25519"} { // the second delete is a no-op, as in EC2
		if _, err := c.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestEC2SecurityGroupRulesAndDependencies(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "eu-central-1"))

	web, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("web servers"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("shop")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("lb"), Description: aws.String("load balancers")})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: web.GroupId, IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: lb.GroupId}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8"), Description: aws.String("vpn")}, {CidrIp: aws.String("192.168.0.0/16")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(auth.SecurityGroupRules) != 3 || !strings.HasPrefix(aws.ToString(auth.SecurityGroupRules[0].SecurityGroupRuleId), "sgr-") {
		t.Fatalf("rules %+v", auth.SecurityGroupRules)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupName: aws.String("lb"), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), CidrIp: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatalf("legacy form: %v", err)
	}
	desc, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(web.GroupId)}})
	if err != nil {
		t.Fatal(err)
	}
	g := desc.SecurityGroups[0]
	if aws.ToString(g.GroupName) != "web" || aws.ToString(g.Description) != "web servers" || len(g.IpPermissions) != 2 || len(g.IpPermissionsEgress) != 1 || len(g.Tags) != 1 {
		t.Fatalf("group %+v", g)
	}
	ssh := g.IpPermissions[1]
	if aws.ToInt32(ssh.FromPort) != 22 || len(ssh.IpRanges) != 2 || aws.ToString(ssh.IpRanges[0].Description) != "vpn" {
		t.Fatalf("ssh permission %+v", ssh)
	}
	if e := g.IpPermissionsEgress[0]; aws.ToString(e.IpProtocol) != "-1" || aws.ToString(e.IpRanges[0].CidrIp) != "0.0.0.0/0" {
		t.Fatalf("default egress %+v", e)
	}
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: web.GroupId, IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("192.168.0.0/16")}}}}}); err != nil {
		t.Fatal(err)
	}
	byFilter, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("ip-permission.cidr"), Values: []string{"192.168.0.0/16"}}}})
	if err != nil || len(byFilter.SecurityGroups) != 0 {
		t.Fatalf("revoked rule still matches: %v %d", err, len(byFilter.SecurityGroups))
	}

	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(sandbox.PublicImageID(sb, "eu-central-1", "debian-12-amd64")),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(0), Groups: []string{aws.ToString(web.GroupId)}, AssociatePublicIpAddress: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	if gs := run.Instances[0].SecurityGroups; len(gs) != 1 || aws.ToString(gs[0].GroupId) != aws.ToString(web.GroupId) {
		t.Fatalf("instance groups %+v", gs)
	}

	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"in use by instance", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: web.GroupId}, noRetryEC2)
			return err
		}, "DependencyViolation", "resource " + aws.ToString(web.GroupId) + " has a dependent object"},
		{"referenced by a rule", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupName: aws.String("lb")}, noRetryEC2)
			return err
		}, "DependencyViolation", ""},
		{"duplicate rule", func() error {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: web.GroupId, IpPermissions: []types.IpPermission{
				{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}}}, noRetryEC2)
			return err
		}, "InvalidPermission.Duplicate", ""},
		{"duplicate group", func() error {
			_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("again")}, noRetryEC2)
			return err
		}, "InvalidGroup.Duplicate", ""},
		{"sg- name", func() error {
			_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("sg-web"), Description: aws.String("x")}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"bad cidr", func() error {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: web.GroupId, IpProtocol: aws.String("tcp"), FromPort: aws.Int32(1), ToPort: aws.Int32(2), CidrIp: aws.String("10.0.0/8")}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"tcp without ports", func() error {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: web.GroupId, IpPermissions: []types.IpPermission{
				{IpProtocol: aws.String("tcp"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.1.0.0/16")}}}}}, noRetryEC2)
			return err
		}, "InvalidParameterValue", ""},
		{"unknown group", func() error {
			_, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}}, noRetryEC2)
			return err
		}, "InvalidGroup.NotFound", ""},
		{"malformed group", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String("web")}, noRetryEC2)
			return err
		}, "InvalidGroupId.Malformed", ""},
		{"default group", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupName: aws.String("default")}, noRetryEC2)
			return err
		}, "CannotDelete", ""},
	}
	for _, tc := range cases {
		err := tc.call()
		if got := apiCode(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		} else if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want message %q", tc.name, err, tc.msg)
		}
	}

	// Paging over all groups: the default group plus web and lb.
	var names []string
	p := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.SecurityGroups {
			names = append(names, aws.ToString(g.GroupName))
		}
	}
	if len(names) != 3 {
		t.Fatalf("groups %v", names)
	}

	terminateAndWait(t, c, id)
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: web.GroupId,
		SecurityGroupRuleIds: []string{aws.ToString(auth.SecurityGroupRules[0].SecurityGroupRuleId)}}); err != nil {
		t.Fatal(err)
	}
	for _, gid := range []*string{web.GroupId, lb.GroupId} {
		if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: gid}); err != nil {
			t.Fatal(err)
		}
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestEC2RegionsZonesVpcsSubnets(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))

	regions, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{AllRegions: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(regions.Regions) < 15 || len(all.Regions) <= len(regions.Regions) {
		t.Fatalf("regions %d, all %d", len(regions.Regions), len(all.Regions))
	}
	one, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{RegionNames: []string{"eu-west-1"}})
	if err != nil || len(one.Regions) != 1 || aws.ToString(one.Regions[0].Endpoint) != "ec2.eu-west-1.amazonaws.com" {
		t.Fatalf("DescribeRegions(eu-west-1): %v", err)
	}
	zones, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil || len(zones.AvailabilityZones) != 6 || aws.ToString(zones.AvailabilityZones[0].ZoneId) != "use1-az1" || zones.AvailabilityZones[0].State != types.AvailabilityZoneStateAvailable {
		t.Fatalf("zones: %v %+v", err, zones)
	}
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(vpcs.Vpcs) != 1 || aws.ToString(vpcs.Vpcs[0].CidrBlock) != "172.31.0.0/16" {
		t.Fatalf("default vpc: %v", err)
	}
	def := aws.ToString(vpcs.Vpcs[0].VpcId)
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{def}}, {Name: aws.String("default-for-az"), Values: []string{"true"}},
		{Name: aws.String("availability-zone"), Values: []string{"us-east-1a", "us-east-1c"}}}})
	if err != nil || len(subnets.Subnets) != 2 || !aws.ToBool(subnets.Subnets[0].MapPublicIpOnLaunch) {
		t.Fatalf("default subnets: %v %d", err, len(subnets.Subnets))
	}

	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("app")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.1.0/24"), AvailabilityZone: aws.String("us-east-1b")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(sn.Subnet.AvailableIpAddressCount) != 251 || aws.ToString(sn.Subnet.AvailabilityZoneId) != "use1-az2" {
		t.Fatalf("subnet %+v", sn.Subnet)
	}
	cases := []struct {
		name string
		call func() error
		code string
	}{
		{"overlapping subnet", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.20.1.128/25")}, noRetryEC2)
			return err
		}, "InvalidSubnet.Conflict"},
		{"subnet outside vpc", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.30.1.0/24")}, noRetryEC2)
			return err
		}, "InvalidSubnet.Range"},
		{"vpc with subnet", func() error {
			_, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.Vpc.VpcId}, noRetryEC2)
			return err
		}, "DependencyViolation"},
		{"unknown vpc", func() error {
			_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}}, noRetryEC2)
			return err
		}, "InvalidVpcID.NotFound"},
		{"unknown subnet", func() error {
			_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}}, noRetryEC2)
			return err
		}, "InvalidSubnetID.NotFound"},
		{"unknown zone", func() error {
			_, err := c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}}, noRetryEC2)
			return err
		}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		if got := apiCode(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	if len(sb.Inventory()) != 2 {
		t.Fatalf("inventory %+v, want the vpc and its subnet", sb.Inventory())
	}
	if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: sn.Subnet.SubnetId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.Vpc.VpcId}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
