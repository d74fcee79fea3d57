#!/usr/bin/env bash
# Side-by-side proxy benchmark: direct, trellis, Envoy, HAProxy, nginx (one worker each) against one
# nginx backend. Prints one Markdown table and writes it to bench/results/latest.md.
#
#   ./bench/run.sh                       # everything, ~5 minutes
#   BENCH_DURATION=5 ./bench/run.sh      # shorter loads (seconds per load, default 10)
#   BENCH_TARGETS=direct,trellis ./bench/run.sh
#   BENCH_ROUNDS=3 ./bench/run.sh        # targets take turns 3 times; medians (~15 minutes)
#
# Other settings: BENCH_RATE (open-loop RPS, default 2000), BENCH_PORT_BASE (default 18400; the
# run uses ports BASE..BASE+54 on 127.0.0.1), BENCH_NO_INSTALL=1 (only check the tools),
# BENCH_SKIP_BUILD=1 (use the existing target/release/trellis), TRELLIS_BIN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
  ./scripts/install-bench-deps.sh >/dev/null || {
    echo "bench: scripts/install-bench-deps.sh failed; run it by hand to see why" >&2
    exit 1
  }
fi
export PATH="$root/bench/.tools/bin:$PATH"
missing=()
for tool in nginx haproxy wrk h2load oha envoy python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: missing tools: ${missing[*]} (scripts/install-bench-deps.sh installs them)" >&2
  exit 1
fi

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "bench: cargo build --release -p trellis-cli" >&2
  cargo build --release -p trellis-cli --quiet
fi

# Every process the runner starts is written here; on any exit, stop the runner, then whatever it
# could not stop itself (each by its own process group id, nothing else).
pid_file=$(mktemp -t trellis-bench-pids.XXXXXX)
runner=""
cleanup() {
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
  while read -r pid; do
    [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done <"$pid_file"
  rm -f "$pid_file"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BENCH_PID_FILE="$pid_file" python3 "$root/bench/run.py" &
runner=$!
set +e
wait "$runner"
rc=$?
set -e
runner=""
exit "$rc"
