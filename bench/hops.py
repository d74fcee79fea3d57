"""Where a proxied request's time goes, hop by hop, from the kernel's syscall tracepoints.

The side-by-side benchmark (run.py) says *how much* latency a proxy adds; this says *where*. One
client connection sends requests at a fixed rate (`oha -c 1 -q RATE`), so each request crosses
the machine alone, while `perf record -a` logs every syscall's entry and exit. Each request is
then a chain of eight events, matched in time order by process:

    client send -> proxy recv -> proxy send -> backend recv -> backend send
                -> proxy recv -> proxy send -> client recv

and the gaps between them are the hops: a "wake" gap is the sender's send syscall, the kernel
delivering the bytes and waking the receiver, and the receiver's event loop getting to its
`recv`; a "user" gap is the receiver's own work between its `recv` returning and its `send`
(parsing, routing, encoding). Timestamps have 1 us resolution; the tracepoints cost every target
the same (a few percent), so compare targets within one run.

    bench/hops.sh                        # trellis and nginx, 3 s each
    HOPS_TARGETS=trellis,haproxy,nginx bench/hops.sh
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import configs
import measure

# x86_64 syscall numbers: read, recvfrom, readv, recvmsg / write, sendto, writev, sendmsg.
RECV = {0, 45, 19, 47}
SEND = {1, 44, 20, 46}
HOPS = [
    ("wake: client -> proxy", "client", "enter", SEND),
    ("user: proxy, request", "proxy", "exit", RECV),
    ("wake: proxy -> backend", "proxy", "enter", SEND),
    ("user: backend", "backend", "exit", RECV),
    ("wake: backend -> proxy", "backend", "enter", SEND),
    ("user: proxy, response", "proxy", "exit", RECV),
    ("wake: proxy -> client", "proxy", "enter", SEND),
    ("", "client", "exit", RECV),
]
DIRECT_HOPS = [
    ("wake: client -> backend", "client", "enter", SEND),
    ("user: backend", "backend", "exit", RECV),
    ("wake: backend -> client", "backend", "enter", SEND),
    ("", "client", "exit", RECV),
]
LINE = re.compile(
    r"\s*(\d+)/\d+\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit):\s+NR (\d+)(?: \(.*\))?(?: = (-?\d+))?"
)


def events(script: str, roles: dict[int, str]) -> list[tuple[float, str, str, int, int]]:
    """(time, role, enter|exit, syscall, return value) of the processes in `roles`, in order."""
    out = []
    for line in script.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        role = roles.get(int(m.group(1)))
        if role is None:
            continue
        ret = int(m.group(5)) if m.group(5) is not None else 0
        out.append((float(m.group(2)), role, m.group(3), int(m.group(4)), ret))
    out.sort()
    return out


def chains(evs, hops) -> list[list[float]]:
    """The timestamps of every complete chain; a client send restarts a broken one."""
    found, cur = [], []
    for t, role, kind, nr, ret in evs:
        _, want_role, want_kind, want_nrs = hops[len(cur)]
        data = kind == "enter" or ret > 0  # a recv that returned bytes, not EAGAIN
        if role == want_role and kind == want_kind and nr in want_nrs and data:
            cur.append(t)
            if len(cur) == len(hops):
                found.append(cur)
                cur = []
        elif role == "client" and kind == "enter" and nr in SEND:
            cur = [t]
    return found


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def trace(run_dir: str, name: str, port: int, roles: dict[int, str], seconds: int, rate: int):
    """Runs the client against `port` under `perf record -a`; returns the chains' gaps in us."""
    data = os.path.join(run_dir, f"{name}.perf")
    perf = subprocess.Popen(
        ["perf", "record", "-q", "-a", "-m", "1024", "-o", data,
         "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "--", "sleep", str(seconds + 2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    url = f"http://{configs.HOST}/"
    client = subprocess.Popen(
        ["oha", "--no-tui", "-c", "1", "-q", str(rate), "-z", f"{seconds}s",
         "--connect-to", f"{configs.HOST}:80:127.0.0.1:{port}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    roles = dict(roles)
    roles[client.pid] = "client"
    client.wait()
    if perf.wait() != 0:
        sys.exit("hops: perf record failed (root, or kernel.perf_event_paranoid <= -1, is needed)")
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "pid,tid,time,event,trace"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    hops = DIRECT_HOPS if "proxy" not in roles.values() else HOPS
    found = chains(events(script, roles), hops)
    if len(found) < 100:
        sys.exit(f"hops: only {len(found)} complete request chains through {name}; see {run_dir}")
    gaps = {label: [(c[i + 1] - c[i]) * 1e6 for c in found] for i, (label, *_) in enumerate(hops[:-1])}
    gaps["total"] = [(c[-1] - c[0]) * 1e6 for c in found]
    return gaps, len(found)


def main() -> int:
    names = os.environ.get("HOPS_TARGETS", "trellis,nginx").split(",")
    seconds = int(os.environ.get("HOPS_SECONDS", "3"))
    rate = int(os.environ.get("HOPS_RATE", "1000"))
    base = int(os.environ.get("BENCH_PORT_BASE", "18400"))
    binary = measure.trellis_bin()
    run_dir = tempfile.mkdtemp(prefix="trellis-hops-")
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    results = {}
    try:
        bproc = measure.start_backend(run_dir, procs, base)
        backend_roles = {p: "backend" for p in measure.tree(bproc.pid)}
        results["direct"] = trace(run_dir, "direct", base, backend_roles, seconds, rate)
        for i, name in enumerate(names):
            port = base + 10 + 4 * i
            p, _ = measure.start_proxy(run_dir, procs, name, binary, base, port, "hops")
            subprocess.run(
                ["oha", "--no-tui", "-c", "1", "-n", "2000", "--connect-to",
                 f"{configs.HOST}:80:127.0.0.1:{port}", f"http://{configs.HOST}/"],
                capture_output=True, check=True,
            )  # fmt: skip
            roles = dict(backend_roles)
            roles.update({q: "proxy" for q in measure.tree(p.pid)})
            results[name] = trace(run_dir, name, port, roles, seconds, rate)
            procs.stop(p)
    finally:
        procs.stop_all()
    direct_gaps, direct_n = results.pop("direct")
    print(f"Hop by hop, one connection at {rate} requests/s, {seconds} s per target;")
    print("us, median (90th percentile) over the requests whose whole chain was seen.\n")
    print("| hop | " + " | ".join(f"{n} ({results[n][1]} req)" for n in results) + " |")
    print("|---|" + "---:|" * len(results))
    for label in [h[0] for h in HOPS[:-1]] + ["total"]:
        cells = [f"{statistics.median(g[label]):.0f} ({pct(g[label], 0.9):.0f})" for g, _ in results.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    parts = ", ".join(
        f"{label} {statistics.median(v):.0f} ({pct(v, 0.9):.0f})" for label, v in direct_gaps.items()
    )
    print(f"\nDirect, no proxy ({direct_n} req): {parts}.")
    print(f"\nRaw traces: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
