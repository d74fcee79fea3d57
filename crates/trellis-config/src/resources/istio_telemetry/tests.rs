use super::*;
use crate::diag::Diagnostic;
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
}

fn telemetry(spec: &str) -> String {
    format!(
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata:\n  name: t\n  namespace: istio-system\nspec:\n{spec}"
    )
}

fn with(d: &[Diagnostic], severity: Severity) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == severity)
        .map(|d| d.message.clone())
        .collect()
}

fn assert_error(spec: &str, needle: &str) {
    let l = load(&telemetry(spec));
    assert!(
        with(&l.diagnostics, Severity::Error)
            .iter()
            .any(|m| m.contains(needle)),
        "expected {needle:?} in {:#?}",
        l.diagnostics
    );
}

fn assert_clean(spec: &str) {
    let l = load(&telemetry(spec));
    assert!(l.diagnostics.is_empty(), "{spec}\n{:#?}", l.diagnostics);
    assert_eq!(l.resources.len(), 1);
}

fn parse(spec: &str) -> Telemetry {
    let l = load(&telemetry(spec));
    match l.resources.into_iter().next().map(|r| r.spec) {
        Some(Spec::Telemetry(t)) => *t,
        _ => panic!("not loaded: {:#?}", l.diagnostics),
    }
}

/// Examples from Istio's Telemetry reference and tasks.
const EXAMPLES: &[&str] = &[
    "  tracing:\n  - randomSamplingPercentage: 10.00\n",
    r#"  selector:
    matchLabels:
      service.istio.io/canonical-name: frontend
  tracing:
  - customTags:
      my_new_foo_tag:
        literal:
          value: "foo"
      cluster_id:
        environment:
          name: ISTIO_META_CLUSTER_ID
          defaultValue: unknown
      user:
        header:
          name: x-user
"#,
    r#"  tracing:
  - match:
      mode: SERVER
    providers:
    - name: "zipkin-alternate"
    randomSamplingPercentage: 10.00
    disableSpanReporting: false
    useRequestIdForTraceSampling: true
    enableIstioTags: true
"#,
    r#"  metrics:
  - providers:
    - name: prometheus
    reportingInterval: 15s
    overrides:
    - match:
        metric: REQUEST_COUNT
        mode: CLIENT
      tagOverrides:
        request_host:
          value: "request.host"
    - match:
        metric: ALL_METRICS
      tagOverrides:
        request_protocol:
          operation: REMOVE
    - match:
        customMetric: my_metric
      disabled: true
"#,
    r#"  accessLogging:
  - match:
      mode: CLIENT
    providers:
    - name: otel
    filter:
      expression: response.code >= 400 || xds.cluster_name.startsWith("outbound|80")
"#,
    "  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}\n  accessLogging:\n  - disabled: true\n",
];

#[test]
fn reference_examples_are_valid() {
    for spec in EXAMPLES {
        assert_clean(spec);
    }
}

#[test]
fn example_values_are_read() {
    let t = parse(EXAMPLES[1]);
    let tags = &t.tracing[0].custom_tags;
    assert_eq!(
        tags["my_new_foo_tag"]
            .literal
            .as_ref()
            .map(|l| l.value.as_str()),
        Some("foo")
    );
    assert_eq!(
        tags["cluster_id"]
            .environment
            .as_ref()
            .and_then(|e| e.default_value.as_deref()),
        Some("unknown")
    );
    assert_eq!(
        tags["user"].header.as_ref().map(|h| h.name.as_str()),
        Some("x-user")
    );

    let t = parse(EXAMPLES[2]);
    let tr = &t.tracing[0];
    assert_eq!(
        tr.r#match.as_ref().map(|m| m.mode),
        Some(WorkloadMode::Server)
    );
    assert_eq!(tr.random_sampling_percentage, Some(10.0));
    assert_eq!(
        (
            tr.disable_span_reporting,
            tr.use_request_id_for_trace_sampling
        ),
        (Some(false), Some(true))
    );

    let t = parse(EXAMPLES[3]);
    let m = &t.metrics[0];
    assert_eq!(m.reporting_interval.map(|d| d.nanos), Some(15_000_000_000));
    let o = &m.overrides;
    assert_eq!(
        o[0].r#match.as_ref().and_then(|s| s.metric),
        Some(IstioMetric::RequestCount)
    );
    assert_eq!(
        o[0].r#match.as_ref().map(|s| s.mode),
        Some(WorkloadMode::Client)
    );
    assert_eq!(
        o[0].tag_overrides["request_host"].operation,
        TagOperation::Upsert
    );
    assert_eq!(
        o[1].tag_overrides["request_protocol"].operation,
        TagOperation::Remove
    );
    assert_eq!(
        o[2].r#match
            .as_ref()
            .and_then(|s| s.custom_metric.as_deref()),
        Some("my_metric")
    );
    assert_eq!(o[2].disabled, Some(true));

    let t = parse(EXAMPLES[4]);
    assert!(
        t.access_logging[0]
            .filter
            .as_ref()
            .is_some_and(|f| f.expression.starts_with("response.code"))
    );
}

