//! AuthorizationPolicy compilation: the seeds, every field, the conversions and the diagnostics.

use super::*;
use crate::compile::Compiled;
use crate::compile::security::tests::{compile_yaml, with_code};
use trellis_model::{Labels, SourceRef};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ap(ns: &str, name: &str, body: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{body}---\n"
    )
}

fn only(c: &Compiled) -> &AuthzPolicy {
    let all = &c.mesh.security.authorization;
    assert_eq!(all.len(), 1, "{all:#?}");
    &all[0]
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed_000_11_principals_methods_paths() {
    let c = compile_yaml(include_str!("../../../../tests/seeds/000-11.yaml"));
    let expected = AuthzPolicy {
        origin: SourceRef::new("AuthorizationPolicy", "default", "hello-service-authz"),
        namespace: "default".into(),
        selector: Some(labels(&[("app", "hello-service")])),
        target: None,
        action: AuthzAction::Allow,
        rules: vec![
            AuthzRule {
                from: vec![AuthzSource {
                    principals: strings(&["cluster.local/ns/default/sa/frontend"]),
                    ..AuthzSource::default()
                }],
                to: vec![AuthzOperation {
                    methods: strings(&["GET", "POST"]),
                    paths: strings(&["/api/*"]),
                    ..AuthzOperation::default()
                }],
                when: vec![],
            },
            AuthzRule {
                from: vec![],
                to: vec![AuthzOperation {
                    methods: strings(&["GET"]),
                    paths: strings(&["/health"]),
                    ..AuthzOperation::default()
                }],
                when: vec![],
            },
        ],
    };
    assert_eq!(only(&c), &expected);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let sec = &c.mesh.security;
    let hello = labels(&[("app", "hello-service")]);
    assert_eq!(sec.authz_for("default", &hello, "istio-system").count(), 1);
    assert_eq!(
        sec.authz_for("default", &labels(&[("app", "other")]), "istio-system")
            .count(),
        0
    );
}

#[test]
fn seed_000_12_request_principals() {
    let c = compile_yaml(include_str!("../../../../tests/seeds/000-12.yaml"));
    let p = only(&c);
    assert_eq!(p.origin.name, "require-jwt");
    assert_eq!(p.action, AuthzAction::Allow);
    assert_eq!(
        p.rules,
        [AuthzRule {
            from: vec![AuthzSource {
                request_principals: strings(&["*"]),
                ..AuthzSource::default()
            }],
            to: vec![AuthzOperation {
                paths: strings(&["/api/*"]),
                ..AuthzOperation::default()
            }],
            when: vec![],
        }]
    );
    assert_eq!(c.mesh.security.request_authentication.len(), 1);
}

#[test]
fn seed_004_11_when_claims() {
    let c = compile_yaml(include_str!("../../../../tests/seeds/004-11.yaml"));
    let p = only(&c);
    assert_eq!(
        p.namespace, "default",
        "no metadata.namespace: the loader's default"
    );
    assert_eq!(p.selector, Some(labels(&[("app", "order-service")])));
    assert_eq!(
        p.rules[0].when,
        [AuthzCondition {
            key: "request.auth.claims[role]".into(),
            values: strings(&["admin", "user"]),
            not_values: vec![],
        }]
    );
    assert_eq!(p.rules[0].from[0].request_principals, ["*"]);
}

#[test]
fn every_source_and_operation_field() {
    let body = r#"  action: DENY
  rules:
  - from:
    - source:
        principals: [a/ns/x/sa/y]
        notPrincipals: ["*/sa/bad"]
        requestPrincipals: [iss/sub]
        notRequestPrincipals: [iss/evil]
        namespaces: [prod]
        notNamespaces: [test]
        ipBlocks: [10.0.0.0/8]
        notIpBlocks: [10.1.0.0/16]
        remoteIpBlocks: [203.0.113.4]
        notRemoteIpBlocks: [203.0.113.0/24]
    - source:
        serviceAccounts: [frontend, other/api]
        notServiceAccounts: [legacy]
    to:
    - operation:
        hosts: [shop.example.com]
        notHosts: ["*.internal"]
        ports: ["8080", "bad", "9090"]
        notPorts: ["15000"]
        methods: [GET]
        notMethods: [DELETE]
        paths: [/api/*]
        notPaths: [/api/admin*]
    - operation:
        ports: ["443"]
    when:
    - key: request.headers[x-user]
      values: [alice]
      notValues: [bob]
"#;
    let c = compile_yaml(&ap("shop", "all", body));
    let p = only(&c);
    assert_eq!(p.action, AuthzAction::Deny);
    assert_eq!(p.selector, None);
    let rule = &p.rules[0];
    assert_eq!(
        rule.from,
        [
            AuthzSource {
                principals: strings(&["a/ns/x/sa/y"]),
                not_principals: strings(&["*/sa/bad"]),
                request_principals: strings(&["iss/sub"]),
                not_request_principals: strings(&["iss/evil"]),
                namespaces: strings(&["prod"]),
                not_namespaces: strings(&["test"]),
                ip_blocks: strings(&["10.0.0.0/8"]),
                not_ip_blocks: strings(&["10.1.0.0/16"]),
                remote_ip_blocks: strings(&["203.0.113.4"]),
                not_remote_ip_blocks: strings(&["203.0.113.0/24"]),
            },
            AuthzSource {
                principals: strings(&[
                    "cluster.local/ns/shop/sa/frontend",
                    "cluster.local/ns/other/sa/api"
                ]),
                not_principals: strings(&["cluster.local/ns/shop/sa/legacy"]),
                ..AuthzSource::default()
            },
        ]
    );
    assert_eq!(
        rule.to,
        [
            AuthzOperation {
                hosts: strings(&["shop.example.com"]),
                not_hosts: strings(&["*.internal"]),
                ports: vec![8080, 9090],
                not_ports: vec![15000],
                methods: strings(&["GET"]),
                not_methods: strings(&["DELETE"]),
                paths: strings(&["/api/*"]),
                not_paths: strings(&["/api/admin*"]),
            },
            AuthzOperation {
                ports: vec![443],
                ..AuthzOperation::default()
            },
        ]
    );
    assert_eq!(
        rule.when,
        [AuthzCondition {
            key: "request.headers[x-user]".into(),
            values: strings(&["alice"]),
            not_values: strings(&["bob"])
        }]
    );
}

