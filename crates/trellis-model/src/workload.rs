//! Workloads: the running instances (pods, VMs, local processes) the mesh knows.
//!
//! Endpoints say where a service can be reached; workloads say who is calling and who is
//! answering. The proxy uses them to identify itself (SPIFFE identity, labels that select
//! policies) and to label metrics for the peer it talks to.

use crate::host::spiffe_id;
use crate::labels::{Labels, selector_matches};

/// What kind of thing runs a workload.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// A Kubernetes pod.
    #[default]
    Pod,
    /// An Istio WorkloadEntry (VM or bare-metal instance).
    WorkloadEntry,
    /// A Deployment, when pods are aggregated (e.g. for the topology view).
    Deployment,
    /// A StatefulSet, likewise.
    StatefulSet,
    /// A process on this machine, in laptop mode.
    Local,
}

/// A running instance that sends or receives mesh traffic.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Workload {
    /// Name (pod name, WorkloadEntry name, process name).
    pub name: String,
    /// Namespace; with the service account it forms the identity.
    pub namespace: String,
    /// What runs it.
    pub kind: WorkloadKind,
    /// Service account; `default` when unset, as in Kubernetes.
    pub service_account: Option<String>,
    /// Labels; policies, subsets and gateways select on them.
    pub labels: Labels,
    /// IP addresses, used to recognise the peer of an inbound connection.
    pub addresses: Vec<String>,
    /// Ports the workload listens on.
    pub ports: Vec<u16>,
    /// `region/zone/subzone`, so outbound traffic prefers nearby endpoints.
    pub locality: Option<String>,
    /// Network the workload is on.
    pub network: Option<String>,
    /// Sidecar injection requested (`true`) or refused (`false`) by the
    /// `sidecar.istio.io/inject` label/annotation; `None` follows the namespace setting.
    pub inject: Option<bool>,
}

impl Workload {
    /// The service account in effect.
    pub fn service_account(&self) -> &str {
        self.service_account.as_deref().unwrap_or("default")
    }

    /// The SPIFFE ID this workload's certificate carries and peers authorize:
    /// `spiffe://<trust_domain>/ns/<namespace>/sa/<service account>`.
    pub fn identity(&self, trust_domain: &str) -> String {
        spiffe_id(trust_domain, &self.namespace, self.service_account())
    }

    /// Whether `selector` selects this workload.
    pub fn is_selected_by(&self, selector: &Labels) -> bool {
        selector_matches(selector, &self.labels)
    }

    /// The logical service this workload belongs to, as Istio derives it for telemetry:
    /// `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`, else
    /// the workload name.
    pub fn canonical_name(&self) -> &str {
        self.first_label(&[
            "service.istio.io/canonical-name",
            "app.kubernetes.io/name",
            "app",
        ])
        .unwrap_or(&self.name)
    }

    /// The version of that service, as Istio derives it: `service.istio.io/canonical-revision`,
    /// else `app.kubernetes.io/version`, else `version`, else `latest`.
    pub fn canonical_revision(&self) -> &str {
        self.first_label(&[
            "service.istio.io/canonical-revision",
            "app.kubernetes.io/version",
            "version",
        ])
        .unwrap_or("latest")
    }

    /// Whether `address` is one of this workload's addresses.
    pub fn has_address(&self, address: &str) -> bool {
        self.addresses.iter().any(|a| a == address)
    }

    fn first_label(&self, keys: &[&str]) -> Option<&str> {
        keys.iter()
            .find_map(|k| self.labels.get(*k))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_defaults_service_account() {
        let mut w = Workload {
            name: "productpage-v1-abc".into(),
            namespace: "bookinfo".into(),
            ..Workload::default()
        };
        assert_eq!(
            w.identity("cluster.local"),
            "spiffe://cluster.local/ns/bookinfo/sa/default"
        );
        w.service_account = Some("productpage".into());
        assert_eq!(
            w.identity("example.org"),
            "spiffe://example.org/ns/bookinfo/sa/productpage"
        );
    }

    #[test]
    fn canonical_labels() {
        let mut w = Workload {
            name: "reviews-v2-xyz".into(),
            ..Workload::default()
        };
        assert_eq!(
            (w.canonical_name(), w.canonical_revision()),
            ("reviews-v2-xyz", "latest")
        );
        w.labels.insert("app".into(), "reviews".into());
        w.labels.insert("version".into(), "v2".into());
        assert_eq!(
            (w.canonical_name(), w.canonical_revision()),
            ("reviews", "v2")
        );
        w.labels.insert(
            "service.istio.io/canonical-name".into(),
            "reviews-svc".into(),
        );
        assert_eq!(w.canonical_name(), "reviews-svc");
    }
}
