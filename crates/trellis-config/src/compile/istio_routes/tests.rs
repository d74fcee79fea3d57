//! Tests of the VirtualService pass: the seed examples, mesh routes, host precedence and
//! conflicts. Gateways are in `tests_gateway.rs`, HTTP field mappings in `tests_rules.rs`,
//! retries, budgets and L4 rules in `tests_policy.rs`, delegation in `tests_delegate.rs`.

use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use std::time::Duration;
use trellis_model::{
    AbortKind, Destination, Fault, FaultAbort, FaultDelay, HeaderMatch, HttpMatch, RetryOn,
    RetryPolicy, RouteAction, Service, SourceRef, StringMatch, WeightedDestination,
};

/// A Service named `name` in `ns` with one HTTP port.
pub(super) fn service(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 8080}}]\n---\n"
    )
}

/// Load (asserting the input is valid) and compile.
pub(super) fn run(text: &str) -> Compiled {
    let loaded = load_str("t.yaml", text, &LoadOptions::default());
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "test input is invalid: {errors:#?}");
    compile(&loaded.resources, &CompileOptions::default())
}

pub(super) fn svc<'a>(c: &'a Compiled, host: &str) -> &'a Service {
    c.mesh
        .service(host)
        .unwrap_or_else(|| panic!("no service {host}: {:#?}", c.mesh.services))
}

pub(super) fn with_code(c: &[Diagnostic], code: Code) -> Vec<&Diagnostic> {
    c.iter().filter(|d| d.code == code).collect()
}

/// 1-based line of the first line of `text` containing `needle`.
pub(super) fn line_of(text: &str, needle: &str) -> u32 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in input"))
}

pub(super) fn forward(action: &RouteAction) -> &[WeightedDestination] {
    match action {
        RouteAction::Forward(d) => d,
        other => panic!("expected a forward action, got {other:?}"),
    }
}

pub(super) const HELLO: &str = "hello-service.default.svc.cluster.local";

fn dest(subset: Option<&str>, weight: u32) -> WeightedDestination {
    WeightedDestination::new(
        Destination {
            host: HELLO.into(),
            subset: subset.map(Into::into),
            port: None,
        },
        weight,
    )
}

