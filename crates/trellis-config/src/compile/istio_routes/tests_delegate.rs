//! Tests of delegation: child rules inlined in place of the delegating rule, matches merged as
//! Istio merges them, settings inherited, and the diagnostics for delegates that cannot be used.

use super::tests::{HELLO, forward, line_of, run, service, svc, with_code};
use crate::diag::{Code, Severity};
use std::time::Duration;
use trellis_model::{HeaderMatch, HttpMatch, RetryBudget, SourceRef, StringMatch};

fn prefix(p: &str) -> Option<StringMatch> {
    Some(StringMatch::Prefix(p.into()))
}

const ROOT: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: root
  annotations: {retry.trellis.dev/budget-ratio: '0.3'}
spec:
  hosts: [hello-service]
  http:
  - name: api
    match:
    - uri: {prefix: /api}
      headers: {x-tenant: {exact: a}}
    - uri: {prefix: /v2/api}
    delegate: {name: child, namespace: team}
    timeout: 5s
    headers: {request: {set: {x-root: '1'}}}
  - route: [{destination: {host: hello-service}}]
---
";

const CHILD: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: child, namespace: team}
spec:
  http:
  - name: users
    match:
    - uri: {prefix: /api/users}
      headers: {x-tenant: {exact: a}, x-beta: {}}
    route: [{destination: {host: users}}]
    timeout: 1s
  - name: outside
    match:
    - uri: {prefix: /other}
    route: [{destination: {host: other}}]
  - route: [{destination: {host: catch-all}}]
";

#[test]
fn delegate_rules_are_inlined_and_merged() {
    let text = service("hello-service", "default") + ROOT + CHILD;
    let c = run(&text);
    let routes = &svc(&c, HELLO).http_routes;
    assert_eq!(
        routes.len(),
        3,
        "users, catch-all (from the delegate) and the root's last rule: {routes:#?}"
    );

    let users = &routes[0];
    assert_eq!(users.name.as_deref(), Some("api-users"));
    assert_eq!(
        users.matches,
        [HttpMatch {
            uri: prefix("/api/users"),
            headers: vec![
                HeaderMatch {
                    name: "x-beta".into(),
                    value: None,
                    invert: false
                },
                HeaderMatch {
                    name: "x-tenant".into(),
                    value: Some(StringMatch::Exact("a".into())),
                    invert: false
                },
            ],
            ..HttpMatch::default()
        }],
        "within the first root match only: /api/users does not start with /v2/api"
    );
    // Hosts resolve in the delegate's namespace; the delegate is the origin.
    assert_eq!(
        forward(&users.action)[0].destination.host,
        "users.team.svc.cluster.local"
    );
    assert_eq!(
        users.origin,
        SourceRef::new("VirtualService", "team", "child")
    );
    assert_eq!(
        users.timeout,
        Some(Duration::from_secs(1)),
        "the child's own timeout"
    );
    assert_eq!(
        users.request_headers.set,
        [("x-root".to_string(), "1".to_string())],
        "inherited from the root"
    );
    // The root's budget annotation applies to delegated routes too.
    assert_eq!(
        users.retry.as_ref().and_then(|r| r.budget.clone()),
        Some(RetryBudget {
            retry_ratio: 0.3,
            ..RetryBudget::default()
        })
    );

    let catch_all = &routes[1];
    assert_eq!(catch_all.name.as_deref(), Some("api"));
    let uris: Vec<_> = catch_all.matches.iter().map(|m| m.uri.clone()).collect();
    assert_eq!(
        uris,
        [prefix("/api"), prefix("/v2/api")],
        "a child without matches takes the root's"
    );
    assert_eq!(
        catch_all.timeout,
        Some(Duration::from_secs(5)),
        "inherited from the root"
    );
    assert_eq!(
        forward(&catch_all.action)[0].destination.host,
        "catch-all.team.svc.cluster.local"
    );

    assert_eq!(routes[2].origin.name, "root");

    // The child rule matching outside the root's prefix is dropped, as Istio drops it.
    let ineffective = with_code(&c.diagnostics, Code::IneffectiveMatch);
    assert_eq!(ineffective.len(), 1, "{:#?}", c.diagnostics);
    let d = ineffective[0];
    assert_eq!(
        (d.name.as_str(), d.namespace.as_str(), d.severity),
        ("child", "team", Severity::Warning)
    );
    assert_eq!(d.line, line_of(&text, "uri: {prefix: /other}"));
    assert!(
        d.message.contains("VirtualService default/root") && d.message.contains("spec.http[1]"),
        "{}",
        d.message
    );
}

