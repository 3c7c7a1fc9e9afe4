#!/usr/bin/env bash
# Fails when `make generate` (go generate ./..., then scripts/web-docs.sh)
# changes the tree: generated code and docs must be committed as the
# generators write them. Compares the tree's state before and after, so
# uncommitted work of one's own does not count.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { { git diff; git status --porcelain --untracked-files=all -- . ':!bin'; } | sha256sum; }
before=$(state)
go generate ./...
./scripts/web-docs.sh
after=$(state)
if [ "$before" != "$after" ]; then
  echo "the generators changed generated files; run 'make generate' and commit them:" >&2
  git status --short -- . ':!bin' >&2
  exit 1
fi
echo "check-generate: generated files are up to date"
