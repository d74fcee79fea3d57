//! The discovery inputs, indexed once: pods with their runtime status, pod templates,
//! WorkloadEntries, LocalWorkloads, Endpoints and EndpointSlices. Every service (Kubernetes or
//! ServiceEntry) selects from the same index, so a pod is read and checked once however many
//! services select it, and all of them agree on its addresses, readiness and identity.

use crate::diag::Code;
use crate::report::Report;
use crate::resources::core::{EndpointSlice, Endpoints, PodSpec, PodTemplateSpec};
use crate::resources::istio_networking::WorkloadEntry;
use crate::resources::trellis::LocalWorkload;
use crate::resources::{Resource, Spec};
use crate::yaml::{Node, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use trellis_model::{Endpoint, Labels};

/// Label Istio reads a pod's locality from (`region.zone.subzone`; labels cannot hold `/`).
const LOCALITY_LABEL: &str = "istio-locality";
/// Label (on a pod or its namespace) naming the network the pod is on.
const NETWORK_LABEL: &str = "topology.istio.io/network";
/// Label linking an EndpointSlice to its Service.
pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A pod and what its `status` says about it.
pub(super) struct PodView<'a> {
    pub r: &'a Resource,
    pub spec: &'a PodSpec,
    /// `status.podIPs[].ip` and `status.podIP`, deduplicated, in that order.
    pub ips: Vec<String>,
    /// Passes its readiness checks and is not being deleted.
    pub ready: bool,
    /// `Succeeded` or `Failed`: Kubernetes never makes such pods endpoints.
    pub terminal: bool,
}

/// Everything discovery selects from.
#[derive(Default)]
pub(super) struct Inventory<'a> {
    pub pods: Vec<PodView<'a>>,
    /// Deployment and StatefulSet pod templates: the pods they will create.
    pub templates: Vec<(&'a Resource, &'a PodTemplateSpec)>,
    pub workload_entries: Vec<(&'a Resource, &'a WorkloadEntry)>,
    /// Processes `trellis up` starts; like templates, they have no address until placed.
    pub local_workloads: Vec<(&'a Resource, &'a LocalWorkload)>,
    pub endpoints: Vec<(&'a Resource, &'a Endpoints)>,
    pub slices: Vec<(&'a Resource, &'a EndpointSlice)>,
    namespace_labels: HashMap<&'a str, &'a Labels>,
}

impl<'a> Inventory<'a> {
    /// Index `resources`, reporting pod addresses that are not IP addresses.
    pub fn new(resources: &'a [Resource], report: &mut Report) -> Self {
        let mut inv = Inventory::default();
        for r in resources {
            match &r.spec {
                Spec::Pod(spec) => inv.pods.push(pod_view(r, spec, report)),
                Spec::Deployment(d) => inv.templates.push((r, &d.template)),
                Spec::StatefulSet(s) => inv.templates.push((r, &s.template)),
                Spec::WorkloadEntry(we) => inv.workload_entries.push((r, we)),
                Spec::LocalWorkload(w) => inv.local_workloads.push((r, w)),
                Spec::Endpoints(e) => inv.endpoints.push((r, e)),
                Spec::EndpointSlice(s) => inv.slices.push((r, s)),
                Spec::Namespace(_) => {
                    inv.namespace_labels.insert(r.name.as_str(), &r.meta.labels);
                }
                _ => {}
            }
        }
        inv
    }

