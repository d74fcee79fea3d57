//! Linkerd `Server`s: which pod ports they cover, the protocol they declare, and the default-deny
//! they impose, expressed as Istio-semantics ALLOW policies.
//!
//! How Linkerd's model maps onto the Istio one (`trellis_model::authz`):
//!
//! - Linkerd: once a Server selects a pod port, traffic to that port is denied unless an
//!   authorization (ServerAuthorization or AuthorizationPolicy) allows it; other ports keep the
//!   default policy (all-unauthenticated by default, i.e. allow).
//! - Istio: once any ALLOW policy applies to a workload, every request to *any* port of it must
//!   match some ALLOW rule.
//!
//! So each Server becomes an ALLOW policy for its pods with a "fall-through" rule allowing every
//! port *except* the Server ports (`to.not_ports`), and each authorization becomes an ALLOW
//! policy whose rules name the Server ports in `to.ports`. Because ALLOW rules of all policies
//! are ORed, a fall-through rule must also leave out the ports of every other Server that may
//! cover the same pods; "may" is decided on the pods the input declares when it declares any,
//! otherwise by selector compatibility. Where semantics still differ:
//!
//! - a Server whose pods the input does not declare, and whose selector is compatible with
//!   another Server's, also denies that other Server's port on pods only it selects (stricter);
//! - an Istio ALLOW AuthorizationPolicy on the same pods is widened by the fall-through rule to
//!   every non-Server port (Linkerd and Istio policy on one workload do not compose exactly);
//! - Linkerd answers 404 to requests matching none of a Server's HTTPRoutes; here a server-level
//!   authorization lets them through to the application;
//! - a denied request gets 403 with flag `RBAC` (Linkerd: 403, or a refused connection for
//!   opaque ports); the policy is evaluated by the Istio rules (CUSTOM, DENY, then ALLOW);
//! - a policy in the root namespace applies mesh-wide in Istio; Linkerd Servers only ever select
//!   pods in their own namespace.

use super::super::{Ctx, source_ref};
use super::pods::Pods;
use crate::diag::{Code, Severity};
use crate::resources::common::{IntOrString, LabelSelector};
use crate::resources::linkerd::{AccessPolicy, ProxyProtocol, Server};
use crate::resources::{Kind, Resource, Spec};
use std::collections::BTreeSet;
use trellis_model::{
    AuthzAction, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource, Protocol, selector_matches,
};

/// A Server the pass can use: pods selected and container ports resolved.
pub(super) struct ServerInfo<'a> {
    pub r: &'a Resource,
    pub server: &'a Server,
    pub selector: &'a LabelSelector,
    pub ports: Vec<u16>,
}

impl ServerInfo<'_> {
    /// An ALLOW policy for this Server's pods with `rules`, compiled from `origin`.
    pub fn policy(&self, origin: &Resource, rules: Vec<AuthzRule>) -> AuthzPolicy {
        AuthzPolicy {
            origin: source_ref(origin),
            namespace: self.r.namespace.clone(),
            selector: Some(self.selector.match_labels.clone()),
            target: None,
            action: AuthzAction::Allow,
            rules,
        }
    }

    /// The operation "any request to this Server's ports".
    pub fn ports_op(&self) -> AuthzOperation {
        AuthzOperation {
            ports: self.ports.clone(),
            ..AuthzOperation::default()
        }
    }
}

/// Resolve every Server; those that cannot be used are reported and left out.
pub(super) fn servers<'a>(cx: &mut Ctx<'a>, pods: &Pods<'_>) -> Vec<ServerInfo<'a>> {
    let mut out = Vec::new();
    for r in super::of_kind(cx, Kind::LinkerdServer) {
        let Spec::LinkerdServer(server) = &r.spec else {
            continue;
        };
        if server.external_workload_selector.is_some() {
            let msg = "ExternalWorkloads are not supported, so this Server selects nothing and its policy is not enforced";
            cx.report.with_severity(
                r,
                "spec.externalWorkloadSelector",
                Code::IgnoredSetting,
                Severity::Warning,
                msg,
            );
            continue;
        }
        let (Some(selector), Some(port)) = (&server.pod_selector, &server.port) else {
            continue;
        };
        if !selector.match_expressions.is_empty() {
            let msg = "matchExpressions are not enforced: the Server's policy applies to every pod matching matchLabels";
            cx.report.with_severity(
                r,
                "spec.podSelector.matchExpressions",
                Code::IgnoredSetting,
                Severity::Warning,
                msg,
            );
        }
        let ports = pods.resolve_port(&r.namespace, |l| selector.matches(l), port);
        if ports.is_empty() {
            let msg = match port {
                IntOrString::String(name) => format!(
                    "no container port named {name:?} in the pods this Server selects in namespace {}; the Server is ignored",
                    r.namespace
                ),
                IntOrString::Int(n) => {
                    format!("port {n} is not a port number; the Server is ignored")
                }
            };
            cx.report
                .at(r, "spec.port", Code::ReferencedResourceNotFound, msg);
            continue;
        }
        out.push(ServerInfo {
            r,
            server,
            selector,
            ports,
        });
    }
    out
}

