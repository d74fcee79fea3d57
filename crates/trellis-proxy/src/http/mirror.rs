//! Request mirroring (`HttpRoute::mirrors`): a copy of a share of a route's requests goes
//! to each mirror destination, fire-and-forget, as Envoy's request shadowing does. The
//! copy is the request as it is sent upstream (after header edits and rewrites) with
//! `-shadow` appended to the host part of its `Host`, sent from its own task: the
//! primary never waits for it, and the mirror's answer or failure is only logged (debug).
//!
//! Bodies: a request is mirrored only when its body is empty, or of known length up to
//! [`MAX_MIRROR_BODY`]; such a body is read once and the same bytes go to the primary and
//! every mirror. Larger or streamed bodies, and upgrade requests, are not mirrored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::header::{self, HeaderValue};
use ::http::request::Parts;
use ::http::uri::{Authority, Scheme};
use ::http::{Request, Uri, Version};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Body;

use super::body::{ClientBody, ClientBodyError};
use super::fault::Percent;
use super::{HttpProxy, RequestBody};
use crate::balance::PickContext;
use crate::route::split_authority;
use crate::runtime::{BackendSet, Upstream};

/// Largest request body that is buffered so it can be mirrored (the same bound as for
/// replaying a body on retry).
pub const MAX_MIRROR_BODY: u64 = 64 * 1024;

/// How long a mirrored request may take when its route has no timeout (Envoy bounds
/// shadows by the route timeout too); keeps a stuck mirror from holding a task forever.
pub const DEFAULT_MIRROR_TIMEOUT: Duration = Duration::from_secs(30);

/// One mirror destination of a route, prepared.
#[derive(Debug, Clone)]
pub struct MirrorRuntime {
    /// The destination's service host, for logs.
    host: Arc<str>,
    /// The destination's backends; `None` when the mesh has no such service (the copy
    /// is then skipped and logged).
    backends: Option<Arc<BackendSet>>,
    /// The destination's explicit port, if any.
    port: Option<u16>,
    percent: Percent,
}

impl MirrorRuntime {
    /// Prepares a mirror to `host` (with its `backends` and `port`) for `percent` % of
    /// requests. Returns `None` for 0 %, so such a mirror costs nothing per request.
    pub fn new(
        host: &str,
        backends: Option<Arc<BackendSet>>,
        port: Option<u16>,
        percent: f64,
    ) -> Option<MirrorRuntime> {
        let percent = Percent::new(percent);
        (!percent.is_zero()).then(|| MirrorRuntime {
            host: host.into(),
            backends,
            port,
            percent,
        })
    }
}

/// Sends copies of `req` to the `mirrors` that sample it and returns the request for the
/// primary. When no mirror samples the request, it is returned untouched (no copy, no
/// allocation). `request_port` is the port the client addressed (for destinations
/// without a port); `timeout` bounds each copy (else [`DEFAULT_MIRROR_TIMEOUT`]). Routes
/// without mirrors do not call it (`forward` skips the await and its moves of the request).
pub(super) async fn fork(
    proxy: &HttpProxy,
    mirrors: &[MirrorRuntime],
    req: Request<ClientBody>,
    request_port: Option<u16>,
    timeout: Option<Duration>,
) -> Result<Request<RequestBody>, ClientBodyError> {
    let random: u64 = rand::random();
    // One 32-bit half per mirror for the first two, a fresh number for any further.
    // Allocates only when some mirror samples the request (an empty Vec does not).
    let sampled: Vec<&MirrorRuntime> = mirrors
        .iter()
        .enumerate()
        .filter(|&(i, m)| {
            // Truncation intended: one 32-bit half per mirror for the first two.
            let r = match i {
                0 => random as u32,
                1 => (random >> 32) as u32,
                _ => rand::random(),
            };
            m.percent.selects(r)
        })
        .map(|(_, m)| m)
        .collect();
    if sampled.is_empty() || req.headers().contains_key(header::UPGRADE) {
        return Ok(req.map(Either::Left));
    }
    let (parts, body) = req.into_parts();
    let (body, primary): (Bytes, RequestBody) = if body.is_end_stream() {
        (Bytes::new(), Either::Left(body))
    } else {
        match body.size_hint().exact() {
            Some(n) if n <= MAX_MIRROR_BODY => {
                let bytes = body.collect().await?.to_bytes();
                (bytes.clone(), Either::Right(Full::new(bytes)))
            }
            _ => {
                tracing::debug!("request body too large or streamed; not mirrored");
                return Ok(Request::from_parts(parts, Either::Left(body)));
            }
        }
    };
    let shadow_host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(shadow_host);
    let limit = timeout.unwrap_or(DEFAULT_MIRROR_TIMEOUT);
    for mirror in sampled {
        send(
            proxy,
            mirror,
            &parts,
            &body,
            shadow_host.as_ref(),
            request_port,
            limit,
        );
    }
    Ok(Request::from_parts(parts, primary))
}

