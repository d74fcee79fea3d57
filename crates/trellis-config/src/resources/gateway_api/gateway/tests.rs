use super::*;
use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;

fn load(text: &str) -> Loaded {
    load_str("gw.yaml", text, &LoadOptions::default())
}

const FULL: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: trellis}
spec:
  controllerName: trellis.dev/gateway-controller
  description: Trellis gateways
  parametersRef: {group: "", kind: ConfigMap, name: gw-config, namespace: trellis-system}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: public, namespace: infra}
spec:
  gatewayClassName: trellis
  addresses:
  - {type: IPAddress, value: 192.0.2.10}
  - {type: Hostname, value: lb.example.com}
  infrastructure:
    labels: {team: edge}
    annotations: {example.com/owner: sre}
    parametersRef: {group: "", kind: ConfigMap, name: public-gw}
  listeners:
  - name: http
    protocol: HTTP
    port: 80
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {matchLabels: {shared-gateway: "true"}}
      kinds: [{kind: HTTPRoute}, {group: gateway.networking.k8s.io, kind: GRPCRoute}]
  - name: https
    hostname: "*.example.com"
    protocol: HTTPS
    port: 443
    tls:
      mode: Terminate
      certificateRefs: [{name: wildcard-cert}, {kind: Secret, name: other, namespace: certs}]
      options: {example.com/min-version: "1.3"}
  - name: tls-passthrough
    hostname: db.example.com
    protocol: TLS
    port: 8443
    tls: {mode: Passthrough}
  - name: tcp
    protocol: TCP
    port: 5432
    allowedRoutes: {namespaces: {from: All}}
  - name: mesh
    protocol: HBONE
    port: 15008
  tls:
    backend:
      clientCertificateRef: {name: gw-client}
    frontend:
      default:
        validation:
          caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
          mode: AllowInsecureFallback
      perPort:
      - port: 443
        tls: {validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: ca-443}]}}
"#;

#[test]
fn full_gateway_parses_into_the_right_values() {
    let l = load(FULL);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let Spec::GatewayClass(gc) = &l.resources[0].spec else {
        panic!("not a GatewayClass")
    };
    assert_eq!(gc.controller_name, "trellis.dev/gateway-controller");
    assert_eq!(
        gc.parameters_ref.as_ref().map(|p| p.kind.as_str()),
        Some("ConfigMap")
    );
    assert_eq!(l.resources[0].namespace, "");
    let Spec::K8sGateway(gw) = &l.resources[1].spec else {
        panic!("not a Gateway")
    };
    assert_eq!(gw.listeners.len(), 5);
    let http = &gw.listeners[0];
    assert_eq!(
        (http.port, http.protocol.as_str(), http.routes_from()),
        (Some(80), "HTTP", FromNamespaces::Selector)
    );
    assert_eq!(http.allowed_routes.as_ref().map(|a| a.kinds.len()), Some(2));
    let https = &gw.listeners[1];
    assert_eq!(https.tls_mode(), Some(TlsModeType::Terminate));
    let tls = https.tls.as_ref().expect("tls");
    assert_eq!(tls.certificate_refs[0].group_kind(), ("", "Secret"));
    assert_eq!(
        tls.options
            .get("example.com/min-version")
            .map(String::as_str),
        Some("1.3")
    );
    assert_eq!(gw.listeners[2].tls_mode(), Some(TlsModeType::Passthrough));
    assert_eq!(gw.listeners[3].routes_from(), FromNamespaces::All);
    assert_eq!(gw.listeners[4].routes_from(), FromNamespaces::Same);
    assert_eq!(gw.addresses[1].r#type.as_deref(), Some("Hostname"));
    let front = gw
        .tls
        .as_ref()
        .and_then(|t| t.frontend.as_ref())
        .expect("frontend");
    assert_eq!(
        front.default.validation.as_ref().and_then(|v| v.mode),
        Some(FrontendValidationMode::AllowInsecureFallback)
    );
    assert_eq!(front.per_port[0].port, Some(443));
}

#[test]
fn older_experimental_fields_load() {
    let text = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: Gateway
metadata: {name: old}
spec:
  gatewayClassName: istio
  backendTLS: {clientCertificateRef: {name: client}}
  listeners:
  - name: https
    protocol: HTTPS
    port: 443
    tls:
      certificateRefs: [{name: cert}]
      frontendValidation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]}
