#!/usr/bin/env bash
# Installs the system tools the tests need, only when missing. Safe to run repeatedly.
# Today the test suite needs only the Rust toolchain pinned in rust-toolchain.toml; later stages
# (end-to-end proxy tests and benchmarks) add their packages here, never by hand.
set -euo pipefail
need=()
for tool in cargo rustc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "missing: ${need[*]} — install the Rust toolchain (rustup) first" >&2
  exit 1
fi
