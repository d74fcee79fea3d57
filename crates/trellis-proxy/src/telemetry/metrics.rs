//! The proxy's Prometheus metrics, under Istio's standard names and labels so existing PromQL,
//! Kiali, Grafana and Flagger work unchanged, plus the proxy's own counters.
//!
//! Built for the request path: callers build a [`LabelSet`] once per (source workload,
//! destination endpoint/service, route) and record with it, so a request costs one read-locked
//! hash lookup (hashing a precomputed digest, not strings) and a handful of relaxed atomic adds;
//! a TCP connection resolves its series once and then only adds. Each group of families holds
//! at most [`MetricsConfig::max_series_per_family`] label sets; past that, traffic is recorded
//! under an `overflow` series and `trellis_metrics_overflow_total` counts how often.
//!
//! [`MetricsNames`] picks the families exposed: Istio's (the default), Linkerd's
//! (`request_total`, `response_total`, `response_latency_ms`, `tcp_*`; see the `linkerd` module), or
//! both. Both are views over the same series.

mod family;
mod labels;
mod linkerd;
mod series;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::telemetry::flags::ResponseFlags;
use family::{AtomicHistogram, SeriesMap};
use labels::{RequestKey, RequestKeyParts, RequestKeyRef, TcpKey, flag_bits};
use linkerd::LATENCY_BOUNDS_US;
use series::{
    BYTES_BOUNDS, DURATION_BOUNDS_US, HttpSeriesMap, RequestSeries, TcpSeries, TcpSeriesMap,
    register_istio,
};

pub use labels::{LabelSet, OVERFLOW_VALUE, PeerLabels, Reporter, RequestProtocol, SecurityPolicy};

/// The HTTP content type of [`ProxyMetrics::encode`]'s output (OpenMetrics text, which
/// Prometheus negotiates and parses natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How many label sets each metric family may hold before recording into the overflow series.
pub const DEFAULT_MAX_SERIES_PER_FAMILY: usize = 10_000;

/// Which names the request and connection metrics are exposed under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsNames {
    /// Istio's standard metrics (`istio_requests_total`, …).
    #[default]
    Istio,
    /// linkerd2-proxy's (`request_total`, `response_total`, `response_latency_ms`, …).
    Linkerd,
    /// Both sets, for a migration from one mesh's dashboards to the other's.
    Both,
}

impl MetricsNames {
    fn istio(self) -> bool {
        matches!(self, MetricsNames::Istio | MetricsNames::Both)
    }

    fn linkerd(self) -> bool {
        matches!(self, MetricsNames::Linkerd | MetricsNames::Both)
    }
}

/// Settings of the metrics registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Bound on distinct label sets per family, so a flood of distinct peers cannot exhaust
    /// memory or make scrapes unbounded.
    pub max_series_per_family: usize,
    /// The metric names exposed.
    pub names: MetricsNames,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
            names: MetricsNames::default(),
        }
    }
}

/// How one HTTP request ended: the per-request part of its labels and its measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOutcome {
    /// HTTP status sent downstream (`response_code`).
    pub response_code: u16,
    /// gRPC status for gRPC requests (`grpc_response_status`, empty otherwise).
    pub grpc_status: Option<u16>,
    /// Why the proxy shaped the response, if it did (`response_flags`).
    pub flags: ResponseFlags,
    /// Time from first request byte to last response byte.
    pub duration: Duration,
    /// Request size (headers and body), bytes.
    pub request_bytes: u64,
    /// Response size (headers and body), bytes.
    pub response_bytes: u64,
}

type Labels1 = [(&'static str, &'static str); 1];

