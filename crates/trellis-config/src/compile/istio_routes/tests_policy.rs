//! Tests of retries, retry budgets (from DestinationRules and annotations), TCP/TLS rules and the
//! settings reported as not carried.

use super::tests::{HELLO, line_of, run, service, svc, with_code};
use super::tests_rules::routes;
use crate::diag::{Code, Severity};
use std::time::Duration;
use trellis_model::{Destination, L4Match, RetryBudget, TlsMatch, WeightedDestination};

#[test]
fn retries_and_timeouts() {
    let (r, diags, text) = routes(
        "  - route: [{destination: {host: hello-service}}]
    retries: {attempts: 0}
  - route: [{destination: {host: hello-service}}]
    retries: {attempts: 4, retryOn: '503,gateway-error', backoff: 50ms, retryRemoteLocalities: true, retryIgnorePreviousHosts: false}
",
    );
    assert_eq!(r[0].retry, None, "attempts: 0 disables retries");
    assert_eq!(r[0].timeout, None);
    let p = r[1].retry.clone().expect("retries");
    assert_eq!(p.attempts, 4);
    assert_eq!(
        p.retry_on.to_string(),
        "gateway-error,retriable-status-codes,503"
    );
    assert_eq!(
        (p.backoff_base, p.backoff_max),
        (Duration::from_millis(50), Duration::from_millis(500))
    );
    let ignored = with_code(&diags, Code::IgnoredSetting);
    let line = line_of(&text, "attempts: 4");
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(
        ignored
            .iter()
            .all(|d| d.line == line && d.severity == Severity::Info)
    );
    assert!(
        ignored[0].message.contains("retryRemoteLocalities")
            && ignored[1].message.contains("retryIgnorePreviousHosts")
    );
}

#[test]
fn tcp_and_tls_rules() {
    let text = service("db", "default")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db, '*.example.com']
  tcp:
  - match: [{port: 5432, destinationSubnets: [10.0.0.0/8], sourceLabels: {app: api}, sourceNamespace: shop, sourceSubnet: 10.1.0.0/16}]
    route:
    - {destination: {host: db, subset: primary}, weight: 80}
    - {destination: {host: db, subset: replica}, weight: 20}
  tls:
  - match: [{sniHosts: [Login.Example.com], port: 443, gateways: [mesh]}]
    route: [{destination: {host: login.example.com}}]
";
    let c = run(&text);
    let s = svc(&c, "db.default.svc.cluster.local");
    assert_eq!(
        s.tcp_routes[0].matches,
        [L4Match {
            port: Some(5432),
            destination_subnets: vec!["10.0.0.0/8".into()],
            source_labels: [("app".to_string(), "api".to_string())].into(),
            gateways: vec![],
            source_namespace: Some("shop".into()),
        }]
    );
    let db = |subset: &str, weight| {
        WeightedDestination::new(
            Destination {
                host: "db.default.svc.cluster.local".into(),
                subset: Some(subset.into()),
                port: None,
            },
            weight,
        )
    };
    assert_eq!(
        s.tcp_routes[0].destinations,
        [db("primary", 80), db("replica", 20)]
    );
    assert_eq!(s.tcp_routes[0].origin.name, "db");
    assert_eq!(
        s.tls_routes[0].matches,
        [TlsMatch {
            sni_hosts: vec!["login.example.com".into()],
            port: Some(443),
            gateways: vec!["mesh".into()],
            ..TlsMatch::default()
        }]
    );
    assert_eq!(
        s.tls_routes[0].destinations,
        [WeightedDestination::new(
            Destination::new("login.example.com"),
            100
        )]
    );
    let ignored = with_code(&c.diagnostics, Code::IgnoredSetting);
    assert!(ignored.iter().any(|d| d.message.contains("sourceSubnet") && d.line == line_of(&text, "sourceSubnet")), "{ignored:#?}");
}

#[test]
fn settings_not_carried() {
    let (_, diags, text) = routes(
        "  - match: [{uri: {prefix: /}, statPrefix: root}]
    route: [{destination: {host: hello-service}}]
    corsPolicy: {allowOrigins: [{exact: 'https://a.com'}], unmatchedPreflights: IGNORE}
  exportTo: [.]
",
    );
    let ignored = with_code(&diags, Code::IgnoredSetting);
    for (needle, word) in [
        ("statPrefix", "statPrefix"),
        ("unmatchedPreflights", "unmatchedPreflights"),
        ("exportTo", "exportTo"),
    ] {
        assert!(
            ignored
                .iter()
                .any(|d| d.line == line_of(&text, needle) && d.message.contains(word)),
            "{word}: {ignored:#?}"
        );
    }
    assert_eq!(ignored.len(), 3);
}

const BUDGET_DR: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hello}
spec:
  host: hello-service
  trafficPolicy:
    retryBudget: {percent: 25, minRetryConcurrency: 5}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy: {retryBudget: {percent: 50}}
