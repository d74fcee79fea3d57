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
if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  ./scripts/install-bench-deps.sh >/dev/null
fi
export PATH="$root/bench/.tools/bin:$PATH"
for tool in nginx oha perf python3; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "hops: missing $tool (scripts/install-bench-deps.sh installs it)" >&2
    exit 1
  }
done
if [ -z "${TRELLIS_BIN:-}" ]; then
  cargo build --release -p trellis-cli --quiet
fi
exec python3 "$root/bench/hops.py"
