"""Configuration files for the benchmark's backend and for every proxy under test.

Every proxy gets the same job: one worker, no access log, HTTP/1.1 keep-alive to the same nginx
backend, HTTP/1.1 and HTTP/2 cleartext (prior knowledge) from the client. Each function writes its
files under `run_dir` and returns what the runner needs to start the process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

BODY_BYTES = 1024
# The authority every request carries; trellis routes by it, the others ignore it.
HOST = "backend.bench.svc.cluster.local"
ROUTES = 100


@dataclass
class Target:
    """One column of the comparison: how to start it and where to send load."""

    name: str
    h1_port: int
    h2_port: int | None  # None: no HTTP/2 cleartext listener
    argv: list[str] | None = None  # None: nothing to start (direct)
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # polled until it answers 200; else the h1 port must answer
    notes: list[str] = field(default_factory=list)
    # Processes started (and ready) before `argv`, measured with it: (argv, env, ready URL).
    companions: list[tuple[list[str], dict[str, str], str]] = field(default_factory=list)


def _write(path: str, text: str) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def backend(run_dir: str, nginx: str, h1_port: int, h2_port: int) -> Target:
    """The nginx backend: a 1 KiB static file over HTTP/1.1 keep-alive and over h2c."""
    d = os.path.join(run_dir, "backend")
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    _write(os.path.join(d, "www", "index.html"), ("x" * (BODY_BYTES - 1)) + "\n")
    conf = f"""
user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  default_type text/plain;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{h1_port} reuseport backlog=4096;
    listen 127.0.0.1:{h2_port} http2 reuseport backlog=4096;
    http2_max_requests 100000000;
    root {d}/www;
    location / {{ try_files /index.html =404; }}
  }}
}}
"""
    path = _write(os.path.join(d, "nginx.conf"), conf)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    return Target("backend", h1_port, h2_port, [nginx, "-p", d, "-c", path, "-e", f"{d}/error.log"])


def direct(backend_h1: int, backend_h2: int) -> Target:
    """No proxy: the load generator talks to the backend itself; the baseline for 'added'."""
    return Target("direct", backend_h1, backend_h2)


def trellis_dir(run_dir: str, backend_port: int, name: str = "trellis-config") -> str:
    """A config directory with 100 ServiceEntries and a VirtualService with 100 routes.

    The benchmark's requests (`GET /` with Host = HOST) match the last rule, after 99 they
    cannot match (the proxy's route index skips those without checking each). `backend_port`
    is where the backend service's one endpoint listens.
    """
    d = os.path.join(run_dir, name)
    os.makedirs(d, exist_ok=True)
    docs = []
    for i in range(ROUTES):
        name = "backend" if i == 0 else f"svc-{i:02d}"
        port = backend_port if i == 0 else 1 + i  # the others are never called
        docs.append(
            f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: {name}
  namespace: bench
spec:
  hosts: [{name}.bench.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {{number: 8080, name: http, protocol: HTTP}}
  endpoints:
  - address: 127.0.0.1
    ports: {{http: {port}}}
"""
        )
    _write(os.path.join(d, "services.yaml"), "---\n".join(docs))
    rules = []
    for i in range(1, ROUTES):
        svc = f"svc-{i:02d}.bench.svc.cluster.local"
        if i % 3 == 0:
            match = f'- headers: {{x-bench-route: {{exact: "r{i}"}}}}'
        elif i % 3 == 1:
            match = f"- uri: {{prefix: /api/v{i}/}}"
        else:
            match = f'- uri: {{regex: "/svc{i}/[a-z]+/[0-9]+"}}'
        rules.append(
            f"""  - name: r{i}
    match:
    {match}
    route:
    - destination: {{host: {svc}, port: {{number: 8080}}}}
"""
        )
    rules.append(
        f"""  - name: default
    route:
    - destination: {{host: {HOST}, port: {{number: 8080}}}}
"""
    )
    vs = f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: backend
  namespace: bench
