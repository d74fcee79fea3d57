//! Telemetry `metrics` -> the model's list of metrics switched off.
//!
//! Trellis exports metrics to Prometheus only, so entries are read for the `prometheus` provider
//! (or the default provider, which is Prometheus). The model keeps just the names of disabled
//! standard metrics, combined across scopes; everything else an override can say is reported.

use super::{ignored, provider_names};
use crate::compile::Ctx;
use crate::resources::Resource;
use crate::resources::istio_telemetry::{IstioMetric, Metrics, MetricsOverrides, WorkloadMode};

/// The provider Trellis' metrics are, under its Istio name.
const PROMETHEUS: &str = "prometheus";

/// The names of the standard metrics the entries switch off, in order of first mention. Entries
/// that name only other providers do not concern Trellis' metrics: their overrides are not applied.
pub(super) fn disabled(cx: &mut Ctx<'_>, r: &Resource, metrics: &[Metrics]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        if m.reporting_interval.is_some() {
            ignored(
                cx,
                r,
                &format!("{path}.reportingInterval"),
                "reportingInterval is not supported: Prometheus scrapes the proxy's current values",
            );
        }
        let others: Vec<String> = provider_names(&m.providers)
            .into_iter()
            .filter(|n| n != PROMETHEUS)
            .collect();
        if !others.is_empty() {
            ignored(
                cx,
                r,
                &format!("{path}.providers"),
                format!(
                    "metrics providers {others:?} are not supported: metrics are exported to Prometheus only"
                ),
            );
        }
        if !m.providers.is_empty() && others.len() == m.providers.len() {
            continue;
        }
        for (j, o) in m.overrides.iter().enumerate() {
            apply_override(cx, r, &format!("{path}.overrides[{j}]"), o, &mut out);
        }
    }
    out
}

/// One override. Only "switch this standard metric off on both sides" has a place in the model;
/// a one-sided switch keeps the metric (more data rather than silently less), and `disabled:
/// false` cannot undo a wider scope's switch because the model unites them.
fn apply_override(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    o: &MetricsOverrides,
    out: &mut Vec<String>,
) {
    if !o.tag_overrides.is_empty() {
        ignored(
            cx,
            r,
            &format!("{path}.tagOverrides"),
            "tagOverrides are not supported: metrics carry Istio's standard labels",
        );
    }
    let Some(disabled) = o.disabled else { return };
    let selector = o.r#match.clone().unwrap_or_default();
    if selector.custom_metric.is_some() {
        ignored(
            cx,
            r,
            &format!("{path}.match.customMetric"),
            "overrides of custom metrics are not supported",
        );
        return;
    }
    if selector.mode != WorkloadMode::ClientAndServer {
        ignored(
            cx,
            r,
            &format!("{path}.match.mode"),
            "switching a metric off for client or server side only is not supported; the metric stays enabled",
        );
        return;
    }
    if !disabled {
        ignored(
            cx,
            r,
            &format!("{path}.disabled"),
            "`disabled: false` does not re-enable a metric a wider-scope Telemetry switches off: switches combine across scopes",
        );
        return;
    }
    let name = metric_name(selector.metric.unwrap_or_default());
    if !out.iter().any(|n| n == name) {
        out.push(name.to_owned());
    }
}

/// Istio's name of a standard metric, which the model uses (`ALL_METRICS` for all).
fn metric_name(m: IstioMetric) -> &'static str {
    match m {
        IstioMetric::AllMetrics => "ALL_METRICS",
        IstioMetric::RequestCount => "REQUEST_COUNT",
        IstioMetric::RequestDuration => "REQUEST_DURATION",
        IstioMetric::RequestSize => "REQUEST_SIZE",
        IstioMetric::ResponseSize => "RESPONSE_SIZE",
        IstioMetric::TcpOpenedConnections => "TCP_OPENED_CONNECTIONS",
        IstioMetric::TcpClosedConnections => "TCP_CLOSED_CONNECTIONS",
        IstioMetric::TcpSentBytes => "TCP_SENT_BYTES",
        IstioMetric::TcpReceivedBytes => "TCP_RECEIVED_BYTES",
        IstioMetric::GrpcRequestMessages => "GRPC_REQUEST_MESSAGES",
        IstioMetric::GrpcResponseMessages => "GRPC_RESPONSE_MESSAGES",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::telemetry::tests::{assert_ignored, compile_yaml, telemetry};

    #[test]
    fn overrides_switch_metrics_off() {
        let body = r#"  metrics:
  - providers:
    - name: prometheus
    overrides:
    - match:
        metric: REQUEST_COUNT
      disabled: true
    - match:
        metric: TCP_SENT_BYTES
        mode: CLIENT_AND_SERVER
      disabled: true
    - match:
        metric: REQUEST_COUNT
      disabled: true
  - overrides:
    - disabled: true
"#;
        let c = compile_yaml(&telemetry("shop", body));
        let p = &c.mesh.telemetry[0];
        assert_eq!(
            p.metrics_disabled,
            ["REQUEST_COUNT", "TCP_SENT_BYTES", "ALL_METRICS"]
        );
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
        let resolved = c.mesh.telemetry_for("shop", &Default::default());
        assert!(!resolved.metric_enabled("REQUEST_DURATION"), "ALL_METRICS");
    }

    #[test]
    fn what_has_no_place_is_reported() {
        let body = r#"  metrics:
  - providers:
    - name: stackdriver
    overrides:
    - disabled: true
  - providers:
    - name: prometheus
    - name: otel
    reportingInterval: 30s
    overrides:
    - match:
        metric: REQUEST_SIZE
        mode: CLIENT
      disabled: true
    - match:
        customMetric: my_metric
      disabled: true
    - match:
        metric: RESPONSE_SIZE
      disabled: false
    - match:
        metric: REQUEST_COUNT
      tagOverrides:
        request_host:
          value: request.host
"#;
        let c = compile_yaml(&telemetry("shop", body));
        assert!(
            c.mesh.telemetry[0].metrics_disabled.is_empty(),
            "{:?}",
            c.mesh.telemetry[0]
        );
        assert_ignored(
            &c,
            &[
                (9, "metrics providers [\"stackdriver\"] are not supported"),
                (15, "reportingInterval is not supported"),
                (13, "metrics providers [\"otel\"] are not supported"),
                (19, "switching a metric off for client or server side only"),
                (22, "overrides of custom metrics"),
                (26, "`disabled: false` does not re-enable"),
                (30, "tagOverrides are not supported"),
            ],
        );
    }

    #[test]
    fn names() {
        assert_eq!(metric_name(IstioMetric::default()), "ALL_METRICS");
        assert_eq!(
            metric_name(IstioMetric::GrpcResponseMessages),
            "GRPC_RESPONSE_MESSAGES"
        );
        assert_eq!(
            metric_name(IstioMetric::TcpOpenedConnections),
            "TCP_OPENED_CONNECTIONS"
        );
    }
}
