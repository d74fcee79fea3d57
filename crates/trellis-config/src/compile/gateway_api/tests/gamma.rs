//! HTTPRoutes attached to Services (GAMMA), both API groups.

use super::*;
use trellis_model::{HeaderMatch, StringMatch};

/// The inner HTTPRoute of seed 002-04 (east-west canary by header, then 90/10).
const SEED: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews-route
  namespace: bookinfo
spec:
  parentRefs:
  - name: reviews
    kind: Service
  rules:
  - matches:
    - headers:
      - name: x-canary
        value: "true"
    backendRefs:
    - name: reviews-v2
      port: 9080
  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 90
    - name: reviews-v2
      port: 9080
      weight: 10
"#;

fn bookinfo() -> String {
    ["reviews", "reviews-v1", "reviews-v2"]
        .map(|n| service("bookinfo", n, 9080))
        .concat()
}

#[test]
fn seed_canary_by_header_then_split() {
    let c = run(&format!("{}{SEED}", bookinfo()));
    let reviews = svc(&c, &format!("reviews.bookinfo.{H}"));
    let routes = &reviews.http_routes;
    assert_eq!(routes.len(), 2, "{routes:#?}");
    let canary = &routes[0].matches[0];
    assert_eq!(canary.uri, Some(StringMatch::PathPrefix("/".into())));
    assert_eq!(
        canary.headers,
        [HeaderMatch {
            name: "x-canary".into(),
            value: Some(StringMatch::Exact("true".into())),
            invert: false
        }]
    );
    let v1 = format!("reviews-v1.bookinfo.{H}");
    let v2 = format!("reviews-v2.bookinfo.{H}");
    assert_eq!(dests(&routes[0]), [(v2.as_str(), Some(9080), 1)]);
    assert!(routes[1].matches[0].headers.is_empty());
    assert_eq!(
        dests(&routes[1]),
        [(v1.as_str(), Some(9080), 90), (v2.as_str(), Some(9080), 10)]
    );
    for r in routes {
        assert_eq!(
            (r.retry.as_ref(), r.timeout),
            (None, None),
            "the Gateway API has no default retries"
        );
        assert_eq!(
            (
                r.origin.kind.as_str(),
                r.origin.namespace.as_str(),
                r.origin.name.as_str()
            ),
            ("HTTPRoute", "bookinfo", "reviews-route")
        );
        assert_eq!(r.matches[0].port, None);
    }
    assert!(reviews.origins.iter().any(|o| o.kind == "HTTPRoute"));
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

fn route(name: &str, extra_meta: &str, matches: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: {name}\n  namespace: bookinfo\n{extra_meta}spec:\n  parentRefs:\n  - {{name: reviews, kind: Service}}\n  rules:\n{matches}---\n"
    )
}

