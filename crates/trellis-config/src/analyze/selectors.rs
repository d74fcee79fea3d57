//! Selectors that select nothing in the input: policies (IST0127, warning, as Istio) and Istio
//! gateways (IST0101, as Istio's gateway analyzer reports it). A selector in the root namespace
//! (`istio-system`) may select workloads in any namespace; elsewhere only in its own.

use super::{Index, Report};
use crate::diag::Code;
use crate::resources::{Resource, Spec};
use trellis_model::{DEFAULT_ROOT_NAMESPACE, Labels};

fn describe(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn policy(index: &Index<'_>, report: &mut Report, r: &Resource, labels: &Labels, path: &str) {
    if labels.is_empty() {
        return;
    }
    let ns = (r.namespace != DEFAULT_ROOT_NAMESPACE).then_some(r.namespace.as_str());
    if !index.selects_any(ns, labels) {
        report.at(
            r,
            path,
            Code::NoMatchingWorkloads,
            format!(
                "No matching workloads for this resource with the following labels: {}",
                describe(labels)
            ),
        );
    }
}

/// The workload selector of a policy-like resource and the path where it is written.
fn policy_selector(spec: &Spec) -> Option<(&Labels, &'static str)> {
    const SELECTOR: &str = "spec.selector.matchLabels";
    match spec {
        Spec::IstioAuthorizationPolicy(p) => {
            p.selector.as_ref().map(|s| (&s.match_labels, SELECTOR))
        }
        Spec::RequestAuthentication(p) => p.selector.as_ref().map(|s| (&s.match_labels, SELECTOR)),
        Spec::PeerAuthentication(p) => p.selector.as_ref().map(|s| (&s.match_labels, SELECTOR)),
        Spec::Telemetry(p) => p.selector.as_ref().map(|s| (&s.match_labels, SELECTOR)),
        Spec::Sidecar(p) => p
            .workload_selector
            .as_ref()
            .map(|s| (&s.labels, "spec.workloadSelector.labels")),
        Spec::DestinationRule(p) => p
            .workload_selector
            .as_ref()
            .map(|s| (&s.match_labels, "spec.workloadSelector.matchLabels")),
        Spec::ServiceEntry(p) => p
            .workload_selector
            .as_ref()
            .map(|s| (&s.labels, "spec.workloadSelector.labels")),
        _ => None,
    }
}

pub fn check(index: &Index<'_>, report: &mut Report) {
    for r in index.resources {
        if let Some((labels, path)) = policy_selector(&r.spec) {
            policy(index, report, r, labels, path);
            continue;
        }
        match &r.spec {
            Spec::IstioGateway(g)
                if !g.selector.is_empty() && !index.selects_any(None, &g.selector) =>
            {
                report.at(
                    r,
                    "spec.selector",
                    Code::ReferencedResourceNotFound,
                    format!("Referenced selector not found: {:?}", describe(&g.selector)),
                );
            }
            Spec::LinkerdServer(s) => {
                if let Some(sel) = &s.pod_selector
                    && !index
                        .in_namespace(&r.namespace)
                        .any(|w| sel.matches(w.labels))
                {
                    report.at(
                        r,
                        "spec.podSelector",
                        Code::NoMatchingWorkloads,
                        "No matching workloads for this Server's podSelector in its namespace"
                            .to_owned(),
                    );
                }
            }
            _ => {}
        }
    }
}
