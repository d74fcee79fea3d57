//! GRPCRoute method matching, TCPRoute and TLSRoute.

use super::*;
use trellis_model::{L4Match, StringMatch, TlsMatch};

#[test]
fn grpc_method_matches() {
    let yaml = format!(
        "{}{}{}",
        service("shop", "catalog", 9000),
        service("shop", "catalog-v2", 9000),
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: catalog, namespace: shop}
spec:
  parentRefs: [{name: catalog, kind: Service}]
  rules:
  - matches:
    - method: {service: shop.Catalog}
    - method: {method: List}
    - method: {type: RegularExpression, service: 'shop\..*', method: 'Get.*'}
    backendRefs: [{name: catalog, port: 9000}]
  - matches:
    - method: {service: shop.Catalog, method: Get}
      headers: [{name: x-version, value: v2}]
    backendRefs: [{name: catalog-v2, port: 9000}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-routed, value: v2}]}
  - backendRefs: [{name: catalog, port: 9000}]
"#
    );
    let c = run(&yaml);
    let routes = &svc(&c, &format!("catalog.shop.{H}")).http_routes;
    assert_eq!(
        paths(routes),
        [
            r#"Exact("/shop.Catalog/Get")"#,
            r#"PathPrefix("/shop.Catalog/")"#,
            r#"Regex("/(?:shop\\..*)/(?:Get.*)")"#,
            r#"Regex("/[^/]+/List")"#,
            "-",
        ]
    );
    assert_eq!(
        routes[0].matches[0].headers[0].value,
        Some(StringMatch::Exact("v2".into()))
    );
    assert_eq!(
        routes[0].request_headers.add,
        [("x-routed".to_owned(), "v2".to_owned())]
    );
    let v2 = format!("catalog-v2.shop.{H}");
    assert_eq!(dests(&routes[0]), [(v2.as_str(), Some(9000), 1)]);
    assert!(
        routes[4].matches[0].is_catch_all(),
        "a rule without matches takes every call"
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

const L4_GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: infra}
spec:
  gatewayClassName: trellis
  listeners:
  - {name: postgres, protocol: TCP, port: 5432}
  - name: tls
    protocol: TLS
    port: 443
    hostname: "*.db.example.com"
    tls: {mode: Passthrough}
  - {name: web, protocol: HTTP, port: 80}
---
"#;

#[test]
fn tcp_route_on_gateway_and_service() {
    let yaml = format!(
        "{L4_GATEWAY}{}{}",
        service("infra", "pg", 5432),
        r#"apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: pg, namespace: infra}
spec:
  parentRefs:
  - {name: edge, sectionName: postgres}
  - {name: edge, sectionName: web}
  - {name: pg, kind: Service, port: 5432}
  rules:
  - backendRefs: [{name: pg, port: 5432}]
  - backendRefs: [{name: pg, port: 5433}]
"#
    );
    let c = run(&yaml);
    let pg = format!("pg.infra.{H}");
    let vh = vhost(gateway(&c, "infra", "edge"), 5432, "*");
    assert_eq!(vh.tcp_routes.len(), 2);
    let d = &vh.tcp_routes[0].destinations[0];
    assert_eq!(
        (d.destination.host.as_str(), d.destination.port, d.weight),
        (pg.as_str(), Some(5432), 1)
    );
    assert!(vh.tcp_routes[0].matches.is_empty());
    let on_service = &svc(&c, &pg).tcp_routes;
    assert_eq!(
        on_service[0].matches,
        [L4Match {
            port: Some(5432),
            ..L4Match::default()
        }]
    );
    let unreachable = with_code(&c, Code::IneffectiveMatch);
    assert_eq!(unreachable.len(), 1, "{unreachable:#?}");
    assert!(unreachable[0].message.contains("rules[0]"));
    let refused = with_code(&c, Code::IgnoredSetting);
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(
        refused[0]
            .message
            .ends_with("listener \"web\" does not accept TCPRoutes"),
        "{}",
        refused[0].message
    );
}

#[test]
fn tls_route_on_passthrough_listener() {
    let yaml = format!(
        "{L4_GATEWAY}{}{}",
        service("infra", "orders-db", 5432),
        r#"apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: orders, namespace: infra}
spec:
  parentRefs: [{name: edge}]
  hostnames: [orders.db.example.com, "*.example.com"]
  rules:
  - backendRefs: [{name: orders-db, port: 5432}]
"#
    );
    let c = run(&yaml);
    let gw = gateway(&c, "infra", "edge");
    let mut bound: Vec<(u16, &str)> = gw
        .virtual_hosts
        .iter()
        .map(|v| (v.port, v.hosts[0].as_str()))
        .collect();
    bound.sort();
    assert_eq!(
        bound,
        [(443, "*.db.example.com"), (443, "orders.db.example.com")],
        "only the TLS listener takes TLSRoutes"
    );
    let vh = vhost(gw, 443, "orders.db.example.com");
    assert_eq!(
        vh.tls_routes[0].matches,
        [TlsMatch {
            sni_hosts: vec!["orders.db.example.com".into()],
            ..TlsMatch::default()
        }]
    );
    let d = &vh.tls_routes[0].destinations[0].destination;
    assert_eq!(
        (d.host.as_str(), d.port),
        (format!("orders-db.infra.{H}").as_str(), Some(5432))
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}
