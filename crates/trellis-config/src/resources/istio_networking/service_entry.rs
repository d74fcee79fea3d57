//! Istio `ServiceEntry`: adds a service (external API, VM workloads, another mesh's hosts) to the
//! mesh's registry. `WorkloadEntry` and `WorkloadGroup` (non-Kubernetes workloads) are in
//! [`workload`].

mod workload;

pub use workload::*;

use super::NetworkingWorkloadSelector;
use super::gateway::PortProtocol;
use super::gateway::names::{
    check_labels, check_partial_wildcard, check_port, check_port_name, check_protocol, warn,
};
use crate::resources::names::{
    Wording, check_fqdn, check_ip_or_cidr, check_wildcard_domain, is_dns1123_label_any_case, is_ip,
};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Istio ServiceEntry spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEntry {
    pub hosts: Vec<String>,
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub location: ServiceEntryLocation,
    pub resolution: ServiceEntryResolution,
    pub endpoints: Vec<WorkloadEntry>,
    pub workload_selector: Option<NetworkingWorkloadSelector>,
    pub export_to: Vec<String>,
    pub subject_alt_names: Vec<String>,
}

/// A port of a ServiceEntry. `protocol` unset means "detect".
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    pub number: u32,
    pub protocol: Option<String>,
    pub name: String,
    pub target_port: Option<u32>,
}

impl ServicePort {
    /// The parsed protocol; `None` when unset (detected) or unknown.
    pub fn protocol(&self) -> Option<PortProtocol> {
        self.protocol.as_deref().and_then(PortProtocol::parse)
    }
}

/// Whether the service's workloads are part of the mesh (mTLS, telemetry on both ends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryLocation {
    #[default]
    MeshExternal,
    MeshInternal,
}

/// How the proxy finds the service's endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceEntryResolution {
    /// Forward to the connection's original destination address.
    #[default]
    None,
    /// Use the `endpoints` (or selected workloads) as given.
    Static,
    /// Resolve hosts (or endpoint addresses) by DNS; connect to every address.
    Dns,
    /// Resolve by DNS; connect to the first address only.
    DnsRoundRobin,
    /// Resolve the request's own host at request time (wildcard hosts).
    DynamicDns,
}

impl ServiceEntryResolution {
    fn as_str(self) -> &'static str {
        match self {
            ServiceEntryResolution::None => "NONE",
            ServiceEntryResolution::Static => "STATIC",
            ServiceEntryResolution::Dns => "DNS",
            ServiceEntryResolution::DnsRoundRobin => "DNS_ROUND_ROBIN",
            ServiceEntryResolution::DynamicDns => "DYNAMIC_DNS",
        }
    }
}

impl Validate for ServiceEntry {
    fn validate(&self, cx: &mut Cx) {
        use ServiceEntryResolution as R;
        if let Some(sel) = &self.workload_selector {
            cx.field("workloadSelector", |cx| {
                sel.validate_as("service entry", cx)
            });
            if !self.endpoints.is_empty() {
                cx.error("only one of workloadSelector or endpoints may be set");
            }
        }
        self.validate_hosts(cx);
        let mut cidr = false;
        cx.field("addresses", |cx| {
            for (i, a) in self.addresses.iter().enumerate() {
                cidr |= a.contains('/');
                if let Err(e) = check_ip_or_cidr(a) {
                    cx.index(i, |cx| cx.error(e.message(Wording::Explain)));
                }
            }
        });
        if cidr && !matches!(self.resolution, R::None | R::Static) {
            cx.error_at(
                "resolution",
                "CIDR addresses are allowed only with resolution NONE or STATIC",
            );
        }
        let port_names = self.validate_ports(cx);
        match self.resolution {
            R::None => {
                if !self.endpoints.is_empty() {
                    cx.error_at(
                        "endpoints",
                        "resolution NONE forwards to the original destination; remove `endpoints`",
                    );
                }
                if self.workload_selector.is_some() {
                    warn(
                        cx,
                        "workloadSelector",
                        "workloadSelector has no effect with resolution NONE",
                    );
                }
            }
            R::Static => cx.field("endpoints", |cx| {
                for (i, e) in self.endpoints.iter().enumerate() {
                    cx.index(i, |cx| e.validate_endpoint(cx, Some(&port_names), false));
                }
            }),
            R::Dns | R::DnsRoundRobin => self.validate_dns(cx, &port_names),
            R::DynamicDns => self.validate_dynamic_dns(cx),
        }
        // Plain TCP has nothing (Host header, SNI) to tell several hosts apart on one port.
        if self.resolution != R::None && self.hosts.len() > 1 {
            let opaque = self
                .ports
                .iter()
                .position(|p| !p.protocol().is_some_and(|p| p.is_http() || p.is_tls()));
            if let Some(i) = opaque {
                cx.field("ports", |cx| {
                    cx.index(i, |cx| {
                        cx.error("several hosts share a non-HTTP, non-TLS port; use one host per ServiceEntry or protocol HTTP/TLS")
                    })
                });
            }
        }
        validate_export_to(cx, &self.export_to);
    }
}

impl ServiceEntry {
    fn validate_hosts(&self, cx: &mut Cx) {
        if self.hosts.is_empty() {
            cx.error_at(
                "hosts",
                "a ServiceEntry needs at least one host, e.g. \"api.example.com\"",
            );
        }
        cx.field("hosts", |cx| {
            for (i, h) in self.hosts.iter().enumerate() {
                cx.index(i, |cx| {
                    if h == "*" {
                        cx.error("host \"*\" is not allowed in a ServiceEntry; name the hosts, e.g. \"*.example.com\"");
                        return;
                    }
                    if let Err(e) = check_wildcard_domain(h) {
                        cx.error(e.message(Wording::Explain));
                    }
                    if self.resolution != ServiceEntryResolution::DynamicDns
                        && let Err(e) = check_partial_wildcard(h)
                    {
                        warn(cx, "", e);
                    }
                });
            }
        });
    }

