//! Responses the proxy writes itself: errors carrying a response flag, redirects and
//! direct responses. Off the forwarding fast path, so they may format strings.

use ::http::header::{CONTENT_TYPE, LOCATION};
use ::http::{HeaderValue, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{Either, Full};
use trellis_model::{HttpRoute, PathRewrite, Redirect};

use super::{FLAGS_HEADER, ProxyBody};
use crate::route::RequestView;
use crate::telemetry::ResponseFlag;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// A local error for `flag`: its status (Envoy's choice), `x-trellis-flags: <code>` and a
/// body naming the flag, its reason and `detail`, so a client can tell a proxy error
/// from an upstream one. The flag also rides in the response's extensions.
pub fn error(flag: ResponseFlag, detail: &str) -> Response<ProxyBody> {
    let status = flag
        .local_status()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    tracing::debug!(flag = flag.code(), detail, "local error response");
    let body = format!("{}: {} ({detail})\n", flag.code(), flag.reason());
    flagged(status, flag, body)
}

/// A local response with a chosen `status` and `body` that carries `flag` like
/// [`error`] does (header and extension); for answers whose status the configuration
/// decides, such as injected faults.
pub fn flagged(
    status: StatusCode,
    flag: ResponseFlag,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut resp = text(status, body.into());
    resp.headers_mut()
        .insert(FLAGS_HEADER, HeaderValue::from_static(flag.code()));
    // For telemetry: the listener moves it into the request's `Exchange`.
    resp.extensions_mut().insert(flag);
    resp
}

/// A route's `direct_response`: `status` with `body` as text.
pub fn direct(status: u16, body: Option<&str>) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(b.as_bytes()));
    text(status, body)
}

/// A route's `redirect`: the request URL with the configured parts replaced, in
/// `Location`, with the configured status. The query string is kept (as Envoy does).
pub fn redirect(
    route: &HttpRoute,
    redirect: &Redirect,
    req: &RequestView<'_>,
) -> Response<ProxyBody> {
    let scheme = redirect.scheme.as_deref().unwrap_or(req.scheme);
    let host = redirect.authority.as_deref().unwrap_or(req.authority);
    // An explicit port in the request survives unless the scheme changes.
    let explicit_port = crate::route::split_authority(raw_authority(req)).1;
    let port = redirect
        .port
        .or(explicit_port.filter(|_| redirect.scheme.is_none()));
    let path = match &redirect.path {
        None => req.path.to_owned(),
        Some(PathRewrite::ReplaceFull(p)) => p.clone(),
        Some(PathRewrite::ReplacePrefix(p)) => super::rewrite::replace_prefix(
            route.matches.iter().filter_map(|m| m.uri.as_ref()),
            req.path,
            p,
        ),
        Some(PathRewrite::Regex { .. }) => {
            return error(
                ResponseFlag::NoRoute,
                "regex redirect paths are not supported",
            );
        }
    };
    let mut location = format!("{scheme}://{host}");
    if let Some(port) = port {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(q) = req.query {
        location.push('?');
        location.push_str(q);
    }
    let status = StatusCode::from_u16(redirect.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = text(status, Bytes::new());
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(LOCATION, v);
            resp
        }
        Err(_) => error(
            ResponseFlag::NoRoute,
            "redirect location is not a valid header",
        ),
    }
}

/// The authority as the client wrote it (with any port), for redirects.
fn raw_authority<'a>(req: &RequestView<'a>) -> &'a str {
    req.headers
        .get(::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(req.authority)
}

fn text(status: StatusCode, body: Bytes) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, TEXT);
    resp
}
