//! HTTPRoute rules -> model HTTP routes (one per match, see [`super::precedence`]): matches,
//! filters, weighted backends with per-backend header edits, timeouts and retries.

use super::super::{Ctx, source_ref};
use super::Lookup;
use super::backends::{self, backend_object};
use super::filters;
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::{
    HeaderMatchType, HttpBackendRef, HttpRoute as HttpRouteSpec, HttpRouteFilterType,
    HttpRouteMatch, HttpRouteRetry, HttpRouteRule, HttpRouteTimeouts, PathMatchType,
};
use std::borrow::Cow;
use std::collections::BTreeSet;
use trellis_model::{
    HeaderMatch, HttpMatch, HttpRoute, QueryMatch, RetryCondition, RetryOn, RetryPolicy,
    RouteAction, StringMatch, WeightedDestination,
};

/// One compiled rule match. `default_to_parent` marks a rule without `backendRefs` (and no
/// redirect): what it does depends on the parent (the Service itself for GAMMA, 500 on a
/// Gateway), so the parent decides when attaching.
pub(super) struct Rule {
    pub route: HttpRoute,
    pub default_to_parent: bool,
}

/// Compile every rule of an HTTPRoute (either API group).
pub(super) fn compile(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &HttpRouteSpec,
) -> Vec<Rule> {
    let rules = spec.rules.iter().map(|rule| {
        let matches = rule.matches.iter().map(http_match).collect();
        (Cow::Borrowed(rule), matches)
    });
    compile_rules(cx, lk, r, rules, catch_all())
}

/// Compile HTTPRoute-shaped rules, each given with its compiled matches (HTTPRoute and GRPCRoute
/// match differently, the rest is the same): one model route per match, `no_match` for a rule
/// without matches.
pub(super) fn compile_rules<'a>(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    rules: impl IntoIterator<Item = (Cow<'a, HttpRouteRule>, Vec<HttpMatch>)>,
    no_match: HttpMatch,
) -> Vec<Rule> {
    let mut out = Vec::new();
    for (i, (rule, mut matches)) in rules.into_iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        let (route, default_to_parent) = rule_route(cx, lk, r, &path, &rule);
        if matches.is_empty() {
            matches.push(no_match.clone());
        }
        out.extend(matches.into_iter().map(|m| Rule {
            route: HttpRoute {
                matches: vec![m],
                ..route.clone()
            },
            default_to_parent,
        }));
    }
    out
}

/// Everything of a rule except its matches.
fn rule_route(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    rule: &HttpRouteRule,
) -> (HttpRoute, bool) {
    let mut route = HttpRoute {
        name: rule.name.clone(),
        origin: source_ref(r),
        ..HttpRoute::default()
    };
    let redirect = filters::apply_http(cx, lk, r, path, &rule.filters, &mut route);
    let mut default_to_parent = false;
    route.action = match redirect {
        Some(redirect) => RouteAction::Redirect(redirect),
        None if rule.backend_refs.is_empty() => {
            default_to_parent = true;
            RouteAction::Forward(Vec::new())
        }
        None => {
            let dests = rule
                .backend_refs
                .iter()
                .enumerate()
                .filter_map(|(j, b)| destination(cx, lk, r, &format!("{path}.backendRefs[{j}]"), b))
                .collect();
            backends::forward(dests)
        }
    };
    route.retry = rule.retry.as_ref().map(retry_policy);
    if let Some(t) = &rule.timeouts {
        timeouts(&mut route, t);
    }
    if rule.session_persistence.is_some() {
        cx.report.at(
            r,
            &format!("{path}.sessionPersistence"),
            Code::IgnoredSetting,
            "sessionPersistence is accepted but not enforced by Trellis (use a DestinationRule consistent hash for sticky sessions)",
        );
    }
    (route, default_to_parent)
}

/// A weighted backend with its own header edits; other per-backend filters have no place in
/// the model and are reported.
fn destination(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    b: &HttpBackendRef,
) -> Option<WeightedDestination> {
    let dest = backends::resolve(cx, lk, r, path, &backend_object!(b))?;
    let mut wd = WeightedDestination::new(dest, backends::weight(b.effective_weight()));
    for (k, f) in b.filters.iter().enumerate() {
        match f.r#type {
            Some(HttpRouteFilterType::RequestHeaderModifier) => {
                filters::merge_ops(&mut wd.request_headers, f.request_header_modifier.as_ref());
            }
            Some(HttpRouteFilterType::ResponseHeaderModifier) => {
                filters::merge_ops(&mut wd.response_headers, f.response_header_modifier.as_ref());
            }
            Some(t) => cx.report.at(
                r,
                &format!("{path}.filters[{k}]"),
                Code::IgnoredSetting,
                format!("the {} filter on a single backend is accepted but not enforced by Trellis (put it on the rule)", t.as_str()),
            ),
            None => {}
        }
    }
    Some(wd)
}

