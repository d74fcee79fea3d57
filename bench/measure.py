"""Process handling, /proc sampling and the load generators (wrk, oha) with their parsers.

Everything started here is recorded in a pid file and in `Procs`, so the runner (and run.sh's
EXIT trap, as a backstop) stops exactly the processes the benchmark started, by their ids.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import configs

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Procs:
    """The processes this run started; `stop_all` ends each by its process group id."""

    def __init__(self, pid_file: str):
        self.pid_file = pid_file
        self.live: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: str, env: dict[str, str] | None = None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        out = open(log, "ab")
        # A new session: the process and its children (nginx workers) share one group id.
        p = subprocess.Popen(argv, stdout=out, stderr=out, env=full_env, start_new_session=True)
        out.close()
        self.live.append(p)
        with open(self.pid_file, "a", encoding="utf-8") as f:
            f.write(f"{p.pid}\n")
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in list(reversed(self.live)):
            self.stop(p)


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (an nginx master and its worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pids: list[int], field: str = "VmRSS") -> int:
    """Sum of `field` (VmRSS, or RssAnon: the private, non-file part) over `pids` in KiB
    (processes that are gone count 0)."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime over `pids`, in seconds."""
    user, system = cpu_split(pids)
    return user + system


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) over `pids`, in seconds."""
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", encoding="utf-8") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11])  # field 14 of stat(5)
        system += int(fields[12])  # field 15
    return user / CLK_TCK, system / CLK_TCK


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs (0..1) busy over `seconds`, from /proc/stat: other work on the machine
    that will be competing with the benchmark."""

    def read() -> tuple[int, int]:
        with open("/proc/stat", encoding="utf-8") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
        return sum(vals[:8]), idle

    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


class RssSampler:
    """Samples the summed VmRSS (and RssAnon) of a process tree every 100 ms while a load runs;
    keeps the maxima."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.max_kib = 0
        self.max_anon_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.1)

    def _sample(self) -> None:
        self.max_kib = max(self.max_kib, rss_kib(self.pids))
        self.max_anon_kib = max(self.max_anon_kib, rss_kib(self.pids, "RssAnon"))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def _tail(log: str) -> str:
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            return f.read()[-600:].strip()
    except OSError:
        return ""


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port` (a stray listener would answer for us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers do: connections of an earlier run in TIME_WAIT do not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, proc=None, log: str = "", timeout: float = 10.0) -> None:
    """Waits until 127.0.0.1:`port` accepts; fails at once with the log if `proc` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def wait_ready(url: str, proc=None, log: str = "", timeout: float = 15.0) -> None:
    """Polls `url` until it answers 200; fails at once with the log if `proc` exited."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
                last = f"status {r.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s ({last})")


def check_response(port: int, host: str, size: int) -> None:
    """One HTTP/1.1 request: the target must answer 200 with the backend's body."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        if r.status != 200 or len(body) != size:
            raise RuntimeError(f"port {port}: status {r.status}, {len(body)} bytes, want 200/{size}")


