//! Attaching a route's compiled rules to one parent: a Service (GAMMA) or a Gateway.

use super::super::{Ctx, RouteApi, source_ref};
use super::precedence::RouteKey;
use super::{Attached, Lookup, RouteRules, Rules, listeners};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::ParentReference;
use trellis_model::{
    Destination, L4Match, RouteAction, Service, TlsMatch, TlsRoute, WeightedDestination,
};

/// Attach `rules` of `r` to parent `p` (at `path`), by parent kind.
pub(super) fn attach(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    route: &RouteRules<'_>,
    path: &str,
    p: &ParentReference,
    out: &mut Attached,
) {
    let r = route.r;
    if p.is_service() {
        attach_service(cx, r, path, p, &route.rules, out);
    } else if p.is_gateway() {
        attach_gateway(cx, lk, route, path, p, out);
    } else if p.group_kind() == ("policy.linkerd.io", "Server") {
        cx.report.at(
            r,
            path,
            Code::IgnoredSetting,
            "HTTPRoute attached to a Linkerd Server configures inbound policy, which Trellis applies with the Server's authorization",
        );
    } else {
        let (group, kind) = p.group_kind();
        cx.report.at(
            r,
            path,
            Code::IgnoredSetting,
            format!("parentRef kind {group}/{kind} is not supported by Trellis; it is ignored"),
        );
    }
}

/// Parent not in the input: the same finding as the analyzer's, so `trellis analyze` shows it
/// once, and `trellis run` (which compiles without analyzing) still explains the skip.
fn parent_not_found(cx: &mut Ctx<'_>, r: &Resource, path: &str, what: &str, name: &str, ns: &str) {
    cx.report.at(
        r,
        &format!("{path}.name"),
        Code::ReferencedResourceNotFound,
        format!("Referenced parent not found: {what} {name:?} in namespace {ns:?}"),
    );
}

/// The parent's namespace: as written, or the route's.
fn parent_namespace<'r>(p: &'r ParentReference, r: &'r Resource) -> &'r str {
    p.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&r.namespace)
}

/// GAMMA: the rules route requests for the Service. `port`/`sectionName` (a port name)
/// restrict them to one port; a route from another namespace than the Service's is a consumer
/// route and applies only to clients in the route's namespace.
fn attach_service(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    p: &ParentReference,
    rules: &Rules,
    out: &mut Attached,
) {
    let ns = parent_namespace(p, r);
    let host = cx.fqdn(&p.name, ns);
    let Some(svc) = cx.service(&host) else {
        parent_not_found(cx, r, path, "Service", &p.name, ns);
        return;
    };
    let port = p.port.and_then(|n| u16::try_from(n).ok());
    let port = match p
        .section_name
        .as_deref()
        .map(|s| section_port(svc, s, port))
    {
        None => port,
        Some(Ok(n)) => Some(n),
        Some(Err(problem)) => {
            let msg = format!(
                "Service {ns}/{} {problem}; this parentRef is skipped",
                p.name
            );
            let at = format!("{path}.sectionName");
            cx.report.at(r, &at, Code::ReferencedResourceNotFound, msg);
            return;
        }
    };
    if !cx.claim_routes(&host, RouteApi::GatewayApi, r, path) {
        return;
    }
    let consumer = (ns != r.namespace).then(|| r.namespace.clone());
    let pending = out.services.entry(host.clone()).or_default();
    pending.origins.insert(source_ref(r));
    match rules {
        Rules::Http(rules) => {
            for rule in rules {
                let mut route = rule.route.clone();
                if rule.default_to_parent {
                    // GAMMA: a rule without backendRefs sends requests to the parent Service.
                    let dest = Destination {
                        host: host.clone(),
                        subset: None,
                        port,
                    };
                    route.action = RouteAction::Forward(vec![WeightedDestination::new(dest, 1)]);
                }
                for m in &mut route.matches {
                    m.port = port;
                    m.source_namespace.clone_from(&consumer);
                }
                let key = RouteKey::of(&route, consumer.is_some());
                pending.http.push((key, route));
            }
            out.routes += rules.len();
        }
        Rules::Tcp(routes) => {
            for t in routes {
                let mut t = t.clone();
                if port.is_some() || consumer.is_some() {
                    let source_namespace = consumer.clone();
                    t.matches = vec![L4Match {
                        port,
                        source_namespace,
                        ..L4Match::default()
                    }];
                }
                pending.tcp.push(t);
            }
            out.routes += routes.len();
        }
        Rules::Tls(routes) => {
            for t in routes {
                let mut t = t.clone();
                for m in &mut t.matches {
                    m.port = port;
                    m.source_namespace.clone_from(&consumer);
                }
                pending.tls.push(t);
            }
            out.routes += routes.len();
        }
    }
}

/// The Service port a GAMMA `sectionName` (a port name) selects, checked against `port` when
/// both are given.
fn section_port(svc: &Service, section: &str, port: Option<u16>) -> Result<u16, String> {
    let named = svc
        .ports
        .iter()
        .find(|sp| sp.name == section)
        .map(|sp| sp.number);
    match (named, port) {
        (None, _) => Err(format!("has no port named {section:?}")),
        (Some(n), Some(port)) if n != port => Err(format!("port {section:?} is {n}, not {port}")),
        (Some(n), _) => Ok(n),
    }
}

/// North-south: the rules become virtual hosts on each listener of the Gateway that admits
/// the route, one per (port, hostname).
fn attach_gateway(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    route: &RouteRules<'_>,
    path: &str,
    p: &ParentReference,
    out: &mut Attached,
) {
    let (r, rules) = (route.r, &route.rules);
    let ns = parent_namespace(p, r);
    let Some(gw) = lk.gateway(ns, &p.name) else {
        parent_not_found(cx, r, path, "Gateway", &p.name, ns);
        return;
    };
    for binding in listeners::bind(cx, lk, r, path, p, gw, &route.hostnames) {
        for host in binding.hosts {
            if !out.room(cx, r, path) {
                return;
            }
            let key = (ns.to_owned(), p.name.clone(), binding.port, host.clone());
            let pending = out.vhosts.entry(key).or_default();
            match rules {
                Rules::Http(rules) => {
                    for rule in rules {
                        let mut route = rule.route.clone();
                        if rule.default_to_parent {
                            route.action = RouteAction::DirectResponse {
                                status: 500,
                                body: None,
                            };
                        }
                        pending.http.push((RouteKey::of(&route, false), route));
                    }
                    out.routes += rules.len();
                }
                Rules::Tcp(routes) => {
                    pending.tcp.extend(routes.iter().cloned());
                    out.routes += routes.len();
                }
                Rules::Tls(routes) => {
                    let sni_hosts = if host == "*" {
                        Vec::new()
                    } else {
                        vec![host.clone()]
                    };
                    let matches = vec![TlsMatch {
                        sni_hosts,
                        ..TlsMatch::default()
                    }];
                    pending.tls.extend(routes.iter().map(|t| TlsRoute {
                        matches: matches.clone(),
                        ..t.clone()
                    }));
                    out.routes += routes.len();
                }
            }
        }
    }
}
