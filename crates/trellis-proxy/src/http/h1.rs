//! The downstream HTTP/1.1 server: reads each request head off the connection, hands the
//! request to the forwarding path and writes its response, on the connection's own task
//! with one reusable buffer each way (no dispatcher, no body channel, no per-request
//! timer allocation). It serves the requests an HTTP/1.1 client sends all the time; any
//! head it does not serve itself (see `head`) hands the connection, with the bytes read so
//! far, to hyper's server for the rest of its life, so HTTP/2, upgrades, `100-continue`,
//! HTTP/1.0 and every malformed or hostile head keep hyper's handling.
//!
//! Why not hyper's server for everything: its HTTP/1 dispatcher, request-body channel and
//! response encoder were a quarter of the instructions the proxy spent per request
//! (docs/performance.md).
//!
//! As hyper does: a head must arrive within the header-read timeout (counted from the end
//! of the previous response: it bounds idle keep-alive waits too); a client closing its
//! side while its request waits for the response cancels the request (recorded as `DC`);
//! `Connection: close` from either side, draining, or a request body left unread ends the
//! connection after the response. A body nobody read is skipped when it is already in the
//! read buffer, so the connection stays usable.

mod head;
mod respond;
mod wire;

pub(crate) use wire::Io;
pub use wire::WireBody;

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Request, Response};
use bytes::{Bytes, BytesMut};
use hyper::body::Body;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

pub(crate) use head::Limits;
use head::Parsed;
pub(crate) use wire::Rewind;
use wire::{SharedWire, Wire};

use super::body::ClientBody;
use crate::h1::Source;

/// How long a keep-alive connection waits for its next request before it gives back its
/// buffers (read and write) and its spare header map: ~13 KiB a connection, allocated again
/// when a request comes. A busy connection never waits this long; an idle one holds only
/// its task (as nginx frees its request buffers between requests).
pub(super) const RELEASE_IDLE_AFTER: Duration = Duration::from_secs(1);

/// How a connection left this server.
pub(super) enum Ended {
    /// Closed (by either side, a timeout, or an error).
    Closed,
    /// Handed over: hyper serves the rest, starting with the bytes already read.
    Elsewhere(Rewind),
}

/// The server's settings for one listener.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) limits: Limits,
    /// A head must be complete this long after the server starts waiting for it.
    pub(super) header_read_timeout: Duration,
}

