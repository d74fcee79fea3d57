//! Per-route authorization: an AuthorizationPolicy targeting an HTTPRoute or GRPCRoute attached
//! to Servers allows only the requests the route matches, on those Servers' ports.
//!
//! Route matches become authorization operations: an `Exact` path is a path, a `PathPrefix` is
//! the prefix itself plus `prefix/*`, a method is a method, a gRPC service/method is the path
//! `/service/method`, and an exact header is a `request.headers[...]` condition. Regular
//! expressions and query parameters have no counterpart in authorization rules; a match using
//! them is reported and dropped, so the requests it covers are not authorized by this policy
//! (denied rather than wrongly allowed).

use super::super::Ctx;
use super::policy::ServerInfo;
use crate::diag::Code;
use crate::resources::gateway_api::{
    GrpcRouteMatch, HeaderMatchType, HttpRouteMatch, ParentReference, PathMatchType,
};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{AuthzCondition, AuthzOperation};

/// One allowed operation and the header conditions that go with it.
pub(super) type Op = (AuthzOperation, Vec<AuthzCondition>);

/// Every request to the Server's ports.
pub(super) fn whole(s: &ServerInfo<'_>) -> Op {
    (s.ports_op(), Vec::new())
}

/// The Servers the route `name` (of `kind`, in the policy's namespace) is attached to, each with
/// the route's operations on its ports.
pub(super) fn route_targets<'s, 'a>(
    cx: &mut Ctx<'_>,
    policy: &Resource,
    kind: Kind,
    name: &str,
    servers: &'s [ServerInfo<'a>],
) -> Vec<(&'s ServerInfo<'a>, Vec<Op>)> {
    let ns = policy.namespace.as_str();
    let Some(route) = super::of_kind(cx, kind).find(|r| r.namespace == ns && r.name == name) else {
        let msg = format!(
            "{} {name} not found in namespace {ns}; the policy authorizes nobody",
            kind.name()
        );
        cx.report.at(
            policy,
            "spec.targetRef.name",
            Code::ReferencedResourceNotFound,
            msg,
        );
        return Vec::new();
    };
    let (parents, ops): (&[ParentReference], Vec<Op>) = match &route.spec {
        Spec::HttpRoute(h) | Spec::LinkerdHttpRoute(h) => (
            &h.parent_refs,
            rule_ops(
                cx,
                route,
                h.rules.iter().map(|r| r.matches.as_slice()),
                http_op,
            ),
        ),
        Spec::GrpcRoute(g) => (
            &g.parent_refs,
            rule_ops(
                cx,
                route,
                g.rules.iter().map(|r| r.matches.as_slice()),
                grpc_op,
            ),
        ),
        _ => return Vec::new(),
    };
    let attached: Vec<&ServerInfo<'a>> = parents
        .iter()
        .filter(|p| p.group_kind() == ("policy.linkerd.io", "Server"))
        .filter_map(|p| {
            let pns = p.namespace.as_deref().unwrap_or(ns);
            servers
                .iter()
                .find(|s| s.r.namespace == pns && s.r.name == p.name)
        })
        .collect();
    if attached.is_empty() {
        let msg = format!(
            "{} {name} is attached to no usable Server; Linkerd authorizes routes only on inbound Servers, so the policy has no effect",
            kind.name()
        );
        cx.report
            .at(policy, "spec.targetRef", Code::IgnoredSetting, msg);
    }
    attached
        .into_iter()
        .map(|s| {
            let ops = ops
                .iter()
                .map(|(op, when)| {
                    (
                        AuthzOperation {
                            ports: s.ports.clone(),
                            ..op.clone()
                        },
                        when.clone(),
                    )
                })
                .collect();
            (s, ops)
        })
        .collect()
}

