#!/usr/bin/env bash
# Writes the SHA-256 checksum of FILE to OUT in the format `sha256sum -c`
# reads ("<hex>  <file name>"), naming the file without its directory so that
# the check works next to the downloaded archive. goreleaser runs it for each
# phoenix CLI archive (see signs in .goreleaser.yml).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 FILE OUT" >&2; exit 2; }
file=$1 out=$2
if command -v sha256sum >/dev/null 2>&1; then
	sum=$(sha256sum <"$file")
else
	sum=$(shasum -a 256 <"$file")
fi
printf '%s  %s\n' "${sum%% *}" "$(basename "$file")" >"$out"
