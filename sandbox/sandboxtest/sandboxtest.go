// Package sandboxtest starts sandboxes for Go tests and points AWS SDK
// clients at them.
package sandboxtest

import (
	"context"
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

// StartWith is Start with options.
func StartWith(t testing.TB, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("starting sandbox: %v", err)
	}
	t.Cleanup(func() { sb.Close() })
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
