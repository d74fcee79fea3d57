//! Sidecar compilation: egress hosts into the model, what is not carried reported, and the
//! per-proxy view the model computes from it.

use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::{Code, Severity};
use crate::load::{LoadOptions, load_str};
use trellis_model::{Labels, SidecarScope, SourceRef};

fn run(text: &str) -> Compiled {
    let loaded = load_str("s.yaml", text, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    compile(&loaded.resources, &CompileOptions::default())
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i as u32 + 1)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MESH: &str = r#"apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: bookinfo
  annotations: {networking.istio.io/exportTo: "."}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  selector: {app: orders}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  exportTo: [shop]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - hosts: ["./*", "bookinfo/Reviews.Bookinfo.svc.cluster.local."]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage, namespace: bookinfo}
spec:
  workloadSelector:
    labels: {app: productpage}
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: ["./reviews.bookinfo.svc.cluster.local"]
  - hosts: ["*/*.example.com", "./reviews.bookinfo.svc.cluster.local"]
"#;

#[test]
fn egress_hosts_are_carried_normalised_in_input_order() {
    let c = run(MESH);
    let scope = |ns: &str, name: &str, selector: Option<Labels>, hosts: &[&str]| SidecarScope {
        origin: SourceRef::new("Sidecar", ns, name),
        namespace: ns.into(),
        selector,
        egress_hosts: hosts.iter().map(|h| h.to_string()).collect(),
    };
    assert_eq!(
        c.mesh.sidecars,
        [
            scope("istio-system", "default", None, &["./*", "istio-system/*"]),
            scope(
                "shop",
                "default",
                None,
                &["shop/*", "bookinfo/reviews.bookinfo.svc.cluster.local"]
            ),
            scope(
                "bookinfo",
                "productpage",
                Some(labels(&[("app", "productpage")])),
                &[
                    "bookinfo/reviews.bookinfo.svc.cluster.local",
                    "*/*.example.com"
                ]
            ),
        ],
        "root default keeps `.`; duplicates merge; hosts lowercased"
    );
    let port = c
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::IgnoredSetting)
        .map(|d| (d.line, d.severity))
        .collect::<Vec<_>>();
    assert_eq!(
        port,
        [(line_of(MESH, "port: {number: 9080"), Severity::Info)],
        "{:#?}",
        c.diagnostics
    );
}

#[test]
fn the_model_view_follows_the_sidecar_in_effect_and_export_to() {
    let c = run(MESH);
    let seen = |ns: &str, l: &[(&str, &str)]| -> Vec<String> {
        let mut v: Vec<String> = c
            .mesh
            .visible_to(ns, &labels(l))
            .map(|s| s.host.clone())
            .collect();
        v.sort();
        v
    };
    // productpage's own Sidecar; api.example.com is exported to shop only.
    assert_eq!(
        seen("bookinfo", &[("app", "productpage")]),
        ["reviews.bookinfo.svc.cluster.local"]
    );
    // Other bookinfo workloads get the root default, `.` meaning bookinfo.
    assert_eq!(
        seen("bookinfo", &[("app", "reviews")]),
        [
            "ratings.bookinfo.svc.cluster.local",
            "reviews.bookinfo.svc.cluster.local"
        ]
    );
    // shop's default: its own services and reviews (ratings is not exported to shop).
    assert_eq!(
        seen("shop", &[]),
        [
            "api.example.com",
            "orders.shop.svc.cluster.local",
            "reviews.bookinfo.svc.cluster.local"
        ]
    );
    // A namespace without Sidecar gets the root default: nothing of its own exists.
    assert!(seen("payments", &[]).is_empty());
}

#[test]
fn what_is_not_carried_is_reported() {
    let text = r#"apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: full, namespace: shop}
spec:
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  inboundConnectionPool:
    tcp: {maxConnections: 10}
  egress:
  - port: {number: 0, name: sock}
    bind: unix:///var/run/app.sock
    captureMode: NONE
    hosts: ["./*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: second-default, namespace: shop}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
"#;
    let c = run(text);
    let got: Vec<u32> = c
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::IgnoredSetting)
        .map(|d| d.line)
        .collect();
    let want: Vec<u32> = [
        "  - port: {number: 9080",
        "    tcp: {maxConnections",
        "  outboundTrafficPolicy: {mode: REGISTRY",
        "  - port: {number: 0",
        "    bind:",
        "    captureMode:",
        "metadata: {name: second-default",
    ]
    .iter()
    .map(|n| line_of(text, n))
    .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "{:#?}", c.diagnostics);
    // Without egress listeners a Sidecar imports everything, as Istio's default listener does.
    assert_eq!(c.mesh.sidecars[1].egress_hosts, ["*/*"]);
    assert!(
        c.mesh
            .sidecar_for("shop", &Labels::new())
            .is_some_and(|s| s.origin.name == "full")
    );
}
