//! Which listeners of a Gateway API Gateway a route attaches to, and for which hostnames.
//!
//! A listener admits a route when the parentRef selects it (`sectionName`, `port`), its
//! `allowedRoutes` admits the route's kind and namespace, and (for kinds with hostnames) the
//! route's hostnames intersect the listener's. The model gateway carries only part of this,
//! so the rules are evaluated here on the Gateway resource itself.

use super::super::Ctx;
use super::{Lookup, route_group_kind};
use crate::diag::{Code, Severity};
use crate::resources::gateway_api::{
    FromNamespaces, GROUP, Listener, ParentReference, TlsModeType,
};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::host_matches;

/// At most this many listeners (the CRD's `maxItems`) are considered; validation has rejected
/// longer lists, and the cap bounds the work per parentRef.
const MAX_LISTENERS: usize = 64;

/// A listener the route is bound to: its port and the hostnames the route answers for there.
pub(super) struct Binding {
    pub port: u16,
    pub hosts: Vec<String>,
}

/// The listeners of Gateway resource `gw_res` that admit route `r` through parentRef `p`
/// (at `path`). When none does, says why: a missing listener is IST0101, a listener that
/// refuses the route is a warning, because the route then carries no traffic there.
pub(super) fn bind(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    p: &ParentReference,
    gw_res: &Resource,
    hostnames: &[String],
) -> Vec<Binding> {
    let Spec::K8sGateway(gw) = &gw_res.spec else {
        return Vec::new();
    };
    let gw_name = format!("{}/{}", gw_res.namespace, gw_res.name);
    let selected: Vec<&Listener> = gw
        .listeners
        .iter()
        .take(MAX_LISTENERS)
        .filter(|l| p.section_name.as_deref().is_none_or(|s| s == l.name))
        .filter(|l| p.port.is_none_or(|port| l.port == Some(port)))
        .collect();
    if selected.is_empty() {
        let which = match (&p.section_name, p.port) {
            (Some(s), Some(port)) => format!("named {s:?} on port {port}"),
            (Some(s), None) => format!("named {s:?}"),
            (None, Some(port)) => format!("on port {port}"),
            (None, None) => "at all".to_owned(),
        };
        let field = if p.section_name.is_some() {
            "sectionName"
        } else {
            "port"
        };
        cx.report.at(
            r,
            &format!("{path}.{field}"),
            Code::ReferencedResourceNotFound,
            format!("Gateway {gw_name} has no listener {which}"),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for l in selected {
        let Some(port) = l
            .port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
        else {
            refusals.push(format!("listener {:?} has no valid port", l.name));
            continue;
        };
        if !kind_allowed(l, r) {
            refusals.push(format!(
                "listener {:?} does not accept {}s",
                l.name,
                r.kind().name()
            ));
            continue;
        }
        if !namespace_allowed(lk, l, &gw_res.namespace, &r.namespace) {
            refusals.push(format!(
                "listener {:?} does not accept routes from namespace {:?}",
                l.name, r.namespace
            ));
            continue;
        }
        let listener_host = l.hostname.as_deref().filter(|h| !h.is_empty());
        let hosts = if r.kind() == Kind::TcpRoute {
            vec![listener_host.unwrap_or("*").to_ascii_lowercase()]
        } else {
            intersect(hostnames, listener_host)
        };
        if hosts.is_empty() {
            refusals.push(format!(
                "no hostname of the route matches listener {:?} ({})",
                l.name,
                listener_host.unwrap_or("*")
            ));
            continue;
        }
        out.push(Binding { port, hosts });
    }
    if out.is_empty() {
        cx.report.with_severity(
            r,
            path,
            Code::IgnoredSetting,
            Severity::Warning,
            format!(
                "the route attaches to no listener of Gateway {gw_name}: {}",
                refusals.join("; ")
            ),
        );
    }
    out
}

/// The route kinds a listener can carry, by protocol and TLS mode.
fn supported_kinds(l: &Listener) -> &'static [&'static str] {
    match (l.protocol.as_str(), l.tls_mode()) {
        ("HTTP" | "HTTPS", _) => &["HTTPRoute", "GRPCRoute"],
        ("TLS", Some(TlsModeType::Passthrough)) => &["TLSRoute"],
        ("TLS", _) => &["TLSRoute", "TCPRoute"],
        ("TCP", _) => &["TCPRoute"],
        _ => &[],
    }
}

/// Whether `allowedRoutes.kinds` (default: every kind the protocol carries) admits `r`.
fn kind_allowed(l: &Listener, r: &Resource) -> bool {
    let (group, kind) = route_group_kind(r);
    if group != GROUP || !supported_kinds(l).contains(&kind) {
        return false;
    }
    let listed = l
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.as_slice())
        .unwrap_or_default();
    listed.is_empty()
        || listed
            .iter()
            .any(|k| k.group.as_deref().unwrap_or(GROUP) == group && k.kind == kind)
}

/// Whether `allowedRoutes.namespaces` admits routes from `route_ns`. A selector sees the
/// namespace's labels from the input plus `kubernetes.io/metadata.name`, which Kubernetes
/// sets on every namespace.
fn namespace_allowed(lk: &Lookup<'_>, l: &Listener, gw_ns: &str, route_ns: &str) -> bool {
    match l.routes_from() {
        FromNamespaces::All => true,
        FromNamespaces::Same => gw_ns == route_ns,
        FromNamespaces::None => false,
        FromNamespaces::Selector => {
            let selector = l
                .allowed_routes
                .as_ref()
                .and_then(|a| a.namespaces.as_ref())
                .and_then(|n| n.selector.as_ref());
            let Some(selector) = selector else {
                return false;
            };
            let mut labels = lk.namespace_labels(route_ns).cloned().unwrap_or_default();
            labels.insert("kubernetes.io/metadata.name".into(), route_ns.to_owned());
            selector.matches(&labels)
        }
    }
}

/// The hostnames a route answers for on a listener: with no route hostnames, the listener's
/// (or `*`); with no listener hostname, the route's; otherwise each route hostname the
/// listener's covers, and the listener's where a route wildcard covers it.
pub(super) fn intersect(route: &[String], listener: Option<&str>) -> Vec<String> {
    let Some(listener) = listener.map(str::to_ascii_lowercase) else {
        return if route.is_empty() {
            vec!["*".into()]
        } else {
            route.to_vec()
        };
    };
    if route.is_empty() {
        return vec![listener];
    }
    let mut out: Vec<String> = Vec::new();
    for h in route {
        let host = if host_matches(&listener, h) {
            h.clone()
        } else if host_matches(h, &listener) {
            listener.clone()
        } else {
            continue;
        };
        if !out.contains(&host) {
            out.push(host);
        }
    }
    out
}
