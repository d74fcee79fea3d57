//! Match conditions of VirtualService rules (`HTTPMatchRequest`, `L4MatchAttributes`,
//! `TLSMatchAttributes`) in model form, gateway names as `namespace/name`, and the filtering of
//! matches by where routes are attached.

use crate::compile::Ctx;
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::common::StringMatch as IstioMatch;
use crate::resources::istio_networking::{HttpMatchRequest, L4MatchAttributes, TlsMatchAttributes};
use std::collections::BTreeMap;
use trellis_model::{
    HeaderMatch, HttpMatch, HttpRoute, L4Match, QueryMatch, StringMatch, TcpRoute, TlsMatch,
    TlsRoute,
};

/// Istio's `StringMatch`; `None` for an empty one (`{}`), which matches anything.
pub(super) fn string_match(m: &IstioMatch) -> Option<StringMatch> {
    if let Some(e) = &m.exact {
        Some(StringMatch::Exact(e.clone()))
    } else if let Some(p) = &m.prefix {
        // Istio prefixes are byte prefixes: `/api` matches `/apis`.
        Some(StringMatch::Prefix(p.clone()))
    } else {
        m.regex.as_ref().map(|r| StringMatch::Regex(r.0.clone()))
    }
}

/// A gateway reference as `namespace/name`: `ns/name`, the legacy `name.ns[.svc...]`, or a bare
/// name in the VirtualService's namespace (`mesh` stays `mesh`). The analyzer resolves the same way.
pub(super) fn gateway_key(g: &str, namespace: &str) -> String {
    if g == "mesh" {
        return g.to_owned();
    }
    match g.split_once('/') {
        Some((ns, name)) => format!("{ns}/{name}"),
        None => {
            let mut labels = g.split('.');
            match (labels.next(), labels.next()) {
                (Some(name), Some(ns)) => format!("{ns}/{name}"),
                _ => format!("{namespace}/{g}"),
            }
        }
    }
}

/// `match.gateways` as `namespace/name` keys, comparable with where routes are attached.
fn gateway_keys(list: &[String], namespace: &str) -> Vec<String> {
    list.iter()
        .filter(|g| !g.is_empty())
        .map(|g| gateway_key(g, namespace))
        .collect()
}

/// A port number; 0 and out-of-range values mean "no condition" (validation reports them).
fn port(p: Option<u32>) -> Option<u16> {
    p.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)
}

/// Istio treats an empty string as unset.
fn nonempty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

/// Header conditions, sorted by name: `headers` must match (an empty match means "present"),
/// `withoutHeaders` must not (an empty one means "absent").
fn headers(
    with: &BTreeMap<String, IstioMatch>,
    without: &BTreeMap<String, IstioMatch>,
) -> Vec<HeaderMatch> {
    let mut out: Vec<HeaderMatch> = with
        .iter()
        .map(|(n, m)| (n, m, false))
        .chain(without.iter().map(|(n, m)| (n, m, true)))
        .map(|(name, m, invert)| HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: string_match(m),
            invert,
        })
        .collect();
    out.sort_by(|a, b| (&a.name, a.invert).cmp(&(&b.name, b.invert)));
    out
}

/// One `HTTPMatchRequest` of the rule at `path` (`spec.http[i]`), as match `j`.
pub(super) fn http(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    j: usize,
    m: &HttpMatchRequest,
) -> HttpMatch {
    if m.stat_prefix.as_deref().is_some_and(|s| !s.is_empty()) {
        cx.report.at(
            r,
            &format!("{path}.match[{j}].statPrefix"),
            Code::IgnoredSetting,
            "statPrefix is not supported: route metrics are labelled with the route name",
        );
    }
    let query_params = m
        .query_params
        .iter()
        .map(|(name, v)| QueryMatch {
            name: name.clone(),
            // `{}` asks only for the parameter to be present: any value, even empty.
            value: string_match(v).unwrap_or_else(|| StringMatch::Regex(".*".into())),
        })
        .collect();
    HttpMatch {
        uri: m.uri.as_ref().and_then(string_match),
        method: m.method.as_ref().and_then(string_match),
        authority: m.authority.as_ref().and_then(string_match),
        scheme: m.scheme.as_ref().and_then(string_match),
        headers: headers(&m.headers, &m.without_headers),
        query_params,
        port: port(m.port),
        source_labels: m.source_labels.clone(),
        source_namespace: nonempty(&m.source_namespace),
        gateways: gateway_keys(&m.gateways, &r.namespace),
        ignore_uri_case: m.ignore_uri_case,
    }
}

/// A TCP rule's `L4MatchAttributes` at `at` (`spec.tcp[i].match[j]`).
pub(super) fn l4(cx: &mut Ctx<'_>, r: &Resource, at: &str, m: &L4MatchAttributes) -> L4Match {
    if m.source_subnet.as_deref().is_some_and(|s| !s.is_empty()) {
        cx.report.at(
            r,
            &format!("{at}.sourceSubnet"),
            Code::IgnoredSetting,
            "sourceSubnet is not supported: the rule matches connections from any address",
        );
    }
    L4Match {
        port: port(m.port),
        destination_subnets: m.destination_subnets.clone(),
        source_labels: m.source_labels.clone(),
        gateways: gateway_keys(&m.gateways, &r.namespace),
        source_namespace: nonempty(&m.source_namespace),
    }
}

/// A TLS rule's `TLSMatchAttributes`.
pub(super) fn tls(r: &Resource, m: &TlsMatchAttributes) -> TlsMatch {
    TlsMatch {
        sni_hosts: m
            .sni_hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        port: port(m.port),
        destination_subnets: m.destination_subnets.clone(),
        source_labels: m.source_labels.clone(),
        gateways: gateway_keys(&m.gateways, &r.namespace),
        source_namespace: nonempty(&m.source_namespace),
    }
}

/// Whether a match naming `gateways` can match where its route is attached (`at`).
fn applies(gateways: &[String], at: &str) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| g == at)
}

/// Keep only the matches of `list` that can match at `at`; `None` when the rule had matches and
/// none is left (an empty list would match everything instead of nothing).
fn keep<M: Clone>(list: &[M], gateways: impl Fn(&M) -> &[String], at: &str) -> Option<Vec<M>> {
    if list.is_empty() {
        return Some(Vec::new());
    }
    let kept: Vec<M> = list
        .iter()
        .filter(|m| applies(gateways(m), at))
        .cloned()
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// `route` as it applies at `at`, or `None` if it never can.
pub(super) fn keep_http(route: &HttpRoute, at: &str) -> Option<HttpRoute> {
    let matches = keep(&route.matches, |m| &m.gateways, at)?;
    Some(HttpRoute {
        matches,
        ..route.clone()
    })
}

/// `route` as it applies at `at`, or `None` if it never can.
pub(super) fn keep_tcp(route: &TcpRoute, at: &str) -> Option<TcpRoute> {
    let matches = keep(&route.matches, |m| &m.gateways, at)?;
    Some(TcpRoute {
        matches,
        ..route.clone()
    })
}

/// `route` as it applies at `at`, or `None` if it never can.
pub(super) fn keep_tls(route: &TlsRoute, at: &str) -> Option<TlsRoute> {
    let matches = keep(&route.matches, |m| &m.gateways, at)?;
    Some(TlsRoute {
        matches,
        ..route.clone()
    })
}