/// The registry: Istio's families, the proxy's own counters and the text encoder behind
/// `/stats/prometheus`. Shared (`Arc`) by every listener and connection.
#[derive(Debug)]
pub struct ProxyMetrics {
    registry: Registry,
    http: HttpSeriesMap,
    tcp: TcpSeriesMap,
    /// Only its peer half is used: the stand-in for label sets past the bound.
    overflow: LabelSet,
    /// Linkerd's latency histogram is observed (its names are exposed).
    linkerd_latency: bool,
    retries: Counter,
    upstream_overflows: Counter,
    access_log_dropped: Counter,
    outlier_ejections: Counter,
    reloads_accepted: Counter,
    reloads_rejected: Counter,
}

impl ProxyMetrics {
    /// Registers every family (empty families still print `# HELP`/`# TYPE`, so dashboards see
    /// the metric exists before traffic arrives).
    pub fn new(config: MetricsConfig) -> Self {
        let mut registry = Registry::default();
        let overflowed = Family::<Labels1, Counter>::default();
        registry.register(
            "trellis_metrics_overflow",
            "Records sent to the overflow series because a metric family hit its label-set bound",
            overflowed.clone(),
        );
        let max = config.max_series_per_family;
        let http = Arc::new(SeriesMap::new(
            max,
            overflowed.get_or_create_owned(&[("group", "http")]),
        ));
        let tcp = Arc::new(SeriesMap::new(
            max,
            overflowed.get_or_create_owned(&[("group", "tcp")]),
        ));
        if config.names.istio() {
            register_istio(&mut registry, &http, &tcp);
        }
        if config.names.linkerd() {
            linkerd::register(&mut registry, &http, &tcp);
        }
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let retries = counter(
            &mut registry,
            "trellis_retries",
            "Request retries attempted",
        );
        let upstream_overflows = counter(
            &mut registry,
            "trellis_upstream_overflows",
            "Requests refused by a connection-pool limit",
        );
        let access_log_dropped = counter(
            &mut registry,
            "trellis_access_log_dropped",
            "Access-log lines dropped because the writer fell behind",
        );
        let outlier_ejections = counter(
            &mut registry,
            "trellis_outlier_ejections",
            "Endpoints ejected by outlier detection",
        );
        let reloads = Family::<Labels1, Counter>::default();
        registry.register(
            "trellis_config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        ProxyMetrics {
            registry,
            http,
            tcp,
            overflow: LabelSet::new(
                PeerLabels::overflow(),
                Reporter::Source,
                RequestProtocol::Http,
                SecurityPolicy::Unknown,
            ),
            linkerd_latency: config.names.linkerd(),
            retries,
            upstream_overflows,
            access_log_dropped,
            outlier_ejections,
            reloads_accepted: reloads.get_or_create_owned(&[("result", "accepted")]),
            reloads_rejected: reloads.get_or_create_owned(&[("result", "rejected")]),
        }
    }

    /// Records one finished HTTP request into the four HTTP families.
    pub fn record_request(&self, labels: &LabelSet, outcome: &RequestOutcome) {
        let flags = flag_bits(outcome.flags);
        let key = RequestKeyRef {
            labels,
            response_code: outcome.response_code,
            grpc_status: outcome.grpc_status,
            flags,
        };
        let make = || RequestKey {
            labels: labels.clone(),
            response_code: outcome.response_code,
            grpc_status: outcome.grpc_status,
            flags,
        };
        let overflow = |k: &RequestKey| RequestKey {
            labels: k.labels.with_peer(&self.overflow),
            ..k.clone()
        };
        let micros = u64::try_from(outcome.duration.as_micros()).unwrap_or(u64::MAX);
        self.http.with(
            &key as &dyn RequestKeyParts,
            make,
            overflow,
            |s: &RequestSeries| {
                s.requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                s.duration.observe(&DURATION_BOUNDS_US, micros);
                s.request_bytes
                    .observe(&BYTES_BOUNDS, outcome.request_bytes);
                s.response_bytes
                    .observe(&BYTES_BOUNDS, outcome.response_bytes);
                if self.linkerd_latency {
                    s.linkerd_latency
                        .get_or_init(|| AtomicHistogram::new(LATENCY_BOUNDS_US.len()))
                        .observe(&LATENCY_BOUNDS_US, micros);
                }
            },
        );
    }

