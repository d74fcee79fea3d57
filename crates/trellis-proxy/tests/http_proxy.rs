//! End-to-end tests of the HTTP forwarding core over real sockets on 127.0.0.1: a config
//! directory loaded with `trellis_config::snapshot`, the proxy serving it, tiny hyper
//! backends answering with their name, and a hyper client.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
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

const ORDERS: &str = "orders.shop.svc.cluster.local";
/// Every test finishes well within this, or fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

/// Starts a backend that answers `name` after `delay`, echoing the request id and the
/// HTTP version it saw in response headers.
async fn backend(name: &'static str, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    let mut resp = Response::new(Full::new(Bytes::from_static(name.as_bytes())));
                    let h = resp.headers_mut();
                    if let Some(id) = req.headers().get("x-request-id") {
                        h.insert("x-seen-request-id", id.clone());
                    }
                    let version = if req.version() == Version::HTTP_2 {
                        "h2"
                    } else {
                        "h1"
                    };
                    h.insert("x-seen-version", http::HeaderValue::from_static(version));
                    Ok::<_, Infallible>(resp)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

struct Env {
    proxy: SocketAddr,
    _dir: TempDir,
    /// Keeps the `down` service's endpoint port refusing connections.
    _down: support::DeadPort,
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn service_entry(name: &str, protocol: &str, endpoints: &[(u16, &str)]) -> String {
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

const ROUTING: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: orders, namespace: shop}
spec:
  host: orders.shop.svc.cluster.local
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orders, namespace: shop}
spec:
  hosts: [orders.shop.svc.cluster.local]
  http:
  - match: [{uri: {exact: /health}}]
    directResponse: {status: 200, body: {string: ok}}
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, redirectCode: 302}
  - match: [{headers: {canary: {exact: "true"}}}]
    route:
    - destination: {host: orders.shop.svc.cluster.local, subset: v2}
  - route:
    - destination: {host: orders.shop.svc.cluster.local, subset: v1}
      weight: 90
    - destination: {host: orders.shop.svc.cluster.local, subset: v2}
      weight: 10
    headers:
      response:
        set: {x-route: split}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: slow, namespace: shop}
spec:
  hosts: [slow.shop.svc.cluster.local]
  http:
  - timeout: 0.2s
    route:
    - destination: {host: slow.shop.svc.cluster.local}
"#;

async fn start() -> Env {
    let v1 = backend("v1", Duration::ZERO).await;
    let v2 = backend("v2", Duration::ZERO).await;
    let slow = backend("slow", Duration::from_secs(5)).await;
    let grpc = backend("grpc", Duration::ZERO).await;
    let down = support::dead_port();
    let dir = std::env::temp_dir().join(format!("trellis-http-proxy-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut yaml = service_entry("orders", "HTTP", &[(v1.port(), "v1"), (v2.port(), "v2")]);
    yaml += &service_entry("down", "HTTP", &[(down.port(), "v1")]);
    yaml += &service_entry("slow", "HTTP", &[(slow.port(), "v1")]);
    yaml += &service_entry("grpc", "GRPC", &[(grpc.port(), "v1")]);
    yaml += &service_entry("empty", "HTTP", &[]);
    yaml += ROUTING;
    std::fs::write(dir.join("mesh.yaml"), yaml).expect("write config");
    let snap = trellis_config::snapshot::snapshot(std::slice::from_ref(&dir), &Default::default())
        .expect("config accepted");
    let opts = RuntimeOptions {
        client_namespace: "shop".into(),
        ..RuntimeOptions::default()
    };
    let runtime = Runtime::build(&snap.mesh, &opts).expect("runtime builds");
    let (_tx, rx) = watch::channel(Arc::new(runtime));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let proxy = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        let _keep_sender = _tx;
        serve(listener, rx, ServeOptions::default()).await
    });
    Env {
        proxy,
        _dir: TempDir(dir),
        _down: down,
    }
}

fn h1_client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    env: &Env,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder()
        .uri(format!("http://{}{path}", env.proxy))
        .header("host", host);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = req.body(Empty::new()).expect("request");
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

