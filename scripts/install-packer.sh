#!/usr/bin/env bash
# Build the Packer version pinned in tools/go.mod (v1.15.0) into ${PHOENIX_BIN:-<repo>/bin}/packer.
#
# Idempotent: does nothing when the binary already exists and reports the
# expected version. Needs only a Go toolchain (and access to the Go module
# proxy); cgo is disabled, so no C compiler is required.
set -euo pipefail

PACKER_PKG="github.com/hashicorp/packer"

# tools/ is a self-contained module; never resolve it through a go.work file.
export GOWORK=off

die() {
	echo "install-packer: error: $*" >&2
	exit 1
}

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${PHOENIX_BIN:-${repo_root}/bin}"
mkdir -p "${bin_dir}" || die "cannot create ${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)" # absolute: go build -C changes directory
packer="${bin_dir}/packer"

command -v go >/dev/null 2>&1 || die "go not found in PATH; install Go to build packer"
[[ -f "${repo_root}/tools/go.mod" ]] || die "${repo_root}/tools/go.mod not found"

# The pinned version (v1.15.0) lives in tools/go.mod only.
PACKER_VERSION="$(go list -C "${repo_root}/tools" -m -f '{{.Version}}' "${PACKER_PKG}")" ||
	die "cannot read the ${PACKER_PKG} version from tools/go.mod"

# Prints the version reported by a packer binary (e.g. "v1.15.0"), or nothing.
installed_version() {
	[[ -x "$1" ]] || return 0
	CHECKPOINT_DISABLE=1 "$1" version 2>/dev/null | sed -n '1s/^Packer \(v[^ ]*\).*$/\1/p' || true
}

current="$(installed_version "${packer}")"
if [[ "${current}" == "${PACKER_VERSION}" ]]; then
	echo "packer ${PACKER_VERSION} already installed at ${packer}"
	exit 0
fi

# Build into a temporary directory next to the target so a failed or interrupted
# build never leaves a broken binary behind.
tmp_dir="$(mktemp -d "${bin_dir}/.packer-build.XXXXXX")"
trap 'rm -rf "${tmp_dir}"' EXIT
tmp="${tmp_dir}/packer"

start=${SECONDS}
if ! CGO_ENABLED=0 go build -C "${repo_root}/tools" -trimpath -o "${tmp}" "${PACKER_PKG}"; then
	die "go build of ${PACKER_PKG} failed (see output above)"
fi

built="$(installed_version "${tmp}")"
[[ "${built}" == "${PACKER_VERSION}" ]] ||
	die "built packer reports '${built:-unknown}', expected ${PACKER_VERSION}; check tools/go.mod"

mv -f "${tmp}" "${packer}"

if [[ -n "${current}" ]]; then
	echo "rebuilt packer ${PACKER_VERSION} at ${packer} (was ${current}) in $((SECONDS - start))s"
else
	echo "built packer ${PACKER_VERSION} at ${packer} in $((SECONDS - start))s"
fi
