//! Routes attached to Gateway API Gateways: listener selection, allowedRoutes, hostnames,
//! merging, and cross-namespace backends.

use super::*;

const GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ingress}
spec:
  gatewayClassName: trellis
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    hostname: "*.example.com"
    allowedRoutes:
      namespaces: {from: All}
  - name: https
    protocol: HTTPS
    port: 443
    hostname: secure.example.com
    tls: {certificateRefs: [{name: cert}]}
  - name: shared
    protocol: HTTP
    port: 8080
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels: {shared-gateway-access: "true"}
  - name: grpc-only
    protocol: HTTP
    port: 9090
    allowedRoutes:
      namespaces: {from: All}
      kinds: [{kind: GRPCRoute}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: web
  labels: {shared-gateway-access: "true"}
---
"#;

fn http_route(ns: &str, name: &str, parent: &str, hostnames: &str, rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  parentRefs: [{parent}]\n  hostnames: {hostnames}\n  rules:\n{rules}---\n"
    )
}

const TO_WEB: &str = "  - backendRefs: [{name: web, port: 80}]\n";

#[test]
fn http_route_binds_to_admitting_listeners() {
    let route = http_route(
        "web",
        "site",
        "{name: gw, namespace: ingress}",
        "[api.example.com, secure.example.com, other.org]",
        TO_WEB,
    );
    let c = run(&format!("{GATEWAY}{}{route}", service("web", "web", 80)));
    let gw = gateway(&c, "ingress", "gw");
    let mut bound: Vec<(u16, &str)> = gw
        .virtual_hosts
        .iter()
        .map(|v| (v.port, v.hosts[0].as_str()))
        .collect();
    bound.sort();
    // :80 admits the hostnames under *.example.com; :443 only admits its own namespace;
    // :8080 has no hostname and admits namespace `web` by label; :9090 only takes GRPCRoutes.
    assert_eq!(
        bound,
        [
            (80, "api.example.com"),
            (80, "secure.example.com"),
            (8080, "api.example.com"),
            (8080, "other.org"),
            (8080, "secure.example.com")
        ]
    );
    let vh = vhost(gw, 80, "api.example.com");
    let web = format!("web.web.{H}");
    assert_eq!(dests(&vh.http_routes[0]), [(web.as_str(), Some(80), 1)]);
    assert_eq!(vh.http_routes[0].origin.name, "site");
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

#[test]
fn listener_refusals_are_explained() {
    let routes = [
        http_route(
            "web",
            "https-only",
            "{name: gw, namespace: ingress, sectionName: https}",
            "[]",
            TO_WEB,
        ),
        http_route(
            "web",
            "grpc-port",
            "{name: gw, namespace: ingress, port: 9090}",
            "[]",
            TO_WEB,
        ),
        http_route(
            "other",
            "unlabelled",
            "{name: gw, namespace: ingress, sectionName: shared}",
            "[]",
            TO_WEB,
        ),
        http_route(
            "web",
            "wrong-host",
            "{name: gw, namespace: ingress, sectionName: http}",
            "[example.org]",
            TO_WEB,
        ),
        http_route(
            "web",
            "no-listener",
            "{name: gw, namespace: ingress, sectionName: admin}",
            "[]",
            TO_WEB,
        ),
        http_route(
            "web",
            "no-gateway",
            "{name: missing, namespace: ingress}",
            "[]",
            TO_WEB,
        ),
    ]
    .concat();
    let c = run(&format!("{GATEWAY}{routes}"));
    assert!(gateway(&c, "ingress", "gw").virtual_hosts.is_empty());
    let warnings: Vec<(&str, &str)> = with_code(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| (d.name.as_str(), d.message.as_str()))
        .collect();
    let prefix = "the route attaches to no listener of Gateway ingress/gw: ";
    assert_eq!(
        warnings,
        [
            (
                "unlabelled",
                &*format!(
                    "{prefix}listener \"shared\" does not accept routes from namespace \"other\""
                )
            ),
            (
                "grpc-port",
                &*format!("{prefix}listener \"grpc-only\" does not accept HTTPRoutes")
            ),
            (
                "https-only",
                &*format!(
                    "{prefix}listener \"https\" does not accept routes from namespace \"web\""
                )
            ),
            (
                "wrong-host",
                &*format!(
                    "{prefix}no hostname of the route matches listener \"http\" (*.example.com)"
                )
            ),
        ]
    );
    assert!(
        c.diagnostics
            .iter()
            .filter(|d| d.code == Code::IgnoredSetting)
            .all(|d| d.severity == crate::diag::Severity::Warning)
    );
    let missing: Vec<(&str, &str)> = with_code(&c, Code::ReferencedResourceNotFound)
        .iter()
        .map(|d| (d.name.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            (
                "no-gateway",
                "Referenced parent not found: Gateway \"missing\" in namespace \"ingress\""
            ),
            (
                "no-listener",
                "Gateway ingress/gw has no listener named \"admin\""
            ),
        ]
    );
}

#[test]
fn routes_merge_per_hostname_in_precedence_order() {
    let a = http_route(
        "web",
        "a",
        "{name: gw, namespace: ingress, sectionName: http}",
        "[shop.example.com]",
        "  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: web, port: 80}]\n",
    );
    let b = http_route(
        "web",
        "b",
        "{name: gw, namespace: ingress, sectionName: http}",
        "[shop.example.com]",
        "  - matches: [{path: {type: PathPrefix, value: /cart}}]\n    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: x-cart, value: \"1\"}]}\n",
    );
    let c = run(&format!("{GATEWAY}{}{a}{b}", service("web", "web", 80)));
    let gw = gateway(&c, "ingress", "gw");
    assert_eq!(
        gw.virtual_hosts.len(),
        1,
        "one virtual host per port and hostname"
    );
    let routes = &vhost(gw, 80, "shop.example.com").http_routes;
    assert_eq!(
        paths(routes),
        [r#"PathPrefix("/cart")"#, r#"PathPrefix("/")"#]
    );
    assert_eq!(
        routes[0].action,
        RouteAction::DirectResponse {
            status: 500,
            body: None
        },
        "on a Gateway, a rule without backends answers 500"
    );
}

const CROSS_NS: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: web}
spec:
  parentRefs: [{name: gw, namespace: ingress, sectionName: http}]
  hostnames: [api.example.com]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 80}
    - {name: billing, namespace: payments, port: 8080, weight: 20}
