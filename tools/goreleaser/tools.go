//go:build tools

// Package tools pins the goreleaser version used by `make release-check`
// and releases. It is a module of its own so that goreleaser's many
// dependencies stay out of the plugin's and Packer's go.mod.
// Build it with scripts/install-goreleaser.sh.
package tools

import (
	_ "github.com/goreleaser/goreleaser/v2"
)