"#;
    let l = load(text);
    assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
    let Spec::K8sGateway(gw) = &l.resources[0].spec else {
        panic!("not a Gateway")
    };
    assert_eq!(
        gw.backend_tls
            .as_ref()
            .and_then(|b| b.client_certificate_ref.as_ref())
            .map(|r| r.name.as_str()),
        Some("client")
    );
    let fv = gw.listeners[0]
        .tls
        .as_ref()
        .and_then(|t| t.frontend_validation.as_ref())
        .expect("frontendValidation");
    assert_eq!(fv.ca_certificate_refs[0].name, "ca");
}

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
fn gateway_class_rules() {
    assert_one(
        &with("  controllerName: trellis.dev/gateway-controller\n", ""),
        "spec.controllerName",
    );
    assert_one(
        &with("trellis.dev/gateway-controller", "trellis"),
        "domain-prefixed path",
    );
    assert_one(&with("Trellis gateways", &"x".repeat(65)), "at most 64");
    assert_one(
        &with(
            "{group: \"\", kind: ConfigMap, name: gw-config,",
            "{kind: ConfigMap, name: gw-config,",
        ),
        "core API group",
    );
}

#[test]
fn listener_required_fields_and_ranges() {
    let d = with(
        "  - name: tcp\n    protocol: TCP\n    port: 5432\n",
        "  - protocol: TCP\n",
    );
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("spec.listeners[3].name")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("spec.listeners[3].port")),
        "{msgs:?}"
    );
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_one(&with("port: 5432", "port: 70000"), "between 1 and 65535");
    assert_one(
        &with("protocol: TCP", "protocol: tcp"),
        "is not one of HTTP, HTTPS, TLS, TCP, UDP",
    );
    assert!(with("protocol: TCP", "protocol: example.com/postgres").is_empty());
    assert_one(&with("name: tcp", "name: TCP_1"), "not a valid name");
}

#[test]
fn listener_tls_rules() {
    assert_one(
        &with(
            "      certificateRefs: [{name: wildcard-cert}, {kind: Secret, name: other, namespace: certs}]\n      options: {example.com/min-version: \"1.3\"}\n",
            "",
        ),
        "needs `certificateRefs`",
    );
    assert_one(
        &with("    tls: {mode: Passthrough}\n", ""),
        "protocol TLS needs `tls`",
    );
    assert_one(
        &with("      mode: Terminate\n", "      mode: Passthrough\n"),
        "must be Terminate for protocol HTTPS",
    );
    assert_one(
        &with(
            "    protocol: HTTP\n",
            "    protocol: HTTP\n    tls: {certificateRefs: [{name: c}]}\n",
        ),
        "tls must not be set for protocol HTTP",
    );
    assert_one(
        &with(
            "    protocol: TCP\n",
            "    protocol: TCP\n    hostname: db.example.com\n",
        ),
        "hostname must not be set",
    );
    assert_one(
        &with("\"*.example.com\"", "\"*.Example.com\""),
        "not a valid hostname",
    );
}

#[test]
fn listeners_are_distinct() {
    assert_one(
        &with("name: tcp", "name: http"),
        "already used by listeners[0]",
    );
    assert_one(
        &with(
            "name: tcp\n    protocol: TCP\n    port: 5432",
            "name: tcp\n    protocol: HTTP\n    port: 80",
        ),
        "same port, protocol and hostname",
    );
}

#[test]
fn allowed_routes_and_addresses() {
    assert_one(
        &with(
            "        selector: {matchLabels: {shared-gateway: \"true\"}}\n",
            "",
        ),
        "needs a `selector`",
    );
    assert_one(
        &with("{namespaces: {from: All}}", "{namespaces: {from: None}}"),
        "cannot use from: None",
    );
    assert_one(
        &with("{kind: HTTPRoute}", "{group: gateway.networking.k8s.io}"),
        "kind",
    );
    assert_one(
        &with("value: 192.0.2.10}", "value: 192.0.2.300}"),
        "not an IP address",
    );
    assert_one(
        &with("value: lb.example.com}", "value: LB_example}"),
        "not a valid hostname",
    );
    assert_one(
        &with(
            "- {type: Hostname, value: lb.example.com}",
            "- {value: 192.0.2.10}",
        ),
        "already listed",
    );
}

#[test]
fn gateway_tls_rules() {
    assert_one(
        &with("      - port: 443\n", "      - port: 0\n"),
        "between 1 and 65535",
    );
    let dup = "      perPort:\n      - port: 443\n        tls: {}\n      - port: 443\n";
    assert_one(
        &with("      perPort:\n      - port: 443\n", dup),
        "must be unique",
    );
    assert_one(
        &with(
            "caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]",
            "caCertificateRefs: []",
        ),
        "at least one",
    );
    assert_one(
        &with(
            "clientCertificateRef: {name: gw-client}",
            "clientCertificateRef: {kind: Secret}",
        ),
        "clientCertificateRef.name",
    );
}

#[test]
fn missing_gateway_class_and_listeners() {
    let l = load(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n",
    );
    let msgs: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("gatewayClassName")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("`listeners` needs at least one entry")),
        "{msgs:?}"
    );
    assert_eq!(msgs.len(), 2);
}
