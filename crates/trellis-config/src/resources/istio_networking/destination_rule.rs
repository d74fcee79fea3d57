//! `DestinationRule` (`networking.istio.io` v1, v1beta1, v1alpha3): what happens to traffic for a
//! host after routing: subsets, load balancing, connection pools, outlier detection and upstream
//! TLS. Fields and checks follow Istio's API and validation webhook; duplicate subset names are
//! left to the analyzer.

mod connection;
mod load_balancer;
mod locality;
#[cfg(test)]
mod tests;
mod tls;

pub use connection::*;
pub use load_balancer::*;
pub use locality::*;
pub use tls::*;

use super::virtual_service::{PortSelector, checks};
use crate::resources::common::{Duration, Labels, WorkloadSelector};
use crate::resources::names::{self, Wording};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// The `spec` of a DestinationRule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DestinationRule {
    /// The service (or ServiceEntry host) the rule applies to; may start with `*.`.
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
    pub export_to: Vec<String>,
    /// Limits the rule to these client workloads (in the rule's namespace).
    pub workload_selector: Option<WorkloadSelector>,
}

impl DestinationRule {
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

/// Policies for one destination, or for one subset or port of it (`TrafficPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancerSettings>,
    pub connection_pool: Option<ConnectionPoolSettings>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTlsSettings>,
    /// Replace (not merge with) the settings above for one port.
    pub port_level_settings: Vec<PortTrafficPolicy>,
    pub tunnel: Option<TunnelSettings>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub retry_budget: Option<RetryBudget>,
}

impl TrafficPolicy {
    /// The port-level override for `port`, if any.
    pub fn for_port(&self, port: u32) -> Option<&PortTrafficPolicy> {
        self.port_level_settings
            .iter()
            .find(|p| p.port.as_ref().and_then(|s| s.number) == Some(port))
    }
}

/// Policies for one port of the destination (`PortTrafficPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortTrafficPolicy {
    pub port: Option<PortSelector>,
    pub load_balancer: Option<LoadBalancerSettings>,
    pub connection_pool: Option<ConnectionPoolSettings>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTlsSettings>,
}

/// Tunnel TCP to the destination through an HTTP proxy (`TunnelSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TunnelSettings {
    /// `CONNECT` (default) or `POST`.
    pub protocol: Option<String>,
    pub target_host: String,
    pub target_port: Option<u32>,
}

/// Send a PROXY protocol header upstream.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyProtocol {
    /// V1 when unset.
    pub version: Option<ProxyProtocolVersion>,
}

/// PROXY protocol version: V1 is text, V2 binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ProxyProtocolVersion {
    V1,
    V2,
}

/// Cap concurrent retries relative to active requests (`RetryBudget`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryBudget {
    /// Percent of active plus pending requests; 20 when unset.
    pub percent: Option<f64>,
    /// 3 when unset.
    pub min_retry_concurrency: Option<u32>,
    pub budget_interval: Option<Duration>,
}

/// A named group of the destination's endpoints, selected by labels (`Subset`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subset {
    pub name: String,
    pub labels: Labels,
    /// Merged over the rule's top-level policy for this subset.
    pub traffic_policy: Option<TrafficPolicy>,
}

impl Validate for DestinationRule {
    fn validate(&self, cx: &mut Cx) {
        if self.host.is_empty() {
            cx.require("host", false);
        } else if let Err(e) = names::check_wildcard_domain(&self.host) {
            cx.error_at("host", e.message(Wording::Brief));
        }
        cx.opt("trafficPolicy", &self.traffic_policy);
        cx.list("subsets", &self.subsets);
        checks::export_to(cx, &self.export_to, false);
        if let Some(ws) = &self.workload_selector {
            cx.field("workloadSelector.matchLabels", |cx| {
                for (k, v) in ws.match_labels.iter().filter(|(_, v)| v.contains('*')) {
                    cx.error_at(
                        k,
                        format!("label value {v:?}: wildcards are not allowed in workloadSelector"),
                    );
                }
            });
        }
    }
}

