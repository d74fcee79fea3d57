use super::*;
use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
}

fn sidecar(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: prod-us1\nspec:\n{spec}"
    )
}

fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect()
}

fn warnings(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.message.clone())
        .collect()
}

fn assert_error(spec: &str, needle: &str) {
    let l = load(&sidecar(spec));
    assert!(
        errors(&l.diagnostics).iter().any(|m| m.contains(needle)),
        "expected {needle:?} in {:#?}",
        l.diagnostics
    );
}

fn assert_clean(spec: &str) {
    let l = load(&sidecar(spec));
    assert!(l.diagnostics.is_empty(), "{spec}\n{:#?}", l.diagnostics);
}

/// Examples from Istio's Sidecar reference.
const EXAMPLES: &[&str] = &[
    r#"  egress:
  - hosts:
    - "prod-us1/*"
    - "prod-apis/*"
    - "istio-system/*"
"#,
    r#"  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: somename
    defaultEndpoint: unix:///var/run/someuds.sock
  egress:
  - port:
      number: 9080
      protocol: HTTP
      name: egresshttp
    hosts:
    - "prod-us1/*"
  - hosts:
    - "istio-system/*"
"#,
    r#"  workloadSelector:
    labels:
      app: productpage
  ingress:
  - bind: 172.16.1.32
    port:
      number: 80 # binds to 172.16.1.32:80
      protocol: HTTP
      name: somename
    defaultEndpoint: 127.0.0.1:8080
    captureMode: NONE
  egress:
  - bind: 127.0.0.1
    port:
      number: 3306
      protocol: MYSQL
      name: egressmysql
    captureMode: NONE
    hosts:
    - "*/mysql.foo.com"
  - captureMode: IPTABLES
    hosts:
    - "*/*"
"#,
    r#"  workloadSelector:
    labels:
      app: ratings
  ingress:
  - port:
      number: 80
      protocol: HTTPS
      name: somename
    defaultEndpoint: 127.0.0.1:8080
    tls:
      mode: SIMPLE
      privateKey: "/etc/istio/certs/privatekey.pem"
      serverCertificate: "/etc/istio/certs/servercert.pem"
"#,
    r#"  workloadSelector:
    labels:
      app: ratings
  inboundConnectionPool:
    http:
      http1MaxPendingRequests: 1024
      http2MaxRequests: 1024
      maxRequestsPerConnection: 1024
      maxRetries: 100
  ingress:
  - port:
      number: 80
      protocol: HTTP
      name: somename
    connectionPool:
      http:
        http1MaxPendingRequests: 1024
      tcp:
        maxConnections: 100
"#,
    r#"  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: foo.bar.svc.cluster.local
      subset: v1
      port:
        number: 443
"#,
];

#[test]
fn reference_examples_are_valid() {
    for spec in EXAMPLES {
        assert_clean(spec);
    }
}

#[test]
fn example_values_are_read() {
    let l = load(&sidecar(EXAMPLES[2]));
    let Some(Spec::Sidecar(sc)) = l.resources.first().map(|r| &r.spec) else {
        panic!("no sidecar: {:#?}", l.diagnostics)
    };
    let sel = sc.workload_selector.as_ref().expect("selector");
    let mut labels = Labels::new();
    labels.insert("app".into(), "productpage".into());
    assert!(sel.matches(&labels));
    let ing = &sc.ingress[0];
    assert_eq!(ing.bind.as_deref(), Some("172.16.1.32"));
    assert_eq!(ing.capture_mode, CaptureMode::None);
    assert_eq!(ing.default_endpoint.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(ing.port.as_ref().map(|p| p.number), Some(80));
    let eg = &sc.egress[0];
    assert_eq!(
        eg.port.as_ref().and_then(SidecarPort::protocol),
        Some(PortProtocol::Mysql)
    );
    assert_eq!(eg.hosts, vec!["*/mysql.foo.com"]);
    assert_eq!(sc.egress[1].capture_mode, CaptureMode::Iptables);
    assert!(sc.egress[1].port.is_none());

    let l = load(&sidecar(EXAMPLES[5]));
    let Some(Spec::Sidecar(sc)) = l.resources.first().map(|r| &r.spec) else {
        panic!("no sidecar")
    };
    let policy = sc.outbound_traffic_policy.as_ref().expect("policy");
    assert_eq!(policy.mode, OutboundTrafficPolicyMode::AllowAny);
    let proxy = policy.egress_proxy.as_ref().expect("egressProxy");
    assert_eq!(
        (proxy.host.as_str(), proxy.subset.as_deref()),
        ("foo.bar.svc.cluster.local", Some("v1"))
    );
}

#[test]
fn empty_sidecar_is_an_error() {
    assert_error(
        "  workloadSelector:\n    labels: {app: a}\n",
        "empty Sidecar",
    );
}

#[test]
fn selector_rules() {
    assert_error(
        "  workloadSelector:\n    labels: {app: 'rev*'}\n  egress:\n  - hosts: ['./*']\n",
        "wildcards",
    );
    let l = load(&sidecar(
        "  workloadSelector: {}\n  egress:\n  - hosts: ['./*']\n",
    ));
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("every workload")),
        "{:#?}",
        l.diagnostics
    );
}

