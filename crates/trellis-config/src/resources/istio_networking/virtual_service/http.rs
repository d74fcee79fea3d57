//! The parts of a VirtualService HTTP rule that select and shape forwarded requests: matches,
//! weighted destinations and header operations. The other actions (delegate, redirect, direct
//! response, rewrite) are in `actions.rs`; retries, faults, CORS and mirroring in `policy.rs`.

use super::{Destination, RouteContext, checks, weight};
use crate::resources::common::{Labels, StringMatch};
use crate::resources::names;
use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Is an optional string written and non-empty? Istio treats `""` as unset.
pub(super) fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

/// Conditions an HTTP rule matches on (`HTTPMatchRequest`); every condition in one match must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMatchRequest {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    /// An empty match (`x-canary: {}`) means "the header is present".
    pub headers: BTreeMap<String, StringMatch>,
    pub port: Option<u32>,
    pub source_labels: Labels,
    pub gateways: Vec<String>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub ignore_uri_case: bool,
    /// Matches when the header is absent, or (with a value) does not match.
    pub without_headers: BTreeMap<String, StringMatch>,
    pub source_namespace: Option<String>,
    pub stat_prefix: Option<String>,
}

impl Validate for HttpMatchRequest {
    fn validate(&self, cx: &mut Cx) {
        self.validate_in(cx, RouteContext::default());
    }
}

impl HttpMatchRequest {
    pub(super) fn validate_in(&self, cx: &mut Cx, rc: RouteContext) {
        for (name, m) in [
            ("uri", &self.uri),
            ("scheme", &self.scheme),
            ("method", &self.method),
            ("authority", &self.authority),
        ] {
            if let Some(m) = m {
                cx.field(name, |cx| string_match(cx, m, rc));
            }
        }
        header_matches(cx, "headers", &self.headers, rc);
        header_matches(cx, "withoutHeaders", &self.without_headers, rc);
        cx.field("queryParams", |cx| {
            for (k, m) in &self.query_params {
                cx.field(k, |cx| string_match(cx, m, rc));
            }
        });
        checks::port(cx, "port", self.port);
        checks::gateway_names(cx, "gateways", &self.gateways);
        if let Some(ns) = self.source_namespace.as_deref().filter(|s| !s.is_empty())
            && !names::is_dns1123_label_any_case(ns)
        {
            cx.error_at(
                "sourceNamespace",
                format!("sourceNamespace {ns:?} is not a valid namespace name"),
            );
        }
    }
}

/// Validate one match; rules that take part in delegation cannot use regexes, because Istio merges
/// the root's and the delegate's matches and regexes cannot be merged.
fn string_match(cx: &mut Cx, m: &StringMatch, rc: RouteContext) {
    m.validate(cx);
    if rc.delegating && m.regex.is_some() {
        cx.error_at(
            "regex",
            "regex matches are not supported in rules that delegate or in delegate VirtualServices",
        );
    }
}

fn header_matches(cx: &mut Cx, field: &str, map: &BTreeMap<String, StringMatch>, rc: RouteContext) {
    cx.field(field, |cx| {
        for (name, m) in map {
            cx.field(name, |cx| {
                if let Err(e) = checks::match_header_name(name) {
                    cx.error(e);
                }
                if checks::is_jwt_claim_key(name) && !rc.gateway_only {
                    cx.error(format!(
                        "{name:?}: routing on JWT claims works only in VirtualServices bound to gateways (not `mesh`)"
                    ));
                }
                string_match(cx, m, rc);
            });
        }
    });
}

/// A weighted HTTP destination (`HTTPRouteDestination`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteDestination {
    pub destination: Option<Destination>,
    pub weight: Option<i32>,
    pub headers: Option<Headers>,
}

impl Validate for HttpRouteDestination {
    fn validate(&self, cx: &mut Cx) {
        cx.require("destination", self.destination.is_some());
        cx.opt("destination", &self.destination);
        weight(cx, self.weight);
        cx.opt("headers", &self.headers);
    }
}

/// Header manipulation for requests and responses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Headers {
    pub request: Option<HeaderOperations>,
    pub response: Option<HeaderOperations>,
}

/// `set` replaces, `add` appends, `remove` deletes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderOperations {
    pub set: Labels,
    pub add: Labels,
    pub remove: Vec<String>,
}

impl Headers {
    /// The authority a request `set`/`add` of `host` or `:authority` writes, if any.
    pub fn authority_override(&self) -> Option<&str> {
        let req = self.request.as_ref()?;
        req.set
            .iter()
            .chain(&req.add)
            .find(|(k, _)| is_authority(k))
            .map(|(_, v)| v.as_str())
    }
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

impl Validate for Headers {
    fn validate(&self, cx: &mut Cx) {
        for (field, ops, request) in [
            ("request", &self.request, true),
            ("response", &self.response, false),
        ] {
            let Some(ops) = ops else { continue };
            cx.field(field, |cx| {
                for (list, map) in [("set", &ops.set), ("add", &ops.add)] {
                    cx.field(list, |cx| {
                        for (name, value) in map {
                            // The request authority may be rewritten; other pseudo-headers and (in
                            // responses) `host` belong to the proxy.
                            let allowed = request && is_authority(name);
                            if let Err(e) = header_op_name(name, allowed) {
                                cx.error_at(name, e);
                            }
                            if let Err(e) = checks::header_value(value) {
                                cx.error_at(name, e);
                            }
                        }
                    });
                }
                cx.field("remove", |cx| {
                    for (i, name) in ops.remove.iter().enumerate() {
                        if let Err(e) = header_op_name(name, false) {
                            cx.index(i, |cx| cx.error(e));
                        }
                    }
                });
            });
        }
    }
}

fn header_op_name(name: &str, authority_ok: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if authority_ok {
        return Ok(());
    }
    if name.eq_ignore_ascii_case("host") {
        return Err("the `host` header cannot be changed here; use `rewrite.authority`".into());
    }
    if name.starts_with(':') {
        return Err(format!(
            "{name:?}: pseudo-headers (\":\" prefix) cannot be changed"
        ));
    }
    Ok(())
}
