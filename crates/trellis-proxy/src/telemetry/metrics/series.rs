//! The per-label-set series and how they are exposed. The four HTTP families share one map (one
//! lookup per request records all four), and the four TCP families another; a "view" registered
//! per family reads the shared map at scrape time through prometheus-client's encoder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::family::{AtomicHistogram, SeriesMap};
use super::labels::{RequestKey, TcpKey};

/// Istio's duration buckets (milliseconds), stored in microseconds so sub-millisecond requests
/// land in the right bucket and the sum stays an exact integer.
pub(crate) const DURATION_BOUNDS_US: [u64; 19] = [
    500,
    1_000,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    600_000_000,
    1_800_000_000,
    3_600_000_000,
];

/// Microseconds per exposed unit (milliseconds).
pub(crate) const DURATION_SCALE: f64 = 1_000.0;

/// Istio's byte-size buckets.
pub(crate) const BYTES_BOUNDS: [u64; 8] =
    [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The HTTP series, shared by every HTTP family (Istio's and Linkerd's views).
pub(crate) type HttpSeriesMap = Arc<SeriesMap<RequestKey, RequestSeries>>;
/// The TCP series, shared likewise.
pub(crate) type TcpSeriesMap = Arc<SeriesMap<TcpKey, TcpSeries>>;

/// Everything recorded for one HTTP label set.
#[derive(Debug)]
pub(crate) struct RequestSeries {
    pub requests: AtomicU64,
    pub duration: AtomicHistogram,
    pub request_bytes: AtomicHistogram,
    pub response_bytes: AtomicHistogram,
    /// Linkerd's `response_latency_ms` (other buckets than Istio's); allocated on the first
    /// observation, which happens only when Linkerd's names are on.
    pub linkerd_latency: OnceLock<AtomicHistogram>,
}

impl Default for RequestSeries {
    fn default() -> Self {
        RequestSeries {
            requests: AtomicU64::new(0),
            duration: AtomicHistogram::new(DURATION_BOUNDS_US.len()),
            request_bytes: AtomicHistogram::new(BYTES_BOUNDS.len()),
            response_bytes: AtomicHistogram::new(BYTES_BOUNDS.len()),
            linkerd_latency: OnceLock::new(),
        }
    }
}

/// Everything recorded for one TCP label set.
#[derive(Debug, Default)]
pub(crate) struct TcpSeries {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub opened: AtomicU64,
    pub closed: AtomicU64,
}

/// Which HTTP family a view exposes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HttpMetric {
    Requests,
    Duration,
    RequestBytes,
    ResponseBytes,
}

/// One HTTP family, read from the shared map at scrape time.
#[derive(Debug)]
pub(crate) struct HttpView {
    pub map: Arc<SeriesMap<RequestKey, RequestSeries>>,
    pub metric: HttpMetric,
}

impl EncodeMetric for HttpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (key, series) in self.map.snapshot() {
            let mut e = encoder.encode_family(&key)?;
            let (histogram, bounds, scale) = match self.metric {
                HttpMetric::Requests => {
                    let n = series.requests.load(Ordering::Relaxed);
                    e.encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                    continue;
                }
                HttpMetric::Duration => (&series.duration, &DURATION_BOUNDS_US[..], DURATION_SCALE),
                HttpMetric::RequestBytes => (&series.request_bytes, &BYTES_BOUNDS[..], 1.0),
                HttpMetric::ResponseBytes => (&series.response_bytes, &BYTES_BOUNDS[..], 1.0),
            };
            let (sum, count, buckets) = histogram.export(bounds, scale);
            e.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        match self.metric {
            HttpMetric::Requests => MetricType::Counter,
            _ => MetricType::Histogram,
        }
    }
}

/// Which TCP family a view exposes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TcpMetric {
    Sent,
    Received,
    Opened,
    Closed,
}

impl TcpMetric {
    /// This family's value in `series`.
    pub(crate) fn of(self, series: &TcpSeries) -> u64 {
        match self {
            TcpMetric::Sent => &series.sent,
            TcpMetric::Received => &series.received,
            TcpMetric::Opened => &series.opened,
            TcpMetric::Closed => &series.closed,
        }
        .load(Ordering::Relaxed)
    }
}

/// One TCP family, read from the shared map at scrape time.
#[derive(Debug)]
pub(crate) struct TcpView {
    pub map: Arc<SeriesMap<TcpKey, TcpSeries>>,
    pub metric: TcpMetric,
}

impl EncodeMetric for TcpView {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (key, series) in self.map.snapshot() {
            let value = self.metric.of(&series);
            encoder
                .encode_family(&key)?
                .encode_counter::<NoLabelSet, u64, f64>(&value, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// Istio's standard families.
pub(crate) fn register_istio(registry: &mut Registry, http: &HttpSeriesMap, tcp: &TcpSeriesMap) {
    for (name, help, metric) in [
        ("istio_requests", "Requests handled", HttpMetric::Requests),
        (
            "istio_request_duration_milliseconds",
            "Request duration",
            HttpMetric::Duration,
        ),
        (
            "istio_request_bytes",
            "Request sizes",
            HttpMetric::RequestBytes,
        ),
        (
            "istio_response_bytes",
            "Response sizes",
            HttpMetric::ResponseBytes,
        ),
    ] {
        let map = Arc::clone(http);
        registry.register(name, help, HttpView { map, metric });
    }
    for (name, help, metric) in [
        (
            "istio_tcp_sent_bytes",
            "Bytes sent to the downstream",
            TcpMetric::Sent,
        ),
        (
            "istio_tcp_received_bytes",
            "Bytes received from the downstream",
            TcpMetric::Received,
        ),
        (
            "istio_tcp_connections_opened",
            "TCP connections opened",
            TcpMetric::Opened,
        ),
        (
            "istio_tcp_connections_closed",
            "TCP connections closed",
            TcpMetric::Closed,
        ),
    ] {
        let map = Arc::clone(tcp);
        registry.register(name, help, TcpView { map, metric });
    }
}
