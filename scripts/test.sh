#!/usr/bin/env bash
# The project's test command (README's second command; .ci/run calls it too).
# Installs what the tests need, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-toolchain.sh
./scripts/install-test-deps.sh
cargo test --workspace --all-targets
# Doc tests are not covered by --all-targets.
cargo test --workspace --doc
