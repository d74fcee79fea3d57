//! TCP and TLS (SNI passthrough) rules of a VirtualService, and the destination and weight
//! conversions all rule kinds share.

use super::matches;
use crate::compile::{Ctx, source_ref};
use crate::resources::Resource;
use crate::resources::istio_networking::{self as istio, RouteDestination};
use trellis_model::{Destination, TcpRoute, TlsRoute, WeightedDestination};

/// A destination with its host fully qualified in `namespace` (where the rule was written).
pub(super) fn destination(cx: &Ctx<'_>, namespace: &str, d: &istio::Destination) -> Destination {
    Destination {
        host: cx.fqdn(&d.host, namespace),
        subset: d.subset.clone().filter(|s| !s.is_empty()),
        port: d
            .port
            .as_ref()
            .and_then(|p| p.number)
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n != 0),
    }
}

/// The weight of one of `count` destinations, as Istio reads it: a lone destination takes all
/// traffic whatever its weight (written weights are kept, they are proportions); among several, a
/// missing weight is 0.
pub(super) fn weight(count: usize, w: Option<i32>) -> u32 {
    let w = w.and_then(|w| u32::try_from(w).ok()).unwrap_or(0);
    if count == 1 && w == 0 { 100 } else { w }
}

/// The weighted destinations of a TCP or TLS rule.
fn destinations(
    cx: &Ctx<'_>,
    namespace: &str,
    route: &[RouteDestination],
) -> Vec<WeightedDestination> {
    route
        .iter()
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            Some(WeightedDestination::new(
                destination(cx, namespace, dest),
                weight(route.len(), d.weight),
            ))
        })
        .collect()
}

/// A `tcp` rule at `path` (`spec.tcp[i]`).
pub(super) fn tcp(cx: &mut Ctx<'_>, r: &Resource, path: &str, rule: &istio::TcpRoute) -> TcpRoute {
    let matches = rule
        .matches
        .iter()
        .enumerate()
        .map(|(j, m)| matches::l4(cx, r, &format!("{path}.match[{j}]"), m))
        .collect();
    TcpRoute {
        matches,
        destinations: destinations(cx, &r.namespace, &rule.route),
        origin: source_ref(r),
    }
}

/// A `tls` rule.
pub(super) fn tls(cx: &Ctx<'_>, r: &Resource, rule: &istio::TlsRoute) -> TlsRoute {
    TlsRoute {
        matches: rule.matches.iter().map(|m| matches::tls(r, m)).collect(),
        destinations: destinations(cx, &r.namespace, &rule.route),
        origin: source_ref(r),
    }
}
