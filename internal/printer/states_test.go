package printer

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
)

// Status prints protected, standby and hook-held instances and the warm
// pools under the capacity line, and nothing extra when there are none.
func TestStatusInstanceStatesText(t *testing.T) {
	var out bytes.Buffer
	p, err := New(Text, &out)
	if err != nil {
		t.Fatal(err)
	}
	p.Status(&deployer.Status{Target: "web", Region: "eu-west-1", Group: "web", Desired: 3, InService: 2,
		States: deployer.InstanceStates{Protected: []string{"i-1"}, Standby: []string{"i-2", "i-3"},
			Hooks: []deployer.HookWait{{Group: "web", Instance: "i-4", State: "Pending:Wait", Waited: 95 * time.Second, Hooks: []string{"boot (heartbeat timeout 10m0s, default result ABANDON)"}}}},
		WarmPools: []deployer.WarmPoolStatus{{Group: "web", PoolState: "Stopped", States: map[string]int{"Warmed:Stopped": 2, "Warmed:Pending": 1}, AMIs: []deployer.AMIUse{{AMI: "ami-2", Instances: 3}}}}})
	want := []string{
		"  capacity       3 desired, 2 in service",
		"                 1 instance protected from scale in (i-1); 2 instances in Standby (i-2, i-3); i-4 in Pending:Wait for 1m35s (since its launch began), hook boot (heartbeat timeout 10m0s, default result ABANDON)",
		"  warm pool      web (Stopped): 1 Warmed:Pending, 2 Warmed:Stopped; AMIs: ami-2 (3)",
		"  AMIs in use    none",
	}
	if !strings.Contains(out.String(), strings.Join(want, "\n")+"\n") {
		t.Errorf("got\n%s\nwant the lines\n%s", out.String(), strings.Join(want, "\n"))
	}

	out.Reset()
	p.Status(&deployer.Status{Target: "web", Region: "eu-west-1", Group: "web", Desired: 3, InService: 3})
	if strings.Contains(out.String(), "Standby") || strings.Contains(out.String(), "warm pool") || strings.Count(out.String(), "\n                 ") != 0 {
		t.Errorf("a status without such instances prints:\n%s", out.String())
	}
}
