#!/usr/bin/env bash
# The control plane at scale: `trellis control` with 1,000 services, 10,000 endpoints and 200
# simulated proxies (see crates/trellis-control/benches/control_plane.rs). Prints a Markdown table.
#
#   ./bench/control-plane.sh
#   CP_SERVICES=2000 CP_PROXIES=100 ./bench/control-plane.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p trellis-cli --quiet
TRELLIS_BIN="$PWD/target/release/trellis" cargo bench -p trellis-control --bench control_plane --quiet