/// `Host` with `-shadow` appended to the host part (`reviews:9080` becomes
/// `reviews-shadow:9080`), as Envoy names shadow traffic.
pub fn shadow_host(host: &str) -> Option<HeaderValue> {
    let (name, port) = split_authority(host);
    let value = match port {
        Some(p) => format!("{name}-shadow:{p}"),
        None => format!("{name}-shadow"),
    };
    HeaderValue::from_str(&value).ok()
}

/// Picks an endpoint of `mirror` and sends one copy from a spawned task.
fn send(
    proxy: &HttpProxy,
    mirror: &MirrorRuntime,
    parts: &Parts,
    body: &Bytes,
    shadow_host: Option<&HeaderValue>,
    request_port: Option<u16>,
    limit: Duration,
) {
    let Some(backend) = mirror
        .backends
        .as_ref()
        .and_then(|set| set.for_port(mirror.port, request_port))
    else {
        tracing::debug!(mirror = %mirror.host, "mirror destination has no backend; not mirrored");
        return;
    };
    let ctx = PickContext {
        random: rand::random(),
        hash: None,
        now: Instant::now(),
    };
    let (index, authority): (usize, Authority) = match backend.pick(&ctx) {
        Some(Upstream::Endpoint { index, authority }) => (index, authority.clone()),
        _ => {
            tracing::debug!(mirror = %mirror.host, "mirror has no endpoint to send to; not mirrored");
            return;
        }
    };
    let permit = match backend.limits().try_acquire_request() {
        Ok(p) => p,
        Err(o) => {
            tracing::debug!(mirror = %mirror.host, reason = %o, "mirror overflow; not mirrored");
            return;
        }
    };
    let mut uri = Uri::builder().scheme(Scheme::HTTP).authority(authority);
    if let Some(pq) = parts.uri.path_and_query() {
        uri = uri.path_and_query(pq.clone());
    }
    let uri = match uri.build() {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(mirror = %mirror.host, error = %e, "mirror URI invalid; not mirrored");
            return;
        }
    };
    let mut req = Request::new(Either::Right(Full::new(body.clone())));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = parts.headers.clone();
    if let Some(h) = shadow_host {
        req.headers_mut().insert(header::HOST, h.clone());
    }
    *req.version_mut() = if backend.http2() {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let defaults = proxy.upstream;
    let backend = Arc::clone(backend);
    let host = Arc::clone(&mirror.host);
    tokio::spawn(async move {
        let _permit = permit;
        let state = backend.endpoints().get(index);
        if let Some(s) = state {
            s.start_request();
        }
        let started = Instant::now();
        let exchange = async {
            let resp = backend.upstream().send(Some(index), req, &defaults).await?;
            let status = resp.status();
            // Read the answer to its end so the connection returns to the pool.
            resp.into_body().collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(status)
        };
        let outcome = tokio::time::timeout(limit, exchange).await;
        let rtt = matches!(outcome, Ok(Ok(_))).then(|| started.elapsed());
        if let Some(s) = state {
            s.finish_request(rtt, Instant::now());
        }
        match outcome {
            Ok(Ok(status)) => tracing::debug!(mirror = %host, %status, "mirror answered"),
            Ok(Err(e)) => tracing::debug!(mirror = %host, error = %e, "mirror request failed"),
            Err(_) => tracing::debug!(mirror = %host, "mirror request timed out"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_names() {
        let h = |s: &str| shadow_host(s).map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(h("reviews").as_deref(), Some("reviews-shadow"));
        assert_eq!(h("reviews:9080").as_deref(), Some("reviews-shadow:9080"));
        assert_eq!(
            h("orders.shop.svc.cluster.local:8080").as_deref(),
            Some("orders.shop.svc.cluster.local-shadow:8080")
        );
        assert_eq!(h("[::1]:80").as_deref(), Some("[::1]-shadow:80"));
    }

    #[test]
    fn zero_percent_mirrors_are_dropped() {
        assert!(MirrorRuntime::new("shadow", None, None, 0.0).is_none());
        assert!(MirrorRuntime::new("shadow", None, None, 100.0).is_some());
    }
}
