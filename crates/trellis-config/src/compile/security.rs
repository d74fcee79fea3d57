//! Compile Istio `security.istio.io` resources into the model's security policies:
//! PeerAuthentication -> [`PeerAuthn`] (here), AuthorizationPolicy -> `AuthzPolicy`
//! (`security/authz.rs`) and RequestAuthentication -> `JwtPolicy` (`security/jwt.rs`).
//!
//! This pass runs after the Linkerd pass, which also fills `mesh.security.authorization`, so every
//! list is appended to, never replaced. Policies keep input order, which the model reads as age
//! (among equally specific policies the oldest wins). Scoping (mesh-wide in the root namespace,
//! namespace-wide, per workload) is not resolved here: policies are stored as written and the
//! model's `effective_mtls`, `authz_for` and `jwt_for` apply Istio's precedence.

mod authz;
mod jwt;

use super::{Ctx, source_ref};
use crate::diag::{Code, Severity};
use crate::resources::common::WorkloadSelector;
use crate::resources::istio_security::{MutualTlsMode, PeerAuthentication, PolicyTargetReference};
use crate::resources::{Kind, Resource, Spec};
use std::collections::BTreeMap;
use trellis_model::labels::is_workload_selector;
use trellis_model::{Labels, MtlsMode, PeerAuthn, SourceRef};

/// Entry point: PeerAuthentication, then AuthorizationPolicy, then RequestAuthentication. The
/// three are independent; the order only fixes the order of diagnostics.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    peer_authentication(cx);
    authz::compile(cx);
    jwt::compile(cx);
}

/// Append one [`PeerAuthn`] per PeerAuthentication, in input order (= age, which decides between
/// two namespace-wide policies of one namespace).
fn peer_authentication(cx: &mut Ctx<'_>) {
    let resources: Vec<&Resource> = cx.of_kind(Kind::PeerAuthentication).collect();
    for r in resources {
        let Spec::PeerAuthentication(pa) = &r.spec else {
            continue;
        };
        let policy = peer_authn(cx, r, pa);
        cx.mesh.security.peer_authentication.push(policy);
    }
}

/// One PeerAuthentication as the model's [`PeerAuthn`]. A selector-less policy in the root
/// namespace is kept as it is: the model treats it as mesh-wide. A policy with a selector in the
/// root namespace is kept too but has no effect in the model, which is reported.
fn peer_authn(cx: &mut Ctx<'_>, r: &Resource, pa: &PeerAuthentication) -> PeerAuthn {
    let selector = selector(&pa.selector);
    if r.namespace == cx.opts.root_namespace && is_workload_selector(selector.as_ref()) {
        cx.report.at(
            r,
            "spec.selector",
            Code::IgnoredSetting,
            format!(
                "a PeerAuthentication with a selector in the root namespace {:?} has no effect: mesh-wide policies \
                 have no selector, and workload policies belong in the workload's namespace",
                cx.opts.root_namespace
            ),
        );
    }
    let port_modes: BTreeMap<u16, MtlsMode> = pa
        .port_level_mtls
        .iter()
        // Ports outside 1..=65535 were reported by validation; they select no port.
        .filter_map(|(port, m)| {
            Some((
                u16::try_from(*port).ok().filter(|p| *p != 0)?,
                mtls_mode(m.mode),
            ))
        })
        .collect();
    PeerAuthn {
        origin: source_ref(r),
        namespace: r.namespace.clone(),
        selector,
        mode: pa
            .mtls
            .as_ref()
            .map_or(MtlsMode::Unset, |m| mtls_mode(m.mode)),
        port_modes,
    }
}

/// The API's mode as the model's; `UNSET` stays `Unset` so the model inherits from the parent.
fn mtls_mode(mode: MutualTlsMode) -> MtlsMode {
    match mode {
        MutualTlsMode::Unset => MtlsMode::Unset,
        MutualTlsMode::Disable => MtlsMode::Disable,
        MutualTlsMode::Permissive => MtlsMode::Permissive,
        MutualTlsMode::Strict => MtlsMode::Strict,
    }
}

/// `selector.matchLabels` of a policy; `None` when there is no selector, so the model can tell
/// "no selector" from "empty selector" (both namespace-wide, as in Istio).
pub(super) fn selector(selector: &Option<WorkloadSelector>) -> Option<Labels> {
    selector.as_ref().map(|s| s.match_labels.clone())
}

/// The resources a policy attaches to through `targetRef` and `targetRefs` (both, if both are
/// written: validation reports that), as model references. References are always in the
/// policy's namespace (Istio rejects cross-namespace targets), except GatewayClass, which is
/// cluster-scoped. The kind is kept as written (`Gateway` is the Gateway API Gateway, the only
/// Gateway a policy can target).
pub(super) fn targets(
    namespace: &str,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) -> Vec<SourceRef> {
    target_ref
        .iter()
        .chain(target_refs)
        .map(|t| {
            let ns = if t.kind == "GatewayClass" {
                ""
            } else {
                namespace
            };
            SourceRef::new(t.kind.clone(), ns, t.name.clone())
        })
        .collect()
}

