#!/usr/bin/env python3
"""Writes crates/trellis-cli/link-order.txt: the release binary's functions in the order the
linker should place them (see scripts/gen-link-order.sh and crates/trellis-cli/build.rs).

A proxy executes about 2.5 MiB of the binary's 10 MiB of code, but in the linker's default
order those functions are spread over the whole text, and the kernel maps code in 64 KiB
blocks around each page touched: an idle proxy ends up with most of the binary resident.
Listed first and together, they fill a few MiB.

The list comes from callgrind runs of the release binary (names not demangled, so they are
the symbols the linker sees) in the two ways a sidecar runs:

  1. `trellis proxy --config DIR` on the benchmark's 100-route configuration;
  2. `trellis proxy --xds ADDR` fed by `trellis control` over the same configuration;

each started, scraped on its admin endpoints, then sent HTTP/1.1 and then h2c requests, with a
callgrind dump after each phase. The layout puts the functions only the xDS run reached
first, then those both reached, then those only the directory run reached: either mode's
code is one contiguous run. Within each of the three, by the phase that first reaches a
function, in this order: HTTP/1.1 requests (most instructions first, so the hottest code
shares pages), startup, admin pages, then what only h2c requests reach — so an idle proxy
that has answered one HTTP/1.1 request has touched one contiguous run of code, not one
interleaved with HTTP/2's. Functions the runs never reached keep the linker's order, after
these.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import configs
import instructions
import measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "trellis-cli", "link-order.txt")


def text_symbols(binary: str) -> set[str]:
    out = subprocess.run(
        ["nm", "--defined-only", binary], capture_output=True, text=True, check=True
    ).stdout
    return {p[2] for p in (line.split() for line in out.splitlines()) if len(p) == 3 and p[1] in "tTwW"}


def dumps_of(run_dir: str, tag: str) -> list[str]:
    """The dumps of run `tag` in the order they were written (callgrind numbers them)."""
    prefix = f"callgrind.{tag}."
    numbered = [f for f in os.listdir(run_dir) if f.startswith(prefix) and f[len(prefix) :].isdigit()]
    return [os.path.join(run_dir, f) for f in sorted(numbered, key=lambda f: int(f[len(prefix) :]))]


# The phases of a run, each ended by a callgrind dump, in the order their functions are placed.
PHASES = ("http1", "startup", "admin", "http2")


def dump(proxy: subprocess.Popen) -> None:
    """Ends a phase: callgrind writes its counters to a new file and zeroes them."""
    subprocess.run(["callgrind_control", "-d", str(proxy.pid)], capture_output=True, check=True)


def exercise(proxy: subprocess.Popen, port: int, admin: int) -> None:
    """Admin pages, then HTTP/1.1 and h2c requests through the outbound listener."""
    for page in ("stats/prometheus", "config_dump", "clusters"):
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/{page}", timeout=60) as r:
            r.read()
    dump(proxy)
    # As the benchmark does: the URL names the service, so HTTP/1.1 `Host` and HTTP/2
    # `:authority` both do, and --connect-to sends the connections to the proxy.
    target = ["--connect-to", f"{configs.HOST}:80:127.0.0.1:{port}", f"http://{configs.HOST}/"]
    for extra, n in (([], "3000"), (["--http2"], "1000")):
        load = subprocess.run(
            ["oha", "-n", n, "-c", "16", "--no-tui", *extra, *target],
            capture_output=True,
            text=True,
            check=True,
        )
        if f"[200] {n} responses" not in " ".join(load.stdout.split()):
            sys.exit(f"link-order: not every request got 200:\n{load.stdout}")
        dump(proxy)
    time.sleep(1)


def run(procs: measure.Procs, run_dir: str, tag: str, argv: list[str], env, ready: str, port: int, admin: int):
    """One proxy under callgrind; returns each phase's costs by name (see PHASES)."""
    out = os.path.join(run_dir, f"callgrind.{tag}")
    cg = ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}"]
    log = os.path.join(run_dir, f"{tag}.log")
    p = procs.start(cg + argv, log, env)
    try:
        measure.wait_ready(ready, p, log, timeout=120.0)
        dump(p)
        exercise(p, port, admin)
    finally:
        procs.stop(p)
    dumps = dumps_of(run_dir, tag)
    if len(dumps) < 4:
        sys.exit(f"link-order: callgrind wrote {len(dumps)} dumps for {tag}; see {log}")
    # Dumped in the order the run goes through them (not PHASES', the placement order).
    return dict(zip(("startup", "admin", "http1", "http2"), map(instructions.self_costs, dumps)))


