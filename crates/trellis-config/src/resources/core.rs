//! Kubernetes core, apps and discovery kinds Trellis reads for discovery, labels, identities and
//! injection: Namespace, Service, Endpoints, EndpointSlice, ServiceAccount, Pod, Deployment and
//! StatefulSet.
//!
//! Every field of the Kubernetes API is accepted (so `kubectl get -o yaml` output loads without
//! unknown-field noise); what Trellis does not interpret is kept as [`Opaque`]. `Validate` applies
//! the API server's rules that matter for the mesh: port ranges, port names, selectors.

mod endpoints;
mod pod;
mod probe;
mod workload;

pub use endpoints::{
    AddressType, Endpoint, EndpointAddress, EndpointConditions, EndpointPort, EndpointSlice,
    EndpointSubset, Endpoints, ObjectReference, ServiceAccount,
};
pub use pod::{
    Container, ContainerPort, DnsPolicy, EnvVar, Pod, PodSpec, PullPolicy, RestartPolicy,
};
pub use probe::{
    ExecAction, GrpcAction, HttpGetAction, HttpHeader, Probe, TcpSocketAction, UriScheme,
};
pub use workload::{Deployment, PodManagementPolicy, PodTemplateSpec, StatefulSet};

use crate::resources::common::{IntOrString, Labels, Opaque};
use crate::resources::names::{is_dns1123_label, is_port_name};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Namespace spec. Only finalizers live here; labels (e.g. `istio-injection`) are in metadata.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Namespace {
    pub finalizers: Vec<String>,
}

/// Service spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    #[serde(rename = "type")]
    pub type_: Option<ServiceType>,
    /// Pods with these labels back the service; empty means endpoints are managed by hand.
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
    /// `None` makes the service headless.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Vec<String>,
    pub external_name: Option<String>,
    #[serde(rename = "externalIPs")]
    pub external_ips: Vec<String>,
    pub session_affinity: Option<SessionAffinity>,
    pub session_affinity_config: Option<Opaque>,
    pub ip_families: Vec<IpFamily>,
    pub ip_family_policy: Option<IpFamilyPolicy>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    pub load_balancer_source_ranges: Vec<String>,
    pub load_balancer_class: Option<String>,
    pub external_traffic_policy: Option<TrafficPolicy>,
    pub internal_traffic_policy: Option<TrafficPolicy>,
    pub publish_not_ready_addresses: Option<bool>,
    pub health_check_node_port: Option<i32>,
    pub allocate_load_balancer_node_ports: Option<bool>,
    /// `PreferClose`, `PreferSameZone`, `PreferSameNode`; kept as text because the set grows.
    pub traffic_distribution: Option<String>,
}

/// One service port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    pub name: Option<String>,
    pub protocol: Option<Protocol>,
    pub port: i32,
    /// Defaults to `port`.
    pub target_port: Option<IntOrString>,
    pub node_port: Option<i32>,
    /// e.g. `http`, `kubernetes.io/h2c`; Istio and Trellis use it to pick the L7 protocol.
    pub app_protocol: Option<String>,
}

/// Service `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
    ExternalName,
}

/// L4 protocol of a port; Kubernetes defaults to TCP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

/// Service `sessionAffinity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum SessionAffinity {
    #[default]
    None,
    #[serde(rename = "ClientIP")]
    ClientIp,
}

/// `ipFamilies` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum IpFamily {
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

/// Service `ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum IpFamilyPolicy {
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// Kubernetes `IsValidPortNum`: 1 to 65535.
pub(crate) fn check_port_number(cx: &mut Cx, field: &str, port: i64) {
    if !(1..=65535).contains(&port) {
        cx.error_at(
            field,
            format!("port {port} is out of range; expected 1 to 65535"),
        );
    }
}

/// A port given by number or by container port name (targetPort, probe ports, Linkerd Server).
pub(crate) fn check_port_ref(cx: &mut Cx, field: &str, port: &IntOrString) {
    match port {
        IntOrString::Int(n) => check_port_number(cx, field, *n),
        IntOrString::String(s) if !is_port_name(s) => cx.error_at(
            field,
            format!(
                "{s:?} is not a valid port name: up to 15 lowercase letters, digits and '-', with at least one letter"
            ),
        ),
        IntOrString::String(_) => {}
    }
}

impl Service {
    /// Headless services (`clusterIP: None`) resolve to pod addresses instead of a virtual IP.
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.as_deref() == Some("None")
    }
}

impl Validate for Namespace {
    fn validate(&self, _cx: &mut Cx) {}
}

impl Validate for Service {
    fn validate(&self, cx: &mut Cx) {
        let ty = self.type_.unwrap_or_default();
        if ty == ServiceType::ExternalName {
            cx.require(
                "externalName",
                self.external_name.as_deref().is_some_and(|n| !n.is_empty()),
            );
        } else if self.ports.is_empty() && !self.is_headless() {
            cx.error_at("ports", "a Service needs at least one port (only headless and ExternalName services may have none)");
        }
        let many = self.ports.len() > 1;
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        cx.field("ports", |cx| {
            for (i, p) in self.ports.iter().enumerate() {
                cx.index(i, |cx| {
                    p.validate(cx);
                    match p.name.as_deref().filter(|n| !n.is_empty()) {
                        None if many => cx.error_at(
                            "name",
                            "every port needs a `name` when a Service has more than one port",
                        ),
                        Some(n) if !names.insert(n) => {
                            cx.error_at("name", format!("duplicate port name {n:?}"))
                        }
                        _ => {}
                    }
                    if !seen.insert((p.port, p.protocol.unwrap_or_default())) {
                        cx.error_at(
                            "port",
                            format!("duplicate port {} with the same protocol", p.port),
                        );
                    }
                    if p.node_port.is_some_and(|n| n != 0)
                        && !matches!(ty, ServiceType::NodePort | ServiceType::LoadBalancer)
                    {
                        cx.error_at(
                            "nodePort",
                            "`nodePort` may only be set when `type` is NodePort or LoadBalancer",
                        );
                    }
                });
            }
        });
    }
}

