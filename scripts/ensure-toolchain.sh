#!/usr/bin/env bash
# rust-toolchain.toml pins the machine's stable release by number (1.95.0). This machine's kind
# ships that release as rustup's `stable` and has no network to fetch another, so when rustup does
# not know the pinned name yet, point the name at the installed stable toolchain (the same
# compiler) instead of letting rustup try a download. Safe to run repeatedly.
set -euo pipefail
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml")
cd /
if ! command -v rustup >/dev/null 2>&1; then
  exit 0
fi
if rustup toolchain list | grep -q "^${pinned}-"; then
  exit 0
fi
stable_version=$(rustc +stable --version 2>/dev/null | awk '{print $2}')
if [ "$stable_version" = "$pinned" ]; then
  host=$(rustc +stable -vV | sed -n 's/^host: //p')
  rustup toolchain link "$pinned" "$(rustc +stable --print sysroot)"
  echo "linked toolchain $pinned to the installed stable ($host)"
else
  echo "rust-toolchain.toml pins $pinned but stable is ${stable_version:-missing}; rustup will try to install $pinned" >&2
fi