/// For kinds whose model policy has no attachment point (RequestAuthentication, Telemetry):
/// when the resource uses `targetRef`/`targetRefs`, report that it is skipped and return true.
/// Skipping is the safe choice: applying it to the whole namespace instead would change traffic
/// that the author did not target.
pub(super) fn skip_targeted(
    cx: &mut Ctx<'_>,
    r: &Resource,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
) -> bool {
    let path = match (target_ref, target_refs.is_empty()) {
        (Some(_), _) => "spec.targetRef",
        (None, false) => "spec.targetRefs",
        (None, true) => return false,
    };
    let kind = r.kind().name();
    cx.report.with_severity(
        r,
        path,
        Code::IgnoredSetting,
        Severity::Warning,
        format!(
            "attaching a {kind} to a gateway or waypoint with targetRef/targetRefs is not supported yet; \
             this {kind} is skipped (use a workload `selector`)"
        ),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileOptions, Compiled, compile};
    use crate::diag::Diagnostic;
    use crate::load::{LoadOptions, load_str};
    use trellis_model::{AuthzPolicy, AuthzSource};

    pub(super) fn compile_yaml(text: &str) -> Compiled {
        let loaded = load_str("t.yaml", text, &LoadOptions::default());
        compile(&loaded.resources, &CompileOptions::default())
    }

    pub(super) fn with_code(c: &Compiled, code: Code) -> Vec<&Diagnostic> {
        c.diagnostics.iter().filter(|d| d.code == code).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pa(ns: &str, name: &str, body: &str) -> String {
        format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{body}---\n"
        )
    }

    #[test]
    fn seed_000_10_strict_namespace_policy() {
        let c = compile_yaml(include_str!("../../tests/seeds/000-10.yaml"));
        assert_eq!(
            c.mesh.security.peer_authentication,
            [PeerAuthn {
                origin: SourceRef::new("PeerAuthentication", "default", "default"),
                namespace: "default".into(),
                selector: None,
                mode: MtlsMode::Strict,
                port_modes: BTreeMap::new(),
            }]
        );
        assert_eq!(
            c.mesh.mtls_mode("default", &labels(&[("app", "x")]), None),
            MtlsMode::Strict
        );
        assert_eq!(
            c.mesh.mtls_mode("prod", &labels(&[("app", "x")]), None),
            MtlsMode::Permissive
        );
        assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    }

    #[test]
    fn modes_selectors_and_ports() {
        let text = [
            pa("a", "unset", "  selector:\n    matchLabels: {app: a}\n"),
            pa("a", "disable", "  mtls: {mode: DISABLE}\n"),
            pa("a", "permissive", "  mtls: {mode: PERMISSIVE}\n"),
            pa("a", "explicit-unset", "  selector:\n    matchLabels: {}\n  mtls: {mode: UNSET}\n"),
            pa(
                "a",
                "ports",
                "  selector:\n    matchLabels: {app: b}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: PERMISSIVE}\n    9090: {}\n",
            ),
        ]
        .concat();
        let c = compile_yaml(&text);
        let got: Vec<(&str, Option<Labels>, MtlsMode)> = c
            .mesh
            .security
            .peer_authentication
            .iter()
            .map(|p| (p.origin.name.as_str(), p.selector.clone(), p.mode))
            .collect();
        assert_eq!(
            got,
            [
                ("unset", Some(labels(&[("app", "a")])), MtlsMode::Unset),
                ("disable", None, MtlsMode::Disable),
                ("permissive", None, MtlsMode::Permissive),
                ("explicit-unset", Some(Labels::new()), MtlsMode::Unset),
                ("ports", Some(labels(&[("app", "b")])), MtlsMode::Strict),
            ]
        );
        let ports = &c.mesh.security.peer_authentication[4].port_modes;
        assert_eq!(
            ports,
            &BTreeMap::from([(8080, MtlsMode::Permissive), (9090, MtlsMode::Unset)])
        );
    }

    #[test]
    fn precedence_on_compiled_policies() {
        let text = [
            pa("istio-system", "mesh", "  mtls: {mode: STRICT}\n"),
            pa("legacy", "ns", "  mtls: {mode: PERMISSIVE}\n"),
            pa(
                "legacy",
                "db",
                "  selector:\n    matchLabels: {app: db}\n  mtls: {mode: DISABLE}\n  portLevelMtls:\n    5432: {mode: STRICT}\n    9000: {mode: UNSET}\n",
            ),
            pa("legacy", "younger-ns", "  mtls: {mode: DISABLE}\n"),
        ]
        .concat();
        let m = compile_yaml(&text).mesh;
        let (db, web) = (labels(&[("app", "db")]), labels(&[("app", "web")]));
        assert_eq!(
            m.mtls_mode("shop", &web, None),
            MtlsMode::Strict,
            "root namespace is mesh-wide"
        );
        assert_eq!(m.mtls_mode("istio-system", &web, None), MtlsMode::Strict);
        assert_eq!(
            m.mtls_mode("legacy", &web, None),
            MtlsMode::Permissive,
            "namespace over mesh, oldest wins"
        );
        assert_eq!(
            m.mtls_mode("legacy", &db, None),
            MtlsMode::Disable,
            "workload over namespace"
        );
        assert_eq!(
            m.mtls_mode("legacy", &db, Some(5432)),
            MtlsMode::Strict,
            "port over workload"
        );
        assert_eq!(
            m.mtls_mode("legacy", &db, Some(9000)),
            MtlsMode::Disable,
            "UNSET port inherits"
        );
        assert_eq!(m.mtls_mode("legacy", &db, Some(80)), MtlsMode::Disable);
    }

    #[test]
    fn root_namespace_selector_is_reported() {
        let c = compile_yaml(&pa(
            "istio-system",
            "r",
            "  selector:\n    matchLabels: {app: a}\n  mtls: {mode: STRICT}\n",
        ));
        assert_eq!(
            c.mesh.security.peer_authentication.len(),
            1,
            "kept; the model ignores it"
        );
        let d = with_code(&c, Code::IgnoredSetting);
        assert_eq!(d.len(), 1, "{:#?}", c.diagnostics);
        assert!(
            d[0].message.contains("root namespace") && d[0].line == 8,
            "{:#?}",
            d[0]
        );
        assert_eq!(
            c.mesh
                .mtls_mode("istio-system", &labels(&[("app", "a")]), None),
            MtlsMode::Permissive
        );
    }

    #[test]
    fn target_references() {
        let target = |kind: &str, name: &str| PolicyTargetReference {
            kind: kind.into(),
            name: name.into(),
            ..Default::default()
        };
        let refs = [
            target("Service", "reviews"),
            target("GatewayClass", "istio"),
        ];
        let one = Some(target("Gateway", "ingress"));
        assert_eq!(
            targets("shop", &one, &refs),
            [
                SourceRef::new("Gateway", "shop", "ingress"),
                SourceRef::new("Service", "shop", "reviews"),
                SourceRef::new("GatewayClass", "", "istio"),
            ]
        );
        assert!(targets("shop", &None, &[]).is_empty());
    }

    /// The Linkerd pass fills `authorization` first; this pass must append after it.
    #[test]
    fn keeps_policies_compiled_before() {
        let text = include_str!("../../tests/seeds/000-11.yaml");
        let loaded = load_str("t.yaml", text, &LoadOptions::default());
        let opts = CompileOptions::default();
        let mut cx = Ctx::new(&loaded.resources, &opts);
        let linkerd = AuthzPolicy {
            origin: SourceRef::new("ServerAuthorization", "default", "backend-authz"),
            namespace: "default".into(),
            selector: Some(labels(&[("app", "backend")])),
            rules: vec![trellis_model::AuthzRule {
                from: vec![AuthzSource {
                    principals: vec!["cluster.local/ns/default/sa/frontend".into()],
                    ..AuthzSource::default()
                }],
                ..Default::default()
            }],
            ..AuthzPolicy::default()
        };
        cx.mesh.security.authorization.push(linkerd.clone());
        super::compile(&mut cx);
        let names: Vec<&str> = cx
            .mesh
            .security
            .authorization
            .iter()
            .map(|p| p.origin.kind.as_str())
            .collect();
        assert_eq!(names, ["ServerAuthorization", "AuthorizationPolicy"]);
        assert_eq!(cx.mesh.security.authorization[0], linkerd);
    }

    /// Whatever the Linkerd pass makes of a ServerAuthorization survives this pass, in front.
    #[test]
    fn keeps_linkerd_compiled_policies_end_to_end() {
        let server = "apiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata: {name: backend-server, namespace: default}\n\
                      spec:\n  podSelector:\n    matchLabels: {app: backend}\n  port: 8080\n---\n";
        let linkerd = format!("{server}{}", include_str!("../../tests/seeds/000-20.yaml"));
        let linkerd = linkerd.as_str();
        let istio = include_str!("../../tests/seeds/000-11.yaml");
        let alone = compile_yaml(linkerd).mesh.security.authorization;
        let both = compile_yaml(&format!("{linkerd}\n---\n{istio}"))
            .mesh
            .security
            .authorization;
        assert!(
            !alone.is_empty(),
            "the Linkerd pass compiles a Server with its ServerAuthorization"
        );
        assert_eq!(both.len(), alone.len() + 1);
        assert_eq!(&both[..alone.len()], &alone[..]);
        assert_eq!(
            both[alone.len()].origin,
            SourceRef::new("AuthorizationPolicy", "default", "hello-service-authz")
        );
    }
}
