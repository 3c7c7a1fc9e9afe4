#!/usr/bin/env bash
# Installs the system packages that phoenix's tests and demo use, from
# Debian's packages: the AWS CLI v2 (for the CLI scenario), for the linux
# runtime debootstrap and iptables (each instance's network namespace
# redirects its outbound connections with it), shellcheck (the lint of the
# hardening script and the project's shell scripts), and lynis (the
# independent audit of the hardened images in the tests and the bench).
# Idempotent; prints one line per package.
set -euo pipefail

need=()
[ -x /usr/bin/aws ] || need+=(awscli)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
[ -x /usr/sbin/iptables-legacy ] || [ -x /usr/sbin/iptables ] || need+=(iptables)
[ -x /usr/sbin/lynis ] || need+=(lynis)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-deps: awscli, debootstrap, shellcheck, iptables and lynis already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${need[*]} and no apt-get here; install them by hand" >&2
  exit 0
fi
echo "install-deps: installing ${need[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
echo "install-deps: installed ${need[*]}"
