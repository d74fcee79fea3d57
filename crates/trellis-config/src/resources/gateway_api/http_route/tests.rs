use super::*;
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;
use crate::resources::gateway_api::{
    HttpPathModifierType, HttpRouteFilterType, SessionPersistenceType,
};

fn load(text: &str) -> Loaded {
    load_str("route.yaml", text, &LoadOptions::default())
}

fn route(l: &Loaded) -> &HttpRoute {
    match l
        .resources
        .iter()
        .map(|r| &r.spec)
        .find(|s| matches!(s, Spec::HttpRoute(_)))
    {
        Some(Spec::HttpRoute(r)) => r,
        _ => panic!("no HTTPRoute loaded: {:?}", l.diagnostics),
    }
}

/// The HTTPRoute inside seed 002-04 (its `完整示例` block, dedented).
const SEED_ROUTE: &str = r#"apiVersion: gateway.networking.k8s.io/v1
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

/// The example block of seed 002-04 (GatewayClass, Gateway, HTTPRoute), dedented, if present.
fn seed_block() -> Option<String> {
    let text = std::fs::read_to_string("/work/shared/fixtures/seed-configs/002-04.yaml").ok()?;
    let start = text.find("    # GatewayClass")?;
    let lines: Vec<&str> = text[start..]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect();
    Some(lines.join("\n") + "\n")
}

#[test]
fn seed_reviews_route_is_a_mesh_canary() {
    let l = load(SEED_ROUTE);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    assert_eq!(l.resources[0].namespace, "bookinfo");
    let r = route(&l);
    assert!(r.parent_refs[0].is_service());
    assert!(!r.parent_refs[0].is_gateway());
    assert_eq!(r.rules.len(), 2);
    let h = &r.rules[0].matches[0].headers[0];
    assert_eq!(
        (h.name.as_str(), h.value.as_str(), h.r#type),
        ("x-canary", "true", None)
    );
    assert!(r.rules[0].matches[0].path.is_none());
    let b = &r.rules[0].backend_refs[0];
    assert_eq!(
        (b.name.as_str(), b.port, b.effective_weight()),
        ("reviews-v2", Some(9080), 1)
    );
    assert_eq!(b.group_kind(), ("", "Service"));
    let weights: Vec<(&str, i32)> = r.rules[1]
        .backend_refs
        .iter()
        .map(|b| (b.name.as_str(), b.effective_weight()))
        .collect();
    assert_eq!(weights, vec![("reviews-v1", 90), ("reviews-v2", 10)]);
}

#[test]
fn seed_block_matches_and_loads_cleanly() {
    let Some(block) = seed_block() else { return };
    let seed_route = &block[block
        .find("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute")
        .expect("route")..];
    let seed_route = seed_route.replace("# HTTPRoute（东西向服务网格）\n", "");
    assert_eq!(seed_route.trim_end(), SEED_ROUTE.trim_end());
    let l = load(&block);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let kinds: Vec<&str> = l.resources.iter().map(|r| r.kind().name()).collect();
    assert_eq!(kinds, vec!["GatewayClass", "Gateway", "HTTPRoute"]);
}

const FULL: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: web}
spec:
  parentRefs:
  - {name: public, namespace: infra, sectionName: https}
  - {group: "", kind: Service, name: shop, port: 8080}
  hostnames: ["shop.example.com", "*.shop.example.com"]
  rules:
  - name: api
    matches:
    - path: {type: PathPrefix, value: /api}
      headers:
      - {type: RegularExpression, name: user-agent, value: ".*Firefox.*"}
      queryParams:
      - {name: debug, value: "1"}
      method: POST
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-env, value: prod}]
        add: [{name: x-trace, value: "on"}]
        remove: [x-internal]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {remove: [server]}
    - type: RequestMirror
      requestMirror:
        backendRef: {name: shadow, port: 8080}
        fraction: {numerator: 1, denominator: 10}
    - type: URLRewrite
      urlRewrite:
        hostname: api.internal
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}
    - type: CORS
      cors:
        allowOrigins: ["https://*.example.com"]
        allowMethods: [GET, POST]
        allowHeaders: [content-type]
        allowCredentials: true
        maxAge: 600
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: RateLimit, name: gold}
    backendRefs:
    - name: api-v1
      port: 8080
      weight: 95
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: x-version, value: v1}]}
    - {name: api-v2, port: 8080, weight: 5}
    - {group: example.com, kind: Bucket, name: static}
    timeouts: {request: 10s, backendRequest: 2500ms}
    retry: {codes: [502, 503], attempts: 3, backoff: 100ms}
    sessionPersistence:
      sessionName: shop-session
      type: Cookie
      absoluteTimeout: 1h
      cookieConfig: {lifetimeType: Permanent}
  - matches:
    - path: {type: Exact, value: /old}
    - path: {type: RegularExpression, value: "/legacy/[0-9]+"}
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: shop.example.com, port: 443, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}
"#;

