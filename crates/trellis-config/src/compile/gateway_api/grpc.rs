//! GRPCRoute rules -> model HTTP routes. A gRPC call is an HTTP/2 POST to
//! `/<package.Service>/<Method>`, so method matches become path matches and the rest (headers,
//! filters, weighted backends) is shared with HTTPRoute.

use super::super::Ctx;
use super::Lookup;
use super::http::{Rule, compile_rules, header_match};
use crate::resources::Resource;
use crate::resources::gateway_api::{
    GrpcBackendRef, GrpcMethodMatch, GrpcRoute, GrpcRouteFilter, GrpcRouteFilterType,
    GrpcRouteMatch, GrpcRouteRule, HeaderMatchType, HttpBackendRef, HttpRouteFilter,
    HttpRouteFilterType, HttpRouteRule,
};
use std::borrow::Cow;
use trellis_model::{HttpMatch, StringMatch};

/// Compile every rule of a GRPCRoute, one model route per match.
pub(super) fn compile(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    spec: &GrpcRoute,
) -> Vec<Rule> {
    let rules = spec.rules.iter().map(|rule| {
        let matches = rule.matches.iter().map(grpc_match).collect();
        (Cow::Owned(as_http_rule(rule)), matches)
    });
    compile_rules(cx, lk, r, rules, HttpMatch::default())
}

/// A GRPCRoute rule as the HTTPRoute rule it amounts to without its matches: the gRPC filter
/// types are a subset of HTTPRoute's with the same fields, backends are alike, and there are no
/// timeouts or retries.
fn as_http_rule(rule: &GrpcRouteRule) -> HttpRouteRule {
    let backend = |b: &GrpcBackendRef| HttpBackendRef {
        group: b.group.clone(),
        kind: b.kind.clone(),
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        port: b.port,
        weight: b.weight,
        filters: b.filters.iter().map(as_http_filter).collect(),
    };
    HttpRouteRule {
        name: rule.name.clone(),
        matches: Vec::new(),
        filters: rule.filters.iter().map(as_http_filter).collect(),
        backend_refs: rule.backend_refs.iter().map(backend).collect(),
        timeouts: None,
        retry: None,
        session_persistence: rule.session_persistence.clone(),
    }
}

fn as_http_filter(f: &GrpcRouteFilter) -> HttpRouteFilter {
    HttpRouteFilter {
        r#type: f.r#type.map(|t| match t {
            GrpcRouteFilterType::RequestHeaderModifier => {
                HttpRouteFilterType::RequestHeaderModifier
            }
            GrpcRouteFilterType::ResponseHeaderModifier => {
                HttpRouteFilterType::ResponseHeaderModifier
            }
            GrpcRouteFilterType::RequestMirror => HttpRouteFilterType::RequestMirror,
            GrpcRouteFilterType::ExtensionRef => HttpRouteFilterType::ExtensionRef,
        }),
        request_header_modifier: f.request_header_modifier.clone(),
        response_header_modifier: f.response_header_modifier.clone(),
        request_mirror: f.request_mirror.clone(),
        extension_ref: f.extension_ref.clone(),
        ..HttpRouteFilter::default()
    }
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
