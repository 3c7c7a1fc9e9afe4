#!/usr/bin/env bash
# Prints the plugin API version (e.g. x5.0) that the plugin reports through
# `packer-plugin-phoenix describe`, for the release archive names
# (API_VERSION in .goreleaser.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/packer-plugin-phoenix" .
api=$("$tmp/packer-plugin-phoenix" describe | sed -n 's/.*"api_version":"\([^"]*\)".*/\1/p')
[[ -n $api ]] || { echo "plugin-api-version: no api_version in the describe output" >&2; exit 1; }
echo "$api"
