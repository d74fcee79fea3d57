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
//! for a series only when Linkerd's names are on. Peer labels map from Istio's: `direction`
//! (`outbound` for the source reporter, `inbound` otherwise), `authority` (the service's
//! host), `tls` (`true` under mutual TLS, else `no_identity` with a `no_tls_reason`), and on
//! outbound traffic `dst_namespace`, `dst_service` and `dst_deployment` (the endpoint's
//! workload). What linkerd2-proxy labels from its own discovery (`target_addr`, `srv_*`,
//! `client_id`, `dst_pod`) is not produced.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeMetric, LabelSetEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use super::family::SeriesMap;
use super::labels::{LabelSet, PeerLabels, Reporter, RequestKey, SecurityPolicy, TcpKey};
use super::series::{DURATION_SCALE, RequestSeries, TcpMetric, TcpSeries};

/// Linkerd's `response_latency_ms` buckets, in microseconds (as Istio's are stored).
pub(crate) const LATENCY_BOUNDS_US: [u64; 25] = [
    1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 100_000, 200_000,
    300_000, 400_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000, 10_000_000,
    20_000_000, 30_000_000, 40_000_000, 50_000_000,
];

/// Linkerd's response classification: a 5xx, or a gRPC status other than OK, is a failure.
fn classification(response_code: u16, grpc_status: Option<u16>) -> &'static str {
    if response_code >= 500 || grpc_status.is_some_and(|s| s != 0) {
        "failure"
    } else {
        "success"
    }
}

/// `value` summed over the series that share a peer label set, in first-seen order.
fn sum_by_peer<K, M>(
    series: &[(K, Arc<M>)],
    labels: impl Fn(&K) -> &LabelSet,
    value: impl Fn(&M) -> u64,
) -> Vec<(&LabelSet, u64)> {
    let mut totals: Vec<(&LabelSet, u64)> = Vec::new();
    let mut index: HashMap<&LabelSet, usize> = HashMap::new();
    for (key, s) in series {
        let n = value(s);
        let set = labels(key);
        match index.get(set) {
            Some(&i) => totals[i].1 += n,
            None => {
                index.insert(set, totals.len());
                totals.push((set, n));
            }
        }
    }
    totals
}

/// The Kubernetes name of the service called: Istio labels a ServiceEntry host's
/// `destination_service_name` with the whole host, Linkerd's `dst_service` is the name only.
fn service_name(peer: &PeerLabels) -> &str {
    let name = peer.destination_service_name.as_str();
    let ns = peer.destination_service_namespace.as_str();
    match name.split_once('.') {
        Some((short, rest)) if rest.strip_prefix(ns).is_some_and(|r| r.starts_with(".svc")) => {
            short
        }
        _ => name,
    }
}

/// Writes the peer labels of `set` under Linkerd's names.
fn encode_peer(set: &LabelSet, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
    let peer = set.peer();
    let outbound = set.reporter() == Reporter::Source;
    let direction = if outbound { "outbound" } else { "inbound" };
    [
        ("direction", direction),
        ("authority", peer.destination_service.as_str()),
    ]
    .as_slice()
    .encode(encoder)?;
    match set.security() {
        SecurityPolicy::MutualTls => [("tls", "true")].as_slice().encode(encoder)?,
        SecurityPolicy::None => [
            ("tls", "no_identity"),
            ("no_tls_reason", "not_provided_by_remote"),
        ]
        .as_slice()
        .encode(encoder)?,
        SecurityPolicy::Unknown => [("tls", "no_identity"), ("no_tls_reason", "unknown")]
            .as_slice()
            .encode(encoder)?,
    }
    if outbound {
        [
            ("dst_namespace", peer.destination_service_namespace.as_str()),
            ("dst_service", service_name(peer)),
            ("dst_deployment", peer.destination_workload.as_str()),
        ]
        .as_slice()
        .encode(encoder)?;
    }
    Ok(())
}

/// `request_total`'s labels: the peer only.
struct PeerOnly<'a>(&'a LabelSet);

impl EncodeLabelSet for PeerOnly<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        encode_peer(self.0, encoder)
    }
}

/// `response_total`'s and `response_latency_ms`' labels: the peer and the status
/// (`classified` adds `classification` and `grpc_status`).
struct Response<'a> {
    key: &'a RequestKey,
    classified: bool,
}

impl EncodeLabelSet for Response<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let key = self.key;
        encode_peer(&key.labels, encoder)?;
        [("status_code", key.response_code)]
            .as_slice()
            .encode(encoder)?;
        if self.classified {
            let class = classification(key.response_code, key.grpc_status);
            [("classification", class)].as_slice().encode(encoder)?;
            if let Some(grpc) = key.grpc_status {
                [("grpc_status", grpc)].as_slice().encode(encoder)?;
            }
        }
        Ok(())
    }
}

/// Which HTTP family a Linkerd view exposes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LinkerdHttp {
    Requests,
    Responses,
    Latency,
}

/// One Linkerd HTTP family, read from the shared HTTP series at scrape time.
#[derive(Debug)]
pub(crate) struct LinkerdHttpView {
    pub map: Arc<SeriesMap<RequestKey, RequestSeries>>,
    pub metric: LinkerdHttp,
}

impl EncodeMetric for LinkerdHttpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.map.snapshot();
        match self.metric {
            LinkerdHttp::Requests => {
                // Istio's series are split by status; Linkerd's request counter is not.
                let totals = sum_by_peer(
                    &series,
                    |k| &k.labels,
                    |s| s.requests.load(Ordering::Relaxed),
                );
                for (labels, n) in totals {
                    encoder
                        .encode_family(&PeerOnly(labels))?
                        .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                }
            }
            LinkerdHttp::Responses => {
                for (key, s) in &series {
                    let n = s.requests.load(Ordering::Relaxed);
                    let labels = Response {
                        key,
                        classified: true,
                    };
                    encoder
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                }
            }
            LinkerdHttp::Latency => {
                for (key, s) in &series {
                    let Some(histogram) = s.linkerd_latency.get() else {
                        continue;
                    };
                    let (sum, count, buckets) =
                        histogram.export(&LATENCY_BOUNDS_US, DURATION_SCALE);
                    let labels = Response {
                        key,
                        classified: false,
                    };
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

/// `tcp_*` labels: the peer, seen from the downstream side (`peer="src"`).
struct TcpLabels<'a>(&'a LabelSet);

impl EncodeLabelSet for TcpLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        encode_peer(self.0, encoder)?;
        [("peer", "src")].as_slice().encode(encoder)
    }
}

/// One Linkerd TCP family, read from the shared TCP series at scrape time. Istio splits
/// TCP series by response flags; Linkerd's are not, so series are summed per peer.
#[derive(Debug)]
pub(crate) struct LinkerdTcpView {
    pub map: Arc<SeriesMap<TcpKey, TcpSeries>>,
    pub metric: TcpMetric,
}

impl EncodeMetric for LinkerdTcpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self.map.snapshot();
        for (labels, n) in sum_by_peer(&series, |k| &k.labels, |s| self.metric.of(s)) {
            encoder
                .encode_family(&TcpLabels(labels))?
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
