//! Endpoints, EndpointSlice and ServiceAccount. Their content sits at the top level of the
//! object (next to `metadata`), so these structs hold the body fields only.

use super::{Protocol, check_port_number};
use crate::resources::common::Opaque;
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::net::IpAddr;

/// Endpoints: the addresses behind a Service, grouped in subsets that share ports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoints {
    pub subsets: Vec<EndpointSubset>,
}

/// Addresses that all serve the same ports.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSubset {
    pub addresses: Vec<EndpointAddress>,
    pub not_ready_addresses: Vec<EndpointAddress>,
    pub ports: Vec<EndpointPort>,
}

/// One backend address.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointAddress {
    pub ip: String,
    pub hostname: Option<String>,
    pub node_name: Option<String>,
    /// Usually the Pod, which gives the endpoint its labels and identity.
    pub target_ref: Option<ObjectReference>,
}

/// A port of Endpoints or EndpointSlice. In a slice an unset port means "all ports".
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointPort {
    pub name: Option<String>,
    pub port: Option<i32>,
    pub protocol: Option<Protocol>,
    pub app_protocol: Option<String>,
}

/// Kubernetes ObjectReference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectReference {
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: Option<String>,
    pub api_version: Option<String>,
    pub resource_version: Option<String>,
    pub field_path: Option<String>,
}

/// EndpointSlice (discovery.k8s.io v1 and v1beta1).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointSlice {
    pub address_type: Option<AddressType>,
    pub endpoints: Vec<Endpoint>,
    pub ports: Vec<EndpointPort>,
}

/// One endpoint of a slice.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    /// Interchangeable addresses of one backend; consumers use the first.
    pub addresses: Vec<String>,
    pub conditions: EndpointConditions,
    pub hostname: Option<String>,
    pub target_ref: Option<ObjectReference>,
    pub node_name: Option<String>,
    pub zone: Option<String>,
    pub hints: Option<Opaque>,
    pub deprecated_topology: Option<Opaque>,
    /// v1beta1 name of `deprecatedTopology`.
    pub topology: Option<Opaque>,
}

/// Endpoint readiness. Unset `ready` means ready, as Kubernetes reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointConditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

/// EndpointSlice `addressType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum AddressType {
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
    #[serde(rename = "FQDN")]
    Fqdn,
}

/// ServiceAccount: the identity workloads run as. Trellis only needs its name; the rest is
/// carried so API-server output loads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceAccount {
    pub secrets: Vec<Opaque>,
    pub image_pull_secrets: Vec<Opaque>,
    pub automount_service_account_token: Option<bool>,
}

impl Validate for Endpoints {
    fn validate(&self, cx: &mut Cx) {
        cx.list("subsets", &self.subsets);
    }
}

impl Validate for EndpointSubset {
    fn validate(&self, cx: &mut Cx) {
        cx.list("addresses", &self.addresses);
        cx.list("notReadyAddresses", &self.not_ready_addresses);
        cx.field("ports", |cx| {
            for (i, p) in self.ports.iter().enumerate() {
                cx.index(i, |cx| {
                    // Unlike in a slice, an Endpoints port is required.
                    cx.require("port", p.port.is_some());
                    p.validate(cx);
                });
            }
        });
    }
}

impl Validate for EndpointAddress {
    fn validate(&self, cx: &mut Cx) {
        if self.ip.is_empty() {
            cx.require("ip", false);
        } else if self.ip.parse::<IpAddr>().is_err() {
            cx.error_at("ip", format!("{:?} is not an IP address", self.ip));
        }
    }
}

impl Validate for EndpointPort {
    fn validate(&self, cx: &mut Cx) {
        if let Some(p) = self.port {
            check_port_number(cx, "port", i64::from(p));
        }
    }
}

impl Validate for EndpointSlice {
    fn validate(&self, cx: &mut Cx) {
        cx.require("addressType", self.address_type.is_some());
        cx.field("endpoints", |cx| {
            for (i, e) in self.endpoints.iter().enumerate() {
                cx.index(i, |cx| e.check(cx, self.address_type));
            }
        });
        cx.list("ports", &self.ports);
    }
}

impl Endpoint {
    fn check(&self, cx: &mut Cx, ty: Option<AddressType>) {
        if self.addresses.is_empty() {
            cx.error_at("addresses", "an endpoint needs at least one address");
        }
        cx.field("addresses", |cx| {
            for (i, a) in self.addresses.iter().enumerate() {
                let ok = match ty {
                    Some(AddressType::Ipv4) => a.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
                    Some(AddressType::Ipv6) => a.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()),
                    Some(AddressType::Fqdn) | None => true,
                };
                if !ok {
                    let want = if ty == Some(AddressType::Ipv4) {
                        "IPv4"
                    } else {
                        "IPv6"
                    };
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "{a:?} is not an {want} address, as `addressType` requires"
                        ))
                    });
                }
            }
        });
    }
}

impl Validate for ServiceAccount {
    fn validate(&self, _cx: &mut Cx) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::resources::Spec;
    use crate::resources::core::tests::load_all;

    fn has(diags: &[Diagnostic], line: u32, text: &str) -> bool {
        diags
            .iter()
            .any(|d| d.line == line && d.message.contains(text))
    }