/// Most port-level entries a policy may have (the CRD's limit).
const MAX_PORT_LEVEL_SETTINGS: usize = 4096;

impl Validate for TrafficPolicy {
    fn validate(&self, cx: &mut Cx) {
        let empty = self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
            && self.port_level_settings.is_empty()
            && self.tunnel.is_none()
            && self.proxy_protocol.is_none()
            && self.retry_budget.is_none();
        if empty {
            cx.error("a traffic policy needs at least one setting");
        }
        cx.one_of(
            &["tunnel", "proxyProtocol"],
            &[self.tunnel.is_some(), self.proxy_protocol.is_some()],
            false,
        );
        policy_parts(
            cx,
            &self.load_balancer,
            &self.connection_pool,
            &self.outlier_detection,
            &self.tls,
        );
        if self.port_level_settings.len() > MAX_PORT_LEVEL_SETTINGS {
            cx.error_at(
                "portLevelSettings",
                format!("at most {MAX_PORT_LEVEL_SETTINGS} port-level settings are allowed"),
            );
        }
        cx.list("portLevelSettings", &self.port_level_settings);
        cx.opt("tunnel", &self.tunnel);
        cx.opt("retryBudget", &self.retry_budget);
    }
}

/// The four settings a policy and a port-level policy share.
fn policy_parts(
    cx: &mut Cx,
    lb: &Option<LoadBalancerSettings>,
    pool: &Option<ConnectionPoolSettings>,
    outlier: &Option<OutlierDetection>,
    tls: &Option<ClientTlsSettings>,
) {
    if let Some(lb) = lb {
        cx.field("loadBalancer", |cx| lb.validate_with(cx, outlier.is_some()));
    }
    cx.opt("connectionPool", pool);
    cx.opt("outlierDetection", outlier);
    cx.opt("tls", tls);
}

impl Validate for PortTrafficPolicy {
    fn validate(&self, cx: &mut Cx) {
        cx.require("port", self.port.is_some());
        cx.opt("port", &self.port);
        if self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
        {
            cx.error(
                "a port-level policy needs loadBalancer, connectionPool, outlierDetection or tls",
            );
        }
        policy_parts(
            cx,
            &self.load_balancer,
            &self.connection_pool,
            &self.outlier_detection,
            &self.tls,
        );
    }
}

impl Validate for TunnelSettings {
    fn validate(&self, cx: &mut Cx) {
        if let Some(p) = self
            .protocol
            .as_deref()
            .filter(|p| !p.is_empty() && *p != "CONNECT" && *p != "POST")
        {
            cx.error_at(
                "protocol",
                format!("tunnel protocol {p:?} is invalid; expected CONNECT or POST"),
            );
        }
        if self.target_host.is_empty() {
            cx.require("targetHost", false);
        } else if names::check_fqdn(&self.target_host).is_err() && !names::is_ip(&self.target_host)
        {
            cx.error_at(
                "targetHost",
                format!(
                    "targetHost {:?} must be a DNS name or an IP address",
                    self.target_host
                ),
            );
        }
        cx.require("targetPort", self.target_port.is_some());
        checks::port(cx, "targetPort", self.target_port);
    }
}

impl Validate for RetryBudget {
    fn validate(&self, cx: &mut Cx) {
        if let Some(p) = self.percent.filter(|p| !(0.0..=100.0).contains(p)) {
            cx.error_at(
                "percent",
                format!("percent must be between 0 and 100, got {p}"),
            );
        }
    }
}

impl Validate for Subset {
    fn validate(&self, cx: &mut Cx) {
        if self.name.is_empty() {
            cx.require("name", false);
        } else if !names::is_dns1123_label_any_case(&self.name) {
            cx.error_at(
                "name",
                format!(
                    "subset name {:?} must be a DNS-1123 label (letters, digits, `-`)",
                    self.name
                ),
            );
        }
        cx.opt("trafficPolicy", &self.traffic_policy);
    }
}
