#!/usr/bin/env bash
# Instructions per proxied request under callgrind: a noise-free comparison of builds (see
# bench/instructions.py).
#
#   ./bench/instructions.sh                     # target/release/trellis (built first)
#   ./bench/instructions.sh OLD_BIN NEW_BIN     # two builds, side by side
#
# Settings: BENCH_REQUESTS (default 20000), BENCH_PORT_BASE (default 18400; uses BASE, BASE+1 and
# BASE+10.. on 127.0.0.1), BENCH_NO_INSTALL=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=bench/tools.sh
. "$root/bench/tools.sh"
bench_tools instructions nginx oha valgrind callgrind_control python3
if [ $# -eq 0 ]; then
  cargo build --release -p trellis-cli --quiet
fi
exec python3 "$root/bench/instructions.py" "$@"
