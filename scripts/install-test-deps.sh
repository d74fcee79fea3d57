#!/usr/bin/env bash
# Installs the system tools the tests need, only when missing. Safe to run repeatedly.
# - the Rust toolchain pinned in rust-toolchain.toml (cannot be installed here: rustup first);
# - iproute2 (`ip`), iptables, util-linux (`unshare`, `setpriv`) and curl: transparent capture
#   in network namespaces (`trellis up` in transparent mode and the capture tests, as root);
#   the tests run them as an unmodified client would.
set -euo pipefail
need=()
for tool in cargo rustc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "missing: ${need[*]} — install the Rust toolchain (rustup) first" >&2
  exit 1
fi

# tool -> Debian package
declare -A pkg=([ip]=iproute2 [iptables]=iptables [unshare]=util-linux [setpriv]=util-linux [curl]=curl)
missing=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg[$tool]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing packages ${missing[*]}; the capture tests will be skipped (they need root and apt-get to install them)" >&2
    exit 0
  fi
  mapfile -t uniq < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "install-test-deps: installing ${uniq[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${uniq[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q "${uniq[@]}" >/dev/null
  }
fi