---
";

/// `trafficPolicy.retryBudget` of the destination's DestinationRule (the subset's overriding).
#[test]
fn retry_budget_from_destination_rule() {
    let (r, diags, _) = routes(&format!(
        "  - route: [{{destination: {{host: hello-service}}}}]\n  - route: [{{destination: {{host: hello-service, subset: v2}}}}]\n  - route: [{{destination: {{host: hello-service}}}}]\n    retries: {{attempts: 0}}\n---\n{BUDGET_DR}"
    ));
    let budget = |i: usize| r[i].retry.as_ref().and_then(|p| p.budget.clone());
    assert_eq!(
        budget(0),
        Some(RetryBudget {
            retry_ratio: 0.25,
            min_retries_per_second: 5,
            ttl: Duration::from_secs(10)
        })
    );
    assert_eq!(
        budget(1),
        Some(RetryBudget {
            retry_ratio: 0.5,
            min_retries_per_second: 3,
            ttl: Duration::from_secs(10)
        })
    );
    assert_eq!(r[2].retry, None, "no retries, no budget");
    assert!(diags.is_empty(), "{diags:#?}");
}

/// The `retry.trellis.dev/*` annotations set a budget, field by field over the DestinationRule's;
/// invalid values are IST0106 at the annotation.
#[test]
fn retry_budget_from_annotations() {
    let vs = |annotations: &str, extra: &str| {
        service("hello-service", "default")
            + extra
            + &format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n  annotations:\n{annotations}spec:\n  hosts: [hello-service]\n  http:\n  - route: [{{destination: {{host: hello-service}}}}]\n"
            )
    };
    let all = "    retry.trellis.dev/budget-ratio: '0.1'\n    retry.trellis.dev/budget-min-per-second: '20'\n    retry.trellis.dev/budget-ttl: 30s\n";
    let c = run(&vs(all, ""));
    let b = svc(&c, HELLO).http_routes[0]
        .retry
        .as_ref()
        .and_then(|p| p.budget.clone());
    assert_eq!(
        b,
        Some(RetryBudget {
            retry_ratio: 0.1,
            min_retries_per_second: 20,
            ttl: Duration::from_secs(30)
        })
    );
    // Only the ratio: the rest comes from the DestinationRule.
    let c = run(&vs(
        "    retry.trellis.dev/budget-ratio: '0.4'\n",
        BUDGET_DR,
    ));
    let b = svc(&c, HELLO).http_routes[0]
        .retry
        .as_ref()
        .and_then(|p| p.budget.clone());
    assert_eq!(
        b,
        Some(RetryBudget {
            retry_ratio: 0.4,
            min_retries_per_second: 5,
            ttl: Duration::from_secs(10)
        })
    );
    // Invalid values are reported where they are written; valid ones still apply.
    let bad = "    retry.trellis.dev/budget-ratio: lots\n    retry.trellis.dev/budget-min-per-second: '-1'\n    retry.trellis.dev/budget-ttl: 0s\n    retry.trellis.dev/unrelated: x\n";
    let text = vs(bad, "");
    let c = run(&text);
    let errors = with_code(&c.diagnostics, Code::SchemaValidation);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for (d, needle) in errors
        .iter()
        .zip(["budget-ratio", "budget-min-per-second", "budget-ttl"])
    {
        assert_eq!(d.line, line_of(&text, needle));
        assert!(
            d.message.contains(needle) && d.severity == Severity::Error,
            "{}",
            d.message
        );
    }
    assert_eq!(
        svc(&c, HELLO).http_routes[0]
            .retry
            .as_ref()
            .and_then(|p| p.budget.clone()),
        None
    );
}

#[test]
fn non_idempotent_retries_only_by_annotation() {
    let vs = |annotations: &str| {
        service("hello-service", "default")
            + &format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n{annotations}spec:\n  hosts: [hello-service]\n  http:\n  - route: [{{destination: {{host: hello-service}}}}]\n    retries: {{attempts: 3}}\n"
            )
    };
    let retry = |text: &str| {
        let c = run(text);
        let p = svc(&c, HELLO).http_routes[0].retry.clone();
        (p, c.diagnostics)
    };
    let (p, _) = retry(&vs(""));
    let p = p.expect("retries");
    assert!(!p.retry_non_idempotent, "POST is not retried by default");
    assert_eq!(p.budget, None);
    let (p, _) = retry(&vs(
        "  annotations: {retry.trellis.dev/non-idempotent: 'true'}\n",
    ));
    let p = p.expect("retries");
    assert!(p.retry_non_idempotent);
    assert_eq!(p.budget, None, "the annotation alone adds no budget");
    let text = vs("  annotations: {retry.trellis.dev/non-idempotent: 'yes'}\n");
    let (p, diags) = retry(&text);
    assert!(!p.expect("retries").retry_non_idempotent);
    let errors = with_code(&diags, Code::SchemaValidation);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("non-idempotent"));
}
