//! HTTP/1.1 upstream connections: keep-alive reuse from a per-endpoint idle stack, a
//! driver task per connection that closes it after the idle timeout, and the return of a
//! connection to its stack once its response has been read.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{
    ConnSlot, Obtained, Shared, UpstreamDefaults, UpstreamError, expired, next_check, obtain,
};
use crate::http::ProxyBody;

/// One HTTP/1.1 connection's request side, idle in its stack or carrying a request.
#[derive(Debug)]
pub(super) struct Idle {
    id: u64,
    pub(super) sender: http1::SendRequest<ProxyBody>,
    /// Requests started on the connection (`maxRequestsPerConnection`).
    served: u32,
    /// When it was last put back (meaningful while in the stack).
    since: Instant,
    /// When it stops taking requests (`maxConnectionDuration`).
    expires: Option<Instant>,
}

/// Sends `req` on an idle or new connection to endpoint `ep`. A request the connection
/// never started writing (it closed meanwhile) is tried once more on another connection.
pub(super) async fn send(
    shared: &Arc<Shared>,
    ep: usize,
    mut req: Request<ProxyBody>,
    defaults: &UpstreamDefaults,
) -> Result<Response<Incoming>, UpstreamError> {
    origin_form(&mut req);
    let mut again = true;
    loop {
        let mut conn = checkout(shared, ep, defaults).await?;
        conn.served += 1;
        match conn.sender.try_send_request(req).await {
            Ok(resp) => {
                if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                    tokio::spawn(release(Arc::downgrade(shared), ep, conn));
                }
                return Ok(resp);
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if again => {
                    tracing::debug!(error = %e.error(), "pooled connection closed, trying another");
                    again = false;
                    req = unsent;
                }
                _ => return Err(UpstreamError::Request(e.into_error())),
            },
        }
    }
}

/// HTTP/1.1 requests carry the path only; the authority is already in `Host`.
pub(super) fn origin_form(req: &mut Request<ProxyBody>) {
    if req.uri().authority().is_some() {
        let path = req.uri().path_and_query().cloned();
        *req.uri_mut() = path.map_or_else(|| Uri::from_static("/"), Uri::from);
    }
}

/// An idle connection of `ep` that is ready, else a new one (possibly after waiting for
/// a slot).
async fn checkout(
    shared: &Arc<Shared>,
    ep: usize,
    defaults: &UpstreamDefaults,
) -> Result<Idle, UpstreamError> {
    let endpoint = shared.endpoints.get(ep).ok_or(UpstreamError::NoTarget)?;
    let slot = match obtain(shared, &endpoint.available, || take_idle(shared, ep)).await? {
        Obtained::Reused(conn) => return Ok(conn),
        Obtained::New(slot) => slot,
    };
    let stream = shared.connect(&endpoint.dial, defaults).await?;
    handshake(shared, stream, slot, Some(ep), defaults).await
}

/// Pops the most recently used idle connection that is still ready; closed ones are
/// dropped on the way.
fn take_idle(shared: &Shared, ep: usize) -> Option<Idle> {
    let mut stack = shared.endpoints.get(ep)?.idle.lock().ok()?;
    while let Some(conn) = stack.pop() {
        if conn.sender.is_ready() && !expired(conn.expires) {
            return Some(conn);
        }
    }
    None
}

/// Starts HTTP/1.1 on a new connection and spawns its driver, which owns `slot`.
pub(super) async fn handshake(
    shared: &Arc<Shared>,
    stream: TcpStream,
    slot: ConnSlot,
    ep: Option<usize>,
    defaults: &UpstreamDefaults,
) -> Result<Idle, UpstreamError> {
    let (sender, conn) = http1::Builder::new()
        // Flattened writes, as on the downstream side (see `http::guard::server_builder`).
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    let id = shared.next_id();
    let idle = ep.and(shared.idle_timeout(defaults));
    let expires = shared.expiry();
    tokio::spawn(drive(
        conn.with_upgrades(),
        slot,
        ep,
        id,
        (idle, ep.and(expires)),
    ));
    Ok(Idle {
        id,
        sender,
        served: 0,
        since: Instant::now(),
        expires,
    })
}

/// Waits until the response body has been read, then puts the connection back unless it
/// has served its quota (dropping the sender lets the connection close).
async fn release(pool: Weak<Shared>, ep: usize, mut conn: Idle) {
    if conn.sender.ready().await.is_err() {
        return;
    }
    let Some(shared) = pool.upgrade() else { return };
    if conn.served >= shared.limits.max_requests_per_connection() || expired(conn.expires) {
        return;
    }
    let Some(endpoint) = shared.endpoints.get(ep) else {
        return;
    };
    conn.since = Instant::now();
    if let Ok(mut stack) = endpoint.idle.lock() {
        stack.push(conn);
    }
    if shared.waiting.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        endpoint.available.notify_one();
    }
}

/// What the idle check found for one connection.
enum IdleCheck {
    /// Removed from the stack (idle for the idle timeout, or past its expiry): close it.
    Expired,
    /// In the stack since this instant.
    IdleSince(Instant),
    /// Carrying a request (or gone from the stack).
    Busy,
}

fn idle_check(shared: &Shared, ep: usize, id: u64, idle: Option<Duration>) -> IdleCheck {
    let Some(Ok(mut stack)) = shared.endpoints.get(ep).map(|e| e.idle.lock()) else {
        return IdleCheck::Busy;
    };
    let Some(pos) = stack.iter().position(|c| c.id == id) else {
        return IdleCheck::Busy;
    };
    let since = stack[pos].since;
    if idle.is_some_and(|d| since.elapsed() >= d) || expired(stack[pos].expires) {
        // The sender is dropped after the lock is released (by the caller's break).
        drop(stack.remove(pos));
        IdleCheck::Expired
    } else {
        IdleCheck::IdleSince(since)
    }
}

/// Drives one connection until it closes: the server closed it, the pool dropped its
/// sender, it was upgraded (the upgraded stream lives on in the caller), or it sat idle in
/// its stack for `idle` or past its expiry (`limits`). Gives the connection slot back at
/// the end.
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
                    tracing::debug!(%error, "upstream HTTP/1.1 connection failed");
                }
                break;
            }
            () = &mut sleep, if timed => {
                let check = match (slot.shared.upgrade(), ep) {
                    (Some(shared), Some(ep)) => idle_check(&shared, ep, id, idle),
                    _ => IdleCheck::Busy,
                };
                let base = match check {
                    IdleCheck::Expired => {
                        tracing::debug!("closing idle or expired upstream connection");
                        break;
                    }
                    IdleCheck::IdleSince(since) => since,
                    IdleCheck::Busy => Instant::now(),
                };
                // A busy connection past its expiry is dropped when its response is done.
                let expires = expires.filter(|at| *at > Instant::now());
                match next_check(base, idle, expires) {
                    Some(at) => sleep.as_mut().reset(at),
                    None => timed = false,
                }
            }
        }
    }
    if let (Some(shared), Some(ep)) = (slot.shared.upgrade(), ep)
        && let Some(Ok(mut stack)) = shared.endpoints.get(ep).map(|e| e.idle.lock())
    {
        stack.retain(|c| c.id != id);
    }
}