#[test]
fn actions_and_empty_rules() {
    let text = [
        ap("a", "deny-all", "  {}\n"),
        ap("a", "allow-nothing", "  action: ALLOW\n  rules: []\n"),
        ap("a", "allow-all", "  rules:\n  - {}\n"),
        ap("a", "deny-nothing", "  action: DENY\n"),
        ap("a", "audit", "  action: AUDIT\n  rules:\n  - {}\n"),
        ap("a", "ext", "  action: CUSTOM\n  provider:\n    name: opa\n  rules:\n  - to:\n    - operation:\n        paths: [/admin*]\n"),
        ap("a", "ext-unnamed", "  action: CUSTOM\n  rules:\n  - {}\n"),
    ]
    .concat();
    let c = compile_yaml(&text);
    let got: Vec<(&str, &AuthzAction, usize)> = c
        .mesh
        .security
        .authorization
        .iter()
        .map(|p| (p.origin.name.as_str(), &p.action, p.rules.len()))
        .collect();
    let custom = |p: &str| AuthzAction::Custom { provider: p.into() };
    assert_eq!(
        got,
        [
            ("deny-all", &AuthzAction::Allow, 0),
            ("allow-nothing", &AuthzAction::Allow, 0),
            ("allow-all", &AuthzAction::Allow, 1),
            ("deny-nothing", &AuthzAction::Deny, 0),
            ("audit", &AuthzAction::Audit, 1),
            ("ext", &custom("opa"), 1),
            ("ext-unnamed", &custom(""), 1),
        ]
    );
    assert_eq!(
        c.mesh.security.authorization[2].rules[0],
        AuthzRule::default(),
        "an empty rule matches everything"
    );
}

#[test]
fn target_refs_make_one_policy_each() {
    let single = "  targetRef:\n    kind: Gateway\n    group: gateway.networking.k8s.io\n    name: ingress\n  rules:\n  - {}\n";
    let several = "  targetRefs:\n  - {kind: Service, group: \"\", name: reviews}\n  - {kind: ServiceEntry, group: networking.istio.io, name: ext}\n  action: DENY\n  rules:\n  - to:\n    - operation:\n        ports: [\"80\"]\n";
    let c = compile_yaml(&[ap("shop", "gw", single), ap("shop", "svc", several)].concat());
    let got: Vec<(&str, Option<SourceRef>)> = c
        .mesh
        .security
        .authorization
        .iter()
        .map(|p| (p.origin.name.as_str(), p.target.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("gw", Some(SourceRef::new("Gateway", "shop", "ingress"))),
            ("svc", Some(SourceRef::new("Service", "shop", "reviews"))),
            ("svc", Some(SourceRef::new("ServiceEntry", "shop", "ext"))),
        ]
    );
    let svc = &c.mesh.security.authorization[1..];
    assert!(
        svc.iter()
            .all(|p| p.action == AuthzAction::Deny && p.rules[0].to[0].ports == [80])
    );
    assert_eq!(
        c.mesh
            .security
            .authz_for("shop", &Labels::new(), "istio-system")
            .count(),
        0,
        "attached, not selected"
    );
}

