//! Tests of binding VirtualServices to gateways: seed 004-16 through the whole compiler and with
//! a hand-made gateway, namespace-restricted and wildcard server hosts, `match.gateways`.

use super::tests::{forward, line_of, run, service, svc, with_code};
use crate::compile::{CompileOptions, Ctx, discovery};
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use std::time::Duration;
use trellis_model::{
    Destination, Gateway, GatewayHost, GatewayServer, HttpMatch, Protocol, RetryOn, StringMatch,
    WeightedDestination,
};

const SEED_004_16: &str = "apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: ecommerce-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - \"api.example.com\"

---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: order-service
spec:
  hosts:
  - \"api.example.com\"
  gateways:
  - ecommerce-gateway
  http:
  - match:
    - uri:
        prefix: /orders
    route:
    - destination:
        host: order-service
        port:
          number: 8080
    timeout: 3s
    retries:
      attempts: 3
      perTryTimeout: 1s
";

/// Check the virtual host seed 004-16 produces on `gw`.
fn check_004_16(gw: &Gateway) {
    assert_eq!(gw.virtual_hosts.len(), 1, "{:#?}", gw.virtual_hosts);
    let vh = &gw.virtual_hosts[0];
    assert_eq!(
        (vh.port, vh.hosts.as_slice()),
        (80, ["api.example.com".to_string()].as_slice())
    );
    let r = &vh.http_routes[0];
    assert_eq!(
        r.matches,
        [HttpMatch {
            uri: Some(StringMatch::Prefix("/orders".into())),
            ..HttpMatch::default()
        }]
    );
    let to = Destination {
        host: "order-service.default.svc.cluster.local".into(),
        subset: None,
        port: Some(8080),
    };
    assert_eq!(forward(&r.action), [WeightedDestination::new(to, 100)]);
    assert_eq!(r.timeout, Some(Duration::from_secs(3)));
    let retry = r.retry.clone().expect("retries");
    assert_eq!(
        (retry.attempts, retry.per_try_timeout),
        (3, Some(Duration::from_secs(1)))
    );
    assert_eq!(retry.retry_on, RetryOn::default());
}

/// Seed 004-16 through the whole compiler (the gateways pass builds the gateway): the routes
/// become a virtual host of the gateway, not mesh routes.
#[test]
fn seed_004_16_gateway_bound() {
    let c = run(&(service("order-service", "default") + SEED_004_16));
    let gw = c
        .mesh
        .gateways
        .iter()
        .find(|g| g.name == "ecommerce-gateway")
        .expect("gateway compiled");
    check_004_16(gw);
    assert!(
        svc(&c, "order-service.default.svc.cluster.local")
            .http_routes
            .is_empty()
    );
    assert!(
        with_code(&c.diagnostics, Code::IgnoredSetting).is_empty(),
        "{:#?}",
        c.diagnostics
    );
}

/// Run discovery, push `gateways` (as the gateways pass would) and run this pass alone.
fn with_gateways(text: &str, gateways: Vec<Gateway>) -> (Vec<Gateway>, Vec<Diagnostic>) {
    let loaded = load_str("t.yaml", text, &LoadOptions::default());
    assert!(
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error),
        "{:#?}",
        loaded.diagnostics
    );
    let opts = CompileOptions::default();
    let mut cx = Ctx::new(&loaded.resources, &opts);
    discovery::compile(&mut cx);
    cx.mesh.gateways = gateways;
    super::compile(&mut cx);
    (cx.mesh.gateways, cx.report.into_diags())
}

fn gateway(ns: &str, name: &str, servers: &[(u16, &[&str])]) -> Gateway {
    Gateway {
        name: name.into(),
        namespace: ns.into(),
        servers: servers
            .iter()
            .map(|(port, hosts)| GatewayServer {
                port: *port,
                protocol: Protocol::Http,
                hosts: hosts.iter().map(|h| GatewayHost::parse(h, ns)).collect(),
                ..GatewayServer::default()
            })
            .collect(),
        ..Gateway::default()
    }
}

/// Seed 004-16 with a hand-made gateway, independent of the gateways pass.
#[test]
fn seed_004_16_hand_made_gateway() {
    let vs = SEED_004_16.split("---\n").nth(1).expect("two documents");
    let (gws, diags) = with_gateways(
        vs,
        vec![gateway(
            "default",
            "ecommerce-gateway",
            &[(80, &["api.example.com"])],
        )],
    );
    check_004_16(&gws[0]);
    assert!(diags.is_empty(), "{diags:#?}");
}

/// Gateway binding: `ns/name` references, server hosts narrowed by namespace and wildcard, one
/// virtual host per admitting port, `match.gateways` filtering, and a gateway admitting nothing.
#[test]
fn gateway_binding() {
    let text = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: ['*.example.com', other.org]
  gateways: [ingress/public, mesh, ingress/private]
  http:
  - match:
    - {uri: {prefix: /admin}, gateways: [ingress/private]}
    route: [{destination: {host: admin}}]
  - match:
    - {uri: {prefix: /public}, gateways: [ingress/public]}
    - {uri: {prefix: /both}}
    route: [{destination: {host: web}}]
";
    let public = gateway(
        "ingress",
        "public",
        &[
            (80, &["shop/www.example.com", "prod/api.example.com"]),
            (443, &["*"]),
            (8080, &["*.org"]),
        ],
    );
    let private = gateway("ingress", "private", &[(80, &["ingress/*"])]);
    let (gws, diags) = with_gateways(text, vec![public, private]);
    let vhs: Vec<(u16, Vec<&str>)> = gws[0]
        .virtual_hosts
        .iter()
        .map(|v| (v.port, v.hosts.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        vhs,
        [
            (80, vec!["www.example.com"]),
            (443, vec!["*.example.com", "other.org"]),
            (8080, vec!["other.org"])
        ],
        "namespace-restricted hosts admit only their namespace; wildcards narrow to the more specific host"
    );
    let routes = &gws[0].virtual_hosts[0].http_routes;
    assert_eq!(
        routes.len(),
        1,
        "the /admin rule is only for ingress/private"
    );
    let uris: Vec<_> = routes[0].matches.iter().map(|m| m.uri.clone()).collect();
    assert_eq!(
        uris,
        [
            Some(StringMatch::Prefix("/public".into())),
            Some(StringMatch::Prefix("/both".into()))
        ]
    );
    assert_eq!(routes[0].matches[0].gateways, ["ingress/public"]);
    assert!(gws[1].virtual_hosts.is_empty());
    let ignored = with_code(&diags, Code::IgnoredSetting);
    let line = line_of(text, "gateways: [ingress/public");
    assert!(
        ignored
            .iter()
            .any(|d| d.line == line && d.message.contains("no server of gateway ingress/private")),
        "{ignored:#?}"
    );
    // The mesh side: no service has these hosts, so the pass says the mesh routes do nothing.
    assert!(
        ignored.iter().any(|d| d
            .message
            .contains("no service in the input has host *.example.com")),
        "{ignored:#?}"
    );
}
