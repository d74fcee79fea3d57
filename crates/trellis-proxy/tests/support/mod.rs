//! Shared tools of the proxy's end-to-end tests: real hyper backends on 127.0.0.1 that
//! count and record what reaches them, YAML builders, a proxy serving a YAML string, and
//! a client that returns what came back. Each test binary uses the parts it needs.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use trellis_proxy::http::{FLAGS_HEADER, ServeOptions, serve};
use trellis_proxy::runtime::{Runtime, RuntimeOptions};

/// Every test finishes well within this, or fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(60);

/// How a backend answers request number `n` (0-based, counted per backend).
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Sleep before answering.
    pub delay: Duration,
    /// Sleep this long on the first request only.
    pub first_delay: Duration,
    /// Answer `status` to the first `fail_first` requests.
    pub fail_first: usize,
    /// Answer `status` to every request (overrides `fail_first`).
    pub always_fail: bool,
    /// The failure status (default 503).
    pub status: u16,
}

/// What a backend saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query as received.
    pub uri: String,
    pub headers: HeaderMap,
    pub version: Version,
    pub body: Bytes,
}

/// A running backend: its address, how many requests reached it, and what they were.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub name: &'static str,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    /// Starts a backend answering its `name` as body and in `x-backend`, echoing the
    /// request id (`x-seen-request-id`) and HTTP version (`x-seen-version`).
    pub async fn start(name: &'static str, behaviour: Behaviour) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let backend = Backend {
            addr,
            name,
            count: Arc::new(AtomicUsize::new(0)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = backend.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.answer(req, behaviour).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        backend
    }

    /// A backend that answers 200 at once.
    pub async fn ok(name: &'static str) -> Backend {
        Backend::start(name, Behaviour::default()).await
    }

    async fn answer(&self, req: Request<Incoming>, b: Behaviour) -> Response<Full<Bytes>> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let request_id = parts.headers.get("x-request-id").cloned();
        let version = parts.version;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(Seen {
                method: parts.method,
                uri: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |p| p.to_string()),
                headers: parts.headers,
                version,
                body,
            });
        }
        if n == 0 && !b.first_delay.is_zero() {
            tokio::time::sleep(b.first_delay).await;
        }
        if !b.delay.is_zero() {
            tokio::time::sleep(b.delay).await;
        }
        let status = if b.always_fail || n < b.fail_first {
            StatusCode::from_u16(if b.status == 0 { 503 } else { b.status })
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        } else {
            StatusCode::OK
        };
        let mut resp = Response::new(Full::new(Bytes::from_static(self.name.as_bytes())));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert("x-backend", http::HeaderValue::from_static(self.name));
        if let Some(id) = request_id {
            h.insert("x-seen-request-id", id);
        }
        let v = if version == Version::HTTP_2 {
            "h2"
        } else {
            "h1"
        };
        h.insert("x-seen-version", http::HeaderValue::from_static(v));
        resp
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Copies of the requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A loopback port that refuses connections for as long as the value lives: bound but
/// not listening, so no other socket (another test's listener or ephemeral port) can take
/// it meanwhile. (A port of a listener bound and dropped could be reused by a parallel
/// test, and a "dead" endpoint would answer.)
pub struct DeadPort {
    port: u16,
    _socket: socket2::Socket,
}