#[test]
fn ingress_rules() {
    assert_error(
        "  ingress:\n  - defaultEndpoint: 127.0.0.1:8080\n",
        "`spec.ingress[0].port`",
    );
    assert_error(
        "  ingress:\n  - port: {number: 0, protocol: HTTP}\n",
        "`spec.ingress[0].port.number`",
    );
    assert_error(
        "  ingress:\n  - port: {number: 80, protocol: HTTP, name: 'a b'}\n",
        "invalid port name",
    );
    assert_error(
        "  ingress:\n  - port: {number: 80, protocol: SMTP}\n",
        "unsupported protocol",
    );
    assert_error(
        "  ingress:\n  - port: {number: 80, targetPort: 8080}\n",
        "targetPort",
    );
    assert_error(
        "  ingress:\n  - port: {number: 80}\n    bind: localhost\n",
        "must be an IP address",
    );
    assert_error(
        "  ingress:\n  - port: {number: 80}\n  - port: {number: 80}\n",
        "used by another ingress listener",
    );
    for ep in [
        "10.0.0.1:8080",
        "127.0.0.1",
        "127.0.0.1:http",
        "unix://relative",
    ] {
        assert_error(
            &format!("  ingress:\n  - port: {{number: 80}}\n    defaultEndpoint: '{ep}'\n"),
            "defaultEndpoint",
        );
    }
    for ep in ["0.0.0.0:8080", "[::1]:8080", "[::]:9090", ":8080"] {
        assert_clean(&format!(
            "  ingress:\n  - port: {{number: 80}}\n    defaultEndpoint: '{ep}'\n"
        ));
    }
}

#[test]
fn ingress_tls_rules() {
    let listener = |proto: &str, tls: &str| {
        format!("  ingress:\n  - port: {{number: 8443, protocol: {proto}}}\n    tls: {tls}\n")
    };
    let files = "serverCertificate: /c.pem, privateKey: /k.pem";
    assert_error(
        &listener("HTTP", &format!("{{mode: SIMPLE, {files}}}")),
        "need port protocol HTTPS or TLS",
    );
    assert_error(
        &listener("HTTPS", "{mode: SIMPLE, credentialName: c}"),
        "`credentialName` is not supported",
    );
    assert_error(
        &listener(
            "HTTPS",
            &format!("{{mode: SIMPLE, {files}, subjectAltNames: [a]}}"),
        ),
        "`subjectAltNames`",
    );
    assert_error(
        &listener("HTTPS", "{mode: ISTIO_MUTUAL}"),
        "mode ISTIO_MUTUAL cannot be used",
    );
    assert_error(
        &listener(
            "HTTPS",
            "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}",
        ),
        "client CA bundle",
    );
    assert_clean(&listener("TLS", &format!("{{mode: SIMPLE, {files}}}")));
}

#[test]
fn http_pool_on_tcp_port_warns() {
    let l = load(&sidecar(
        "  ingress:\n  - port: {number: 5432, protocol: TCP}\n    connectionPool:\n      http: {maxRetries: 3}\n",
    ));
    assert!(errors(&l.diagnostics).is_empty(), "{:#?}", l.diagnostics);
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("only the TCP connection pool")),
        "{:#?}",
        l.diagnostics
    );
}

#[test]
fn egress_rules() {
    assert_error("  egress:\n  - port: {number: 80}\n", "at least one host");
    assert_error(
        "  egress:\n  - hosts: [foo.example.com]\n",
        "namespace/dnsName",
    );
    assert_error("  egress:\n  - hosts: ['ns/bookinfo']\n", "short name");
    assert_error(
        "  egress:\n  - hosts: ['Bad_NS/*']\n",
        "namespace \"Bad_NS\"",
    );
    assert_error(
        "  egress:\n  - hosts: ['./*']\n  - port: {number: 80}\n    hosts: ['./*']\n",
        "must be the last one",
    );
    assert_error(
        "  egress:\n  - port: {number: 80}\n    hosts: ['./*']\n  - port: {number: 80}\n    hosts: ['./*']\n",
        "used by another egress",
    );
    assert_error(
        "  egress:\n  - port: {number: 0}\n    hosts: ['./*']\n",
        "unix:// bind",
    );
    assert_error(
        "  egress:\n  - port: {number: 0}\n    bind: unix:///var/run/a.sock\n    captureMode: IPTABLES\n    hosts: ['./*']\n",
        "captureMode DEFAULT or NONE",
    );
    assert_clean(
        "  egress:\n  - port: {number: 0, protocol: HTTP}\n    bind: unix:///var/run/a.sock\n    captureMode: NONE\n    hosts: ['./*']\n",
    );
    assert_clean("  egress:\n  - hosts: ['~/*', '*/api.example.com', 'istio-system/*.internal']\n");
}

#[test]
fn egress_duplicate_hosts_warn() {
    let l = load(&sidecar(
        "  egress:\n  - hosts: ['ns1/*', 'ns1/a.example.com', '*/*']\n",
    ));
    let w = warnings(&l.diagnostics);
    assert!(w.iter().any(|m| m.contains("already covered")), "{w:#?}");
    assert!(
        w.iter().any(|m| m.contains("selects every service")),
        "{w:#?}"
    );
    assert!(errors(&l.diagnostics).is_empty());
}

#[test]
fn outbound_policy_rules() {
    let proxy = "    egressProxy:\n      host: egress.example.com\n      port: {number: 3128}\n";
    assert_error(
        &format!("  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n{proxy}"),
        "only be set with mode ALLOW_ANY",
    );
    assert_error(
        "  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n    egressProxy: {host: egress.example.com}\n",
        "egressProxy.port",
    );
    assert_error(
        "  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n    egressProxy: {host: '*.example.com', port: {number: 3128}}\n",
        "without wildcards",
    );
    assert_clean(&format!(
        "  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n{proxy}"
    ));
    assert_clean("  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n");
    let l = load(&sidecar(
        "  outboundTrafficPolicy:\n    mode: ALLOW_ANY_DYNAMIC_DNS\n",
    ));
    assert!(l.resources.is_empty());
    assert_eq!(l.diagnostics.len(), 1, "{:#?}", l.diagnostics);
    assert_eq!(l.diagnostics[0].line, 8);
}