def _dur_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unreadable wrk duration {text!r}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def wrk(url: str, host: str, conns: int, duration: int, log: str) -> dict:
    """Closed loop: `wrk -t1 -c<conns> -d<duration>s --latency`; requests, RPS, errors."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-H", f"Host: {host}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    with open(log, "a", encoding="utf-8") as f:
        f.write(" ".join(argv) + "\n" + out + "\n")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0
    )
    # Anchored: the thread-stats lines end in "+/- Stdev" percentages such as "87.99%".
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    return {
        "requests": requests,
        "rps": rps,
        "errors": errors,
        "p99_ms": _dur_ms(p99.group(1)) if p99 else None,
    }


def oha_json_flag() -> list[str]:
    """oha >= 1.9 spells JSON output `--output-format json`; older releases `--json`."""
    help_text = subprocess.run(["oha", "--help"], capture_output=True, text=True).stdout
    return ["--output-format", "json"] if "--output-format" in help_text else ["--json"]


def oha(
    port: int,
    host: str,
    conns: int,
    duration: int,
    rate: int | None,
    http2: bool,
    log: str,
    json_flag: list[str],
) -> dict:
    """`oha -c<conns> -z<duration>s [-q rate --latency-correction] [--http2]`, JSON parsed.

    The URL names `host` (no port, so HTTP/1.1 `Host` and HTTP/2 `:authority` are both exactly
    `host`) and `--connect-to` sends the connections to 127.0.0.1:`port`.
    """
    argv = ["oha", "--no-tui", *json_flag, "-w", "-c", str(conns), "-z", f"{duration}s"]
    if rate:
        argv += ["-q", str(rate), "--latency-correction"]
    if http2:
        argv += ["--http2"]
    argv += ["--connect-to", f"{host}:80:127.0.0.1:{port}", f"http://{host}/"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    with open(log, "a", encoding="utf-8") as f:
        f.write(" ".join(argv) + "\n" + run.stdout + run.stderr + "\n")
    if run.returncode != 0:
        raise RuntimeError(f"oha failed ({run.returncode}): {run.stderr.strip()[:300]}")
    data = json.loads(run.stdout)
    codes = data.get("statusCodeDistribution", {})
    ok = sum(n for code, n in codes.items() if str(code) == "200")
    errors = sum(n for code, n in codes.items() if str(code) != "200")
    # Requests cut off by the end of the run are not failures of the target.
    errors += sum(
        n for what, n in data.get("errorDistribution", {}).items() if "deadline" not in what
    )
    pct = data["latencyPercentiles"]
    return {
        "rps": data["summary"]["requestsPerSec"],
        "ok": ok,
        "errors": errors,
        "p50_ms": pct["p50"] * 1000 if pct.get("p50") is not None else None,
        "p99_ms": pct["p99"] * 1000 if pct.get("p99") is not None else None,
        "max_ms": data["summary"]["slowest"] * 1000 if data["summary"].get("slowest") else None,
    }


def h2load(port: int, host: str, conns: int, duration: int, log: str) -> dict:
    """Closed loop over HTTP/2 cleartext: `h2load -t1 -c<conns> -m1`, like wrk's one request in
    flight per connection; `:authority` is `host`."""
    argv = ["h2load", "-t1", f"-c{conns}", "-m1", "-D", str(duration), "--warm-up-time=1"]
    argv += ["-H", f":authority: {host}", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    with open(log, "a", encoding="utf-8") as f:
        f.write(" ".join(argv) + "\n" + out + "\n")
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    req = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not (m and req and codes):
        raise RuntimeError(f"unreadable h2load output: {out[-300:]}")
    errors = sum(int(x) for x in req.groups()[1:]) + sum(int(x) for x in codes.groups()[1:])
    return {"rps": float(m.group(1)), "requests": int(req.group(1)), "errors": errors}


def start_proxy(run_dir: str, procs, name: str, binary: str, backend_port: int, port: int, tool: str):
    """Starts proxy `name` (trellis, nginx or haproxy) on `port` in front of the backend on
    `backend_port`, waits until it serves the backend's body, and returns its process and the
    port that takes h2c with prior knowledge (`port` itself for trellis). `tool` names the script
    in the message for an unknown name."""
    if name == "trellis":
        help_text = subprocess.run(
            [binary, "proxy", "--help"], capture_output=True, text=True, check=False
        ).stdout
        t = configs.trellis(run_dir, binary, backend_port, port, port + 1, help_text)
    elif name == "nginx":
        t = configs.nginx_proxy(run_dir, "nginx", backend_port, port, port + 1)
    elif name == "haproxy":
        t = configs.haproxy(run_dir, "haproxy", backend_port, port, port + 1)
    else:
        sys.exit(f"{tool}: unknown target {name!r} (trellis, nginx, haproxy)")
    log = os.path.join(run_dir, f"{name}.log")
    p = procs.start(t.argv, log, t.env)
    if t.ready_url:
        wait_ready(t.ready_url, p, log)
    else:
        wait_port(port, p, log)
    check_response(port, configs.HOST, configs.BODY_BYTES)
    return p, t.h2_port or port


def start_backend(run_dir: str, procs, base: int):
    """Starts the benchmark's nginx backend (HTTP/1.1 on `base`, h2c on `base + 1`) and waits
    until it listens; returns its process."""
    backend = configs.backend(run_dir, "nginx", base, base + 1)
    log = os.path.join(run_dir, "backend.log")
    proc = procs.start(backend.argv, log)
    wait_port(base, proc, log)
    return proc


def label(target: str) -> str:
    """How a target is reported: `trellis:/x/old/trellis` is `trellis:old`."""
    kind, _, path = target.partition(":")
    return f"{kind}:{os.path.basename(os.path.dirname(os.path.abspath(path)))}" if path else kind


def trellis_bin() -> str:
    """`TRELLIS_BIN`, else the workspace's release build."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("TRELLIS_BIN") or os.path.join(root, "target", "release", "trellis")
