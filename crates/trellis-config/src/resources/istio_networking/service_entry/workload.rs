//! `WorkloadEntry` (one non-Kubernetes workload, also the shape of ServiceEntry `endpoints`) and
//! `WorkloadGroup` (the template and readiness probe VMs register with).

use super::super::gateway::names::{
    UNIX_PREFIX, check_labels, check_port, check_port_name, check_unix_address, warn,
};
use crate::resources::common::Labels;
use crate::resources::names::{check_fqdn, is_ip};
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A workload outside Kubernetes (a VM, a bare-metal host), or one endpoint of a ServiceEntry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadEntry {
    /// IP address, DNS name or `unix://` socket. May be empty only when `network` says the
    /// workload is reached through that network's gateway.
    pub address: String,
    /// Service port name to the workload's port number.
    pub ports: BTreeMap<String, u32>,
    pub labels: Labels,
    pub network: Option<String>,
    pub locality: Option<String>,
    pub weight: Option<u32>,
    pub service_account: Option<String>,
}

impl WorkloadEntry {
    /// Istio's `validateWorkloadEntry`. `service_ports` are the names a ServiceEntry declares
    /// (`None` for a standalone WorkloadEntry); `allow_fqdn` is false for STATIC endpoints, which
    /// must be IP addresses or unix sockets.
    pub(crate) fn validate_endpoint(
        &self,
        cx: &mut Cx,
        service_ports: Option<&[&str]>,
        allow_fqdn: bool,
    ) {
        let addr = self.address.as_str();
        let network = self.network.as_deref().unwrap_or_default();
        if addr.is_empty() {
            if network.is_empty() {
                cx.error(format!(
                    "missing required field `{}.address` (an IP address, hostname or unix:// path; may be omitted only with `network`)",
                    cx.path()
                ));
                return;
            }
            warn(
                cx,
                "network",
                format!("address is unset; the workload is reached through network {network:?}"),
            );
        }
        let unix = addr.starts_with(UNIX_PREFIX);
        if let Some(path) = addr.strip_prefix(UNIX_PREFIX) {
            if let Err(e) = check_unix_address(path) {
                cx.error_at("address", e);
            }
            if !self.ports.is_empty() {
                cx.error_at("ports", format!("unix endpoint {addr} must not list ports"));
            }
        } else if !addr.is_empty() && !is_ip(addr) {
            if !allow_fqdn {
                cx.error_at(
                    "address",
                    format!("endpoint address {addr:?} must be an IP address (resolution STATIC)"),
                );
            } else if check_fqdn(addr).is_err() {
                cx.error_at(
                    "address",
                    format!("address {addr:?} is not a valid hostname or IP address"),
                );
            }
        }
        self.check_ports(cx, service_ports);
        check_labels(cx, "labels", &self.labels);
        if unix && service_ports.is_some_and(|p| p.len() != 1) {
            cx.error("a unix endpoint needs exactly one port declared by the ServiceEntry");
        }
    }

    /// Port names must be declared by the ServiceEntry (when there is one) and numbers valid.
    pub(crate) fn check_ports(&self, cx: &mut Cx, service_ports: Option<&[&str]>) {
        cx.field("ports", |cx| {
            for (name, number) in &self.ports {
                if service_ports.is_some_and(|p| !p.contains(&name.as_str())) {
                    cx.error_at(
                        name,
                        format!("port {name:?} is not one of the ServiceEntry's port names"),
                    );
                }
                check_port_name(cx, name, name);
                check_port(cx, name, *number);
            }
        });
    }
}

/// The standalone `WorkloadEntry` kind.
impl Validate for WorkloadEntry {
    fn validate(&self, cx: &mut Cx) {
        self.validate_endpoint(cx, None, true);
    }
}

/// Istio WorkloadGroup spec: what each VM of a group registers as.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadGroup {
    pub metadata: Option<WorkloadGroupMetadata>,
    pub template: Option<WorkloadEntry>,
    pub probe: Option<ReadinessProbe>,
}

/// Labels and annotations copied onto every WorkloadEntry of the group.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadGroupMetadata {
    pub labels: Labels,
    pub annotations: Labels,
}

