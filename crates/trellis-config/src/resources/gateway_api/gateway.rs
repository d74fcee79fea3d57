//! GatewayClass and Gateway: which controller implements a gateway, and the listeners (port,
//! protocol, hostname, TLS) that routes attach to.

use super::shared::{DefaultScope, LocalObjectReference, ObjectReference};
use super::{
    check_hostname, check_max, check_max_len, check_non_empty, check_port, check_section_name,
    is_hostname,
};
use crate::resources::common::{LabelSelector, Labels};
use crate::resources::names::is_dns1123_subdomain;
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

mod tls;

pub use tls::*;

/// GatewayClass spec: the controller that implements Gateways of this class.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayClass {
    pub controller_name: String,
    pub parameters_ref: Option<ParametersReference>,
    pub description: Option<String>,
}

/// Class-wide parameters: a group/kind/name with an optional namespace.
pub type ParametersReference = ObjectReference;

impl Validate for GatewayClass {
    fn validate(&self, cx: &mut Cx) {
        cx.require("controllerName", !self.controller_name.is_empty());
        let c = &self.controller_name;
        let domain_prefixed = c
            .split_once('/')
            .is_some_and(|(d, p)| is_dns1123_subdomain(d) && !p.is_empty());
        if !c.is_empty() && !domain_prefixed {
            cx.error_at(
                "controllerName",
                format!("controllerName {c:?} must be a domain-prefixed path, e.g. istio.io/gateway-controller"),
            );
        }
        check_max_len(cx, "controllerName", c, 253);
        cx.opt("parametersRef", &self.parameters_ref);
        if let Some(d) = &self.description {
            check_max_len(cx, "description", d, 64);
        }
    }
}

/// Per-Gateway parameters in the Gateway's namespace.
pub type LocalParametersReference = LocalObjectReference;

/// Gateway spec: listeners bound to addresses, implemented by the class's controller.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gateway {
    pub gateway_class_name: String,
    pub listeners: Vec<Listener>,
    pub addresses: Vec<GatewayAddress>,
    pub infrastructure: Option<GatewayInfrastructure>,
    /// v1.4+ (experimental): gateway-wide frontend and backend TLS.
    pub tls: Option<GatewayTlsConfig>,
    /// v1.1–v1.3 (experimental) spelling of `tls.backend`.
    #[serde(rename = "backendTLS")]
    pub backend_tls: Option<GatewayBackendTls>,
    pub allowed_listeners: Option<AllowedListeners>,
    pub default_scope: Option<DefaultScope>,
}

/// A port, protocol and optional hostname that routes attach to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Listener {
    pub name: String,
    pub hostname: Option<String>,
    pub port: Option<i32>,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed implementation protocol.
    pub protocol: String,
    pub tls: Option<ListenerTlsConfig>,
    pub allowed_routes: Option<AllowedRoutes>,
}

/// Which routes may attach to a listener.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedRoutes {
    pub namespaces: Option<RouteNamespaces>,
    pub kinds: Vec<RouteGroupKind>,
}

/// Namespaces routes (or ListenerSets) may come from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteNamespaces {
    pub from: Option<FromNamespaces>,
    pub selector: Option<LabelSelector>,
}

/// Same shape for ListenerSets (`allowedListeners.namespaces`).
pub type ListenerNamespaces = RouteNamespaces;

/// Where attachments may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FromNamespaces {
    #[serde(rename = "All")]
    All,
    #[serde(rename = "Selector")]
    Selector,
    #[serde(rename = "Same")]
    Same,
    #[serde(rename = "None")]
    None,
}

/// A route kind; the group defaults to `gateway.networking.k8s.io`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteGroupKind {
    pub group: Option<String>,
    pub kind: String,
}

/// An address requested for the Gateway; `type` defaults to `IPAddress`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayAddress {
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    pub value: Option<String>,
}

/// Labels, annotations and parameters for what the controller provisions.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewayInfrastructure {
    pub labels: Labels,
    pub annotations: Labels,
    pub parameters_ref: Option<LocalParametersReference>,
}

/// Which ListenerSets may attach (experimental).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedListeners {
    pub namespaces: Option<ListenerNamespaces>,
}

impl Listener {
    /// TLS mode with the default (`Terminate`) applied, when the listener has TLS settings.
    pub fn tls_mode(&self) -> Option<TlsModeType> {
        self.tls.as_ref().map(|t| t.mode.unwrap_or_default())
    }

    /// Where routes may attach from, with the default (`Same`) applied.
    pub fn routes_from(&self) -> FromNamespaces {
        self.allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref())
            .and_then(|n| n.from)
            .unwrap_or(FromNamespaces::Same)
    }
}

/// Protocols the Gateway API defines, plus Istio's `HBONE` for ambient waypoints.
const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TLS", "TCP", "UDP", "HBONE"];

