//! IST0113: a DestinationRule that sends plain text (`tls.mode: DISABLE`) to a service whose
//! workloads require mutual TLS (PeerAuthentication STRICT for its namespace or the whole mesh).
//! Every such request is refused by the server side.

use super::{Index, Report};
use crate::diag::Code;
use crate::resources::Spec;
use crate::resources::istio_networking::{ClientTlsMode, TrafficPolicy};
use crate::resources::istio_security::MutualTlsMode;
use crate::resources::{Kind, Resource};
use std::collections::HashMap;
use trellis_model::DEFAULT_ROOT_NAMESPACE;

/// The namespace-wide PeerAuthentication that sets a mode, per namespace (the first in input
/// order, as Istio uses the oldest).
fn namespace_modes<'a>(index: &Index<'a>) -> HashMap<&'a str, (&'a Resource, MutualTlsMode)> {
    let mut modes = HashMap::new();
    for r in index.resources {
        if let Spec::PeerAuthentication(pa) = &r.spec
            && pa.selector.is_none()
            && let Some(m) = &pa.mtls
            && m.mode != MutualTlsMode::Unset
        {
            modes.entry(r.namespace.as_str()).or_insert((r, m.mode));
        }
    }
    modes
}

fn disables_tls(p: &TrafficPolicy) -> bool {
    p.tls
        .as_ref()
        .is_some_and(|t| t.mode == Some(ClientTlsMode::Disable))
}

pub fn check(index: &Index<'_>, report: &mut Report) {
    let modes = namespace_modes(index);
    // The namespace's own policy, else the mesh-wide one in the root namespace.
    let mode_for = |ns: &str| {
        modes
            .get(ns)
            .or_else(|| modes.get(DEFAULT_ROOT_NAMESPACE))
            .copied()
    };
    for r in index.resources {
        let Spec::DestinationRule(dr) = &r.spec else {
            continue;
        };
        let fqdn = index.resolver.fqdn(&dr.host, &r.namespace);
        let Some((name, ns)) = index.resolver.split_service_fqdn(&fqdn) else {
            continue;
        };
        if index.get(Kind::Service, ns, name).is_none() {
            continue;
        }
        let Some((pa, MutualTlsMode::Strict)) = mode_for(ns) else {
            continue;
        };
        let mut places: Vec<String> = Vec::new();
        if dr.traffic_policy.as_ref().is_some_and(disables_tls) {
            places.push("spec.trafficPolicy.tls.mode".into());
        }
        for (i, s) in dr.subsets.iter().enumerate() {
            if s.traffic_policy.as_ref().is_some_and(disables_tls) {
                places.push(format!("spec.subsets[{i}].trafficPolicy.tls.mode"));
            }
        }
        for path in places {
            report.at(
                r,
                &path,
                Code::MtlsConflict,
                format!(
                    "TLS is disabled for {fqdn}, but PeerAuthentication {}/{} requires mutual TLS (STRICT) there: every request would be refused",
                    pa.namespace, pa.name
                ),
            );
        }
    }
}