    /// The pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodView<'a>> {
        self.pods
            .iter()
            .find(|p| p.r.namespace == namespace && p.r.name == name)
    }

    /// The pod with IP `ip`, for endpoints whose `targetRef` is missing or names no known pod.
    pub fn pod_by_ip(&self, ip: &str) -> Option<&PodView<'a>> {
        self.pods.iter().find(|p| p.ips.iter().any(|a| a == ip))
    }

    /// The network of a workload: its own label, else its namespace's, as Istio reads it.
    pub fn network(&self, namespace: &str, labels: &Labels) -> Option<String> {
        labels
            .get(NETWORK_LABEL)
            .or_else(|| {
                self.namespace_labels
                    .get(namespace)
                    .and_then(|l| l.get(NETWORK_LABEL))
            })
            .filter(|n| !n.is_empty())
            .cloned()
    }

    /// One endpoint per IP of `pod`, carrying its labels and identity so subsets, mTLS and
    /// metrics work for it. `ports` maps service port names to this pod's port numbers.
    pub fn pod_endpoints(
        &self,
        pod: &PodView<'_>,
        ports: &BTreeMap<String, u16>,
        publish_not_ready: bool,
    ) -> Vec<Endpoint> {
        pod.ips
            .iter()
            .map(|ip| Endpoint {
                address: ip.clone(),
                ports: ports.clone(),
                labels: pod.r.meta.labels.clone(),
                locality: locality(&pod.r.meta.labels),
                service_account: Some(
                    pod.spec
                        .service_account_name()
                        .unwrap_or("default")
                        .to_owned(),
                ),
                workload: Some(pod.r.name.clone()),
                namespace: pod.r.namespace.clone(),
                network: self.network(&pod.r.namespace, &pod.r.meta.labels),
                ready: pod.ready || publish_not_ready,
                ..Endpoint::default()
            })
            .collect()
    }
}

/// A WorkloadEntry (standalone, `name` set, or inline in a ServiceEntry) as an endpoint. Without a
/// service account it has no mesh identity, as in Istio.
pub(super) fn entry_endpoint(
    we: &WorkloadEntry,
    namespace: &str,
    name: Option<&str>,
    ports: BTreeMap<String, u16>,
    ready: bool,
) -> Endpoint {
    Endpoint {
        address: we.address.clone(),
        ports,
        labels: we.labels.clone(),
        locality: we.locality.clone().filter(|l| !l.is_empty()),
        weight: we.weight.filter(|w| *w > 0).unwrap_or(1),
        service_account: we.service_account.clone().filter(|s| !s.is_empty()),
        workload: name.map(str::to_owned),
        namespace: namespace.to_owned(),
        network: we.network.clone().filter(|n| !n.is_empty()),
        ready,
        ..Endpoint::default()
    }
}

/// A WorkloadEntry's own port map with valid port numbers only.
pub(super) fn entry_ports(we: &WorkloadEntry) -> BTreeMap<String, u16> {
    we.ports
        .iter()
        .filter_map(|(name, n)| Some((name.clone(), port_u16(i64::from(*n))?)))
        .collect()
}

/// A port number as the model stores it; `None` for 0 and out-of-range values.
pub(super) fn port_u16(n: i64) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// The pod's locality from its `istio-locality` label (`region.zone.subzone` -> `region/zone/subzone`).
pub(super) fn locality(labels: &Labels) -> Option<String> {
    labels
        .get(LOCALITY_LABEL)
        .filter(|l| !l.is_empty())
        .map(|l| l.replace('.', "/"))
}

/// The number of the container port named `name`, in serving containers and native sidecars
/// (init containers that keep running), which is where Kubernetes resolves a named `targetPort`.
pub(super) fn named_container_port(spec: &PodSpec, name: &str) -> Option<u16> {
    serving_containers(spec)
        .flat_map(|c| &c.ports)
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| port_u16(i64::from(p.container_port)))
}

/// Containers that run for the pod's lifetime and so can serve traffic.
pub(super) fn serving_containers(
    spec: &PodSpec,
) -> impl Iterator<Item = &crate::resources::core::Container> {
    let sidecars = spec
        .init_containers
        .iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers.iter().chain(sidecars)
}

/// Sidecar injection as requested on a pod or template: Istio's label, then its annotation (true
/// for `y`/`yes`/`true`/`on`, false for anything else, as Istio's injector reads it), then
/// Linkerd's annotation (`enabled`/`ingress` inject, anything else refuses).
pub(super) fn inject(labels: &Labels, annotations: &Labels) -> Option<bool> {
    const ISTIO: &str = "sidecar.istio.io/inject";
    let istio = labels
        .get(ISTIO)
        .or_else(|| annotations.get(ISTIO))
        .map(|v| v.trim().to_ascii_lowercase());
    match istio.as_deref() {
        Some("y" | "yes" | "true" | "on") => return Some(true),
        Some("") | None => {}
        Some(_) => return Some(false),
    }
    match annotations.get("linkerd.io/inject").map(|v| v.trim()) {
        Some("enabled" | "ingress") => Some(true),
        Some("") | None => None,
        Some(_) => Some(false),
    }
}

