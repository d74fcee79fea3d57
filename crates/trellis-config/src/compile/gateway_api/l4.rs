//! TCPRoute and TLSRoute rules -> model TCP and TLS (SNI) routes.
//!
//! Layer-4 rules have no matches of their own: a TCPRoute takes every connection on the port
//! it is attached to, a TLSRoute every connection whose SNI is one of its hostnames. So only
//! the first rule can ever be used (v1alpha2 allowed several; v1 allows one), and further
//! rules are reported.

use super::super::{Ctx, source_ref};
use super::Lookup;
use super::backends::{self, backend_object};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::{
    BackendRef, TcpRoute as TcpRouteSpec, TlsRoute as TlsRouteSpec,
};
use trellis_model::{TcpRoute, TlsMatch, TlsRoute, WeightedDestination};

/// A TCPRoute: one model route per rule, all matching every connection.
pub(super) fn tcp(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &TcpRouteSpec,
) -> Vec<TcpRoute> {
    let rules: Vec<&[BackendRef]> = spec
        .rules
        .iter()
        .map(|rule| rule.backend_refs.as_slice())
        .collect();
    report_unreachable(cx, r, rules.len(), "TCPRoute");
    rules
        .iter()
        .enumerate()
        .map(|(i, b)| TcpRoute {
            matches: Vec::new(),
            destinations: destinations(cx, lk, r, i, b),
            origin: source_ref(r),
        })
        .collect()
}

/// A TLSRoute: one model route per rule, matching the route's hostnames as SNI (any SNI when
/// it has none). Attaching to a Gateway narrows the SNI list to the listener's hostnames.
pub(super) fn tls(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &TlsRouteSpec,
) -> Vec<TlsRoute> {
    let rules: Vec<&[BackendRef]> = spec
        .rules
        .iter()
        .map(|rule| rule.backend_refs.as_slice())
        .collect();
    report_unreachable(cx, r, rules.len(), "TLSRoute");
    let sni_hosts: Vec<String> = spec
        .hostnames
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    rules
        .iter()
        .enumerate()
        .map(|(i, b)| TlsRoute {
            matches: vec![TlsMatch {
                sni_hosts: sni_hosts.clone(),
                ..TlsMatch::default()
            }],
            destinations: destinations(cx, lk, r, i, b),
            origin: source_ref(r),
        })
        .collect()
}

/// Rules after the first never receive a connection.
fn report_unreachable(cx: &mut Ctx<'_>, r: &Resource, rules: usize, kind: &str) {
    for i in 1..rules {
        cx.report.at(
            r,
            &format!("spec.rules[{i}]"),
            Code::IneffectiveMatch,
            format!("{kind} rules have no matches, so every connection takes rules[0] and this rule is never used"),
        );
    }
}

/// The weighted backends of rule `i`; backends the route may not use are dropped (reported).
/// With none left the connection is closed, the layer-4 equivalent of a 500.
fn destinations(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    i: usize,
    refs: &[BackendRef],
) -> Vec<WeightedDestination> {
    refs.iter()
        .enumerate()
        .filter_map(|(j, b)| {
            let dest = backends::resolve(
                cx,
                lk,
                r,
                &format!("spec.rules[{i}].backendRefs[{j}]"),
                &backend_object!(b),
            )?;
            Some(WeightedDestination::new(
                dest,
                backends::weight(b.effective_weight()),
            ))
        })
        .collect()
}
