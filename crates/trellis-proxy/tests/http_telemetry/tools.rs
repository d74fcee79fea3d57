//! Starting a proxy with its own telemetry, and reading what it reported: metric samples
//! summed by label, access-log lines as text or JSON. Each test binary uses the parts it needs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use trellis_proxy::http::{ServeOptions, serve};
use trellis_proxy::runtime::Runtime;
use trellis_proxy::telemetry::metrics::{MetricsConfig, ProxyMetrics};
use trellis_proxy::telemetry::{
    AccessLogConfig, AccessLogDestination, AccessLogFormat, SourceIdentity, Telemetry,
};

/// Serves `rt` reporting into `telemetry`; returns the proxy's address.
pub async fn start_proxy(rt: Runtime, telemetry: &Arc<Telemetry>) -> SocketAddr {
    // No updates: the receiver keeps serving the last runtime once the sender is gone.
    let (_, rx) = watch::channel(Arc::new(rt));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let opts = ServeOptions {
        telemetry: Arc::clone(telemetry),
        ..ServeOptions::default()
    };
    tokio::spawn(serve(listener, rx, opts));
    addr
}

/// Telemetry as `frontend` in `shop`, with a registry bounded at `max_series` and the access
/// log written to `log` (if any) in `format`.
pub fn telemetry(max_series: usize, log: Option<&Path>, format: AccessLogFormat) -> Arc<Telemetry> {
    let metrics = Arc::new(ProxyMetrics::new(MetricsConfig {
        max_series_per_family: max_series,
        ..MetricsConfig::default()
    }));
    let source = SourceIdentity {
        workload: "frontend".into(),
        namespace: "shop".into(),
        app: "frontend".into(),
        version: "v9".into(),
        principal: "spiffe://cluster.local/ns/shop/sa/frontend".into(),
    };
    let destination = match log {
        Some(p) => AccessLogDestination::File(p.to_path_buf()),
        None => AccessLogDestination::Off,
    };
    let config = AccessLogConfig {
        format,
        destination,
    };
    Arc::new(Telemetry::new(metrics, source, &config).expect("telemetry starts"))
}

pub fn scrape(t: &Telemetry) -> String {
    let mut out = String::new();
    t.metrics().encode(&mut out);
    out
}

/// Sum of the samples of `metric` whose labels contain every one of `needles`.
pub fn sum(text: &str, metric: &str, needles: &[&str]) -> u64 {
    let (labelled, bare) = (format!("{metric}{{"), format!("{metric} "));
    text.lines()
        .filter(|l| l.starts_with(&labelled) || l.starts_with(&bare))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(|l| {
            let v = l.rsplit(' ').next().expect("sample value");
            v.parse::<f64>().expect("numeric sample") as u64
        })
        .sum()
}

/// `t`'s metrics once `metric` summed over `needles` is `want`, polling every 10 ms for up
/// to `within` (then as they are, for the caller's assertion to show).
pub async fn scrape_when(
    t: &Telemetry,
    metric: &str,
    needles: &[&str],
    want: u64,
    within: Duration,
) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let text = scrape(t);
        if sum(&text, metric, needles) == want || tokio::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until `cond` holds: responses are recorded as their last byte leaves, a
/// moment before or after the client sees it.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never true: {what}");
}

pub fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    log_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}