/// Seeds 000-03 + 000-04: header-based canary and a 90/10 split between subsets.
#[test]
fn seed_000_03_04_canary() {
    let c = run(&(service("hello-service", "default")
        + "apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: hello-service
spec:
  host: hello-service
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: hello-service
spec:
  hosts:
  - hello-service
  http:
  - match:
    - headers:
        version:
          exact: canary
    route:
    - destination:
        host: hello-service
        subset: v2
      weight: 100
  - route:
    - destination:
        host: hello-service
        subset: v1
      weight: 90
    - destination:
        host: hello-service
        subset: v2
      weight: 10
"));
    let s = svc(&c, HELLO);
    assert_eq!(
        s.subsets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["v1", "v2"]
    );
    assert_eq!(s.http_routes.len(), 2);
    let canary = &s.http_routes[0];
    assert_eq!(
        canary.matches,
        [HttpMatch {
            headers: vec![HeaderMatch {
                name: "version".into(),
                value: Some(StringMatch::Exact("canary".into())),
                invert: false
            }],
            ..HttpMatch::default()
        }]
    );
    assert_eq!(forward(&canary.action), [dest(Some("v2"), 100)]);
    assert_eq!(
        canary.retry,
        Some(RetryPolicy::default()),
        "Istio retries twice by default"
    );
    assert_eq!(canary.timeout, None);
    assert_eq!(
        canary.origin,
        SourceRef::new("VirtualService", "default", "hello-service")
    );
    let split = &s.http_routes[1];
    assert!(split.matches.is_empty());
    assert_eq!(
        forward(&split.action),
        [dest(Some("v1"), 90), dest(Some("v2"), 10)]
    );
    assert!(s.origins.iter().any(|o| o.kind == "VirtualService"));
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

/// Seed 000-06: a request timeout and retries.
#[test]
fn seed_000_06_timeout_and_retries() {
    let c = run(&(service("hello-service", "default")
        + "apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: hello-service-timeout
spec:
  hosts:
  - hello-service
  http:
  - route:
    - destination:
        host: hello-service
    timeout: 3s
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: 5xx,reset,connect-failure,refused-stream
"));
    let r = &svc(&c, HELLO).http_routes[0];
    assert_eq!(
        forward(&r.action),
        [dest(None, 100)],
        "a lone destination gets everything"
    );
    assert_eq!(r.timeout, Some(Duration::from_secs(3)));
    let retry = r.retry.clone().expect("retries");
    assert_eq!(retry.attempts, 3);
    assert_eq!(retry.per_try_timeout, Some(Duration::from_secs(1)));
    assert_eq!(
        retry.retry_on,
        RetryOn::parse("5xx,reset,connect-failure,refused-stream").expect("parses")
    );
    assert_eq!(retry.budget, None);
}

/// Seeds 000-08 and 000-09: delay and abort fault injection.
#[test]
fn seed_000_08_09_faults() {
    let vs = |name: &str, fault: &str| {
        format!(
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: {name}\nspec:\n  hosts:\n  - hello-service\n  http:\n  - fault:\n{fault}    route:\n    - destination:\n        host: hello-service\n"
        )
    };
    let delay =
        "      delay:\n        percentage:\n          value: 50.0\n        fixedDelay: 5s\n";
    let c = run(&(service("hello-service", "default") + &vs("hello-service-fault-delay", delay)));
    assert_eq!(
        svc(&c, HELLO).http_routes[0].fault,
        Some(Fault {
            delay: Some(FaultDelay {
                fixed: Duration::from_secs(5),
                percent: 50.0
            }),
            abort: None
        })
    );
    let abort =
        "      abort:\n        percentage:\n          value: 30.0\n        httpStatus: 503\n";
    let c = run(&(service("hello-service", "default") + &vs("hello-service-fault-abort", abort)));
    assert_eq!(
        svc(&c, HELLO).http_routes[0].fault,
        Some(Fault {
            delay: None,
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(503),
                percent: 30.0
            })
        })
    );
}

/// Two VirtualServices for one host: the first in input order wins, the second gets IST0109.
#[test]
fn conflicting_virtual_services() {
    let vs = |name: &str, subset: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [hello-service]\n  http:\n  - route: [{{destination: {{host: hello-service, subset: {subset}}}}}]\n---\n"
        )
    };
    let text = service("hello-service", "default") + &vs("first", "v1") + &vs("second", "v2");
    let c = run(&text);
    let s = svc(&c, HELLO);
    assert_eq!(
        forward(&s.http_routes[0].action)[0]
            .destination
            .subset
            .as_deref(),
        Some("v1")
    );
    let conflicts = with_code(&c.diagnostics, Code::ConflictingHosts);
    assert_eq!(conflicts.len(), 1, "{conflicts:#?}");
    assert_eq!(
        (conflicts[0].name.as_str(), conflicts[0].severity),
        ("second", Severity::Error)
    );
    assert!(
        conflicts[0]
            .message
            .contains("VirtualService default/first"),
        "{}",
        conflicts[0].message
    );
    let second_hosts = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("hosts: [hello-service]"))
        .nth(1)
        .map(|(i, _)| i as u32 + 1);
    assert_eq!(Some(conflicts[0].line), second_hosts);
}

/// The most specific VirtualService host wins for a service, silently; hosts that cover no
/// service are reported.
#[test]
fn most_specific_host_wins() {
    let text = service("a", "default")
        + &service("b", "default")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wide}
spec:
  hosts: ['*.default.svc.cluster.local']
  http: [{route: [{destination: {host: a}}], timeout: 1s}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: narrow}
spec:
  hosts: [b, nothing-here]
  http: [{route: [{destination: {host: b}}], timeout: 2s}]
";
    let c = run(&text);
    let timeout = |host: &str| svc(&c, host).http_routes[0].timeout;
    assert_eq!(
        timeout("a.default.svc.cluster.local"),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        timeout("b.default.svc.cluster.local"),
        Some(Duration::from_secs(2))
    );
    assert!(
        with_code(&c.diagnostics, Code::ConflictingHosts).is_empty(),
        "{:#?}",
        c.diagnostics
    );
    let ignored = with_code(&c.diagnostics, Code::IgnoredSetting);
    assert_eq!(ignored.len(), 1, "{ignored:#?}");
    assert_eq!(ignored[0].severity, Severity::Info);
    assert!(
        ignored[0]
            .message
            .contains("nothing-here.default.svc.cluster.local")
    );
    assert_eq!(ignored[0].line, line_of(&text, "hosts: [b, nothing-here]"));
}

/// A delegate (hostless) VirtualService routes nothing by itself.
#[test]
fn delegates_are_skipped_at_top_level() {
    let c = run(&(service("hello-service", "default")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: child}
spec:
  http: [{route: [{destination: {host: hello-service}}]}]
"));
    assert!(svc(&c, HELLO).http_routes.is_empty());
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}