/// The model protocol of an explicit `proxyProtocol`; `unknown` (detect) sets nothing.
fn protocol(p: Option<ProxyProtocol>) -> Option<Protocol> {
    match p? {
        ProxyProtocol::Unknown => None,
        ProxyProtocol::Http1 => Some(Protocol::Http),
        ProxyProtocol::Http2 => Some(Protocol::Http2),
        ProxyProtocol::Grpc => Some(Protocol::Grpc),
        ProxyProtocol::Opaque => Some(Protocol::Tcp),
        ProxyProtocol::Tls => Some(Protocol::Tls),
    }
}

/// `proxyProtocol`: set the protocol of the service ports that lead to a Server's port (same
/// namespace, pods that may be the Server's, target port resolving to a Server port), so
/// clients treat the traffic the way the server side will.
pub(super) fn apply_protocols(cx: &mut Ctx<'_>, pods: &Pods<'_>, servers: &[ServerInfo<'_>]) {
    let mut changes: Vec<(String, u16, Protocol)> = Vec::new();
    for s in servers {
        let Some(proto) = protocol(s.server.proxy_protocol) else {
            continue;
        };
        let ns = s.r.namespace.as_str();
        for r in super::of_kind(cx, Kind::Service).filter(|r| r.namespace == ns) {
            let Spec::Service(svc) = &r.spec else {
                continue;
            };
            if svc.selector.is_empty()
                || !pods.may_overlap(ns, s.selector, &svc.selector, |l| {
                    selector_matches(&svc.selector, l)
                })
            {
                continue;
            }
            for p in &svc.ports {
                let Ok(number) = u16::try_from(p.port) else {
                    continue;
                };
                let target = p
                    .target_port
                    .clone()
                    .unwrap_or(IntOrString::Int(i64::from(p.port)));
                let both = |l: &crate::resources::common::Labels| {
                    selector_matches(&svc.selector, l) && s.selector.matches(l)
                };
                if pods
                    .resolve_port(ns, both, &target)
                    .iter()
                    .any(|t| s.ports.contains(t))
                {
                    changes.push((cx.fqdn(&r.name, ns), number, proto));
                }
            }
        }
    }
    for (host, number, proto) in changes {
        if let Some(port) = cx
            .service_mut(&host)
            .and_then(|svc| svc.ports.iter_mut().find(|p| p.number == number))
        {
            port.protocol = proto;
        }
    }
}

/// Emit the Servers' fall-through policies, then the authorizations.
pub(super) fn compile(cx: &mut Ctx<'_>, pods: &Pods<'_>, servers: &[ServerInfo<'_>]) {
    for s in servers {
        let ns = s.r.namespace.as_str();
        let not_ports: BTreeSet<u16> = servers
            .iter()
            .filter(|t| {
                t.r.namespace == ns
                    && pods.may_overlap(ns, s.selector, &t.selector.match_labels, |l| {
                        t.selector.matches(l)
                    })
            })
            .flat_map(|t| t.ports.iter().copied())
            .chain(s.ports.iter().copied())
            .collect();
        let fall_through = AuthzRule {
            to: vec![AuthzOperation {
                not_ports: not_ports.into_iter().collect(),
                ..AuthzOperation::default()
            }],
            ..AuthzRule::default()
        };
        let mut rules = vec![fall_through];
        rules.extend(access_rule(cx, s));
        cx.mesh.security.authorization.push(s.policy(s.r, rules));
    }
    super::authz::server_authorizations(cx, servers);
    super::authz::authorization_policies(cx, servers);
}

/// v1beta3 `accessPolicy`: what traffic no authorization matches gets. `deny` (the default)
/// adds nothing; the others allow some callers on the Server ports.
fn access_rule(cx: &mut Ctx<'_>, s: &ServerInfo<'_>) -> Option<AuthzRule> {
    let authenticated = || {
        vec![AuthzSource {
            principals: vec!["*".into()],
            ..AuthzSource::default()
        }]
    };
    let (from, note) = match s.server.access_policy.unwrap_or_default() {
        AccessPolicy::Deny => return None,
        AccessPolicy::AllUnauthenticated => (Vec::new(), None),
        AccessPolicy::AllAuthenticated => (authenticated(), None),
        AccessPolicy::ClusterAuthenticated => (
            authenticated(),
            Some(
                "the cluster networks are not known, so authenticated clients from any network are allowed",
            ),
        ),
        AccessPolicy::ClusterUnauthenticated => (
            Vec::new(),
            Some("the cluster networks are not known, so clients from any network are allowed"),
        ),
        AccessPolicy::Audit => (
            Vec::new(),
            Some("requests are allowed but not flagged for audit"),
        ),
    };
    if let Some(note) = note {
        cx.report
            .at(s.r, "spec.accessPolicy", Code::IgnoredSetting, note);
    }
    Some(AuthzRule {
        from,
        to: vec![s.ports_op()],
        when: Vec::new(),
    })
}
