//! Security policies: mTLS requirements, authorization and request authentication.
//!
//! Scoping follows Istio everywhere: a policy in the root namespace (`istio-system` by
//! default) without a selector applies mesh-wide, one in a workload's namespace without a
//! selector applies to that namespace, and one with a selector to the selected workloads.

use std::collections::BTreeMap;

use crate::authz::AuthzPolicy;
use crate::jwt::JwtPolicy;
use crate::labels::{Labels, is_workload_selector, optional_selector_matches};
use crate::origin::SourceRef;

/// The namespace whose selector-less policies apply mesh-wide, as in Istio.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

/// All security policies of the mesh. Each list is kept in creation order (oldest
/// first), because Istio resolves conflicts between equally specific policies in favour
/// of the oldest.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SecurityPolicies {
    /// Whether inbound traffic must, may or must not use mTLS (PeerAuthentication).
    pub peer_authentication: Vec<PeerAuthn>,
    /// Who may call what (AuthorizationPolicy, Linkerd policy).
    pub authorization: Vec<AuthzPolicy>,
    /// Which JWTs are accepted (RequestAuthentication).
    pub request_authentication: Vec<JwtPolicy>,
}

/// A PeerAuthentication: the mTLS requirement for inbound traffic.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PeerAuthn {
    /// The resource it was compiled from.
    pub origin: SourceRef,
    /// Namespace; in the root namespace and without selector it applies mesh-wide.
    pub namespace: String,
    /// Workloads it applies to; `None` or empty means the whole namespace.
    pub selector: Option<Labels>,
    /// Mode for all ports.
    pub mode: MtlsMode,
    /// Per-port modes, keyed by workload (container) port; only honoured on policies with
    /// a selector, as in Istio.
    pub port_modes: BTreeMap<u16, MtlsMode>,
}

/// Whether inbound connections must use mesh mTLS.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MtlsMode {
    /// Inherit from the enclosing scope.
    #[default]
    Unset,
    /// Plaintext only; mTLS connections are not terminated.
    Disable,
    /// Accept both mTLS and plaintext (the mesh default, for gradual onboarding).
    Permissive,
    /// mTLS only; plaintext connections are refused.
    Strict,
}

impl MtlsMode {
    /// Whether plaintext connections are accepted.
    pub fn accepts_plaintext(self) -> bool {
        self != MtlsMode::Strict
    }

    /// Whether mTLS connections are terminated.
    pub fn accepts_mtls(self) -> bool {
        self != MtlsMode::Disable
    }

    /// `self`, or `parent` when `self` is `Unset`.
    fn or(self, parent: MtlsMode) -> MtlsMode {
        if self == MtlsMode::Unset {
            parent
        } else {
            self
        }
    }
}

impl SecurityPolicies {
    /// The mTLS mode for inbound traffic to a workload in `namespace` with `labels`, on
    /// container `port` (`None` for the workload-wide mode), following Istio:
    ///
    /// 1. start from `Permissive`;
    /// 2. the oldest selector-less policy in `root_namespace` (mesh-wide) applies unless
    ///    `Unset`;
    /// 3. then the oldest selector-less policy in `namespace`, unless `Unset`;
    /// 4. then the oldest selector policy in `namespace` selecting the workload, unless
    ///    `Unset`; its port-level mode for `port` overrides, `Unset` meaning its own mode.
    ///
    /// Selector policies in the root namespace are ignored, as in Istio. The result is
    /// never `Unset`.
    pub fn effective_mtls(
        &self,
        namespace: &str,
        labels: &Labels,
        port: Option<u16>,
        root_namespace: &str,
    ) -> MtlsMode {
        let policies = &self.peer_authentication;
        let scope_wide = |ns: &str| {
            policies
                .iter()
                .find(|p| p.namespace == ns && !is_workload_selector(p.selector.as_ref()))
        };
        let workload = policies.iter().find(|p| {
            p.namespace == namespace
                && p.namespace != root_namespace
                && is_workload_selector(p.selector.as_ref())
                && optional_selector_matches(p.selector.as_ref(), labels)
        });

        let mut mode = MtlsMode::Permissive;
        if let Some(mesh) = scope_wide(root_namespace) {
            mode = mesh.mode.or(mode);
        }
        if namespace != root_namespace
            && let Some(ns) = scope_wide(namespace)
        {
            mode = ns.mode.or(mode);
        }
        if let Some(w) = workload {
            mode = w.mode.or(mode);
            if let Some(port_mode) = port.and_then(|p| w.port_modes.get(&p)) {
                mode = port_mode.or(mode);
            }
        }
        mode
    }