/// Serves HTTP/1.1 requests on `io` with `handle` until the connection closes or needs
/// hyper. `draining` turns true when the listener drains.
pub(super) async fn serve<H, F, B>(
    io: Box<dyn Io>,
    settings: Settings,
    draining: &watch::Sender<bool>,
    mut handle: H,
) -> Ended
where
    H: FnMut(Request<ClientBody>) -> F,
    F: Future<Output = Response<B>>,
    B: Body<Data = Bytes> + crate::h1::RawHeadSource + Unpin,
{
    let wire: SharedWire = Arc::new(Mutex::new(Wire::new(io)));
    let mut out = BytesMut::with_capacity(4 * 1024);
    let mut timer = pin!(tokio::time::sleep(settings.header_read_timeout));
    let mut drain_rx = draining.subscribe();
    let mut drained = pin!(async move {
        let _ = drain_rx.wait_for(|d| *d).await;
    });
    let mut request = 0u64;
    // The last response's header map, cleared: the next request head's.
    let mut spare = None;
    loop {
        let now = Instant::now();
        let mut wait = Wait {
            deadline: now + settings.header_read_timeout,
            release_pending: true,
        };
        timer
            .as_mut()
            .reset(wait.deadline.min(now + RELEASE_IDLE_AFTER));
        let next = poll_fn(|cx| {
            poll_head(
                &wire,
                settings.limits,
                (&mut spare, &mut out),
                &mut wait,
                cx,
                timer.as_mut(),
                drained.as_mut(),
            )
        })
        .await;
        let (head, decoder, facts) = match next {
            Next::Head(head, decoder, facts) => (head, decoder, facts),
            Next::Elsewhere => return hand_over(wire),
            Next::Closed => return Ended::Closed,
        };
        request += 1;
        let body = if decoder.is_done() {
            WireBody::empty()
        } else {
            match wire::lock(&wire) {
                Ok(mut w) => {
                    w.body = decoder;
                    w.request = request;
                }
                Err(_) => return Ended::Closed,
            }
            WireBody::new(Arc::clone(&wire), request)
        };
        let mut handling = pin!(handle(head.map(|()| ClientBody::Wire(body))));
        let resp = poll_fn(|cx| match handling.as_mut().poll(cx) {
            Poll::Ready(resp) => Poll::Ready(Some(resp)),
            Poll::Pending if client_gone(&wire, cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let Some(resp) = resp else {
            // The client closed while its request waited: the request is cancelled.
            return Ended::Closed;
        };
        let keep_alive = !facts.close && !*draining.borrow() && reusable(&wire);
        let keep_alive =
            match respond::write(&wire, &mut out, resp, facts, keep_alive, &mut spare).await {
                Ok(keep) => keep,
                Err(e) => {
                    tracing::debug!(error = %e, "writing the response failed");
                    return Ended::Closed;
                }
            };
        if !keep_alive {
            close(&wire).await;
            return Ended::Closed;
        }
    }
}

/// What the connection produced while the server waited for a head.
#[allow(clippy::large_enum_variant)] // Moved once per request: boxing would allocate.
enum Next {
    Head(Request<()>, crate::h1::BodyDecoder, head::Facts),
    Elsewhere,
    Closed,
}

/// The wait for a request head: its timer first fires at the buffer release (or the
/// deadline, if that comes first), then at the deadline.
struct Wait {
    /// The header-read timeout ends the wait here.
    deadline: Instant,
    /// The timer's next firing is the buffer release ([`RELEASE_IDLE_AFTER`]).
    release_pending: bool,
}

/// Reads until a head is complete (or the connection must go to hyper, or end): the
/// header-read timeout and, while nothing of a head has arrived, draining end the wait.
/// A wait with nothing buffered that lasts past [`RELEASE_IDLE_AFTER`] gives back the
/// connection's buffers (`reusable`: the spare header map and the write buffer).
fn poll_head(
    wire: &SharedWire,
    limits: Limits,
    reusable: (&mut Option<::http::HeaderMap>, &mut BytesMut),
    wait: &mut Wait,
    cx: &mut Context<'_>,
    mut timer: Pin<&mut Sleep>,
    drained: Pin<&mut impl Future<Output = ()>>,
) -> Poll<Next> {
    let (spare, out) = reusable;
    let Ok(mut w) = wire::lock(wire) else {
        return Poll::Ready(Next::Closed);
    };
    loop {
        if !w.read.is_empty() {
            match head::parse(&mut w.read, limits, spare) {
                Parsed::Head(head, decoder, facts) => {
                    return Poll::Ready(Next::Head(head, decoder, facts));
                }
                Parsed::Elsewhere => return Poll::Ready(Next::Elsewhere),
                Parsed::Partial => {}
            }
        }
        match w.poll_fill(cx) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Next::Closed),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => {
                tracing::debug!(error = %e, "downstream connection read failed");
                return Poll::Ready(Next::Closed);
            }
            Poll::Pending => break,
        }
    }
    let idle = w.read.is_empty();
    while timer.as_mut().poll(cx).is_ready() {
        if !std::mem::take(&mut wait.release_pending) {
            tracing::debug!("no complete request head within the header read timeout");
            return Poll::Ready(Next::Closed);
        }
        if idle {
            w.release_buffer();
            *spare = None;
            *out = BytesMut::new();
        }
        timer.as_mut().reset(wait.deadline);
    }
    drop(w);
    if idle && drained.poll(cx).is_ready() {
        return Poll::Ready(Next::Closed);
    }
    Poll::Pending
}

/// While a request without a body (or with its body read) waits for its response:
/// whether the client closed the connection (or it failed). Bytes of a pipelined request
/// stay in the buffer; once there are some, the socket is not read.
fn client_gone(wire: &SharedWire, cx: &mut Context<'_>) -> bool {
    let Ok(mut w) = wire::lock(wire) else {
        return true;
    };
    if !w.body.is_done() || !w.read.is_empty() {
        return false;
    }
    matches!(w.poll_fill(cx), Poll::Ready(Ok(0) | Err(_)))
}

/// Once a response is ready: whether the connection can read another request after it.
/// Its request's body must have been read, or what is left of it be in the read buffer
/// already (it is skipped) with nothing else holding the body; a body that failed leaves
/// the connection unusable.
fn reusable(wire: &SharedWire) -> bool {
    let held = Arc::strong_count(wire) > 1;
    let Ok(mut w) = wire::lock(wire) else {
        return false;
    };
    if w.broken {
        return false;
    }
    if w.body.is_done() {
        return true;
    }
    if held {
        return false;
    }
    let mut decoder = w.body;
    let done = decoder.skip_buffered(&mut w.read).unwrap_or(false);
    w.body = decoder;
    done
}

/// Ends the connection: FIN after what was written.
async fn close(wire: &SharedWire) {
    let shut = poll_fn(|cx| match wire::lock(wire) {
        Ok(mut w) => Pin::new(&mut *w.io).poll_shutdown(cx),
        Err(e) => Poll::Ready(Err(e)),
    });
    if let Err(e) = shut.await {
        tracing::debug!(error = %e, "closing the downstream connection");
    }
}

/// Gives the connection to hyper, unless a request body still holds it (then it closes).
fn hand_over(wire: SharedWire) -> Ended {
    match Arc::try_unwrap(wire).map(Mutex::into_inner) {
        Ok(Ok(wire)) => Ended::Elsewhere(Rewind::new(wire)),
        _ => {
            tracing::debug!("connection still read by an earlier request body; closing it");
            Ended::Closed
        }
    }
}