/// Operations of a route's rules, `op` turning one match into one operation; a rule without
/// matches matches everything, as does a route without rules.
fn rule_ops<'m, M: 'm>(
    cx: &mut Ctx<'_>,
    route: &Resource,
    rules: impl Iterator<Item = &'m [M]>,
    op: fn(&mut Ctx<'_>, &Resource, &str, &M) -> Option<Op>,
) -> Vec<Op> {
    let mut out = Vec::new();
    let mut any_rule = false;
    for (i, matches) in rules.enumerate() {
        any_rule = true;
        if matches.is_empty() {
            out.push((AuthzOperation::default(), Vec::new()));
        }
        for (j, m) in matches.iter().enumerate() {
            let path = format!("spec.rules[{i}].matches[{j}]");
            if let Some(op) = op(cx, route, &path, m) {
                out.push(op);
            }
        }
    }
    if !any_rule {
        out.push((AuthzOperation::default(), Vec::new()));
    }
    out
}

/// One HTTPRoute match as an operation; `None` (reported) when it uses what rules cannot.
fn http_op(cx: &mut Ctx<'_>, route: &Resource, path: &str, m: &HttpRouteMatch) -> Option<Op> {
    let mut op = AuthzOperation::default();
    if let Some(p) = &m.path {
        let v = p.effective_value();
        match p.effective_type() {
            PathMatchType::Exact => op.paths.push(v.to_owned()),
            PathMatchType::PathPrefix => {
                let v = v.trim_end_matches('/');
                if !v.is_empty() {
                    op.paths = vec![v.to_owned(), format!("{v}/*")];
                }
            }
            PathMatchType::RegularExpression => {
                return unusable(
                    cx,
                    route,
                    &format!("{path}.path"),
                    "a regular-expression path",
                );
            }
        }
    }
    if let Some(method) = m.method {
        op.methods.push(method.as_str().to_owned());
    }
    if !m.query_params.is_empty() {
        return unusable(
            cx,
            route,
            &format!("{path}.queryParams"),
            "query parameters",
        );
    }
    let headers = m
        .headers
        .iter()
        .map(|h| (h.r#type, h.name.as_str(), h.value.as_str()));
    let when = header_conditions(cx, route, &format!("{path}.headers"), headers)?;
    Some((op, when))
}

/// One GRPCRoute match as an operation: service and method are the request path. `None`
/// (reported) when it uses what rules cannot.
fn grpc_op(cx: &mut Ctx<'_>, route: &Resource, path: &str, m: &GrpcRouteMatch) -> Option<Op> {
    let mut op = AuthzOperation::default();
    if let Some(mm) = &m.method {
        if mm.r#type.unwrap_or_default() == HeaderMatchType::RegularExpression {
            return unusable(
                cx,
                route,
                &format!("{path}.method"),
                "a regular-expression method",
            );
        }
        match (mm.service.as_deref(), mm.method.as_deref()) {
            (Some(s), Some(m)) => op.paths.push(format!("/{s}/{m}")),
            (Some(s), None) => op.paths.push(format!("/{s}/*")),
            (None, Some(m)) => op.paths.push(format!("*/{m}")),
            (None, None) => {}
        }
    }
    let headers = m
        .headers
        .iter()
        .map(|h| (h.r#type, h.name.as_str(), h.value.as_str()));
    let when = header_conditions(cx, route, &format!("{path}.headers"), headers)?;
    Some((op, when))
}

/// Exact header matches as conditions; `None` (reported) when one is a regular expression.
fn header_conditions<'h>(
    cx: &mut Ctx<'_>,
    route: &Resource,
    path: &str,
    headers: impl Iterator<Item = (Option<HeaderMatchType>, &'h str, &'h str)>,
) -> Option<Vec<AuthzCondition>> {
    let mut when = Vec::new();
    for (k, (kind, name, value)) in headers.enumerate() {
        if kind.unwrap_or_default() == HeaderMatchType::RegularExpression {
            return unusable(
                cx,
                route,
                &format!("{path}[{k}]"),
                "a regular-expression header match",
            );
        }
        when.push(AuthzCondition {
            key: format!("request.headers[{}]", name.to_ascii_lowercase()),
            values: vec![value.to_owned()],
            not_values: Vec::new(),
        });
    }
    Some(when)
}

/// Report a match authorization rules cannot express; the match authorizes nothing.
fn unusable<T>(cx: &mut Ctx<'_>, route: &Resource, path: &str, what: &str) -> Option<T> {
    let msg = format!(
        "{what} cannot be used for authorization: requests this match covers are not authorized by policies targeting this route"
    );
    cx.report.at(route, path, Code::IgnoredSetting, msg);
    None
}
