//! Telemetry compilation: the seeds, tracing, access logging, scoping and the diagnostics.

use super::*;
use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::Severity;
use crate::load::{LoadOptions, load_str};
use trellis_model::{Labels, SourceRef};

pub(super) fn compile_yaml(text: &str) -> Compiled {
    let loaded = load_str("t.yaml", text, &LoadOptions::default());
    compile(&loaded.resources, &CompileOptions::default())
}

pub(super) fn telemetry(ns: &str, body: &str) -> String {
    format!(
        "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata:\n  name: t\n  namespace: {ns}\nspec:\n{body}"
    )
}

/// The TRL2005 diagnostics are exactly these, in order: (line, part of the message).
pub(super) fn assert_ignored(c: &Compiled, expected: &[(u32, &str)]) {
    let got: Vec<(u32, &str)> = c
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::IgnoredSetting)
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for ((line, message), (want_line, needle)) in got.iter().zip(expected) {
        assert!(
            message.contains(needle) && line == want_line,
            "expected line {want_line} {needle:?}, got {got:#?}"
        );
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn seed_001_01_mesh_wide_tracing() {
    let c = compile_yaml(include_str!("../../../tests/seeds/001-01.yaml"));
    let expected = TelemetryPolicy {
        origin: SourceRef::new("Telemetry", "istio-system", "mesh-default"),
        namespace: "istio-system".into(),
        selector: None,
        tracing: Some(TracingPolicy {
            providers: vec!["opentelemetry".into()],
            sampling_percent: Some(100.0),
            custom_tags: BTreeMap::from([
                (
                    "environment".to_string(),
                    CustomTag::Literal("production".into()),
                ),
                (
                    "cluster".to_string(),
                    CustomTag::Literal("k8s-cluster-1".into()),
                ),
            ]),
            disable_span_reporting: None,
        }),
        metrics_disabled: vec![],
        access_logging: None,
    };
    assert_eq!(c.mesh.telemetry, [expected]);
    // Mesh-wide: it applies to every workload of every namespace.
    let resolved = c.mesh.telemetry_for("shop", &labels(&[("app", "web")]));
    assert_eq!(resolved.tracing.sampling_percent, Some(100.0));
    assert_eq!(resolved.tracing.providers, ["opentelemetry"]);
    assert!(with_ignored(&c).is_empty(), "{:#?}", c.diagnostics);
}

fn with_ignored(c: &Compiled) -> Vec<&crate::diag::Diagnostic> {
    c.diagnostics
        .iter()
        .filter(|d| d.code == Code::IgnoredSetting)
        .collect()
}

#[test]
fn seed_001_07_namespace_sampling_over_mesh() {
    let mesh = include_str!("../../../tests/seeds/001-01.yaml");
    let ns = include_str!("../../../tests/seeds/001-07.yaml");
    let c = compile_yaml(&format!("{mesh}\n---\n{ns}"));
    let policy = &c.mesh.telemetry[1];
    assert_eq!(
        (policy.namespace.as_str(), policy.selector.as_ref()),
        ("default", None)
    );
    assert_eq!(
        policy.tracing,
        Some(TracingPolicy {
            sampling_percent: Some(10.0),
            ..TracingPolicy::default()
        })
    );
    let app = labels(&[("app", "web")]);
    let in_default = c.mesh.telemetry_for("default", &app);
    assert_eq!(
        in_default.tracing.sampling_percent,
        Some(10.0),
        "namespace overrides mesh"
    );
    assert_eq!(
        in_default.tracing.providers,
        ["opentelemetry"],
        "inherited from the mesh"
    );
    assert_eq!(
        c.mesh.telemetry_for("shop", &app).tracing.sampling_percent,
        Some(100.0)
    );
}

#[test]
fn tracing_fields_and_custom_tags() {
    let body = r#"  selector:
    matchLabels:
      app: web
  tracing:
  - providers:
    - name: zipkin
    randomSamplingPercentage: 25.5
    disableSpanReporting: true
    useRequestIdForTraceSampling: true
    enableIstioTags: true
    disableContextPropagation: false
    customTags:
      lit:
        literal:
          value: v
      env:
        environment:
          name: CLUSTER
          defaultValue: unknown
      env-bare:
        environment:
          name: REGION
      hdr:
        header:
          name: x-user
          defaultValue: anon
      fmt:
        formatter:
          value: "%REQ(x-id)%"
"#;
    let c = compile_yaml(&telemetry("shop", body));
    let p = &c.mesh.telemetry[0];
    assert_eq!(p.selector, Some(labels(&[("app", "web")])));
    let t = p.tracing.clone().unwrap_or_default();
    assert_eq!(t.providers, ["zipkin"]);
    assert_eq!(t.sampling_percent, Some(25.5));
    assert_eq!(t.disable_span_reporting, Some(true));
    let env = |n: &str, d: Option<&str>| CustomTag::Environment {
        name: n.into(),
        default: d.map(Into::into),
    };
    assert_eq!(
        t.custom_tags,
        BTreeMap::from([
            ("lit".to_string(), CustomTag::Literal("v".into())),
            ("env".to_string(), env("CLUSTER", Some("unknown"))),
            ("env-bare".to_string(), env("REGION", None)),
            (
                "hdr".to_string(),
                CustomTag::Header {
                    name: "x-user".into(),
                    default: Some("anon".into())
                }
            ),
        ])
    );
    // Default-valued switches are fine; only the formatter tag is reported.
    assert_ignored(&c, &[(35, "`formatter` are not supported")]);
}

#[test]
fn tracing_switches_without_a_place_are_reported() {
    let body = r#"  tracing:
  - match:
      mode: SERVER
    useRequestIdForTraceSampling: false
    enableIstioTags: false
    disableContextPropagation: true
  - randomSamplingPercentage: 50
"#;
    let c = compile_yaml(&telemetry("shop", body));
    let t = c.mesh.telemetry[0].tracing.clone().unwrap_or_default();
    assert_eq!(t.sampling_percent, None, "only the first entry is used");
    assert_ignored(
        &c,
        &[
            (9, "match.mode SERVER is not supported"),
            (10, "useRequestIdForTraceSampling: false"),
            (11, "enableIstioTags: false"),
            (12, "disableContextPropagation: true"),
        ],
    );
}

#[test]
fn access_logging() {
    let body = r#"  accessLogging:
  - providers:
    - name: envoy
    filter:
      expression: response.code >= 400
  - providers:
    - name: otel
    - name: envoy
    filter:
      expression: response.code >= 400
  - disabled: true
"#;
    let c = compile_yaml(&telemetry("shop", body));
    assert_eq!(
        c.mesh.telemetry[0].access_logging,
        Some(AccessLogPolicy {
            providers: vec!["envoy".into(), "otel".into()],
            disabled: None,
            filter: Some("response.code >= 400".into()),
        })
    );
    assert_ignored(&c, &[(17, "only one access-log setting per Telemetry")]);

    let off = compile_yaml(&telemetry(
        "shop",
        "  accessLogging:\n  - disabled: true\n    match:\n      mode: CLIENT\n",
    ));
    assert_eq!(
        off.mesh.telemetry[0].access_logging,
        Some(AccessLogPolicy {
            providers: vec![],
            disabled: Some(true),
            filter: None
        })
    );
    assert_ignored(&off, &[(10, "match.mode CLIENT is not supported")]);
}

#[test]
fn empty_telemetry_and_workload_scope() {
    let text = [
        telemetry(
            "istio-system",
            "  accessLogging:\n  - providers:\n    - name: envoy\n",
        ),
        "---\n".to_string(),
        telemetry(
            "shop",
            "  selector:\n    matchLabels: {app: web}\n  accessLogging:\n  - disabled: true\n",
        ),
        "---\n".to_string(),
        telemetry("other", "  {}\n"),
    ]
    .concat();
    let c = compile_yaml(&text);
    assert_eq!(c.mesh.telemetry.len(), 3);
    assert_eq!(
        c.mesh.telemetry[2],
        TelemetryPolicy {
            origin: SourceRef::new("Telemetry", "other", "t"),
            namespace: "other".into(),
            ..TelemetryPolicy::default()
        }
    );
    let web = c.mesh.telemetry_for("shop", &labels(&[("app", "web")]));
    assert_eq!(
        (
            web.access_logging.providers.as_slice(),
            web.access_logging.disabled
        ),
        (&["envoy".to_string()][..], Some(true))
    );
    let api = c.mesh.telemetry_for("shop", &labels(&[("app", "api")]));
    assert_eq!(api.access_logging.disabled, None);
}

#[test]
fn target_refs_are_skipped_with_a_warning() {
    let body = "  targetRef:\n    kind: Gateway\n    group: gateway.networking.k8s.io\n    name: ingress\n  tracing:\n  - randomSamplingPercentage: 5\n";
    let c = compile_yaml(&telemetry("shop", body));
    assert!(c.mesh.telemetry.is_empty());
    let d = with_ignored(&c);
    assert_eq!(d.len(), 1, "{:#?}", c.diagnostics);
    assert_eq!((d[0].severity, d[0].line), (Severity::Warning, 8));
    assert!(d[0].message.contains("Telemetry is skipped"));
}
