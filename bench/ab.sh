#!/usr/bin/env bash
# Open-loop latency of two proxies in alternating rounds, with CPU and syscalls per request (see
# bench/ab.py). Needs what the benchmark needs (scripts/install-bench-deps.sh: nginx, oha, perf).
#
#   ./bench/ab.sh                                    # trellis against nginx
#   AB_TARGETS=trellis,haproxy AB_ROUNDS=10 ./bench/ab.sh
#
# Settings: AB_ROUNDS (default 6), AB_SECONDS (default 8), AB_HTTP2=1 (h2c load), BENCH_RATE (default 2000),
# BENCH_PORT_BASE (default 18400), BENCH_NO_INSTALL=1, TRELLIS_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/tools.sh
. "$root/bench/tools.sh"
bench_tools ab nginx haproxy oha perf python3
if [ -z "${TRELLIS_BIN:-}" ]; then
  cargo build --release -p trellis-cli --quiet
fi
exec python3 "$root/bench/ab.py"
