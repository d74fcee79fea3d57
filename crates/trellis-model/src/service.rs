//! Services: named, load-balanced destinations and everything attached to them.
//!
//! A [`Service`] is one host (Kubernetes Service, ServiceEntry host or Gateway API
//! backend) with its ports, endpoints, subsets, backend policy and the routes that apply
//! when a client inside the mesh calls it. The proxy's outbound path is: find the service
//! by host, pick a route, pick a destination, apply the effective policy for that subset
//! and port, pick an endpoint.

use crate::endpoint::Endpoint;
use crate::labels::{Labels, selector_matches};
use crate::origin::SourceRef;
use crate::policy::{BackendPolicy, PortPolicy};
use crate::protocol::Protocol;
use crate::route::{HttpRoute, TcpRoute, TlsRoute};

/// A service reachable through the mesh.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Service {
    /// Fully qualified, lowercase host; the key the model is indexed by. May be a
    /// wildcard for ServiceEntries such as `*.wikipedia.org`.
    pub host: String,
    /// Kubernetes Service name (or the host, for ServiceEntries).
    pub name: String,
    /// Namespace the service is defined in.
    pub namespace: String,
    /// Ports the service is reachable on.
    pub ports: Vec<ServicePort>,
    /// Virtual IPs (ClusterIP, ServiceEntry `addresses`) that clients may connect to
    /// instead of resolving the host; transparent capture maps them back to the service.
    pub addresses: Vec<String>,
    /// Whether the service runs inside the mesh (mTLS, identities) or outside it.
    pub location: ServiceLocation,
    /// How endpoint addresses are found.
    pub resolution: Resolution,
    /// The instances behind the service.
    pub endpoints: Vec<Endpoint>,
    /// Named endpoint groups for version routing (Istio DestinationRule `subsets`).
    pub subsets: Vec<Subset>,
    /// Backend policy for the whole service.
    pub policy: BackendPolicy,
    /// Per-port overrides of `policy`.
    pub port_policies: Vec<PortPolicy>,
    /// HTTP routes for mesh-internal callers, in match order. Empty means every request
    /// goes to the service itself on the port it was sent to.
    pub http_routes: Vec<HttpRoute>,
    /// TCP routes, in match order. Empty means straight to the service.
    pub tcp_routes: Vec<TcpRoute>,
    /// TLS (SNI) routes, in match order. Empty means straight to the service.
    pub tls_routes: Vec<TlsRoute>,
    /// Namespaces whose workloads may see the service (Istio `exportTo`): names, `.` for
    /// the service's own namespace, `*` for all, `~` for none. Empty means all.
    pub export_to: Vec<String>,
    /// Resources that contributed to this service (Service, ServiceEntry,
    /// DestinationRule, VirtualService, ...), for `/config_dump` and diagnostics.
    pub origins: Vec<SourceRef>,
}

/// One port of a service.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServicePort {
    /// Port clients connect to.
    pub number: u16,
    /// Port name; endpoints map target ports by it, and Istio derives the protocol from it.
    pub name: String,
    /// Application protocol (see [`Protocol::from_port_name`]).
    pub protocol: Protocol,
    /// Port the endpoints listen on, if it differs from `number` and is numeric.
    pub target_port: Option<u16>,
}

/// Whether a service is part of the mesh.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceLocation {
    /// Endpoints run sidecars: traffic gets mTLS and identities are verified.
    #[default]
    MeshInternal,
    /// Outside the mesh (ServiceEntry `MESH_EXTERNAL`): no automatic mTLS, and metrics
    /// label it as external.
    MeshExternal,
}

/// How endpoint addresses of a service are determined.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// `endpoints` holds IP addresses (Kubernetes services, static ServiceEntries).
    #[default]
    Static,
    /// Endpoint addresses (or the host itself when there are none) are DNS names the
    /// proxy resolves, balancing over all returned addresses.
    Dns,
    /// Like `Dns`, but only the first returned address is used per connection, for
    /// hosts with many rotating addresses.
    DnsRoundRobin,
    /// No resolution: connect to the address the client dialed (Istio
    /// `resolution: NONE`).
    #[serde(alias = "none")]
    Passthrough,
}

