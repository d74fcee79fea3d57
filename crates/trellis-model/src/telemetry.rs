//! Telemetry policies: tracing, metrics and access logging per workload
//! (Istio `Telemetry`).
//!
//! Policies are scoped like other Istio policies (mesh-wide in the root namespace,
//! namespace-wide, or per selected workload) and combine from the general to the
//! specific; [`resolve_telemetry`] computes what one workload's proxy does.

use std::collections::{BTreeMap, BTreeSet};

use crate::labels::{Labels, is_workload_selector, optional_selector_matches};
use crate::origin::SourceRef;

/// A Telemetry resource.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TelemetryPolicy {
    /// The resource it was compiled from.
    pub origin: SourceRef,
    /// Namespace; in the root namespace and without selector it applies mesh-wide.
    pub namespace: String,
    /// Workloads it applies to; `None` or empty means the whole namespace.
    pub selector: Option<Labels>,
    /// Tracing settings.
    pub tracing: Option<TracingPolicy>,
    /// Metrics switched off, by Istio metric name (`REQUEST_COUNT`,
    /// `REQUEST_DURATION`, `TCP_OPENED_CONNECTIONS`, ...; `ALL_METRICS` for all).
    /// Combined across scopes as a union.
    pub metrics_disabled: Vec<String>,
    /// Access-log settings.
    pub access_logging: Option<AccessLogPolicy>,
}

/// Tracing settings; unset fields inherit from the enclosing scope.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TracingPolicy {
    /// Tracing providers (from mesh config) spans are sent to; empty inherits.
    pub providers: Vec<String>,
    /// Percentage of new traces sampled, 0–100; unset inherits (mesh default 1%).
    /// Requests that arrive with a sampling decision keep it.
    pub sampling_percent: Option<f64>,
    /// Extra span tags, by tag name; merged with inherited tags.
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Propagate trace context but do not report spans; unset inherits.
    pub disable_span_reporting: Option<bool>,
}

/// Where the value of a custom span tag comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomTag {
    /// A fixed value.
    Literal(String),
    /// A proxy environment variable.
    Environment {
        /// Variable name.
        name: String,
        /// Value when the variable is unset.
        #[serde(default)]
        default: Option<String>,
    },
    /// A request header.
    Header {
        /// Header name.
        name: String,
        /// Value when the header is absent.
        #[serde(default)]
        default: Option<String>,
    },
}

/// Access-log settings; unset fields inherit from the enclosing scope.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AccessLogPolicy {
    /// Log providers (from mesh config); empty inherits.
    pub providers: Vec<String>,
    /// Switch logging off (or back on); unset inherits.
    pub disabled: Option<bool>,
    /// CEL expression selecting which requests are logged, kept as text (e.g.
    /// `response.code >= 400`); unset inherits.
    pub filter: Option<String>,
}

/// The telemetry settings in effect for one workload.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ResolvedTelemetry {
    /// Tracing, with fields still unset where no scope sets them (the proxy then applies
    /// mesh defaults).
    pub tracing: TracingPolicy,
    /// Metrics disabled by any scope.
    pub metrics_disabled: BTreeSet<String>,
    /// Access logging, likewise.
    pub access_logging: AccessLogPolicy,
}

impl ResolvedTelemetry {
    /// Whether the Istio metric `name` is reported.
    pub fn metric_enabled(&self, name: &str) -> bool {
        !self.metrics_disabled.contains("ALL_METRICS") && !self.metrics_disabled.contains(name)
    }
}