def layout(runs: dict, symbols: set[str]) -> list[str]:
    """xDS-only functions, then those both modes run, then directory-only ones (each mode's
    code one contiguous run); within each, phase by phase in the order of PHASES, most
    instructions first."""
    reached = {mode: set().union(*phases.values()) for mode, phases in runs.items()}
    d_all, x_all = reached["dir"], reached["xds"]
    order: list[str] = []
    placed: set[str] = set()
    for keep in (
        lambda n: n not in d_all,
        lambda n: n in d_all and n in x_all,
        lambda n: n not in x_all,
    ):
        for phase in PHASES:
            costs = runs["dir"][phase] + runs["xds"][phase]
            for name, _ in costs.most_common():
                if name in symbols and name not in placed and keep(name):
                    order.append(name)
                    placed.add(name)
    return order


def check(binary: str) -> int:
    """How many of the listed functions `binary` still has under the same name (a rename,
    a dependency update or another compiler changes names; those functions then keep the
    linker's default place)."""
    with open(OUT, encoding="utf-8") as f:
        listed = [line.strip() for line in f if line.strip()]
    symbols = text_symbols(binary)
    found = sum(1 for name in listed if name in symbols)
    print(f"link-order: {found} of {len(listed)} listed functions are in {binary}")
    if found < 0.9 * len(listed):
        print("link-order: stale; run ./scripts/gen-link-order.sh", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--check"]:
        return check(args[1] if len(args) > 1 else os.path.join(ROOT, "target", "release", "trellis"))
    binary = args[0] if args else os.path.join(ROOT, "target", "release", "trellis")
    base = int(os.environ.get("BENCH_PORT_BASE", "18400"))
    run_dir = tempfile.mkdtemp(prefix="trellis-link-order-")
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    help_text = subprocess.run([binary, "proxy", "--help"], capture_output=True, text=True).stdout
    runs: dict[str, dict[str, collections.Counter]] = {}
    try:
        measure.start_backend(run_dir, procs, base)

        # 1. Directory mode.
        port, admin = base + 10, base + 11
        t = configs.trellis(run_dir, binary, base, port, admin, help_text)
        runs["dir"] = run(procs, run_dir, "dir", t.argv, t.env, t.ready_url, port, admin)

        # 2. xDS mode, from a control plane serving the same directory.
        xds, monitoring, port, admin = base + 20, base + 21, base + 22, base + 23
        cp = [binary, "control", "--config", configs.trellis_dir(run_dir, base), "--namespace", "bench"]
        cp += ["--xds-addr", f"127.0.0.1:{xds}", "--monitoring-addr", f"127.0.0.1:{monitoring}"]
        clog = os.path.join(run_dir, "control.log")
        measure.wait_port(xds, procs.start(cp, clog, t.env), clog, timeout=60.0)
        argv = [binary, "proxy", "--xds", f"127.0.0.1:{xds}", "--namespace", "bench"]
        argv += ["--workload", "client-v1", "--label", "app=client", "--concurrency", "1"]
        argv += ["--outbound-addr", f"127.0.0.1:{port}", "--admin-addr", f"127.0.0.1:{admin}"]
        argv += ["--access-log", "off", "--health-addr", "off"]
        ready = f"http://127.0.0.1:{admin}/ready"
        runs["xds"] = run(procs, run_dir, "xds", argv, t.env, ready, port, admin)
    finally:
        procs.stop_all()
    shutil.rmtree(run_dir, ignore_errors=True)

    order = layout(runs, text_symbols(binary))
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in order))
    print(f"link-order: {len(order)} functions -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
