//! Control-plane metrics on the monitoring port (15014, `/metrics`), named as istiod names
//! them so existing dashboards and alerts (`pilot_xds`, `pilot_xds_pushes`,
//! `pilot_total_xds_rejects`, `pilot_proxy_convergence_time`) work unchanged.

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

type TypeLabel = [(&'static str, &'static str); 1];

/// The control plane's metrics.
#[derive(Debug)]
pub struct ControlMetrics {
    registry: Registry,
    connected: Gauge,
    pushes: Family<TypeLabel, Counter>,
    rejects: Family<TypeLabel, Counter>,
    push_time: Family<TypeLabel, Histogram>,
    convergence: Histogram,
    reloads: Family<[(&'static str, &'static str); 1], Counter>,
    version: Gauge,
}

/// Latency buckets from 1 ms to about 30 s.
fn latency_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

impl Default for ControlMetrics {
    fn default() -> Self {
        ControlMetrics::new()
    }
}

impl ControlMetrics {
    /// A registry with every metric at zero.
    pub fn new() -> ControlMetrics {
        let mut registry = Registry::default();
        let connected = Gauge::default();
        let pushes = Family::<TypeLabel, Counter>::default();
        let rejects = Family::<TypeLabel, Counter>::default();
        let push_time = Family::<TypeLabel, Histogram>::new_with_constructor(
            latency_buckets as fn() -> Histogram,
        );
        let convergence = latency_buckets();
        let reloads = Family::default();
        let version = Gauge::default();
        registry.register(
            "pilot_xds",
            "Proxies connected to this control plane",
            connected.clone(),
        );
        registry.register(
            "pilot_xds_pushes",
            "xDS responses sent, by resource type",
            pushes.clone(),
        );
        registry.register(
            "pilot_total_xds_rejects",
            "xDS responses refused (NACKed) by proxies, by resource type",
            rejects.clone(),
        );
        registry.register(
            "pilot_xds_push_time",
            "Seconds from accepting a configuration to sending it, by resource type",
            push_time.clone(),
        );
        registry.register(
            "pilot_proxy_convergence_time",
            "Seconds from accepting a configuration to a proxy's ACK of it",
            convergence.clone(),
        );
        registry.register(
            "trellis_config_reloads",
            "Configuration changes accepted and rejected by the control plane",
            reloads.clone(),
        );
        registry.register(
            "trellis_config_version",
            "Version of the configuration being served",
            version.clone(),
        );
        ControlMetrics {
            registry,
            connected,
            pushes,
            rejects,
            push_time,
            convergence,
            reloads,
            version,
        }
    }

    /// A stream opened (`+1`) or closed (`-1`).
    pub fn connected(&self, delta: i64) {
        self.connected.inc_by(delta);
    }

    /// A response of `type_short` was sent `secs` after its configuration was accepted.
    pub fn pushed(&self, type_short: &'static str, secs: f64) {
        let label = [("type", type_short)];
        self.pushes.get_or_create(&label).inc();
        self.push_time.get_or_create(&label).observe(secs);
    }

    /// A proxy refused a response of `type_short`.
    pub fn rejected(&self, type_short: &'static str) {
        self.rejects.get_or_create(&[("type", type_short)]).inc();
    }

    /// A proxy ACKed a configuration `secs` after it was accepted.
    pub fn converged(&self, secs: f64) {
        self.convergence.observe(secs);
    }

    /// A configuration change was accepted (`true`, now serving `version`) or refused.
    pub fn reload(&self, accepted: bool, version: u64) {
        let result = if accepted { "accepted" } else { "rejected" };
        self.reloads.get_or_create(&[("result", result)]).inc();
        self.version.set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}
