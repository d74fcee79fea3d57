use crate::compile::{CompileOptions, Compiled, compile};
use crate::diag::{Code, Diagnostic};
use crate::load::{LoadOptions, load_str};
use trellis_model::{Gateway, GatewayHost, Protocol, ServerTlsMode};

fn run(yaml: &str) -> Compiled {
    let loaded = load_str("t.yaml", yaml, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    compile(&loaded.resources, &CompileOptions::default())
}

fn gateway<'a>(c: &'a Compiled, ns: &str, name: &str, api: bool) -> &'a Gateway {
    c.mesh
        .gateways
        .iter()
        .find(|g| g.namespace == ns && g.name == name && g.class.is_some() == api)
        .unwrap_or_else(|| panic!("no gateway {ns}/{name} in {:#?}", c.mesh.gateways))
}

fn with_code(c: &Compiled, code: Code) -> Vec<&Diagnostic> {
    c.diagnostics.iter().filter(|d| d.code == code).collect()
}

const ISTIO: &str = r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: ingress
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com", "./*.internal.example.com"]
    tls:
      httpsRedirect: true
  - port: {number: 443, name: https, protocol: HTTPS}
    name: main-https
    hosts: ["prod/api.example.com"]
    tls:
      mode: SIMPLE
      credentialName: bookinfo-cert
      minProtocolVersion: TLSV1_2
      cipherSuites: ["ECDHE-RSA-AES128-GCM-SHA256"]
  - port: {number: 15443, name: tls, protocol: TLS}
    hosts: ["*.local"]
    tls:
      mode: AUTO_PASSTHROUGH
  - port: {number: 8443, name: mtls, protocol: HTTPS}
    bind: 10.0.0.5
    hosts: ["*"]
    tls:
      mode: MUTUAL
      serverCertificate: /etc/certs/server.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
  - port: {number: 5353, name: udp-dns, protocol: UDP}
    hosts: ["*"]
"#;

#[test]
fn istio_gateway_servers() {
    let c = run(ISTIO);
    let gw = gateway(&c, "ingress", "bookinfo-gateway", false);
    assert_eq!(
        gw.selector.get("istio").map(String::as_str),
        Some("ingressgateway")
    );
    assert_eq!(gw.origin.kind, "Gateway");
    let ports: Vec<(u16, Protocol, &str)> = gw
        .servers
        .iter()
        .map(|s| (s.port, s.protocol, s.name.as_str()))
        .collect();
    assert_eq!(
        ports,
        [
            (80, Protocol::Http, "http"),
            (443, Protocol::Https, "main-https"),
            (15443, Protocol::Tls, "tls"),
            (8443, Protocol::Https, "mtls"),
        ],
        "the UDP server is skipped"
    );
    let http = &gw.servers[0];
    assert_eq!(
        http.hosts,
        [
            GatewayHost {
                namespace: None,
                host: "bookinfo.example.com".into()
            },
            GatewayHost {
                namespace: Some("ingress".into()),
                host: "*.internal.example.com".into()
            },
        ]
    );
    assert!(http.tls.as_ref().is_some_and(|t| t.https_redirect));
    let https = gw.servers[1].tls.clone().unwrap_or_default();
    assert_eq!(gw.servers[1].hosts[0].namespace.as_deref(), Some("prod"));
    assert_eq!(
        (https.mode, https.credential_names),
        (ServerTlsMode::Simple, vec!["bookinfo-cert".to_owned()])
    );
    assert_eq!(
        gw.servers[2].tls.as_ref().map(|t| t.mode),
        Some(ServerTlsMode::AutoPassthrough)
    );
    let mtls = gw.servers[3].tls.clone().unwrap_or_default();
    assert_eq!(mtls.mode, ServerTlsMode::Mutual);
    assert_eq!(
        mtls.server_certificate.as_deref(),
        Some("/etc/certs/server.pem")
    );
    assert_eq!(mtls.private_key.as_deref(), Some("/etc/certs/key.pem"));
    assert_eq!(mtls.ca_certificates.as_deref(), Some("/etc/certs/ca.pem"));

    let ignored: Vec<&str> = with_code(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(ignored.len(), 4, "{ignored:#?}");
    assert!(ignored.iter().any(|m| m.starts_with("bind")));
    assert!(ignored.iter().any(|m| m.contains("minProtocolVersion")));
    assert!(ignored.iter().any(|m| m.contains("cipherSuites")));
    assert!(ignored.iter().any(|m| m.contains("\"UDP\"")));
}

#[test]
fn istio_tls_certificate_pairs() {
    let c = run(r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls:
      mode: SIMPLE
      tlsCertificates:
      - {serverCertificate: /rsa.pem, privateKey: /rsa.key}
      - {serverCertificate: /ec.pem, privateKey: /ec.key}
"#);
    let gw = gateway(&c, "default", "gw", false);
    assert!(
        gw.selector.is_empty(),
        "no selector selects every gateway proxy"
    );
    let tls = gw.servers[0].tls.clone().unwrap_or_default();
    assert_eq!(
        (
            tls.server_certificate.as_deref(),
            tls.private_key.as_deref()
        ),
        (Some("/rsa.pem"), Some("/rsa.key"))
    );
    let ignored = with_code(&c, Code::IgnoredSetting);
    assert_eq!(ignored.len(), 1, "{ignored:#?}");
    assert!(ignored[0].message.contains("tlsCertificates"));
}

const K8S: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ingress-gateway
  namespace: istio-system
spec:
  gatewayClassName: istio
  addresses:
  - value: 10.0.0.1
  listeners:
  - name: http
    protocol: HTTP
    port: 80
  - name: https
    protocol: HTTPS
    port: 443
    hostname: "*.example.com"
    allowedRoutes:
      namespaces: {from: All}
    tls:
      mode: Terminate
      certificateRefs:
      - name: tls-secret
      - name: shared-cert
        namespace: certs
      - name: other-cert
        namespace: elsewhere
  - name: passthrough
    protocol: TLS
    port: 8443
    hostname: db.example.com
    tls:
      mode: Passthrough
  - name: dns
    protocol: UDP
    port: 53
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-may-use-certs, namespace: certs}
spec:
  from:
  - {group: gateway.networking.k8s.io, kind: Gateway, namespace: istio-system}
  to:
  - {group: "", kind: Secret}
"#;

#[test]
fn gateway_api_gateway_listeners() {
    let c = run(K8S);
    let gw = gateway(&c, "istio-system", "ingress-gateway", true);
    assert_eq!(
        gw.class.as_deref(),
        Some("istio"),
        "compiled although GatewayClass istio is not in the input"
    );
    assert_eq!(
        gw.selector
            .get("gateway.networking.k8s.io/gateway-name")
            .map(String::as_str),
        Some("ingress-gateway")
    );
    let servers: Vec<(&str, u16, Protocol)> = gw
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.port, s.protocol))
        .collect();
    assert_eq!(
        servers,
        [
            ("http", 80, Protocol::Http),
            ("https", 443, Protocol::Https),
            ("passthrough", 8443, Protocol::Tls)
        ]
    );
    // allowedRoutes defaults to Same: only routes from the gateway's namespace bind.
    assert_eq!(
        gw.servers[0].hosts,
        [GatewayHost {
            namespace: Some("istio-system".into()),
            host: "*".into()
        }]
    );
    assert_eq!(gw.servers[0].tls, None);
    assert_eq!(
        gw.servers[1].hosts,
        [GatewayHost {
            namespace: None,
            host: "*.example.com".into()
        }]
    );
    let tls = gw.servers[1].tls.clone().unwrap_or_default();
    assert_eq!(tls.mode, ServerTlsMode::Simple);
    assert_eq!(tls.credential_names, ["tls-secret", "certs/shared-cert"]);
    assert_eq!(
        gw.servers[2].tls.as_ref().map(|t| t.mode),
        Some(ServerTlsMode::Passthrough)
    );
    assert_eq!(gw.servers[2].hosts[0].host, "db.example.com");

    let missing = with_code(&c, Code::ReferencedResourceNotFound);
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert!(
        missing[0]
            .message
            .contains("requires a ReferenceGrant in namespace elsewhere")
    );
    assert_eq!(missing[0].line, 26, "points at the certificateRef");
    let ignored: Vec<&str> = with_code(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(ignored.iter().any(|m| m.starts_with("addresses")));
    assert!(ignored.iter().any(|m| m.contains("\"UDP\"")));
}

#[test]
fn istio_and_gateway_api_gateways_coexist() {
    let c = run(&format!("{ISTIO}---\n{K8S}"));
    assert_eq!(c.mesh.gateways.len(), 2);
    assert!(c.mesh.gateways.iter().all(|g| g.virtual_hosts.is_empty()));
    let names: Vec<(&str, bool)> = c
        .mesh
        .gateways
        .iter()
        .map(|g| (g.name.as_str(), g.class.is_some()))
        .collect();
    assert_eq!(
        names,
        [("bookinfo-gateway", false), ("ingress-gateway", true)],
        "sorted by namespace, name"
    );
}
