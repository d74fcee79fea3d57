//! End-to-end telemetry of the HTTP listener over real sockets on 127.0.0.1: Istio's request
//! metrics (labels from endpoint labels, flags of local replies, histograms, the cardinality
//! bound), the proxy's retry counter, and the access log (JSON and text lines, request ids as
//! the backend saw them, downstream disconnects flagged `DC`).

#[path = "http_telemetry/backends.rs"]
mod backends;
mod support;
#[path = "http_telemetry/tools.rs"]
mod tools;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use trellis_proxy::runtime::Runtime;
use trellis_proxy::telemetry::AccessLogFormat;

use support::{Backend, Behaviour, LIMIT, TempDir, client, get, runtime, send, service_entry};
use tools::{eventually, json_lines, log_lines, scrape, start_proxy, sum, telemetry};

const REVIEWS: &str = "reviews.shop.svc.cluster.local";

/// `reviews` on v1 and v2 endpoints plus `ratings`, whose endpoints are removed (`UH`).
async fn mesh() -> (Backend, Backend, Runtime) {
    let v1 = Backend::ok("v1").await;
    let v2 = Backend::ok("v2").await;
    let yaml = service_entry("reviews", "HTTP", &[(v1.port(), "v1"), (v2.port(), "v2")])
        + &service_entry("ratings", "HTTP", &[(v1.port(), "v1")])
        + "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews.shop.svc.cluster.local]\n  http:\n  - route:\n    - destination: {host: reviews.shop.svc.cluster.local}\n";
    let rt = runtime(&yaml, |m| {
        for s in m
            .services
            .iter_mut()
            .filter(|s| s.host.starts_with("ratings"))
        {
            s.endpoints.clear();
        }
    });
    (v1, v2, rt)
}

