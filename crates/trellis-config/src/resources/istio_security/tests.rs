//! PeerAuthentication, RequestAuthentication and the shared policy scope.

use super::*;
use crate::diag::Diagnostic;
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
}

pub(super) fn errors(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect()
}

pub(super) fn warnings(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.message.clone())
        .collect()
}

fn doc(kind: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: {kind}\nmetadata:\n  name: p\n  namespace: foo\nspec:\n{spec}"
    )
}

fn assert_error(kind: &str, spec: &str, needle: &str) {
    let l = load(&doc(kind, spec));
    assert!(
        errors(&l.diagnostics).iter().any(|m| m.contains(needle)),
        "expected {needle:?} in {:#?}",
        l.diagnostics
    );
}

fn assert_clean(kind: &str, spec: &str) {
    let l = load(&doc(kind, spec));
    assert!(l.diagnostics.is_empty(), "{spec}\n{:#?}", l.diagnostics);
    assert_eq!(l.resources.len(), 1);
}

const PEER_AUTHN: &str = r#"apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: foo
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: finance
  namespace: foo
spec:
  selector:
    matchLabels:
      app: finance
  mtls:
    mode: STRICT
  portLevelMtls:
    8080:
      mode: DISABLE
"#;

#[test]
fn peer_authentication_examples() {
    let l = load(PEER_AUTHN);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let pas: Vec<&PeerAuthentication> = l
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::PeerAuthentication(p) => Some(&**p),
            _ => None,
        })
        .collect();
    assert_eq!(
        pas[0].mtls.as_ref().map(|m| m.mode),
        Some(MutualTlsMode::Strict)
    );
    assert!(pas[0].selector.is_none());
    assert_eq!(
        pas[1].port_level_mtls.get(&8080).map(|m| m.mode),
        Some(MutualTlsMode::Disable)
    );
}

#[test]
fn peer_authentication_rules() {
    let kind = "PeerAuthentication";
    assert_error(
        kind,
        "  portLevelMtls:\n    8080: {mode: DISABLE}\n",
        "portLevelMtls requires a selector",
    );
    assert_error(
        kind,
        "  selector: {}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n",
        "portLevelMtls requires a selector",
    );
    assert_error(
        kind,
        "  selector:\n    matchLabels: {app: a}\n  portLevelMtls:\n    70000: {mode: DISABLE}\n",
        "70000",
    );
    assert_error(
        kind,
        "  selector:\n    matchLabels: {app: 'a*'}\n",
        "wildcards",
    );
    assert_clean(
        kind,
        "  selector:\n    matchLabels: {app: a}\n  portLevelMtls:\n    '9090': {mode: PERMISSIVE}\n",
    );
    let l = load(&doc(kind, "  selector: {}\n  mtls: {mode: STRICT}\n"));
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("every workload"))
    );
    // A named port is not a port number: reported where it is written.
    let l = load(&doc(
        kind,
        "  selector:\n    matchLabels: {app: a}\n  portLevelMtls:\n    http: {mode: DISABLE}\n",
    ));
    assert!(l.resources.is_empty());
    assert_eq!(
        l.diagnostics.first().map(|d| d.line),
        Some(10),
        "{:#?}",
        l.diagnostics
    );
}

const REQUEST_AUTHN: &str = r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "issuer-foo"
    jwksUri: https://example.com/.well-known/jwks.json
    outputClaimToHeaders:
    - header: "x-jwt-claim-foo"
      claim: "foo"
  - issuer: https://example.com
    jwks_uri: https://example.com/.secret/jwks.json
    audiences: [bookstore_android.apps.example.com, bookstore_web.apps.example.com]
    fromHeaders:
    - name: x-goog-iap-jwt-assertion
      prefix: "Bearer "
    fromParams: [my_token]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    timeout: 5s
  - issuer: "testing@secure.istio.io"
    jwks: '{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX"}]}'
"#;

