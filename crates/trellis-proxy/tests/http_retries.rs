//! End-to-end retries and connection-pool limits over real sockets on 127.0.0.1: backends
//! that fail or stall on their first requests and count what they receive.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
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

const LIMIT: Duration = Duration::from_secs(60);

/// How a counting backend treats request number `n` (0-based).
#[derive(Clone, Copy)]
enum Mode {
    /// 503 for the first `n` requests, then 200.
    FailFirst(usize),
    /// Sleeps this long on the first request only.
    SlowFirst(Duration),
    /// Sleeps this long on every request.
    Slow(Duration),
}

async fn backend(mode: Mode) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let status = match mode {
                            Mode::FailFirst(k) if n < k => StatusCode::SERVICE_UNAVAILABLE,
                            Mode::SlowFirst(d) if n == 0 => {
                                tokio::time::sleep(d).await;
                                StatusCode::OK
                            }
                            Mode::Slow(d) => {
                                tokio::time::sleep(d).await;
                                StatusCode::OK
                            }
                            _ => StatusCode::OK,
                        };
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"hi")));
                        *resp.status_mut() = status;
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, count)
}

/// A service `svc` with `ports` as endpoints, a VirtualService with `http` as its only
/// route's extra fields, and a DestinationRule with `policy` as its trafficPolicy.
fn config(svc: &str, ports: &[u16], http: &str, policy: &str) -> String {
    let eps: String = ports
        .iter()
        .map(|p| format!("  - address: 127.0.0.1\n    ports: {{http: {p}}}\n"))
        .collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {svc}, namespace: shop}}\nspec:\n  hosts: [{svc}.shop.svc.cluster.local]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports:\n  - {{number: 8080, name: http, protocol: HTTP}}\n  endpoints:\n{eps}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {svc}, namespace: shop}}\nspec:\n  hosts: [{svc}.shop.svc.cluster.local]\n  http:\n  - {http}\n    route:\n    - destination: {{host: {svc}.shop.svc.cluster.local}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {svc}, namespace: shop}}\nspec:\n  host: {svc}.shop.svc.cluster.local\n  trafficPolicy: {policy}\n---\n"
    )
}

/// Loads `yaml`, lets `edit` adjust the mesh, and serves it; returns the proxy address.
async fn start(yaml: &str, edit: impl FnOnce(&mut trellis_model::Mesh)) -> SocketAddr {
    let dir = std::env::temp_dir().join(format!("trellis-retries-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("mesh.yaml"), yaml).expect("write");
    let mut snap =
        trellis_config::snapshot::snapshot(std::slice::from_ref(&dir), &Default::default())
            .expect("config accepted");
    let _ = std::fs::remove_dir_all(&dir);
    edit(&mut snap.mesh);
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    let runtime = Runtime::build(&snap.mesh, &opts).expect("runtime builds");
    let (tx, rx) = watch::channel(Arc::new(runtime));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _keep = tx;
        serve(listener, rx, ServeOptions::default()).await
    });
    addr
}

async fn call(proxy: SocketAddr, host: &str, method: Method) -> (StatusCode, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{proxy}/"))
        .header("host", host)
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("request");
    let resp = client.request(req).await.expect("proxy answers");
    let flag = resp
        .headers()
        .get(FLAGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    (status, flag)
}

const HOST: &str = "a.shop.svc.cluster.local";
/// A traffic policy that changes nothing relevant (an empty one is refused).
const RR: &str = "{loadBalancer: {simple: ROUND_ROBIN}}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_success_or_attempts_run_out() {
    tokio::time::timeout(LIMIT, async {
        let (addr, count) = backend(Mode::FailFirst(2)).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "retries: {attempts: 3, retryOn: 5xx}",
            RR,
        );
        let proxy = start(&yaml, |_| {}).await;
        assert_eq!(call(proxy, HOST, Method::GET).await.0, StatusCode::OK);
        assert_eq!(count.load(Ordering::SeqCst), 3);

        let (addr, count) = backend(Mode::FailFirst(2)).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "retries: {attempts: 1, retryOn: 5xx}",
            RR,
        );
        let proxy = start(&yaml, |_| {}).await;
        let (status, flag) = call(proxy, HOST, Method::GET).await;
        assert_eq!(
            (status, flag.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "")
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    })
    .await
    .expect("finished in time");
}

/// Routes whose rule allows retrying any method (Linkerd `isRetryable`, or the
/// VirtualService annotation `retry.trellis.dev/non-idempotent: "true"`).
fn any_method(mesh: &mut trellis_model::Mesh) {
    for s in &mut mesh.services {
        for r in &mut s.http_routes {
            if let Some(p) = r.retry.as_mut() {
                p.retry_non_idempotent = true;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_retried_only_before_reaching_the_server() {
    tokio::time::timeout(LIMIT, async {
        let (addr, count) = backend(Mode::FailFirst(2)).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "retries: {attempts: 3, retryOn: 5xx}",
            RR,
        );
        // By default a POST that reached the server is not retried.
        let proxy = start(&yaml, |_| {}).await;
        assert_eq!(
            call(proxy, HOST, Method::POST).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Unless the rule says so.
        let (addr, count) = backend(Mode::FailFirst(2)).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "retries: {attempts: 3, retryOn: 5xx}",
            RR,
        );
        let proxy = start(&yaml, any_method).await;
        assert_eq!(call(proxy, HOST, Method::POST).await.0, StatusCode::OK);
        assert_eq!(count.load(Ordering::SeqCst), 3);

        // One dead and one live endpoint, round robin: a connect failure is retried on
        // the other endpoint even for POST.
        let (addr, count) = backend(Mode::FailFirst(0)).await;
        let dead = support::dead_port();
        let ports = [dead.port(), addr.port()];
        let yaml = config(
            "a",
            &ports,
            "retries: {attempts: 3, retryOn: connect-failure}",
            "{loadBalancer: {simple: ROUND_ROBIN}}",
        );
        let proxy = start(&yaml, |_| {}).await;
        for _ in 0..4 {
            assert_eq!(call(proxy, HOST, Method::POST).await.0, StatusCode::OK);
        }
        assert_eq!(count.load(Ordering::SeqCst), 4);
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeout_is_retried() {
    tokio::time::timeout(LIMIT, async {
        let (addr, count) = backend(Mode::SlowFirst(Duration::from_secs(5))).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "retries: {attempts: 2, retryOn: 5xx, perTryTimeout: 0.2s}",
            RR,
        );
        let proxy = start(&yaml, |_| {}).await;
        assert_eq!(call(proxy, HOST, Method::GET).await.0, StatusCode::OK);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    })
    .await
    .expect("finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limit_overflows_with_uo() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _count) = backend(Mode::Slow(Duration::from_millis(500))).await;
        let yaml = config(
            "a",
            &[addr.port()],
            "timeout: 10s",
            "{connectionPool: {http: {http2MaxRequests: 1}}}",
        );
        let proxy = start(&yaml, |_| {}).await;
        let (a, b) = tokio::join!(
            call(proxy, HOST, Method::GET),
            call(proxy, HOST, Method::GET)
        );
        let mut got = [a, b];
        got.sort();
        assert_eq!(got[0], (StatusCode::OK, String::new()));
        assert_eq!(got[1], (StatusCode::SERVICE_UNAVAILABLE, "UO".to_owned()));
    })
    .await
    .expect("finished in time");
}