    /// Counts a TCP connection as opened and returns the handle its byte counts go through.
    pub fn tcp_opened(&self, labels: &LabelSet) -> TcpConnectionMetrics {
        let key = TcpKey {
            labels: labels.clone(),
            flags: 0,
        };
        let series = self.tcp.get(&key, |k| self.tcp_overflow(k));
        series
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TcpConnectionMetrics {
            tcp: Arc::clone(&self.tcp),
            overflow: self.overflow.clone(),
            key,
            series,
            closed: false,
        }
    }

    fn tcp_overflow(&self, k: &TcpKey) -> TcpKey {
        tcp_overflow(k, &self.overflow)
    }

    /// Counts one retry attempt (`trellis_retries_total`).
    pub fn record_retry(&self) {
        self.retries.inc();
    }

    /// Counts `n` retry attempts at once (a finished request's `attempts - 1`).
    pub fn record_retries(&self, n: u64) {
        if n > 0 {
            self.retries.inc_by(n);
        }
    }

    /// Counts one access-log line dropped because the writer's queue was full
    /// (`trellis_access_log_dropped_total`): logging never blocks a request.
    pub fn record_access_log_dropped(&self) {
        self.access_log_dropped.inc();
    }

    /// Counts one request refused by a pool limit (`trellis_upstream_overflows_total`).
    pub fn record_upstream_overflow(&self) {
        self.upstream_overflows.inc();
    }

    /// Counts one outlier ejection (`trellis_outlier_ejections_total`).
    pub fn record_outlier_ejection(&self) {
        self.outlier_ejections.inc();
    }

    /// Counts one configuration reload, accepted or rejected (`trellis_config_reloads_total`).
    pub fn record_config_reload(&self, accepted: bool) {
        if accepted {
            self.reloads_accepted.inc();
        } else {
            self.reloads_rejected.inc();
        }
    }

    /// Appends every metric in the OpenMetrics text format (see [`CONTENT_TYPE`]), ending with
    /// `# EOF`: the body of `/stats/prometheus`.
    pub fn encode(&self, out: &mut String) {
        // Writing into a `String` cannot fail; an error would mean an encoder bug.
        if let Err(e) = text::encode(out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
    }
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics::new(MetricsConfig::default())
    }
}

fn tcp_overflow(k: &TcpKey, overflow: &LabelSet) -> TcpKey {
    TcpKey {
        labels: k.labels.with_peer(overflow),
        flags: k.flags,
    }
}

/// The metrics of one open TCP connection: byte counts are plain atomic adds on a series
/// resolved at open. Closing (explicitly with flags, or on drop without) counts the close.
#[derive(Debug)]
pub struct TcpConnectionMetrics {
    tcp: TcpSeriesMap,
    overflow: LabelSet,
    key: TcpKey,
    series: Arc<TcpSeries>,
    closed: bool,
}

impl TcpConnectionMetrics {
    /// Bytes sent to the downstream (`istio_tcp_sent_bytes_total`).
    pub fn sent(&self, bytes: u64) {
        self.series
            .sent
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes received from the downstream (`istio_tcp_received_bytes_total`).
    pub fn received(&self, bytes: u64) {
        self.series
            .received
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts the close under `flags` (e.g. `UF` when the upstream connect failed).
    pub fn close(mut self, flags: ResponseFlags) {
        self.count_close(flag_bits(flags));
    }

    fn count_close(&mut self, flags: u16) {
        self.closed = true;
        let series = if flags == self.key.flags {
            Arc::clone(&self.series)
        } else {
            let key = TcpKey {
                labels: self.key.labels.clone(),
                flags,
            };
            self.tcp.get(&key, |k| tcp_overflow(k, &self.overflow))
        };
        series
            .closed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for TcpConnectionMetrics {
    fn drop(&mut self) {
        if !self.closed {
            self.count_close(0);
        }
    }
}

#[cfg(test)]
mod tests;