#[test]
fn trust_domains_become_principal_patterns() {
    let body = r#"  rules:
  - from:
    - source:
        trustDomains: [td1, "east*", "*"]
        notTrustDomains: [old.td, "legacy*"]
    - source:
        principals: [x/ns/a/sa/b]
        trustDomains: [td1]
    - source:
        trustDomains: ["*.example.org"]
        notTrustDomains: ["*.bad"]
"#;
    let c = compile_yaml(&ap("a", "td", body));
    let from = &only(&c).rules[0].from;
    assert_eq!(from[0].principals, ["td1/*", "east*", "*"]);
    assert_eq!(from[0].not_principals, ["old.td/*", "legacy*"]);
    assert_eq!(
        from[1].principals,
        ["x/ns/a/sa/b"],
        "trustDomains next to principals is not merged"
    );
    assert!(from[2].principals.is_empty() && from[2].not_principals.is_empty());
    let d = with_code(&c, Code::IgnoredSetting);
    let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(d.len(), 3, "{messages:#?}");
    assert!(messages[0].contains("next to principals"));
    assert!(messages[1].contains("notTrustDomains suffix pattern \"*.bad\""));
    assert!(messages[2].contains("suffix pattern"));
    assert!(
        d.iter().all(|d| d.line > 8),
        "positions point into the rules: {d:#?}"
    );
}

#[test]
fn identity_conditions_become_principal_conditions() {
    let body = r#"  rules:
  - when:
    - key: source.serviceAccount
      values: [web, prod/api]
      notValues: [old]
    - key: source.trustDomain
      values: [td1]
      notValues: ["east*"]
    - key: source.trustDomain
      values: ["*.org"]
    - key: destination.port
      values: ["8080"]
"#;
    let c = compile_yaml(&ap("shop", "when", body));
    let when = &only(&c).rules[0].when;
    let cond = |k: &str, v: &[&str], n: &[&str]| AuthzCondition {
        key: k.into(),
        values: strings(v),
        not_values: strings(n),
    };
    assert_eq!(
        when,
        &[
            cond(
                "source.principal",
                &[
                    "cluster.local/ns/shop/sa/web",
                    "cluster.local/ns/prod/sa/api"
                ],
                &["cluster.local/ns/shop/sa/old"]
            ),
            cond("source.principal", &["td1/*"], &["east*"]),
            cond("source.trustDomain", &["*.org"], &[]),
            cond("destination.port", &["8080"], &[]),
        ]
    );
    let d = with_code(&c, Code::IgnoredSetting);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].message.contains("source.trustDomain"));
}

#[test]
fn custom_trust_domain() {
    use crate::compile::{CompileOptions, compile};
    let body = "  rules:\n  - from:\n    - source:\n        serviceAccounts: [web]\n";
    let loaded = crate::load::load_str("t.yaml", &ap("shop", "sa", body), &Default::default());
    let opts = CompileOptions {
        trust_domain: "example.org".into(),
        ..Default::default()
    };
    let c = compile(&loaded.resources, &opts);
    assert_eq!(
        only(&c).rules[0].from[0].principals,
        ["example.org/ns/shop/sa/web"]
    );
}

#[test]
fn pattern_helpers() {
    let sa = |v: &str| service_account_principal("td", "ns", v);
    assert_eq!(
        [sa("sa"), sa("other/sa")],
        ["td/ns/ns/sa/sa", "td/ns/other/sa/sa"]
    );
    let td =
        ["td", "td*", "*", "*td", "a*b"].map(|p| trust_domain_principal(p).unwrap_or_default());
    assert_eq!(
        td,
        ["td/*", "td*", "*", "", ""],
        "suffix patterns have no equivalent"
    );
}