/// Combines the policies that apply to a workload in `namespace` with `labels`: the
/// mesh-wide policy (selector-less, in `root_namespace`), then the namespace policy
/// (selector-less, in `namespace`), then the workload policy (with a selector, in
/// `namespace`), each overriding what it sets. Among policies of equal scope the first
/// (oldest) wins, as in Istio.
pub fn resolve_telemetry(
    policies: &[TelemetryPolicy],
    namespace: &str,
    labels: &Labels,
    root_namespace: &str,
) -> ResolvedTelemetry {
    let scope_wide = |ns: &str| {
        policies
            .iter()
            .find(|p| p.namespace == ns && !is_workload_selector(p.selector.as_ref()))
    };
    let mesh = scope_wide(root_namespace);
    let ns = if namespace == root_namespace {
        None
    } else {
        scope_wide(namespace)
    };
    let workload = policies.iter().find(|p| {
        p.namespace == namespace
            && is_workload_selector(p.selector.as_ref())
            && optional_selector_matches(p.selector.as_ref(), labels)
    });

    let mut out = ResolvedTelemetry::default();
    for p in [mesh, ns, workload].into_iter().flatten() {
        if let Some(t) = &p.tracing {
            if !t.providers.is_empty() {
                out.tracing.providers.clone_from(&t.providers);
            }
            out.tracing.sampling_percent = t.sampling_percent.or(out.tracing.sampling_percent);
            out.tracing.custom_tags.extend(t.custom_tags.clone());
            out.tracing.disable_span_reporting = t
                .disable_span_reporting
                .or(out.tracing.disable_span_reporting);
        }
        out.metrics_disabled
            .extend(p.metrics_disabled.iter().cloned());
        if let Some(a) = &p.access_logging {
            if !a.providers.is_empty() {
                out.access_logging.providers.clone_from(&a.providers);
            }
            out.access_logging.disabled = a.disabled.or(out.access_logging.disabled);
            if a.filter.is_some() {
                out.access_logging.filter.clone_from(&a.filter);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "istio-system";

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tracing(sampling: Option<f64>, tag: Option<(&str, &str)>) -> Option<TracingPolicy> {
        Some(TracingPolicy {
            sampling_percent: sampling,
            custom_tags: tag
                .map(|(k, v)| (k.to_string(), CustomTag::Literal(v.to_string())))
                .into_iter()
                .collect(),
            ..TracingPolicy::default()
        })
    }

    #[test]
    fn specific_overrides_general() {
        let policies = vec![
            TelemetryPolicy {
                namespace: ROOT.into(),
                tracing: Some(TracingPolicy {
                    providers: vec!["otel".into()],
                    ..tracing(Some(1.0), Some(("cluster", "east"))).unwrap_or_default()
                }),
                metrics_disabled: vec!["REQUEST_SIZE".into()],
                access_logging: Some(AccessLogPolicy {
                    providers: vec!["envoy".into()],
                    ..AccessLogPolicy::default()
                }),
                ..TelemetryPolicy::default()
            },
            TelemetryPolicy {
                namespace: "default".into(),
                tracing: tracing(Some(50.0), Some(("team", "books"))),
                ..TelemetryPolicy::default()
            },
            TelemetryPolicy {
                namespace: "default".into(),
                selector: Some(labels(&[("app", "reviews")])),
                tracing: tracing(None, Some(("cluster", "west"))),
                metrics_disabled: vec!["RESPONSE_SIZE".into()],
                access_logging: Some(AccessLogPolicy {
                    disabled: Some(true),
                    ..AccessLogPolicy::default()
                }),
                ..TelemetryPolicy::default()
            },
        ];
        let r = resolve_telemetry(&policies, "default", &labels(&[("app", "reviews")]), ROOT);
        assert_eq!(r.tracing.providers, ["otel"]);
        assert_eq!(r.tracing.sampling_percent, Some(50.0));
        assert_eq!(
            r.tracing.custom_tags.get("cluster"),
            Some(&CustomTag::Literal("west".into()))
        );
        assert_eq!(
            r.tracing.custom_tags.get("team"),
            Some(&CustomTag::Literal("books".into()))
        );
        assert!(!r.metric_enabled("REQUEST_SIZE") && !r.metric_enabled("RESPONSE_SIZE"));
        assert!(r.metric_enabled("REQUEST_COUNT"));
        assert_eq!(r.access_logging.providers, ["envoy"]);
        assert_eq!(r.access_logging.disabled, Some(true));

        let other = resolve_telemetry(&policies, "prod", &labels(&[("app", "reviews")]), ROOT);
        assert_eq!(other.tracing.sampling_percent, Some(1.0));
        assert_eq!(other.access_logging.disabled, None);
    }
}
