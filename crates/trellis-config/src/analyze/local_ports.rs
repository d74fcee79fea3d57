//! TRL2006: a Kubernetes Service selects a LocalWorkload, but none of its ports sends traffic to
//! the port the process listens on. Each replica gets the Service's `targetPort` (its `port` when
//! unset), exactly as a pod would, so every request would reach a closed port. Kubernetes cannot
//! catch this for pods (it does not know what a container listens on); for a LocalWorkload the
//! port is declared, so Trellis can.

use super::{Index, Report};
use crate::diag::Code;
use crate::resources::common::IntOrString;
use crate::resources::core::{Protocol, Service, ServicePort, ServiceType};
use crate::resources::trellis::LocalWorkload;
use crate::resources::{Resource, Spec};
use trellis_model::selector_matches;

/// Where a service port sends traffic on the selected workload.
enum Target<'a> {
    Number(i64),
    Name(&'a str),
}

impl Target<'_> {
    fn of(p: &ServicePort) -> Target<'_> {
        match &p.target_port {
            // 0 and "" mean "same as port", as the API server defaults them.
            None | Some(IntOrString::Int(0)) => Target::Number(i64::from(p.port)),
            Some(IntOrString::String(s)) if s.is_empty() => Target::Number(i64::from(p.port)),
            Some(IntOrString::Int(n)) => Target::Number(*n),
            Some(IntOrString::String(s)) => Target::Name(s),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Number(n) => n.to_string(),
            Target::Name(s) => format!("{s:?} (a name; a LocalWorkload's port has none)"),
        }
    }
}

/// The path of the field that decides where port `i` sends traffic.
fn target_field(i: usize, p: &ServicePort) -> String {
    match &p.target_port {
        None | Some(IntOrString::Int(0)) => format!("spec.ports[{i}].port"),
        Some(IntOrString::String(s)) if s.is_empty() => format!("spec.ports[{i}].port"),
        Some(_) => format!("spec.ports[{i}].targetPort"),
    }
}

pub fn check(index: &Index<'_>, report: &mut Report) {
    let locals: Vec<(&Resource, &LocalWorkload)> = index
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::LocalWorkload(w) => Some((r, &**w)),
            _ => None,
        })
        .collect();
    if locals.is_empty() {
        return;
    }
    for r in index.resources {
        if let Spec::Service(s) = &r.spec {
            service(report, r, s, &locals);
        }
    }
}

fn service(report: &mut Report, r: &Resource, s: &Service, locals: &[(&Resource, &LocalWorkload)]) {
    if s.selector.is_empty() || s.type_ == Some(ServiceType::ExternalName) {
        return;
    }
    // The mesh carries TCP only; UDP and SCTP ports are reported elsewhere (TRL2005).
    let ports: Vec<(usize, &ServicePort, Target<'_>)> = s
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| p.protocol.unwrap_or_default() == Protocol::Tcp)
        .map(|(i, p)| (i, p, Target::of(p)))
        .collect();
    let Some((first, first_port, _)) = ports.first() else {
        return;
    };
    for (lr, lw) in locals {
        if lr.namespace != r.namespace || !selector_matches(&s.selector, &lw.labels) {
            continue;
        }
        let Some(listens) = lw.port() else { continue };
        if ports
            .iter()
            .any(|(_, _, t)| matches!(t, Target::Number(n) if *n == i64::from(listens)))
        {
            continue;
        }
        let targets: Vec<String> = ports.iter().map(|(_, _, t)| t.describe()).collect();
        let (what, fix) = match ports.as_slice() {
            [_] => (
                format!("this Service sends traffic to port {}", targets.join("")),
                format!("set targetPort: {listens}"),
            ),
            _ => (
                format!("this Service sends traffic to ports {}", targets.join(", ")),
                format!("set targetPort: {listens} on the port meant for it"),
            ),
        };
        report.at(
            r,
            &target_field(*first, first_port),
            Code::LocalPortMismatch,
            format!(
                "{what} of LocalWorkload {}/{}, which listens on {listens}: every connection would reach a closed port; {fix}",
                lr.namespace, lr.name
            ),
        );
    }
}
