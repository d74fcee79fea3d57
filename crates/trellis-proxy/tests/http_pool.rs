//! Upstream connection pools end to end: keep-alive reuse, `maxRequestsPerConnection`,
//! `maxConnections` with `http1MaxPendingRequests`, `idleTimeout`, `connectTimeout` and
//! HTTP/2 multiplexing, counted by the TCP connections a real backend accepts.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use support::{LIMIT, TestProxy, client, get};

/// A backend that counts accepted connections, closed connections and requests.
struct Counted {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Counted {
    /// Serves HTTP/1.1 and HTTP/2 (prior knowledge), answering 200 after `delay`.
    async fn start(delay: Duration) -> Counted {
        Counted::start_answering(delay, StatusCode::OK, b"ok").await
    }

    /// Like [`Counted::start`], answering `status` with `body`.
    async fn start_answering(delay: Duration, status: StatusCode, body: &'static [u8]) -> Counted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepts = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, c, r) = (accepts.clone(), closed.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let (c, r) = (c.clone(), r.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |_req: Request<Incoming>| {
                        r.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(delay).await;
                            let mut resp = Response::new(Full::new(Bytes::from_static(body)));
                            *resp.status_mut() = status;
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Counted {
            addr,
            accepts,
            closed,
            requests,
        }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

const HOST: &str = "pool.shop.svc.cluster.local";

/// A ServiceEntry `pool` with one endpoint `address:port` on a port of `protocol`, and
/// (unless `pool` is empty) a DestinationRule whose trafficPolicy is `{connectionPool: pool}`.
fn config(protocol: &str, address: &str, port: u16, pool: &str) -> String {
    let mut yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: pool, namespace: shop}}\nspec:\n  hosts: [{HOST}]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: {protocol}}}\n  endpoints:\n  - address: {address}\n    ports: {{http: {port}}}\n---\n"
    );
    if !pool.is_empty() {
        yaml.push_str(&format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: pool, namespace: shop}}\nspec:\n  host: {HOST}\n  trafficPolicy:\n    connectionPool: {pool}\n---\n"
        ));
    }
    yaml
}

/// A listener that never accepts, with its accept queue filled: further connects hang
/// (their SYNs are dropped) until the caller's timeout. The returned values keep it so.
async fn black_hole() -> (SocketAddr, socket2::Socket, Vec<tokio::net::TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    socket.bind(&local.into()).expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..16 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    assert!(fillers.len() < 16, "the accept queue never filled up");
    (addr, socket, fillers)
}

async fn proxy_for(backend: &Counted, protocol: &str, pool: &str) -> TestProxy {
    TestProxy::start(&config(protocol, "127.0.0.1", backend.addr.port(), pool)).await
}

/// Sends `n` requests one after the other, each answered 200.
async fn sequential(proxy: &TestProxy, n: usize) {
    let client = client();
    for i in 0..n {
        let a = get(&client, proxy.addr, HOST, "/").await;
        assert_eq!(a.status, StatusCode::OK, "request {i}: {a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_reuses_one_connection() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::ZERO).await;
        let proxy = proxy_for(&backend, "HTTP", "").await;
        sequential(&proxy, 100).await;
        assert_eq!(backend.requests.load(Ordering::SeqCst), 100);
        assert_eq!(backend.accepts(), 1);
    })
    .await
    .expect("test timed out");
}