#[test]
fn request_authentication_examples() {
    let l = load(REQUEST_AUTHN);
    assert!(l.diagnostics.is_empty(), "{:#?}", l.diagnostics);
    let Some(Spec::RequestAuthentication(ra)) = l.resources.first().map(|r| &r.spec) else {
        panic!("not loaded")
    };
    assert_eq!(ra.jwt_rules.len(), 3);
    let r0 = &ra.jwt_rules[0];
    assert_eq!(
        r0.jwks_uri.as_deref(),
        Some("https://example.com/.well-known/jwks.json")
    );
    assert_eq!(r0.output_claim_to_headers[0].claim, "foo");
    let r1 = &ra.jwt_rules[1];
    assert_eq!(
        r1.jwks_uri.as_deref(),
        Some("https://example.com/.secret/jwks.json"),
        "jwks_uri alias"
    );
    assert_eq!(r1.from_headers[0].prefix.as_deref(), Some("Bearer "));
    assert!(r1.forward_original_token);
    assert_eq!(r1.timeout.map(|t| t.nanos), Some(5_000_000_000));
    assert!(ra.jwt_rules[2].jwks.is_some());
}

fn jwt(rule: &str) -> String {
    format!("  jwtRules:\n  - {rule}\n")
}

#[test]
fn jwt_rule_checks() {
    let kind = "RequestAuthentication";
    assert_error(
        kind,
        &jwt("jwksUri: https://example.com/jwks.json"),
        "missing required field `spec.jwtRules[0].issuer`",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwksUri: 'ftp://example.com/jwks.json'}"),
        "scheme \"ftp\"",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwksUri: example.com/jwks.json}"),
        "http:// or https://",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwksUri: 'https:///jwks.json'}"),
        "no host",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwksUri: 'https://e.com/j', jwks: '{\"keys\": []}'}"),
        "only one of jwksUri, jwks",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwks: 'not json'}"),
        "not valid JSON",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, jwks: '{\"keys\": [{\"n\": \"x\"}]}'}"),
        "no \"kty\"",
    );
    assert_error(kind, &jwt("{issuer: a, audiences: ['']}"), "empty value");
    assert_error(
        kind,
        &jwt("{issuer: a, fromHeaders: [{prefix: 'Bearer '}]}"),
        "`spec.jwtRules[0].fromHeaders[0].name`",
    );
    assert_error(kind, &jwt("{issuer: a, fromParams: ['']}"), "fromParams");
    assert_error(
        kind,
        &jwt("{issuer: a, outputClaimToHeaders: [{header: x-sub}]}"),
        "`spec.jwtRules[0].outputClaimToHeaders[0].claim`",
    );
    assert_error(
        kind,
        &jwt("{issuer: a, outputClaimToHeaders: [{header: 'x sub', claim: sub}]}"),
        "header name",
    );
    assert_error(kind, &jwt("{issuer: a, timeout: 500us}"), "at least 1ms");
    assert_error(
        kind,
        &jwt("{issuer: a, timeout: 1500us}"),
        "whole number of milliseconds",
    );
    assert_clean(kind, &jwt("{issuer: a, jwksUri: 'http://[::1]:8080/jwks'}"));
    let l = load(&doc(
        kind,
        &jwt(
            "{issuer: a, jwks: '{\"keys\": [{\"kty\": \"RSA\", \"n\": \"x\", \"e\": \"AQAB\", \"d\": \"secret\"}]}'}",
        ),
    ));
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("private key material")),
        "{:#?}",
        l.diagnostics
    );
}

#[test]
fn policy_scope_rules() {
    let kind = "RequestAuthentication";
    let both = "  selector:\n    matchLabels: {app: a}\n  targetRefs:\n  - {kind: Gateway, group: gateway.networking.k8s.io, name: gw}\n";
    assert_error(kind, both, "only one of selector, targetRef, targetRefs");
    assert_error(
        kind,
        "  targetRef: {kind: Deployment, group: apps, name: web}\n",
        "targetRef must be a Service",
    );
    assert_error(
        kind,
        "  targetRef: {kind: Service, name: web, namespace: other}\n",
        "cross-namespace",
    );
    assert_error(
        kind,
        "  targetRefs:\n  - {kind: Service}\n",
        "`spec.targetRefs[0].name`",
    );
    assert_clean(kind, "  targetRef: {kind: Service, group: '', name: web}\n");
    assert_clean(
        kind,
        "  targetRefs:\n  - {kind: ServiceEntry, group: networking.istio.io, name: ext}\n  - {kind: GatewayClass, group: gateway.networking.k8s.io, name: istio-waypoint}\n",
    );
}