fn flag(a: &Answer) -> &str {
    a.headers
        .get(FLAGS_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_routing_and_split() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        let c = h1_client();
        for _ in 0..20 {
            let a = get(&c, &env, ORDERS, "/", &[("canary", "true")]).await;
            assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "v2"));
        }
        let mut v1 = 0;
        for _ in 0..1000 {
            let a = get(&c, &env, ORDERS, "/", &[]).await;
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(
                a.headers.get("x-route").map(|v| v.as_bytes()),
                Some(&b"split"[..])
            );
            if a.body == "v1" {
                v1 += 1;
            }
        }
        assert!((800..=970).contains(&v1), "v1 got {v1} of 1000");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_forms_resolve() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        let c = h1_client();
        for host in [
            "orders",
            "orders:8080",
            "orders.shop",
            "orders.shop.svc",
            "ORDERS.shop.svc.cluster.local:8080",
        ] {
            let a = get(&c, &env, host, "/", &[("canary", "true")]).await;
            assert_eq!(
                (a.status, a.body.as_str()),
                (StatusCode::OK, "v2"),
                "{host}"
            );
        }
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_errors_carry_flags() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        let c = h1_client();
        let a = get(&c, &env, "nowhere.example.com", "/", &[]).await;
        assert_eq!((a.status, flag(&a)), (StatusCode::NOT_FOUND, "NR"));
        assert!(a.body.starts_with("NR: no route"), "{}", a.body);

        let a = get(&c, &env, "down.shop.svc.cluster.local", "/", &[]).await;
        assert_eq!(
            (a.status, flag(&a)),
            (StatusCode::SERVICE_UNAVAILABLE, "UF")
        );
        assert!(a.body.starts_with("UF: "), "{}", a.body);

        let a = get(&c, &env, "empty.shop.svc.cluster.local", "/", &[]).await;
        assert_eq!(
            (a.status, flag(&a)),
            (StatusCode::SERVICE_UNAVAILABLE, "UH")
        );
        assert!(a.body.starts_with("UH: "), "{}", a.body);

        let a = get(&c, &env, "slow.shop.svc.cluster.local", "/", &[]).await;
        assert_eq!((a.status, flag(&a)), (StatusCode::GATEWAY_TIMEOUT, "UT"));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_propagated_or_generated() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        let c = h1_client();
        let a = get(&c, &env, ORDERS, "/", &[("x-request-id", "abc-123")]).await;
        assert_eq!(
            a.headers.get("x-seen-request-id").map(|v| v.as_bytes()),
            Some(&b"abc-123"[..])
        );
        let a = get(&c, &env, ORDERS, "/", &[]).await;
        let generated = a.headers.get("x-seen-request-id").expect("id generated");
        assert_eq!(generated.len(), 36, "uuid form: {generated:?}");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_h2_upstream() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        // Prior-knowledge h2c with `:authority` naming the service.
        let req = Request::builder()
            .uri(format!("http://{ORDERS}/"))
            .header("canary", "true")
            .body(Empty::<Bytes>::new())
            .expect("request");
        // Connect to the proxy while keeping the service name as `:authority`.
        let (mut sender, conn) = {
            let stream = tokio::net::TcpStream::connect(env.proxy)
                .await
                .expect("connect");
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake")
        };
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.expect("h2 response");
        assert_eq!(resp.version(), Version::HTTP_2);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"v2");

        // A GRPC port: the proxy speaks HTTP/2 to the upstream even for HTTP/1 clients.
        let a = get(&h1_client(), &env, "grpc.shop.svc.cluster.local", "/", &[]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.headers.get("x-seen-version").map(|v| v.as_bytes()),
            Some(&b"h2"[..])
        );
        let a = get(&h1_client(), &env, ORDERS, "/", &[]).await;
        assert_eq!(
            a.headers.get("x-seen-version").map(|v| v.as_bytes()),
            Some(&b"h1"[..])
        );
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_and_direct_response() {
    tokio::time::timeout(LIMIT, async {
        let env = start().await;
        let c = h1_client();
        let a = get(&c, &env, ORDERS, "/health", &[]).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));
        let a = get(&c, &env, "orders.shop:8080", "/old/x?q=1", &[]).await;
        assert_eq!(a.status, StatusCode::FOUND);
        assert_eq!(
            a.headers.get("location").and_then(|v| v.to_str().ok()),
            Some("http://orders.shop:8080/new?q=1")
        );
    })
    .await
    .expect("test finished in time");
}
