//! Delegation: a root rule with `delegate:` is replaced by the HTTP rules of the delegate
//! VirtualService, merged with it as Istio merges them (`mergeHTTPRoute`):
//!
//! - each child match must lie within one of the root rule's matches (a child `uri` prefix must
//!   start with the root's prefix, headers and other conditions must not contradict); it is ANDed
//!   with every root match it lies within, the child's conditions winning. As in Istio, a child
//!   rule with a match that lies within no root match is ignored altogether (IST0131);
//! - settings the child rule does not have (timeout, retries, fault, mirrors, CORS, headers,
//!   rewrite) come from the root rule; names join as `root-child`.
//!
//! Child rules resolve hosts in the delegate's namespace and keep the delegate as their origin.

use super::budget::Budgets;
use super::http;
use crate::compile::Ctx;
use crate::diag::Code;
use crate::resources::istio_networking::{self as istio, VirtualService};
use crate::resources::{Kind, Resource, Spec};
use trellis_model::{HeaderMatch, HttpMatch, HttpRoute, QueryMatch, StringMatch};

/// The routes that replace the delegating rule `rule` at `path` of root `root`.
pub(super) fn expand(
    cx: &mut Ctx<'_>,
    budgets: &Budgets<'_>,
    root: &Resource,
    path: &str,
    rule: &istio::HttpRoute,
) -> Vec<HttpRoute> {
    let Some(d) = &rule.delegate else {
        return Vec::new();
    };
    let ns = d
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&root.namespace);
    // A missing delegate is reported by the analyzer (IST0101); the rule routes nothing.
    let Some((child_r, child)) = find(cx, ns, &d.name) else {
        return Vec::new();
    };
    let at = format!("{path}.delegate.name");
    if !child.is_delegate() {
        let msg = format!(
            "VirtualService {ns}/{} has hosts, so it is not a delegate; like Istio, this rule routes nothing",
            d.name
        );
        cx.report
            .at(root, &at, Code::ReferencedResourceNotFound, msg);
        return Vec::new();
    }
    if !exported(&child.export_to, &child_r.namespace, &root.namespace) {
        let msg = format!(
            "delegate VirtualService {ns}/{} is not exported to namespace {}; like Istio, this rule routes nothing",
            d.name, root.namespace
        );
        cx.report
            .at(root, &at, Code::ReferencedResourceNotFound, msg);
        return Vec::new();
    }
    let parent = http::route(cx, root, path, rule);
    let mut out = Vec::new();
    for (j, c) in child.http.iter().enumerate() {
        // Validation forbids delegating again from a delegate.
        if c.delegate.is_some() {
            continue;
        }
        let cpath = format!("spec.http[{j}]");
        let mut leaf = http::route(cx, child_r, &cpath, c);
        match merge_matches(&parent.matches, &leaf.matches) {
            Ok(m) => leaf.matches = m,
            Err(k) => {
                let msg = format!(
                    "this match does not lie within any match of {}'s rule {path}, which delegates here; like Istio, rule {cpath} is ignored there",
                    crate::compile::source_ref(root)
                );
                cx.report.at(
                    child_r,
                    &format!("{cpath}.match[{k}]"),
                    Code::IneffectiveMatch,
                    msg,
                );
                continue;
            }
        }
        inherit(&mut leaf, &parent, c);
        budgets.attach(&mut leaf, &[child_r, root]);
        out.push(leaf);
    }
    out
}

/// The VirtualService `namespace/name`.
fn find<'a>(
    cx: &Ctx<'a>,
    namespace: &str,
    name: &str,
) -> Option<(&'a Resource, &'a VirtualService)> {
    cx.of_kind(Kind::VirtualService)
        .find(|r| r.namespace == namespace && r.name == name)
        .and_then(|r| match &r.spec {
            Spec::VirtualService(vs) => Some((r, vs.as_ref())),
            _ => None,
        })
}

/// Whether a resource in `own` with `exportTo` is visible in namespace `to`.
fn exported(export_to: &[String], own: &str, to: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_str() {
            "*" => true,
            "." => own == to,
            "~" => false,
            ns => ns == to,
        })
}

/// Fill what the child rule leaves unset from the delegating root rule.
fn inherit(leaf: &mut HttpRoute, parent: &HttpRoute, c: &istio::HttpRoute) {
    leaf.name = match (&parent.name, &leaf.name) {
        (Some(p), Some(l)) => Some(format!("{p}-{l}")),
        (p, l) => l.clone().or_else(|| p.clone()),
    };
    if c.timeout.is_none() {
        leaf.timeout = parent.timeout;
    }
    if c.retries.is_none() {
        leaf.retry = parent.retry.clone();
    }
    if c.fault.is_none() {
        leaf.fault = parent.fault.clone();
    }
    if c.mirror.is_none() && c.mirrors.is_empty() {
        leaf.mirrors = parent.mirrors.clone();
    }
    if c.cors_policy.is_none() {
        leaf.cors = parent.cors.clone();
    }
    if c.headers.is_none() {
        leaf.request_headers = parent.request_headers.clone();
        leaf.response_headers = parent.response_headers.clone();
    }
    if leaf.rewrite.is_none() {
        leaf.rewrite = parent.rewrite.clone();
    }
}

