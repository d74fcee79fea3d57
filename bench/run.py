"""Side-by-side proxy benchmark: direct, trellis (one sidecar and a pair), Envoy, HAProxy and nginx.

Driven by bench/run.sh (which installs the tools and builds trellis). For every target, in one
run and against one nginx backend serving 1 KiB over HTTP/1.1 keep-alive:

  (a) closed loop, maximum throughput: wrk -t1 -c32 -d<D>s              -> RPS, CPU per 1k req
  (b) open loop at a fixed rate:       oha -q 2000 -c 16 --latency-correction -> p50/p99/max
  (c) HTTP/2 cleartext (prior knowledge): the same open loop with oha --http2, and a closed loop
      with h2load -t1 -c32 -m1 for throughput (the proxies forward over HTTP/1.1 keep-alive)

Settings (environment): BENCH_DURATION (s, default 10), BENCH_RATE (default 2000),
BENCH_ROUNDS (default 1), BENCH_TARGETS (comma list, default all), BENCH_PORT_BASE (default
18400), TRELLIS_BIN.

With BENCH_ROUNDS=N every target is measured N times, the targets taking turns round after
round (so a noisy minute on a shared machine hits every target once, not one target N times),
and each number in the report is the median of its N values; error counts are summed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import configs  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
TOOLS = os.path.join(BENCH, ".tools", "bin")
ALL = ["direct", "trellis", "trellis-pair", "envoy", "haproxy", "nginx"]
# Ports used, relative to BENCH_PORT_BASE: backend h1/h2, trellis + admin, envoy, haproxy, nginx,
# the trellis pair (client outbound + admin, server inbound + admin + outbound).
PORT_OFFSETS = [0, 1, 10, 11, 20, 30, 31, 40, 41, 50, 51, 52, 53, 54]


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"bench: {name} must be an integer")


def trellis_help(binary: str) -> str | None:
    """`trellis proxy --help`, or None when the binary has no `proxy` command."""
    if not os.access(binary, os.X_OK):
        return None
    run = subprocess.run([binary, "proxy", "--help"], capture_output=True, text=True)
    return run.stdout if run.returncode == 0 else None


def build_targets(run_dir: str, base: int, backend: configs.Target, wanted: list[str]):
    """The targets to measure, and the ones skipped with the reason."""
    targets, skipped = [], {}
    bh1 = backend.h1_port
    for name in wanted:
        if name == "direct":
            targets.append(configs.direct(bh1, backend.h2_port))
        elif name == "trellis":
            binary = os.environ.get("TRELLIS_BIN", os.path.join(ROOT, "target/release/trellis"))
            help_text = trellis_help(binary)
            if help_text is None:
                skipped[name] = f"pending: `{binary} proxy` does not exist yet"
                continue
            targets.append(configs.trellis(run_dir, binary, bh1, base + 10, base + 11, help_text))
        elif name == "trellis-pair":
            binary = os.environ.get("TRELLIS_BIN", os.path.join(ROOT, "target/release/trellis"))
            help_text = trellis_help(binary) or ""
            ports = [base + o for o in (50, 51, 52, 53, 54)]
            pair = configs.trellis_pair(run_dir, binary, bh1, ports, help_text)
            if pair is None:
                skipped[name] = f"pending: `{binary} proxy` has no inbound listener"
                continue
            targets.append(pair)
        elif name == "envoy":
            envoy = os.path.join(TOOLS, "envoy")
            targets.append(configs.envoy(run_dir, envoy, bh1, base + 20, 40000 + os.getpid() % 1000))
        elif name == "haproxy":
            targets.append(configs.haproxy(run_dir, "haproxy", bh1, base + 30, base + 31))
        elif name == "nginx":
            targets.append(configs.nginx_proxy(run_dir, "nginx", bh1, base + 40, base + 41))
        else:
            sys.exit(f"bench: unknown target {name!r} (known: {', '.join(ALL)})")
    return targets, skipped


def measure_target(t: configs.Target, procs: measure.Procs, run_dir: str, cfg: dict) -> dict:
    """Starts `t` (unless direct), runs the three loads, stops it."""
    log = os.path.join(run_dir, f"{t.name}.log")
    proc = None
    result: dict = {"name": t.name, "notes": list(t.notes)}
    companions = []
    try:
        for argv, env, ready in t.companions:
            c = procs.start(argv, log, env)
            companions.append(c)
            measure.wait_ready(ready, c, log)
        if t.argv:
            proc = procs.start(t.argv, log, t.env)
            if t.ready_url:
                measure.wait_ready(t.ready_url, proc, log)
            measure.wait_port(t.h1_port, proc, log)
            if t.h2_port:
                measure.wait_port(t.h2_port, proc, log)
        measure.check_response(t.h1_port, configs.HOST, configs.BODY_BYTES)
        url1 = f"http://127.0.0.1:{t.h1_port}/"
        pids = [p for c in [*companions, proc] if c for p in measure.tree(c.pid)]
        time.sleep(0.5)
        # Idle: configuration loaded, one request served, no load yet.
        result["rss_idle_kib"] = measure.rss_kib(pids) if proc else None
        result["anon_idle_kib"] = measure.rss_kib(pids, "RssAnon") if proc else None
        # Warm up (connections, pools, caches) so the measured loads start from a steady state.
        measure.wrk(url1, configs.HOST, 32, 2, log)
        dur = cfg["duration"]
        with measure.RssSampler(pids) as rss:
            cpu0 = measure.cpu_seconds(pids)
            closed = measure.wrk(url1, configs.HOST, 32, dur, log)
            cpu = measure.cpu_seconds(pids) - cpu0
            result["closed"] = closed
            if proc and closed["requests"]:
                result["cpu_ms_per_1k"] = cpu * 1000 / (closed["requests"] / 1000)
            result["open"] = measure.oha(
                t.h1_port, configs.HOST, 16, dur, cfg["rate"], False, log, cfg["json_flag"]
            )
            if t.h2_port:
                result["h2_open"] = measure.oha(
                    t.h2_port, configs.HOST, 16, dur, cfg["rate"], True, log, cfg["json_flag"]
                )
                result["h2_closed"] = measure.h2load(t.h2_port, configs.HOST, 32, dur, log)
        result["rss_load_kib"] = rss.max_kib if proc else None
        result["anon_load_kib"] = rss.max_anon_kib if proc else None
        if any(c.poll() is not None for c in [*companions, proc] if c):
            raise RuntimeError(f"{t.name} exited during the run (see {log})")
    except Exception as e:  # one target failing must not lose the others' results
        result["error"] = str(e)
        print(f"bench: {t.name}: {e}", file=sys.stderr)
    finally:
        for c in [proc, *reversed(companions)]:
            if c:
                procs.stop(c)
    return result


def merge_rounds(rounds: list[dict]) -> dict:
    """One result from a target's rounds: the median of every number, error counts summed,
    the first of everything else; an error in any round is kept."""
    merged: dict = {}
    for key in dict.fromkeys(k for r in rounds for k in r if k != "error"):
        values = [r.get(key) for r in rounds]
        value = next((v for v in values if v is not None), None)
        if isinstance(value, dict):
            merged[key] = merge_rounds([v for v in values if isinstance(v, dict)])
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            merged[key] = value
        elif key == "errors":
            merged[key] = sum(v for v in values if isinstance(v, (int, float)))
        else:
            numbers = [v for v in values if isinstance(v, (int, float))]
            merged[key] = statistics.median(numbers) if numbers else None
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        merged["error"] = "; ".join(errors)
    return merged


def main() -> int:
    cfg = {
        "duration": env_int("BENCH_DURATION", 10),
        "rate": env_int("BENCH_RATE", 2000),
        "json_flag": measure.oha_json_flag(),
    }
    base = env_int("BENCH_PORT_BASE", 18400)
    rounds = max(1, env_int("BENCH_ROUNDS", 1))
    wanted = [n.strip() for n in os.environ.get("BENCH_TARGETS", ",".join(ALL)).split(",") if n]
    run_dir = tempfile.mkdtemp(prefix="trellis-bench-")
    procs = measure.Procs(os.environ.get("BENCH_PID_FILE", os.path.join(run_dir, "pids")))

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    busy_before = measure.machine_busy()
    results = []
    busy = [p for p in PORT_OFFSETS if not measure.port_free(base + p)]
    if busy:
        ports = ", ".join(str(base + p) for p in busy)
        sys.exit(f"bench: ports in use on 127.0.0.1: {ports}; set BENCH_PORT_BASE to another base")
    try:
        backend = configs.backend(run_dir, "nginx", base, base + 1)
        blog = os.path.join(run_dir, "backend.log")
        bproc = procs.start(backend.argv, blog)
        measure.wait_port(base, bproc, blog)
        measure.wait_port(base + 1, bproc, blog)
        targets, skipped = build_targets(run_dir, base, backend, wanted)
        per_target: list[list[dict]] = [[] for _ in targets]
        for n in range(rounds):
            for t, measured in zip(targets, per_target):
                of = f" (round {n + 1} of {rounds})" if rounds > 1 else ""
                print(f"bench: {t.name}{of} ...", file=sys.stderr, flush=True)
                measured.append(measure_target(t, procs, run_dir, cfg))
        results = [merge_rounds(m) for m in per_target]
    finally:
        procs.stop_all()
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs, Linux {platform.release()})",
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "busy_before": busy_before,
        "duration": cfg["duration"],
        "rate": cfg["rate"],
        "rounds": rounds,
        "versions": report.versions(os.path.join(BENCH, ".tools", "versions.txt"), ROOT),
        "skipped": skipped,
        "run_dir": run_dir,
    }
    text = report.markdown(results, meta)
    print(text)
    out_dir = os.path.join(BENCH, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "latest.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out_dir, "latest.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    failed = [r["name"] for r in results if "error" in r]
    if failed:
        print(f"bench: failed: {', '.join(failed)}; logs in {run_dir}", file=sys.stderr)
        return 1
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