spec:
  hosts: [{HOST}]
  http:
{"".join(rules)}"""
    _write(os.path.join(d, "routes.yaml"), vs)
    return d


def trellis(
    run_dir: str, binary: str, backend_port: int, port: int, admin: int, help_text: str
) -> Target:
    """`trellis proxy`, one worker; h2c is detected on the same port as HTTP/1.1.

    `help_text` is `trellis proxy --help`: flags the binary does not have yet are left out and
    the report says so.
    """
    d = trellis_dir(run_dir, backend_port)
    argv = [binary, "proxy", "--config", d, "--outbound-addr", f"127.0.0.1:{port}"]
    argv += ["--admin-addr", f"127.0.0.1:{admin}", "--concurrency", "1"]
    notes = []
    if "--access-log" in help_text:
        argv += ["--access-log", "off"]
    else:
        notes.append("trellis has no --access-log flag yet: its default access log was on")
    if "--health-addr" in help_text:
        argv += ["--health-addr", "off"]  # its default port (15021) may be taken on this machine
    if "--namespace" in help_text:
        argv += ["--namespace", "bench"]
    env = {"TRELLIS_LOG": "warn"}
    return Target("trellis", port, port, argv, env, f"http://127.0.0.1:{admin}/ready", notes)


def trellis_pair(
    run_dir: str, binary: str, backend_port: int, ports: list[int], help_text: str
) -> Target | None:
    """Two trellis sidecars, as every call in a mesh crosses them: the client's outbound
    listener routes (100-route table, as above) to the backend service, whose one endpoint is
    the server sidecar's inbound listener, which hands each request to nginx and reports it as
    the destination. The client runs with a workload identity, so the peer header travels.

    `ports`: client outbound, client admin, server inbound, server admin, server outbound
    (bound, unused). None when the binary has no inbound listener.
    """
    if "--inbound-addr" not in help_text:
        return None
    out, admin, inbound, sadmin, sout = ports
    # Both read the same mesh: the backend's endpoint is the server sidecar.
    d = trellis_dir(run_dir, inbound, "trellis-pair-config")
    common = ["--config", d, "--concurrency", "1", "--access-log", "off"]
    common += ["--health-addr", "off", "--namespace", "bench"]
    server = [binary, "proxy", *common, "--outbound-addr", f"127.0.0.1:{sout}"]
    server += ["--admin-addr", f"127.0.0.1:{sadmin}", "--inbound-addr", f"127.0.0.1:{inbound}"]
    server += ["--inbound-app", f"127.0.0.1:{backend_port}", "--workload", "backend-v1"]
    server += ["--label", "app=backend", "--label", "version=v1"]
    client = [binary, "proxy", *common, "--outbound-addr", f"127.0.0.1:{out}"]
    client += ["--admin-addr", f"127.0.0.1:{admin}", "--workload", "client-v1"]
    client += ["--label", "app=client", "--label", "version=v1"]
    env = {"TRELLIS_LOG": "warn"}
    return Target(
        "trellis×2",
        out,
        out,
        client,
        env,
        f"http://127.0.0.1:{admin}/ready",
        ["trellis×2: client sidecar → server sidecar's inbound → backend; RSS and CPU are both proxies'"],
        [(server, env, f"http://127.0.0.1:{sadmin}/ready")],
    )


def envoy(run_dir: str, binary: str, backend_port: int, port: int, base_id: int) -> Target:
    """Envoy, `--concurrency 1`, codec AUTO (HTTP/1.1 and h2c on one port), no access log."""
    d = os.path.join(run_dir, "envoy")
    os.makedirs(d, exist_ok=True)
    conf = f"""
static_resources:
  listeners:
  - name: bench
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["{HOST}"]
              routes:
              - match: {{prefix: /}}
                route: {{cluster: backend}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {backend_port}}}}}}}
"""
    path = _write(os.path.join(d, "envoy.yaml"), conf)
    argv = [binary, "-c", path, "--concurrency", "1", "--disable-hot-restart"]
    argv += ["--base-id", str(base_id), "--log-level", "warn"]
    return Target("envoy", port, port, argv)


def haproxy(run_dir: str, binary: str, backend_port: int, port: int, h2_port: int) -> Target:
    """HAProxy, `nbthread 1`, keep-alive and connection reuse to the backend, no log."""
    d = os.path.join(run_dir, "haproxy")
    os.makedirs(d, exist_ok=True)
    conf = f"""
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:{port}
  bind 127.0.0.1:{h2_port} proto h2
  default_backend backend
backend backend
  server b1 127.0.0.1:{backend_port}
"""
    path = _write(os.path.join(d, "haproxy.cfg"), conf)
    return Target("haproxy", port, h2_port, [binary, "-db", "-f", path])


def nginx_proxy(run_dir: str, binary: str, backend_port: int, port: int, h2_port: int) -> Target:
    """nginx as a reverse proxy, `worker_processes 1`, upstream keepalive, no access log.

    nginx 1.22 has no `http2 on`; `listen ... http2` on a plain listener is h2c prior knowledge,
    so HTTP/2 gets its own port. Upstream is HTTP/1.1 (nginx cannot proxy over HTTP/2).
    """
    d = os.path.join(run_dir, "nginx-proxy")
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = f"""
user root;
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  upstream backend {{
    server 127.0.0.1:{backend_port};
    keepalive 64;
    keepalive_requests 100000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    listen 127.0.0.1:{h2_port} http2 backlog=4096;
    http2_max_requests 100000000;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""
    path = _write(os.path.join(d, "nginx.conf"), conf)
    argv = [binary, "-p", d, "-c", path, "-e", f"{d}/error.log"]
    return Target("nginx", port, h2_port, argv)