    /// The authorization policies that apply to a workload in `namespace` with
    /// `labels`: policies in `root_namespace` or `namespace` whose selector (if any)
    /// selects it. Policies attached through `target` are excluded; they apply to the
    /// targeted gateway or waypoint, not by selection.
    pub fn authz_for<'a>(
        &'a self,
        namespace: &'a str,
        labels: &'a Labels,
        root_namespace: &'a str,
    ) -> impl Iterator<Item = &'a AuthzPolicy> + 'a {
        self.authorization.iter().filter(move |p| {
            p.target.is_none()
                && (p.namespace == namespace || p.namespace == root_namespace)
                && optional_selector_matches(p.selector.as_ref(), labels)
        })
    }

    /// The request-authentication policies that apply to a workload, scoped like
    /// [`SecurityPolicies::authz_for`]; the workload accepts the union of their rules.
    pub fn jwt_for<'a>(
        &'a self,
        namespace: &'a str,
        labels: &'a Labels,
        root_namespace: &'a str,
    ) -> impl Iterator<Item = &'a JwtPolicy> + 'a {
        self.request_authentication.iter().filter(move |p| {
            (p.namespace == namespace || p.namespace == root_namespace)
                && optional_selector_matches(p.selector.as_ref(), labels)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MtlsMode::*;
    use super::*;

    const ROOT: &str = DEFAULT_ROOT_NAMESPACE;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pa(namespace: &str, selector: Option<Labels>, mode: MtlsMode) -> PeerAuthn {
        PeerAuthn {
            namespace: namespace.into(),
            selector,
            mode,
            ..PeerAuthn::default()
        }
    }

    fn mode(policies: Vec<PeerAuthn>, ns: &str, port: Option<u16>) -> MtlsMode {
        let sec = SecurityPolicies {
            peer_authentication: policies,
            ..SecurityPolicies::default()
        };
        sec.effective_mtls(ns, &labels(&[("app", "reviews")]), port, ROOT)
    }

    #[test]
    fn default_is_permissive() {
        assert_eq!(mode(vec![], "default", None), Permissive);
        assert_eq!(
            mode(vec![pa(ROOT, None, Unset)], "default", None),
            Permissive
        );
    }

    #[test]
    fn precedence_mesh_namespace_workload() {
        let app = Some(labels(&[("app", "reviews")]));
        let other = Some(labels(&[("app", "ratings")]));
        assert_eq!(mode(vec![pa(ROOT, None, Strict)], "default", None), Strict);
        let ns_over_mesh = vec![pa(ROOT, None, Strict), pa("default", None, Permissive)];
        assert_eq!(mode(ns_over_mesh.clone(), "default", None), Permissive);
        assert_eq!(
            mode(ns_over_mesh, "prod", None),
            Strict,
            "other namespace keeps mesh mode"
        );
        let workload = vec![pa(ROOT, None, Strict), pa("default", app.clone(), Disable)];
        assert_eq!(mode(workload, "default", None), Disable);
        let unselected = vec![pa(ROOT, None, Strict), pa("default", other, Disable)];
        assert_eq!(mode(unselected, "default", None), Strict);
        // Unset inherits at every level.
        let inherit = vec![
            pa(ROOT, None, Strict),
            pa("default", None, Unset),
            pa("default", app, Unset),
        ];
        assert_eq!(mode(inherit, "default", None), Strict);
        // An empty selector is namespace-wide; a selector in the root namespace is ignored.
        let empty = vec![pa("default", Some(Labels::new()), Disable)];
        assert_eq!(mode(empty, "default", None), Disable);
        let root_selector = vec![pa(ROOT, Some(labels(&[("app", "reviews")])), Strict)];
        assert_eq!(mode(root_selector, "default", None), Permissive);
    }

    #[test]
    fn oldest_wins_among_equals() {
        let policies = vec![pa("default", None, Strict), pa("default", None, Disable)];
        assert_eq!(mode(policies, "default", None), Strict);
    }

    #[test]
    fn port_level_overrides() {
        let mut w = pa("default", Some(labels(&[("app", "reviews")])), Strict);
        w.port_modes = BTreeMap::from([(8080, Permissive), (9090, Unset)]);
        let policies = vec![pa(ROOT, None, Disable), w];
        assert_eq!(mode(policies.clone(), "default", None), Strict);
        assert_eq!(mode(policies.clone(), "default", Some(8080)), Permissive);
        assert_eq!(
            mode(policies.clone(), "default", Some(9090)),
            Strict,
            "unset port inherits workload"
        );
        assert_eq!(mode(policies, "default", Some(80)), Strict);
        // Port modes on namespace-wide policies are ignored.
        let mut ns = pa("default", None, Strict);
        ns.port_modes.insert(8080, Disable);
        assert_eq!(mode(vec![ns], "default", Some(8080)), Strict);
    }

    #[test]
    fn authz_scoping() {
        let policy = |ns: &str, selector: Option<Labels>, name: &str| AuthzPolicy {
            namespace: ns.into(),
            selector,
            origin: SourceRef::new("AuthorizationPolicy", ns, name),
            ..AuthzPolicy::default()
        };
        let sec = SecurityPolicies {
            authorization: vec![
                policy(ROOT, None, "mesh"),
                policy(ROOT, Some(labels(&[("app", "reviews")])), "mesh-reviews"),
                policy("default", None, "ns"),
                policy("default", Some(labels(&[("app", "ratings")])), "ratings"),
                policy("prod", None, "prod"),
                AuthzPolicy {
                    target: Some(SourceRef::new("Gateway", "default", "ingress")),
                    ..policy("default", None, "gateway")
                },
            ],
            ..SecurityPolicies::default()
        };
        let pod = labels(&[("app", "reviews")]);
        let names: Vec<&str> = sec
            .authz_for("default", &pod, ROOT)
            .map(|p| p.origin.name.as_str())
            .collect();
        assert_eq!(names, ["mesh", "mesh-reviews", "ns"]);
    }
}
