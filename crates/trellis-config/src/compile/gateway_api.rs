//! Gateway API route pass (precedence 2, after VirtualServices): HTTPRoute (the Gateway API's
//! and Linkerd's `policy.linkerd.io` one, which share a type), GRPCRoute, TCPRoute and TLSRoute.
//!
//! Each route's rules are compiled once ([`Rules`]), then attached to every parent
//! ([`attach`]):
//!
//! - a Service (GAMMA mesh route): the rules become the service's routes, if this API may
//!   route the host (see [`Ctx::claim_routes`]);
//! - a Gateway API Gateway: the rules become virtual hosts on the listeners that admit the
//!   route (`sectionName`/`port`, `allowedRoutes`, hostnames).
//!
//! Several routes on one service or one gateway host merge. HTTP rules are split into one
//! model route per match and ordered by the Gateway API's precedence (see [`precedence`]),
//! which is why attachments are collected first and written to the model at the end.

mod attach;
mod backends;
mod filters;
mod grpc;
mod http;
mod l4;
mod listeners;
mod lookup;
mod precedence;

pub(in crate::compile) use lookup::Lookup;

use super::Ctx;
use crate::diag::Code;
use crate::resources::gateway_api::ParentReference;
use crate::resources::{Kind, Resource, Spec};
use precedence::RouteKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use trellis_model::{HttpRoute, SourceRef, TcpRoute, TlsRoute, VirtualHost};

/// Most model routes this pass writes (counting each copy per parent and hostname). Real
/// configurations stay far below; the bound keeps `trellis analyze` fast on hostile input.
#[cfg(not(test))]
const MAX_ROUTES: usize = 1_000_000;
/// Smaller in unit tests, so that the limit itself can be tested cheaply.
#[cfg(test)]
const MAX_ROUTES: usize = 10_000;

/// At most this many route hostnames (the CRDs' `maxItems`) are compiled; validation has
/// rejected longer lists, and the cap keeps hostname intersection from being quadratic.
const MAX_HOSTNAMES: usize = 16;

/// What one route resource compiles to before it is attached to a parent.
enum Rules {
    Http(Vec<http::Rule>),
    Tcp(Vec<TcpRoute>),
    Tls(Vec<TlsRoute>),
}

/// A route resource with its compiled rules and (lowercased) hostnames, ready to attach.
struct RouteRules<'r> {
    r: &'r Resource,
    hostnames: Vec<String>,
    rules: Rules,
}

/// Routes waiting to be written to one service or one gateway virtual host.
#[derive(Default)]
struct Pending {
    http: Vec<(RouteKey, HttpRoute)>,
    tcp: Vec<TcpRoute>,
    tls: Vec<TlsRoute>,
    origins: BTreeSet<SourceRef>,
}

/// Attachments of all routes: by service host, and by (gateway namespace, gateway name, port,
/// host). One virtual host per gateway host, because the Gateway API picks the routes of the
/// most specific matching hostname and merges all routes for it.
#[derive(Default)]
struct Attached {
    services: BTreeMap<String, Pending>,
    vhosts: BTreeMap<(String, String, u16, String), Pending>,
    /// Model routes collected so far, against [`MAX_ROUTES`].
    routes: usize,
    /// Whether [`MAX_ROUTES`] was reached (and reported).
    full: bool,
}

impl Attached {
    /// Whether more routes may be attached; reports (once) at `path` of `r` when not.
    fn room(&mut self, cx: &mut Ctx<'_>, r: &Resource, path: &str) -> bool {
        if self.routes < MAX_ROUTES {
            return true;
        }
        if !self.full {
            self.full = true;
            cx.report.at(
                r,
                path,
                Code::InputLimit,
                format!("Gateway API routes expand to more than {MAX_ROUTES} model routes; this parent and all later ones are not attached"),
            );
        }
        false
    }
}

