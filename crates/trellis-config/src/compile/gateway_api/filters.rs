//! HTTPRoute and GRPCRoute filters -> model route fields: header edits, mirrors, redirects,
//! rewrites and CORS. Filters with no place in the model are reported as not enforced.

use super::super::Ctx;
use super::Lookup;
use super::backends::{self, backend_object};
use crate::diag::Code;
use crate::resources::Resource;
use crate::resources::gateway_api::{
    CorsMethod, HttpCorsFilter, HttpHeaderFilter, HttpPathModifier, HttpPathModifierType,
    HttpRequestMirrorFilter, HttpRequestRedirectFilter, HttpRouteFilter, HttpRouteFilterType,
    HttpUrlRewriteFilter, RedirectScheme,
};
use std::time::Duration;
use trellis_model::{
    CorsPolicy, HeaderOps, HttpRoute, Mirror, PathRewrite, Redirect, Rewrite, StringMatch,
};

/// Apply a rule's HTTPRoute filters to `route`; returns the redirect when the rule answers
/// with one instead of forwarding.
pub(super) fn apply_http(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    path: &str,
    filters: &[HttpRouteFilter],
    route: &mut HttpRoute,
) -> Option<Redirect> {
    let mut redirect = None;
    for (j, f) in filters.iter().enumerate() {
        let at = format!("{path}.filters[{j}]");
        match f.r#type {
            Some(HttpRouteFilterType::RequestHeaderModifier) => {
                merge_ops(
                    &mut route.request_headers,
                    f.request_header_modifier.as_ref(),
                );
            }
            Some(HttpRouteFilterType::ResponseHeaderModifier) => {
                merge_ops(
                    &mut route.response_headers,
                    f.response_header_modifier.as_ref(),
                );
            }
            Some(HttpRouteFilterType::RequestMirror) => {
                if let Some(m) = f
                    .request_mirror
                    .as_ref()
                    .and_then(|m| mirror(cx, lk, r, &at, m))
                {
                    route.mirrors.push(m);
                }
            }
            Some(HttpRouteFilterType::RequestRedirect) => {
                redirect = f.request_redirect.as_ref().map(to_redirect)
            }
            Some(HttpRouteFilterType::UrlRewrite) => {
                route.rewrite = f.url_rewrite.as_ref().map(to_rewrite)
            }
            Some(HttpRouteFilterType::Cors) => route.cors = f.cors.as_ref().map(to_cors),
            Some(t @ (HttpRouteFilterType::ExtensionRef | HttpRouteFilterType::ExternalAuth)) => {
                not_enforced(cx, r, &at, t.as_str())
            }
            None => {}
        }
    }
    redirect
}

/// Report a filter the model cannot express.
pub(super) fn not_enforced(cx: &mut Ctx<'_>, r: &Resource, at: &str, filter: &str) {
    cx.report.at(
        r,
        at,
        Code::IgnoredSetting,
        format!("the {filter} filter is accepted but not enforced by Trellis"),
    );
}

/// Add a header filter's edits to `ops`.
pub(super) fn merge_ops(ops: &mut HeaderOps, f: Option<&HttpHeaderFilter>) {
    let Some(f) = f else { return };
    ops.set
        .extend(f.set.iter().map(|h| (h.name.clone(), h.value.clone())));
    ops.add
        .extend(f.add.iter().map(|h| (h.name.clone(), h.value.clone())));
    ops.remove.extend(f.remove.iter().cloned());
}

/// A mirror to the filter's backend, if the route may use that backend.
pub(super) fn mirror(
    cx: &mut Ctx<'_>,
    lk: &Lookup<'_>,
    r: &Resource,
    at: &str,
    m: &HttpRequestMirrorFilter,
) -> Option<Mirror> {
    let b = &m.backend_ref;
    let destination = backends::resolve(
        cx,
        lk,
        r,
        &format!("{at}.requestMirror.backendRef"),
        &backend_object!(b),
    )?;
    Some(Mirror {
        destination,
        percent: (m.ratio() * 100.0).clamp(0.0, 100.0),
    })
}

/// `RequestRedirect`: unset parts keep the request's value, except that a scheme without a port
/// implies the scheme's well-known port (the Gateway API's rule), and the status defaults to 302.
fn to_redirect(f: &HttpRequestRedirectFilter) -> Redirect {
    let scheme = f.scheme.map(|s| match s {
        RedirectScheme::Http => "http",
        RedirectScheme::Https => "https",
    });
    let port = f.port.and_then(|p| u16::try_from(p).ok()).or(match scheme {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    });
    Redirect {
        scheme: scheme.map(str::to_owned),
        authority: f.hostname.clone(),
        port,
        path: f.path.as_ref().and_then(path_modifier),
        code: f
            .status_code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(302),
    }
}

/// `URLRewrite`: new host and/or path before forwarding.
fn to_rewrite(f: &HttpUrlRewriteFilter) -> Rewrite {
    Rewrite {
        path: f.path.as_ref().and_then(path_modifier),
        authority: f.hostname.clone(),
    }
}

/// `ReplaceFullPath` / `ReplacePrefixMatch`, shared by redirects and rewrites.
fn path_modifier(p: &HttpPathModifier) -> Option<PathRewrite> {
    match p.r#type? {
        HttpPathModifierType::ReplaceFullPath => {
            p.replace_full_path.clone().map(PathRewrite::ReplaceFull)
        }
        HttpPathModifierType::ReplacePrefixMatch => p
            .replace_prefix_match
            .clone()
            .map(PathRewrite::ReplacePrefix),
    }
}

/// The CORS filter. Origins may be `*` or contain a `*` wildcard for the host part; those
/// become anchored regexes. `maxAge` defaults to 5 seconds, as in the CRD.
fn to_cors(f: &HttpCorsFilter) -> CorsPolicy {
    let origin = |o: &String| {
        if o == "*" {
            StringMatch::Regex(".*".into())
        } else if o.contains('*') {
            let parts: Vec<String> = o.split('*').map(regex::escape).collect();
            StringMatch::Regex(parts.join("[^/]+"))
        } else {
            StringMatch::Exact(o.clone())
        }
    };
    let method = |m: &CorsMethod| {
        match m {
            CorsMethod::Get => "GET",
            CorsMethod::Head => "HEAD",
            CorsMethod::Post => "POST",
            CorsMethod::Put => "PUT",
            CorsMethod::Delete => "DELETE",
            CorsMethod::Connect => "CONNECT",
            CorsMethod::Options => "OPTIONS",
            CorsMethod::Trace => "TRACE",
            CorsMethod::Patch => "PATCH",
            CorsMethod::Any => "*",
        }
        .to_owned()
    };
    let max_age = u64::try_from(f.max_age.unwrap_or(5)).unwrap_or(0);
    CorsPolicy {
        allow_origins: f.allow_origins.iter().map(origin).collect(),
        allow_methods: f.allow_methods.iter().map(method).collect(),
        allow_headers: f.allow_headers.clone(),
        expose_headers: f.expose_headers.clone(),
        max_age: Some(Duration::from_secs(max_age)),
        allow_credentials: f.allow_credentials,
    }
}