impl Validate for ServicePort {
    fn validate(&self, cx: &mut Cx) {
        check_port_number(cx, "port", i64::from(self.port));
        if let Some(n) = self.name.as_deref().filter(|n| !n.is_empty())
            && !is_dns1123_label(n)
        {
            cx.error_at("name", format!("{n:?} is not a valid port name: lowercase letters, digits and '-' (a DNS label)"));
        }
        match &self.target_port {
            // 0 means "same as port", as the API server defaults it.
            Some(IntOrString::Int(0)) | None => {}
            Some(t) => check_port_ref(cx, "targetPort", t),
        }
        if let Some(n) = self.node_port
            && !(0..=65535).contains(&n)
        {
            cx.error_at(
                "nodePort",
                format!("nodePort {n} is out of range; expected 1 to 65535"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    pub(super) fn load_all(text: &str) -> (Vec<Spec>, Vec<Diagnostic>) {
        let loaded = load_str("test.yaml", text, &LoadOptions::default());
        (
            loaded.resources.into_iter().map(|r| r.spec).collect(),
            loaded.diagnostics,
        )
    }

    fn service(spec: &str) -> (Option<Service>, Vec<Diagnostic>) {
        let (specs, diags) = load_all(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n{spec}"
        ));
        let s = specs.into_iter().find_map(|s| match s {
            Spec::Service(s) => Some(*s),
            _ => None,
        });
        (s, diags)
    }

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    #[test]
    fn namespace_loads() {
        let (specs, diags) = load_all(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    istio-injection: enabled\nspec:\n  finalizers: [kubernetes]\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert!(matches!(&specs[0], Spec::Namespace(n) if n.finalizers == ["kubernetes"]));
    }

    #[test]
    fn full_service_parses() {
        let (s, diags) = service(
            r#"  type: LoadBalancer
  selector:
    app: web
  ports:
  - name: http
    protocol: TCP
    port: 80
    targetPort: http-web
    nodePort: 30080
    appProtocol: http
  - name: grpc
    port: 9090
    targetPort: 19090
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  externalIPs: [192.0.2.1]
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  loadBalancerIP: 192.0.2.2
  loadBalancerSourceRanges: [10.0.0.0/8]
  loadBalancerClass: example.com/lb
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  publishNotReadyAddresses: false
  healthCheckNodePort: 31000
  allocateLoadBalancerNodePorts: true
  trafficDistribution: PreferClose
"#,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let s = s.expect("loaded");
        assert_eq!(s.type_, Some(ServiceType::LoadBalancer));
        assert_eq!(s.selector.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            s.ports[0].target_port,
            Some(IntOrString::String("http-web".into()))
        );
        assert_eq!(s.ports[0].app_protocol.as_deref(), Some("http"));
        assert_eq!(s.ports[1].protocol, None);
        assert_eq!(s.ports[1].target_port, Some(IntOrString::Int(19090)));
        assert_eq!(s.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert_eq!(s.session_affinity, Some(SessionAffinity::ClientIp));
        assert_eq!(s.ip_families, vec![IpFamily::Ipv4]);
        assert_eq!(s.external_traffic_policy, Some(TrafficPolicy::Local));
        assert_eq!(s.traffic_distribution.as_deref(), Some("PreferClose"));
        assert!(!s.is_headless());
    }

    #[test]
    fn service_port_rules() {
        let (_, diags) =
            service("  ports:\n  - port: 0\n  - name: http\n    port: 80\n    targetPort: 70000\n");
        assert!(has(&diags, 7, "out of range"), "{diags:?}");
        assert!(has(&diags, 7, "every port needs a `name`"), "{diags:?}");
        assert!(has(&diags, 10, "out of range"), "{diags:?}");
        let (_, diags) = service(
            "  ports:\n  - {name: http, port: 80}\n  - {name: http, port: 80, targetPort: Web_Port}\n",
        );
        assert!(has(&diags, 8, "duplicate port name"), "{diags:?}");
        assert!(has(&diags, 8, "duplicate port 80"), "{diags:?}");
        assert!(has(&diags, 8, "not a valid port name"), "{diags:?}");
        let (_, diags) = service(
            "  ports:\n  - {port: 80, protocol: TCP}\n  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}\n",
        );
        assert!(has(&diags, 7, "every port needs"), "{diags:?}");
        assert!(has(&diags, 8, "`nodePort` may only be set"), "{diags:?}");
        let (_, diags) = service("  ports:\n  - port: 80\n    protocol: tcp\n");
        assert!(has(&diags, 8, "unknown variant"), "{diags:?}");
        let (_, diags) = service("  ports:\n  - port: 80\n");
        assert!(diags.is_empty(), "a single port needs no name: {diags:?}");
    }

    #[test]
    fn service_shapes() {
        let (_, diags) = service("  selector: {app: web}\n");
        assert!(has(&diags, 6, "at least one port"), "{diags:?}");
        let (s, diags) = service("  clusterIP: None\n  selector: {app: web}\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert!(s.is_some_and(|s| s.is_headless()));
        let (_, diags) = service("  type: ExternalName\n");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.externalName`")),
            "{diags:?}"
        );
        let (_, diags) = service("  type: ExternalName\n  externalName: db.example.com\n");
        assert!(diags.is_empty(), "{diags:?}");
    }
}
