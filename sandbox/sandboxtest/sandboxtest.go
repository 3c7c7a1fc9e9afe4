// Package sandboxtest starts sandboxes for Go tests and points AWS SDK
// clients at them.
package sandboxtest

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// TimeScale is the scale tests run at: AWS-sized durations a hundred
// times faster.
const TimeScale = 0.01

// Start starts an in-process sandbox on a free loopback port and closes it
// when the test ends.
func Start(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	return StartWith(t, sandbox.Options{TimeScale: TimeScale})
}

// FaultSeedEnv names the environment variable that sets the seed of
// every sandbox a test starts, to replay the fault decisions of a failed
// run; a failed test prints the seed its sandbox used.
const FaultSeedEnv = "PHOENIX_FAULT_SEED"

// StartWith is Start with options; opts.FaultSeed, when 0, is taken from
// PHOENIX_FAULT_SEED if it is set.
func StartWith(t testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	if v := os.Getenv(FaultSeedEnv); v != "" && opts.FaultSeed == 0 {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil || seed == 0 {
			t.Fatalf("%s=%q: want a positive integer", FaultSeedEnv, v)
		}
		opts.FaultSeed = seed
	}
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sandbox fault seed %d: %s=%d replays its fault decisions", sb.FaultSeed(), FaultSeedEnv, sb.FaultSeed())
		}
		sb.Close()
	})
	return sb
}

// Config returns an aws.Config for region whose clients talk to sb with
// static test credentials and the SDK's standard retryer.
func Config(t testing.TB, sb *sandbox.Sandbox, region string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIASANDBOXTEST00001", "sandbox-secret", "")),
		config.WithBaseEndpoint(sb.URL()),
		config.WithSharedConfigProfile(""),
	)
	if err != nil {
		t.Fatalf("loading AWS config: %v", err)
	}
	return cfg
}

// RequireEmptyInventory fails the test when any resource is left in the
// sandbox: every test that creates cloud resources ends with it.
func RequireEmptyInventory(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	if inv := sb.Inventory(); len(inv) > 0 {
		for _, r := range inv {
			t.Errorf("leaked %s %s %s (%s) in %s of account %s", r.Service, r.Type, r.ID, r.State, r.Region, r.Account)
		}
	}
}

// RequireEachFaultKindFired fails the test for each kind of fault
// injected into sb of which no fault ever fired: a run that was meant to
// prove phoenix copes with a kind of trouble proves nothing about a kind
// it never met. Call it before ClearFaults.
func RequireEachFaultKindFired(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	fired := map[string]int{}
	var kinds []string
	for _, f := range sb.Faults() {
		if _, ok := fired[f.Kind]; !ok {
			kinds = append(kinds, f.Kind)
		}
		fired[f.Kind] += f.Fired
	}
	for _, k := range kinds {
		if fired[k] == 0 {
			t.Errorf("no %s fault fired; fault seed %d", k, sb.FaultSeed())
		}
	}
}
