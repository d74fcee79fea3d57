use super::*;
use crate::load::{LoadOptions, Loaded, load_str};
use crate::resources::Spec;
use crate::resources::istio_security::tests::{errors, warnings};

fn load(yaml: &str) -> Loaded {
    load_str("test.yaml", yaml, &LoadOptions::default())
}

fn policy(spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: foo\nspec:\n{spec}"
    )
}

fn assert_error(spec: &str, needle: &str) {
    let l = load(&policy(spec));
    assert!(
        errors(&l.diagnostics).iter().any(|m| m.contains(needle)),
        "expected {needle:?} in {:#?}",
        l.diagnostics
    );
}

fn assert_clean(spec: &str) {
    let l = load(&policy(spec));
    assert!(l.diagnostics.is_empty(), "{spec}\n{:#?}", l.diagnostics);
    assert_eq!(l.resources.len(), 1);
}

/// Examples from Istio's AuthorizationPolicy reference.
const EXAMPLES: &[&str] = &[
    r#"  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
"#,
    "  action: DENY\n  rules:\n  - from:\n    - source:\n        notNamespaces: [\"foo\"]\n",
    "  {}\n",
    "  rules:\n  - {}\n",
    r#"  selector:
    matchLabels:
      app: httpbin
  action: CUSTOM
  provider:
    name: "my-custom-authz"
  rules:
  - to:
    - operation:
        paths: ["/admin"]
"#,
    r#"  selector:
    matchLabels:
      app: istio-ingressgateway
  action: ALLOW
  rules:
  - from:
    - source:
        remoteIpBlocks: ["1.2.3.4", "5.6.7.0/24"]
"#,
    r#"  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: waypoint
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["8080"]
        paths: ["/api/{*}/admin", "/files/{**}"]
    when:
    - key: destination.port
      values: ["8080"]
    - key: source.ip
      notValues: ["10.0.0.0/8"]
    - key: request.headers[x-token]
      values: ["guest"]
    - key: source.serviceAccount
      values: ["default/sleep"]
    - key: connection.sni
      values: ["*.example.com"]
    - key: experimental.envoy.filters.network.mysql_proxy[db.table]
      values: ["[update]"]
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
    let l = load(&policy(EXAMPLES[0]));
    let Some(Spec::IstioAuthorizationPolicy(ap)) = l.resources.first().map(|r| &r.spec) else {
        panic!("not loaded")
    };
    assert_eq!(ap.action, AuthorizationAction::Allow);
    let rule = &ap.rules[0];
    let src = rule.from[0].source.as_ref().expect("source");
    assert_eq!(src.principals, vec!["cluster.local/ns/default/sa/sleep"]);
    assert_eq!(
        rule.to[1].operation.as_ref().map(|o| o.paths.clone()),
        Some(vec!["/data".to_owned()])
    );
    assert_eq!(rule.when[0].key, "request.auth.claims[iss]");
    let l = load(&policy(EXAMPLES[4]));
    let Some(Spec::IstioAuthorizationPolicy(ap)) = l.resources.first().map(|r| &r.spec) else {
        panic!("not loaded")
    };
    assert_eq!(ap.action, AuthorizationAction::Custom);
    assert_eq!(
        ap.provider.as_ref().map(|p| p.name.as_str()),
        Some("my-custom-authz")
    );
}

#[test]
fn action_and_provider_rules() {
    assert_error(
        "  action: CUSTOM\n  rules:\n  - {}\n",
        "needs `provider.name`",
    );
    assert_error(
        "  action: CUSTOM\n  provider: {}\n  rules:\n  - {}\n",
        "`spec.provider.name`",
    );
    assert_error(
        "  action: DENY\n  provider: {name: ext}\n  rules:\n  - {}\n",
        "only allowed with action CUSTOM",
    );
    assert_error(
        "  provider: {name: ext}\n",
        "only allowed with action CUSTOM",
    );
    assert_error("  action: DENY\n", "action DENY without `rules`");
    assert_error(
        "  action: CUSTOM\n  provider: {name: ext}\n",
        "action CUSTOM without `rules`",
    );
    assert_clean("  action: AUDIT\n  rules:\n  - to:\n    - operation: {paths: [/admin]}\n");
}

#[test]
fn custom_rejects_identity_attributes() {
    let custom = "  action: CUSTOM\n  provider: {name: ext}\n  rules:\n";
    assert_error(
        &format!("{custom}  - from:\n    - source: {{principals: [a]}}\n"),
        "`principals` is not supported with action CUSTOM",
    );
    assert_error(
        &format!(
            "{custom}  - when:\n    - {{key: 'request.auth.claims[groups]', values: [admin]}}\n"
        ),
        "not supported with action CUSTOM",
    );
    assert_clean(&format!(
        "{custom}  - from:\n    - source: {{ipBlocks: [10.0.0.0/8]}}\n"
    ));
}