/// Compile every Gateway API route, oldest first (the Gateway API's tie-break between routes),
/// then write the merged, ordered routes into the model.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let kinds = [
        Kind::HttpRoute,
        Kind::LinkerdHttpRoute,
        Kind::GrpcRoute,
        Kind::TcpRoute,
        Kind::TlsRoute,
    ];
    let resources = cx.resources;
    let lk = Lookup::new(resources);
    let mut routes: Vec<&Resource> = resources
        .iter()
        .filter(|r| kinds.contains(&r.kind()))
        .collect();
    routes.sort_by(|a, b| precedence::age_key(a).cmp(&precedence::age_key(b)));
    let mut out = Attached::default();
    for r in routes {
        let (parents, hostnames, rules, default_gateways) = match &r.spec {
            Spec::HttpRoute(s) | Spec::LinkerdHttpRoute(s) => (
                &s.parent_refs,
                s.hostnames.as_slice(),
                Rules::Http(http::compile(cx, &lk, r, s)),
                s.use_default_gateways.is_some(),
            ),
            Spec::GrpcRoute(s) => (
                &s.parent_refs,
                s.hostnames.as_slice(),
                Rules::Http(grpc::compile(cx, &lk, r, s)),
                s.use_default_gateways.is_some(),
            ),
            Spec::TcpRoute(s) => (
                &s.parent_refs,
                &[][..],
                Rules::Tcp(l4::tcp(cx, &lk, r, s)),
                s.use_default_gateways.is_some(),
            ),
            Spec::TlsRoute(s) => (
                &s.parent_refs,
                s.hostnames.as_slice(),
                Rules::Tls(l4::tls(cx, &lk, r, s)),
                s.use_default_gateways.is_some(),
            ),
            _ => continue,
        };
        if default_gateways {
            cx.report.at(
                r,
                "spec.useDefaultGateways",
                Code::IgnoredSetting,
                "useDefaultGateways is not supported by Trellis; name the Gateway in parentRefs",
            );
        }
        let hostnames: Vec<String> = hostnames
            .iter()
            .take(MAX_HOSTNAMES)
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if !hostnames.is_empty()
            && matches!(rules, Rules::Http(_))
            && parents.iter().any(ParentReference::is_service)
        {
            cx.report.at(
                r,
                "spec.hostnames",
                Code::IgnoredSetting,
                "hostnames are ignored for a route attached to a Service (the Service is the host)",
            );
        }
        let route = RouteRules {
            r,
            hostnames,
            rules,
        };
        for (i, p) in parents.iter().enumerate() {
            let path = format!("spec.parentRefs[{i}]");
            if !out.room(cx, r, &path) {
                break;
            }
            attach::attach(cx, &lk, &route, &path, p, &mut out);
        }
    }
    flush(cx, out);
}

/// Write the collected routes into the model, HTTP routes in precedence order (a stable sort,
/// so ties keep route age, rule and match order).
fn flush(cx: &mut Ctx<'_>, out: Attached) {
    for (host, mut pending) in out.services {
        let Some(svc) = cx.service_mut(&host) else {
            continue;
        };
        pending.http.sort_by_key(|(key, _)| *key);
        svc.http_routes
            .extend(pending.http.into_iter().map(|(_, r)| r));
        svc.tcp_routes.extend(pending.tcp);
        svc.tls_routes.extend(pending.tls);
        for o in pending.origins {
            if !svc.origins.contains(&o) {
                svc.origins.push(o);
            }
        }
    }
    // Duplicate Gateways: the first wins, as in the route pass's lookup.
    let mut gateways: HashMap<(String, String), usize> = HashMap::new();
    for (i, g) in cx.mesh.gateways.iter().enumerate() {
        if g.class.is_some() {
            gateways
                .entry((g.namespace.clone(), g.name.clone()))
                .or_insert(i);
        }
    }
    for ((ns, name, port, host), mut pending) in out.vhosts {
        let Some(gw) = gateways
            .get(&(ns, name))
            .and_then(|&i| cx.mesh.gateways.get_mut(i))
        else {
            continue;
        };
        pending.http.sort_by_key(|(key, _)| *key);
        gw.virtual_hosts.push(VirtualHost {
            port,
            hosts: vec![host],
            http_routes: pending.http.into_iter().map(|(_, r)| r).collect(),
            tcp_routes: pending.tcp,
            tls_routes: pending.tls,
        });
    }
}

/// `(group, kind)` of a route resource, as ReferenceGrants and `allowedRoutes.kinds` name it.
fn route_group_kind(r: &Resource) -> (&'static str, &'static str) {
    (r.kind().group(), r.kind().name())
}

#[cfg(test)]
mod tests;
