package deployer_test

import (
	"os"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

// TestMain lets the sandbox's linux runtime re-execute this test binary as
// an instance's init (the traffic tests boot real instances).
func TestMain(m *testing.M) {
	linuxrt.Init()
	os.Exit(m.Run())
}
