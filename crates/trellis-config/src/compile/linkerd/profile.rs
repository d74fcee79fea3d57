//! Linkerd ServiceProfile: named routes with timeouts, retryability and response classes, the
//! service's retry budget, traffic-split overrides and opaque ports.
//!
//! Linkerd looks profiles up by the service's fully qualified name (`metadata.name`). A profile
//! in the service's own namespace applies to every client; one in another namespace applies only
//! to clients in that namespace and wins over the service's own for them. The compiler keeps that
//! by giving the routes of such a "client-side" profile a `source_namespace` condition and putting
//! them first.

use super::super::Ctx;
use super::conditions::{self, Ranges};
use super::split::weighted;
use crate::diag::Code;
use crate::resources::linkerd::{RetryBudget, RouteSpec, ServiceProfile};
use crate::resources::{Kind, Resource, Spec};
use std::time::Duration;
use trellis_model::{
    Destination, HttpMatch, HttpRoute, Protocol, ResponseClass, RetryCondition, RetryOn,
    RetryPolicy, RouteAction, WeightedDestination,
};

/// Linkerd's route timeout when a route sets none (documented ServiceProfile default).
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries per request on a retryable route. Linkerd has no per-request cap: the retry budget
/// limits retries. The model needs a count, so this is a generous cap that the budget, not the
/// count, normally reaches first.
const RETRYABLE_ATTEMPTS: u32 = 3;

/// A ServiceProfile whose service exists.
pub(super) struct Profile<'a> {
    pub r: &'a Resource,
    pub sp: &'a ServiceProfile,
    pub host: String,
    /// The client namespace, for a profile outside the service's namespace.
    pub client_ns: Option<String>,
}

/// Profiles whose `metadata.name` names a service in the input; the others are reported.
pub(super) fn collect<'a>(cx: &mut Ctx<'a>) -> Vec<Profile<'a>> {
    let mut out = Vec::new();
    for r in super::of_kind(cx, Kind::ServiceProfile) {
        let Spec::ServiceProfile(sp) = &r.spec else {
            continue;
        };
        let host = r.name.trim_end_matches('.').to_ascii_lowercase();
        let Some(svc_ns) = cx.service(&host).map(|s| s.namespace.clone()) else {
            let expanded = cx.fqdn(&r.name, &r.namespace);
            let hint = if expanded != host && cx.service(&expanded).is_some() {
                format!(
                    "; Linkerd looks profiles up by the fully qualified name, so name it {expanded}"
                )
            } else {
                format!(
                    "; the name must be the service's fully qualified name, e.g. <service>.{}.svc.{}",
                    r.namespace, cx.opts.domain
                )
            };
            cx.report.at(
                r,
                "metadata.name",
                Code::ReferencedResourceNotFound,
                format!("ServiceProfile names no service in the input: {host:?}{hint}"),
            );
            continue;
        };
        let client_ns = (svc_ns != r.namespace).then(|| r.namespace.clone());
        out.push(Profile {
            r,
            sp,
            host,
            client_ns,
        });
    }
    out
}

/// `opaquePorts`: the listed service ports (by port or target port) carry opaque TCP. Only the
/// service's own profile may say so; the protocol is one per port, not per client.
pub(super) fn apply_opaque_ports(cx: &mut Ctx<'_>, p: &Profile<'_>) {
    for (i, &port) in p.sp.opaque_ports.iter().enumerate() {
        let path = format!("spec.opaquePorts[{i}]");
        if p.client_ns.is_some() {
            cx.report.at(p.r, &path, Code::IgnoredSetting, "opaquePorts of a profile outside the service's namespace are ignored; a port has one protocol for every client");
            continue;
        }
        let marked = u16::try_from(port)
            .ok()
            .zip(cx.service_mut(&p.host))
            .map_or(0, |(port, svc)| {
                svc.ports
                    .iter_mut()
                    .filter(|sp| sp.number == port || sp.target_port == Some(port))
                    .map(|sp| sp.protocol = Protocol::Tcp)
                    .count()
            });
        if marked == 0 {
            cx.report.at(
                p.r,
                &path,
                Code::IgnoredSetting,
                format!("service {} has no port {port}", p.host),
            );
        }
    }
}

/// The destinations the profile sends to: its `dstOverrides` when it has any, else `default`
/// (the TrafficSplit backends or the service itself). Overrides naming no service are reported
/// and kept: requests sent there fail with 503 (UH), as in Linkerd.
pub(super) fn destinations(
    cx: &mut Ctx<'_>,
    p: &Profile<'_>,
    default: &[WeightedDestination],
) -> Vec<WeightedDestination> {
    if p.sp.dst_overrides.is_empty() {
        return default.to_vec();
    }
    let mut items = Vec::new();
    for (i, o) in p.sp.dst_overrides.iter().enumerate() {
        let path = format!("spec.dstOverrides[{i}].authority");
        let (name, port) = match o.authority.rsplit_once(':') {
            Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (h, port.parse::<u16>().ok())
            }
            _ => (o.authority.as_str(), None),
        };
        if o.authority.rsplit_once(':').is_some() && port.is_none() {
            cx.report.at(
                p.r,
                &path,
                Code::IgnoredSetting,
                format!(
                    "{:?} has no valid port; the request's port is used",
                    o.authority
                ),
            );
        }
        let host = cx.fqdn(name, &p.r.namespace);
        if cx.service(&host).is_none() {
            cx.report.at(
                p.r,
                &path,
                Code::ReferencedResourceNotFound,
                format!("override {host} is not a service in the input; its share of requests fails with 503 (UH)"),
            );
        }
        items.push((
            Destination {
                host,
                subset: None,
                port,
            },
            o.weight,
        ));
    }
    weighted(items)
}