/// A field under the resource's `status`, which the loader does not decode into the typed spec.
pub(super) fn status<'r>(r: &'r Resource, path: &str) -> Option<&'r Node> {
    let full = if r.origin.base.is_empty() {
        format!("status.{path}")
    } else {
        format!("{}.status.{path}", r.origin.base)
    };
    r.origin.root.lookup(&full)
}

/// The `status` of the condition of `type_` in `status.conditions`, e.g. `Some("True")`.
pub(super) fn condition<'r>(r: &'r Resource, type_: &str) -> Option<&'r str> {
    let Value::Seq(items) = &status(r, "conditions")?.value else {
        return None;
    };
    items
        .iter()
        .find(|c| c.get("type").and_then(Node::as_str) == Some(type_))
        .and_then(|c| c.get("status").and_then(Node::as_str))
}

/// Read the runtime facts of a pod from its `status`. A pod written without status (laptop
/// mode) is ready; one with a Ready condition follows it, as the endpoints controller does.
fn pod_view<'a>(r: &'a Resource, spec: &'a PodSpec, report: &mut Report) -> PodView<'a> {
    let mut ips: Vec<String> = Vec::new();
    let mut add = |ip: &str, path: &str, report: &mut Report| {
        let ip = ip.trim();
        if ip.is_empty() || ips.iter().any(|a| a == ip) {
            return;
        }
        if ip.parse::<IpAddr>().is_ok() {
            ips.push(ip.to_owned());
        } else {
            report.at(
                r,
                path,
                Code::IgnoredSetting,
                format!("{ip:?} is not an IP address; the pod gets no address from it"),
            );
        }
    };
    if let Some(Value::Seq(items)) = status(r, "podIPs").map(|n| &n.value) {
        for (i, item) in items.iter().enumerate() {
            if let Some(ip) = item.get("ip").and_then(Node::as_str) {
                add(ip, &format!("status.podIPs[{i}].ip"), report);
            }
        }
    }
    if let Some(ip) = status(r, "podIP").and_then(Node::as_str) {
        add(ip, "status.podIP", report);
    }
    let phase = status(r, "phase").and_then(Node::as_str);
    let terminating = r.meta.deletion_timestamp.is_some();
    let ready = !terminating && condition(r, "Ready").is_none_or(|s| s == "True");
    PodView {
        r,
        spec,
        ips,
        ready,
        terminal: matches!(phase, Some("Succeeded" | "Failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn injection_requests() {
        let none = Labels::new();
        assert_eq!(inject(&none, &none), None);
        assert_eq!(
            inject(&none, &labels(&[("sidecar.istio.io/inject", "true")])),
            Some(true)
        );
        assert_eq!(
            inject(&none, &labels(&[("sidecar.istio.io/inject", "Yes")])),
            Some(true)
        );
        assert_eq!(
            inject(&none, &labels(&[("sidecar.istio.io/inject", "nope")])),
            Some(false)
        );
        // Istio's label wins over its annotation.
        assert_eq!(
            inject(
                &labels(&[("sidecar.istio.io/inject", "false")]),
                &labels(&[("sidecar.istio.io/inject", "true")])
            ),
            Some(false)
        );
        assert_eq!(
            inject(&none, &labels(&[("linkerd.io/inject", "enabled")])),
            Some(true)
        );
        assert_eq!(
            inject(&none, &labels(&[("linkerd.io/inject", "ingress")])),
            Some(true)
        );
        assert_eq!(
            inject(&none, &labels(&[("linkerd.io/inject", "disabled")])),
            Some(false)
        );
    }

    #[test]
    fn locality_label() {
        assert_eq!(
            locality(&labels(&[("istio-locality", "us-east.us-east-1a")])).as_deref(),
            Some("us-east/us-east-1a")
        );
        assert_eq!(locality(&Labels::new()), None);
        assert_eq!(port_u16(70000), None);
        assert_eq!(port_u16(0), None);
        assert_eq!(port_u16(8080), Some(8080));
    }
}
