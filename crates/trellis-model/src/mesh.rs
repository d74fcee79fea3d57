//! The root of the model: everything one mesh is configured to do.
//!
//! The compiler produces one [`Mesh`] from all resources; the control plane cuts
//! per-proxy views out of it and a standalone proxy consumes it directly. It is plain
//! data, so a new configuration is a new `Mesh` swapped in whole.

use std::collections::BTreeSet;

use crate::gateway::Gateway;
use crate::host::{DEFAULT_DOMAIN, HostResolver, host_match_rank};
use crate::labels::Labels;
use crate::security::{DEFAULT_ROOT_NAMESPACE, MtlsMode, SecurityPolicies};
use crate::service::Service;
use crate::telemetry::{ResolvedTelemetry, TelemetryPolicy, resolve_telemetry};
use crate::visibility::SidecarScope;
use crate::workload::Workload;

/// The whole compiled mesh configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Mesh {
    /// SPIFFE trust domain of workload identities (`cluster.local` by default, so
    /// AuthorizationPolicy principals written for Istio work unchanged).
    pub trust_domain: String,
    /// Cluster DNS domain that short host names expand into.
    pub domain: String,
    /// Namespace whose selector-less policies apply mesh-wide.
    pub root_namespace: String,
    /// Namespaces known to exist, so `reviews.default` can be recognised as a service.
    pub namespaces: BTreeSet<String>,
    /// Services, sorted by host (see [`Mesh::normalize`]), one per host.
    pub services: Vec<Service>,
    /// Workloads, sorted by namespace and name.
    pub workloads: Vec<Workload>,
    /// Gateways, sorted by namespace and name.
    pub gateways: Vec<Gateway>,
    /// mTLS, authorization and JWT policies.
    pub security: SecurityPolicies,
    /// Telemetry policies, oldest first.
    pub telemetry: Vec<TelemetryPolicy>,
    /// Istio Sidecars, oldest first (the order decides which applies; see
    /// [`Mesh::sidecar_for`] and [`Mesh::visible_to`]).
    #[serde(default)]
    pub sidecars: Vec<SidecarScope>,
}

impl Default for Mesh {
    fn default() -> Self {
        Mesh {
            trust_domain: DEFAULT_DOMAIN.to_string(),
            domain: DEFAULT_DOMAIN.to_string(),
            root_namespace: DEFAULT_ROOT_NAMESPACE.to_string(),
            namespaces: BTreeSet::new(),
            services: Vec::new(),
            workloads: Vec::new(),
            gateways: Vec::new(),
            security: SecurityPolicies::default(),
            telemetry: Vec::new(),
            sidecars: Vec::new(),
        }
    }
}

impl Mesh {
    /// Establishes the ordering invariants lookups rely on: services by host, workloads
    /// and gateways by namespace and name. Policy lists keep their order, which encodes
    /// age (telemetry, Sidecars). Compilers call this once after building the mesh.
    pub fn normalize(&mut self) {
        self.services.sort_by(|a, b| a.host.cmp(&b.host));
        self.workloads
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.gateways
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    }

    /// The service with exactly this fully qualified host (binary search: requires
    /// [`Mesh::normalize`]).
    pub fn service(&self, fqdn: &str) -> Option<&Service> {
        self.services
            .binary_search_by(|s| s.host.as_str().cmp(fqdn))
            .ok()
            .and_then(|i| self.services.get(i))
    }

