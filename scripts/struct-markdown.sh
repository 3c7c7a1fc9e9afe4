#!/usr/bin/env bash
# Runs `packer-sdc struct-markdown` for $GOFILE (go:generate sets it).
# packer-sdc finds the project root by a directory named packer-plugin-*,
# which a clone need not have: run it through such a symlink.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkg=${PWD#"$root"/}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$root" "$tmp/packer-plugin-phoenix"
cd "$tmp/packer-plugin-phoenix/$pkg"
go tool packer-sdc struct-markdown "${1:-$GOFILE}"
