//! Linkerd's metric names, for users whose dashboards and alerts (linkerd-viz, Flagger's
//! Linkerd provider, their own PromQL) expect linkerd2-proxy's families:
//!
//! - `request_total` (counter): requests by peer labels;
//! - `response_total` (counter): responses by peer labels, `status_code`, `classification`
//!   (`success`, or `failure` for 5xx and non-OK gRPC statuses) and `grpc_status`;
//! - `response_latency_ms` (histogram, Linkerd's buckets): by peer labels and `status_code`;
//! - `tcp_open_total`, `tcp_close_total`, `tcp_read_bytes_total`, `tcp_write_bytes_total`
//!   (counters, `peer="src"`: the downstream side of the connection).
//!
//! They are views over the same series as Istio's families (one lookup records both); only
//! the latency histogram, whose buckets differ from Istio's, is extra, and it is allocated
//! for a series only when Linkerd's names are on. Linkerd's labels are fewer than Istio's, so
//! each view adds up the Istio series that share its labels at scrape time (see [`labels`]).
//! What linkerd2-proxy labels from its own discovery (`target_addr`, `srv_*`, `client_id`,
//! `dst_pod`) is not produced. The TCP views read the same TCP series as `istio_tcp_*`, which
//! the opaque-TCP path does not record into yet.

mod labels;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::family::HistogramTotals;
use super::series::{DURATION_SCALE, HttpSeriesMap, RequestSeries, TcpMetric, TcpSeriesMap};
use labels::{LatencyLabels, Peer, ResponseLabels, TcpLabels};

/// Linkerd's `response_latency_ms` buckets, in microseconds (as Istio's are stored).
pub(crate) const LATENCY_BOUNDS_US: [u64; 25] = [
    1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 100_000, 200_000,
    300_000, 400_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 10_000_000,
    20_000_000, 30_000_000, 40_000_000, 50_000_000,
];

/// Registers linkerd2-proxy's families as views over the shared HTTP and TCP series.
pub(crate) fn register(registry: &mut Registry, http: &HttpSeriesMap, tcp: &TcpSeriesMap) {
    for (name, help, metric) in [
        ("request", "Requests handled", LinkerdHttp::Requests),
        (
            "response",
            "Responses by status and classification",
            LinkerdHttp::Responses,
        ),
        (
            "response_latency_ms",
            "Response latency",
            LinkerdHttp::Latency,
        ),
    ] {
        let map = Arc::clone(http);
        registry.register(name, help, LinkerdHttpView { map, metric });
    }
    for (name, help, metric) in [
        ("tcp_open", "TCP connections opened", TcpMetric::Opened),
        ("tcp_close", "TCP connections closed", TcpMetric::Closed),
        (
            "tcp_read_bytes",
            "Bytes read from the downstream",
            TcpMetric::Received,
        ),
        (
            "tcp_write_bytes",
            "Bytes written to the downstream",
            TcpMetric::Sent,
        ),
    ] {
        let map = Arc::clone(tcp);
        registry.register(name, help, LinkerdTcpView { map, metric });
    }
}

/// `items` with equal keys merged by `merge`, in first-seen order (the series map's insertion
/// order, so scrapes list series stably).
fn fold<K: Hash + Eq + Copy, V>(
    items: impl IntoIterator<Item = (K, V)>,
    mut merge: impl FnMut(&mut V, V),
) -> Vec<(K, V)> {
    let mut out: Vec<(K, V)> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for (key, value) in items {
        match index.get(&key) {
            Some(&i) => merge(&mut out[i].1, value),
            None => {
                index.insert(key, out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// Which HTTP family a Linkerd view exposes.
#[derive(Debug, Clone, Copy)]
enum LinkerdHttp {
    Requests,
    Responses,
    Latency,
}

/// One Linkerd HTTP family, read from the shared HTTP series at scrape time.
#[derive(Debug)]
struct LinkerdHttpView {
    map: HttpSeriesMap,
    metric: LinkerdHttp,
}

impl EncodeMetric for LinkerdHttpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.map.snapshot();
        let requests = |s: &RequestSeries| s.requests.load(Ordering::Relaxed);
        match self.metric {
            LinkerdHttp::Requests => {
                // Istio's series are split by status; Linkerd's request counter is not.
                let items = series
                    .iter()
                    .map(|(k, s)| (Peer::of(&k.labels), requests(s)));
                for (labels, n) in fold(items, |a, b| *a += b) {
                    encoder
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                }
            }
            LinkerdHttp::Responses => {
                let items = series.iter().map(|(k, s)| {
                    let labels = ResponseLabels {
                        peer: Peer::of(&k.labels),
                        status_code: k.response_code,
                        grpc_status: k.grpc_status,
                    };
                    (labels, requests(s))
                });
                for (labels, n) in fold(items, |a, b| *a += b) {
                    encoder
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                }
            }
            LinkerdHttp::Latency => {
                let items = series.iter().filter_map(|(k, s)| {
                    let histogram = s.linkerd_latency.get()?;
                    let labels = LatencyLabels {
                        peer: Peer::of(&k.labels),
                        status_code: k.response_code,
                    };
                    let mut totals = HistogramTotals::default();
                    totals.add(histogram);
                    Some((labels, totals))
                });
                for (labels, totals) in fold(items, HistogramTotals::merge) {
                    let (sum, count, buckets) = totals.export(&LATENCY_BOUNDS_US, DURATION_SCALE);
                    encoder
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.metric {
            LinkerdHttp::Latency => MetricType::Histogram,
            _ => MetricType::Counter,
        }
    }
}

/// One Linkerd TCP family, read from the shared TCP series at scrape time. Istio splits
/// TCP series by response flags (and caller); Linkerd's are not, so series are summed.
#[derive(Debug)]
struct LinkerdTcpView {
    map: TcpSeriesMap,
    metric: TcpMetric,
}

impl EncodeMetric for LinkerdTcpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.map.snapshot();
        let items = series
            .iter()
            .map(|(k, s)| (TcpLabels(Peer::of(&k.labels)), self.metric.of(s)));
        for (labels, n) in fold(items, |a, b| *a += b) {
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

#[cfg(test)]
mod tests;