#[test]
fn full_route_parses_into_the_right_values() {
    let l = load(FULL);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let r = route(&l);
    assert!(r.parent_refs[0].is_gateway() && r.parent_refs[1].is_service());
    let rule = &r.rules[0];
    assert_eq!(rule.name.as_deref(), Some("api"));
    let m = &rule.matches[0];
    let path = m.path.as_ref().expect("path");
    assert_eq!(
        (path.effective_type(), path.effective_value()),
        (PathMatchType::PathPrefix, "/api")
    );
    assert_eq!(
        m.headers[0].r#type,
        Some(HeaderMatchType::RegularExpression)
    );
    assert_eq!(m.method, Some(HttpMethod::Post));
    let types: Vec<HttpRouteFilterType> = rule.filters.iter().filter_map(|f| f.r#type).collect();
    assert_eq!(types.len(), 6);
    let mirror = rule.filters[2].request_mirror.as_ref().expect("mirror");
    assert!((mirror.ratio() - 0.1).abs() < 1e-9);
    let rw = rule.filters[3]
        .url_rewrite
        .as_ref()
        .and_then(|u| u.path.as_ref())
        .expect("rewrite");
    assert_eq!(rw.r#type, Some(HttpPathModifierType::ReplacePrefixMatch));
    assert_eq!(
        rule.filters[4].cors.as_ref().map(|c| c.max_age),
        Some(Some(600))
    );
    assert_eq!(rule.backend_refs[0].filters.len(), 1);
    assert_eq!(rule.backend_refs[2].group_kind(), ("example.com", "Bucket"));
    let t = rule.timeouts.as_ref().expect("timeouts");
    assert_eq!(t.backend_request.map(|d| d.nanos), Some(2_500_000_000));
    assert_eq!(
        rule.retry.as_ref().map(|r| (r.codes.clone(), r.attempts)),
        Some((vec![502, 503], Some(3)))
    );
    let sp = rule.session_persistence.as_ref().expect("session");
    assert_eq!(sp.r#type, Some(SessionPersistenceType::Cookie));
    let redirect = r.rules[1].filters[0]
        .request_redirect
        .as_ref()
        .expect("redirect");
    assert_eq!(
        (redirect.status_code, redirect.port),
        (Some(301), Some(443))
    );
}

/// Load FULL with one substitution; return the diagnostics.
fn with(from: &str, to: &str) -> Vec<Diagnostic> {
    assert!(FULL.contains(from), "fixture lacks {from:?}");
    load(&FULL.replacen(from, to, 1)).diagnostics
}

fn assert_one(d: &[Diagnostic], needle: &str) {
    assert_eq!(
        d.len(),
        1,
        "expected one diagnostic containing {needle:?}: {d:#?}"
    );
    assert!(
        d[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        d[0].message
    );
    assert_eq!(d[0].severity, Severity::Error);
}

#[test]
fn linkerd_policy_http_route_loads() {
    let text = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: authors-get, namespace: booksapp}
spec:
  parentRefs:
  - {name: authors-server, kind: Server, group: policy.linkerd.io}
  rules:
  - matches:
    - {path: {value: /authors.json}, method: GET}
    timeouts: {request: 5s}
"#;
    let l = load(text);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let Some(Spec::LinkerdHttpRoute(r)) = l.resources.first().map(|r| &r.spec) else {
        panic!("not a Linkerd HTTPRoute")
    };
    assert_eq!(
        r.parent_refs[0].group_kind(),
        ("policy.linkerd.io", "Server")
    );
    assert!(!r.parent_refs[0].is_service() && !r.parent_refs[0].is_gateway());
}

mod rules;