#[test]
fn source_rules() {
    let rule = |src: &str| format!("  rules:\n  - from:\n    - source: {src}\n");
    assert_error(
        "  rules:\n  - from:\n    - {}\n",
        "`spec.rules[0].from[0].source`",
    );
    assert_error(&rule("{}"), "must set at least one field");
    assert_error(
        &rule("{serviceAccounts: [sleep], namespaces: [foo]}"),
        "cannot be combined",
    );
    assert_error(&rule("{ipBlocks: [10.0.0.0/33]}"), "not a valid CIDR");
    assert_error(&rule("{notRemoteIpBlocks: [not-an-ip]}"), "not a valid IP");
    assert_error(
        &rule("{principals: ['']}"),
        "empty value not allowed in `principals`",
    );
    assert_error(
        &rule("{serviceAccounts: ['ns/*']}"),
        "wildcards are not allowed",
    );
    assert_error(
        &rule("{serviceAccounts: ['a/b/c']}"),
        "<namespace>/<service-account>",
    );
    assert_error(&rule("{trustDomains: ['*.a*']}"), "at most one wildcard");
    assert_error(&rule("{trustDomains: ['a*b']}"), "start or end");
    assert_error(&rule("{trustDomains: ['td/ns']}"), "must not contain '/'");
    // Principals in any shape are accepted; their format is the user's business.
    assert_clean(&rule(
        "{principals: ['*', 'cluster.local/ns/default/sa/sleep', 'spiffe-ish/x'], trustDomains: ['*.local']}",
    ));
}

#[test]
fn operation_rules() {
    let op = |o: &str| format!("  rules:\n  - to:\n    - operation: {o}\n");
    assert_error(
        "  rules:\n  - to:\n    - {}\n",
        "`spec.rules[0].to[0].operation`",
    );
    assert_error(&op("{}"), "must set at least one field");
    assert_error(&op("{ports: ['http']}"), "bad port \"http\"");
    assert_error(&op("{notPorts: ['70000']}"), "bad port");
    assert_error(
        &op("{methods: ['']}"),
        "empty value not allowed in `methods`",
    );
    assert_error(
        &op("{paths: ['/a/{**}/b/{*}']}"),
        "must be the last segment",
    );
    assert_error(
        &op("{paths: ['/a/{id}']}"),
        "outside a {*} or {**} template",
    );
    assert_error(
        &op("{notPaths: ['/a/{*}/b c']}"),
        "not allowed in a path template",
    );
}

#[test]
fn condition_rules() {
    let when = |c: &str| format!("  rules:\n  - when:\n    - {c}\n");
    assert_error(&when("{values: [a]}"), "`spec.rules[0].when[0].key`");
    assert_error(&when("{key: source.ip}"), "needs `values` or `notValues`");
    assert_error(
        &when("{key: request.host, values: [a]}"),
        "unknown condition key \"request.host\"",
    );
    assert_error(
        &when("{key: request.headers, values: [a]}"),
        "request.headers[name]",
    );
    assert_error(
        &when("{key: 'request.auth.claims[]', values: [a]}"),
        "request.auth.claims[name]",
    );
    assert_error(
        &when("{key: destination.namespace, values: [a]}"),
        "metadata.namespace",
    );
    assert_error(
        &when("{key: 'destination.labels[app]', values: [a]}"),
        "selector",
    );
    assert_error(&when("{key: destination.user, values: [a]}"), "v1alpha1");
    assert_error(
        &when("{key: source.ip, values: [a.b.c.d]}"),
        "not a valid IP",
    );
    assert_error(
        &when("{key: destination.port, notValues: [http]}"),
        "bad port",
    );
    assert_error(
        &when("{key: source.serviceAccount, values: ['*']}"),
        "wildcards",
    );
    assert_error(
        &when("{key: source.trustDomain, values: ['a*b']}"),
        "start or end",
    );
    assert_error(
        &when("{key: request.auth.audiences, values: ['']}"),
        "empty value",
    );
    let l = load(&policy(&when("{key: sourceip, values: [a]}")));
    let d = l
        .diagnostics
        .iter()
        .find(|d| d.message.contains("unknown condition key"))
        .expect("key error");
    assert_eq!((d.line, d.column), (9, 13));
}

#[test]
fn deny_with_only_http_attributes_warns() {
    let l = load(&policy(
        "  action: DENY\n  rules:\n  - to:\n    - operation: {methods: [POST]}\n",
    ));
    assert!(errors(&l.diagnostics).is_empty());
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("denies all TCP traffic")),
        "{:#?}",
        l.diagnostics
    );
    let l = load(&policy(
        "  action: DENY\n  rules:\n  - from:\n    - source: {requestPrincipals: ['*']}\n",
    ));
    assert!(
        warnings(&l.diagnostics)
            .iter()
            .any(|m| m.contains("denies all TCP traffic"))
    );
    assert_clean(
        "  action: DENY\n  rules:\n  - to:\n    - operation: {methods: [POST], ports: ['8080']}\n",
    );
    assert_clean("  action: DENY\n  rules:\n  - from:\n    - source: {namespaces: [dev]}\n");
}
