//! One VirtualService HTTP rule as a model [`HttpRoute`]: matches, the action (forward, redirect or
//! direct response) and the per-rule policies (in `policy.rs`).

use super::l4::{destination, weight};
use super::{matches, policy};
use crate::compile::{Ctx, source_ref};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::istio_networking::{
    self as istio, HttpDirectResponse, HttpRedirect, HttpRouteDestination, RedirectPortSelection,
};
use trellis_model::{HttpRoute, PathRewrite, Redirect, RouteAction, WeightedDestination};

/// The rule at `path` (`spec.http[i]`) of `r`. Hosts resolve in `r`'s namespace; a `delegate:` is
/// left to the caller (the action is then an empty forward). No retry budget yet: that needs the
/// final destinations, which delegation may change.
pub(super) fn route(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    rule: &istio::HttpRoute,
) -> HttpRoute {
    let ns = r.namespace.as_str();
    let (request_headers, response_headers, authority) = policy::headers(rule.headers.as_ref());
    let mut rewrite = policy::rewrite(rule.rewrite.as_ref());
    if let Some(a) = authority {
        // Istio turns a request `host`/`:authority` header into an authority rewrite.
        let rw = rewrite.get_or_insert_with(Default::default);
        rw.authority.get_or_insert(a);
    }
    HttpRoute {
        name: rule.name.clone().filter(|n| !n.is_empty()),
        matches: rule
            .matches
            .iter()
            .enumerate()
            .map(|(j, m)| matches::http(cx, r, path, j, m))
            .collect(),
        action: action(cx, r, path, rule),
        // `0s` disables the timeout in Istio.
        timeout: rule.timeout.map(|t| t.as_std()).filter(|t| !t.is_zero()),
        retry: policy::retry(cx, r, &format!("{path}.retries"), rule.retries.as_ref()),
        fault: rule.fault.as_ref().and_then(policy::fault),
        mirrors: rule
            .effective_mirrors()
            .into_iter()
            .map(|(d, percent)| trellis_model::Mirror {
                destination: destination(cx, ns, d),
                percent,
            })
            .collect(),
        request_headers,
        response_headers,
        rewrite,
        cors: rule
            .cors_policy
            .as_ref()
            .map(|c| policy::cors(cx, r, &format!("{path}.corsPolicy"), c)),
        origin: source_ref(r),
        response_classes: Vec::new(),
    }
}

/// What the rule does with a matched request; `redirect` and `directResponse` answer locally
/// (Istio checks them in that order), otherwise the request is forwarded.
fn action(cx: &mut Ctx<'_>, r: &Resource, path: &str, rule: &istio::HttpRoute) -> RouteAction {
    if let Some(rd) = &rule.redirect {
        return RouteAction::Redirect(redirect(cx, r, &format!("{path}.redirect"), rd));
    }
    if let Some(dr) = &rule.direct_response {
        return direct_response(cx, r, &format!("{path}.directResponse"), dr);
    }
    RouteAction::Forward(forward(cx, &r.namespace, &rule.route))
}

/// Weighted destinations with their own header edits (a lone destination without a weight gets
/// 100, several with missing weights get 0 for those, as in Istio).
fn forward(
    cx: &Ctx<'_>,
    namespace: &str,
    route: &[HttpRouteDestination],
) -> Vec<WeightedDestination> {
    route
        .iter()
        .filter_map(|d| {
            let dest = d.destination.as_ref()?;
            let (request_headers, response_headers, _) = policy::headers(d.headers.as_ref());
            Some(WeightedDestination {
                destination: destination(cx, namespace, dest),
                weight: weight(route.len(), d.weight),
                request_headers,
                response_headers,
            })
        })
        .collect()
}

/// `redirect`: `uri` replaces the whole path, `prefixRewrite` the matched prefix; the code
/// defaults to 301.
fn redirect(cx: &mut Ctx<'_>, r: &Resource, path: &str, rd: &HttpRedirect) -> Redirect {
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let scheme = nonempty(&rd.scheme);
    let port = match (rd.port, rd.derive_port) {
        (Some(p), _) => u16::try_from(p).ok().filter(|p| *p != 0),
        // The port of the request is kept, which is what the model does for an unset port.
        (None, Some(RedirectPortSelection::FromRequestPort)) => None,
        (None, Some(RedirectPortSelection::FromProtocolDefault)) => match scheme.as_deref() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => {
                cx.report.at(
                    r,
                    &format!("{path}.derivePort"),
                    Code::IgnoredSetting,
                    "derivePort FROM_PROTOCOL_DEFAULT needs `scheme` here: without it Trellis keeps the request's port",
                );
                None
            }
        },
        (None, None) => None,
    };
    let path_rewrite = match (nonempty(&rd.uri), nonempty(&rd.prefix_rewrite)) {
        (Some(uri), _) => Some(PathRewrite::ReplaceFull(uri)),
        (None, Some(prefix)) => Some(PathRewrite::ReplacePrefix(prefix)),
        (None, None) => None,
    };
    Redirect {
        scheme,
        authority: nonempty(&rd.authority),
        port,
        path: path_rewrite,
        code: rd
            .redirect_code
            .filter(|c| *c != 0)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(301),
    }
}

/// `directResponse`: the status and a text body, or base64 `bytes` decoded. Bytes that are not
/// base64 of UTF-8 text cannot be held by the model, so their text is sent as written (TRL2005).
fn direct_response(
    cx: &mut Ctx<'_>,
    r: &Resource,
    path: &str,
    d: &HttpDirectResponse,
) -> RouteAction {
    let status = d.status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200);
    let body = d.body.as_ref().and_then(|b| {
        if let Some(s) = &b.string {
            return Some(s.clone());
        }
        let text = b.bytes.as_ref()?;
        match base64_decode(text).and_then(|v| String::from_utf8(v).ok()) {
            Some(decoded) => Some(decoded),
            None => {
                cx.report.at(
                    r,
                    &format!("{path}.body.bytes"),
                    Code::IgnoredSetting,
                    "body.bytes is not base64-encoded UTF-8 text, which is all Trellis can send; the text is sent as written",
                );
                Some(text.clone())
            }
        }
    });
    RouteAction::DirectResponse { status, body }
}

/// Decode standard or URL-safe base64, padded or not (protobuf JSON accepts all four); `None` if
/// `s` is not base64.
pub(super) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let body = s.trim().trim_end_matches('=');
    let sextet = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            acc |= sextet(c)? << (18 - 6 * k);
        }
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}
