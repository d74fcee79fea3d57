//! Linkerd `AuthorizationPolicy` (a target plus the authentications every client must pass) and
//! `MeshTLSAuthentication` (clients by mTLS identity).

use crate::resources::names::is_dns1123_label;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

const POLICY_GROUP: &str = "policy.linkerd.io";
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// AuthorizationPolicy spec: clients of `targetRef` are authorized when they pass every
/// authentication in `requiredAuthenticationRefs` (an empty list authorizes everyone).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthorizationPolicy {
    pub target_ref: Option<TargetRef>,
    /// Required by the CRD, even when empty, so an omission is reported.
    pub required_authentication_refs: Option<Vec<NamespacedTargetRef>>,
}

/// A resource in the policy's namespace: Server, HTTPRoute, GRPCRoute or the Namespace itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TargetRef {
    /// Empty or unset means the core group.
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
}

/// A resource that may live in another namespace (unset means the referrer's).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NamespacedTargetRef {
    pub group: Option<String>,
    pub kind: String,
    /// Unset in `identityRefs` means every resource of the kind.
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// MeshTLSAuthentication spec: clients whose mTLS identity is listed, by name or by reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshTlsAuthentication {
    /// Identity strings; `*` and `*.domain` are wildcards.
    pub identities: Vec<String>,
    /// ServiceAccounts (name `*` for all in the namespace) or Namespaces.
    pub identity_refs: Vec<NamespacedTargetRef>,
}

/// Does a reference with `group`/`kind` name a resource of (`want_group`, `want_kind`)? Linkerd
/// compares case-insensitively and reads an empty group as the core group.
fn is_kind(group: Option<&str>, kind: &str, want_group: &str, want_kind: &str) -> bool {
    let norm = |g: &str| {
        if g.eq_ignore_ascii_case("core") {
            String::new()
        } else {
            g.to_ascii_lowercase()
        }
    };
    kind.eq_ignore_ascii_case(want_kind) && norm(group.unwrap_or("")) == norm(want_group)
}

impl TargetRef {
    /// Does this reference name a resource of `group`/`kind` (`""` for the core group)?
    pub fn targets_kind(&self, group: &str, kind: &str) -> bool {
        is_kind(self.group.as_deref(), &self.kind, group, kind)
    }
}

impl NamespacedTargetRef {
    /// Does this reference name a resource of `group`/`kind` (`""` for the core group)?
    pub fn targets_kind(&self, group: &str, kind: &str) -> bool {
        is_kind(self.group.as_deref(), &self.kind, group, kind)
    }
}

/// Check `kind` against `allowed` (group, kind) pairs: an unknown kind and a known kind in the
/// wrong group get different messages, because a missing `group` is the usual mistake.
fn check_kind(
    cx: &mut Cx,
    group: Option<&str>,
    kind: &str,
    allowed: &[(&str, &str)],
    what: &str,
) -> bool {
    if allowed.iter().any(|(g, k)| is_kind(group, kind, g, k)) {
        return true;
    }
    let groups: Vec<&str> = allowed
        .iter()
        .filter(|(_, k)| k.eq_ignore_ascii_case(kind))
        .map(|(g, _)| *g)
        .collect();
    if groups.is_empty() {
        let kinds: Vec<&str> = allowed.iter().map(|(_, k)| *k).collect();
        cx.error_at(
            "kind",
            format!(
                "{what} cannot be a {kind}; expected one of {}",
                kinds.join(", ")
            ),
        );
    } else {
        let want: Vec<String> = groups
            .iter()
            .map(|g| {
                if g.is_empty() {
                    "\"\" (core)".to_owned()
                } else {
                    (*g).to_owned()
                }
            })
            .collect();
        cx.error_at(
            "group",
            format!(
                "{kind} is in group {}; got {:?}",
                want.join(" or "),
                group.unwrap_or_default()
            ),
        );
    }
    false
}

/// Linkerd's identity pattern: DNS labels joined by dots, the first of which may be `*`.
pub(crate) fn check_identity(cx: &mut Cx, id: &str) {
    let mut labels = id.split('.');
    let first_ok = labels
        .next()
        .is_some_and(|l| l == "*" || is_dns1123_label(l));
    if !(first_ok && labels.all(is_dns1123_label)) {
        cx.error(format!(
            "{id:?} is not a valid identity; expected e.g. \"web.default.serviceaccount.identity.linkerd.cluster.local\", \"*.cluster.local\" or \"*\""
        ));
    }
}

