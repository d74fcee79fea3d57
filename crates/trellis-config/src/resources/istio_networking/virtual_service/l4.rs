//! TLS (SNI-routed, not terminated) and TCP rules of a VirtualService.

use super::{RouteDestination, checks};
use crate::diag::{Code, Severity};
use crate::resources::common::Labels;
use crate::resources::names::{self, Wording};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// A rule for unterminated TLS traffic, routed by SNI (`TLSRoute`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsRoute {
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatchAttributes>,
    pub route: Vec<RouteDestination>,
}

/// Conditions of a TLS rule (`TLSMatchAttributes`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsMatchAttributes {
    pub sni_hosts: Vec<String>,
    pub destination_subnets: Vec<String>,
    pub port: Option<u32>,
    pub source_labels: Labels,
    pub gateways: Vec<String>,
    pub source_namespace: Option<String>,
}

/// A rule for opaque TCP traffic (`TCPRoute`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpRoute {
    #[serde(rename = "match")]
    pub matches: Vec<L4MatchAttributes>,
    pub route: Vec<RouteDestination>,
}

/// Conditions of a TCP rule (`L4MatchAttributes`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct L4MatchAttributes {
    pub destination_subnets: Vec<String>,
    pub port: Option<u32>,
    pub source_subnet: Option<String>,
    pub source_labels: Labels,
    pub gateways: Vec<String>,
    pub source_namespace: Option<String>,
}

impl Validate for TlsRoute {
    fn validate(&self, cx: &mut Cx) {
        self.validate_in(cx, &[]);
    }
}

impl TlsRoute {
    /// `hosts` are the VirtualService's hosts: every SNI host must fall under one of them.
    pub(super) fn validate_in(&self, cx: &mut Cx, hosts: &[String]) {
        if self.matches.is_empty() {
            cx.error_at(
                "match",
                "a TLS rule needs at least one match (with sniHosts)",
            );
        }
        cx.field("match", |cx| {
            for (i, m) in self.matches.iter().enumerate() {
                cx.index(i, |cx| m.validate_in(cx, hosts));
            }
        });
        routes(cx, &self.route, "TLS");
    }
}

impl TlsMatchAttributes {
    fn validate_in(&self, cx: &mut Cx, hosts: &[String]) {
        cx.require("sniHosts", !self.sni_hosts.is_empty());
        cx.field("sniHosts", |cx| {
            for (i, sni) in self.sni_hosts.iter().enumerate() {
                cx.index(i, |cx| sni_host(cx, sni, hosts));
            }
        });
        subnets(cx, &self.destination_subnets);
        checks::port(cx, "port", self.port);
        checks::gateway_names(cx, "gateways", &self.gateways);
        source_namespace(cx, &self.source_namespace);
    }
}

fn sni_host(cx: &mut Cx, sni: &str, hosts: &[String]) {
    if let Err(e) = names::check_wildcard_domain(sni) {
        if names::is_ip(sni) {
            cx.report(
                Severity::Warning,
                Code::SchemaValidation,
                format!("SNI host {sni:?} is an IP address; the SNI spec forbids that and most clients never send one"),
            );
        } else {
            cx.error(e.message(Wording::Brief));
        }
        return;
    }
    if !hosts.is_empty() && !hosts.iter().any(|h| checks::host_subset_of(sni, h)) {
        cx.error(format!(
            "SNI host {sni:?} is not covered by any of the VirtualService's hosts [{}]",
            hosts.join(", ")
        ));
    }
}

impl Validate for TcpRoute {
    fn validate(&self, cx: &mut Cx) {
        cx.field("match", |cx| {
            for (i, m) in self.matches.iter().enumerate() {
                cx.index(i, |cx| m.validate(cx));
            }
        });
        routes(cx, &self.route, "TCP");
    }
}

impl Validate for L4MatchAttributes {
    fn validate(&self, cx: &mut Cx) {
        subnets(cx, &self.destination_subnets);
        checks::port(cx, "port", self.port);
        if let Some(s) = self.source_subnet.as_deref().filter(|s| !s.is_empty())
            && let Err(e) = names::check_ip_or_cidr(s)
        {
            cx.error_at("sourceSubnet", e.message(Wording::Brief));
        }
        checks::gateway_names(cx, "gateways", &self.gateways);
        source_namespace(cx, &self.source_namespace);
    }
}

fn routes(cx: &mut Cx, route: &[RouteDestination], what: &str) {
    if route.is_empty() {
        cx.error_at(
            "route",
            format!("a {what} rule needs at least one route destination"),
        );
    }
    cx.list("route", route);
}

fn subnets(cx: &mut Cx, list: &[String]) {
    cx.field("destinationSubnets", |cx| {
        for (i, s) in list.iter().enumerate() {
            if let Err(e) = names::check_ip_or_cidr(s) {
                cx.index(i, |cx| cx.error(e.message(Wording::Brief)));
            }
        }
    });
}

fn source_namespace(cx: &mut Cx, ns: &Option<String>) {
    if let Some(ns) = ns.as_deref().filter(|s| !s.is_empty())
        && !names::is_dns1123_label_any_case(ns)
    {
        cx.error_at(
            "sourceNamespace",
            format!("sourceNamespace {ns:?} is not a valid namespace name"),
        );
    }
}
