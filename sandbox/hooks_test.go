package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func hookJSON(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestFaultsThrottleErrorsAndLatency(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	noRetry := func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} }

	// Throttling with each service's own code; the SDK retries through it.
	if _, err := sb.AddFault(sandbox.Fault{Service: "ec2", Action: "DescribeRegions", Kind: "throttle", Count: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}, noRetry); apiCode(err) != "RequestLimitExceeded" {
		t.Fatalf("error %v, want RequestLimitExceeded", err)
	}
	if _, err := c.DescribeRegions(ctx, &ec2.DescribeRegionsInput{}); err != nil {
		t.Fatalf("the SDK's retries should ride out the second throttle: %v", err)
	}
	if n := sb.Calls()["ec2"]["DescribeRegions"]; n != 3 {
		t.Errorf("DescribeRegions called %d times, want 3 (two throttled)", n)
	}
	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	sb.AddFault(sandbox.Fault{Service: "kms", Kind: "throttle", Count: 1})
	if _, err := kc.ListKeys(ctx, &kms.ListKeysInput{}, func(o *kms.Options) { o.Retryer = aws.NopRetryer{} }); apiCode(err) != "ThrottlingException" {
		t.Fatalf("kms error %v, want ThrottlingException", err)
	}

	sb.ClearFaults()
	sb.AddFault(sandbox.Fault{Service: "ec2", Action: "DescribeVpcs", Kind: "error503", Count: 1})
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}, noRetry); apiCode(err) != "ServiceUnavailable" {
		t.Fatalf("error %v, want ServiceUnavailable", err)
	}
	sb.AddFault(sandbox.Fault{Service: "ec2", Action: "DescribeVpcs", Kind: "error500", Count: 1})
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}, noRetry); apiCode(err) != "InternalError" {
		t.Fatalf("error %v, want InternalError", err)
	}
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}, noRetry); err != nil {
		t.Fatalf("count-limited faults are spent: %v", err)
	}

	sb.AddFault(sandbox.Fault{Service: "ec2", Action: "DescribeSubnets", Kind: "latency", LatencyMS: 300})
	start := time.Now()
	if _, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answer after %s, want at least the 300 ms latency", d)
	}
	for _, f := range sb.Faults() {
		if f.Fired == 0 && f.Kind != "throttle" {
			t.Errorf("fault %+v never fired", f)
		}
	}
}

