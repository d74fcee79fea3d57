use super::*;
use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use crate::resources::Spec;

fn load(yaml: &str) -> (Option<Gateway>, Vec<Diagnostic>) {
    let loaded = load_str("test.yaml", yaml, &LoadOptions::default());
    let gw = loaded.resources.into_iter().find_map(|r| match r.spec {
        Spec::IstioGateway(g) => Some(*g),
        _ => None,
    });
    (gw, loaded.diagnostics)
}

fn gateway(servers: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector:\n    istio: ingressgateway\n  servers:\n{servers}"
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

fn assert_error(servers: &str, needle: &str) {
    let (_, d) = load(&gateway(servers));
    assert!(
        errors(&d).iter().any(|m| m.contains(needle)),
        "expected {needle:?} in {d:#?}"
    );
}

/// The "my-gateway" example from Istio's Gateway reference.
const REFERENCE: &str = r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: my-gateway
  namespace: some-config-namespace
spec:
  selector:
    app: my-gateway-controller
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - uk.bookinfo.com
    - eu.bookinfo.com
    tls:
      httpsRedirect: true # sends 301 redirect for http requests
  - port:
      number: 443
      name: https-443
      protocol: HTTPS
    hosts:
    - uk.bookinfo.com
    - eu.bookinfo.com
    tls:
      mode: SIMPLE # enables HTTPS on this port
      serverCertificate: /etc/certs/servercert.pem
      privateKey: /etc/certs/privatekey.pem
  - port:
      number: 9443
      name: https-9443
      protocol: HTTPS
    hosts:
    - "bookinfo-namespace/*.bookinfo.com"
    tls:
      mode: SIMPLE # enables HTTPS on this port
      credentialName: bookinfo-secret # fetches certs from Kubernetes secret
  - port:
      number: 9080
      name: http-wildcard
      protocol: HTTP
    hosts:
    - "*"
  - port:
      number: 2379 # to expose internal service via external port 2379
      name: mongo
      protocol: MONGO
    hosts:
    - "*"
  - port:
      number: 8443
      name: https-mutual
      protocol: HTTPS
    hosts:
    - "./reviews.example.com"
    tls:
      mode: MUTUAL
      credentialNames: [reviews-rsa, reviews-ecdsa]
      minProtocolVersion: TLSV1_2
      cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]
"#;

#[test]
fn reference_example_parses_and_is_valid() {
    let (gw, d) = load(REFERENCE);
    assert!(d.is_empty(), "{d:#?}");
    let gw = gw.expect("gateway loads");
    assert_eq!(
        gw.selector.get("app").map(String::as_str),
        Some("my-gateway-controller")
    );
    assert_eq!(gw.servers.len(), 6);
    let http = &gw.servers[0];
    assert_eq!(
        http.port.as_ref().map(|p| (p.number, p.name.as_str())),
        Some((80, "http"))
    );
    assert_eq!(
        http.port.as_ref().and_then(Port::protocol),
        Some(PortProtocol::Http)
    );
    let tls = http.tls.as_ref().expect("tls");
    assert!(tls.https_redirect);
    assert_eq!(tls.mode, ServerTlsMode::Passthrough);
    let https = gw.servers[1].tls.as_ref().expect("tls");
    assert_eq!(https.mode, ServerTlsMode::Simple);
    assert_eq!(
        https.private_key.as_deref(),
        Some("/etc/certs/privatekey.pem")
    );
    assert_eq!(
        gw.servers[2].hosts,
        vec!["bookinfo-namespace/*.bookinfo.com"]
    );
    assert_eq!(
        gw.servers[2]
            .tls
            .as_ref()
            .and_then(|t| t.credential_name.as_deref()),
        Some("bookinfo-secret")
    );
    let mutual = gw.servers[5].tls.as_ref().expect("tls");
    assert_eq!(mutual.mode, ServerTlsMode::Mutual);
    assert_eq!(mutual.credential_names.len(), 2);
    assert_eq!(mutual.min_protocol_version, ServerTlsProtocol::TlsV1_2);
    assert_eq!(mutual.max_protocol_version, ServerTlsProtocol::TlsAuto);
}

