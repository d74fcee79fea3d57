//! End-to-end route features over real sockets on 127.0.0.1: fault injection (delay,
//! HTTP and gRPC aborts, by percentage), mirroring (fire-and-forget, `-shadow` host, by
//! percentage, bodies), rewrites (prefix, full, regex, authority), CORS (preflight, actual
//! responses, other origins) and HTTP/1.1 upgrades (WebSocket-style echo).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use tokio::net::TcpStream;
use tokio::task::JoinSet;
use trellis_model::{PathRewrite, Rewrite};

use support::{Answer, Backend, Behaviour, LIMIT, TestProxy, client, get, send, service_entry};

const ORDERS: &str = "orders.shop.svc.cluster.local";

/// A VirtualService for `orders` with these `http:` rules (indented list items).
fn vs(http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: orders, namespace: shop}}\nspec:\n  hosts: [{ORDERS}]\n  http:\n{http}---\n"
    )
}

/// `orders` on `backend` with the VirtualService rules `http`.
fn config(backend: &Backend, http: &str) -> String {
    service_entry("orders", "HTTP", &[(backend.port(), "v1")]) + &vs(http)
}

/// Sends `n` GETs to `path` from 10 concurrent workers; returns every answer.
async fn get_many(proxy: SocketAddr, path: &'static str, n: usize) -> Vec<Answer> {
    let mut workers = JoinSet::new();
    for w in 0..10 {
        workers.spawn(async move {
            let c = client();
            let mut out = Vec::new();
            for _ in (w..n).step_by(10) {
                out.push(get(&c, proxy, ORDERS, path).await);
            }
            out
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(done) = workers.join_next().await {
        all.extend(done.expect("worker"));
    }
    all
}

/// Waits until `backend` has seen `want` requests (or 10 s passed); returns the count.
async fn wait_for(backend: &Backend, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.count() < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backend.count()
}

/// Waits until `backend`'s count stops changing for 300 ms; returns it.
async fn settle(backend: &Backend) -> usize {
    let mut last = backend.count();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = backend.count();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn abort_all_answers_locally_with_fi() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let rules = "  - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n    route: [{destination: {host: orders.shop.svc.cluster.local}}]\n";
        let proxy = TestProxy::start(&config(&backend, rules)).await;
        let c = client();
        for _ in 0..20 {
            let a = get(&c, proxy.addr, ORDERS, "/").await;
            assert_eq!(a.status, StatusCode::IM_A_TEAPOT);
            assert_eq!(a.flag(), "FI");
            assert_eq!(a.body, "fault filter abort");
        }
        assert_eq!(backend.count(), 0, "an aborted request never reaches the backend");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn abort_half_over_1000_requests() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let rules = "  - fault: {abort: {httpStatus: 503, percentage: {value: 50}}}\n    route: [{destination: {host: orders.shop.svc.cluster.local}}]\n";
        let proxy = TestProxy::start(&config(&backend, rules)).await;
        let answers = get_many(proxy.addr, "/", 1000).await;
        let aborted = answers.iter().filter(|a| a.flag() == "FI").count();
        // Binomial(1000, 0.5): sd ≈ 15.8, so ±100 is over 6 sd.
        assert!((400..=600).contains(&aborted), "aborted {aborted} of 1000");
        assert!(answers.iter().all(|a| a.flag() == "FI" || a.status == StatusCode::OK));
        assert_eq!(backend.count(), 1000 - aborted);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn delay_holds_the_request_then_forwards() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let rules = "  - fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}\n    route: [{destination: {host: orders.shop.svc.cluster.local}}]\n";
        let proxy = TestProxy::start(&config(&backend, rules)).await;
        let c = client();
        for _ in 0..2 {
            let started = Instant::now();
            let a = get(&c, proxy.addr, ORDERS, "/").await;
            assert!(started.elapsed() >= Duration::from_millis(300));
            assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "orders"));
        }
        assert_eq!(backend.count(), 2);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn grpc_abort_is_trailers_only_over_h2() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let rules = "  - fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n    route: [{destination: {host: orders.shop.svc.cluster.local}}]\n";
        let proxy = TestProxy::start(&config(&backend, rules)).await;
        let req = Request::post(format!("http://{ORDERS}/shop.Orders/Get"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .expect("request");
        // Connect to the proxy, addressing the service by `:authority`.
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            TokioExecutor::new(),
            TokioIo::new(TcpStream::connect(proxy.addr).await.expect("connect")),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.expect("answer");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "14");
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        assert_eq!(resp.headers()["x-trellis-flags"], "FI");
        let body = resp.into_body().collect().await.expect("body");
        assert!(body.trailers().is_none(), "trailers-only: status in the headers");
        assert!(body.to_bytes().is_empty());
        assert_eq!(backend.count(), 0);
    })
    .await
    .expect("test timed out");
}

