//! `VirtualService` (`networking.istio.io` v1, v1beta1, v1alpha3): how requests for a set of hosts
//! are matched and routed. Fields and checks follow Istio's API and its validation webhook; that
//! weights add up to 100 and that rules are reachable is checked by the analyzer.

mod actions;
pub(crate) mod checks;
mod http;
mod l4;
mod policy;
#[cfg(test)]
mod tests;

pub use actions::*;
pub use http::*;
pub use l4::*;
pub use policy::*;

use crate::resources::common::{Duration, Percent};
use crate::resources::names::{self, Wording};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// The `spec` of a VirtualService.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualService {
    /// Empty for a delegate VirtualService (one reached through another's `delegate:`).
    pub hosts: Vec<String>,
    /// `mesh`, `<namespace>/<gateway>` or `<gateway>`; empty means `mesh`.
    pub gateways: Vec<String>,
    pub http: Vec<HttpRoute>,
    pub tls: Vec<TlsRoute>,
    pub tcp: Vec<TcpRoute>,
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// Without hosts a VirtualService is a delegate: only a root's `delegate:` reaches it.
    pub fn is_delegate(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Does it configure sidecars (no gateways, or `mesh` among them)?
    pub fn applies_to_mesh(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == checks::MESH_GATEWAY)
    }
}

/// Where traffic goes (`Destination`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Destination {
    /// A service name (`reviews`, `reviews.prod.svc.cluster.local`) or a ServiceEntry host.
    pub host: String,
    /// A subset defined by a DestinationRule for `host`.
    pub subset: Option<String>,
    /// Needed only when the service has more than one port.
    pub port: Option<PortSelector>,
}

/// A port of a destination service (by number).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortSelector {
    pub number: Option<u32>,
}

/// A weighted destination of a TLS or TCP rule (`RouteDestination`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteDestination {
    pub destination: Option<Destination>,
    pub weight: Option<i32>,
}

/// One HTTP rule (`HTTPRoute`): the first rule whose match succeeds handles the request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    pub name: Option<String>,
    /// Any one match suffices; no matches means "everything".
    #[serde(rename = "match")]
    pub matches: Vec<HttpMatchRequest>,
    pub route: Vec<HttpRouteDestination>,
    pub redirect: Option<HttpRedirect>,
    pub direct_response: Option<HttpDirectResponse>,
    pub delegate: Option<Delegate>,
    pub rewrite: Option<HttpRewrite>,
    pub timeout: Option<Duration>,
    pub retries: Option<HttpRetry>,
    pub fault: Option<HttpFaultInjection>,
    /// Single mirror destination; see also `mirrors`.
    pub mirror: Option<Destination>,
    pub mirrors: Vec<HttpMirrorPolicy>,
    /// Share of traffic sent to `mirror`; 100% when unset.
    pub mirror_percentage: Option<Percent>,
    /// Deprecated integer form of `mirrorPercentage`.
    pub mirror_percent: Option<u32>,
    pub cors_policy: Option<CorsPolicy>,
    pub headers: Option<Headers>,
}

impl HttpRoute {
    /// Does the rule say what to do with a request (route, redirect, directResponse or delegate)?
    pub fn has_action(&self) -> bool {
        !self.route.is_empty()
            || self.redirect.is_some()
            || self.direct_response.is_some()
            || self.delegate.is_some()
    }

    /// Every mirror with its share of traffic (0-100): the legacy `mirror` (with
    /// `mirrorPercentage`, else `mirrorPercent`, else 100) and each of `mirrors`.
    pub fn effective_mirrors(&self) -> Vec<(&Destination, f64)> {
        let legacy = self.mirror.as_ref().map(|d| {
            let pct = self
                .mirror_percentage
                .map(|p| p.value)
                .or(self.mirror_percent.map(f64::from))
                .unwrap_or(100.0);
            (d, pct)
        });
        let listed = self.mirrors.iter().filter_map(|m| {
            m.destination
                .as_ref()
                .map(|d| (d, m.percentage.map_or(100.0, |p| p.value)))
        });
        legacy.into_iter().chain(listed).collect()
    }
}

/// Where an HTTP rule sits; some of Istio's checks depend on it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RouteContext {
    /// The rule delegates or sits in a delegate: its matches get merged, so no regexes.
    pub delegating: bool,
    /// The rule is in a delegate VirtualService (one without hosts).
    pub in_delegate: bool,
    /// The VirtualService applies to gateways only, where JWT-claim routing works.
    pub gateway_only: bool,
}

