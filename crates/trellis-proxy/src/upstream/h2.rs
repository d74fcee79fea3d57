//! HTTP/2 upstream connections: one multiplexed connection per endpoint, opened by a
//! single request while the others wait for it, retired after `maxRequestsPerConnection`
//! requests or `idleTimeout` without a new request, and replaced when it closes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::http::uri::{Authority, Scheme};
use ::http::{Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{
    ConnSlot, Obtained, Shared, UpstreamDefaults, UpstreamError, expired, next_check, obtain,
};
use crate::http::RequestBody;

/// One endpoint's HTTP/2 connection and the single-flight lock for opening it.
#[derive(Debug, Default)]
pub(super) struct Slot {
    current: std::sync::Mutex<Option<Current>>,
    /// Held (across the connect) by the one request opening a connection.
    connecting: tokio::sync::Mutex<()>,
    /// Failed connects so far; a request that waited for a failed connect fails too.
    failures: AtomicU64,
}

/// The connection requests are multiplexed on.
#[derive(Debug)]
struct Current {
    id: u64,
    sender: http2::SendRequest<RequestBody>,
    /// Requests started on it (`maxRequestsPerConnection`).
    served: u32,
    /// When the last request started (`idleTimeout`).
    last_used: Instant,
    /// When it stops taking requests (`maxConnectionDuration`).
    expires: Option<Instant>,
}

/// Sends `req` on endpoint `ep`'s connection, opening it when there is none. A request
/// the connection never started (it closed meanwhile) is tried once more.
pub(super) async fn send(
    shared: &Arc<Shared>,
    ep: usize,
    mut req: Request<RequestBody>,
    defaults: &UpstreamDefaults,
) -> Result<Response<Incoming>, UpstreamError> {
    authority_from_host(&mut req);
    let mut again = true;
    loop {
        let mut sender = checkout(shared, ep, defaults).await?;
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok(resp),
            Err(mut e) => match e.take_message() {
                Some(unsent) if again => {
                    tracing::debug!(error = %e.error(), "HTTP/2 connection closed, reconnecting");
                    again = false;
                    req = unsent;
                }
                _ => return Err(UpstreamError::Request(e.into_error())),
            },
        }
    }
}

/// Moves `Host` into `:authority`, as HTTP/2 wants (RFC 9113 §8.3.1) and Envoy does: the
/// URI's authority is the endpoint's address, while the server expects the name the client
/// addressed (and some servers, nginx among them, refuse a `Host` that differs from
/// `:authority`). A `Host` that is not a valid authority is left alone.
pub(super) fn authority_from_host(req: &mut Request<RequestBody>) {
    let Some(host) = req.headers().get(header::HOST) else {
        return;
    };
    let Ok(authority) = Authority::try_from(host.as_bytes()) else {
        return;
    };
    let mut parts = req.uri().clone().into_parts();
    parts.authority = Some(authority);
    if parts.scheme.is_none() {
        parts.scheme = Some(Scheme::HTTP);
    }
    match Uri::from_parts(parts) {
        Ok(uri) => {
            *req.uri_mut() = uri;
            req.headers_mut().remove(header::HOST);
        }
        Err(e) => tracing::debug!(error = %e, "cannot use Host as :authority"),
    }
}

/// A sender on the endpoint's open connection, else on a new one this request opens
/// (or waits for, when another request is already opening it).
async fn checkout(
    shared: &Arc<Shared>,
    ep: usize,
    defaults: &UpstreamDefaults,
) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
    let endpoint = shared.endpoints.get(ep).ok_or(UpstreamError::NoTarget)?;
    let slot = match obtain(shared, &endpoint.available, || take_sender(shared, ep)).await? {
        Obtained::Reused(sender) => return Ok(sender),
        Obtained::New(slot) => slot,
    };
    let failures = endpoint.h2.failures.load(Ordering::SeqCst);
    let _connecting = endpoint.h2.connecting.lock().await;
    if let Some(sender) = take_sender(shared, ep) {
        return Ok(sender);
    }
    if endpoint.h2.failures.load(Ordering::SeqCst) != failures {
        return Err(UpstreamError::SharedConnectFailed);
    }
    let opened = match shared.connect(&endpoint.dial, defaults).await {
        Ok(stream) => handshake(shared, stream, slot, Some(ep), defaults).await,
        Err(e) => Err(e),
    };
    let (id, sender, expires) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            endpoint.h2.failures.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
    };
    if let Ok(mut current) = endpoint.h2.current.lock() {
        *current = Some(Current {
            id,
            sender: sender.clone(),
            served: 1,
            last_used: Instant::now(),
            expires,
        });
    }
    endpoint.available.notify_waiters();
    Ok(sender)
}

