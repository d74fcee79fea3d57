//! VirtualService pass (route precedence 1): HTTP, TCP and TLS rules become the routes of the
//! services they name (mesh) and virtual hosts of the gateways they are bound to.
//!
//! Each VirtualService is compiled once ([`compile_vs`]), delegates inlined; the result is then
//! attached:
//!
//! - to the mesh (`gateways` empty or containing `mesh`): for every service, the VirtualServices
//!   with the most specific host covering it compete, as Envoy picks the most specific virtual
//!   host; among equally specific ones the first in input order wins and the others get IST0109
//!   (through [`Ctx::claim_routes`], which also applies precedence over other APIs);
//! - to each named gateway: one [`VirtualHost`] per gateway port whose servers admit the host.
//!
//! Match conditions restricted to other gateways (`match.gateways`) are dropped where they can
//! never match, and a rule left without matches is dropped, so the proxy never sees it.

mod budget;
mod delegate;
mod http;
mod l4;
mod matches;
mod policy;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_delegate;
#[cfg(test)]
mod tests_gateway;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_rules;

use super::{Ctx, RouteApi, source_ref};
use crate::diag::Code;
use crate::resources::istio_networking::VirtualService;
use crate::resources::{Kind, Resource, Spec};
use budget::Budgets;
use std::collections::HashMap;
use trellis_model::{HttpRoute, TcpRoute, TlsRoute, VirtualHost, host_match_rank, host_matches};

/// The routes of one VirtualService, in rule order.
#[derive(Debug, Clone, Default)]
struct Routes {
    http: Vec<HttpRoute>,
    tcp: Vec<TcpRoute>,
    tls: Vec<TlsRoute>,
}

impl Routes {
    /// The routes that can match where they are attached (`mesh`, or a gateway as
    /// `namespace/name`): matches for other gateways are dropped, so the proxy never sees them.
    fn attached_to(&self, at: &str) -> Routes {
        Routes {
            http: self
                .http
                .iter()
                .filter_map(|r| matches::keep_http(r, at))
                .collect(),
            tcp: self
                .tcp
                .iter()
                .filter_map(|r| matches::keep_tcp(r, at))
                .collect(),
            tls: self
                .tls
                .iter()
                .filter_map(|r| matches::keep_tls(r, at))
                .collect(),
        }
    }
}

/// Compile every root VirtualService and attach its routes to services and gateways.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let budgets = Budgets::parse(cx);
    let roots: Vec<(&Resource, &VirtualService)> = cx
        .of_kind(Kind::VirtualService)
        .filter_map(|r| match &r.spec {
            // Delegates are reached only through a root's `delegate:`.
            Spec::VirtualService(vs) if !vs.is_delegate() => Some((r, vs.as_ref())),
            _ => None,
        })
        .collect();
    let compiled: Vec<Routes> = roots
        .iter()
        .map(|(r, vs)| compile_vs(cx, &budgets, r, vs))
        .collect();
    attach_mesh(cx, &roots, &compiled);
    attach_gateways(cx, &roots, &compiled);
}

/// All rules of one root VirtualService in model form, delegates expanded in place.
fn compile_vs(
    cx: &mut Ctx<'_>,
    budgets: &Budgets<'_>,
    r: &Resource,
    vs: &VirtualService,
) -> Routes {
    if !vs.export_to.is_empty() && !vs.export_to.iter().all(|e| e == "*") {
        cx.report.at(
            r,
            "spec.exportTo",
            Code::IgnoredSetting,
            "exportTo is not enforced: these routes apply to clients in every namespace",
        );
    }
    let mut out = Routes::default();
    for (i, rule) in vs.http.iter().enumerate() {
        let path = format!("spec.http[{i}]");
        if rule.delegate.is_some() {
            out.http
                .extend(delegate::expand(cx, budgets, r, &path, rule));
        } else {
            let mut route = http::route(cx, r, &path, rule);
            budgets.attach(&mut route, &[r]);
            out.http.push(route);
        }
    }
    for (i, rule) in vs.tcp.iter().enumerate() {
        out.tcp
            .push(l4::tcp(cx, r, &format!("spec.tcp[{i}]"), rule));
    }
    for rule in &vs.tls {
        out.tls.push(l4::tls(cx, r, rule));
    }
    out
}

