//! Endpoints: the concrete addresses behind a service.
//!
//! Kubernetes Endpoints/EndpointSlices, ServiceEntry `endpoints`, WorkloadEntries and
//! local processes all become [`Endpoint`]s. Each carries what the proxy needs to pick it
//! (labels for subsets, locality, weight, readiness) and to talk to it securely (the
//! service account its certificate must name).

use std::collections::BTreeMap;

use crate::host::spiffe_id;
use crate::labels::Labels;
use crate::service::ServicePort;

/// One backend instance of a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// IP address, or a host name resolved by the proxy for DNS-resolved services.
    pub address: String,
    /// Target port per service port name, for workloads whose ports differ from the
    /// service's `targetPort` (WorkloadEntry `ports`, named target ports). Empty means the
    /// service port's target port applies.
    pub ports: BTreeMap<String, u16>,
    /// A single port this endpoint listens on for every service port (e.g. a local
    /// process); used when `ports` has no entry for the service port.
    pub port: Option<u16>,
    /// Labels of the backing workload; subsets select on them.
    pub labels: Labels,
    /// `region/zone/subzone`, for locality-aware routing.
    pub locality: Option<String>,
    /// Relative share of traffic among the endpoints of one locality (default 1).
    pub weight: u32,
    /// Service account of the workload; its SPIFFE identity is what mTLS verifies. Unset
    /// for endpoints outside the mesh.
    pub service_account: Option<String>,
    /// Name of the workload (pod, WorkloadEntry, ...), for metrics labels and the
    /// topology view.
    pub workload: Option<String>,
    /// Namespace of the workload.
    pub namespace: String,
    /// Network the endpoint is on; endpoints on other networks are reached through their
    /// network's east-west gateway.
    pub network: Option<String>,
    /// Whether the endpoint passes its readiness checks. Unready endpoints get no traffic
    /// unless every endpoint is unready (panic mode), so a bad probe does not take a
    /// service down entirely.
    pub ready: bool,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint {
            address: String::new(),
            ports: BTreeMap::new(),
            port: None,
            labels: Labels::new(),
            locality: None,
            weight: 1,
            service_account: None,
            workload: None,
            namespace: String::new(),
            network: None,
            ready: true,
        }
    }
}

impl Endpoint {
    /// The port to connect to for `service_port`: this endpoint's port for that port
    /// name, else its single `port`, else the service's target port, else the service
    /// port number itself (Kubernetes' default when `targetPort` is omitted).
    pub fn target_port(&self, service_port: &ServicePort) -> u16 {
        self.ports
            .get(&service_port.name)
            .copied()
            .or(self.port)
            .or(service_port.target_port)
            .unwrap_or(service_port.number)
    }

    /// The SPIFFE identity the endpoint's certificate must carry, if it is in the mesh.
    pub fn identity(&self, trust_domain: &str) -> Option<String> {
        self.service_account
            .as_deref()
            .map(|sa| spiffe_id(trust_domain, &self.namespace, sa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    #[test]
    fn target_port_precedence() {
        let sp = ServicePort {
            number: 80,
            name: "http".into(),
            protocol: Protocol::Http,
            target_port: Some(8080),
        };
        let mut ep = Endpoint::default();
        assert_eq!(ep.target_port(&sp), 8080);
        ep.port = Some(9000);
        assert_eq!(ep.target_port(&sp), 9000);
        ep.ports.insert("http".into(), 9090);
        assert_eq!(ep.target_port(&sp), 9090);
        let bare = ServicePort {
            target_port: None,
            ..sp
        };
        assert_eq!(Endpoint::default().target_port(&bare), 80);
    }

    #[test]
    fn identity() {
        let ep = Endpoint {
            namespace: "default".into(),
            service_account: Some("reviews".into()),
            ..Endpoint::default()
        };
        assert_eq!(
            ep.identity("cluster.local").as_deref(),
            Some("spiffe://cluster.local/ns/default/sa/reviews")
        );
        assert_eq!(Endpoint::default().identity("cluster.local"), None);
        assert!(Endpoint::default().ready);
    }
}
