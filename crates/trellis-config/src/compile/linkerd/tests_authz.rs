//! Tests of AuthorizationPolicy (on Servers, namespaces and routes) and Server access policies.

use super::tests_policy::{WEB, labels, not_ports, policies, ports, principals};
use super::tests_routes::{compile, diags};
use crate::diag::Code;
use trellis_model::{AuthzCondition, AuthzOperation, AuthzRule, AuthzSource};

#[test]
fn authorization_policy_on_server_and_namespace() {
    let policy = "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: clients}\nspec:\n  identities: [api.shop.serviceaccount.identity.linkerd.cluster.local]\n  identityRefs: [{kind: ServiceAccount, name: gw, namespace: ingress}, {kind: Namespace, name: ops}]\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata: {name: office}\nspec:\n  networks: [{cidr: 10.1.0.0/16}]\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: server}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}\n  requiredAuthenticationRefs:\n  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: clients}\n  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: ns}\nspec:\n  targetRef: {kind: Namespace, name: default}\n  requiredAuthenticationRefs: [{kind: ServiceAccount, name: probe}]\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: gone}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}\n  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: nobody}]\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: everyone}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}\n  requiredAuthenticationRefs: []\n";
    let c = compile(&format!("{WEB}{policy}"));
    let got = policies(&c, "AuthorizationPolicy");
    let names: Vec<&str> = got.iter().map(|p| p.origin.name.as_str()).collect();
    assert_eq!(names, vec!["server", "ns", "everyone"]);
    let who = principals(&[
        "cluster.local/ns/shop/sa/api",
        "cluster.local/ns/ingress/sa/gw",
        "cluster.local/ns/ops/sa/*",
    ]);
    let from = vec![AuthzSource {
        ip_blocks: vec!["10.1.0.0/16".into()],
        ..who
    }];
    assert_eq!(
        got[0].rules,
        vec![AuthzRule {
            from,
            to: ports(&[8080]),
            when: vec![]
        }]
    );
    assert_eq!(got[0].selector, Some(labels(&[("app", "web")])));
    assert_eq!(
        got[1].rules,
        vec![AuthzRule {
            from: vec![principals(&["cluster.local/ns/default/sa/probe"])],
            to: ports(&[8080]),
            when: vec![]
        }]
    );
    assert_eq!(
        got[2].rules,
        vec![AuthzRule {
            from: vec![],
            to: ports(&[8080]),
            when: vec![]
        }]
    );
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        missing.len() == 1
            && missing[0].message
                == "MeshTLSAuthentication nobody not found in namespace default; the policy authorizes nobody",
        "{missing:#?}"
    );
}

#[test]
fn authorization_policy_on_a_route() {
    let route = "---\napiVersion: policy.linkerd.io/v1beta3\nkind: HTTPRoute\nmetadata: {name: books}\nspec:\n  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]\n  rules:\n  - matches:\n    - path: {type: PathPrefix, value: /books/}\n      method: GET\n      headers: [{name: X-Tenant, value: a}]\n    - path: {type: Exact, value: /health}\n    - path: {type: RegularExpression, value: /admin/.*}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: books}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: books}\n  requiredAuthenticationRefs: [{kind: ServiceAccount, name: reader}]\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: nothing}\nspec:\n  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: missing}\n  requiredAuthenticationRefs: []\n";
    let c = compile(&format!("{WEB}{route}"));
    let got = policies(&c, "AuthorizationPolicy");
    assert_eq!(got.len(), 1);
    let from = vec![principals(&["cluster.local/ns/default/sa/reader"])];
    let books = AuthzOperation {
        ports: vec![8080],
        paths: vec!["/books".into(), "/books/*".into()],
        methods: vec!["GET".into()],
        ..AuthzOperation::default()
    };
    let tenant = AuthzCondition {
        key: "request.headers[x-tenant]".into(),
        values: vec!["a".into()],
        not_values: vec![],
    };
    let health = AuthzOperation {
        ports: vec![8080],
        paths: vec!["/health".into()],
        ..AuthzOperation::default()
    };
    assert_eq!(
        got[0].rules,
        vec![
            AuthzRule {
                from: from.clone(),
                to: vec![books],
                when: vec![tenant]
            },
            AuthzRule {
                from,
                to: vec![health],
                when: vec![]
            },
        ]
    );
    // Only this pass's findings (the Gateway API pass notes the Server parent on its own).
    let ignored: Vec<_> = diags(&c, Code::IgnoredSetting)
        .into_iter()
        .filter(|d| d.message.contains("cannot be used for authorization"))
        .collect();
    assert!(
        ignored.len() == 1
            && ignored[0].kind == "HTTPRoute"
            && ignored[0].message.contains("regular-expression path"),
        "{ignored:#?}"
    );
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        missing.len() == 1 && missing[0].message.contains("HTTPRoute missing not found"),
        "{missing:#?}"
    );
}

#[test]
fn access_policies() {
    let server = |name: &str, policy: &str| {
        format!(
            "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  podSelector: {{matchLabels: {{app: {name}}}}}\n  port: 80\n  accessPolicy: {policy}\n"
        )
    };
    let text: String = [
        ("a", "deny"),
        ("b", "all-unauthenticated"),
        ("c", "cluster-authenticated"),
        ("d", "cluster-unauthenticated"),
        ("e", "audit"),
    ]
    .iter()
    .map(|(n, p)| server(n, p))
    .collect();
    let c = compile(&text);
    let rules: Vec<Vec<AuthzRule>> = policies(&c, "Server")
        .iter()
        .map(|p| p.rules.clone())
        .collect();
    let open = AuthzRule {
        from: vec![],
        to: ports(&[80]),
        when: vec![],
    };
    let authenticated = AuthzRule {
        from: vec![principals(&["*"])],
        to: ports(&[80]),
        when: vec![],
    };
    let base = not_ports(&[80]);
    assert_eq!(
        rules,
        vec![
            vec![base.clone()],
            vec![base.clone(), open.clone()],
            vec![base.clone(), authenticated],
            vec![base.clone(), open.clone()],
            vec![base, open],
        ]
    );
    let noted: Vec<&str> = diags(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(noted, vec!["c", "d", "e"]);
}

#[test]
fn authorization_policy_on_a_grpc_route() {
    let route = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: rpc}\nspec:\n  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]\n  rules:\n  - matches:\n    - method: {service: shop.Books, method: Get}\n    - method: {service: shop.Admin}\n    - method: {type: RegularExpression, service: shop.*}\n---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: rpc}\nspec:\n  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: rpc}\n  requiredAuthenticationRefs: []\n";
    let c = compile(&format!("{WEB}{route}"));
    let got = policies(&c, "AuthorizationPolicy");
    assert_eq!(got.len(), 1);
    let paths: Vec<&Vec<String>> = got[0].rules.iter().map(|r| &r.to[0].paths).collect();
    assert_eq!(
        paths,
        vec![
            &vec!["/shop.Books/Get".to_owned()],
            &vec!["/shop.Admin/*".to_owned()]
        ]
    );
    assert!(
        got[0]
            .rules
            .iter()
            .all(|r| r.to[0].ports == vec![8080] && r.from.is_empty())
    );
    // Only this pass's findings (the Gateway API pass notes the Server parent on its own).
    let ignored: Vec<_> = diags(&c, Code::IgnoredSetting)
        .into_iter()
        .filter(|d| d.message.contains("cannot be used for authorization"))
        .collect();
    assert!(
        ignored.len() == 1 && ignored[0].kind == "GRPCRoute",
        "{ignored:#?}"
    );
}