    /// Port checks; returns the port names, which endpoint `ports` must refer to.
    fn validate_ports(&self, cx: &mut Cx) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let mut numbers: Vec<u32> = Vec::new();
        cx.field("ports", |cx| {
            for (i, p) in self.ports.iter().enumerate() {
                cx.index(i, |cx| {
                    if !p.name.is_empty() && names.contains(&p.name.as_str()) {
                        cx.error_at(
                            "name",
                            format!("port name {:?} is already used by another port", p.name),
                        );
                    }
                    if numbers.contains(&p.number) {
                        cx.error_at("number", format!("port {} is already defined", p.number));
                    }
                    names.push(&p.name);
                    numbers.push(p.number);
                    check_port(cx, "number", p.number);
                    if p.name.is_empty() {
                        cx.require("name", false);
                    } else {
                        check_port_name(cx, "name", &p.name);
                    }
                    if let Some(proto) = p.protocol.as_deref().filter(|s| !s.is_empty()) {
                        check_protocol(cx, "protocol", proto);
                    }
                    if let Some(t) = p.target_port.filter(|t| *t != 0) {
                        check_port(cx, "targetPort", t);
                    }
                })
            }
        });
        names
    }

    fn validate_dns(&self, cx: &mut Cx, port_names: &[&str]) {
        let mode = self.resolution.as_str();
        if self.endpoints.is_empty() {
            // The hosts themselves are resolved, so they must be real names.
            if let Some((i, e)) = self.hosts.iter().enumerate().find_map(|(i, h)| {
                check_fqdn(h)
                    .err()
                    .map(|e| (i, e.message(Wording::Explain)))
            }) {
                cx.field("hosts", |cx| {
                    cx.index(i, |cx| cx.error(format!("without endpoints, resolution {mode} resolves the hosts, so they must be fully qualified names: {e}")))
                });
            }
        }
        if self.resolution == ServiceEntryResolution::DnsRoundRobin && self.endpoints.len() > 1 {
            cx.error_at(
                "endpoints",
                "resolution DNS_ROUND_ROBIN allows at most one endpoint",
            );
        }
        cx.field("endpoints", |cx| {
            for (i, e) in self.endpoints.iter().enumerate() {
                cx.index(i, |cx| {
                    if e.address.is_empty() {
                        cx.error(format!(
                            "missing required field `{}.address` (resolution {mode})",
                            cx.path()
                        ));
                    } else if !is_ip(&e.address) && check_fqdn(&e.address).is_err() {
                        let msg = format!(
                            "endpoint address {:?} is not a valid hostname or IP address",
                            e.address
                        );
                        cx.error_at("address", msg);
                    }
                    check_labels(cx, "labels", &e.labels);
                    e.check_ports(cx, Some(port_names));
                })
            }
        });
        let tcp = self.ports.iter().any(|p| {
            PortProtocol::parse(p.protocol.as_deref().unwrap_or(""))
                .is_some_and(PortProtocol::is_tcp)
        });
        if !self.addresses.is_empty() && tcp && self.hosts.len() > 1 {
            warn(
                cx,
                "hosts",
                "a ServiceEntry with addresses and a TCP port should have only one host",
            );
        }
    }

    fn validate_dynamic_dns(&self, cx: &mut Cx) {
        cx.field("hosts", |cx| {
            for (i, h) in self.hosts.iter().enumerate() {
                if !h.starts_with('*') {
                    cx.index(i, |cx| cx.error(format!("host {h:?} must be a wildcard (e.g. \"*.example.com\") for resolution DYNAMIC_DNS")));
                }
            }
        });
        if !self.addresses.is_empty() {
            cx.error_at("addresses", "addresses cannot be set with resolution DYNAMIC_DNS (the destination comes from the request's host)");
        }
        if !self.endpoints.is_empty() {
            cx.error_at("endpoints", "endpoints cannot be set with resolution DYNAMIC_DNS (the destination comes from the request's host)");
        }
        cx.field("ports", |cx| {
            for (i, p) in self.ports.iter().enumerate() {
                let ok = matches!(p.protocol(), Some(PortProtocol::Http | PortProtocol::Tls | PortProtocol::Grpc | PortProtocol::Http2));
                if !ok {
                    cx.index(i, |cx| cx.error_at("protocol", "resolution DYNAMIC_DNS supports only protocols HTTP, TLS, GRPC and HTTP2"));
                }
            }
        });
    }
}

/// `exportTo`: `.` (this namespace), `*` (everyone), `~` (no one) or namespace names, without
/// contradictions.
fn validate_export_to(cx: &mut Cx, export_to: &[String]) {
    let mut seen: Vec<&str> = Vec::new();
    cx.field("exportTo", |cx| {
        for (i, e) in export_to.iter().enumerate() {
            cx.index(i, |cx| {
                if seen.contains(&e.as_str()) {
                    cx.error(format!("duplicate exportTo entry {e:?}"));
                } else if !matches!(e.as_str(), "." | "*" | "~") && !is_dns1123_label_any_case(e) {
                    cx.error(format!(
                        "exportTo entry {e:?} must be \".\", \"*\", \"~\" or a namespace name"
                    ));
                }
                seen.push(e);
            });
        }
        if export_to.len() > 1 {
            if seen.contains(&"*") {
                cx.error("exportTo \"*\" (public) cannot be combined with other entries");
            }
            if seen.contains(&"~") {
                cx.error("exportTo \"~\" (no one) cannot be combined with other entries");
            }
        }
    });
}

#[cfg(test)]
mod tests;
