//! Tests of the policy side: Server, ServerAuthorization, AuthorizationPolicy.

use super::authz::identity_principal;
use super::tests_routes::{compile, diags, seeds, svc};
use crate::compile::Compiled;
use crate::diag::{Code, Severity};
use trellis_model::{AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource, Labels, Protocol};

pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn policies<'a>(c: &'a Compiled, kind: &str) -> Vec<&'a AuthzPolicy> {
    c.mesh
        .security
        .authorization
        .iter()
        .filter(|p| p.origin.kind == kind)
        .collect()
}

pub(super) fn ports(p: &[u16]) -> Vec<AuthzOperation> {
    vec![AuthzOperation {
        ports: p.to_vec(),
        ..AuthzOperation::default()
    }]
}

pub(super) fn not_ports(p: &[u16]) -> AuthzRule {
    AuthzRule {
        to: vec![AuthzOperation {
            not_ports: p.to_vec(),
            ..AuthzOperation::default()
        }],
        ..AuthzRule::default()
    }
}

pub(super) fn principals(p: &[&str]) -> AuthzSource {
    AuthzSource {
        principals: p.iter().map(|s| s.to_string()).collect(),
        ..AuthzSource::default()
    }
}

/// A Deployment `web` (named port http = 8080, admin = 9990) and a Service in front of it.
pub(super) const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: web\n        ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 9990}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{name: web, port: 80, targetPort: http}, {name: admin, port: 9990}]\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web-http, labels: {tier: front}}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  port: http\n  proxyProtocol: gRPC\n";

#[test]
fn seed_server_and_server_authorization() {
    let Some(text) = seeds(&["000-15", "000-16", "000-17", "000-18", "000-19", "000-20"]) else {
        return;
    };
    let c = compile(&text);
    let backend = Some(labels(&[("app", "backend")]));
    let server = policies(&c, "Server");
    assert_eq!(server.len(), 1);
    assert_eq!(
        (server[0].namespace.as_str(), &server[0].selector),
        ("default", &backend)
    );
    assert_eq!(server[0].rules, vec![not_ports(&[8080])]);
    let authz = policies(&c, "ServerAuthorization");
    assert_eq!(authz.len(), 1);
    assert_eq!(
        (authz[0].origin.name.as_str(), &authz[0].selector),
        ("backend-authz", &backend)
    );
    assert_eq!(
        authz[0].rules,
        vec![AuthzRule {
            from: vec![principals(&["cluster.local/ns/default/sa/frontend"])],
            to: ports(&[8080]),
            when: vec![]
        }]
    );
}

#[test]
fn missing_server_is_reported_where_it_is_named() {
    let Some(text) = seeds(&["000-15", "000-20"]) else {
        return;
    };
    let c = compile(&text);
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(
        (missing[0].kind.as_str(), missing[0].message.as_str()),
        (
            "ServerAuthorization",
            "Server backend-server not found in namespace default"
        )
    );
    assert_eq!((missing[0].line, missing[0].column), (82, 11));
    assert!(c.mesh.security.authorization.is_empty());
}

#[test]
fn identities() {
    let td = "cluster.local";
    let cases = [
        ("*", Some("*")),
        (
            "web.shop.serviceaccount.identity.linkerd.cluster.local",
            Some("cluster.local/ns/shop/sa/web"),
        ),
        (
            "*.shop.serviceaccount.identity.linkerd.cluster.local",
            Some("cluster.local/ns/shop/sa/*"),
        ),
        (
            "*.serviceaccount.identity.linkerd.cluster.local",
            Some("cluster.local/*"),
        ),
        ("*.cluster.local", Some("cluster.local/*")),
        ("*.example.org", None),
        ("web.shop.serviceaccount.identity.linkerd.example.org", None),
        (
            "a.b.shop.serviceaccount.identity.linkerd.cluster.local",
            None,
        ),
        ("web.*.serviceaccount.identity.linkerd.cluster.local", None),
        ("prometheus", None),
    ];
    for (id, want) in cases {
        assert_eq!(identity_principal(id, td).as_deref(), want, "{id}");
    }
}

