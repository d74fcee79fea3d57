"""Instructions per proxied request, counted by valgrind's callgrind: a number that does not move
with the machine's noise, for comparing two builds of the hot path (run.py's RPS and CPU times
vary by 10-30 % between runs on a shared 2-core VM; this varies by well under 1 %).

For each binary: the benchmark's backend (nginx, 1 KiB) and trellis with the benchmark's
100-route configuration under callgrind, a warm-up of 2,000 requests, the counters zeroed, then
BENCH_REQUESTS (default 20,000) HTTP/1.1 keep-alive requests from `oha -c 32` (INSTRUCTIONS_OHA
adds oha options: `--http2` for h2c with prior knowledge, one stream at a time on each of the
32 connections, the proxy forwarding over HTTP/1.1 either way; `--disable-keepalive` for a
connection per request). Prints the user-space
instructions per request and the functions that execute most of them. Kernel time is not counted:
syscalls are the same between builds of the same design.

    bench/instructions.sh                          # target/release/trellis
    bench/instructions.sh OLD_BINARY NEW_BINARY    # both, side by side
    INSTRUCTIONS_OHA=--http2 bench/instructions.sh # requests over h2c
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time

import configs
import measure


def self_costs(path: str) -> collections.Counter:
    """Instructions executed in each function itself (callgrind's exclusive cost)."""
    names: dict[str, str] = {}
    costs: collections.Counter = collections.Counter()
    fn = None
    call_line = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "fn":
                    fn = names.get(m.group(2), m.group(2))
                continue
            if line.startswith("calls="):
                call_line = True  # the next cost line is the callee's inclusive cost
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    if call_line:
                        call_line = False
                    else:
                        costs[fn] += int(parts[1])
    return costs


def measure_binary(binary: str, run_dir: str, backend_port: int, port: int, requests: int):
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    out = os.path.join(run_dir, f"callgrind.{port}")
    help_text = subprocess.run(
        [binary, "proxy", "--help"], capture_output=True, text=True, check=False
    ).stdout
    t = configs.trellis(run_dir, binary, backend_port, port, port + 1, help_text)
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + t.argv
    log = os.path.join(run_dir, f"trellis.{port}.log")
    # The URL names the host (HTTP/1.1 `Host` and HTTP/2 `:authority` alike); --connect-to
    # sends the connections to the proxy.
    url = f"http://{configs.HOST}/"
    oha = ["oha", "-c", "32", "--no-tui", "--connect-to", f"{configs.HOST}:80:127.0.0.1:{port}", url]
    oha[1:1] = os.environ.get("INSTRUCTIONS_OHA", "").split()
    try:
        p = procs.start(argv, log, t.env)
        measure.wait_ready(t.ready_url, p, log, timeout=120.0)
        subprocess.run(oha[:1] + ["-n", "2000"] + oha[1:], capture_output=True, check=True)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], capture_output=True, check=True)
        load = subprocess.run(
            oha[:1] + ["-n", str(requests)] + oha[1:], capture_output=True, text=True, check=True
        )
        ok = re.search(r"\[200\]\s+(\d+) responses", load.stdout)
        if not ok or int(ok.group(1)) != requests:
            sys.exit(f"instructions: not every request got 200 through {binary}:\n{load.stdout}")
        subprocess.run(["callgrind_control", "-d", str(p.pid)], capture_output=True, check=True)
        time.sleep(1)
    finally:
        procs.stop_all()
    dumps = sorted(
        (os.path.join(run_dir, f) for f in os.listdir(run_dir) if f.startswith(f"callgrind.{port}.")),
        key=os.path.getmtime,
    )
    if not dumps:
        sys.exit(f"instructions: callgrind wrote no dump; see {log}")
    return self_costs(dumps[-1])


def main() -> int:
    binaries = sys.argv[1:] or [os.path.join(configs_root(), "target", "release", "trellis")]
    requests = int(os.environ.get("BENCH_REQUESTS", "20000"))
    base = int(os.environ.get("BENCH_PORT_BASE", "18400"))
    run_dir = tempfile.mkdtemp(prefix="trellis-instructions-")
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    try:
        measure.start_backend(run_dir, procs, base)
        results = []
        for i, binary in enumerate(binaries):
            print(f"instructions: {binary} ...", file=sys.stderr, flush=True)
            results.append(measure_binary(binary, run_dir, base, base + 10 + 2 * i, requests))
    finally:
        procs.stop_all()
    totals = [sum(c.values()) / requests for c in results]
    for binary, total in zip(binaries, totals):
        print(f"{total:10,.0f} instructions per request  {binary}")
    if len(totals) == 2:
        print(f"{(totals[1] - totals[0]) / totals[0]:+.1%} (second vs first)")
    print(f"\nWhere they go ({binaries[-1]}), per request:")
    for name, cost in results[-1].most_common(25):
        print(f"{cost / requests:8,.0f}  {name[:110]}")
    return 0


def configs_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    sys.exit(main())