/// Mesh routes: each service gets the routes of the VirtualService with the most specific host
/// covering it; hosts that cover no service are reported, since their routes do nothing.
fn attach_mesh(cx: &mut Ctx<'_>, roots: &[(&Resource, &VirtualService)], compiled: &[Routes]) {
    // (root index, host index, FQDN) of every mesh host, in input order.
    let mut hosts: Vec<(usize, usize, String)> = Vec::new();
    for (k, (r, vs)) in roots.iter().enumerate() {
        if vs.applies_to_mesh() {
            for (i, h) in vs.hosts.iter().enumerate() {
                hosts.push((k, i, cx.fqdn(h, &r.namespace)));
            }
        }
    }
    if hosts.is_empty() {
        return;
    }
    let mut used = vec![false; hosts.len()];
    let mut has_mesh_host = vec![false; roots.len()];
    // Exact hosts by name, wildcard hosts apart: a service is compared with its exact hosts and
    // the (few) wildcards only, so thousands of VirtualServices stay linear.
    let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
    let mut wildcards: Vec<usize> = Vec::new();
    for (h, (k, _, host)) in hosts.iter().enumerate() {
        has_mesh_host[*k] = true;
        if host.contains('*') {
            wildcards.push(h);
        } else {
            exact.entry(host.to_ascii_lowercase()).or_default().push(h);
        }
    }
    let mesh_routes: Vec<Option<Routes>> = (0..roots.len())
        .map(|k| has_mesh_host[k].then(|| compiled[k].attached_to("mesh")))
        .collect();
    let services: Vec<String> = cx.mesh.services.iter().map(|s| s.host.clone()).collect();
    for svc in services {
        let mut candidates: Vec<usize> = exact
            .get(&svc.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        candidates.extend(wildcards.iter().copied());
        candidates.sort_unstable();
        let ranked: Vec<(usize, usize)> = candidates
            .into_iter()
            .filter_map(|h| Some((h, vs_host_rank(&hosts[h].2, &svc)?)))
            .collect();
        let Some(best) = ranked.iter().map(|(_, k)| *k).max() else {
            continue;
        };
        let mut seen: Vec<usize> = Vec::new();
        for (h, rank) in ranked {
            used[h] = true;
            let (k, i, _) = &hosts[h];
            if rank != best || seen.contains(k) {
                continue;
            }
            seen.push(*k);
            let r = roots[*k].0;
            if !cx.claim_routes(
                &svc,
                RouteApi::VirtualService,
                r,
                &format!("spec.hosts[{i}]"),
            ) {
                continue;
            }
            let Some(routes) = &mesh_routes[*k] else {
                continue;
            };
            let origin = source_ref(r);
            if let Some(s) = cx.service_mut(&svc) {
                s.http_routes = routes.http.clone();
                s.tcp_routes = routes.tcp.clone();
                s.tls_routes = routes.tls.clone();
                if !s.origins.contains(&origin) {
                    s.origins.push(origin);
                }
            }
        }
    }
    for ((k, i, host), used) in hosts.iter().zip(used) {
        if !used {
            cx.report.at(
                roots[*k].0,
                &format!("spec.hosts[{i}]"),
                Code::IgnoredSetting,
                format!(
                    "no service in the input has host {host}; these mesh routes apply to nothing"
                ),
            );
        }
    }
}

/// How specifically VirtualService host `pattern` covers service `host`; identical strings
/// (including wildcard ServiceEntry hosts) rank highest.
fn vs_host_rank(pattern: &str, host: &str) -> Option<usize> {
    if pattern.eq_ignore_ascii_case(host) {
        Some(usize::MAX)
    } else {
        host_match_rank(pattern, host)
    }
}

/// Gateway routes: a virtual host on every port of each named gateway whose servers admit one of
/// the VirtualService's hosts. Gateways that do not exist are the analyzer's (IST0101).
fn attach_gateways(cx: &mut Ctx<'_>, roots: &[(&Resource, &VirtualService)], compiled: &[Routes]) {
    for ((r, vs), routes) in roots.iter().zip(compiled) {
        let vs_hosts: Vec<String> = vs.hosts.iter().map(|h| cx.fqdn(h, &r.namespace)).collect();
        for (gi, g) in vs.gateways.iter().enumerate() {
            if g == "mesh" || g.is_empty() {
                continue;
            }
            let key = matches::gateway_key(g, &r.namespace);
            let Some(gw) = cx
                .mesh
                .gateways
                .iter()
                .position(|gw| format!("{}/{}", gw.namespace, gw.name) == key)
            else {
                continue;
            };
            // Port -> admitted hosts, in server order.
            let mut ports: Vec<(u16, Vec<String>)> = Vec::new();
            for server in &cx.mesh.gateways[gw].servers {
                for vh in &vs_hosts {
                    for sh in server
                        .hosts
                        .iter()
                        .filter(|sh| sh.allows_namespace(&r.namespace))
                    {
                        let Some(host) = intersect(&sh.host, vh) else {
                            continue;
                        };
                        let at = match ports.iter().position(|(p, _)| *p == server.port) {
                            Some(at) => at,
                            None => {
                                ports.push((server.port, Vec::new()));
                                ports.len() - 1
                            }
                        };
                        if !ports[at].1.contains(&host) {
                            ports[at].1.push(host);
                        }
                    }
                }
            }
            if ports.is_empty() {
                cx.report.at(
                    r,
                    &format!("spec.gateways[{gi}]"),
                    Code::IgnoredSetting,
                    format!("no server of gateway {key} admits any of the hosts [{}] from namespace {}; these routes are not served there", vs_hosts.join(", "), r.namespace),
                );
                continue;
            }
            let bound = routes.attached_to(&key);
            for (port, hosts) in ports {
                cx.mesh.gateways[gw].virtual_hosts.push(VirtualHost {
                    port,
                    hosts,
                    http_routes: bound.http.clone(),
                    tcp_routes: bound.tcp.clone(),
                    tls_routes: bound.tls.clone(),
                });
            }
        }
    }
}

/// The hosts a gateway server host and a VirtualService host have in common: the more specific
/// of the two when one covers the other (as Istio narrows `*.example.com` to `api.example.com`).
fn intersect(server_host: &str, vs_host: &str) -> Option<String> {
    if host_matches(server_host, vs_host) {
        Some(vs_host.to_owned())
    } else if host_matches(vs_host, server_host) {
        Some(server_host.to_owned())
    } else {
        None
    }
}