/// A named group of a service's endpoints, selected by labels, e.g. `v2` for
/// `version: v2`, so routes can split traffic between versions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Subset {
    /// Subset name referenced by route destinations.
    pub name: String,
    /// Endpoints carrying all these labels belong to the subset.
    pub labels: Labels,
    /// Overrides of the service policy for this subset.
    pub policy: Option<BackendPolicy>,
    /// Per-port overrides for this subset (Istio subset `trafficPolicy.portLevelSettings`).
    pub port_policies: Vec<PortPolicy>,
}

impl Service {
    /// The service port with number `number`.
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// The port a destination without a port means: the only port, or else the only
    /// HTTP port. `None` when that is ambiguous, which the analyzer reports.
    pub fn only_http_port(&self) -> Option<&ServicePort> {
        if let [only] = self.ports.as_slice() {
            return Some(only);
        }
        let mut http = self.ports.iter().filter(|p| p.protocol.is_http());
        match (http.next(), http.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }

    /// The subset named `name`.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }

    /// The endpoints of `subset` (all endpoints for `None`). A subset name the service
    /// does not define yields no endpoints, so such routes fail with "no healthy
    /// upstream" rather than silently reaching every version. Readiness is left to the
    /// caller, which needs unready endpoints for panic mode.
    pub fn endpoints_for_subset<'a>(
        &'a self,
        subset: Option<&str>,
    ) -> impl Iterator<Item = &'a Endpoint> + 'a {
        // Outer `None`: unknown subset; inner `None`: no subset, everything matches.
        let selector: Option<Option<&'a Labels>> = match subset {
            None => Some(None),
            Some(name) => self.subset(name).map(|s| Some(&s.labels)),
        };
        self.endpoints.iter().filter(move |ep| match selector {
            None => false,
            Some(None) => true,
            Some(Some(labels)) => selector_matches(labels, &ep.labels),
        })
    }

    /// The backend policy for traffic to `subset` on `port`, layered as Istio does:
    /// service policy, then the service's port-level policy, then the subset policy,
    /// then the subset's port-level policy. Each layer replaces the settings it sets
    /// (see [`BackendPolicy::merge_over`]). Note that, as in Istio, a subset policy wins
    /// over the service's port-level policy.
    pub fn effective_policy(&self, subset: Option<&str>, port: Option<u16>) -> BackendPolicy {
        let layer_port = |layers: &[PortPolicy], base: BackendPolicy| match port
            .and_then(|n| layers.iter().find(|pp| pp.port == n))
        {
            Some(pp) => pp.policy.merge_over(&base),
            None => base,
        };
        let mut policy = layer_port(&self.port_policies, self.policy.clone());
        if let Some(subset) = subset.and_then(|name| self.subset(name)) {
            if let Some(sp) = &subset.policy {
                policy = sp.merge_over(&policy);
            }
            policy = layer_port(&subset.port_policies, policy);
        }
        policy
    }

    /// Whether workloads in `namespace` may see this service, per `export_to`.
    pub fn visible_from(&self, namespace: &str) -> bool {
        self.export_to.is_empty()
            || self.export_to.iter().any(|e| match e.as_str() {
                "*" => true,
                "." => namespace == self.namespace,
                "~" => false,
                ns => ns == namespace,
            })
    }

    /// Whether the service is outside the mesh.
    pub fn is_external(&self) -> bool {
        self.location == ServiceLocation::MeshExternal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::LoadBalancer;
    use crate::policy::{ConnectionPool, TlsMode, UpstreamTls};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn endpoint(address: &str, version: &str) -> Endpoint {
        Endpoint {
            address: address.into(),
            labels: labels(&[("app", "reviews"), ("version", version)]),
            ..Endpoint::default()
        }
    }

    fn port(number: u16, name: &str) -> ServicePort {
        let protocol = Protocol::from_port_name(name, None);
        ServicePort {
            number,
            name: name.into(),
            protocol,
            target_port: None,
        }
    }

    fn lb(lb: LoadBalancer) -> BackendPolicy {
        BackendPolicy {
            load_balancer: Some(lb),
            ..BackendPolicy::default()
        }
    }

    fn reviews() -> Service {
        Service {
            host: "reviews.default.svc.cluster.local".into(),
            name: "reviews".into(),
            namespace: "default".into(),
            ports: vec![port(9080, "http"), port(9090, "grpc-admin")],
            endpoints: vec![
                endpoint("10.0.0.1", "v1"),
                endpoint("10.0.0.2", "v2"),
                endpoint("10.0.0.3", "v2"),
            ],
            subsets: vec![
                Subset {
                    name: "v1".into(),
                    labels: labels(&[("version", "v1")]),
                    ..Subset::default()
                },
                Subset {
                    name: "v2".into(),
                    labels: labels(&[("version", "v2")]),
                    policy: Some(lb(LoadBalancer::Random)),
                    port_policies: vec![PortPolicy {
                        port: 9090,
                        policy: BackendPolicy {
                            tls: Some(UpstreamTls {
                                mode: TlsMode::Simple,
                                ..UpstreamTls::default()
                            }),
                            ..BackendPolicy::default()
                        },
                    }],
                },
                Subset {
                    name: "v3".into(),
                    labels: labels(&[("version", "v3")]),
                    ..Subset::default()
                },
            ],
            policy: BackendPolicy {
                connection_pool: ConnectionPool {
                    max_connections: Some(100),
                    ..ConnectionPool::default()
                },
                ..lb(LoadBalancer::RoundRobin)
            },
            port_policies: vec![PortPolicy {
                port: 9080,
                policy: lb(LoadBalancer::LeastRequest),
            }],
            ..Service::default()
        }
    }

    #[test]
    fn endpoints_for_subset() {
        let svc = reviews();
        let addrs = |subset| -> Vec<&str> {
            svc.endpoints_for_subset(subset)
                .map(|e| e.address.as_str())
                .collect()
        };
        assert_eq!(addrs(None), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(addrs(Some("v1")), ["10.0.0.1"]);
        assert_eq!(addrs(Some("v2")), ["10.0.0.2", "10.0.0.3"]);
        assert!(
            addrs(Some("v3")).is_empty(),
            "subset with no matching endpoints"
        );
        assert!(addrs(Some("v9")).is_empty(), "undefined subset");
    }

    #[test]
    fn effective_policy_precedence() {
        let svc = reviews();
        let p = |subset, port| svc.effective_policy(subset, port);
        // Service level only.
        assert_eq!(p(None, None).load_balancer, Some(LoadBalancer::RoundRobin));
        assert_eq!(
            p(None, Some(9090)).load_balancer,
            Some(LoadBalancer::RoundRobin)
        );
        // Service port level over service level.
        assert_eq!(
            p(None, Some(9080)).load_balancer,
            Some(LoadBalancer::LeastRequest)
        );
        // Subset without policy inherits service (+ port) level.
        assert_eq!(
            p(Some("v1"), Some(9080)).load_balancer,
            Some(LoadBalancer::LeastRequest)
        );
        // Subset policy over service port level, as in Istio.
        assert_eq!(
            p(Some("v2"), Some(9080)).load_balancer,
            Some(LoadBalancer::Random)
        );
        // Unset fields inherit from the service.
        assert_eq!(
            p(Some("v2"), None).connection_pool.max_connections,
            Some(100)
        );
        assert_eq!(p(Some("v2"), Some(9080)).tls, None);
        // Subset port level over everything, keeping inherited fields.
        let v2_admin = p(Some("v2"), Some(9090));
        assert_eq!(v2_admin.tls.map(|t| t.mode), Some(TlsMode::Simple));
        assert_eq!(v2_admin.load_balancer, Some(LoadBalancer::Random));
        // Unknown subset: service level.
        assert_eq!(p(Some("v9"), None), svc.policy);
    }

    #[test]
    fn ports() {
        let mut svc = reviews();
        assert_eq!(svc.port(9090).map(|p| p.protocol), Some(Protocol::Grpc));
        assert_eq!(svc.only_http_port(), None, "two HTTP ports are ambiguous");
        svc.ports = vec![port(9080, "http"), port(5432, "tcp-db")];
        assert_eq!(svc.only_http_port().map(|p| p.number), Some(9080));
        svc.ports = vec![port(5432, "tcp-db")];
        assert_eq!(svc.only_http_port().map(|p| p.number), Some(5432));
    }

    #[test]
    fn export_to() {
        let mut svc = reviews();
        assert!(svc.visible_from("prod"));
        svc.export_to = vec![".".into()];
        assert!(svc.visible_from("default") && !svc.visible_from("prod"));
        svc.export_to = vec!["prod".into()];
        assert!(svc.visible_from("prod") && !svc.visible_from("default"));
        svc.export_to = vec!["~".into()];
        assert!(!svc.visible_from("default"));
    }
}