/// A clone of the endpoint's sender when its connection is open and under its request
/// quota; a closed or exhausted connection is retired from the slot.
fn take_sender(shared: &Shared, ep: usize) -> Option<http2::SendRequest<RequestBody>> {
    let mut current = shared.endpoints.get(ep)?.h2.current.lock().ok()?;
    let conn = current.as_mut()?;
    if conn.sender.is_closed()
        || conn.served >= shared.limits.max_requests_per_connection()
        || expired(conn.expires)
    {
        *current = None;
        return None;
    }
    conn.served += 1;
    conn.last_used = Instant::now();
    Some(conn.sender.clone())
}

/// Starts HTTP/2 (prior knowledge) on a new connection and spawns its driver, which owns
/// `slot`; returns the connection's id, sender and expiry.
pub(super) async fn handshake(
    shared: &Arc<Shared>,
    stream: TcpStream,
    slot: ConnSlot,
    ep: Option<usize>,
    defaults: &UpstreamDefaults,
) -> Result<(u64, http2::SendRequest<RequestBody>, Option<Instant>), UpstreamError> {
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    let id = shared.next_id();
    let idle = ep.and(shared.idle_timeout(defaults));
    let expires = shared.expiry();
    tokio::spawn(drive(conn, slot, ep, id, (idle, ep.and(expires))));
    Ok((id, sender, expires))
}

/// Retires the endpoint's connection `id` when no request started on it for `idle` or it
/// is past its expiry; returns when to look again (`None`: retired, or no longer the
/// current connection).
fn idle_check(
    shared: &Shared,
    ep: usize,
    id: u64,
    idle: Option<Duration>,
    expires: Option<Instant>,
) -> Option<Instant> {
    let mut current = shared.endpoints.get(ep)?.h2.current.lock().ok()?;
    let conn = current.as_ref().filter(|c| c.id == id)?;
    if idle.is_some_and(|d| conn.last_used.elapsed() >= d) || expired(expires) {
        *current = None;
        None
    } else {
        next_check(conn.last_used, idle, expires)
    }
}

/// Drives one connection until it closes. Retiring it (idle, expired, quota, or the pool
/// dropped) drops the pool's sender; hyper then ends the connection once the streams still
/// open on it have finished. Gives the connection slot back at the end.
async fn drive<C>(
    conn: C,
    slot: ConnSlot,
    ep: Option<usize>,
    id: u64,
    limits: (Option<Duration>, Option<Instant>),
) where
    C: Future<Output = hyper::Result<()>>,
{
    let (idle, expires) = limits;
    tokio::pin!(conn);
    let first = next_check(Instant::now(), idle, expires);
    let mut timed = first.is_some();
    let sleep = tokio::time::sleep_until(first.unwrap_or_else(Instant::now));
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            r = &mut conn => {
                if let Err(error) = r {
                    tracing::debug!(%error, "upstream HTTP/2 connection failed");
                }
                break;
            }
            () = &mut sleep, if timed => {
                let next = match (slot.shared.upgrade(), ep) {
                    (Some(shared), Some(ep)) => idle_check(&shared, ep, id, idle, expires),
                    _ => None,
                };
                match next {
                    Some(at) => sleep.as_mut().reset(at),
                    None => timed = false,
                }
            }
        }
    }
    if let (Some(shared), Some(ep)) = (slot.shared.upgrade(), ep)
        && let Some(Ok(mut current)) = shared.endpoints.get(ep).map(|e| e.h2.current.lock())
        && current.as_ref().is_some_and(|c| c.id == id)
    {
        *current = None;
    }
}
