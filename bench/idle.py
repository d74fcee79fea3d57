"""What an idle keep-alive connection costs each proxy in memory.

Every target (trellis, nginx, haproxy; the benchmark's configurations, one worker each) is
started in front of the benchmark's backend; IDLE_CONNECTIONS (default 1,000) clients each
open a connection, send one HTTP/1.1 request, read the whole answer and then keep the
connection open and quiet. After IDLE_SETTLE seconds (default 2: past trellis' one-second
buffer release, see docs/performance.md) the proxy's private memory (RssAnon, summed over its
processes) is read again; the difference divided by the connections is what one idle
connection holds. Kernel socket buffers are not in it (they are the kernel's, the same for
every proxy).

    bench/idle.sh                                   # trellis, nginx, haproxy
    IDLE_TARGETS=trellis,trellis:/tmp/old/trellis bench/idle.sh
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import tempfile
import time

import configs
import measure


def open_idle(port: int, n: int) -> list[socket.socket]:
    """`n` connections to `port`, each after one answered request, left open."""
    request = f"GET / HTTP/1.1\r\nHost: {configs.HOST}\r\n\r\n".encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        socks.append(s)
    for s in socks:
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("idle: the proxy closed a connection before answering")
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"idle: expected 200, got {head[:40]!r}")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            None,
        )
        if length is None:
            sys.exit("idle: the answer has no Content-Length")
        while len(body) < length:
            body += s.recv(65536)
    return socks


def is_closed(s: socket.socket) -> bool:
    """Whether the peer has closed `s` (a quiet open connection has nothing to read)."""
    try:
        return s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def main() -> int:
    names = os.environ.get("IDLE_TARGETS", "trellis,nginx,haproxy").split(",")
    n = int(os.environ.get("IDLE_CONNECTIONS", "1000"))
    settle = float(os.environ.get("IDLE_SETTLE", "2"))
    base = int(os.environ.get("BENCH_PORT_BASE", "18400"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    binary = measure.trellis_bin()
    run_dir = tempfile.mkdtemp(prefix="trellis-idle-")
    procs = measure.Procs(os.path.join(run_dir, "pids"))
    print(f"{n} idle keep-alive connections, private memory (RssAnon) before and after:")
    try:
        measure.start_backend(run_dir, procs, base)
        for i, target in enumerate(names):
            kind, _, path = target.partition(":")
            port = base + 10 + 4 * i
            p, _ = measure.start_proxy(run_dir, procs, kind, path or binary, base, port, "idle")
            pids = measure.tree(p.pid)
            time.sleep(0.5)
            before = measure.rss_kib(pids, "RssAnon")
            socks = open_idle(port, n)
            time.sleep(settle)
            after = measure.rss_kib(pids, "RssAnon")
            closed = sum(1 for s in socks if is_closed(s))
            for s in socks:
                s.close()
            if closed:
                sys.exit(f"idle: {target} closed {closed} of the {n} idle connections; measure sooner")
            procs.stop(p)
            per = (after - before) / n
            print(f"  {measure.label(target):16} {before:>7} -> {after:>7} KiB: {per:5.1f} KiB a connection", flush=True)
    finally:
        procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
