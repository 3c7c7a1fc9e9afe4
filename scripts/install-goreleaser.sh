#!/usr/bin/env bash
# Build the goreleaser version pinned in tools/goreleaser/go.mod into
# ${PHOENIX_BIN:-<repo>/bin}/goreleaser.
#
# Idempotent: does nothing when the binary already exists and reports the
# expected version. Needs only a Go toolchain (and access to the Go module
# proxy); cgo is disabled, so no C compiler is required.
set -euo pipefail

GORELEASER_PKG="github.com/goreleaser/goreleaser/v2"

# tools/goreleaser is a self-contained module; never resolve it through a go.work file.
export GOWORK=off

die() {
	echo "install-goreleaser: error: $*" >&2
	exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod_dir="${repo_root}/tools/goreleaser"
bin_dir="${PHOENIX_BIN:-${repo_root}/bin}"
mkdir -p "${bin_dir}" || die "cannot create ${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)" # absolute: go build -C changes directory
goreleaser="${bin_dir}/goreleaser"

command -v go >/dev/null 2>&1 || die "go not found in PATH; install Go to build goreleaser"
[[ -f "${mod_dir}/go.mod" ]] || die "${mod_dir}/go.mod not found"

# The pinned version lives in tools/goreleaser/go.mod only.
GORELEASER_VERSION="$(go list -C "${mod_dir}" -m -f '{{.Version}}' "${GORELEASER_PKG}")" ||
	die "cannot read the ${GORELEASER_PKG} version from tools/goreleaser/go.mod"

# Prints the version reported by a goreleaser binary (e.g. "v2.15.1"), or nothing.
# goreleaser prints "GitVersion:    2.15.1"; its version comes from the
# module's build info when it is built with go build.
installed_version() {
	[[ -x "$1" ]] || return 0
	"$1" --version 2>/dev/null | sed -n 's/^GitVersion:[[:space:]]*v\{0,1\}\([^[:space:]]*\).*$/v\1/p' | head -1 || true
}

current="$(installed_version "${goreleaser}")"
if [[ "${current}" == "${GORELEASER_VERSION}" ]]; then
	echo "goreleaser ${GORELEASER_VERSION} already installed at ${goreleaser}"
	exit 0
fi

# Build into a temporary directory next to the target so a failed or interrupted
# build never leaves a broken binary behind.
tmp_dir="$(mktemp -d "${bin_dir}/.goreleaser-build.XXXXXX")"
trap 'rm -rf "${tmp_dir}"' EXIT
tmp="${tmp_dir}/goreleaser"

start=${SECONDS}
if ! CGO_ENABLED=0 go build -C "${mod_dir}" -trimpath -o "${tmp}" "${GORELEASER_PKG}"; then
	die "go build of ${GORELEASER_PKG} failed (see output above)"
fi

built="$(installed_version "${tmp}")"
[[ "${built}" == "${GORELEASER_VERSION}" ]] ||
	die "built goreleaser reports '${built:-unknown}', expected ${GORELEASER_VERSION}; check tools/goreleaser/go.mod"

mv -f "${tmp}" "${goreleaser}"

if [[ -n "${current}" ]]; then
	echo "rebuilt goreleaser ${GORELEASER_VERSION} at ${goreleaser} (was ${current}) in $((SECONDS - start))s"
else
	echo "built goreleaser ${GORELEASER_VERSION} at ${goreleaser} in $((SECONDS - start))s"
fi