    /// The service `name` in `namespace` (Kubernetes naming rather than host).
    pub fn service_by_name(&self, name: &str, namespace: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.name == name && s.namespace == namespace)
    }

    /// The service a request for `host` goes to: the exact host, else the most specific
    /// wildcard service host (ServiceEntry `*.example.com`) that matches it.
    pub fn service_for_host(&self, host: &str) -> Option<&Service> {
        self.service(host).or_else(|| {
            self.services
                .iter()
                .filter(|s| s.host.starts_with('*'))
                .filter_map(|s| Some((host_match_rank(&s.host, host)?, s)))
                .max_by_key(|(rank, _)| *rank)
                .map(|(_, s)| s)
        })
    }

    /// The service owning virtual IP `address`, for transparently captured connections
    /// whose original destination is a ClusterIP.
    pub fn service_by_address(&self, address: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.addresses.iter().any(|a| a == address))
    }

    /// The workload `name` in `namespace`.
    pub fn workload(&self, namespace: &str, name: &str) -> Option<&Workload> {
        self.workloads
            .iter()
            .find(|w| w.namespace == namespace && w.name == name)
    }

    /// The workload with IP `address`, to identify the peer of a connection for metrics
    /// when it presented no certificate.
    pub fn workload_by_address(&self, address: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.has_address(address))
    }

    /// A resolver for short host names in this mesh.
    pub fn host_resolver(&self) -> HostResolver {
        HostResolver {
            domain: self.domain.clone(),
            namespaces: self.namespaces.clone(),
        }
    }

    /// The inbound mTLS mode of a workload on `port` (see
    /// [`SecurityPolicies::effective_mtls`]), with this mesh's root namespace.
    pub fn mtls_mode(&self, namespace: &str, labels: &Labels, port: Option<u16>) -> MtlsMode {
        self.security
            .effective_mtls(namespace, labels, port, &self.root_namespace)
    }

    /// The telemetry settings of a workload (see [`resolve_telemetry`]).
    pub fn telemetry_for(&self, namespace: &str, labels: &Labels) -> ResolvedTelemetry {
        resolve_telemetry(&self.telemetry, namespace, labels, &self.root_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    fn service(host: &str, name: &str, namespace: &str) -> Service {
        Service {
            host: host.into(),
            name: name.into(),
            namespace: namespace.into(),
            ..Service::default()
        }
    }

    fn mesh() -> Mesh {
        let mut mesh = Mesh {
            services: vec![
                service("reviews.default.svc.cluster.local", "reviews", "default"),
                service("*.wikipedia.org", "*.wikipedia.org", "egress"),
                service("*.en.wikipedia.org", "*.en.wikipedia.org", "egress"),
                Service {
                    addresses: vec!["10.96.0.10".into()],
                    ..service("ratings.default.svc.cluster.local", "ratings", "default")
                },
            ],
            workloads: vec![Workload {
                name: "ratings-1".into(),
                namespace: "default".into(),
                addresses: vec!["10.1.0.7".into()],
                ..Workload::default()
            }],
            namespaces: BTreeSet::from(["default".to_string()]),
            ..Mesh::default()
        };
        mesh.normalize();
        mesh
    }

    #[test]
    fn lookups() {
        let m = mesh();
        let host = |s: Option<&Service>| s.map(|s| s.host.clone());
        assert_eq!(
            host(m.service("reviews.default.svc.cluster.local")).as_deref(),
            Some("reviews.default.svc.cluster.local")
        );
        assert!(m.service("reviews").is_none());
        assert_eq!(
            host(m.service_by_name("ratings", "default")).as_deref(),
            Some("ratings.default.svc.cluster.local")
        );
        assert_eq!(
            host(m.service_for_host("de.wikipedia.org")).as_deref(),
            Some("*.wikipedia.org")
        );
        assert_eq!(
            host(m.service_for_host("www.en.wikipedia.org")).as_deref(),
            Some("*.en.wikipedia.org")
        );
        assert_eq!(
            host(m.service_by_address("10.96.0.10")).as_deref(),
            Some("ratings.default.svc.cluster.local")
        );
        assert_eq!(
            m.workload_by_address("10.1.0.7").map(|w| w.name.as_str()),
            Some("ratings-1")
        );
        assert!(m.workload("default", "ratings-1").is_some());
        let fqdn = m.host_resolver().fqdn("reviews.default", "prod");
        assert_eq!(
            host(m.service(&fqdn)).as_deref(),
            Some("reviews.default.svc.cluster.local")
        );
    }

    #[test]
    fn defaults() {
        let m = Mesh::default();
        assert_eq!(
            (m.trust_domain.as_str(), m.root_namespace.as_str()),
            ("cluster.local", "istio-system")
        );
        assert_eq!(
            m.mtls_mode("default", &Labels::new(), None),
            MtlsMode::Permissive
        );
    }
}