impl Validate for AuthorizationPolicy {
    fn validate(&self, cx: &mut Cx) {
        cx.require("targetRef", self.target_ref.is_some());
        if let Some(t) = &self.target_ref {
            cx.field("targetRef", |cx| {
                cx.require("kind", !t.kind.is_empty());
                cx.require("name", !t.name.is_empty());
                if !t.kind.is_empty() {
                    let allowed = [
                        (POLICY_GROUP, "Server"),
                        (POLICY_GROUP, "HTTPRoute"),
                        (GATEWAY_GROUP, "HTTPRoute"),
                        (GATEWAY_GROUP, "GRPCRoute"),
                        ("", "Namespace"),
                    ];
                    check_kind(cx, t.group.as_deref(), &t.kind, &allowed, "targetRef");
                }
            });
        }
        cx.require(
            "requiredAuthenticationRefs",
            self.required_authentication_refs.is_some(),
        );
        let refs = self
            .required_authentication_refs
            .as_deref()
            .unwrap_or_default();
        cx.field("requiredAuthenticationRefs", |cx| {
            let allowed = [(POLICY_GROUP, "MeshTLSAuthentication"), (POLICY_GROUP, "NetworkAuthentication"), ("", "ServiceAccount")];
            for (i, r) in refs.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("kind", !r.kind.is_empty());
                    cx.require("name", r.name.as_deref().is_some_and(|n| !n.is_empty()));
                    if !r.kind.is_empty() {
                        check_kind(cx, r.group.as_deref(), &r.kind, &allowed, "an authentication");
                    }
                });
            }
            let count = |g: &str, k: &str| refs.iter().filter(|r| r.targets_kind(g, k)).count();
            let mtls = count(POLICY_GROUP, "MeshTLSAuthentication");
            let sa = count("", "ServiceAccount");
            let net = count(POLICY_GROUP, "NetworkAuthentication");
            if mtls > 1 {
                cx.error("only one MeshTLSAuthentication may be required; list all identities in one");
            }
            if sa > 1 {
                cx.error("only one ServiceAccount may be required; use a MeshTLSAuthentication to allow several");
            }
            if mtls >= 1 && sa >= 1 {
                cx.error("a MeshTLSAuthentication and a ServiceAccount may not be required together");
            }
            if net > 1 {
                cx.error("only one NetworkAuthentication may be required; list all networks in one");
            }
        });
    }
}