/// The routes of profile `p`, in order, each forwarding to `dests`, then a catch-all with the
/// same destinations and no timeout or retries, so requests no route matches still flow (as in
/// Linkerd, whose default route has neither).
pub(super) fn routes(
    cx: &mut Ctx<'_>,
    p: &Profile<'_>,
    dests: &[WeightedDestination],
) -> Vec<HttpRoute> {
    let mut out = Vec::new();
    for (i, spec) in p.sp.routes.iter().enumerate() {
        if let Some(route) = route(cx, p, i, spec, dests) {
            out.push(route);
        }
    }
    out.push(HttpRoute {
        matches: restrict(vec![], p.client_ns.as_deref()),
        action: RouteAction::Forward(dests.to_vec()),
        origin: super::super::source_ref(p.r),
        ..HttpRoute::default()
    });
    out
}

/// A client-side profile's matches only apply to callers in its namespace; an empty list (all
/// requests) becomes one match on the namespace alone.
fn restrict(mut matches: Vec<HttpMatch>, client_ns: Option<&str>) -> Vec<HttpMatch> {
    let Some(ns) = client_ns else { return matches };
    if matches.is_empty() {
        matches.push(HttpMatch::default());
    }
    for m in &mut matches {
        m.source_namespace = Some(ns.to_owned());
    }
    matches
}

/// One profile route; `None` (reported) when its condition cannot be represented or can never
/// match.
fn route(
    cx: &mut Ctx<'_>,
    p: &Profile<'_>,
    i: usize,
    spec: &RouteSpec,
    dests: &[WeightedDestination],
) -> Option<HttpRoute> {
    let base = format!("spec.routes[{i}]");
    let matches = match &spec.condition {
        None => vec![HttpMatch::default()],
        Some(c) => match conditions::request(c, &format!("{base}.condition")) {
            Ok(m) => m,
            Err(e) => {
                let msg = format!("route {:?} is skipped: {}", spec.name, e.why);
                cx.report.at(p.r, &e.path, Code::IgnoredSetting, msg);
                return None;
            }
        },
    };
    if matches.is_empty() {
        let msg = format!(
            "route {:?} is skipped: its condition requires two different methods at once and can never match",
            spec.name
        );
        cx.report
            .at(p.r, &format!("{base}.condition"), Code::IgnoredSetting, msg);
        return None;
    }
    let response_classes: Vec<ResponseClass> = spec
        .response_classes
        .iter()
        .filter_map(|rc| Some((rc.condition.as_ref()?, rc.is_failure.unwrap_or(false))))
        .flat_map(|(cond, is_failure)| classes(conditions::response(cond), is_failure))
        .collect();
    let mut route = HttpRoute {
        name: Some(spec.name.clone()),
        matches: restrict(matches, p.client_ns.as_deref()),
        action: RouteAction::Forward(dests.to_vec()),
        // Linkerd reads a zero timeout as "unset"; both mean its 10 s default.
        timeout: Some(
            spec.timeout
                .map(|t| t.as_std())
                .filter(|t| !t.is_zero())
                .unwrap_or(DEFAULT_ROUTE_TIMEOUT),
        ),
        response_classes,
        origin: super::super::source_ref(p.r),
        ..HttpRoute::default()
    };
    if spec.is_retryable == Some(true) {
        route.retry = Some(retry_policy(p.sp.retry_budget.as_ref(), &route));
    }
    Some(route)
}

/// Model response classes for one Linkerd class: one per status range, same verdict.
fn classes(ranges: Ranges, is_failure: bool) -> impl Iterator<Item = ResponseClass> {
    ranges
        .into_iter()
        .map(move |(status_min, status_max)| ResponseClass {
            status_min,
            status_max,
            is_failure,
        })
}

/// The retry policy of a retryable route. Linkerd retries responses its classifier calls failures
/// (the route's response classes, else 5xx; gRPC errors) and connection failures, for any method
/// (`isRetryable` declares the route safe to retry; bodies over 64 KiB are never retried, which
/// the proxy's replay buffer enforces), limited by the service's retry budget.
fn retry_policy(budget: Option<&RetryBudget>, route: &HttpRoute) -> RetryPolicy {
    let default = trellis_model::RetryBudget::default();
    let budget = trellis_model::RetryBudget {
        retry_ratio: budget
            .and_then(|b| b.retry_ratio)
            .unwrap_or(default.retry_ratio),
        min_retries_per_second: budget
            .and_then(|b| b.min_retries_per_second)
            .unwrap_or(default.min_retries_per_second),
        ttl: budget
            .and_then(|b| b.ttl)
            .map_or(default.ttl, |t| t.as_std()),
    };
    let failures: Vec<u16> = (100..=599).filter(|s| route.is_failure(*s)).collect();
    let mut retry_on = RetryOn {
        conditions: [RetryCondition::ConnectFailure, RetryCondition::Reset].into(),
        status_codes: Vec::new(),
    };
    retry_on.conditions.extend([
        RetryCondition::Cancelled,
        RetryCondition::DeadlineExceeded,
        RetryCondition::Internal,
        RetryCondition::ResourceExhausted,
        RetryCondition::Unavailable,
    ]);
    if failures == (500..=599).collect::<Vec<u16>>() {
        retry_on.conditions.insert(RetryCondition::FiveXx);
    } else if !failures.is_empty() {
        retry_on
            .conditions
            .insert(RetryCondition::RetriableStatusCodes);
        retry_on.status_codes = failures;
    }
    RetryPolicy {
        attempts: RETRYABLE_ATTEMPTS,
        retry_on,
        budget: Some(budget),
        retry_non_idempotent: true,
        ..RetryPolicy::default()
    }
}
