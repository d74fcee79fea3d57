//! `telemetry.istio.io` Telemetry: which tracing, metrics and access-log providers a scope uses,
//! with sampling, custom tags, metric and tag overrides, and log filters.

#[cfg(test)]
mod tests;

use crate::diag::{Code, Severity};
use crate::resources::common::{Duration, WorkloadSelector};
use crate::resources::istio_security::{PolicyTargetReference, validate_scope};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Istio Telemetry spec. No selector or targetRef: the namespace (mesh, in the root namespace).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Telemetry {
    pub selector: Option<WorkloadSelector>,
    pub target_ref: Option<PolicyTargetReference>,
    pub target_refs: Vec<PolicyTargetReference>,
    pub tracing: Vec<Tracing>,
    pub metrics: Vec<Metrics>,
    pub access_logging: Vec<AccessLogging>,
}

/// Tracing settings for the traffic `match` selects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Tracing {
    pub r#match: Option<TracingSelector>,
    /// Empty: the mesh's default tracing provider.
    pub providers: Vec<ProviderRef>,
    /// 0 to 100; unset inherits (the mesh default is 1%).
    pub random_sampling_percentage: Option<f64>,
    pub disable_span_reporting: Option<bool>,
    pub custom_tags: BTreeMap<String, CustomTag>,
    pub use_request_id_for_trace_sampling: Option<bool>,
    pub enable_istio_tags: Option<bool>,
    pub disable_context_propagation: Option<bool>,
}

/// Which side of the traffic a tracing setting applies to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TracingSelector {
    pub mode: WorkloadMode,
}

/// Client side (outbound), server side (inbound) or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    #[default]
    ClientAndServer,
    Client,
    Server,
}

/// A provider declared in mesh config `extensionProviders` (or a built-in such as `prometheus`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProviderRef {
    pub name: String,
}

/// A span tag; exactly one source.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomTag {
    pub literal: Option<CustomTagLiteral>,
    pub environment: Option<CustomTagEnvironment>,
    pub header: Option<CustomTagHeader>,
    pub formatter: Option<CustomTagFormatter>,
}

/// A fixed tag value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomTagLiteral {
    pub value: String,
}

/// A tag taken from the proxy's environment variable.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomTagEnvironment {
    pub name: String,
    pub default_value: Option<String>,
}

/// A tag taken from a request header.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomTagHeader {
    pub name: String,
    pub default_value: Option<String>,
}

/// A tag built from an access-log format string (`%REQ(x-id)%`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomTagFormatter {
    pub value: String,
}

/// Metrics settings for a set of providers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metrics {
    pub providers: Vec<ProviderRef>,
    pub overrides: Vec<MetricsOverrides>,
    pub reporting_interval: Option<Duration>,
}

/// Disable a metric or change its tags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricsOverrides {
    pub r#match: Option<MetricSelector>,
    pub disabled: Option<bool>,
    pub tag_overrides: BTreeMap<String, TagOverride>,
}

/// Which metric an override applies to: a standard one (`metric`, default ALL_METRICS) or a
/// custom one by name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricSelector {
    pub metric: Option<IstioMetric>,
    pub custom_metric: Option<String>,
    pub mode: WorkloadMode,
}

/// Istio's standard metrics (`REQUEST_COUNT` is `istio_requests_total`, and so on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IstioMetric {
    #[default]
    AllMetrics,
    RequestCount,
    RequestDuration,
    RequestSize,
    ResponseSize,
    TcpOpenedConnections,
    TcpClosedConnections,
    TcpSentBytes,
    TcpReceivedBytes,
    GrpcRequestMessages,
    GrpcResponseMessages,
}

/// Set (UPSERT, with a CEL `value`) or drop (REMOVE) one metric tag.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagOverride {
    pub operation: TagOperation,
    pub value: Option<String>,
}

/// What a tag override does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagOperation {
    #[default]
    Upsert,
    Remove,
}

/// Access-log settings for a set of providers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccessLogging {
    pub r#match: Option<LogSelector>,
    pub providers: Vec<ProviderRef>,
    pub disabled: Option<bool>,
    pub filter: Option<AccessLogFilter>,
}

/// Which side of the traffic access logging applies to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogSelector {
    pub mode: WorkloadMode,
}

/// Log only requests for which the CEL `expression` is true.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccessLogFilter {
    pub expression: String,
}

fn warn(cx: &mut Cx, message: impl Into<String>) {
    cx.report(Severity::Warning, Code::SchemaValidation, message);
}