/// Match merging follows Istio's conflict rules.
#[test]
fn match_conflicts() {
    let case = |root_match: &str, child_match: &str| {
        let text = service("hello-service", "default")
            + &format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: root}}\nspec:\n  hosts: [hello-service]\n  http:\n  - match: [{root_match}]\n    delegate: {{name: child}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: child}}\nspec:\n  http:\n  - match: [{child_match}]\n    route: [{{destination: {{host: hello-service}}}}]\n"
            );
        let c = run(&text);
        let routes = svc(&c, HELLO).http_routes.clone();
        (
            routes,
            with_code(&c.diagnostics, Code::IneffectiveMatch).len(),
        )
    };
    // Prefix within prefix; exact within prefix.
    assert_eq!(case("{uri: {prefix: /a}}", "{uri: {prefix: /a/b}}").1, 0);
    assert_eq!(case("{uri: {prefix: /a}}", "{uri: {exact: /a/b}}").1, 0);
    // Wider than the root, or an exact root narrowed by a prefix.
    assert_eq!(case("{uri: {prefix: /a/b}}", "{uri: {prefix: /a}}").1, 1);
    assert_eq!(case("{uri: {exact: /a}}", "{uri: {prefix: /a}}").1, 1);
    assert_eq!(case("{uri: {exact: /a}}", "{uri: {exact: /b}}").1, 1);
    // Header, port, ignoreUriCase and sourceNamespace contradictions.
    assert_eq!(
        case(
            "{headers: {x: {exact: '1'}}}",
            "{headers: {x: {exact: '2'}}}"
        )
        .1,
        1
    );
    assert_eq!(case("{port: 80}", "{port: 81}").1, 1);
    assert_eq!(
        case(
            "{ignoreUriCase: true, uri: {prefix: /}}",
            "{uri: {prefix: /x}}"
        )
        .1,
        1
    );
    assert_eq!(case("{sourceNamespace: a}", "{sourceNamespace: b}").1, 1);
    // Conditions the root does not have are added; the root's are kept where the child has none.
    let (routes, n) = case(
        "{uri: {prefix: /a}, port: 80, sourceLabels: {app: x}}",
        "{method: {exact: GET}, queryParams: {q: {exact: '1'}}}",
    );
    assert_eq!(n, 0);
    let m = &routes[0].matches[0];
    assert_eq!(
        (m.uri.clone(), m.method.clone(), m.port),
        (
            prefix("/a"),
            Some(StringMatch::Exact("GET".into())),
            Some(80)
        )
    );
    assert_eq!((m.query_params.len(), m.source_labels.len()), (1, 1));
}

/// A "delegate" with hosts, or one not exported to the root's namespace, routes nothing (IST0101);
/// a missing one is left to the analyzer.
#[test]
fn unusable_delegates() {
    let root = |name: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: root}}\nspec:\n  hosts: [hello-service]\n  http:\n  - delegate: {{name: {name}, namespace: team}}\n  - route: [{{destination: {{host: hello-service}}}}]\n---\n"
        )
    };
    let text = service("hello-service", "default")
        + &service("x", "team")
        + &root("with-hosts")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: with-hosts, namespace: team}
spec:
  hosts: [x]
  http: [{route: [{destination: {host: x}}]}]
";
    let c = run(&text);
    assert_eq!(svc(&c, HELLO).http_routes.len(), 1);
    let found = with_code(&c.diagnostics, Code::ReferencedResourceNotFound);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].message.contains("not a delegate")
            && found[0].line == line_of(&text, "delegate: {name: with-hosts")
    );

    let text = service("hello-service", "default")
        + &root("private")
        + "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: team}
spec:
  exportTo: [.]
  http: [{route: [{destination: {host: x}}]}]
";
    let c = run(&text);
    assert_eq!(svc(&c, HELLO).http_routes.len(), 1);
    let found = with_code(&c.diagnostics, Code::ReferencedResourceNotFound);
    assert!(
        found.len() == 1
            && found[0]
                .message
                .contains("not exported to namespace default"),
        "{found:#?}"
    );

    let c = run(&(service("hello-service", "default") + &root("missing")));
    assert_eq!(svc(&c, HELLO).http_routes.len(), 1);
    assert!(
        c.diagnostics.is_empty(),
        "the analyzer reports missing delegates: {:#?}",
        c.diagnostics
    );
}
