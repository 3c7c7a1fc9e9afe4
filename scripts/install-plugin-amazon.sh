#!/usr/bin/env bash
# Builds packer-plugin-amazon at the version pinned in tools/amazon/go.mod
# into ${PHOENIX_BIN:-<repo>/bin}/packer-plugin-amazon, once: users keep
# amazon-ebs and chain phoenix-deploy, and the example shows that.
set -euo pipefail
export GOWORK=off
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${PHOENIX_BIN:-$root/bin}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)
want=$(go list -C "$root/tools/amazon" -m -f '{{.Version}}' github.com/hashicorp/packer-plugin-amazon)
have=$("$bin/packer-plugin-amazon" describe 2>/dev/null | sed -n 's/.*"version":"\([^"]*\)".*/v\1/p' || true)
if [ "$have" = "$want" ]; then
  echo "packer-plugin-amazon $want already installed at $bin/packer-plugin-amazon"
  exit 0
fi
start=$SECONDS
CGO_ENABLED=0 go build -C "$root/tools/amazon" -trimpath -o "$bin/.packer-plugin-amazon.tmp" github.com/hashicorp/packer-plugin-amazon
mv "$bin/.packer-plugin-amazon.tmp" "$bin/packer-plugin-amazon"
echo "built packer-plugin-amazon $want into $bin in $((SECONDS - start))s"
