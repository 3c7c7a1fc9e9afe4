//go:build tools

// Package tools pins the versions of build-time tools used by this repository.
// Build them with scripts/install-packer.sh (or `go build -C tools <pkg>`).
package tools

import (
	_ "github.com/hashicorp/packer"
)