    const ENDPOINTS: &str = r#"apiVersion: v1
kind: Endpoints
metadata:
  name: web
  namespace: shop
subsets:
- addresses:
  - ip: 10.1.0.5
    nodeName: node-1
    targetRef:
      kind: Pod
      namespace: shop
      name: web-5d8f
      uid: 0d6c8c8e
      apiVersion: v1
      resourceVersion: "123"
  - ip: fd00::5
    hostname: web-0
  notReadyAddresses:
  - ip: 10.1.0.6
  ports:
  - name: http
    port: 8080
    protocol: TCP
    appProtocol: http
"#;

    #[test]
    fn endpoints_parse_from_the_top_level() {
        let (specs, diags) = load_all(ENDPOINTS);
        assert!(diags.is_empty(), "{diags:?}");
        let Some(Spec::Endpoints(e)) = specs.into_iter().next() else {
            panic!("no Endpoints")
        };
        let s = &e.subsets[0];
        assert_eq!(s.addresses[0].ip, "10.1.0.5");
        let r = s.addresses[0].target_ref.as_ref().expect("targetRef");
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref()),
            (Some("Pod"), Some("web-5d8f"))
        );
        assert_eq!(r.resource_version.as_deref(), Some("123"));
        assert_eq!(s.addresses[1].hostname.as_deref(), Some("web-0"));
        assert_eq!(s.not_ready_addresses[0].ip, "10.1.0.6");
        assert_eq!(s.ports[0].port, Some(8080));
        assert_eq!(s.ports[0].protocol, Some(Protocol::Tcp));
    }

    #[test]
    fn endpoints_rules() {
        let text = "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\nsubsets:\n- addresses:\n  - ip: 10.1.0.300\n  - hostname: x\n  ports:\n  - name: http\n  - port: 0\nspec: {}\n";
        let (_, diags) = load_all(text);
        assert!(has(&diags, 7, "not an IP address"), "{diags:?}");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`subsets[0].addresses[1].ip`")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`subsets[0].ports[0].port`")),
            "{diags:?}"
        );
        assert!(has(&diags, 11, "out of range"), "{diags:?}");
        assert!(has(&diags, 12, "unknown field `spec`"), "{diags:?}");
    }

    #[test]
    fn endpoint_slice_parses() {
        let text = r#"apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
endpoints:
- addresses: [10.1.0.5]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: web-0
  nodeName: node-1
  zone: us-east-1a
  targetRef: {kind: Pod, name: web-0, namespace: default}
  hints: {forZones: [{name: us-east-1a}]}
  deprecatedTopology: {kubernetes.io/hostname: node-1}
ports:
- name: http
  port: 8080
  protocol: TCP
  appProtocol: kubernetes.io/h2c
- name: all
"#;
        let (specs, diags) = load_all(text);
        assert!(diags.is_empty(), "{diags:?}");
        let Some(Spec::EndpointSlice(s)) = specs.into_iter().next() else {
            panic!("no EndpointSlice")
        };
        assert_eq!(s.address_type, Some(AddressType::Ipv4));
        let e = &s.endpoints[0];
        assert_eq!(e.addresses, vec!["10.1.0.5"]);
        assert_eq!(e.conditions.ready, Some(true));
        assert_eq!(e.conditions.terminating, Some(false));
        assert_eq!(e.zone.as_deref(), Some("us-east-1a"));
        assert!(e.hints.is_some() && e.deprecated_topology.is_some());
        assert_eq!(
            s.ports[0].app_protocol.as_deref(),
            Some("kubernetes.io/h2c")
        );
        assert_eq!(s.ports[1].port, None, "an unset port means all ports");
    }

    #[test]
    fn endpoint_slice_rules() {
        let text = "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata:\n  name: s\naddressType: IPv6\nendpoints:\n- addresses: [10.0.0.1]\n  topology: {zone: a}\n- addresses: []\nports:\n- port: 65536\n";
        let (_, diags) = load_all(text);
        assert!(has(&diags, 7, "not an IPv6 address"), "{diags:?}");
        assert!(has(&diags, 9, "at least one address"), "{diags:?}");
        assert!(has(&diags, 11, "out of range"), "{diags:?}");
        let (_, diags) = load_all(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s\nendpoints: []\n",
        );
        assert!(
            diags.iter().any(|d| d.message.contains("`addressType`")),
            "{diags:?}"
        );
        let (_, diags) = load_all(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s\naddressType: ipv4\n",
        );
        assert!(has(&diags, 5, "unknown variant"), "{diags:?}");
    }

    #[test]
    fn service_account_parses() {
        let text = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\nsecrets:\n- name: web-token\nimagePullSecrets:\n- name: registry\nautomountServiceAccountToken: false\n";
        let (specs, diags) = load_all(text);
        assert!(diags.is_empty(), "{diags:?}");
        let Some(Spec::ServiceAccount(sa)) = specs.into_iter().next() else {
            panic!("no ServiceAccount")
        };
        assert_eq!(sa.secrets.len(), 1);
        assert_eq!(sa.image_pull_secrets.len(), 1);
        assert_eq!(sa.automount_service_account_token, Some(false));
    }
}
