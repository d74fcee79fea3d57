//! Linkerd and SMI: ServiceProfile routes, TrafficSplit backends, and Linkerd server policy
//! (Server, ServerAuthorization, AuthorizationPolicy, MeshTLSAuthentication,
//! NetworkAuthentication).
//!
//! Routes come last in precedence (`RouteApi::Linkerd`): a host routed by a VirtualService or a
//! Gateway API route keeps those routes, and the Linkerd resources for it get TRL2004. Profiles
//! and splits for one host compose, as in Linkerd: the profile's routes forward to the split's
//! backends (or to the profile's own `dstOverrides`, which take the split's place), and a final
//! catch-all keeps unmatched requests flowing.
//!
//! The order inside the pass matters: Server `proxyProtocol` and profile `opaquePorts` set port
//! protocols first, because whether a port gets TCP/TLS routes for a split depends on them.

mod authz;
mod conditions;
mod pods;
mod policy;
mod profile;
mod route_ops;
mod split;
#[cfg(test)]
mod tests_authz;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_profile;
#[cfg(test)]
mod tests_routes;

use super::{Ctx, RouteApi, source_ref};
use crate::diag::Code;
use crate::resources::{Kind, Resource};
use std::collections::BTreeSet;
use trellis_model::{
    Destination, HttpRoute, L4Match, Protocol, RouteAction, TcpRoute, TlsMatch, TlsRoute,
    WeightedDestination,
};

/// Run the Linkerd/SMI pass: protocols, routes, then authorization policies.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let pods = pods::Pods::new(cx.resources);
    let servers = policy::servers(cx, &pods);
    policy::apply_protocols(cx, &pods, &servers);
    let profiles = profile::collect(cx);
    for p in &profiles {
        profile::apply_opaque_ports(cx, p);
    }
    routes(cx, profiles);
    policy::compile(cx, &pods, &servers);
}

/// Resources of `kind` in input order, borrowing the input rather than `cx`, so loops over them
/// may report and change the mesh.
fn of_kind<'a>(cx: &Ctx<'a>, kind: Kind) -> impl Iterator<Item = &'a Resource> + use<'a> {
    let all: &'a [Resource] = cx.resources;
    all.iter().filter(move |r| r.kind() == kind)
}

/// Build the routes of every host that has a TrafficSplit or ServiceProfile and is not owned by a
/// higher-precedence API.
fn routes(cx: &mut Ctx<'_>, profiles: Vec<profile::Profile<'_>>) {
    let mut splits = split::collect(cx);
    let hosts: BTreeSet<String> = splits
        .keys()
        .cloned()
        .chain(profiles.iter().map(|p| p.host.clone()))
        .collect();
    for host in hosts {
        let split = splits
            .remove(&host)
            .filter(|s| cx.claim_routes(&host, RouteApi::Linkerd, s.r, "spec.service"));
        let mut mine: Vec<&profile::Profile<'_>> = Vec::new();
        for p in profiles.iter().filter(|p| p.host == host) {
            if cx.claim_routes(&host, RouteApi::Linkerd, p.r, "metadata.name") {
                mine.push(p);
            }
        }
        if split.is_none() && mine.is_empty() {
            continue;
        }
        // Client-side profiles first: for their clients they replace the service's own profile.
        mine.sort_by_key(|p| p.client_ns.is_none());
        let itself = vec![WeightedDestination::new(Destination::new(host.clone()), 1)];
        let split_dests = split
            .as_ref()
            .map_or_else(|| itself.clone(), |s| s.backends.clone());

        let mut http: Vec<HttpRoute> = Vec::new();
        let mut l4: Vec<(
            Option<String>,
            Vec<WeightedDestination>,
            trellis_model::SourceRef,
        )> = Vec::new();
        let mut own_profile = false;
        for p in &mine {
            let dests = profile::destinations(cx, p, &split_dests);
            if p.client_ns.is_none() {
                own_profile = true;
                if let Some(s) = split.as_ref().filter(|_| !p.sp.dst_overrides.is_empty()) {
                    let msg = format!(
                        "{} sets dstOverrides for {host}, which take the place of this split",
                        source_ref(p.r)
                    );
                    cx.report
                        .at(s.r, "spec.backends", Code::IgnoredSetting, msg);
                }
            }
            if dests != itself {
                l4.push((p.client_ns.clone(), dests.clone(), source_ref(p.r)));
            }
            http.extend(profile::routes(cx, p, &dests));
        }
        if let Some(s) = split.as_ref().filter(|_| !own_profile) {
            http.push(HttpRoute {
                action: RouteAction::Forward(s.backends.clone()),
                origin: source_ref(s.r),
                ..HttpRoute::default()
            });
            l4.push((None, s.backends.clone(), source_ref(s.r)));
        }
        if let Some(svc) = cx.service_mut(&host) {
            svc.http_routes.extend(http);
            if !l4.is_empty() && l4.iter().all(|(ns, _, _)| ns.is_some()) {
                // Only client-side overrides: everyone else still reaches the service itself.
                let origin = l4[0].2.clone();
                l4.push((None, itself.clone(), origin));
            }
            let ports: Vec<(u16, Protocol)> =
                svc.ports.iter().map(|p| (p.number, p.protocol)).collect();
            for (ns, dests, origin) in l4 {
                l4_routes(svc, &ports, ns, dests, origin);
            }
        }
    }
}

/// Opaque connections to a split service are split too (Linkerd applies overrides to every
/// connection, not only HTTP): one TCP route over the ports that may carry non-HTTP traffic
/// (opaque or undeclared ones) and one TLS route over TLS ports.
fn l4_routes(
    svc: &mut trellis_model::Service,
    ports: &[(u16, Protocol)],
    client_ns: Option<String>,
    dests: Vec<WeightedDestination>,
    origin: trellis_model::SourceRef,
) {
    let tcp: Vec<L4Match> = ports
        .iter()
        .filter(|(_, p)| !p.is_http() && !p.is_tls())
        .map(|(n, _)| L4Match {
            port: Some(*n),
            source_namespace: client_ns.clone(),
            ..L4Match::default()
        })
        .collect();
    let tls: Vec<TlsMatch> = ports
        .iter()
        .filter(|(_, p)| p.is_tls())
        .map(|(n, _)| TlsMatch {
            port: Some(*n),
            source_namespace: client_ns.clone(),
            ..TlsMatch::default()
        })
        .collect();
    if !tcp.is_empty() {
        svc.tcp_routes.push(TcpRoute {
            matches: tcp,
            destinations: dests.clone(),
            origin: origin.clone(),
        });
    }
    if !tls.is_empty() {
        svc.tls_routes.push(TlsRoute {
            matches: tls,
            destinations: dests,
            origin,
        });
    }
}