#[test]
fn merged_routes_follow_gateway_api_precedence() {
    let b = route(
        "b-route",
        "",
        "  - matches:\n    - path: {type: PathPrefix, value: /api}\n    - path: {type: Exact, value: /api/login}\n    - path: {type: RegularExpression, value: '/v[0-9]+/.*'}\n    backendRefs: [{name: reviews-v1, port: 9080}]\n",
    );
    let a = route(
        "a-route",
        "",
        "  - matches:\n    - path: {type: PathPrefix, value: /api}\n      headers: [{name: x-user, value: jason}]\n    - path: {type: PathPrefix, value: /api}\n      method: GET\n    backendRefs: [{name: reviews-v2, port: 9080}]\n  - matches:\n    - path: {type: PathPrefix, value: /api/v2}\n    backendRefs: [{name: reviews-v2, port: 9080}]\n",
    );
    let z = route(
        "z-old",
        "  creationTimestamp: \"2020-01-01T00:00:00Z\"\n",
        "  - matches:\n    - path: {type: PathPrefix, value: /api}\n    backendRefs: [{name: reviews-v1, port: 9080}]\n",
    );
    let c = run(&format!("{}{b}{a}{z}", bookinfo()));
    let routes = &svc(&c, &format!("reviews.bookinfo.{H}")).http_routes;
    let order: Vec<(String, &str)> = paths(routes)
        .into_iter()
        .zip(routes.iter().map(|r| r.origin.name.as_str()))
        .collect();
    let want = [
        (r#"Exact("/api/login")"#, "b-route"),
        (r#"PathPrefix("/api/v2")"#, "a-route"),
        (r#"PathPrefix("/api")"#, "a-route"),
        (r#"PathPrefix("/api")"#, "a-route"),
        (r#"PathPrefix("/api")"#, "z-old"),
        (r#"PathPrefix("/api")"#, "b-route"),
        (r#"Regex("/v[0-9]+/.*")"#, "b-route"),
    ];
    assert_eq!(order, want.map(|(p, n)| (p.to_owned(), n)));
    assert!(
        routes[2].matches[0].method.is_some(),
        "a method beats a header match"
    );
    assert_eq!(routes[3].matches[0].headers.len(), 1);
}

#[test]
fn parent_port_section_name_and_consumer_routes() {
    let yaml = r#"apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  ports:
  - {name: http, port: 9080}
  - {name: admin, port: 9090}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: producer, namespace: bookinfo}
spec:
  parentRefs:
  - {name: reviews, kind: Service, sectionName: admin}
  rules:
  - backendRefs: [{name: reviews, port: 9090}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: consumer, namespace: frontend}
spec:
  parentRefs:
  - {name: reviews, namespace: bookinfo, kind: Service, port: 9080}
  - {name: ratings, kind: Service}
  rules:
  - backendRefs: [{name: reviews, namespace: bookinfo, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-section, namespace: frontend}
spec:
  parentRefs:
  - {name: reviews, namespace: bookinfo, kind: Service, sectionName: nope, port: 9080}
  - {name: reviews, namespace: bookinfo, kind: Service, sectionName: http, port: 9090}
  rules:
  - backendRefs: [{name: reviews, namespace: bookinfo, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: frontend-routes, namespace: bookinfo}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: frontend}]
  to: [{group: "", kind: Service}]
"#;
    let c = run(yaml);
    let routes = &svc(&c, &format!("reviews.bookinfo.{H}")).http_routes;
    let got: Vec<(&str, Option<u16>, Option<&str>)> = routes
        .iter()
        .map(|r| {
            (
                r.origin.name.as_str(),
                r.matches[0].port,
                r.matches[0].source_namespace.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("consumer", Some(9080), Some("frontend")),
            ("producer", Some(9090), None)
        ]
    );
    let missing: Vec<&str> = with_code(&c, Code::ReferencedResourceNotFound)
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        missing,
        [
            "Service bookinfo/reviews has no port named \"nope\"; this parentRef is skipped",
            "Service bookinfo/reviews port \"http\" is 9080, not 9090; this parentRef is skipped",
            "Referenced parent not found: Service \"ratings\" in namespace \"frontend\"",
        ]
    );
}

#[test]
fn rules_without_usable_backends() {
    let rules = "  - matches: [{path: {value: /self}}]\n  - matches: [{path: {value: /zero}}]\n    backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]\n  - matches: [{path: {value: /bucket}}]\n    backendRefs: [{group: example.com, kind: Bucket, name: b}]\n";
    let r = route("r", "", rules).replace(
        "{name: reviews, kind: Service}",
        "{name: reviews, kind: Service, port: 9080}",
    );
    let c = run(&format!("{}{r}", bookinfo()));
    let routes = &svc(&c, &format!("reviews.bookinfo.{H}")).http_routes;
    let by_path = |p: &str| {
        routes
            .iter()
            .find(|r| r.matches[0].uri.as_ref().is_some_and(|u| u.value() == p))
            .unwrap_or_else(|| panic!("no route for {p}"))
    };
    let reviews = format!("reviews.bookinfo.{H}");
    assert_eq!(
        dests(by_path("/self")),
        [(reviews.as_str(), Some(9080), 1)],
        "GAMMA: no backendRefs means the Service itself"
    );
    let direct_500 = RouteAction::DirectResponse {
        status: 500,
        body: None,
    };
    assert_eq!(by_path("/zero").action, direct_500, "all weights 0");
    assert_eq!(by_path("/bucket").action, direct_500, "no valid backend");
    let ignored = with_code(&c, Code::IgnoredSetting);
    assert_eq!(ignored.len(), 1, "{ignored:#?}");
    assert!(
        ignored[0]
            .message
            .contains("backend kind example.com/Bucket is not supported")
    );
}

#[test]
fn linkerd_http_route() {
    let yaml = format!(
        "{}{}",
        bookinfo(),
        r#"apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: linkerd-route, namespace: bookinfo}
spec:
  parentRefs:
  - {name: reviews, kind: Service, group: core, port: 9080}
  - {name: reviews-server, kind: Server, group: policy.linkerd.io}
  hostnames: [reviews.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /health}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
"#
    );
    let c = run(&yaml);
    let routes = &svc(&c, &format!("reviews.bookinfo.{H}")).http_routes;
    assert_eq!(paths(routes), [r#"Exact("/health")"#]);
    assert_eq!(routes[0].matches[0].port, Some(9080));
    let ignored: Vec<&str> = with_code(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(
        ignored
            .iter()
            .any(|m| m.starts_with("hostnames are ignored"))
    );
    assert!(ignored.iter().any(|m| {
        m.starts_with("HTTPRoute attached to a Linkerd Server configures inbound policy")
    }));
}

#[test]
fn virtual_service_takes_precedence() {
    let vs = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews-v1}
---
"#;
    let c = run(&format!("{}{vs}{SEED}", bookinfo()));
    let routes = &svc(&c, &format!("reviews.bookinfo.{H}")).http_routes;
    assert!(
        routes.iter().all(|r| r.origin.kind == "VirtualService"),
        "{routes:#?}"
    );
    let lost = with_code(&c, Code::ApiPrecedence);
    assert_eq!(lost.len(), 1, "{lost:#?}");
    assert_eq!(
        (lost[0].kind.as_str(), lost[0].name.as_str()),
        ("HTTPRoute", "reviews-route")
    );
}
