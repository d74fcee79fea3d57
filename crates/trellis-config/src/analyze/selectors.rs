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

pub fn check(index: &Index<'_>, report: &mut Report) {
    for r in index.resources {
        match &r.spec {
            Spec::IstioAuthorizationPolicy(p) => {
                if let Some(s) = &p.selector {
                    policy(
                        index,
                        report,
                        r,
                        &s.match_labels,
                        "spec.selector.matchLabels",
                    );
                }
            }
            Spec::RequestAuthentication(p) => {
                if let Some(s) = &p.selector {
                    policy(
                        index,
                        report,
                        r,
                        &s.match_labels,
                        "spec.selector.matchLabels",
                    );
                }
            }
            Spec::PeerAuthentication(p) => {
                if let Some(s) = &p.selector {
                    policy(
                        index,
                        report,
                        r,
                        &s.match_labels,
                        "spec.selector.matchLabels",
                    );
                }
            }
            Spec::Telemetry(p) => {
                if let Some(s) = &p.selector {
                    policy(
                        index,
                        report,
                        r,
                        &s.match_labels,
                        "spec.selector.matchLabels",
                    );
                }
            }
            Spec::Sidecar(p) => {
                if let Some(s) = &p.workload_selector {
                    policy(index, report, r, &s.labels, "spec.workloadSelector.labels");
                }
            }
            Spec::DestinationRule(p) => {
                if let Some(s) = &p.workload_selector {
                    policy(
                        index,
                        report,
                        r,
                        &s.match_labels,
                        "spec.workloadSelector.matchLabels",
                    );
                }
            }
            Spec::ServiceEntry(p) => {
                if let Some(s) = &p.workload_selector {
                    policy(index, report, r, &s.labels, "spec.workloadSelector.labels");
                }
            }
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