#[test]
fn named_ports_protocols_and_fall_through() {
    let extra = "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web-admin}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  port: 9990\n  proxyProtocol: opaque\n  accessPolicy: all-authenticated\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: web-metrics}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  port: metrics\n";
    let c = compile(&format!("{WEB}{extra}"));
    let web = svc(&c, "web.default.svc.cluster.local");
    assert_eq!(
        web.port(80).map(|p| p.protocol),
        Some(Protocol::Grpc),
        "targetPort http is the Server's port"
    );
    assert_eq!(web.port(9990).map(|p| p.protocol), Some(Protocol::Tcp));
    let servers = policies(&c, "Server");
    assert_eq!(servers.len(), 2);
    // Both Servers cover the same pods: neither fall-through rule may open the other's port.
    assert_eq!(servers[0].rules, vec![not_ports(&[8080, 9990])]);
    let authenticated = AuthzRule {
        from: vec![principals(&["*"])],
        to: ports(&[9990]),
        when: vec![],
    };
    assert_eq!(
        servers[1].rules,
        vec![not_ports(&[8080, 9990]), authenticated]
    );
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        missing.len() == 1
            && missing[0]
                .message
                .contains("no container port named \"metrics\""),
        "{missing:#?}"
    );
}

#[test]
fn server_authorization_clients() {
    let authz = "---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: a}\nspec:\n  server: {selector: {matchLabels: {tier: front}}}\n  client:\n    networks: [{cidr: 10.0.0.0/8, except: [10.0.0.1]}, {cidr: 192.168.0.0/16}]\n    meshTLS:\n      identities: ['*.shop.serviceaccount.identity.linkerd.cluster.local', '*.example.org']\n      serviceAccounts: [{name: gw, namespace: ingress}]\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: b}\nspec:\n  server: {name: web-http}\n  client: {unauthenticated: true}\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: c}\nspec:\n  server: {name: web-http}\n  client:\n    meshTLS: {unauthenticatedTLS: true}\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: d}\nspec:\n  server: {name: web-http}\n  client:\n    meshTLS: {identities: [web.shop.serviceaccount.identity.linkerd.example.org]}\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: e}\nspec:\n  server: {selector: {matchLabels: {tier: back}}}\n  client: {unauthenticated: true}\n";
    let c = compile(&format!("{WEB}{authz}"));
    let got: Vec<(&str, &AuthzRule)> = policies(&c, "ServerAuthorization")
        .iter()
        .flat_map(|p| p.rules.iter().map(|r| (p.origin.name.as_str(), r)))
        .collect();
    let who = principals(&[
        "cluster.local/ns/ingress/sa/gw",
        "cluster.local/ns/shop/sa/*",
    ]);
    let a = AuthzRule {
        from: vec![
            AuthzSource {
                ip_blocks: vec!["10.0.0.0/8".into()],
                not_ip_blocks: vec!["10.0.0.1".into()],
                ..who.clone()
            },
            AuthzSource {
                ip_blocks: vec!["192.168.0.0/16".into()],
                ..who
            },
        ],
        to: ports(&[8080]),
        when: vec![],
    };
    let anyone = AuthzRule {
        from: vec![],
        to: ports(&[8080]),
        when: vec![],
    };
    // d names only an identity of another trust domain: it authorizes nobody and is not emitted.
    assert_eq!(got, vec![("a", &a), ("b", &anyone), ("c", &anyone)]);
    let ignored: Vec<&str> = diags(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(ignored, vec!["a", "c", "d"]);
    let unmatched = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        unmatched.len() == 1
            && unmatched[0].name == "e"
            && unmatched[0].severity == Severity::Warning,
        "{unmatched:#?}"
    );
}

#[test]
fn servers_that_cannot_be_enforced() {
    let text = "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: vm}\nspec:\n  externalWorkloadSelector: {matchLabels: {app: vm}}\n  port: 8080\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: expr}\nspec:\n  podSelector:\n    matchLabels: {app: web}\n    matchExpressions: [{key: version, operator: In, values: [v1]}]\n  port: 8080\n";
    let c = compile(text);
    let warned: Vec<(&str, Severity)> = diags(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| (d.name.as_str(), d.severity))
        .collect();
    assert_eq!(
        warned,
        vec![("vm", Severity::Warning), ("expr", Severity::Warning)]
    );
    let servers = policies(&c, "Server");
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].selector, Some(labels(&[("app", "web")])));
}