#[test]
fn sampling_percentage_range() {
    assert_error(
        "  tracing:\n  - randomSamplingPercentage: 100.5\n",
        "between 0 and 100",
    );
    assert_error(
        "  tracing:\n  - randomSamplingPercentage: -1\n",
        "between 0 and 100",
    );
    assert_clean("  tracing:\n  - randomSamplingPercentage: 0\n");
    assert_clean("  tracing:\n  - randomSamplingPercentage: 100\n");
}

#[test]
fn custom_tags_have_exactly_one_source() {
    assert_error(
        "  tracing:\n  - customTags:\n      t: {}\n",
        "one of literal, environment, header, formatter is required",
    );
    assert_error(
        "  tracing:\n  - customTags:\n      t: {literal: {value: a}, header: {name: x}}\n",
        "only one of literal, environment, header, formatter",
    );
    assert_error(
        "  tracing:\n  - customTags:\n      t: {literal: {}}\n",
        "`spec.tracing[0].customTags.t.literal.value`",
    );
    assert_error(
        "  tracing:\n  - customTags:\n      t: {environment: {defaultValue: x}}\n",
        "environment.name",
    );
    assert_clean("  tracing:\n  - customTags:\n      t: {formatter: {value: '%REQ(x-id)%'}}\n");
}

#[test]
fn provider_names_are_required() {
    assert_error(
        "  tracing:\n  - providers: [{}]\n",
        "`spec.tracing[0].providers[0].name`",
    );
    assert_error(
        "  metrics:\n  - providers: [{name: ''}]\n",
        "`spec.metrics[0].providers[0].name`",
    );
    assert_error(
        "  accessLogging:\n  - providers: [{}]\n",
        "`spec.accessLogging[0].providers[0].name`",
    );
}

#[test]
fn tracing_warnings() {
    let l = load(&telemetry(
        "  tracing:\n  - providers: [{name: a}, {name: b}]\n  - randomSamplingPercentage: 1\n",
    ));
    let w = with(&l.diagnostics, Severity::Warning);
    assert!(
        w.iter().any(|m| m.contains("only the first `tracing`")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|m| m.contains("only one tracing provider")),
        "{w:#?}"
    );
}

#[test]
fn metric_override_rules() {
    let ov = |o: &str| format!("  metrics:\n  - overrides:\n    - {o}\n");
    assert_error(
        &ov("{match: {metric: REQUEST_COUNT, customMetric: x}}"),
        "only one of metric, customMetric",
    );
    assert_error(
        &ov("{match: {customMetric: ''}}"),
        "customMetric must not be empty",
    );
    assert_error(
        &ov("{tagOverrides: {source_app: {operation: UPSERT}}}"),
        "UPSERT needs a `value`",
    );
    assert_error(
        &ov("{tagOverrides: {source_app: {}}}"),
        "UPSERT needs a `value`",
    );
    assert_error(
        &ov("{tagOverrides: {source_app: {operation: REMOVE, value: x}}}"),
        "REMOVE takes no `value`",
    );
    let l = load(&telemetry(&ov("{match: {metric: REQUESTS}}")));
    assert!(l.resources.is_empty(), "unknown metric is a decode error");
    assert_eq!(
        l.diagnostics.first().map(|d| d.line),
        Some(9),
        "{:#?}",
        l.diagnostics
    );
}

#[test]
fn access_log_filter_shape() {
    assert_error(
        "  accessLogging:\n  - filter: {expression: ''}\n",
        "must not be empty",
    );
    assert_error(
        "  accessLogging:\n  - filter: {expression: 'size(request.headers'}\n",
        "unclosed '('",
    );
    assert_error(
        "  accessLogging:\n  - filter: {expression: 'a == \"b'}\n",
        "unterminated string",
    );
    assert_error(
        "  accessLogging:\n  - filter: {expression: 'a)'}\n",
        "unbalanced ')'",
    );
    assert_clean(
        "  accessLogging:\n  - filter: {expression: 'request.headers[\"x-debug\"] == \"(\"'}\n",
    );
}

#[test]
fn scope_is_exclusive() {
    let spec = "  selector:\n    matchLabels: {app: a}\n  targetRef: {kind: Service, name: a}\n  tracing:\n  - {}\n";
    assert_error(spec, "only one of selector, targetRef, targetRefs");
}
