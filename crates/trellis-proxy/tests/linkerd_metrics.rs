//! Linkerd's metric names by a setting, end to end: a proxy serving a configuration
//! directory, real backends on 127.0.0.1 answering 200 and 503, and `/stats/prometheus`
//! scraped from the admin endpoint as Prometheus would. Counts must match what the client
//! saw, under Linkerd's names, Istio's, or both; and every sample must be printed once, even
//! where several Istio series (two versions of one deployment) fold into one Linkerd series.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use support::{
    Backend, Behaviour, DeadPort, LIMIT, TempDir, client, dead_port, get, service_entry,
};
use trellis_proxy::server::{ProxyServer, ProxySettings, Stop};
use trellis_proxy::telemetry::metrics::MetricsNames;

const REVIEWS: &str = "reviews.shop.svc.cluster.local";

/// Requests sent to `reviews` per proxy.
const N: usize = 20;

/// A running mesh: `reviews` on two versions, each answering 503 to its first two requests
/// (retries off, so the client sees them), and `ratings`, whose only endpoint refuses
/// connections (the proxy answers 503 itself).
struct Mesh {
    dir: TempDir,
    _v1: Backend,
    _v2: Backend,
    /// Keeps the `ratings` endpoint refusing connections.
    _ratings: DeadPort,
}

async fn mesh() -> Mesh {
    let failing_twice = Behaviour {
        fail_first: 2,
        ..Behaviour::default()
    };
    let v1 = Backend::start("v1", failing_twice).await;
    let v2 = Backend::start("v2", failing_twice).await;
    let ratings = dead_port();
    let yaml = service_entry("reviews", "HTTP", &[(v1.port(), "v1"), (v2.port(), "v2")])
        + &service_entry("ratings", "HTTP", &[(ratings.port(), "v1")])
        + &format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews, namespace: shop}}\nspec:\n  hosts: [{REVIEWS}]\n  http:\n  - retries: {{attempts: 0}}\n    route:\n    - destination: {{host: {REVIEWS}}}\n"
        );
    let dir = TempDir::new("linkerd-metrics");
    std::fs::write(dir.0.join("mesh.yaml"), yaml).expect("write config");
    Mesh {
        dir,
        _v1: v1,
        _v2: v2,
        _ratings: ratings,
    }
}

async fn start(mesh: &Mesh, names: MetricsNames) -> ProxyServer {
    let mut s = ProxySettings::new(vec![mesh.dir.0.clone()]);
    s.outbound_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.admin_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.health_addr = None;
    s.watch = false;
    s.load.default_namespace = "shop".into();
    s.runtime.client_namespace = "shop".into();
    s.metrics.names = names;
    ProxyServer::start(s).await.expect("proxy starts")
}