impl Validate for VirtualService {
    fn validate(&self, cx: &mut Cx) {
        let gateway_only = !self.applies_to_mesh();
        if self.is_delegate() {
            if self.http.is_empty() {
                cx.require("hosts", false);
            } else {
                let why = "a VirtualService without hosts is a delegate, which";
                if !self.gateways.is_empty() {
                    cx.error_at(
                        "gateways",
                        format!("{why} cannot name gateways (the root's apply)"),
                    );
                }
                if !self.tls.is_empty() {
                    cx.error_at("tls", format!("{why} can hold only http rules"));
                }
                if !self.tcp.is_empty() {
                    cx.error_at("tcp", format!("{why} can hold only http rules"));
                }
            }
        }
        self.validate_hosts(cx, gateway_only);
        checks::gateway_names(cx, "gateways", &self.gateways);
        if self.http.is_empty() && self.tcp.is_empty() && self.tls.is_empty() {
            cx.error("a VirtualService needs at least one http, tls or tcp rule");
        }
        cx.field("http", |cx| {
            for (i, r) in self.http.iter().enumerate() {
                let rc = RouteContext {
                    delegating: self.is_delegate() || r.delegate.is_some(),
                    in_delegate: self.is_delegate(),
                    gateway_only,
                };
                cx.index(i, |cx| r.validate_in(cx, rc));
            }
        });
        cx.field("tls", |cx| {
            for (i, r) in self.tls.iter().enumerate() {
                cx.index(i, |cx| r.validate_in(cx, &self.hosts));
            }
        });
        cx.list("tcp", &self.tcp);
        checks::export_to(cx, &self.export_to, false);
    }
}

/// Sidecars would send every outbound request through such a VirtualService.
const MESH_WILDCARD: &str = "host `*` is not allowed for VirtualServices that apply to sidecars \
     (mesh); bind it to a gateway or list the hosts";

impl VirtualService {
    fn validate_hosts(&self, cx: &mut Cx, gateway_only: bool) {
        cx.field("hosts", |cx| {
            let mut all_valid = true;
            for (i, h) in self.hosts.iter().enumerate() {
                // `outbound_.<port>_._.<host>` names are SNI values of AUTO_PASSTHROUGH gateways.
                let auto_sni = gateway_only && h.starts_with("outbound_");
                let problem = match names::check_wildcard_domain(h) {
                    Err(_) if auto_sni || names::is_ip(h) => None,
                    Err(e) => Some(e.message(Wording::Brief)),
                    Ok(()) if h == "*" && !gateway_only => Some(MESH_WILDCARD.to_owned()),
                    Ok(()) => None,
                };
                if let Some(e) = problem {
                    all_valid = false;
                    cx.index(i, |cx| cx.error(e));
                }
            }
            if !all_valid {
                return;
            }
            let overlap =
                |a: &str, b: &str| checks::host_subset_of(a, b) || checks::host_subset_of(b, a);
            for (j, b) in self.hosts.iter().enumerate() {
                if let Some(a) = self.hosts[..j].iter().find(|a| overlap(a, b)) {
                    let msg = format!("hosts {a:?} and {b:?} overlap; list each host once");
                    cx.index(j, |cx| cx.error(msg));
                }
            }
        });
    }
}

impl Validate for HttpRoute {
    fn validate(&self, cx: &mut Cx) {
        self.validate_in(cx, RouteContext::default());
    }
}

