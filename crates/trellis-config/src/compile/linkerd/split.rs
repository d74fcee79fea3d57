//! SMI TrafficSplit: the weighted backends that replace the root (apex) service as the
//! destination of its traffic.
//!
//! Linkerd's SMI extension writes a TrafficSplit into the root service's ServiceProfile as
//! `dstOverrides`; the proxy then sends every request (and every opaque connection) for the root
//! service to one of the backends, by weight. The compiler does the same: the backends become the
//! forward action of the routes `super::routes` builds for the root host.

use super::super::Ctx;
use crate::diag::Code;
use crate::resources::common::Quantity;
use crate::resources::{Kind, Resource, Spec};
use std::collections::BTreeMap;
use trellis_model::{Destination, WeightedDestination};

/// One usable TrafficSplit: its resource and the weighted backends of its root host.
pub(super) struct Split<'a> {
    pub r: &'a Resource,
    pub backends: Vec<WeightedDestination>,
}

/// TrafficSplits by root service FQDN. Splits whose root is not a service are reported and
/// dropped (there is nothing to attach routes to); a second split for the same root is reported
/// and dropped, because Linkerd keeps one set of overrides per service.
pub(super) fn collect<'a>(cx: &mut Ctx<'a>) -> BTreeMap<String, Split<'a>> {
    let mut out: BTreeMap<String, Split<'a>> = BTreeMap::new();
    for r in super::of_kind(cx, Kind::TrafficSplit) {
        let Spec::TrafficSplit(ts) = &r.spec else {
            continue;
        };
        if ts.service.is_empty() {
            continue; // validation reported the missing field
        }
        let host = cx.fqdn(&ts.service, &r.namespace);
        if cx.service(&host).is_none() {
            cx.report.at(
                r,
                "spec.service",
                Code::ReferencedResourceNotFound,
                format!("root service {host} is not a service in the input; this TrafficSplit has no effect"),
            );
            continue;
        }
        if let Some(first) = out.get(&host) {
            let first = super::super::source_ref(first.r);
            cx.report.at(
                r,
                "spec.service",
                Code::IgnoredSetting,
                format!("{first} already splits {host}; Linkerd applies one split per service, so this one is ignored"),
            );
            continue;
        }
        if !ts.matches.is_empty() {
            cx.report.at(
                r,
                "spec.matches",
                Code::IgnoredSetting,
                "`matches` is not enforced (Linkerd's SMI extension ignores it too): all traffic to the root service is split",
            );
        }
        let mut hosts = Vec::with_capacity(ts.backends.len());
        for (i, b) in ts.backends.iter().enumerate() {
            let backend = cx.fqdn(&b.service, &r.namespace);
            if cx.service(&backend).is_none() {
                cx.report.at(
                    r,
                    &format!("spec.backends[{i}].service"),
                    Code::ReferencedResourceNotFound,
                    format!("backend service {backend} is not a service in the input; its share of requests fails with 503 (UH)"),
                );
            }
            hosts.push((Destination::new(backend), b.weight));
        }
        out.insert(
            host,
            Split {
                r,
                backends: weighted(hosts),
            },
        );
    }
    out
}

/// Destinations with relative weights taken from quantities' milli values (`900` and `900000m`
/// weigh the same; a missing weight is 0, as in Linkerd). Weights are relative, so when one does
/// not fit in `u32` all are scaled down together, keeping their ratios.
pub(super) fn weighted(items: Vec<(Destination, Option<Quantity>)>) -> Vec<WeightedDestination> {
    let milli: Vec<u64> = items
        .iter()
        .map(|(_, w)| w.map_or(0, |q| q.milli))
        .collect();
    let max = milli.iter().copied().max().unwrap_or(0);
    let limit = u64::from(u32::MAX);
    let divisor = if max > limit { max.div_ceil(limit) } else { 1 };
    items
        .into_iter()
        .zip(milli)
        .map(|((d, _), m)| {
            WeightedDestination::new(d, u32::try_from(m / divisor).unwrap_or(u32::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_keep_ratios() {
        let q = |milli| Some(Quantity { milli });
        let w = weighted(vec![
            (Destination::new("a"), q(900_000)),
            (Destination::new("b"), q(100_000)),
            (Destination::new("c"), None),
        ]);
        let got: Vec<u32> = w.iter().map(|d| d.weight).collect();
        assert_eq!(got, vec![900_000, 100_000, 0]);
        let big = weighted(vec![
            (Destination::new("a"), q(u64::MAX)),
            (Destination::new("b"), q(u64::MAX / 4)),
        ]);
        let (a, b) = (big[0].weight, big[1].weight);
        assert!(a > 0 && b > 0);
        assert!((f64::from(a) / f64::from(b) - 4.0).abs() < 1e-6, "{a} {b}");
        assert!(weighted(Vec::new()).is_empty());
    }
}
