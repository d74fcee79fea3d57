//! Istio `Gateway`: the servers (port, hosts, TLS) a gateway proxy selected by labels exposes.
//! The name checks in [`names`] are shared with Sidecar and ServiceEntry.

pub(crate) mod names;
mod tls;

pub use names::PortProtocol;
pub use tls::*;

use crate::resources::common::Labels;
use crate::resources::names::is_ip;
use crate::validate::{Cx, Validate};
use names::{UNIX_PREFIX, check_namespaced_host, check_port, check_unix_address, warn};
use serde::Deserialize;

/// Istio Gateway spec: which proxies (`selector`) listen on which `servers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    pub servers: Vec<Server>,
    pub selector: Labels,
}

/// One listener of a gateway: a port, the hosts it serves and optional TLS.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    pub port: Option<Port>,
    pub bind: Option<String>,
    pub hosts: Vec<String>,
    pub tls: Option<ServerTlsSettings>,
    pub default_endpoint: Option<String>,
    pub name: Option<String>,
}

/// A gateway server port. `protocol` is kept as written (Istio matches it case-insensitively);
/// [`Port::protocol`] parses it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Port {
    pub number: u32,
    pub protocol: String,
    pub name: String,
    /// Deprecated upstream and ignored on gateways.
    pub target_port: Option<u32>,
}

impl Port {
    /// The parsed protocol, `None` when Istio would not know it.
    pub fn protocol(&self) -> Option<PortProtocol> {
        PortProtocol::parse(&self.protocol)
    }
}

impl Validate for Gateway {
    fn validate(&self, cx: &mut Cx) {
        if self.servers.is_empty() {
            cx.error_at(
                "servers",
                "a Gateway needs at least one server (port, hosts)",
            );
        }
        cx.list("servers", &self.servers);
        let mut names: Vec<&str> = Vec::new();
        cx.field("servers", |cx| {
            for (i, s) in self.servers.iter().enumerate() {
                let Some(port) = &s.port else { continue };
                cx.index(i, |cx| {
                    if !port.name.is_empty() && names.contains(&port.name.as_str()) {
                        let msg = format!(
                            "port name {:?} is used by another server; port names must be unique",
                            port.name
                        );
                        cx.error_at("port.name", msg);
                    }
                    names.push(&port.name);
                    let https_redirect = s.tls.as_ref().is_some_and(|t| t.https_redirect);
                    if https_redirect && !port.protocol().is_some_and(PortProtocol::is_http) {
                        warn(
                            cx,
                            "tls.httpsRedirect",
                            "httpsRedirect only has an effect on HTTP servers",
                        );
                    }
                });
            }
        });
    }
}

impl Validate for Server {
    fn validate(&self, cx: &mut Cx) {
        if self.hosts.is_empty() {
            cx.error_at(
                "hosts",
                "a server needs at least one host, e.g. \"*\" or \"bookinfo.example.com\"",
            );
        }
        cx.field("hosts", |cx| {
            for (i, h) in self.hosts.iter().enumerate() {
                for e in check_namespaced_host(h, true) {
                    cx.index(i, |cx| cx.error(e));
                }
            }
        });
        cx.require("port", self.port.is_some());
        let bind = self.bind.as_deref().unwrap_or_default();
        let port_ok = self
            .port
            .as_ref()
            .is_some_and(|p| cx.field("port", |cx| validate_port(cx, p, bind)));
        if let Some(path) = bind.strip_prefix(UNIX_PREFIX) {
            if let Err(e) = check_unix_address(path) {
                cx.error_at("bind", e);
            }
            if self.port.as_ref().is_some_and(|p| p.number != 0) {
                cx.error_at(
                    "port.number",
                    "port number must be 0 when bind is a unix domain socket",
                );
            }
        } else if !bind.is_empty() && !is_ip(bind) {
            cx.error_at(
                "bind",
                format!("bind {bind:?} must be an IP address or unix://<path>"),
            );
        }
        cx.opt("tls", &self.tls);
        let (Some(port), true) = (&self.port, port_ok) else {
            return;
        };
        let Some(proto) = port.protocol() else { return };
        match &self.tls {
            None if proto.is_tls() => cx.error(format!(
                "server on {} port {} needs `tls` settings",
                port.protocol, port.number
            )),
            Some(tls) if !proto.is_tls() => {
                // A plain HTTP server may carry only `httpsRedirect` (its mode defaults to PASSTHROUGH).
                let redirect_only = tls.mode.is_passthrough()
                    && tls
                        .ca_certificates
                        .as_deref()
                        .unwrap_or_default()
                        .is_empty()
                    && tls.private_key.as_deref().unwrap_or_default().is_empty()
                    && tls
                        .server_certificate
                        .as_deref()
                        .unwrap_or_default()
                        .is_empty();
                if !proto.is_http() {
                    cx.error_at(
                        "tls",
                        format!(
                            "{} servers cannot have TLS settings; use HTTPS or TLS",
                            port.protocol
                        ),
                    );
                } else if !redirect_only {
                    cx.error_at(
                        "tls",
                        "plain-text HTTP servers may only set tls.httpsRedirect; use protocol HTTPS to terminate TLS",
                    );
                }
            }
            _ => {}
        }
    }
}

/// Istio's `validateServerPort`; returns whether the port is usable for the cross-field checks.
fn validate_port(cx: &mut Cx, port: &Port, bind: &str) -> bool {
    let mut ok = true;
    if port.protocol.is_empty() {
        cx.require("protocol", false);
        ok = false;
    } else if port.protocol().is_none() {
        cx.error_at(
            "protocol",
            format!(
                "unsupported protocol {:?}; expected one of {}",
                port.protocol,
                names::PROTOCOLS
            ),
        );
        ok = false;
    }
    if port.number != 0 || !bind.starts_with(UNIX_PREFIX) {
        ok &= (1..=65535).contains(&port.number);
        check_port(cx, "number", port.number);
    }
    if port.target_port.is_some_and(|t| t > 0) {
        cx.error_at(
            "targetPort",
            "targetPort has no effect on Gateways; remove it",
        );
        ok = false;
    }
    if port.name.is_empty() {
        cx.require("name", false);
        ok = false;
    }
    ok
}

#[cfg(test)]
mod tests;