fn validate_providers(cx: &mut Cx, providers: &[ProviderRef]) {
    cx.field("providers", |cx| {
        for (i, p) in providers.iter().enumerate() {
            cx.index(i, |cx| cx.require("name", !p.name.is_empty()));
        }
    });
}

impl Validate for Telemetry {
    fn validate(&self, cx: &mut Cx) {
        validate_scope(cx, &self.selector, &self.target_ref, &self.target_refs);
        if self.tracing.len() > 1 {
            cx.field("tracing", |cx| {
                warn(
                    cx,
                    "only the first `tracing` entry is used; merge them into one",
                )
            });
        }
        cx.list("tracing", &self.tracing);
        cx.list("metrics", &self.metrics);
        cx.list("accessLogging", &self.access_logging);
    }
}

impl Validate for Tracing {
    fn validate(&self, cx: &mut Cx) {
        validate_providers(cx, &self.providers);
        if self.providers.len() > 1 {
            cx.field("providers", |cx| {
                warn(
                    cx,
                    "only one tracing provider is supported; the first is used",
                )
            });
        }
        if let Some(p) = self.random_sampling_percentage
            && !(0.0..=100.0).contains(&p)
        {
            cx.error_at(
                "randomSamplingPercentage",
                format!("randomSamplingPercentage must be between 0 and 100, got {p}"),
            );
        }
        cx.field("customTags", |cx| {
            for (name, tag) in &self.custom_tags {
                if name.is_empty() {
                    cx.error("custom tag names must not be empty");
                }
                cx.field(name, |cx| tag.validate(cx));
            }
        });
    }
}

impl Validate for CustomTag {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["literal", "environment", "header", "formatter"],
            &[
                self.literal.is_some(),
                self.environment.is_some(),
                self.header.is_some(),
                self.formatter.is_some(),
            ],
            true,
        );
        if let Some(l) = &self.literal {
            cx.field("literal", |cx| cx.require("value", !l.value.is_empty()));
        }
        if let Some(e) = &self.environment {
            cx.field("environment", |cx| cx.require("name", !e.name.is_empty()));
        }
        if let Some(h) = &self.header {
            cx.field("header", |cx| cx.require("name", !h.name.is_empty()));
        }
        if let Some(f) = &self.formatter {
            cx.field("formatter", |cx| cx.require("value", !f.value.is_empty()));
        }
    }
}

impl Validate for Metrics {
    fn validate(&self, cx: &mut Cx) {
        validate_providers(cx, &self.providers);
        cx.list("overrides", &self.overrides);
    }
}

impl Validate for MetricsOverrides {
    fn validate(&self, cx: &mut Cx) {
        if let Some(m) = &self.r#match {
            cx.field("match", |cx| {
                cx.one_of(
                    &["metric", "customMetric"],
                    &[m.metric.is_some(), m.custom_metric.is_some()],
                    false,
                );
                if m.custom_metric.as_deref() == Some("") {
                    cx.error_at("customMetric", "customMetric must not be empty");
                }
            });
        }
        cx.field("tagOverrides", |cx| {
            for (tag, o) in &self.tag_overrides {
                if tag.is_empty() {
                    warn(cx, "tag names in tagOverrides should not be empty");
                }
                let value = o.value.as_deref().unwrap_or_default();
                match o.operation {
                    TagOperation::Upsert if value.is_empty() => {
                        cx.error_at(tag, format!("tag override {tag:?}: operation UPSERT needs a `value` (a CEL expression)"));
                    }
                    TagOperation::Remove if o.value.is_some() => {
                        cx.error_at(tag, format!("tag override {tag:?}: operation REMOVE takes no `value`"));
                    }
                    _ => {}
                }
            }
        });
    }
}

impl Validate for AccessLogging {
    fn validate(&self, cx: &mut Cx) {
        validate_providers(cx, &self.providers);
        if let Some(f) = &self.filter
            && let Err(e) = check_cel_shape(&f.expression)
        {
            cx.error_at("filter.expression", e);
        }
    }
}

/// Istio parses the filter as CEL. Trellis does not embed a CEL parser; it catches what makes
/// any expression unparsable: emptiness, unbalanced brackets and unterminated strings.
fn check_cel_shape(expr: &str) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("filter expression must not be empty".into());
    }
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Err(format!(
                        "filter expression {expr:?} is not valid CEL: unbalanced {c:?}"
                    ));
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err(format!(
            "filter expression {expr:?} is not valid CEL: unterminated string"
        ));
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "filter expression {expr:?} is not valid CEL: unclosed {open:?}"
        ));
    }
    Ok(())
}