#[tokio::test]
async fn requests_are_counted_by_destination_version_and_flags() {
    tokio::time::timeout(LIMIT, async {
        let (v1, v2, rt) = mesh().await;
        let t = telemetry(10_000, None, AccessLogFormat::Json);
        let proxy = start_proxy(rt, &t).await;
        let c = client();
        const N: usize = 300;
        for _ in 0..N {
            assert_eq!(get(&c, proxy, "reviews", "/").await.status, StatusCode::OK);
        }
        let nr = get(&c, proxy, "nowhere", "/").await;
        assert_eq!((nr.status.as_u16(), nr.flag()), (404, "NR"));
        let uh = get(&c, proxy, "ratings", "/").await;
        assert_eq!((uh.status.as_u16(), uh.flag()), (503, "UH"));
        let total = (N + 2) as u64;
        let req = "istio_requests_total";
        eventually("every request recorded", || {
            sum(&scrape(&t), req, &[]) == total
        })
        .await;
        let text = scrape(&t);
        let ok = [
            "reporter=\"source\"",
            "source_workload=\"frontend\"",
            "source_version=\"v9\"",
            "destination_service=\"reviews.shop.svc.cluster.local\"",
            "destination_service_name=\"reviews.shop.svc.cluster.local\"",
            "destination_service_namespace=\"shop\"",
            "request_protocol=\"http\"",
            "response_code=\"200\"",
            "response_flags=\"-\"",
        ];
        let by_version = |v: &str| {
            let label = format!("destination_version=\"{v}\"");
            let mut needles = ok.to_vec();
            needles.push(&label);
            sum(&text, req, &needles)
        };
        let (n1, n2) = (by_version("v1"), by_version("v2"));
        assert_eq!(n1, v1.count() as u64, "{text}");
        assert_eq!(n2, v2.count() as u64, "{text}");
        assert_eq!(n1 + n2, N as u64);
        assert!(n1 > 0 && n2 > 0, "both versions served: {n1} {n2}");
        let nr = [
            "destination_service=\"unknown\"",
            "response_code=\"404\"",
            "response_flags=\"NR\"",
        ];
        assert_eq!(sum(&text, req, &nr), 1, "{text}");
        let uh = [
            "destination_service=\"ratings.shop.svc.cluster.local\"",
            "destination_version=\"unknown\"",
            "response_code=\"503\"",
            "response_flags=\"UH\"",
        ];
        assert_eq!(sum(&text, req, &uh), 1, "{text}");
        for hist in [
            "istio_request_duration_milliseconds_count",
            "istio_request_bytes_count",
            "istio_response_bytes_count",
        ] {
            assert_eq!(sum(&text, hist, &[]), total, "{hist} in {text}");
        }
        // Response sizes count the body: every 200 carried at least its 2-byte name.
        let sizes = sum(
            &text,
            "istio_response_bytes_sum",
            &["response_code=\"200\""],
        );
        assert!(sizes >= 2 * N as u64, "{sizes}");
        assert_eq!(sum(&text, "trellis_retries_total", &[]), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn json_access_log_has_one_line_per_request_with_the_backends_request_id() {
    tokio::time::timeout(LIMIT, async {
        let (v1, v2, rt) = mesh().await;
        let dir = TempDir::new("alog");
        let path = dir.0.join("access.log");
        let t = telemetry(10_000, Some(&path), AccessLogFormat::Json);
        let proxy = start_proxy(rt, &t).await;
        let c = client();
        let given = send(
            &c,
            proxy,
            Method::GET,
            "reviews:8080",
            "/r?x=1",
            &[("x-request-id", "given-id-1"), ("user-agent", "tester/1")],
        )
        .await;
        assert_eq!(given.header("x-seen-request-id"), "given-id-1");
        let generated = get(&c, proxy, "reviews", "/gen").await;
        let generated_id = generated.header("x-seen-request-id").to_owned();
        assert_eq!(generated_id.len(), 36, "a UUID was generated");
        assert_eq!(
            get(&c, proxy, "nowhere", "/x").await.status,
            StatusCode::NOT_FOUND
        );
        eventually("three lines", || log_lines(&path).len() >= 3).await;
        let lines = json_lines(&path);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let first = &lines[0];
        let upstream = first["upstream_host"].as_str().expect("upstream_host");
        let ports = [v1.port(), v2.port()].map(|p| format!("127.0.0.1:{p}"));
        assert!(ports.iter().any(|p| p == upstream), "{first}");
        for (field, want) in [
            ("method", "GET"),
            ("authority", "reviews:8080"),
            ("path", "/r?x=1"),
            ("protocol", "HTTP/1.1"),
            ("response_flags", "-"),
            ("response_code_details", "via_upstream"),
            ("upstream_service", REVIEWS),
            ("x_request_id", "given-id-1"),
            ("user_agent", "tester/1"),
            ("route_name", "VirtualService shop/reviews"),
        ] {
            assert_eq!(first[field].as_str(), Some(want), "{field} in {first}");
        }
        assert_eq!(first["response_code"], 200);
        assert_eq!(first["attempts"], 1);
        assert_eq!(first["bytes_sent"], 2, "the body `v1`/`v2`");
        assert_eq!(first["bytes_received"], 0);
        assert!(first["duration"].as_u64().is_some());
        assert!(
            first["start_time"]
                .as_str()
                .is_some_and(|s| s.ends_with('Z'))
        );
        let remote = first["downstream_remote_address"].as_str().expect("peer");
        assert!(remote.starts_with("127.0.0.1:"), "{remote}");
        assert_eq!(
            lines[1]["x_request_id"].as_str(),
            Some(generated_id.as_str())
        );
        let nr = &lines[2];
        assert_eq!(nr["response_code"], 404);
        assert_eq!(nr["response_flags"], "NR");
        assert_eq!(nr["response_code_details"], "no route matched the request");
        assert_eq!(nr["upstream_host"], "");
        assert_eq!(nr["attempts"], 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn text_access_log_and_retries_are_reported() {
    tokio::time::timeout(LIMIT, async {
        let flaky = Backend::start(
            "ok",
            Behaviour {
                fail_first: 2,
                ..Behaviour::default()
            },
        )
        .await;
        let yaml = service_entry("reviews", "HTTP", &[(flaky.port(), "v1")])
            + "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews.shop.svc.cluster.local]\n  http:\n  - retries: {attempts: 3, retryOn: 5xx}\n    route:\n    - destination: {host: reviews.shop.svc.cluster.local}\n";
        let dir = TempDir::new("alog-text");
        let path = dir.0.join("access.log");
        let t = telemetry(10_000, Some(&path), AccessLogFormat::Text);
        let proxy = start_proxy(runtime(&yaml, |_| {}), &t).await;
        let c = client();
        let answer = send(&c, proxy, Method::GET, "reviews", "/t", &[("x-request-id", "t-1")]);
        assert_eq!(answer.await.status, StatusCode::OK);
        assert_eq!(flaky.count(), 3);
        eventually("a line", || !log_lines(&path).is_empty()).await;
        let line = &log_lines(&path)[0];
        assert!(line.starts_with('['), "{line}");
        assert!(
            line.contains("] \"GET /t HTTP/1.1\" 200 - via_upstream 0 2 "),
            "{line}"
        );
        let upstream = format!("\"t-1\" \"reviews\" \"127.0.0.1:{}\" attempts=3", flaky.port());
        assert!(line.ends_with(&upstream), "{line}");
        let text = scrape(&t);
        assert_eq!(sum(&text, "trellis_retries_total", &[]), 2, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_client_leaving_mid_response_is_logged_with_dc() {
    tokio::time::timeout(LIMIT, async {
        let backend = backends::streaming().await;
        let yaml = service_entry("reviews", "HTTP", &[(backend.port(), "v1")]);
        let dir = TempDir::new("alog-dc");
        let path = dir.0.join("access.log");
        let t = telemetry(10_000, Some(&path), AccessLogFormat::Json);
        let proxy = start_proxy(runtime(&yaml, |_| {}), &t).await;
        let mut conn = TcpStream::connect(proxy).await.expect("connect");
        conn.write_all(b"GET /stream HTTP/1.1\r\nHost: reviews\r\n\r\n")
            .await
            .expect("send");
        // Read the head and some body, then go away.
        let mut buf = vec![0u8; 8192];
        let mut got = conn.read(&mut buf).await.expect("read");
        assert!(buf.starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..got]);
        while got < 2048 {
            let n = conn.read(&mut buf).await.expect("read");
            assert!(n > 0, "proxy closed early");
            got += n;
        }
        drop(conn);
        eventually("the DC line", || !log_lines(&path).is_empty()).await;
        let line = &json_lines(&path)[0];
        assert_eq!(line["response_code"], 200, "{line}");
        assert_eq!(line["response_flags"], "DC", "{line}");
        assert_eq!(line["response_code_details"], "the client disconnected");
        let sent = line["bytes_sent"].as_u64().expect("bytes_sent");
        assert!((1024..500 * 1024).contains(&sent), "{line}");
        let text = scrape(&t);
        let dc = ["response_code=\"200\"", "response_flags=\"DC\""];
        assert_eq!(sum(&text, "istio_requests_total", &dc), 1, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn label_cardinality_is_bounded_by_the_overflow_series() {
    tokio::time::timeout(LIMIT, async {
        let backend = Backend::ok("ok").await;
        let names: Vec<String> = (0..12).map(|i| format!("svc{i}")).collect();
        let yaml: String = names
            .iter()
            .map(|n| service_entry(n, "HTTP", &[(backend.port(), "v1")]))
            .collect();
        let t = telemetry(5, None, AccessLogFormat::Json);
        let proxy = start_proxy(runtime(&yaml, |_| {}), &t).await;
        let c = client();
        for n in &names {
            for _ in 0..2 {
                assert_eq!(get(&c, proxy, n, "/").await.status, StatusCode::OK);
            }
        }
        let req = "istio_requests_total";
        eventually("every request recorded", || {
            sum(&scrape(&t), req, &[]) == 24
        })
        .await;
        let text = scrape(&t);
        let series = text
            .lines()
            .filter(|l| l.starts_with("istio_requests_total{"));
        let overflow = "destination_service=\"overflow\"";
        let (over, regular): (Vec<&str>, Vec<&str>) = series.partition(|l| l.contains(overflow));
        assert_eq!(regular.len(), 5, "{text}");
        assert_eq!(over.len(), 1, "{text}");
        assert_eq!(sum(&text, req, &[overflow]), 14, "7 services x 2 requests");
        let overflowed = sum(&text, "trellis_metrics_overflow_total", &["group=\"http\""]);
        assert_eq!(overflowed, 14, "{text}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn grpc_calls_carry_the_status_from_their_trailers() {
    tokio::time::timeout(LIMIT, async {
        let server = backends::grpc("14").await;
        let yaml = service_entry("reviews", "GRPC", &[(server.port(), "v1")]);
        let t = telemetry(10_000, None, AccessLogFormat::Json);
        let proxy = start_proxy(runtime(&yaml, |_| {}), &t).await;
        // Prior-knowledge h2c with `:authority` naming the service.
        let tcp = TcpStream::connect(proxy).await.expect("connect");
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let req = Request::post("http://reviews/shop.Reviews/Get")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .expect("request");
        let resp = h2.send_request(req).await.expect("proxy answers");
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.expect("body");
        let status = body.trailers().and_then(|t| t.get("grpc-status")).cloned();
        assert_eq!(status.as_ref().map(|v| v.as_bytes()), Some(&b"14"[..]));
        let grpc = [
            "request_protocol=\"grpc\"",
            "response_code=\"200\"",
            "grpc_response_status=\"14\"",
        ];
        let req = "istio_requests_total";
        eventually("the call recorded", || sum(&scrape(&t), req, &grpc) == 1).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn pool_overflows_are_flagged_and_counted() {
    tokio::time::timeout(LIMIT, async {
        let slow = Backend::start(
            "slow",
            Behaviour {
                delay: Duration::from_millis(300),
                ..Behaviour::default()
            },
        )
        .await;
        let yaml = service_entry("reviews", "HTTP", &[(slow.port(), "v1")])
            + "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews, namespace: shop}\nspec:\n  host: reviews.shop.svc.cluster.local\n  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 1}}}\n";
        let t = telemetry(10_000, None, AccessLogFormat::Json);
        let proxy = start_proxy(runtime(&yaml, |_| {}), &t).await;
        let c = client();
        let first = get(&c, proxy, "reviews", "/a");
        let second = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            get(&c, proxy, "reviews", "/b").await
        };
        let (a, b) = tokio::join!(first, second);
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!((b.status.as_u16(), b.flag()), (503, "UO"));
        let req = "istio_requests_total";
        eventually("both recorded", || sum(&scrape(&t), req, &[]) == 2).await;
        let text = scrape(&t);
        let uo = ["response_code=\"503\"", "response_flags=\"UO\""];
        assert_eq!(sum(&text, req, &uo), 1, "{text}");
        assert_eq!(sum(&text, "trellis_upstream_overflows_total", &[]), 1);
    })
    .await
    .expect("test timed out");
}
