//! Linkerd authorizations: `ServerAuthorization` and `AuthorizationPolicy` (with the
//! `MeshTLSAuthentication`, `NetworkAuthentication` and `ServiceAccount` it requires) become
//! ALLOW policies for the targeted Servers' pods, restricted to the Servers' ports (see
//! `super::policy` for how that reproduces Linkerd's default-deny).
//!
//! Callers: Linkerd identities (`web.ns.serviceaccount.identity.linkerd.<trust domain>`) become
//! SPIFFE principals (`<trust domain>/ns/ns/sa/web`); networks become `ip_blocks` with their
//! `except` lists as `not_ip_blocks`, one source per network so an exception only carves out of
//! its own network. Anything that would leave an authorization naming no caller makes it
//! authorize nobody (it is reported and not emitted), never everybody.

use super::super::Ctx;
use super::policy::ServerInfo;
use super::route_ops;
use crate::diag::{Code, Severity};
use crate::resources::linkerd::{AuthorizationPolicy, Client, Network, TargetRef};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{AuthzRule, AuthzSource};

const POLICY_GROUP: &str = "policy.linkerd.io";
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Who an authorization admits, before networks narrow it.
#[derive(Debug, Clone, PartialEq)]
enum Peers {
    /// Any client, authenticated or not.
    Any,
    /// Clients with one of these principals.
    Principals(Vec<String>),
}

/// The Linkerd identity `id` as a principal, or `None` when it cannot name a workload of trust
/// domain `td`. `*` is any authenticated client; `*.ns.serviceaccount.identity.linkerd.<td>` is
/// every service account of `ns`; a wildcard suffix covering all of `td`'s identities is `<td>/*`.
pub(super) fn identity_principal(id: &str, td: &str) -> Option<String> {
    if id == "*" {
        return Some("*".into());
    }
    let suffix = format!(".serviceaccount.identity.linkerd.{td}");
    if let Some(rest) = id.strip_suffix(suffix.as_str()) {
        return match rest.split_once('.') {
            None if rest == "*" => Some(format!("{td}/*")),
            Some((name, ns)) if !name.is_empty() && !ns.is_empty() && !ns.contains(['.', '*']) => {
                Some(format!("{td}/ns/{ns}/sa/{name}"))
            }
            _ => None,
        };
    }
    let tail = id.strip_prefix('*')?;
    (tail.starts_with('.') && suffix.ends_with(tail)).then(|| format!("{td}/*"))
}

/// The sources of a rule admitting `peers` from `networks` (all networks when empty). An empty
/// list matches every caller.
fn sources(peers: &Peers, networks: &[Network]) -> Vec<AuthzSource> {
    let base = match peers {
        Peers::Any => AuthzSource::default(),
        Peers::Principals(p) => AuthzSource {
            principals: p.clone(),
            ..AuthzSource::default()
        },
    };
    if networks.is_empty() {
        return if base == AuthzSource::default() {
            Vec::new()
        } else {
            vec![base]
        };
    }
    networks
        .iter()
        .map(|n| AuthzSource {
            ip_blocks: vec![n.cidr.clone()],
            not_ip_blocks: n.except.clone(),
            ..base.clone()
        })
        .collect()
}

/// ServerAuthorization: `client` may reach the Servers chosen by name or label selector.
pub(super) fn server_authorizations(cx: &mut Ctx<'_>, servers: &[ServerInfo<'_>]) {
    for r in super::of_kind(cx, Kind::ServerAuthorization) {
        let Spec::ServerAuthorization(sa) = &r.spec else {
            continue;
        };
        let ns = r.namespace.as_str();
        let targets: Vec<&ServerInfo<'_>> = match (&sa.server.name, &sa.server.selector) {
            (Some(name), _) => match servers
                .iter()
                .find(|s| s.r.namespace == ns && &s.r.name == name)
            {
                Some(s) => vec![s],
                None => {
                    server_not_found(cx, r, "spec.server.name", name);
                    continue;
                }
            },
            (None, Some(sel)) => {
                let found: Vec<_> = servers
                    .iter()
                    .filter(|s| s.r.namespace == ns && sel.matches(&s.r.meta.labels))
                    .collect();
                let any_declared = super::of_kind(cx, Kind::LinkerdServer)
                    .any(|s| s.namespace == ns && sel.matches(&s.meta.labels));
                if !any_declared {
                    let msg = format!(
                        "no Server in namespace {ns} has labels matching this selector; the authorization has no effect"
                    );
                    cx.report.with_severity(
                        r,
                        "spec.server.selector",
                        Code::ReferencedResourceNotFound,
                        Severity::Warning,
                        msg,
                    );
                }
                found
            }
            (None, None) => continue, // validation reported it
        };
        let Some(peers) = client_peers(cx, r, &sa.client) else {
            continue;
        };
        let from = sources(&peers, &sa.client.networks);
        for s in targets {
            let rule = AuthzRule {
                from: from.clone(),
                to: vec![s.ports_op()],
                when: Vec::new(),
            };
            cx.mesh.security.authorization.push(s.policy(r, vec![rule]));
        }
    }
}

