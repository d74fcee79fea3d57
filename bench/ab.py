"""Open-loop latency of two proxies, A/B in alternating rounds, with their CPU per request.

The side-by-side benchmark (run.py) runs every target once per round through four loads; when
the question is only "how does trellis' open-loop tail compare with nginx's at the benchmark's
rate", this answers it with more samples: the targets take turns, `AB_ROUNDS` short open-loop
runs each (`oha -q RATE -c 16 --latency-correction`, the benchmark's load), and for every round
it prints p50/p99, the proxy's CPU time per request (utime + stime over the round, and the
kernel's part of it) and its
system calls per request (`perf stat -e raw_syscalls:sys_enter`), then the medians and how many
rounds each target won on p99.

    bench/ab.sh                             # trellis against nginx, 6 rounds of 8 s
    AB_TARGETS=trellis,haproxy AB_ROUNDS=10 bench/ab.sh
    AB_TARGETS=trellis:/tmp/old/trellis,trellis bench/ab.sh   # two builds of trellis
    AB_HTTP2=1 bench/ab.sh                  # the same load over h2c (prior knowledge)

A target `trellis:PATH` runs the trellis binary at PATH (else `TRELLIS_BIN` or the release
build); it is reported as `trellis:NAME` with NAME the binary's parent directory.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

import configs
import measure


def syscalls(pids: list[int], seconds: int) -> subprocess.Popen:
    """`perf stat` counting the system calls of `pids` for `seconds` (None without perf)."""
    argv = ["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "-p",
            ",".join(str(p) for p in pids), "--", "sleep", str(seconds)]  # fmt: skip
    try:
        return subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def main() -> int:
    names = os.environ.get("AB_TARGETS", "trellis,nginx").split(",")
    rounds = int(os.environ.get("AB_ROUNDS", "6"))
    seconds = int(os.environ.get("AB_SECONDS", "8"))
    rate = int(os.environ.get("BENCH_RATE", "2000"))
    base = int(os.environ.get("BENCH_PORT_BASE", "18400"))
    http2 = os.environ.get("AB_HTTP2", "") not in ("", "0")
    binary = measure.trellis_bin()
    run_dir = tempfile.mkdtemp(prefix="trellis-ab-")
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    json_flag = measure.oha_json_flag()
    rows: dict[str, list[dict]] = {measure.label(n): [] for n in names}
    if len(rows) != len(names):
        sys.exit(f"ab: AB_TARGETS names a target twice: {','.join(names)}")
    try:
        measure.start_backend(run_dir, procs, base)
        started = {}
        for i, target in enumerate(names):
            port = base + 10 + 4 * i
            kind, _, path = target.partition(":")
            p, h2_port = measure.start_proxy(run_dir, procs, kind, path or binary, base, port, "ab")
            started[measure.label(target)] = (h2_port if http2 else port, p)
        for r in range(rounds):
            for name, (port, p) in started.items():
                pids = measure.tree(p.pid)
                user0, sys0 = measure.cpu_split(pids)
                perf = syscalls(pids, seconds - 1)
                o = measure.oha(port, configs.HOST, 16, seconds, rate, http2,
                                os.path.join(run_dir, "oha.log"), json_flag)  # fmt: skip
                served = o["ok"] or 1
                user1, sys1 = measure.cpu_split(pids)
                row = {
                    "p50": o["p50_ms"],
                    "p99": o["p99_ms"],
                    "cpu_us": (user1 - user0 + sys1 - sys0) / served * 1e6,
                    "sys_us": (sys1 - sys0) / served * 1e6,
                    "syscalls": None,
                }
                if perf is not None:
                    _, err = perf.communicate()
                    for line in err.splitlines():
                        count = line.split(",")[0].strip()
                        if count.isdigit():
                            row["syscalls"] = int(count) / (rate * (seconds - 1))
                rows[name].append(row)
                sc = "-" if row["syscalls"] is None else f"{row['syscalls']:.2f}"
                print(f"round {r + 1} {name:14} p50 {row['p50']:.3f} p99 {row['p99']:.3f} ms  "
                      f"cpu {row['cpu_us']:.1f} us/req (kernel {row['sys_us']:.1f})  syscalls {sc}/req", flush=True)  # fmt: skip
    finally:
        procs.stop_all()
    print("\nMedians over the rounds:")
    for name, rs in rows.items():
        med = {k: statistics.median(x[k] for x in rs) for k in ("p50", "p99", "cpu_us", "sys_us")}
        print(f"  {name:14} p50 {med['p50']:.3f} ms  p99 {med['p99']:.3f} ms  "
              f"cpu {med['cpu_us']:.1f} us/req (kernel {med['sys_us']:.1f})")  # fmt: skip
    if len(rows) == 2:
        a, b = rows
        wins = sum(x["p99"] < y["p99"] for x, y in zip(rows[a], rows[b]))
        print(f"  {a}'s p99 below {b}'s in {wins} of {rounds} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