/// How the proxy on the VM decides the workload is ready: one of httpGet, tcpSocket, exec, grpc.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReadinessProbe {
    pub initial_delay_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub period_seconds: Option<i32>,
    pub success_threshold: Option<i32>,
    pub failure_threshold: Option<i32>,
    pub http_get: Option<HttpHealthCheckConfig>,
    pub tcp_socket: Option<TcpHealthCheckConfig>,
    pub exec: Option<ExecHealthCheckConfig>,
    pub grpc: Option<GrpcHealthCheckConfig>,
}

/// HTTP GET probe; any status in 200..400 means ready.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpHealthCheckConfig {
    pub path: Option<String>,
    pub port: u32,
    pub host: Option<String>,
    pub scheme: Option<String>,
    pub http_headers: Vec<ProbeHttpHeader>,
}

/// A header sent with an HTTP probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProbeHttpHeader {
    pub name: String,
    pub value: String,
}

/// TCP connect probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpHealthCheckConfig {
    pub host: Option<String>,
    pub port: u32,
}

/// Command probe; exit status 0 means ready.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecHealthCheckConfig {
    pub command: Vec<String>,
}

/// gRPC health-checking-protocol probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GrpcHealthCheckConfig {
    pub port: u32,
    pub service: Option<String>,
}

impl Validate for WorkloadGroup {
    fn validate(&self, cx: &mut Cx) {
        // The template is not checked like a WorkloadEntry: address is filled in per VM.
        cx.require("template", self.template.is_some());
        if let Some(meta) = &self.metadata {
            cx.field("metadata", |cx| check_labels(cx, "labels", &meta.labels));
        }
        if let Some(t) = &self.template {
            cx.field("template", |cx| check_labels(cx, "labels", &t.labels));
        }
        cx.opt("probe", &self.probe);
    }
}

impl Validate for ReadinessProbe {
    fn validate(&self, cx: &mut Cx) {
        let counters = [
            ("initialDelaySeconds", self.initial_delay_seconds),
            ("timeoutSeconds", self.timeout_seconds),
            ("periodSeconds", self.period_seconds),
            ("successThreshold", self.success_threshold),
            ("failureThreshold", self.failure_threshold),
        ];
        for (field, v) in counters {
            if let Some(v) = v.filter(|v| *v < 0) {
                cx.error_at(field, format!("`{field}` must not be negative, got {v}"));
            }
        }
        cx.one_of(
            &["httpGet", "tcpSocket", "exec", "grpc"],
            &[
                self.http_get.is_some(),
                self.tcp_socket.is_some(),
                self.exec.is_some(),
                self.grpc.is_some(),
            ],
            true,
        );
        if let Some(h) = &self.http_get {
            cx.field("httpGet", |cx| {
                check_port(cx, "port", h.port);
                if let Some(s) = h
                    .scheme
                    .as_deref()
                    .filter(|s| !matches!(*s, "" | "HTTP" | "HTTPS"))
                {
                    cx.error_at("scheme", format!("scheme {s:?} must be HTTP or HTTPS"));
                }
                cx.field("httpHeaders", |cx| {
                    for (i, hd) in h.http_headers.iter().enumerate() {
                        let ok = !hd.name.is_empty()
                            && hd
                                .name
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
                        if !ok {
                            let msg = format!(
                                "header name {:?} must be letters, digits, '-' or '_'",
                                hd.name
                            );
                            cx.index(i, |cx| cx.error_at("name", msg));
                        }
                    }
                });
            });
        }
        if let Some(t) = &self.tcp_socket {
            cx.field("tcpSocket", |cx| check_port(cx, "port", t.port));
        }
        if let Some(e) = &self.exec {
            cx.field("exec", |cx| {
                if e.command.is_empty() {
                    cx.require("command", false);
                } else if e.command.iter().any(String::is_empty) {
                    cx.error_at("command", "command arguments must not be empty strings");
                }
            });
        }
        if let Some(g) = &self.grpc {
            cx.field("grpc", |cx| check_port(cx, "port", g.port));
        }
    }
}

#[cfg(test)]
mod tests;