func TestFaultInvisibleAfterCreation(t *testing.T) {
	sb := sandboxtest.Start(t)
	ctx := context.Background()
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "eu-west-1"))
	sb.AddFault(sandbox.Fault{Service: "ec2", Action: "DescribeInstances", Kind: "invisible", InvisibleMS: 400})
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{sandbox.OwnerDebian}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
	if apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("a fresh instance is visible at once (%v); want InvalidInstanceID.NotFound while invisible", err)
	}
	time.Sleep(450 * time.Millisecond)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatalf("still invisible after the window: %v", err)
	}
	c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	deadline := time.Now().Add(10 * time.Second)
	for len(sb.Inventory()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestHookEndpoints(t *testing.T) {
	sb := sandboxtest.Start(t)
	u := sb.URL() + "/_sandbox/"
	var health map[string]any
	if hookJSON(t, "GET", u+"health", "", &health) != 200 || health["runtime"] != "sim" {
		t.Fatalf("health %v", health)
	}
	var f sandbox.Fault
	if code := hookJSON(t, "POST", u+"faults", `{"service":"ec2","kind":"throttle","probability":0.2}`, &f); code != 200 || f.ID == "" {
		t.Fatalf("adding a fault: %d %+v", code, f)
	}
	for _, bad := range []string{`{"kind":"meteor"}`, `{"kind":"throttle","probability":2}`, `{"kind":"latency"}`, `{"kind":"throttle","service":"s3"}`, `not json`} {
		var e map[string]string
		if code := hookJSON(t, "POST", u+"faults", bad, &e); code != 400 || e["error"] == "" {
			t.Errorf("fault %s: status %d %v, want 400 with a message", bad, code, e)
		}
	}
	var listed struct{ Faults []sandbox.Fault }
	hookJSON(t, "GET", u+"faults", "", &listed)
	if len(listed.Faults) != 1 {
		t.Errorf("faults %v", listed.Faults)
	}
	hookJSON(t, "DELETE", u+"faults", "", nil)
	if len(sb.Faults()) != 0 {
		t.Errorf("faults not cleared")
	}
	var timing sandbox.TimingProfile
	if code := hookJSON(t, "PUT", u+"timing", `{"time_scale":0.5,"seconds":{"instance_pending":3}}`, &timing); code != 200 || timing.TimeScale != 0.5 || timing.Seconds["instance_pending"] != 3 {
		t.Errorf("timing %d %+v", code, timing)
	}
	if code := hookJSON(t, "PUT", u+"timing", `{"seconds":{"instance_pendnig":3}}`, nil); code != 400 {
		t.Errorf("a misspelt timing entry gave %d, want 400", code)
	}
	var inv struct{ Resources []sandbox.Resource }
	if hookJSON(t, "GET", u+"inventory", "", &inv) != 200 || inv.Resources == nil || len(inv.Resources) != 0 {
		t.Errorf("inventory of a fresh sandbox: %+v", inv)
	}
	var calls struct {
		Calls    map[string]map[string]int
		Mutating int
	}
	hookJSON(t, "GET", u+"calls", "", &calls)
	if calls.Mutating != 0 {
		t.Errorf("calls %+v", calls)
	}
	if hookJSON(t, "GET", u+"nope", "", nil) != 404 {
		t.Errorf("unknown hook not 404")
	}
}

// A held call waits until released while other calls go on; a client that
// gives up on it is seen, and the call is still carried out on release, as
// AWS does with a request it has received.
func TestHoldCall(t *testing.T) {
	sb := sandboxtest.Start(t)
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "eu-west-1"))
	var seen []string
	h := sb.HoldCall(func(region, service, action string) bool {
		seen = append(seen, action)
		return region == "eu-west-1" && action == "CreateKeyPair"
	})
	defer h.Release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("held")}, func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
		errc <- err
	}()
	select {
	case <-h.Reached():
	case <-time.After(10 * time.Second):
		t.Fatal("the call was not held")
	}
	if h.Region != "eu-west-1" || h.Service != "ec2" || h.Action != "CreateKeyPair" {
		t.Errorf("held %s %s %s", h.Region, h.Service, h.Action)
	}
	// Other calls are answered meanwhile.
	if _, err := c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("the held call was answered: %v", err)
	case <-h.ClientGone():
		t.Fatal("client gone before it gave up")
	default:
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the client got an answer to a held call")
	}
	select {
	case <-h.ClientGone():
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not see the client go")
	}
	h.Release()
	var pairs *ec2.DescribeKeyPairsOutput
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if pairs, err = c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{}); err != nil {
			t.Fatal(err)
		}
		if len(pairs.KeyPairs) > 0 {
			break
		}
	}
	if len(pairs.KeyPairs) != 1 || aws.ToString(pairs.KeyPairs[0].KeyName) != "held" {
		t.Fatalf("key pairs after the release: %+v", pairs.KeyPairs)
	}
	if strings.Join(seen, ",") != "CreateKeyPair" {
		t.Errorf("match saw %v, want only the calls until the first match", seen)
	}
	if _, err := c.DeleteKeyPair(context.Background(), &ec2.DeleteKeyPairInput{KeyName: aws.String("held")}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// A held answer: the call is carried out at once, and the client that
// gives up never hears of it.
func TestHoldAnswer(t *testing.T) {
	sb := sandboxtest.Start(t)
	c := ec2.NewFromConfig(sandboxtest.Config(t, sb, "us-east-1"))
	h := sb.HoldAnswer(func(_, _, action string) bool { return action == "CreateKeyPair" })
	defer h.Release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("answered")}, func(o *ec2.Options) { o.Retryer = aws.NopRetryer{} })
		errc <- err
	}()
	select {
	case <-h.Reached():
	case <-time.After(10 * time.Second):
		t.Fatal("the answer was not held")
	}
	pairs, err := c.DescribeKeyPairs(context.Background(), &ec2.DescribeKeyPairsInput{})
	if err != nil || len(pairs.KeyPairs) != 1 {
		t.Fatalf("the call was not carried out before its answer: %v %+v", err, pairs)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the client got a held answer")
	}
	select {
	case <-h.ClientGone():
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox did not see the client go")
	}
	h.Release()
	if _, err := c.DeleteKeyPair(context.Background(), &ec2.DeleteKeyPairInput{KeyName: aws.String("answered")}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}
