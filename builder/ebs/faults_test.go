package ebs

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// A build with two region copies succeeds under AWS's everyday trouble —
// throttling, server errors, latency, resources not yet visible after
// creation — alone and together, and leaves exactly what a clean build
// leaves: one AMI and one snapshot per region. The build runs at its
// default settings (max_retries as a user gets it); some fault must fire,
// and in "all together" each kind.
func TestBuildUnderFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults []sandbox.Fault
	}{
		{"throttling 20%", []sandbox.Fault{{Kind: "throttle", Probability: 0.2}}},
		{"5xx 5%", []sandbox.Fault{{Kind: "error500", Probability: 0.05}, {Kind: "error503", Probability: 0.05}}},
		{"latency 300ms", []sandbox.Fault{{Service: "ec2", Kind: "latency", LatencyMS: 300}}},
		{"invisible 2s", []sandbox.Fault{{Service: "ec2", Kind: "invisible", InvisibleMS: 2000}}},
		// Each kind must fire here; besides the random 500s one is sure
		// to come, on the copy (its retry rides on its client token).
		{"all together", []sandbox.Fault{
			{Kind: "error500", Service: "ec2", Action: "CopyImage", Count: 1}, {Kind: "throttle", Probability: 0.2}, {Kind: "error500", Probability: 0.05},
			{Service: "ec2", Kind: "latency", LatencyMS: 300}, {Service: "ec2", Kind: "invisible", InvisibleMS: 2000},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.key("eu-west-1", "alias/images-eu")
			e.key("ap-south-1", "alias/images-ap")
			for _, f := range tc.faults {
				if _, err := e.sb.AddFault(f); err != nil {
					t.Fatal(err)
				}
			}
			res := e.build(context.Background(), e.config(
				"ami_regions", []string{"eu-west-1", "ap-south-1"},
				"region_kms_key_ids", map[string]string{"eu-west-1": "alias/images-eu", "ap-south-1": "alias/images-ap"},
				"ssm_parameter", []map[string]interface{}{{"name": "/web/ami", "labels": []string{"staging"}}, {"name": "/web/ami", "region": "ap-south-1"}},
			))
			if res.err != nil {
				t.Fatalf("build failed under %s: %v\n%s", tc.name, res.err, res.out)
			}
			fired := 0
			for _, f := range e.sb.Faults() {
				fired += f.Fired
			}
			if fired == 0 {
				t.Errorf("no fault fired; fault seed %d", e.sb.FaultSeed())
			}
			if tc.name == "all together" {
				sandboxtest.RequireEachFaultKindFired(t, e.sb)
			}
			e.sb.ClearFaults()
			e.waitInventoryClean2(map[string]int{
				"us-east-1/image": 1, "us-east-1/snapshot": 1, "us-east-1/parameter": 1,
				"eu-west-1/image": 1, "eu-west-1/snapshot": 1,
				"ap-south-1/image": 1, "ap-south-1/snapshot": 1, "ap-south-1/parameter": 1,
			})
			a := res.artifact.(*Artifact)
			for _, p := range a.Parameters {
				if got, _ := e.parameter(p.Region, p.Name+":staging"); p.Region == "us-east-1" && aws.ToString(got.Value) != a.AMIs[p.Region] {
					t.Errorf("%s: %s:staging = %s, want %s", p.Region, p.Name, aws.ToString(got.Value), a.AMIs[p.Region])
				}
				if got, _ := e.parameter(p.Region, p.Name); aws.ToString(got.Value) != a.AMIs[p.Region] {
					t.Errorf("%s: %s = %s, want %s", p.Region, p.Name, aws.ToString(got.Value), a.AMIs[p.Region])
				}
			}
			if len(a.Parameters) != 2 {
				t.Errorf("published %v", a.Parameters)
			}
			if err := a.Destroy(); err != nil {
				t.Fatal(err)
			}
			e.deleteParameters("us-east-1", "/web/ami")
			e.deleteParameters("ap-south-1", "/web/ami")
			e.waitInventoryClean()
		})
	}
}