impl DeadPort {
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A port nothing listens on (see [`DeadPort`]); keep the value alive while it is used.
pub fn dead_port() -> DeadPort {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    socket.bind(&any.into()).expect("bind");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("bound address")
        .port();
    DeadPort {
        port,
        _socket: socket,
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("trellis-{tag}-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A ServiceEntry `name.shop.svc.cluster.local` on port 8080 with `protocol`, whose
/// endpoints are 127.0.0.1 on each `(port, version)` with label `version`.
pub fn service_entry(name: &str, protocol: &str, endpoints: &[(u16, &str)]) -> String {
    let eps: String = endpoints
        .iter()
        .map(|(port, version)| {
            format!(
                "  - address: 127.0.0.1\n    ports: {{http: {port}}}\n    labels: {{version: {version}}}\n"
            )
        })
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  hosts: [{name}.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: {protocol}}}\n  endpoints:\n{eps}---\n"
    )
}

/// A DestinationRule for `host` with subsets `v1` and `v2` (by the `version` label).
pub fn subsets_v1_v2(name: &str, host: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  host: {host}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\n"
    )
}

/// Compiles `yaml` (as a config directory would hold it) into a runtime; `edit` may
/// adjust the mesh first. Panics with the diagnostics when the config is refused.
pub fn runtime(yaml: &str, edit: impl FnOnce(&mut trellis_model::Mesh)) -> Runtime {
    let dir = TempDir::new("cfg");
    std::fs::write(dir.0.join("mesh.yaml"), yaml).expect("write config");
    let mut snap =
        match trellis_config::snapshot::snapshot(std::slice::from_ref(&dir.0), &Default::default())
        {
            Ok(s) => s,
            Err(e) => panic!("config refused: {e}"),
        };
    edit(&mut snap.mesh);
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    Runtime::build(&snap.mesh, &opts).expect("runtime builds")
}

/// Compiles `yaml` into a runtime built with `opts` (e.g. the client's labels).
pub fn runtime_with(yaml: &str, opts: &RuntimeOptions) -> Runtime {
    let dir = TempDir::new("cfg");
    std::fs::write(dir.0.join("mesh.yaml"), yaml).expect("write config");
    let snap =
        match trellis_config::snapshot::snapshot(std::slice::from_ref(&dir.0), &Default::default())
        {
            Ok(s) => s,
            Err(e) => panic!("config refused: {e}"),
        };
    Runtime::build(&snap.mesh, opts).expect("runtime builds")
}

/// A proxy serving a runtime on 127.0.0.1; `update` swaps in another one.
pub struct TestProxy {
    pub addr: SocketAddr,
    tx: watch::Sender<Arc<Runtime>>,
}

impl TestProxy {
    /// Serves `yaml` with default options.
    pub async fn start(yaml: &str) -> TestProxy {
        TestProxy::with_runtime(runtime(yaml, |_| {})).await
    }

    /// Serves `runtime` with default options.
    pub async fn with_runtime(runtime: Runtime) -> TestProxy {
        let (tx, rx) = watch::channel(Arc::new(runtime));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        tokio::spawn(serve(listener, rx, ServeOptions::default()));
        TestProxy { addr, tx }
    }

    /// Replaces the configuration.
    pub fn update(&self, runtime: Runtime) {
        self.tx.send_replace(Arc::new(runtime));
    }
}

/// A pooled HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// What came back from the proxy.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// The proxy's response flag (`x-trellis-flags`), empty when none.
    pub fn flag(&self) -> &str {
        self.header(FLAGS_HEADER)
    }

    /// A response header as text, empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends `method path` with `Host: host` and `headers` through the proxy at `proxy`.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    method: Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{proxy}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).expect("request");
    let resp = client.request(req).await.expect("proxy answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET path` with `Host: host`.
pub async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    host: &str,
    path: &str,
) -> Answer {
    send(client, proxy, Method::GET, host, path, &[]).await
}

/// A backend that accepts any upgrade with `101` and then echoes the upgraded bytes.
pub async fn echo_upgrade_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<Incoming>| async move {
                    let mut resp = Response::new(Empty::<Bytes>::new());
                    let Some(protocol) = req.headers().get("upgrade").cloned() else {
                        *resp.status_mut() = StatusCode::BAD_REQUEST;
                        return Ok::<_, Infallible>(resp);
                    };
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on.await {
                            let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                    });
                    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    resp.headers_mut()
                        .insert("connection", "upgrade".parse().expect("value"));
                    resp.headers_mut().insert("upgrade", protocol);
                    Ok(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// Upgrades a connection to `proxy` (`Host: host`) to WebSocket and checks two messages
/// come back through it unchanged (against [`echo_upgrade_backend`]).
pub async fn websocket_echo(proxy: SocketAddr, host: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(proxy)
        .await
        .expect("connect");
    let request = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).await.expect("read head");
        assert_eq!(n, 1, "connection closed before the response head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"hello through the proxy"[..], b"second frame"] {
        conn.write_all(message).await.expect("send");
        let mut echoed = vec![0u8; message.len()];
        conn.read_exact(&mut echoed).await.expect("echo");
        assert_eq!(echoed, message);
    }
}

/// Checks that an open keep-alive connection to `addr` does not keep the configuration it
/// started with alive: after one request, `next` replaces the configuration in `config`; the
/// connection keeps serving, and the replaced runtime is freed (a connection pinning it would
/// keep every old configuration of a long-lived client in memory).
pub async fn assert_connection_does_not_pin_config(
    config: &watch::Sender<Arc<Runtime>>,
    addr: SocketAddr,
    host: &str,
    next: Runtime,
) {
    let c = client();
    let first = get(&c, addr, host, "/").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let old = Arc::downgrade(&*config.borrow());
    config.send_replace(Arc::new(next));
    let second = get(&c, addr, host, "/").await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(
        old.upgrade().is_none(),
        "an open connection still holds the replaced configuration"
    );
}