impl Validate for MeshTlsAuthentication {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["identities", "identityRefs"],
            &[!self.identities.is_empty(), !self.identity_refs.is_empty()],
            true,
        );
        cx.field("identities", |cx| {
            for (i, id) in self.identities.iter().enumerate() {
                cx.index(i, |cx| check_identity(cx, id));
            }
        });
        cx.field("identityRefs", |cx| {
            for (i, r) in self.identity_refs.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("kind", !r.kind.is_empty());
                    if r.kind.is_empty() {
                        return;
                    }
                    let allowed = [("", "ServiceAccount"), ("", "Namespace")];
                    if check_kind(
                        cx,
                        r.group.as_deref(),
                        &r.kind,
                        &allowed,
                        "an identity reference",
                    ) && r.targets_kind("", "Namespace")
                        && r.namespace.is_some()
                    {
                        cx.error_at(
                            "namespace",
                            "a Namespace is cluster-scoped; remove `namespace`",
                        );
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    fn load(kind: &str, spec: &str) -> (Option<Spec>, Vec<Diagnostic>) {
        let text = format!(
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: x\nspec:\n{spec}"
        );
        let loaded = load_str("test.yaml", &text, &LoadOptions::default());
        (
            loaded.resources.into_iter().next().map(|r| r.spec),
            loaded.diagnostics,
        )
    }

    fn policy(spec: &str) -> (Option<AuthorizationPolicy>, Vec<Diagnostic>) {
        match load("AuthorizationPolicy", spec) {
            (Some(Spec::LinkerdAuthorizationPolicy(p)), d) => (Some(*p), d),
            (_, d) => (None, d),
        }
    }

    fn mtls(spec: &str) -> (Option<MeshTlsAuthentication>, Vec<Diagnostic>) {
        match load("MeshTLSAuthentication", spec) {
            (Some(Spec::MeshTlsAuthentication(p)), d) => (Some(*p), d),
            (_, d) => (None, d),
        }
    }

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    #[test]
    fn authorization_policy_parses() {
        let (p, diags) = policy(
            "  targetRef:\n    group: policy.linkerd.io\n    kind: Server\n    name: web-http\n  requiredAuthenticationRefs:\n  - name: web-clients\n    kind: MeshTLSAuthentication\n    group: policy.linkerd.io\n  - name: cluster\n    namespace: linkerd\n    kind: NetworkAuthentication\n    group: policy.linkerd.io\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let p = p.expect("loaded");
        let t = p.target_ref.expect("targetRef");
        assert!(t.targets_kind("policy.linkerd.io", "Server"));
        let refs = p.required_authentication_refs.expect("refs");
        assert_eq!(refs[1].namespace.as_deref(), Some("linkerd"));
        assert!(refs[1].targets_kind(POLICY_GROUP, "NetworkAuthentication"));
        let (p, diags) = policy(
            "  targetRef:\n    kind: Namespace\n    name: x\n  requiredAuthenticationRefs:\n  - kind: ServiceAccount\n    name: web\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert!(
            p.and_then(|p| p.target_ref)
                .is_some_and(|t| t.targets_kind("", "Namespace"))
        );
        let (_, diags) = policy(
            "  targetRef:\n    group: gateway.networking.k8s.io\n    kind: HTTPRoute\n    name: r\n  requiredAuthenticationRefs: []\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn authorization_policy_rules() {
        let (_, diags) = policy("  {}\n");
        assert!(
            diags.iter().any(|d| d.message.contains("`spec.targetRef`")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.requiredAuthenticationRefs`")),
            "{diags:?}"
        );
        let (_, diags) = policy(
            "  targetRef:\n    kind: Server\n    name: web\n  requiredAuthenticationRefs:\n  - kind: Secret\n    name: s\n  - kind: MeshTLSAuthentication\n",
        );
        assert!(
            has(&diags, 7, "Server is in group policy.linkerd.io"),
            "{diags:?}"
        );
        assert!(has(&diags, 10, "cannot be a Secret"), "{diags:?}");
        assert!(
            has(
                &diags,
                12,
                "MeshTLSAuthentication is in group policy.linkerd.io"
            ),
            "{diags:?}"
        );
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("`spec.requiredAuthenticationRefs[1].name`")),
            "{diags:?}"
        );
        let (_, diags) = policy(
            "  targetRef:\n    kind: Deployment\n    group: apps\n    name: web\n  requiredAuthenticationRefs:\n  - {kind: ServiceAccount, name: a}\n  - {kind: MeshTLSAuthentication, group: policy.linkerd.io, name: b}\n  - {kind: NetworkAuthentication, group: policy.linkerd.io, name: c}\n  - {kind: NetworkAuthentication, group: policy.linkerd.io, name: d}\n",
        );
        assert!(
            has(&diags, 7, "targetRef cannot be a Deployment"),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("may not be required together")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("only one NetworkAuthentication")),
            "{diags:?}"
        );
    }

    #[test]
    fn mesh_tls_authentication_parses() {
        let (m, diags) = mtls(
            "  identities:\n  - '*.linkerd.cluster.local'\n  - web.default.serviceaccount.identity.linkerd.cluster.local\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(m.map(|m| m.identities.len()), Some(2));
        let (m, diags) = mtls(
            "  identityRefs:\n  - kind: ServiceAccount\n    name: web\n    namespace: shop\n  - kind: Namespace\n    name: shop\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let m = m.expect("loaded");
        assert_eq!(m.identity_refs[0].namespace.as_deref(), Some("shop"));
        assert!(m.identity_refs[1].targets_kind("", "Namespace"));
    }

    #[test]
    fn mesh_tls_authentication_rules() {
        let (_, diags) = mtls("  identities: []\n");
        assert!(
            diags.iter().any(|d| d
                .message
                .contains("one of identities, identityRefs is required")),
            "{diags:?}"
        );
        let (_, diags) =
            mtls("  identities: ['*']\n  identityRefs: [{kind: ServiceAccount, name: a}]\n");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("only one of identities, identityRefs")),
            "{diags:?}"
        );
        let (_, diags) = mtls("  identities: ['Web.default', 'a..b', 'x.*']\n");
        assert_eq!(
            diags
                .iter()
                .filter(|d| d.message.contains("not a valid identity"))
                .count(),
            3,
            "{diags:?}"
        );
        let (_, diags) = mtls(
            "  identityRefs:\n  - kind: Namespace\n    name: shop\n    namespace: shop\n  - kind: Pod\n    name: p\n  - name: q\n",
        );
        assert!(has(&diags, 9, "cluster-scoped"), "{diags:?}");
        assert!(has(&diags, 10, "cannot be a Pod"), "{diags:?}");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.identityRefs[2].kind`")),
            "{diags:?}"
        );
    }
}