/// `orders` and `shadow` (on `shadow_backend`) with a route mirroring `percent` %.
fn mirror_config(primary: &Backend, shadow: &Backend, percent: u32) -> String {
    let rules = format!(
        "  - route: [{{destination: {{host: {ORDERS}}}}}]\n    mirror: {{host: shadow.shop.svc.cluster.local}}\n    mirrorPercentage: {{value: {percent}}}\n"
    );
    service_entry("shadow", "HTTP", &[(shadow.port(), "v1")]) + &config(primary, &rules)
}

#[tokio::test]
async fn mirror_never_delays_the_primary_and_gets_shadow_host() {
    tokio::time::timeout(LIMIT, async {
        let primary = Backend::ok("orders").await;
        let slow = Behaviour {
            delay: Duration::from_secs(1),
            ..Behaviour::default()
        };
        let shadow = Backend::start("shadow", slow).await;
        let proxy = TestProxy::start(&mirror_config(&primary, &shadow, 100)).await;
        let c = client();
        let started = Instant::now();
        for _ in 0..20 {
            let one = Instant::now();
            let a = get(&c, proxy.addr, ORDERS, "/items?id=7").await;
            assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "orders"));
            // Had the primary waited for its 1 s mirror, this alone would take 1 s.
            assert!(
                one.elapsed() < Duration::from_secs(1),
                "{:?}",
                one.elapsed()
            );
        }
        let primary_time = started.elapsed();
        assert!(primary_time < Duration::from_secs(5), "{primary_time:?}");
        assert_eq!(primary.count(), 20);
        assert_eq!(wait_for(&shadow, 20).await, 20);
        for seen in shadow.seen() {
            assert_eq!(seen.headers["host"], "orders.shop.svc.cluster.local-shadow");
            assert_eq!(seen.uri, "/items?id=7");
        }

        // A small body is read once and sent to both.
        let req = Request::post(format!("http://{}/upload", proxy.addr))
            .header("host", ORDERS)
            .body(Full::new(Bytes::from_static(b"payload")))
            .expect("request");
        let resp = c.request(req).await.expect("answer");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(wait_for(&shadow, 21).await, 21);
        let body_of = |b: &Backend| {
            b.seen()
                .into_iter()
                .find(|s| s.uri == "/upload")
                .map(|s| s.body)
        };
        assert_eq!(body_of(&primary).as_deref(), Some(&b"payload"[..]));
        assert_eq!(body_of(&shadow).as_deref(), Some(&b"payload"[..]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn mirror_half_over_1000_requests() {
    tokio::time::timeout(LIMIT, async {
        let primary = Backend::ok("orders").await;
        let shadow = Backend::ok("shadow").await;
        let proxy = TestProxy::start(&mirror_config(&primary, &shadow, 50)).await;
        let answers = get_many(proxy.addr, "/", 1000).await;
        assert!(answers.iter().all(|a| a.status == StatusCode::OK));
        assert_eq!(primary.count(), 1000);
        let mirrored = settle(&shadow).await;
        assert!(
            (400..=600).contains(&mirrored),
            "mirrored {mirrored} of 1000"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rewrites_arrive_at_the_backend() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let to = format!("route: [{{destination: {{host: {ORDERS}}}}}]");
        let rules = format!(
            "  - match: [{{uri: {{prefix: /api/}}}}]\n    rewrite: {{uri: /v2/}}\n    {to}\n  - name: full\n    match: [{{uri: {{prefix: /full}}}}]\n    {to}\n  - match: [{{uri: {{prefix: /service/}}}}]\n    rewrite: {{uriRegexRewrite: {{match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}}}}\n    {to}\n  - match: [{{uri: {{prefix: /host}}}}]\n    rewrite: {{authority: internal.example}}\n    {to}\n"
        );
        let runtime = support::runtime(&config(&backend, &rules), |mesh| {
            let route = mesh
                .services
                .iter_mut()
                .flat_map(|s| s.http_routes.iter_mut())
                .find(|r| r.name.as_deref() == Some("full"))
                .expect("route `full`");
            route.rewrite = Some(Rewrite {
                path: Some(PathRewrite::ReplaceFull("/health".into())),
                authority: None,
            });
        });
        let proxy = TestProxy::with_runtime(runtime).await;
        let c = client();
        for path in [
            "/api/items?x=1",
            "/full/anything?keep=yes",
            "/service/foo/v1/api?q=1",
            "/host/a",
        ] {
            let a = get(&c, proxy.addr, ORDERS, path).await;
            assert_eq!(a.status, StatusCode::OK, "{path}");
        }
        let seen = backend.seen();
        let uris: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "/v2/items?x=1",
                "/health?keep=yes",
                "/v1/api/instance/foo?q=1",
                "/host/a"
            ]
        );
        assert_eq!(seen[0].headers["host"], ORDERS);
        assert_eq!(seen[3].headers["host"], "internal.example");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn cors_preflight_actual_and_other_origins() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("orders").await;
        let rules = format!(
            "  - route: [{{destination: {{host: {ORDERS}}}}}]\n    corsPolicy:\n      allowOrigins: [{{exact: 'https://shop.example'}}, {{regex: 'https://[a-z]+[.]test'}}]\n      allowMethods: [GET, POST]\n      allowHeaders: [x-token]\n      exposeHeaders: [x-trace]\n      maxAge: 24h\n      allowCredentials: true\n"
        );
        let proxy = TestProxy::start(&config(&backend, &rules)).await;
        let c = client();
        let preflight = |origin: &'static str| {
            [
                ("origin", origin),
                ("access-control-request-method", "POST"),
            ]
        };

        let a = send(&c, proxy.addr, Method::OPTIONS, ORDERS, "/", &preflight("https://shop.example")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("access-control-allow-origin"), "https://shop.example");
        assert_eq!(a.header("access-control-allow-methods"), "GET,POST");
        assert_eq!(a.header("access-control-allow-headers"), "x-token");
        assert_eq!(a.header("access-control-max-age"), "86400");
        assert_eq!(a.header("access-control-allow-credentials"), "true");
        assert_eq!(backend.count(), 0, "the proxy answers an allowed preflight");

        let a = send(&c, proxy.addr, Method::GET, ORDERS, "/", &[("origin", "https://abc.test")]).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "orders"));
        assert_eq!(a.header("access-control-allow-origin"), "https://abc.test");
        assert_eq!(a.header("access-control-expose-headers"), "x-trace");
        assert_eq!(a.header("access-control-allow-credentials"), "true");
        assert_eq!(backend.count(), 1);

        let a = send(&c, proxy.addr, Method::GET, ORDERS, "/", &[("origin", "https://evil.example")]).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(!a.headers.keys().any(|k| k.as_str().starts_with("access-control-")));
        // A preflight from another origin is not answered: it goes to the application.
        let a = send(&c, proxy.addr, Method::OPTIONS, ORDERS, "/", &preflight("https://evil.example")).await;
        assert_eq!(a.body, "orders");
        assert!(!a.headers.keys().any(|k| k.as_str().starts_with("access-control-")));
        assert_eq!(backend.count(), 3);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn websocket_upgrade_echoes_both_ways() {
    tokio::time::timeout(LIMIT, async {
        let echo = support::echo_upgrade_backend().await;
        let yaml = service_entry("orders", "HTTP", &[(echo.port(), "v1")]);
        let proxy = TestProxy::start(&yaml).await;
        support::websocket_echo(proxy.addr, ORDERS).await;
    })
    .await
    .expect("test timed out");
}
