//go:build tools

// Package tools pins packer-plugin-amazon, the amazon-ebs builder that the
// example's amazon-ebs template and the side-by-side benchmarks use. Build
// it with scripts/install-plugin-amazon.sh.
package tools

import _ "github.com/hashicorp/packer-plugin-amazon"
