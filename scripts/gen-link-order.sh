#!/usr/bin/env bash
# Regenerates crates/trellis-cli/link-order.txt, the order in which the release build lays out
# the functions a proxy runs (bench/link_order.py says how it is measured; build.rs applies it).
# Run after changes that rename or add much of the startup or request path, then rebuild:
#
#   ./scripts/gen-link-order.sh && cargo build --release -p trellis-cli
#   ./scripts/gen-link-order.sh --check    # how much of the list the release build still has
#
# Needs what the benchmark needs (scripts/install-bench-deps.sh: nginx, oha, valgrind).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ "${1:-}" = --check ]; then
  cargo build --release -p trellis-cli --quiet
  exec python3 "$root/bench/link_order.py" --check "$root/target/release/trellis"
fi
# shellcheck source=bench/tools.sh
. "$root/bench/tools.sh"
bench_tools gen-link-order nginx oha valgrind callgrind_control nm python3
cargo build --release -p trellis-cli --quiet
exec python3 "$root/bench/link_order.py" "$root/target/release/trellis"