/// A rule without matches matches every request: `PathPrefix /`.
fn catch_all() -> HttpMatch {
    HttpMatch {
        uri: Some(StringMatch::PathPrefix("/".into())),
        ..HttpMatch::default()
    }
}

/// One `HTTPRouteMatch`; a match without a path has the CRD default `PathPrefix /`.
fn http_match(m: &HttpRouteMatch) -> HttpMatch {
    let uri = match &m.path {
        None => StringMatch::PathPrefix("/".into()),
        Some(p) => {
            let v = p.effective_value().to_owned();
            match p.effective_type() {
                PathMatchType::Exact => StringMatch::Exact(v),
                PathMatchType::PathPrefix => StringMatch::PathPrefix(v),
                PathMatchType::RegularExpression => StringMatch::Regex(v),
            }
        }
    };
    HttpMatch {
        uri: Some(uri),
        method: m.method.map(|x| StringMatch::Exact(x.as_str().into())),
        headers: m
            .headers
            .iter()
            .map(|h| header_match(&h.name, h.r#type, &h.value))
            .collect(),
        query_params: m
            .query_params
            .iter()
            .map(|q| QueryMatch {
                name: q.name.clone(),
                value: value_match(q.r#type, &q.value),
            })
            .collect(),
        ..HttpMatch::default()
    }
}

/// A header condition (HTTPRoute and GRPCRoute share the shape).
pub(super) fn header_match(name: &str, ty: Option<HeaderMatchType>, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.to_owned(),
        value: Some(value_match(ty, value)),
        invert: false,
    }
}

/// Exact (the default) or regex comparison of a header or query parameter value.
fn value_match(ty: Option<HeaderMatchType>, value: &str) -> StringMatch {
    match ty.unwrap_or_default() {
        HeaderMatchType::Exact => StringMatch::Exact(value.to_owned()),
        HeaderMatchType::RegularExpression => StringMatch::Regex(value.to_owned()),
    }
}

/// `timeouts.request` bounds the whole request; `0s` disables it. `backendRequest` bounds
/// each try: with retries it is the per-try timeout, without retries there is one try, so it
/// tightens the route deadline instead.
fn timeouts(route: &mut HttpRoute, t: &HttpRouteTimeouts) {
    let nonzero = |d: Option<crate::resources::common::Duration>| {
        d.filter(|d| d.nanos > 0).map(|d| d.as_std())
    };
    route.timeout = nonzero(t.request);
    if let Some(backend) = nonzero(t.backend_request) {
        match &mut route.retry {
            Some(retry) if retry.attempts > 0 => retry.per_try_timeout = Some(backend),
            _ => route.timeout = Some(route.timeout.map_or(backend, |t| t.min(backend))),
        }
    }
}

/// The experimental `retry` field. Connection failures and refused streams (the request never
/// reached the backend) are always retried, plus the listed status codes; unset `attempts`
/// takes the model's default (2, as Istio).
fn retry_policy(r: &HttpRouteRetry) -> RetryPolicy {
    let mut conditions = BTreeSet::from([
        RetryCondition::ConnectFailure,
        RetryCondition::RefusedStream,
    ]);
    let status_codes: Vec<u16> = r
        .codes
        .iter()
        .filter_map(|c| u16::try_from(*c).ok())
        .collect();
    if !status_codes.is_empty() {
        conditions.insert(RetryCondition::RetriableStatusCodes);
    }
    let mut policy = RetryPolicy {
        retry_on: RetryOn {
            conditions,
            status_codes,
        },
        ..RetryPolicy::default()
    };
    if let Some(a) = r.attempts {
        policy.attempts = u32::try_from(a).unwrap_or(0);
    }
    if let Some(b) = r.backoff.filter(|b| b.nanos > 0) {
        policy.backoff_base = b.as_std();
        policy.backoff_max = b.as_std().saturating_mul(10);
    }
    policy
}