/// IST0101 for a Server name that is not declared in the namespace. A declared Server that could
/// not be used was reported on its own; its authorizations are dropped silently.
fn server_not_found(cx: &mut Ctx<'_>, r: &Resource, path: &str, name: &str) {
    let ns = r.namespace.as_str();
    if !super::of_kind(cx, Kind::LinkerdServer).any(|s| s.namespace == ns && s.name == name) {
        cx.report.at(
            r,
            path,
            Code::ReferencedResourceNotFound,
            format!("Server {name} not found in namespace {ns}"),
        );
    }
}

/// The peers a ServerAuthorization `client` admits; `None` when it admits nobody this model can
/// name (each reason reported).
fn client_peers(cx: &mut Ctx<'_>, r: &Resource, client: &Client) -> Option<Peers> {
    if client.unauthenticated == Some(true) {
        return Some(Peers::Any);
    }
    let m = client.mesh_tls.as_ref()?;
    if m.unauthenticated_tls == Some(true) {
        let msg = "clients without an identity are admitted, but TLS is not required of them: any client is allowed";
        cx.report.at(
            r,
            "spec.client.meshTLS.unauthenticatedTLS",
            Code::IgnoredSetting,
            msg,
        );
        return Some(Peers::Any);
    }
    let td = cx.opts.trust_domain.clone();
    let mut principals: Vec<String> = m
        .service_accounts
        .iter()
        .filter(|sa| !sa.name.is_empty())
        .map(|sa| {
            format!(
                "{td}/ns/{}/sa/{}",
                sa.namespace.as_deref().unwrap_or(&r.namespace),
                sa.name
            )
        })
        .collect();
    principals.extend(identities(
        cx,
        r,
        "spec.client.meshTLS.identities",
        &m.identities,
    ));
    (!principals.is_empty()).then_some(Peers::Principals(principals))
}

/// Translate identity strings, reporting those that name no workload of the trust domain.
fn identities(cx: &mut Ctx<'_>, r: &Resource, path: &str, ids: &[String]) -> Vec<String> {
    let td = cx.opts.trust_domain.clone();
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        match identity_principal(id, &td) {
            Some(p) => out.push(p),
            None => cx.report.at(
                r,
                &format!("{path}[{i}]"),
                Code::IgnoredSetting,
                format!("{id:?} is not a Linkerd workload identity of trust domain {td} (<sa>.<ns>.serviceaccount.identity.linkerd.{td}); it matches no caller"),
            ),
        }
    }
    out
}

/// AuthorizationPolicy: callers passing every required authentication may reach the target (a
/// Server, every Server of the namespace, or an HTTPRoute/GRPCRoute on Servers).
pub(super) fn authorization_policies(cx: &mut Ctx<'_>, servers: &[ServerInfo<'_>]) {
    for r in super::of_kind(cx, Kind::LinkerdAuthorizationPolicy) {
        let Spec::LinkerdAuthorizationPolicy(ap) = &r.spec else {
            continue;
        };
        let Some(t) = &ap.target_ref else { continue };
        let Some((peers, networks)) = required(cx, r, ap) else {
            continue;
        };
        let from = sources(&peers, &networks);
        for (s, ops) in targets(cx, r, t, servers) {
            let rules = ops
                .into_iter()
                .map(|(to, when)| AuthzRule {
                    from: from.clone(),
                    to: vec![to],
                    when,
                })
                .collect();
            cx.mesh.security.authorization.push(s.policy(r, rules));
        }
    }
}