/// What the client saw: `(ok, failed)` from `reviews` after `N` requests, and 2 requests to
/// `ratings` (both 503).
async fn traffic(server: &ProxyServer) -> (u64, u64) {
    let c = client();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..N {
        match get(&c, server.outbound_addr(), "reviews", "/")
            .await
            .status
            .as_u16()
        {
            200 => ok += 1,
            503 => failed += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    for _ in 0..2 {
        let a = get(&c, server.outbound_addr(), "ratings", "/").await;
        assert_eq!(a.status.as_u16(), 503, "{a:?}");
    }
    (ok, failed)
}

/// `/stats/prometheus` once `metric` sums to `want` (responses are recorded as their last
/// byte leaves, a moment before or after the client sees it).
async fn scrape_until(server: &ProxyServer, metric: &str, want: u64) -> String {
    let c = client();
    let mut text = String::new();
    for _ in 0..200 {
        text = get(&c, server.admin_addr(), "admin", "/stats/prometheus")
            .await
            .body;
        if sum(&text, metric, &[]) == want {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{metric} never reached {want}:\n{text}");
}

/// Sum of the samples of `metric` whose labels contain every one of `needles`.
fn sum(text: &str, metric: &str, needles: &[&str]) -> u64 {
    let (labelled, bare) = (format!("{metric}{{"), format!("{metric} "));
    text.lines()
        .filter(|l| l.starts_with(&labelled) || l.starts_with(&bare))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// How many samples of `metric` carry all `needles`.
fn samples(text: &str, metric: &str, needles: &[&str]) -> usize {
    let labelled = format!("{metric}{{");
    text.lines()
        .filter(|l| l.starts_with(&labelled))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Every sample (name and labels) appears once: Prometheus keeps one of two samples that
/// share a label set, so a duplicate would silently lose counts.
fn assert_unique_samples(text: &str) {
    let mut seen = HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        assert!(seen.insert(series), "duplicate sample {series} in:\n{text}");
    }
}

fn has_family(text: &str, family: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with(&format!("# TYPE {family} ")))
}

const LINKERD: [&str; 3] = ["request", "response", "response_latency_ms"];

#[tokio::test]
async fn linkerd_names_count_what_the_client_saw() {
    tokio::time::timeout(LIMIT, async {
        let mesh = mesh().await;
        let server = start(&mesh, MetricsNames::Linkerd).await;
        let (ok, failed) = traffic(&server).await;
        assert!(
            failed >= 2,
            "the backends' first answers are 503s: {failed}"
        );
        let total = N as u64 + 2;
        let text = scrape_until(&server, "request_total", total).await;
        assert_unique_samples(&text);
        let reviews = [
            "direction=\"outbound\"",
            "authority=\"reviews.shop.svc.cluster.local\"",
            "tls=\"no_identity\"",
            "dst_namespace=\"shop\"",
            "dst_service=\"reviews\"",
        ];
        // v1 and v2 are two Istio series but one Linkerd series (no version label).
        assert_eq!(samples(&text, "request_total", &reviews), 1, "{text}");
        assert_eq!(sum(&text, "request_total", &reviews), N as u64, "{text}");
        let with = |extra: &[&'static str]| [&reviews[..], extra].concat();
        let failure = with(&["status_code=\"503\"", "classification=\"failure\""]);
        let success = with(&["status_code=\"200\"", "classification=\"success\""]);
        assert_eq!(sum(&text, "response_total", &failure), failed, "{text}");
        assert_eq!(sum(&text, "response_total", &success), ok, "{text}");
        // The proxy's own 503s (connection refused) are failures too.
        let ratings = ["dst_service=\"ratings\"", "classification=\"failure\""];
        assert_eq!(sum(&text, "response_total", &ratings), 2, "{text}");
        let classified = ["classification=\"failure\""];
        assert_eq!(sum(&text, "response_total", &classified), failed + 2);
        assert_eq!(sum(&text, "response_latency_ms_count", &[]), total);
        let latency_503 = with(&["status_code=\"503\""]);
        assert_eq!(
            sum(&text, "response_latency_ms_count", &latency_503),
            failed,
            "{text}"
        );
        // Linkerd's buckets: 1 ms up to 50 s.
        let top = with(&["le=\"50000.0\"", "status_code=\"200\""]);
        assert_eq!(sum(&text, "response_latency_ms_bucket", &top), ok);
        for family in LINKERD.into_iter().chain(["tcp_open"]) {
            assert!(has_family(&text, family), "{family} missing: {text}");
        }
        assert!(!text.contains("istio_"), "{text}");
        server.stop(Stop::Now);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn both_names_report_the_same_requests() {
    tokio::time::timeout(LIMIT, async {
        let mesh = mesh().await;
        let server = start(&mesh, MetricsNames::Both).await;
        let (_, failed) = traffic(&server).await;
        let total = N as u64 + 2;
        let text = scrape_until(&server, "request_total", total).await;
        assert_unique_samples(&text);
        assert_eq!(sum(&text, "istio_requests_total", &[]), total, "{text}");
        let istio_503 = ["response_code=\"503\""];
        let linkerd_failed = ["classification=\"failure\""];
        assert_eq!(sum(&text, "istio_requests_total", &istio_503), failed + 2);
        assert_eq!(sum(&text, "response_total", &linkerd_failed), failed + 2);
        assert_eq!(
            sum(&text, "istio_request_duration_milliseconds_count", &[]),
            sum(&text, "response_latency_ms_count", &[]),
        );
        server.stop(Stop::Now);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn istio_names_by_default_and_no_linkerd_family() {
    tokio::time::timeout(LIMIT, async {
        let mesh = mesh().await;
        let server = start(&mesh, MetricsNames::default()).await;
        traffic(&server).await;
        let total = N as u64 + 2;
        let text = scrape_until(&server, "istio_requests_total", total).await;
        for family in LINKERD.into_iter().chain(["tcp_open"]) {
            assert!(!has_family(&text, family), "{family} present: {text}");
        }
        assert!(!text.contains("request_total{"), "{text}");
        server.stop(Stop::Now);
    })
    .await
    .expect("test timed out");
}