impl HttpRoute {
    pub(crate) fn validate_in(&self, cx: &mut Cx, rc: RouteContext) {
        self.validate_actions(cx, rc);
        cx.field("match", |cx| {
            for (i, m) in self.matches.iter().enumerate() {
                cx.index(i, |cx| m.validate_in(cx, rc));
            }
        });
        cx.list("route", &self.route);
        cx.opt("redirect", &self.redirect);
        if let Some(r) = &self.redirect
            && http::set(&r.prefix_rewrite)
            && self
                .matches
                .iter()
                .any(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_none()))
        {
            cx.error_at(
                "redirect.prefixRewrite",
                "prefixRewrite needs every uri match of the rule to be a prefix match",
            );
        }
        cx.opt("directResponse", &self.direct_response);
        cx.opt("delegate", &self.delegate);
        cx.opt("rewrite", &self.rewrite);
        checks::duration(cx, "timeout", &self.timeout);
        cx.opt("retries", &self.retries);
        cx.opt("fault", &self.fault);
        cx.one_of(
            &["mirror", "mirrors"],
            &[self.mirror.is_some(), !self.mirrors.is_empty()],
            false,
        );
        cx.opt("mirror", &self.mirror);
        cx.list("mirrors", &self.mirrors);
        cx.opt("mirrorPercentage", &self.mirror_percentage);
        if let Some(p) = self.mirror_percent {
            cx.deprecated("mirrorPercent", "`mirrorPercentage: {value: ...}`");
            if p > 100 {
                cx.error_at(
                    "mirrorPercent",
                    format!("mirrorPercent must be at most 100, got {p}"),
                );
            }
        }
        cx.opt("corsPolicy", &self.cors_policy);
        cx.opt("headers", &self.headers);
        let rewritten = self
            .rewrite
            .as_ref()
            .and_then(|r| r.authority.as_deref())
            .filter(|a| !a.is_empty());
        if let (Some(a), Some(b)) = (
            rewritten,
            self.headers.as_ref().and_then(Headers::authority_override),
        ) {
            let msg = format!(
                "the authority is set twice: rewrite.authority {a:?} and a host/:authority header {b:?}"
            );
            cx.error_at("headers", msg);
        }
    }

    /// route, redirect, directResponse and delegate are alternatives; fault and rewrite only make
    /// sense when the request is forwarded.
    fn validate_actions(&self, cx: &mut Cx, rc: RouteContext) {
        let has_route = !self.route.is_empty();
        if self.delegate.is_some() {
            if rc.in_delegate {
                cx.error_at(
                    "delegate",
                    "a delegate VirtualService cannot delegate again",
                );
            } else {
                for (field, set) in [
                    ("route", has_route),
                    ("redirect", self.redirect.is_some()),
                    ("directResponse", self.direct_response.is_some()),
                ] {
                    if set {
                        cx.error_at(
                            field,
                            format!("a rule that delegates cannot also have `{field}`"),
                        );
                    }
                }
                return;
            }
        }
        let terminal = if self.redirect.is_some() {
            Some("redirect")
        } else if self.direct_response.is_some() {
            Some("directResponse")
        } else {
            None
        };
        let Some(terminal) = terminal else { return };
        for (field, set) in [
            ("route", has_route),
            (
                "directResponse",
                terminal == "redirect" && self.direct_response.is_some(),
            ),
            ("fault", self.fault.is_some()),
            ("rewrite", self.rewrite.is_some()),
        ] {
            if set {
                cx.error_at(
                    field,
                    format!("a rule cannot have both `{terminal}` and `{field}`"),
                );
            }
        }
    }
}

impl Validate for Destination {
    fn validate(&self, cx: &mut Cx) {
        if self.host.is_empty() {
            cx.require("host", false);
        } else if self.host == "*" {
            cx.error_at("host", "destination host cannot be `*`; name a service");
        } else if let Err(e) = names::check_wildcard_domain(&self.host) {
            let hint = if self.host.contains(':') {
                " (put the port in `port.number`)"
            } else {
                ""
            };
            cx.error_at("host", format!("{}{hint}", e.message(Wording::Brief)));
        }
        if let Some(s) = &self.subset
            && !names::is_dns1123_label_any_case(s)
        {
            cx.error_at(
                "subset",
                format!("subset name {s:?} is not a valid DNS-1123 label"),
            );
        }
        cx.opt("port", &self.port);
    }
}

impl Validate for PortSelector {
    fn validate(&self, cx: &mut Cx) {
        cx.require("number", self.number.is_some());
        checks::port(cx, "number", self.number);
    }
}

impl Validate for RouteDestination {
    fn validate(&self, cx: &mut Cx) {
        cx.require("destination", self.destination.is_some());
        cx.opt("destination", &self.destination);
        weight(cx, self.weight);
    }
}

/// Weights are percentages of the rule's traffic (their sum is checked by the analyzer).
pub(crate) fn weight(cx: &mut Cx, w: Option<i32>) {
    if let Some(w) = w
        && !(0..=100).contains(&w)
    {
        cx.error_at(
            "weight",
            format!("weight must be between 0 and 100, got {w}"),
        );
    }
}