#[test]
fn servers_are_required() {
    let (_, d) = load(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector:\n    istio: ingressgateway\n",
    );
    assert!(
        errors(&d).iter().any(|m| m.contains("at least one server")),
        "{d:#?}"
    );
}

#[test]
fn port_fields_are_checked() {
    assert_error(
        "  - hosts: ['*']\n",
        "missing required field `spec.servers[0].port`",
    );
    assert_error(
        "  - port: {number: 80, name: http}\n    hosts: ['*']\n",
        "`spec.servers[0].port.protocol`",
    );
    assert_error(
        "  - port: {number: 80, name: http, protocol: SPDY}\n    hosts: ['*']\n",
        "unsupported protocol \"SPDY\"",
    );
    assert_error(
        "  - port: {number: 70000, name: http, protocol: HTTP}\n    hosts: ['*']\n",
        "70000",
    );
    assert_error(
        "  - port: {name: http, protocol: HTTP}\n    hosts: ['*']\n",
        "`spec.servers[0].port.number`",
    );
    assert_error(
        "  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n",
        "`spec.servers[0].port.name`",
    );
    assert_error(
        "  - port: {number: 80, name: h, protocol: HTTP, targetPort: 8080}\n    hosts: ['*']\n",
        "targetPort",
    );
    // Lower-case and gRPC-Web protocols are accepted as Istio accepts them.
    let (_, d) = load(&gateway(
        "  - port: {number: 80, name: h, protocol: grpc-web}\n    hosts: ['*']\n",
    ));
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn port_error_points_at_the_line() {
    let (_, d) = load(&gateway(
        "  - port:\n      number: 0\n      name: http\n      protocol: HTTP\n    hosts: ['*']\n",
    ));
    let e = d
        .iter()
        .find(|d| d.message.contains("port.number"))
        .expect("number error");
    assert_eq!(e.line, 10);
}

#[test]
fn hosts_are_required_and_checked() {
    assert_error(
        "  - port: {number: 80, name: http, protocol: HTTP}\n",
        "at least one host",
    );
    let bad = [
        ("bookinfo", "short name"),
        ("*foo.example.com", "partial wildcard"),
        ("Bad_NS/foo.example.com", "namespace \"Bad_NS\""),
        ("ns/", "may be empty"),
        ("foo..example.com", "invalid"),
    ];
    for (host, needle) in bad {
        assert_error(
            &format!(
                "  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: [\"{host}\"]\n"
            ),
            needle,
        );
    }
    let good = "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*.example.com', '10.0.0.1', 'ns/*', '*/a.b.c']\n";
    let (_, d) = load(&gateway(good));
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn bind_is_checked() {
    assert_error(
        "  - port: {number: 80, name: h, protocol: HTTP}\n    bind: localhost\n    hosts: ['*']\n",
        "bind",
    );
    assert_error(
        "  - port: {number: 80, name: h, protocol: HTTP}\n    bind: unix:///var/run/gw.sock\n    hosts: ['*']\n",
        "must be 0",
    );
    let uds = "  - port: {number: 0, name: h, protocol: HTTP}\n    bind: unix:///var/run/gw.sock\n    hosts: ['*']\n";
    let (_, d) = load(&gateway(uds));
    assert!(d.is_empty(), "{d:#?}");
    let ip =
        "  - port: {number: 80, name: h, protocol: HTTP}\n    bind: 0.0.0.0\n    hosts: ['*']\n";
    assert!(load(&gateway(ip)).1.is_empty());
}

#[test]
fn port_names_are_unique() {
    let servers = "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['a.example.com']\n  - port: {number: 8080, name: http, protocol: HTTP}\n    hosts: ['b.example.com']\n";
    let (_, d) = load(&gateway(servers));
    let dup: Vec<_> = d
        .iter()
        .filter(|d| d.message.contains("must be unique"))
        .collect();
    assert_eq!(dup.len(), 1, "{d:#?}");
    assert_eq!(dup[0].line, 11);
}

#[test]
fn tls_presence_matches_the_protocol() {
    assert_error(
        "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n",
        "needs `tls`",
    );
    assert_error(
        "  - port: {number: 80, name: h, protocol: HTTP}\n    hosts: ['*']\n    tls: {mode: SIMPLE, credentialName: c}\n",
        "may only set tls.httpsRedirect",
    );
    assert_error(
        "  - port: {number: 27017, name: m, protocol: MONGO}\n    hosts: ['*']\n    tls: {httpsRedirect: true}\n",
        "cannot have TLS settings",
    );
    let (_, d) = load(&gateway(
        "  - port: {number: 31400, name: t, protocol: TCP}\n    hosts: ['*']\n    tls: {httpsRedirect: true}\n",
    ));
    assert!(
        warnings(&d)
            .iter()
            .any(|m| m.contains("httpsRedirect only")),
        "{d:#?}"
    );
    let passthrough = "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: ['nginx.example.com']\n    tls: {mode: PASSTHROUGH}\n";
    assert!(load(&gateway(passthrough)).1.is_empty());
}

fn https(tls: &str) -> String {
    gateway(&format!(
        "  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: ['*']\n    tls: {tls}\n"
    ))
}

#[test]
fn simple_and_mutual_need_certificates() {
    let cases = [
        ("{mode: SIMPLE}", "needs a certificate"),
        (
            "{mode: SIMPLE, serverCertificate: /c.pem}",
            "needs a private key",
        ),
        ("{mode: MUTUAL, credentialNames: []}", "needs a certificate"),
        (
            "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}",
            "client CA bundle",
        ),
        (
            "{mode: OPTIONAL_MUTUAL, tlsCertificates: [{serverCertificate: /c.pem}], caCertificates: /ca.pem}",
            "`spec.servers[0].tls.tlsCertificates[0].privateKey`",
        ),
        (
            "{mode: SIMPLE, credentialName: a, serverCertificate: /c.pem, privateKey: /k.pem}",
            "only one certificate source",
        ),
        ("{mode: SIMPLE, credentialNames: [a, b, c]}", "at most 2"),
        (
            "{mode: SIMPLE, credentialName: a, caCrl: /crl.pem}",
            "caCrl",
        ),
        (
            "{mode: ISTIO_MUTUAL, credentialName: a}",
            "remove `credentialName`",
        ),
        (
            "{mode: SIMPLE, credentialName: a, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}",
            "higher than",
        ),
    ];
    for (tls, needle) in cases {
        let (_, d) = load(&https(tls));
        assert!(
            errors(&d).iter().any(|m| m.contains(needle)),
            "{tls}: expected {needle:?} in {d:#?}"
        );
    }
    let good = [
        "{mode: SIMPLE, credentialName: a}",
        "{mode: MUTUAL, credentialName: a}",
        "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem, caCrl: /crl.pem}",
        "{mode: SIMPLE, tlsCertificates: [{serverCertificate: /rsa.pem, privateKey: /rsa.key}, {serverCertificate: /ec.pem, privateKey: /ec.key}]}",
        "{mode: ISTIO_MUTUAL}",
    ];
    for tls in good {
        let (_, d) = load(&https(tls));
        assert!(d.is_empty(), "{tls}: {d:#?}");
    }
}

#[test]
fn tls_warnings() {
    let (_, d) = load(&https("{mode: PASSTHROUGH, credentialName: a}"));
    assert!(
        warnings(&d)
            .iter()
            .any(|m| m.contains("does not use certificates")),
        "{d:#?}"
    );
    let (_, d) = load(&https(
        "{mode: SIMPLE, credentialName: a, minProtocolVersion: TLSV1_0}",
    ));
    assert!(
        warnings(&d).iter().any(|m| m.contains("below TLSV1_2")),
        "{d:#?}"
    );
    let (_, d) = load(&https(
        "{mode: SIMPLE, credentialName: a, cipherSuites: [NOPE-CIPHER, AES128-SHA, AES128-SHA]}",
    ));
    let w = warnings(&d);
    assert!(
        w.iter()
            .any(|m| m.contains("unknown cipher suite \"NOPE-CIPHER\"")),
        "{d:#?}"
    );
    assert!(
        w.iter().any(|m| m.contains("duplicate cipher suite")),
        "{d:#?}"
    );
    assert!(errors(&d).is_empty());
}

#[test]
fn unknown_tls_mode_is_reported_at_its_line() {
    let (gw, d) = load(&https("\n      mode: STRICT\n      credentialName: a"));
    assert!(gw.is_none());
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].line, 12);
}