/// The Servers a target reference covers, each with the operations (and header conditions) the
/// policy allows on it.
fn targets<'s, 'a>(
    cx: &mut Ctx<'_>,
    r: &Resource,
    t: &TargetRef,
    servers: &'s [ServerInfo<'a>],
) -> Vec<(&'s ServerInfo<'a>, Vec<route_ops::Op>)> {
    let ns = r.namespace.as_str();
    if t.targets_kind(POLICY_GROUP, "Server") {
        return match servers
            .iter()
            .find(|s| s.r.namespace == ns && s.r.name == t.name)
        {
            Some(s) => vec![(s, vec![route_ops::whole(s)])],
            None => {
                server_not_found(cx, r, "spec.targetRef.name", &t.name);
                Vec::new()
            }
        };
    }
    if t.targets_kind("", "Namespace") {
        if t.name != ns {
            let msg =
                format!("a policy can only target its own namespace ({ns}); it has no effect");
            cx.report
                .at(r, "spec.targetRef.name", Code::IgnoredSetting, msg);
            return Vec::new();
        }
        let found: Vec<_> = servers
            .iter()
            .filter(|s| s.r.namespace == ns)
            .map(|s| (s, vec![route_ops::whole(s)]))
            .collect();
        if found.is_empty() {
            let msg = format!(
                "namespace {ns} has no Server; Linkerd applies a namespace policy to its Servers, so it has no effect"
            );
            cx.report.at(r, "spec.targetRef", Code::IgnoredSetting, msg);
        }
        return found;
    }
    let kind = if t.targets_kind(POLICY_GROUP, "HTTPRoute") {
        Kind::LinkerdHttpRoute
    } else if t.targets_kind(GATEWAY_GROUP, "HTTPRoute") {
        Kind::HttpRoute
    } else if t.targets_kind(GATEWAY_GROUP, "GRPCRoute") {
        Kind::GrpcRoute
    } else {
        return Vec::new(); // validation reported the kind
    };
    route_ops::route_targets(cx, r, kind, &t.name, servers)
}

/// The peers and networks every `requiredAuthenticationRefs` entry demands, combined (all must
/// pass); `None` when a reference is missing or admits nobody, so the policy is not emitted.
fn required(
    cx: &mut Ctx<'_>,
    r: &Resource,
    ap: &AuthorizationPolicy,
) -> Option<(Peers, Vec<Network>)> {
    let td = cx.opts.trust_domain.clone();
    let mut peers = Peers::Any;
    let mut networks: Option<Vec<Network>> = None;
    for (i, rf) in ap
        .required_authentication_refs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let ns = rf.namespace.as_deref().unwrap_or(&r.namespace);
        let name = rf.name.as_deref().unwrap_or_default();
        let path = format!("spec.requiredAuthenticationRefs[{i}].name");
        let these = if rf.targets_kind(POLICY_GROUP, "MeshTLSAuthentication") {
            let found = super::of_kind(cx, Kind::MeshTlsAuthentication)
                .find(|m| m.namespace == ns && m.name == name);
            let Some((found, Spec::MeshTlsAuthentication(m))) = found.map(|f| (f, &f.spec)) else {
                return not_found(cx, r, &path, "MeshTLSAuthentication", ns, name);
            };
            let mut p = identities(cx, found, "spec.identities", &m.identities);
            for id_ref in &m.identity_refs {
                let ref_ns = id_ref.namespace.as_deref().unwrap_or(&found.namespace);
                let who = id_ref.name.as_deref().filter(|n| *n != "*");
                if id_ref.targets_kind("", "ServiceAccount") {
                    p.push(format!("{td}/ns/{ref_ns}/sa/{}", who.unwrap_or("*")));
                } else if id_ref.targets_kind("", "Namespace") {
                    p.push(who.map_or_else(|| "*".to_owned(), |n| format!("{td}/ns/{n}/sa/*")));
                }
            }
            p
        } else if rf.targets_kind(POLICY_GROUP, "NetworkAuthentication") {
            let found = super::of_kind(cx, Kind::NetworkAuthentication)
                .find(|m| m.namespace == ns && m.name == name);
            let Some(Spec::NetworkAuthentication(na)) = found.map(|m| &m.spec) else {
                return not_found(cx, r, &path, "NetworkAuthentication", ns, name);
            };
            if networks.is_some() {
                return None; // two network requirements: validation reported it; admit nobody
            }
            networks = Some(na.networks.clone());
            continue;
        } else if rf.targets_kind("", "ServiceAccount") {
            vec![format!("{td}/ns/{ns}/sa/{name}")]
        } else {
            return None; // validation reported the kind; an unknown requirement admits nobody
        };
        peers = match peers {
            Peers::Any => Peers::Principals(these),
            // Both must pass: keep what both name (validation rejects two identity requirements).
            Peers::Principals(prev) => {
                Peers::Principals(prev.into_iter().filter(|p| these.contains(p)).collect())
            }
        };
        if peers == Peers::Principals(Vec::new()) {
            let msg = "the required authentications admit no caller this mesh can identify; the policy authorizes nobody";
            cx.report.at(r, &path, Code::IgnoredSetting, msg);
            return None;
        }
    }
    Some((peers, networks.unwrap_or_default()))
}

/// IST0101 for a missing authentication; the policy is dropped, so it authorizes nobody.
fn not_found<T>(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<T> {
    let msg = format!("{kind} {name} not found in namespace {ns}; the policy authorizes nobody");
    cx.report.at(r, path, Code::ReferencedResourceNotFound, msg);
    None
}
