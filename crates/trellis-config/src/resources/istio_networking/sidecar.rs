//! Istio `Sidecar`: narrows what a workload's proxy listens on (ingress) and which services it
//! can reach (egress), and sets the outbound traffic policy.

mod egress;

pub use egress::*;

use super::gateway::names::{
    UNIX_PREFIX, check_port, check_port_name, check_protocol, check_unix_address, warn,
};
use super::{ConnectionPoolSettings, Destination, PortProtocol, ServerTlsMode, ServerTlsSettings};
use crate::resources::common::Labels;
use crate::resources::names::{check_fqdn, check_wildcard_domain, is_ip};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// Istio Sidecar spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sidecar {
    pub workload_selector: Option<NetworkingWorkloadSelector>,
    pub ingress: Vec<IstioIngressListener>,
    pub egress: Vec<IstioEgressListener>,
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// The `networking.istio.io` workload selector used by Sidecar and ServiceEntry: a `labels` map
/// (security and telemetry kinds use `matchLabels`, see `common::WorkloadSelector`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkingWorkloadSelector {
    pub labels: Labels,
}

impl NetworkingWorkloadSelector {
    /// Does it select a workload with `labels`? No labels selects every workload.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Istio's `ValidateAlphaWorkloadSelector`; `what` names the resource in the warning.
    pub(crate) fn validate_as(&self, what: &str, cx: &mut Cx) {
        cx.field("labels", |cx| {
            for (k, v) in &self.labels {
                if k.is_empty() {
                    cx.error(format!(
                        "empty label key is not supported in a selector (value {v:?})"
                    ));
                } else if k.contains('*') || v.contains('*') {
                    cx.error_at(
                        k,
                        format!("wildcards are not supported in selectors: {k}={v}"),
                    );
                }
            }
        });
        if self.labels.is_empty() {
            warn(
                cx,
                "",
                format!(
                    "workload selector without labels: the {what} applies to every workload in the namespace"
                ),
            );
        }
    }
}

/// A listener for traffic arriving at the workload.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioIngressListener {
    pub port: Option<SidecarPort>,
    pub bind: Option<String>,
    pub capture_mode: CaptureMode,
    /// `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>` or `unix://<path>`.
    pub default_endpoint: Option<String>,
    pub tls: Option<ServerTlsSettings>,
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// A sidecar listener port; number 0 with a `unix://` bind means a unix socket listener.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SidecarPort {
    pub number: u32,
    pub protocol: Option<String>,
    pub name: Option<String>,
    /// Deprecated upstream and ignored on sidecars.
    pub target_port: Option<u32>,
}

impl SidecarPort {
    /// The parsed protocol; `None` when unset (detected) or unknown.
    pub fn protocol(&self) -> Option<PortProtocol> {
        self.protocol.as_deref().and_then(PortProtocol::parse)
    }

    fn validate_common(&self, cx: &mut Cx) {
        if let Some(name) = self.name.as_deref().filter(|n| !n.is_empty()) {
            check_port_name(cx, "name", name);
        }
        if let Some(p) = self.protocol.as_deref().filter(|p| !p.is_empty()) {
            check_protocol(cx, "protocol", p);
        }
        if self.target_port.is_some_and(|t| t > 0) {
            cx.error_at(
                "targetPort",
                "targetPort has no effect on Sidecars; remove it",
            );
        }
    }
}

/// How traffic reaches a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    /// Whatever the workload's environment does (iptables when injected).
    #[default]
    Default,
    Iptables,
    /// The application talks to the listener explicitly (bind address or unix socket).
    None,
}

/// What happens to traffic for hosts the mesh does not know.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutboundTrafficPolicy {
    pub mode: OutboundTrafficPolicyMode,
    /// Where unknown-host traffic goes in ALLOW_ANY mode instead of its original destination.
    pub egress_proxy: Option<Destination>,
}

/// REGISTRY_ONLY blocks unknown hosts; ALLOW_ANY passes them through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicyMode {
    #[default]
    RegistryOnly,
    AllowAny,
}

