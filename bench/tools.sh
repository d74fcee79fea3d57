# Sourced by the benchmark scripts: installs what is missing (unless BENCH_NO_INSTALL=1), puts
# bench/.tools/bin on PATH and stops with a message naming any tool still missing.
#
#   bench_tools NAME TOOL...     # NAME prefixes the message
bench_tools() {
  local name=$1 root tool
  shift
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ "${BENCH_NO_INSTALL:-0}" != 1 ]; then
    "$root/scripts/install-bench-deps.sh" >/dev/null
  fi
  export PATH="$root/bench/.tools/bin:$PATH"
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "$name: missing $tool (scripts/install-bench-deps.sh installs it)" >&2
      exit 1
    }
  done
}