---
"#;

const GRANT: &str = r#"apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: web-routes, namespace: payments}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}]
  to: [{group: "", kind: Service, name: billing}]
---
"#;

#[test]
fn cross_namespace_backend_needs_reference_grant() {
    let services = format!(
        "{}{}",
        service("web", "web", 80),
        service("payments", "billing", 8080)
    );
    let web = format!("web.web.{H}");
    let billing = format!("billing.payments.{H}");

    let c = run(&format!("{GATEWAY}{services}{CROSS_NS}"));
    let vh = vhost(gateway(&c, "ingress", "gw"), 80, "api.example.com");
    assert_eq!(
        dests(&vh.http_routes[0]),
        [(web.as_str(), Some(80), 80)],
        "the ungranted backend is dropped"
    );
    let missing = with_code(&c, Code::ReferencedResourceNotFound);
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert!(
        missing[0]
            .message
            .contains("requires a ReferenceGrant in namespace payments"),
        "{}",
        missing[0].message
    );
    let line = GATEWAY.lines().count() + services.lines().count() + 10;
    assert_eq!(
        missing[0].line as usize, line,
        "points at spec.rules[0].backendRefs[1]"
    );

    let c = run(&format!("{GATEWAY}{services}{CROSS_NS}{GRANT}"));
    let vh = vhost(gateway(&c, "ingress", "gw"), 80, "api.example.com");
    assert_eq!(
        dests(&vh.http_routes[0]),
        [
            (web.as_str(), Some(80), 80),
            (billing.as_str(), Some(8080), 20)
        ]
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

/// Hostile input: lists beyond the CRD limits are capped, and the expansion of routes over
/// listeners and hostnames stops at a limit instead of exhausting memory.
#[test]
fn oversized_input_is_bounded() {
    let listeners: String = (0..100)
        .map(|i| format!("  - {{name: l{i}, protocol: HTTP, port: {}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n", 1000 + i))
        .collect();
    let hostnames: Vec<String> = (0..40).map(|i| format!("h{i}.example.com")).collect();
    let rule = "  - backendRefs: [{name: web, port: 80}]\n".repeat(12);
    let yaml = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: big, namespace: web}}\nspec:\n  gatewayClassName: x\n  listeners:\n{listeners}---\n{}",
        http_route(
            "web",
            "wide",
            "{name: big}",
            &format!("[{}]", hostnames.join(", ")),
            &rule
        )
    );
    let loaded = load_str("t.yaml", &yaml, &LoadOptions::default());
    assert!(loaded.has_errors(), "over the CRD limits");
    let c = compile(&loaded.resources, &CompileOptions::default());
    let vhosts = gateway(&c, "web", "big").virtual_hosts.len();
    // 64 listeners x 16 hostnames x 12 rules would be 12,288 routes; the test limit is 10,000.
    assert_eq!(
        vhosts,
        10_000 / 12 + 1,
        "stops at the first host past the limit"
    );
    let limit = with_code(&c, Code::InputLimit);
    assert_eq!(limit.len(), 1, "{limit:#?}");
}
