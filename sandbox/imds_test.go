package sandbox_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// The metadata service's answers follow the instance's metadata options as
// the EC2 API sets them: a launch template's HttpTokens required refuses
// IMDSv1, tokens are checked, the identity document names the region, and
// HttpEndpoint disabled closes it.
func TestIMDSFollowsMetadataOptions(t *testing.T) {
	sb := sandboxtest.StartWith(t, sandbox.Options{TimeScale: 0.01})
	ctx := context.Background()
	const region = "eu-west-1"
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, region))
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("imds"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			ImageId: aws.String(sandbox.PublicImageID(sb, region, "debian-12-amd64-")), InstanceType: ec2types.InstanceTypeT3Micro,
			UserData:        aws.String(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))),
			MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired},
		},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate: %v", err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &ec2types.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	h := sandbox.IMDSHandler(sb, region, id)
	do := func(method, path string, hdr map[string]string) (int, string) {
		req := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	ttl := map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
	code, token := do("PUT", "/latest/api/token", ttl)
	if code != 200 || len(token) < 32 {
		t.Fatalf("token PUT: %d %q", code, token)
	}
	auth := map[string]string{"X-aws-ec2-metadata-token": token}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		code         int
		body         string
	}{
		{"GET", "/latest/meta-data/instance-id", auth, 200, id},
		{"GET", "/latest/meta-data/placement/region", auth, 200, region},
		{"GET", "/latest/meta-data/placement/availability-zone", auth, 200, aws.ToString(run.Instances[0].Placement.AvailabilityZone)},
		{"GET", "/latest/user-data", auth, 200, "#!/bin/sh\necho hi\n"},
		{"GET", "/latest/meta-data/instance-id", nil, 401, ""},                                                // v1 refused: HttpTokens required
		{"GET", "/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": "x"}, 401, ""}, // unknown token
		{"GET", "/latest/meta-data/tags/instance", auth, 404, ""},                                             // InstanceMetadataTags disabled
		{"GET", "/latest/meta-data/no-such-thing", auth, 404, ""},
		{"PUT", "/latest/api/token", nil, 400, ""},                                                                // no TTL
		{"PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21601"}, 400, ""}, // TTL too long
		{"PUT", "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"}, 403, ""},
		{"POST", "/latest/meta-data/instance-id", auth, 405, ""},
	} {
		code, body := do(tc.method, tc.path, tc.hdr)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
	code, doc := do("GET", "/latest/dynamic/instance-identity/document", auth)
	var ident struct{ Region, InstanceId, AccountId string }
	if err := json.Unmarshal([]byte(doc), &ident); code != 200 || err != nil || ident.Region != region || ident.InstanceId != id {
		t.Errorf("identity document: %d %v %s", code, err, doc)
	}

	if _, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpEndpoint: ec2types.InstanceMetadataEndpointStateDisabled}); err != nil {
		t.Fatalf("ModifyInstanceMetadataOptions: %v", err)
	}
	if code, _ := do("GET", "/latest/meta-data/instance-id", auth); code != http.StatusForbidden {
		t.Errorf("HttpEndpoint disabled: %d, want 403", code)
	}
	if code, body := do("PUT", "/latest/api/token", ttl); code != http.StatusForbidden || strings.Contains(body, "-") {
		t.Errorf("token with HttpEndpoint disabled: %d %q", code, body)
	}

	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	w := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, time.Minute); err != nil {
		t.Fatalf("waiting for termination: %v", err)
	}
	if _, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
