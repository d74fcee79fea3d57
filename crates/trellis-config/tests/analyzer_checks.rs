//! The cross-resource checks of `trellis analyze`, one behaviour per test, on small inputs.

use trellis_config::{Code, LoadOptions, Severity, analyze, load_str};

/// (code, severity, line, message) of every finding.
fn findings(yaml: &str) -> Vec<(Code, Severity, u32, String)> {
    let loaded = load_str("t.yaml", yaml, &LoadOptions::default());
    analyze::analyze(&loaded)
        .into_iter()
        .map(|d| (d.code, d.severity, d.line, d.message))
        .collect()
}

fn has(f: &[(Code, Severity, u32, String)], code: Code, line: u32, fragment: &str) -> bool {
    f.iter()
        .any(|(c, _, l, m)| *c == code && *l == line && m.contains(fragment))
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{name: http, port: 8080}]\n---\n";

#[test]
fn destination_hosts_resolve_by_short_namespaced_and_full_names() {
    let yaml = format!(
        "{SERVICE}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: other}}\nspec:\n  hosts: [x.example.com]\n  http:\n  - route:\n    - destination: {{host: web.shop}}\n      weight: 50\n    - destination: {{host: web.shop.svc.cluster.local}}\n      weight: 50\n  - route:\n    - destination: {{host: web}}\n"
    );
    let f = findings(&yaml);
    // `web` from namespace `other` is web.other, which does not exist; the other two resolve.
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            20,
            "Referenced host not found: \"web\""
        ),
        "{f:#?}"
    );
    assert_eq!(
        f.iter()
            .filter(|(c, ..)| *c == Code::ReferencedResourceNotFound)
            .count(),
        1,
        "{f:#?}"
    );
}

#[test]
fn gateways_and_delegates_must_exist() {
    let yaml = format!(
        "{SERVICE}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: shop}}\nspec:\n  hosts: [web]\n  gateways: [mesh, edge, istio-system/public]\n  http:\n  - match: [{{uri: {{prefix: /api}}}}]\n    delegate: {{name: api-routes}}\n  - route: [{{destination: {{host: web}}}}]\n"
    );
    let f = findings(&yaml);
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            13,
            "gateway not found: \"shop/edge\""
        ),
        "{f:#?}"
    );
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            13,
            "gateway not found: \"istio-system/public\""
        ),
        "{f:#?}"
    );
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            16,
            "delegate VirtualService not found: \"shop/api-routes\""
        ),
        "{f:#?}"
    );
}

#[test]
fn gateway_api_parents_and_backends_must_exist() {
    let yaml = format!(
        "{SERVICE}apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: shop}}\nspec:\n  parentRefs:\n  - {{name: web, kind: Service, group: \"\"}}\n  - {{name: edge}}\n  rules:\n  - backendRefs:\n    - {{name: web, port: 8080}}\n    - {{name: web-v2, port: 8080}}\n"
    );
    let f = findings(&yaml);
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            14,
            "parent not found: Gateway \"edge\""
        ),
        "{f:#?}"
    );
    assert!(
        has(
            &f,
            Code::ReferencedResourceNotFound,
            18,
            "backend not found: Service \"web-v2\""
        ),
        "{f:#?}"
    );
    assert!(
        !f.iter().any(|(_, _, _, m)| m.contains("Service \"web\"")),
        "{f:#?}"
    );
}

#[test]
fn all_zero_weights_is_an_error_other_sums_a_warning() {
    let yaml = format!(
        "{SERVICE}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: shop}}\nspec:\n  hosts: [web]\n  http:\n  - route:\n    - {{destination: {{host: web}}, weight: 0}}\n    - {{destination: {{host: web}}, weight: 0}}\n  - route:\n    - {{destination: {{host: web}}, weight: 30}}\n"
    );
    let f = findings(&yaml);
    let w: Vec<_> = f.iter().filter(|(c, ..)| *c == Code::WeightSum).collect();
    assert_eq!(w.len(), 2, "{f:#?}");
    assert_eq!((w[0].1, w[0].2), (Severity::Error, 15));
    assert!(w[0].3.contains("no request can be routed"));
    assert_eq!((w[1].1, w[1].2), (Severity::Warning, 18));
    assert!(w[1].3.contains("add up to 30"));
}

#[test]
fn identical_matches_are_ineffective() {
    let yaml = format!(
        "{SERVICE}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: shop}}\nspec:\n  hosts: [web]\n  http:\n  - name: first\n    match: [{{uri: {{prefix: /a}}, name: one}}]\n    route: [{{destination: {{host: web}}}}]\n  - name: second\n    match: [{{uri: {{prefix: /b}}}}, {{uri: {{prefix: /a}}, name: two}}]\n    route: [{{destination: {{host: web}}}}]\n"
    );
    let f = findings(&yaml);
    assert!(
        has(
            &f,
            Code::IneffectiveMatch,
            18,
            "identical to spec.http[0].match[0]"
        ),
        "{f:#?}"
    );
    assert_eq!(
        f.iter()
            .filter(|(c, ..)| *c == Code::IneffectiveMatch)
            .count(),
        1,
        "{f:#?}"
    );
}

