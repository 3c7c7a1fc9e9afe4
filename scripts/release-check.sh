#!/usr/bin/env bash
# Checks the release configuration without publishing anything: builds the
# pinned goreleaser (once), validates .goreleaser.yml, runs a snapshot
# release for linux/amd64 only into dist/, and checks what it produced (the
# plugin zip under the name `packer init` looks for, the binary inside
# reporting the stamped version through describe, the plugin's SHA256SUMS,
# the phoenix CLI archive and its checksum).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

die() {
	echo "release-check: error: $*" >&2
	exit 1
}

./scripts/install-goreleaser.sh
goreleaser=${PHOENIX_BIN:-$root/bin}/goreleaser

API_VERSION=$(./scripts/plugin-api-version.sh)
export API_VERSION
echo "release-check: plugin API version $API_VERSION (from describe)"

"$goreleaser" check

# goreleaser's release command has no single-target mode: build from a copy
# of the configuration whose target list (one line) names linux_amd64 only.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cfg=$tmp/goreleaser.yml
sed 's/^\([[:space:]]*targets: &targets\) \[.*\]$/\1 [linux_amd64]/' .goreleaser.yml >"$cfg"
changed=$(diff .goreleaser.yml "$cfg" | grep -c '^>' || true)
[[ $changed == 1 ]] || die "expected one 'targets: &targets [...]' line in .goreleaser.yml to restrict, changed $changed"

start=$SECONDS
# --snapshot already skips publishing; --skip=publish says so again in case
# that default ever changes.
"$goreleaser" release --config "$cfg" --snapshot --clean --skip=publish
echo "release-check: snapshot release for linux/amd64 in $((SECONDS - start))s"

GOWORK=off go run -C tools/goreleaser ./distcheck -dist "$root/dist" -api-version "$API_VERSION" -goos linux -goarch amd64
