//! TCPRoute and TLSRoute: layer-4 forwarding, by listener port (TCP) or by SNI (TLS).

use super::shared::{
    BackendRef, DefaultScope, ParentReference, validate_hostnames, validate_parent_refs,
};
use super::{check_max, check_non_empty, check_unique_rule_names};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// TCPRoute spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpRoute {
    pub parent_refs: Vec<ParentReference>,
    pub use_default_gateways: Option<DefaultScope>,
    pub rules: Vec<TcpRouteRule>,
}

/// Connections are spread over `backendRefs` by weight.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpRouteRule {
    pub name: Option<String>,
    pub backend_refs: Vec<BackendRef>,
}

/// TLSRoute spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsRoute {
    pub parent_refs: Vec<ParentReference>,
    pub use_default_gateways: Option<DefaultScope>,
    /// Matched against the SNI of the ClientHello.
    pub hostnames: Vec<String>,
    pub rules: Vec<TlsRouteRule>,
}

/// Connections are spread over `backendRefs` by weight.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsRouteRule {
    pub name: Option<String>,
    pub backend_refs: Vec<BackendRef>,
}

/// Rules of either kind: v1alpha2 allows 1 to 16 (v1 narrows it to 1; the older limit is kept so
/// both load), each with 1 to 16 backends.
fn validate_l4_rules<'a>(
    cx: &mut Cx,
    rules: impl ExactSizeIterator<Item = (Option<&'a str>, &'a [BackendRef])> + Clone,
) {
    check_non_empty(cx, "rules", rules.len());
    check_max(cx, "rules", rules.len(), 16);
    cx.field("rules", |cx| {
        for (i, (_, backends)) in rules.clone().enumerate() {
            cx.index(i, |cx| {
                cx.list("backendRefs", backends);
                check_non_empty(cx, "backendRefs", backends.len());
                check_max(cx, "backendRefs", backends.len(), 16);
            });
        }
    });
    check_unique_rule_names(cx, rules.map(|(name, _)| name));
}

impl Validate for TcpRoute {
    fn validate(&self, cx: &mut Cx) {
        validate_parent_refs(cx, &self.parent_refs);
        validate_l4_rules(
            cx,
            self.rules
                .iter()
                .map(|r| (r.name.as_deref(), r.backend_refs.as_slice())),
        );
    }
}

impl Validate for TlsRoute {
    fn validate(&self, cx: &mut Cx) {
        validate_parent_refs(cx, &self.parent_refs);
        // v1alpha2 allowed 16 hostnames, v1alpha3 (= v1) allows 1024.
        validate_hostnames(cx, &self.hostnames, 1024);
        validate_l4_rules(
            cx,
            self.rules
                .iter()
                .map(|r| (r.name.as_deref(), r.backend_refs.as_slice())),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Severity;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    const ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: postgres}
spec:
  parentRefs: [{name: tcp-gw, sectionName: pg, port: 5432}]
  rules:
  - name: primary
    backendRefs: [{name: postgres, port: 5432}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: passthrough}
spec:
  parentRefs: [{name: tls-gw}]
  hostnames: ["*.internal.example.com"]
  rules:
  - backendRefs:
    - {name: app-v1, port: 8443, weight: 3}
    - {name: app-v2, port: 8443, weight: 1}
"#;

    #[test]
    fn l4_routes_parse() {
        let l = load_str("l4.yaml", ROUTES, &LoadOptions::default());
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        let Spec::TcpRoute(tcp) = &l.resources[0].spec else {
            panic!("not a TCPRoute")
        };
        assert_eq!(tcp.rules[0].name.as_deref(), Some("primary"));
        assert_eq!(tcp.parent_refs[0].port, Some(5432));
        let Spec::TlsRoute(tls) = &l.resources[1].spec else {
            panic!("not a TLSRoute")
        };
        assert_eq!(tls.hostnames, vec!["*.internal.example.com"]);
        assert_eq!(tls.rules[0].backend_refs[1].effective_weight(), 1);
    }

    #[test]
    fn l4_rules_need_backends_with_ports() {
        let bad = ROUTES
            .replace(
                "backendRefs: [{name: postgres, port: 5432}]",
                "backendRefs: []",
            )
            .replace(
                "{name: app-v2, port: 8443, weight: 1}",
                "{name: app-v2, weight: 2000000}",
            )
            .replace("\"*.internal.example.com\"", "\"10.0.0.1\"");
        let l = load_str("l4.yaml", &bad, &LoadOptions::default());
        let msgs: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(l.diagnostics.iter().all(|d| d.severity == Severity::Error));
        assert!(
            msgs.iter()
                .any(|m| m.contains("`backendRefs` needs at least one entry")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("needs a `port`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("weight must be between 0 and 1000000")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("is an IP address")),
            "{msgs:?}"
        );
        assert_eq!(msgs.len(), 4, "{msgs:?}");
    }

    #[test]
    fn empty_rules_are_reported() {
        let l = load_str(
            "l4.yaml",
            "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: x}\nspec:\n  parentRefs: [{name: gw}]\n",
            &LoadOptions::default(),
        );
        assert_eq!(l.diagnostics.len(), 1, "{:?}", l.diagnostics);
        assert!(
            l.diagnostics[0]
                .message
                .contains("`rules` needs at least one entry")
        );
    }
}
