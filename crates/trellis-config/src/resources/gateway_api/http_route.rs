//! HTTPRoute: HTTP routing for Gateways and, with a Service parent, for the mesh (GAMMA).

use super::filters::{HttpRouteFilter, HttpRouteFilterType, validate_http_filters};
use super::session::SessionPersistence;
use super::shared::{DefaultScope, ParentReference, validate_hostnames, validate_parent_refs};
use super::{check_duration, check_max, check_unique_rule_names};
use crate::resources::common::Duration;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

pub(super) mod matches;

pub use matches::*;

/// HTTPRoute spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    pub parent_refs: Vec<ParentReference>,
    pub use_default_gateways: Option<DefaultScope>,
    pub hostnames: Vec<String>,
    pub rules: Vec<HttpRouteRule>,
}

/// One rule: requests matching any of `matches` go through `filters` to `backendRefs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRule {
    pub name: Option<String>,
    pub matches: Vec<HttpRouteMatch>,
    pub filters: Vec<HttpRouteFilter>,
    pub backend_refs: Vec<HttpBackendRef>,
    pub timeouts: Option<HttpRouteTimeouts>,
    pub retry: Option<HttpRouteRetry>,
    pub session_persistence: Option<SessionPersistence>,
}

/// A weighted backend with its own filters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
    pub filters: Vec<HttpRouteFilter>,
}

backend_object_methods!(weighted HttpBackendRef);

/// Whole-request and per-attempt timeouts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteTimeouts {
    pub request: Option<Duration>,
    pub backend_request: Option<Duration>,
}

/// Retries (experimental).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteRetry {
    pub codes: Vec<i32>,
    pub attempts: Option<i32>,
    pub backoff: Option<Duration>,
}

/// The route-level checks HTTPRoute and GRPCRoute share: parents, at most 16 hostnames, at most
/// 16 rules with at most 128 matches in all, and unique rule names. `rule` gives a rule's name
/// and number of matches.
pub(super) fn validate_route<R: Validate>(
    cx: &mut Cx,
    parent_refs: &[ParentReference],
    hostnames: &[String],
    rules: &[R],
    rule: impl Fn(&R) -> (Option<&str>, usize),
) {
    validate_parent_refs(cx, parent_refs);
    validate_hostnames(cx, hostnames, 16);
    cx.list("rules", rules);
    check_max(cx, "rules", rules.len(), 16);
    let total: usize = rules.iter().map(|r| rule(r).1).sum();
    if total > 128 {
        cx.error_at(
            "rules",
            format!("the rules have {total} matches in total; at most 128 are allowed"),
        );
    }
    check_unique_rule_names(cx, rules.iter().map(|r| rule(r).0));
}

/// The lists of an HTTPRoute or GRPCRoute rule, in this order: at most 64 `matches`, the
/// `filters` (checked by the kind's `validate_filters`) and at most 16 `backendRefs`.
pub(super) fn validate_rule_lists<M: Validate, F, B: Validate>(
    cx: &mut Cx,
    matches: &[M],
    filters: &[F],
    validate_filters: fn(&mut Cx, &[F]),
    backend_refs: &[B],
) {
    cx.list("matches", matches);
    check_max(cx, "matches", matches.len(), 64);
    validate_filters(cx, filters);
    cx.list("backendRefs", backend_refs);
    check_max(cx, "backendRefs", backend_refs.len(), 16);
}

impl Validate for HttpRoute {
    fn validate(&self, cx: &mut Cx) {
        validate_route(cx, &self.parent_refs, &self.hostnames, &self.rules, |r| {
            (r.name.as_deref(), r.matches.len())
        });
    }
}

impl Validate for HttpRouteRule {
    fn validate(&self, cx: &mut Cx) {
        validate_rule_lists(
            cx,
            &self.matches,
            &self.filters,
            validate_http_filters,
            &self.backend_refs,
        );
        cx.opt("timeouts", &self.timeouts);
        cx.opt("retry", &self.retry);
        cx.opt("sessionPersistence", &self.session_persistence);

        let redirect = self
            .filters
            .iter()
            .any(|f| f.r#type == Some(HttpRouteFilterType::RequestRedirect));
        if redirect && !self.backend_refs.is_empty() {
            cx.error("a RequestRedirect filter answers the request itself; remove `backendRefs` or the redirect");
        }
        let prefix_rewrite = |filters: &[HttpRouteFilter]| {
            filters.iter().any(|f| {
                let redirect = f.request_redirect.as_ref().and_then(|r| r.path.as_ref());
                let rewrite = f.url_rewrite.as_ref().and_then(|r| r.path.as_ref());
                redirect
                    .into_iter()
                    .chain(rewrite)
                    .any(|p| p.is_prefix_replacement())
            })
        };
        let needs_prefix = prefix_rewrite(&self.filters)
            || self.backend_refs.iter().any(|b| prefix_rewrite(&b.filters));
        if needs_prefix && !(self.matches.len() == 1 && self.matches[0].is_path_prefix()) {
            cx.error(
                "replacePrefixMatch needs exactly one match in this rule, with a PathPrefix path, so the prefix to replace is known",
            );
        }
    }
}

impl Validate for HttpBackendRef {
    fn validate(&self, cx: &mut Cx) {
        self.validate_object(cx);
        self.validate_weight(cx);
        validate_http_filters(cx, &self.filters);
    }
}

impl Validate for HttpRouteTimeouts {
    fn validate(&self, cx: &mut Cx) {
        check_duration(cx, "request", self.request.as_ref());
        check_duration(cx, "backendRequest", self.backend_request.as_ref());
        if let (Some(r), Some(b)) = (self.request, self.backend_request)
            && r.nanos != 0
            && b > r
        {
            cx.error_at(
                "backendRequest",
                format!(
                    "backendRequest timeout ({b}) cannot be longer than the request timeout ({r})"
                ),
            );
        }
    }
}

impl Validate for HttpRouteRetry {
    fn validate(&self, cx: &mut Cx) {
        cx.field("codes", |cx| {
            for (i, c) in self.codes.iter().enumerate() {
                if !(400..=599).contains(c) {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "retry status code must be between 400 and 599, got {c}"
                        ))
                    });
                } else if self.codes[..i].contains(c) {
                    cx.index(i, |cx| cx.error(format!("status code {c} is listed twice")));
                }
            }
        });
        if let Some(a) = self.attempts
            && a < 0
        {
            cx.error_at(
                "attempts",
                format!("attempts must not be negative, got {a}"),
            );
        }
        check_duration(cx, "backoff", self.backoff.as_ref());
    }
}

#[cfg(test)]
mod tests;
