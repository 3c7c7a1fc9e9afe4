#!/usr/bin/env bash
# Fails when `go generate ./...` changes the tree: generated code and docs
# must be committed as the generators write them. Compares the tree's
# state before and after, so uncommitted work of one's own does not count.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { { git diff; git status --porcelain --untracked-files=all -- . ':!bin'; } | sha256sum; }
before=$(state)
go generate ./...
after=$(state)
if [ "$before" != "$after" ]; then
  echo "go generate changed generated files; run 'make generate' and commit them:" >&2
  git status --short -- . ':!bin' >&2
  exit 1
fi
echo "check-generate: generated files are up to date"
