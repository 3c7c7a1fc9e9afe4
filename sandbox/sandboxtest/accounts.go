package sandboxtest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// SecondAccount is the account a second access key acts in, in tests
// that play two accounts (staging bakes, prod runs).
const (
	SecondAccount   = "210987654321"
	SecondAccessKey = "AKIASANDBOXPROD00001"
)

// AddSecondAccount maps SecondAccessKey to SecondAccount on sb.
func AddSecondAccount(t testing.TB, sb *sandbox.Sandbox) {
	t.Helper()
	if err := sb.AddAccount(SecondAccessKey, SecondAccount); err != nil {
		t.Fatal(err)
	}
}

// ConfigAs is Config with another access key, so that the clients act
// in the account that key maps to (Sandbox.AddAccount).
func ConfigAs(t testing.TB, sb *sandbox.Sandbox, region, accessKey string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, "sandbox-secret", "")),
		config.WithBaseEndpoint(sb.URL()),
		config.WithSharedConfigProfile(""),
	)
	if err != nil {
		t.Fatalf("loading AWS config: %v", err)
	}
	return cfg
}