fn protocol_ok(p: &str) -> bool {
    PROTOCOLS.contains(&p)
        || p.split_once('/').is_some_and(|(d, n)| {
            is_dns1123_subdomain(d) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

impl Validate for Gateway {
    fn validate(&self, cx: &mut Cx) {
        cx.require("gatewayClassName", !self.gateway_class_name.is_empty());
        cx.list("listeners", &self.listeners);
        check_non_empty(cx, "listeners", self.listeners.len());
        check_max(cx, "listeners", self.listeners.len(), 64);
        let mut names = BTreeMap::new();
        let mut triples = BTreeMap::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let here = |cx: &mut Cx, msg: String| {
                cx.field("listeners", |cx| cx.index(i, |cx| cx.error(msg)))
            };
            if !l.name.is_empty()
                && let Some(first) = names.insert(l.name.as_str(), i)
            {
                here(
                    cx,
                    format!(
                        "listener name {:?} is already used by listeners[{first}]; names must be unique",
                        l.name
                    ),
                );
            }
            let key = (
                l.port,
                l.protocol.as_str(),
                l.hostname.as_deref().filter(|h| !h.is_empty()),
            );
            if let Some(first) = triples.insert(key, i) {
                here(
                    cx,
                    format!(
                        "same port, protocol and hostname as listeners[{first}]; listeners must be distinct"
                    ),
                );
            }
        }
        cx.list("addresses", &self.addresses);
        check_max(cx, "addresses", self.addresses.len(), 16);
        let mut values = BTreeMap::new();
        for (i, a) in self.addresses.iter().enumerate() {
            let ty = a.r#type.as_deref().unwrap_or("IPAddress");
            if let Some(v) = a
                .value
                .as_deref()
                .filter(|_| ty == "IPAddress" || ty == "Hostname")
                && let Some(first) = values.insert((ty, v), i)
            {
                cx.field("addresses", |cx| {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "{ty} {v:?} is already listed at addresses[{first}]"
                        ))
                    })
                });
            }
        }
        cx.opt("infrastructure", &self.infrastructure);
        cx.opt("tls", &self.tls);
        cx.opt("backendTLS", &self.backend_tls);
        cx.opt("allowedListeners", &self.allowed_listeners);
    }
}

impl Validate for Listener {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        check_section_name(
            cx,
            "name",
            Some(self.name.as_str()).filter(|n| !n.is_empty()),
        );
        cx.require("port", self.port.is_some());
        check_port(cx, "port", self.port);
        cx.require("protocol", !self.protocol.is_empty());
        let p = self.protocol.as_str();
        if !p.is_empty() && !protocol_ok(p) {
            cx.error_at(
                "protocol",
                format!("protocol {p:?} is not one of HTTP, HTTPS, TLS, TCP, UDP; implementation protocols need a domain prefix, e.g. example.com/proto"),
            );
        }
        if let Some(h) = &self.hostname {
            if matches!(p, "TCP" | "UDP") && !h.is_empty() {
                cx.error_at(
                    "hostname",
                    format!("hostname must not be set for protocol {p}"),
                );
            } else if !h.is_empty() {
                check_hostname(cx, "hostname", h);
            }
        }
        match (&self.tls, p) {
            (Some(_), "HTTP" | "TCP" | "UDP") => {
                cx.error_at("tls", format!("tls must not be set for protocol {p}"))
            }
            (Some(t), "HTTPS") if t.mode == Some(TlsModeType::Passthrough) => cx.error_at(
                "tls",
                "tls mode must be Terminate for protocol HTTPS (use protocol TLS for passthrough)",
            ),
            (None, "HTTPS" | "TLS") => cx.error(format!(
                "protocol {p} needs `tls` (mode and certificateRefs)"
            )),
            _ => {}
        }
        cx.opt("tls", &self.tls);
        cx.opt("allowedRoutes", &self.allowed_routes);
    }
}

impl Validate for AllowedRoutes {
    fn validate(&self, cx: &mut Cx) {
        if let Some(ns) = &self.namespaces {
            cx.field("namespaces", |cx| {
                if ns.from == Some(FromNamespaces::None) {
                    cx.error_at(
                        "from",
                        "routes cannot use from: None; use All, Selector or Same",
                    );
                }
                ns.validate(cx);
            });
        }
        check_max(cx, "kinds", self.kinds.len(), 8);
        cx.field("kinds", |cx| {
            for (i, k) in self.kinds.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("kind", !k.kind.is_empty());
                    super::check_group(cx, "group", k.group.as_deref());
                    super::check_kind(cx, "kind", Some(k.kind.as_str()).filter(|k| !k.is_empty()));
                });
            }
        });
    }
}

impl Validate for RouteNamespaces {
    fn validate(&self, cx: &mut Cx) {
        if self.from == Some(FromNamespaces::Selector) && self.selector.is_none() {
            cx.error("from: Selector needs a `selector`");
        }
        cx.opt("selector", &self.selector);
    }
}

impl Validate for GatewayAddress {
    fn validate(&self, cx: &mut Cx) {
        let ty = self.r#type.as_deref().unwrap_or("IPAddress");
        let known = matches!(ty, "IPAddress" | "Hostname" | "NamedAddress");
        if !known
            && !ty
                .split_once('/')
                .is_some_and(|(d, n)| is_dns1123_subdomain(d) && !n.is_empty())
        {
            cx.error_at("type", format!("address type {ty:?} is not IPAddress, Hostname, NamedAddress or a domain-prefixed type"));
        }
        let Some(v) = self.value.as_deref().filter(|v| !v.is_empty()) else {
            return;
        };
        check_max_len(cx, "value", v, 253);
        if ty == "IPAddress" && v.parse::<std::net::IpAddr>().is_err() {
            cx.error_at("value", format!("{v:?} is not an IP address"));
        } else if ty == "Hostname" && !is_hostname(v) {
            cx.error_at("value", format!("{v:?} is not a valid hostname"));
        }
    }
}

impl Validate for GatewayInfrastructure {
    fn validate(&self, cx: &mut Cx) {
        check_max(cx, "labels", self.labels.len(), 8);
        check_max(cx, "annotations", self.annotations.len(), 16);
        cx.opt("parametersRef", &self.parameters_ref);
    }
}

impl Validate for AllowedListeners {
    fn validate(&self, cx: &mut Cx) {
        cx.opt("namespaces", &self.namespaces);
    }
}

#[cfg(test)]
mod tests;