/// A response without a body is never polled for one: its connection must still be pooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_responses_reuse_one_connection() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start_answering(Duration::ZERO, StatusCode::NO_CONTENT, b"").await;
        let proxy = proxy_for(&backend, "HTTP", "").await;
        let client = client();
        for i in 0..50 {
            let a = get(&client, proxy.addr, HOST, "/").await;
            assert_eq!(a.status, StatusCode::NO_CONTENT, "request {i}: {a:?}");
        }
        assert_eq!(backend.requests.load(Ordering::SeqCst), 50);
        assert_eq!(backend.accepts(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_per_connection_rotates_connections() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::ZERO).await;
        let pool = "{http: {maxRequestsPerConnection: 10}}";
        let proxy = proxy_for(&backend, "HTTP", pool).await;
        sequential(&proxy, 100).await;
        assert_eq!(backend.accepts(), 10);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_queue_pending_then_overflow() {
    tokio::time::timeout(LIMIT, async {
        let delay = Duration::from_millis(1000);
        let backend = Counted::start(delay).await;
        let pool = "{tcp: {maxConnections: 2}, http: {http1MaxPendingRequests: 1}}";
        let proxy = Arc::new(proxy_for(&backend, "HTTP", pool).await);
        let client = client();
        let mut first = Vec::new();
        for _ in 0..3 {
            let (client, proxy) = (client.clone(), Arc::clone(&proxy));
            first.push(tokio::spawn(async move {
                get(&client, proxy.addr, HOST, "/").await
            }));
        }
        // Two requests hold both connections; give the third time to start waiting.
        while backend.requests.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let fourth = get(&client, proxy.addr, HOST, "/").await;
        assert_eq!(fourth.status, StatusCode::SERVICE_UNAVAILABLE, "{fourth:?}");
        assert_eq!(fourth.flag(), "UO");
        // At once: well before any connection could have freed up.
        assert!(
            started.elapsed() < delay / 2,
            "overflow took {:?}",
            started.elapsed()
        );
        for task in first {
            let a = task.await.expect("task");
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
        }
        assert_eq!(backend.requests.load(Ordering::SeqCst), 3);
        assert_eq!(backend.accepts(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_pooled_connections() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::ZERO).await;
        let proxy = proxy_for(&backend, "HTTP", "{http: {idleTimeout: 300ms}}").await;
        sequential(&proxy, 1).await;
        assert_eq!(backend.accepts(), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The proxy closed it on its own, not when the next request came.
        assert_eq!(backend.closed.load(Ordering::SeqCst), 1);
        sequential(&proxy, 1).await;
        assert_eq!(backend.accepts(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_gives_uf() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _listener, _fillers) = black_hole().await;
        let pool = "{tcp: {connectTimeout: 300ms}}";
        let yaml = config("HTTP", "127.0.0.1", addr.port(), pool);
        let proxy = TestProxy::start(&yaml).await;
        let started = Instant::now();
        let a = get(&client(), proxy.addr, HOST, "/").await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{a:?}");
        assert_eq!(a.flag(), "UF");
        // The default (10 s) would have taken far longer.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_multiplexes_on_one_connection() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::from_millis(200)).await;
        let proxy = Arc::new(proxy_for(&backend, "HTTP2", "").await);
        let client = client();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (client, proxy) = (client.clone(), Arc::clone(&proxy));
                tokio::spawn(async move { get(&client, proxy.addr, HOST, "/").await })
            })
            .collect();
        for task in tasks {
            let a = task.await.expect("task");
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
        }
        assert_eq!(backend.requests.load(Ordering::SeqCst), 50);
        assert_eq!(backend.accepts(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_reconnects_after_max_requests() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::ZERO).await;
        let pool = "{http: {maxRequestsPerConnection: 5}}";
        let proxy = proxy_for(&backend, "HTTP2", pool).await;
        sequential(&proxy, 20).await;
        assert_eq!(backend.accepts(), 4);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connection_duration_retires_old_connections() {
    tokio::time::timeout(LIMIT, async {
        let backend = Counted::start(Duration::ZERO).await;
        let pool = "{tcp: {maxConnectionDuration: 300ms}}";
        let proxy = proxy_for(&backend, "HTTP", pool).await;
        sequential(&proxy, 1).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        // Closed at its age while idle (the idle timeout is the default hour).
        assert_eq!(backend.closed.load(Ordering::SeqCst), 1);
        // Kept busy for a second, connections are still replaced as they age.
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            sequential(&proxy, 1).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(backend.accepts() >= 3, "accepts: {}", backend.accepts());
    })
    .await
    .expect("test timed out");
}