impl Validate for Sidecar {
    fn validate(&self, cx: &mut Cx) {
        if let Some(sel) = &self.workload_selector {
            cx.field("workloadSelector", |cx| sel.validate_as("Sidecar", cx));
        }
        if self.ingress.is_empty()
            && self.egress.is_empty()
            && self.outbound_traffic_policy.is_none()
            && self.inbound_connection_pool.is_none()
        {
            cx.error("empty Sidecar: set at least one of ingress, egress, outboundTrafficPolicy, inboundConnectionPool");
        }
        let mut ports: Vec<u32> = Vec::new();
        cx.field("ingress", |cx| {
            for (i, l) in self.ingress.iter().enumerate() {
                cx.index(i, |cx| {
                    let Some(port) = &l.port else {
                        cx.require("port", false);
                        return;
                    };
                    if ports.contains(&port.number) {
                        cx.error_at(
                            "port.number",
                            format!("port {} is used by another ingress listener", port.number),
                        );
                    }
                    ports.push(port.number);
                    l.validate(cx);
                });
            }
        });
        cx.opt("inboundConnectionPool", &self.inbound_connection_pool);
        self.validate_egress(cx);
        cx.opt("outboundTrafficPolicy", &self.outbound_traffic_policy);
    }
}

impl Validate for IstioIngressListener {
    fn validate(&self, cx: &mut Cx) {
        let Some(port) = &self.port else {
            return cx.require("port", false);
        };
        cx.field("port", |cx| {
            port.validate_common(cx);
            check_port(cx, "number", port.number);
        });
        check_bind_ip(cx, self.bind.as_deref());
        if let Some(ep) = self.default_endpoint.as_deref().filter(|e| !e.is_empty())
            && let Err(e) = check_default_endpoint(ep)
        {
            cx.error_at("defaultEndpoint", e);
        }
        if let Some(tls) = &self.tls {
            cx.field("tls", |cx| {
                let unsupported = [
                    ("subjectAltNames", !tls.subject_alt_names.is_empty()),
                    ("httpsRedirect", tls.https_redirect),
                    ("credentialName", tls.credential_name.as_deref().is_some_and(|s| !s.is_empty())),
                    ("credentialNames", !tls.credential_names.is_empty()),
                    ("tlsCertificates", !tls.tls_certificates.is_empty()),
                ];
                for (field, set) in unsupported {
                    if set {
                        cx.error_at(field, format!("`{field}` is not supported in Sidecar ingress TLS; use certificate files"));
                    }
                }
                if matches!(tls.mode, ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough) {
                    cx.error_at("mode", format!("mode {} cannot be used in Sidecar ingress TLS", tls.mode.as_str()));
                }
                tls.validate(cx);
            });
            if !port.protocol().is_some_and(PortProtocol::is_tls) {
                cx.error_at("tls", "TLS settings need port protocol HTTPS or TLS");
            }
        }
        cx.opt("connectionPool", &self.connection_pool);
        let http_pool = self
            .connection_pool
            .as_ref()
            .is_some_and(|p| p.http.is_some());
        if http_pool && !port.protocol().is_some_and(PortProtocol::is_http) {
            warn(
                cx,
                "connectionPool.http",
                format!(
                    "port {} is not HTTP, so only the TCP connection pool settings apply",
                    port.number
                ),
            );
        }
    }
}

impl Validate for OutboundTrafficPolicy {
    fn validate(&self, cx: &mut Cx) {
        let Some(proxy) = &self.egress_proxy else {
            return;
        };
        if self.mode != OutboundTrafficPolicyMode::AllowAny {
            cx.error_at(
                "egressProxy",
                "egressProxy can only be set with mode ALLOW_ANY",
            );
            return;
        }
        cx.require("egressProxy.port", proxy.port.is_some());
        if check_wildcard_domain(&proxy.host).is_ok() && check_fqdn(&proxy.host).is_err() {
            cx.error_at(
                "egressProxy.host",
                format!(
                    "egress proxy host {:?} must be a name without wildcards",
                    proxy.host
                ),
            );
        }
        cx.opt("egressProxy", &self.egress_proxy);
    }
}

fn check_bind_ip(cx: &mut Cx, bind: Option<&str>) {
    if let Some(b) = bind.filter(|b| !b.is_empty() && !is_ip(b)) {
        cx.error_at("bind", format!("bind {b:?} must be an IP address"));
    }
}

/// `defaultEndpoint`: a loopback or wildcard address with a port, or a unix socket.
fn check_default_endpoint(ep: &str) -> Result<(), String> {
    if let Some(path) = ep.strip_prefix(UNIX_PREFIX) {
        return check_unix_address(path).map_err(|e| format!("defaultEndpoint {ep:?}: {e}"));
    }
    let expected =
        "must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://<path>";
    let (host, port) = match ep.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .ok_or_else(|| format!("defaultEndpoint {ep:?} {expected}"))?,
        None => match ep.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            _ => return Err(format!("defaultEndpoint {ep:?} {expected}")),
        },
    };
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        return Err(format!("defaultEndpoint {ep:?} {expected}"));
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        _ => Err(format!(
            "defaultEndpoint {ep:?}: port {port:?} must be a number in 1..65535"
        )),
    }
}

#[cfg(test)]
mod tests;
