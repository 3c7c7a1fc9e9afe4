package sandbox_test

import (
	"os"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

func TestMain(m *testing.M) {
	linuxrt.Init() // the linux runtime's instance inits are this test binary, re-executed
	os.Exit(m.Run())
}