#[test]
fn uri_prefix_slash_is_a_catch_all() {
    let yaml = format!(
        "{SERVICE}apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: shop}}\nspec:\n  hosts: [web]\n  http:\n  - match: [{{uri: {{prefix: /}}}}]\n    route: [{{destination: {{host: web}}}}]\n  - match: [{{uri: {{prefix: /admin}}}}]\n    route: [{{destination: {{host: web}}}}]\n"
    );
    let f = findings(&yaml);
    assert!(
        has(
            &f,
            Code::IneffectiveMatch,
            16,
            "spec.http[0] before it matches every request"
        ),
        "{f:#?}"
    );
}

#[test]
fn mtls_conflicts_are_found_per_subset_and_mesh_wide() {
    let yaml = format!(
        "{SERVICE}apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: istio-system}}\nspec:\n  mtls: {{mode: STRICT}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: web, namespace: shop}}\nspec:\n  host: web\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n    trafficPolicy:\n      tls: {{mode: DISABLE}}\n"
    );
    let f = findings(&yaml);
    assert!(
        has(
            &f,
            Code::MtlsConflict,
            23,
            "PeerAuthentication istio-system/default requires mutual TLS"
        ),
        "{f:#?}"
    );
    // A namespace policy that is PERMISSIVE overrides the mesh-wide STRICT: no conflict.
    let permissive = format!(
        "{yaml}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: default, namespace: shop}}\nspec:\n  mtls: {{mode: PERMISSIVE}}\n"
    );
    assert!(
        !findings(&permissive)
            .iter()
            .any(|(c, ..)| *c == Code::MtlsConflict)
    );
}

#[test]
fn selectors_are_scoped_to_their_namespace_except_in_the_root_namespace() {
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: x}]}\n---\n";
    let policy = |ns: &str| {
        format!(
            "{deploy}apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  action: DENY\n  rules: [{{}}]\n"
        )
    };
    assert!(
        !findings(&policy("shop"))
            .iter()
            .any(|(c, ..)| *c == Code::NoMatchingWorkloads)
    );
    assert!(
        findings(&policy("other"))
            .iter()
            .any(|(c, ..)| *c == Code::NoMatchingWorkloads)
    );
    assert!(
        !findings(&policy("istio-system"))
            .iter()
            .any(|(c, ..)| *c == Code::NoMatchingWorkloads)
    );
}

#[test]
fn linkerd_server_selectors_use_match_expressions() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: shop, labels: {app: web, tier: front}}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata: {name: s, namespace: shop}\nspec:\n  podSelector:\n    matchExpressions: [{key: tier, operator: In, values: [back]}]\n  port: 8080\n";
    let f = findings(yaml);
    assert!(
        has(&f, Code::NoMatchingWorkloads, 11, "podSelector"),
        "{f:#?}"
    );
}

const LOCAL: &str = "apiVersion: trellis.dev/v1alpha1\nkind: LocalWorkload\nmetadata: {name: web-v1, namespace: shop}\nspec:\n  labels: {app: web, version: v1}\n  command: web\n  port: 8080\n";

#[test]
fn local_workloads_are_known_and_satisfy_selectors() {
    let policy = "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  selector: {matchLabels: {version: v1}}\n  action: DENY\n  rules: [{}]\n---\napiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata: {name: s, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  port: 8080\n";
    let f = findings(&format!("{SERVICE}{LOCAL}{policy}"));
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn a_service_that_misses_the_local_workloads_port_is_reported_at_the_port_field() {
    let service = |ports: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\nspec:\n  selector: {{app: web}}\n  ports:\n{ports}---\n{LOCAL}"
        )
    };
    // Matching by targetPort, or by port when targetPort is unset: nothing to say.
    for ok in [
        "  - {name: http, port: 80, targetPort: 8080}\n",
        "  - {name: http, port: 8080}\n",
        "  - {name: admin, port: 9000}\n  - {name: http, port: 8080, targetPort: 0}\n",
    ] {
        let f = findings(&service(ok));
        assert!(
            !f.iter().any(|(c, ..)| *c == Code::LocalPortMismatch),
            "{ok}: {f:#?}"
        );
    }
    let f = findings(&service("  - name: http\n    port: 80\n"));
    assert!(
        has(
            &f,
            Code::LocalPortMismatch,
            8,
            "sends traffic to port 80 of LocalWorkload shop/web-v1, which listens on 8080"
        ),
        "{f:#?}"
    );
    assert!(f.iter().all(|(_, s, ..)| *s == Severity::Warning), "{f:#?}");
    let f = findings(&service(
        "  - name: http\n    port: 80\n    targetPort: http-web\n  - {name: grpc, port: 9090, targetPort: 9091}\n",
    ));
    assert!(
        has(
            &f,
            Code::LocalPortMismatch,
            9,
            "ports \"http-web\" (a name; a LocalWorkload's port has none), 9091"
        ),
        "{f:#?}"
    );
    // Other namespaces and unselected workloads are not the Service's business.
    let f = findings(&service("  - {name: http, port: 80}\n").replace(
        "namespace: shop}\nspec:\n  labels",
        "namespace: prod}\nspec:\n  labels",
    ));
    assert!(
        !f.iter().any(|(c, ..)| *c == Code::LocalPortMismatch),
        "{f:#?}"
    );
}
