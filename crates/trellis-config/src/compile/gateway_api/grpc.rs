//! GRPCRoute rules -> model HTTP routes. A gRPC call is an HTTP/2 POST to
//! `/<package.Service>/<Method>`, so method matches become path matches and the rest (headers,
//! filters, weighted backends) is shared with HTTPRoute.

use super::super::{Ctx, source_ref};
use super::Lookup;
use super::backends::{self, backend_object};
use super::filters;
use super::http::{Rule, header_match};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::{
    GrpcBackendRef, GrpcMethodMatch, GrpcRoute, GrpcRouteFilter, GrpcRouteFilterType,
    GrpcRouteMatch, HeaderMatchType,
};
use trellis_model::{HttpMatch, HttpRoute, RouteAction, StringMatch, WeightedDestination};

/// Compile every rule of a GRPCRoute, one model route per match.
pub(super) fn compile(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &GrpcRoute,
) -> Vec<Rule> {
    let mut out = Vec::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        let mut route = HttpRoute {
            name: rule.name.clone(),
            origin: source_ref(r),
            ..HttpRoute::default()
        };
        apply_filters(cx, lk, r, &path, &rule.filters, &mut route);
        let default_to_parent = rule.backend_refs.is_empty();
        route.action = if default_to_parent {
            RouteAction::Forward(Vec::new())
        } else {
            let dests = rule
                .backend_refs
                .iter()
                .enumerate()
                .filter_map(|(j, b)| destination(cx, lk, r, &format!("{path}.backendRefs[{j}]"), b))
                .collect();
            backends::forward(dests)
        };
        if rule.session_persistence.is_some() {
            cx.report.at(
                r,
                &format!("{path}.sessionPersistence"),
                Code::IgnoredSetting,
                "sessionPersistence is accepted but not enforced by Trellis (use a DestinationRule consistent hash for sticky sessions)",
            );
        }
        let matches: Vec<HttpMatch> = if rule.matches.is_empty() {
            vec![HttpMatch::default()]
        } else {
            rule.matches.iter().map(grpc_match).collect()
        };
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

/// Rule filters: header edits and mirrors; `ExtensionRef` is reported.
fn apply_filters(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    list: &[GrpcRouteFilter],
    route: &mut HttpRoute,
) {
    for (j, f) in list.iter().enumerate() {
        let at = format!("{path}.filters[{j}]");
        match f.r#type {
            Some(GrpcRouteFilterType::RequestHeaderModifier) => {
                filters::merge_ops(
                    &mut route.request_headers,
                    f.request_header_modifier.as_ref(),
                );
            }
            Some(GrpcRouteFilterType::ResponseHeaderModifier) => {
                filters::merge_ops(
                    &mut route.response_headers,
                    f.response_header_modifier.as_ref(),
                );
            }
            Some(GrpcRouteFilterType::RequestMirror) => {
                if let Some(m) = f
                    .request_mirror
                    .as_ref()
                    .and_then(|m| filters::mirror(cx, lk, r, &at, m))
                {
                    route.mirrors.push(m);
                }
            }
            Some(GrpcRouteFilterType::ExtensionRef) => {
                filters::not_enforced(cx, r, &at, "ExtensionRef")
            }
            None => {}
        }
    }
}

/// A weighted backend with its own header edits.
fn destination(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    b: &GrpcBackendRef,
) -> Option<WeightedDestination> {
    let dest = backends::resolve(cx, lk, r, path, &backend_object!(b))?;
    let mut wd = WeightedDestination::new(dest, backends::weight(b.effective_weight()));
    for (k, f) in b.filters.iter().enumerate() {
        match f.r#type {
            Some(GrpcRouteFilterType::RequestHeaderModifier) => filters::merge_ops(&mut wd.request_headers, f.request_header_modifier.as_ref()),
            Some(GrpcRouteFilterType::ResponseHeaderModifier) => filters::merge_ops(&mut wd.response_headers, f.response_header_modifier.as_ref()),
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

/// One `GRPCRouteMatch`: method as a path condition, headers as header conditions.
fn grpc_match(m: &GrpcRouteMatch) -> HttpMatch {
    HttpMatch {
        uri: m.method.as_ref().and_then(method_path),
        headers: m
            .headers
            .iter()
            .map(|h| header_match(&h.name, h.r#type, &h.value))
            .collect(),
        ..HttpMatch::default()
    }
}

/// The path condition of a method match: both parts exact -> `Exact /svc/Method`; service
/// only -> `PathPrefix /svc/`; method only -> a regex over any service; `RegularExpression`
/// -> a regex of the two parts (`[^/]+` for an unset part).
fn method_path(m: &GrpcMethodMatch) -> Option<StringMatch> {
    let service = m.service.as_deref().filter(|s| !s.is_empty());
    let method = m.method.as_deref().filter(|s| !s.is_empty());
    Some(match m.r#type.unwrap_or_default() {
        HeaderMatchType::Exact => match (service, method) {
            (Some(s), Some(m)) => StringMatch::Exact(format!("/{s}/{m}")),
            (Some(s), None) => StringMatch::PathPrefix(format!("/{s}/")),
            (None, Some(m)) => StringMatch::Regex(format!("/[^/]+/{}", regex::escape(m))),
            (None, None) => return None,
        },
        HeaderMatchType::RegularExpression => {
            if service.is_none() && method.is_none() {
                return None;
            }
            StringMatch::Regex(format!(
                "/(?:{})/(?:{})",
                service.unwrap_or("[^/]+"),
                method.unwrap_or("[^/]+")
            ))
        }
    })
}