/// The child's matches ANDed with the root's, or the index of a child match that lies within
/// none of them.
fn merge_matches(root: &[HttpMatch], leaf: &[HttpMatch]) -> Result<Vec<HttpMatch>, usize> {
    if root.is_empty() {
        return Ok(leaf.to_vec());
    }
    if leaf.is_empty() {
        return Ok(root.to_vec());
    }
    let mut out = Vec::new();
    for (k, l) in leaf.iter().enumerate() {
        let before = out.len();
        out.extend(root.iter().filter(|r| !conflict(r, l)).map(|r| merge(r, l)));
        if out.len() == before {
            return Err(k);
        }
    }
    Ok(out)
}

/// Istio's `stringMatchConflict`: the child condition does not narrow the root's (a child prefix
/// or exact path must start with the root's prefix; an exact root admits only itself; regexes
/// cannot be combined).
fn string_conflict(root: &Option<StringMatch>, leaf: &Option<StringMatch>) -> bool {
    use StringMatch::*;
    match (root, leaf) {
        (None, _) | (_, None) => false,
        (Some(Regex(_)), _) | (_, Some(Regex(_))) => true,
        // An exact root admits only the same exact path.
        (Some(Exact(_)), Some(Prefix(_) | PathPrefix(_))) => true,
        (Some(Exact(e)), Some(Exact(x))) => e != x,
        (Some(Prefix(p) | PathPrefix(p)), Some(Prefix(q) | PathPrefix(q) | Exact(q))) => {
            !q.starts_with(p.as_str())
        }
    }
}

/// Istio's `hasConflict`: whether child match `l` contradicts root match `r`.
fn conflict(r: &HttpMatch, l: &HttpMatch) -> bool {
    let strings = [
        (&r.uri, &l.uri),
        (&r.scheme, &l.scheme),
        (&r.method, &l.method),
        (&r.authority, &l.authority),
    ];
    if strings.iter().any(|(a, b)| string_conflict(a, b)) {
        return true;
    }
    let header_conflict = l.headers.iter().any(|lh| {
        r.headers.iter().any(|rh| {
            rh.name == lh.name && rh.invert == lh.invert && string_conflict(&rh.value, &lh.value)
        })
    });
    let query_conflict = l.query_params.iter().any(|lq| {
        r.query_params.iter().any(|rq| {
            rq.name == lq.name && string_conflict(&Some(rq.value.clone()), &Some(lq.value.clone()))
        })
    });
    let label_conflict = l
        .source_labels
        .iter()
        .any(|(k, v)| r.source_labels.get(k).is_some_and(|rv| rv != v));
    let gateways = !r.gateways.is_empty() && l.gateways.iter().any(|g| !r.gateways.contains(g));
    header_conflict
        || query_conflict
        || label_conflict
        || gateways
        || r.ignore_uri_case != l.ignore_uri_case
        || matches!((r.port, l.port), (Some(a), Some(b)) if a != b)
        || (r.source_namespace.is_some() && l.source_namespace != r.source_namespace)
}

/// Istio's `mergeHTTPMatchRequest`: the child's conditions, with the root's where the child has
/// none; header, query and label conditions are united (the child's win per name).
fn merge(r: &HttpMatch, l: &HttpMatch) -> HttpMatch {
    let mut headers: Vec<HeaderMatch> = r
        .headers
        .iter()
        .filter(|rh| {
            !l.headers
                .iter()
                .any(|lh| lh.name == rh.name && lh.invert == rh.invert)
        })
        .cloned()
        .collect();
    headers.extend(l.headers.iter().cloned());
    headers.sort_by(|a, b| (&a.name, a.invert).cmp(&(&b.name, b.invert)));
    let mut query_params: Vec<QueryMatch> = r
        .query_params
        .iter()
        .filter(|rq| !l.query_params.iter().any(|lq| lq.name == rq.name))
        .cloned()
        .collect();
    query_params.extend(l.query_params.iter().cloned());
    let mut source_labels = r.source_labels.clone();
    source_labels.extend(l.source_labels.clone());
    HttpMatch {
        uri: l.uri.clone().or_else(|| r.uri.clone()),
        method: l.method.clone().or_else(|| r.method.clone()),
        authority: l.authority.clone().or_else(|| r.authority.clone()),
        scheme: l.scheme.clone().or_else(|| r.scheme.clone()),
        headers,
        query_params,
        port: l.port.or(r.port),
        source_labels,
        source_namespace: l
            .source_namespace
            .clone()
            .or_else(|| r.source_namespace.clone()),
        gateways: if l.gateways.is_empty() {
            r.gateways.clone()
        } else {
            l.gateways.clone()
        },
        ignore_uri_case: l.ignore_uri_case,
    }
}
