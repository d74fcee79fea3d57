#!/usr/bin/env bash
# Where a proxied request's time goes, hop by hop (see bench/hops.py). Needs root for
# `perf record -a` and what the benchmark needs (scripts/install-bench-deps.sh: nginx, oha, perf).
#
#   ./bench/hops.sh                                  # trellis and nginx
#   HOPS_TARGETS=trellis,haproxy,nginx ./bench/hops.sh
#
# Settings: HOPS_RATE (requests per second, default 1000), HOPS_SECONDS (default 3),
# BENCH_PORT_BASE (default 18400), BENCH_NO_INSTALL=1, TRELLIS_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/tools.sh
. "$root/bench/tools.sh"
bench_tools hops nginx oha perf python3
if [ -z "${TRELLIS_BIN:-}" ]; then
  cargo build --release -p trellis-cli --quiet
fi
exec python3 "$root/bench/hops.py"
