#!/usr/bin/env bash
# What an idle keep-alive connection costs each proxy in private memory (see bench/idle.py).
# Needs what the benchmark needs (scripts/install-bench-deps.sh: nginx, haproxy).
#
#   ./bench/idle.sh                                  # trellis, nginx, haproxy
#   IDLE_TARGETS=trellis,trellis:/tmp/old/trellis ./bench/idle.sh
#
# Settings: IDLE_CONNECTIONS (default 1000), IDLE_SETTLE (seconds, default 2),
# BENCH_PORT_BASE (default 18400), BENCH_NO_INSTALL=1, TRELLIS_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/tools.sh
. "$root/bench/tools.sh"
bench_tools idle nginx haproxy python3
if [ -z "${TRELLIS_BIN:-}" ]; then
  cargo build --release -p trellis-cli --quiet
fi
exec python3 "$root/bench/idle.py"
