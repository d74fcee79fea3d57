//! HTTP/1.1 upstream connections, with a client of our own rather than hyper's: a
//! request is written and its response read by the task that forwards it, on a
//! connection it owns for the time of the exchange (no connection task, no channel, no
//! per-message buffers). Kept-alive connections wait in a LIFO stack per endpoint and go
//! back there as soon as their response body has been read; one sweeper task per pool
//! closes those idle past `idleTimeout` or closed by their server.
//!
//! Why not hyper's client here: it runs every connection as a task of its own, reached
//! through a channel, and allocates a fresh read buffer per message; measured, that was a
//! third of the instructions the proxy spends per request (docs/performance.md). The
//! server side (what clients talk to) has its own server too (`http::h1`); both share the
//! wire format and body decoder in `crate::h1`.
//!
//! Retried without asking the route: a request sent on a kept-alive connection that the
//! server closed before answering, when its method is idempotent and it has no body
//! (RFC 9112 §9.3.1; the server most likely closed the idle connection as the request
//! went out). A connection found closed before anything is written is never used.

mod body;
mod codec;
#[cfg(test)]
mod tests;

pub use body::{ResponseBody, Upgraded};

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::http::{Method, Response, header, request};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{Either, Full};
use hyper::body::Body;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::time::Instant;

use self::codec::{RequestFraming, ResponseFraming, ResponseHead};
use super::{
    ConnSlot, Obtained, RequestHead, Shared, UpstreamDefaults, UpstreamError, expired, obtain,
};
use crate::h1;
use crate::http::RequestBody;

/// How long at most an idle connection closed by its server lingers before the sweeper
/// notices (when its idle timeout is longer).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Request bytes gathered before they are written (a body streams through in steps of
/// this much).
const MAX_WRITE_BUFFER: usize = 64 * 1024;

/// Why an HTTP/1.1 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("upstream connection: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection without answering.
    #[error("the upstream closed the connection before answering")]
    Closed,
    /// The server closed the connection before the end of the response body.
    #[error("the upstream closed the connection in the middle of the response body")]
    Truncated,
    /// The response is not valid HTTP/1.1.
    #[error("malformed upstream response ({0})")]
    Malformed(&'static str),
    /// The response head is larger than [`codec::MAX_HEAD_BYTES`].
    #[error("upstream response head over {} bytes", codec::MAX_HEAD_BYTES)]
    HeadTooLarge,
    /// The request body (from the client) failed while it was being sent.
    #[error("reading the request body failed: {0}")]
    RequestBody(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The response body could not be read to its end.
    #[error("upstream response body: {0}")]
    Body(#[from] h1::FramingError),
    /// The request body was longer or shorter than its `Content-Length`.
    #[error("the request body does not match its length")]
    BodyLength,
}

impl Error {
    /// What was wrong with the response head when it was not valid HTTP/1.1.
    pub(crate) fn protocol_error(&self) -> Option<&'static str> {
        match self {
            Error::Malformed(what) => Some(what),
            Error::HeadTooLarge => Some("response head too large"),
            _ => None,
        }
    }

    /// Whether the connection was closed under the request, before any answer.
    fn is_closed_before_answer(&self) -> bool {
        match self {
            Error::Closed => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// One HTTP/1.1 connection: idle in its stack, or carrying one exchange.
#[derive(Debug)]
pub(super) struct Conn {
    io: TcpStream,
    /// Bytes read and not yet consumed.
    read: BytesMut,
    /// Request bytes not yet written.
    write: BytesMut,
    /// Storage for the next response's header map: the last request's, cleared.
    spare: Option<::http::HeaderMap>,
    /// Requests started on the connection (`maxRequestsPerConnection`).
    served: u32,
    /// When it was last put back (meaningful while in the stack).
    since: Instant,
    /// Closed after this long in the stack (`None`: never for idleness).
    idle: Option<Duration>,
    /// When it stops taking requests (`maxConnectionDuration`).
    expires: Option<Instant>,
    /// The `maxConnections` slot, given back when the connection closes.
    _slot: ConnSlot,
}

impl Conn {
    fn new(shared: &Shared, io: TcpStream, slot: ConnSlot, idle: Option<Duration>) -> Conn {
        Conn {
            io,
            read: BytesMut::with_capacity(h1::READ_CHUNK),
            write: BytesMut::with_capacity(1024),
            spare: None,
            served: 0,
            since: Instant::now(),
            idle,
            expires: shared.expiry(),
            _slot: slot,
        }
    }

    /// Whether the connection can take a request: not past its age, and nothing (the
    /// server's close, stray bytes) arrived while it was idle. Costs no system call
    /// unless the socket became readable.
    fn is_usable(&self) -> bool {
        if expired(self.expires) || !self.read.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// When the sweeper must look at this idle connection next.
    fn deadline(&self, now: Instant) -> Instant {
        let idle = self.idle.map_or(now + SWEEP_EVERY, |d| self.since + d);
        let at = idle.min(now + SWEEP_EVERY);
        self.expires.map_or(at, |e| at.min(e))
    }

    /// Writes what is buffered and what the request body has ready.
    fn poll_send(&mut self, out: &mut Outgoing, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            while !out.finished && self.write.len() < MAX_WRITE_BUFFER {
                match Pin::new(&mut out.body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => out.encode(frame, &mut self.write)?,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(Error::RequestBody(e))),
                    Poll::Ready(None) => out.end(&mut self.write)?,
                    Poll::Pending => break,
                }
            }
            if self.write.is_empty() {
                return if out.finished {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                };
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.write))?;
            if n == 0 {
                return Poll::Ready(Err(Error::Io(io::ErrorKind::WriteZero.into())));
            }
            self.write.advance(n);
        }
    }

    /// Reads more bytes into the read buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, Error>> {
        Poll::Ready(Ok(ready!(h1::Source::poll_fill(self, cx))?))
    }

    /// Reads until a final (non-1xx, or 101) response head is complete.
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<ResponseHead, Error>> {
        loop {
            if !self.read.is_empty()
                && let Some(head) = codec::parse_head(&mut self.read)?
            {
                let status = head.status.as_u16();
                if (100..200).contains(&status) && status != 101 {
                    continue; // 100 Continue, 103 Early Hints: not forwarded.
                }
                return Poll::Ready(Ok(head));
            }
            if ready!(self.poll_fill(cx))? == 0 {
                return Poll::Ready(Err(if self.read.is_empty() {
                    Error::Closed
                } else {
                    Error::Truncated
                }));
            }
        }
    }

    /// Sends `head` and `body`, and reads the response head. The server may answer
    /// before the body is sent (then the rest is not sent): `sent_all` says whether it
    /// was.
    async fn exchange(
        &mut self,
        head: &request::Parts,
        body: RequestBody,
    ) -> Result<(ResponseHead, bool), Error> {
        let exact = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        let had_length = head.headers.contains_key(header::CONTENT_LENGTH);
        let framing = RequestFraming::choose(&head.method, exact, had_length);
        self.write.clear();
        codec::encode_head(head, framing, &mut self.write);
        let mut out = Outgoing {
            body,
            framing,
            left: match framing {
                RequestFraming::Length(n) => n,
                _ => 0,
            },
            finished: exact == Some(0),
        };
        let mut sent_all = false;
        let mut write_failed = None;
        let head = poll_fn(|cx| {
            if !sent_all && write_failed.is_none() {
                match self.poll_send(&mut out, cx) {
                    Poll::Ready(Ok(())) => sent_all = true,
                    Poll::Ready(Err(e @ (Error::RequestBody(_) | Error::BodyLength))) => {
                        return Poll::Ready(Err(e));
                    }
                    // The server may still have answered (and closed): read that first.
                    Poll::Ready(Err(e)) => write_failed = Some(e),
                    Poll::Pending => {}
                }
            }
            match self.poll_head(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(write_failed.take().unwrap_or(e))),
                other => other,
            }
        })
        .await?;
        Ok((head, sent_all))
    }
}

impl h1::Source for Conn {
    fn buffer(&mut self) -> &mut BytesMut {
        &mut self.read
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        h1::poll_fill(&mut self.io, &mut self.read, cx)
    }
}

/// The request body on its way out.
struct Outgoing {
    body: RequestBody,
    framing: RequestFraming,
    /// Bytes still owed under `Content-Length`.
    left: u64,
    finished: bool,
}

impl Outgoing {
    fn encode(
        &mut self,
        frame: hyper::body::Frame<Bytes>,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let data = match frame.into_data() {
            Ok(data) => data,
            // Trailers go out only on a chunked body; otherwise HTTP/1.1 cannot carry them.
            Err(frame) => {
                if let (Ok(trailers), RequestFraming::Chunked) =
                    (frame.into_trailers(), self.framing)
                {
                    h1::encode_last_chunk(Some(&trailers), out);
                    self.finished = true;
                }
                return Ok(());
            }
        };
        match self.framing {
            RequestFraming::Chunked => h1::encode_chunk(&data, out),
            RequestFraming::Length(_) => {
                self.left = self
                    .left
                    .checked_sub(data.len() as u64)
                    .ok_or(Error::BodyLength)?;
                out.put_slice(&data);
            }
            RequestFraming::None if data.is_empty() => {}
            RequestFraming::None => return Err(Error::BodyLength),
        }
        Ok(())
    }

    fn end(&mut self, out: &mut BytesMut) -> Result<(), Error> {
        match self.framing {
            RequestFraming::Chunked => h1::encode_last_chunk(None, out),
            RequestFraming::Length(_) if self.left > 0 => return Err(Error::BodyLength),
            _ => {}
        }
        self.finished = true;
        Ok(())
    }
}

/// Where a connection goes back to once its response has been read.
#[derive(Debug)]
pub(super) struct Home {
    pool: Weak<Shared>,
    ep: usize,
}

impl Home {
    /// Puts `conn` back on its endpoint's stack unless it has served its quota, is past
    /// its age or its pool is gone (then it closes).
    fn release(self, mut conn: Box<Conn>) {
        let Some(shared) = self.pool.upgrade() else {
            return;
        };
        if conn.served >= shared.limits.max_requests_per_connection() || expired(conn.expires) {
            return;
        }
        let Some(endpoint) = shared.endpoints.get(self.ep) else {
            return;
        };
        conn.since = Instant::now();
        if let Ok(mut stack) = endpoint.idle.lock() {
            stack.push(conn);
        }
        if !shared.sweeping.load(Ordering::Relaxed) && !shared.sweeping.swap(true, Ordering::SeqCst)
        {
            tokio::spawn(sweep(Arc::downgrade(&shared)));
        }
        if shared.waiting.load(Ordering::SeqCst) > 0 {
            endpoint.available.notify_one();
        }
    }
}

/// Sends `req` to endpoint `ep` on an idle or new connection.
pub(super) async fn send(
    shared: &Arc<Shared>,
    ep: usize,
    head: RequestHead<'_>,
    body: RequestBody,
    defaults: &UpstreamDefaults,
) -> Result<Response<ResponseBody>, UpstreamError> {
    let mut body = Some(body);
    loop {
        let (mut conn, reused) = checkout(shared, ep, defaults).await?;
        conn.served += 1;
        let Some(sending) = body.take() else {
            return Err(UpstreamError::NoTarget);
        };
        let parts = head.parts();
        let replayable = reused && is_idempotent(&parts.method) && sending.is_end_stream();
        match conn.exchange(parts, sending).await {
            Ok((answer, sent_all)) => {
                let home = Home {
                    pool: Arc::downgrade(shared),
                    ep,
                };
                let method = parts.method.clone();
                if let RequestHead::Owned(parts) = head {
                    h1::recycle(&mut conn.spare, parts.headers);
                }
                return respond(conn, &method, answer, sent_all, Some(home));
            }
            Err(e) if replayable && e.is_closed_before_answer() => {
                tracing::debug!(error = %e, "kept-alive connection closed under the request, resending");
                body = Some(Either::Right(Full::new(Bytes::new())));
            }
            Err(e) => return Err(UpstreamError::Http1(e)),
        }
    }
}

/// Sends `req` on a connection of its own, closed after the response (passthrough).
pub(super) async fn send_once(
    shared: &Shared,
    stream: TcpStream,
    slot: ConnSlot,
    head: &request::Parts,
    body: RequestBody,
) -> Result<Response<ResponseBody>, UpstreamError> {
    let mut conn = Box::new(Conn::new(shared, stream, slot, None));
    let (answer, sent_all) = conn
        .exchange(head, body)
        .await
        .map_err(UpstreamError::Http1)?;
    respond(conn, &head.method, answer, sent_all, None)
}

/// The response for `answer`, its body reading from `conn`; the connection goes `home`
/// afterwards when both sides keep it alive and the request was sent whole.
fn respond(
    mut conn: Box<Conn>,
    method: &Method,
    answer: ResponseHead,
    sent_all: bool,
    home: Option<Home>,
) -> Result<Response<ResponseBody>, UpstreamError> {
    let framing = answer.framing(method).map_err(UpstreamError::Http1)?;
    let reusable =
        sent_all && answer.keeps_alive() && !matches!(framing, ResponseFraming::UntilClose);
    let home = home.filter(|_| reusable);
    // The map the response carries holds nothing yet (its fields stay in `answer`'s
    // bytes, see `RawHead`); it is the last request's (cleared by `recycle`, the only
    // way into `spare`), so its storage goes round.
    let mut headers = conn.spare.take().unwrap_or_default();
    let raw = if framing == ResponseFraming::Upgrade {
        // An upgrade's headers are read on the way (`Connection`, `Upgrade`): a map now.
        answer.fields.append_to(&mut headers, true);
        None
    } else {
        Some(answer.fields)
    };
    let mut resp = Response::new(ResponseBody::new(framing, conn, home, raw));
    *resp.status_mut() = answer.status;
    *resp.version_mut() = answer.version;
    *resp.headers_mut() = headers;
    Ok(resp)
}

/// Idempotent methods (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// An idle connection of `ep` that is still usable (and whether it was reused), else a
/// new one (possibly after waiting for a slot).
async fn checkout(
    shared: &Arc<Shared>,
    ep: usize,
    defaults: &UpstreamDefaults,
) -> Result<(Box<Conn>, bool), UpstreamError> {
    let endpoint = shared.endpoints.get(ep).ok_or(UpstreamError::NoTarget)?;
    let slot = match obtain(shared, &endpoint.available, || take_idle(shared, ep)).await? {
        Obtained::Reused(conn) => return Ok((conn, true)),
        Obtained::New(slot) => slot,
    };
    let stream = shared.connect(&endpoint.dial, defaults).await?;
    let idle = shared.idle_timeout(defaults);
    Ok((Box::new(Conn::new(shared, stream, slot, idle)), false))
}

/// Pops the most recently used idle connection that is still usable; the others met on
/// the way are closed.
fn take_idle(shared: &Shared, ep: usize) -> Option<Box<Conn>> {
    let mut stack = shared.endpoints.get(ep)?.idle.lock().ok()?;
    while let Some(conn) = stack.pop() {
        if conn.is_usable() {
            return Some(conn);
        }
    }
    None
}

/// Closes the pool's idle connections that sat for their idle timeout, reached their
/// age or were closed by their server; runs while there are idle connections and the
/// pool exists.
async fn sweep(pool: Weak<Shared>) {
    loop {
        let next = {
            let Some(shared) = pool.upgrade() else { return };
            match shared.sweep_idle(Instant::now()) {
                Some(at) => at,
                None => {
                    shared.sweeping.store(false, Ordering::SeqCst);
                    // A connection put back meanwhile saw the flag still set: carry on
                    // for it unless another sweeper has started.
                    if shared.idle_count() == 0 || shared.sweeping.swap(true, Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
            }
        };
        tokio::time::sleep_until(next).await;
    }
}

impl Shared {
    /// Drops idle connections that are due or unusable; when the next one is due.
    fn sweep_idle(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for endpoint in self.endpoints.iter() {
            let closed: Vec<Box<Conn>> = {
                let Ok(mut stack) = endpoint.idle.lock() else {
                    continue;
                };
                let mut closed = Vec::new();
                let mut i = 0;
                while i < stack.len() {
                    let conn = &stack[i];
                    let idle_over = conn.idle.is_some_and(|d| now >= conn.since + d);
                    if idle_over || !conn.is_usable() {
                        closed.push(stack.remove(i));
                    } else {
                        let at = conn.deadline(now);
                        next = Some(next.map_or(at, |n| n.min(at)));
                        i += 1;
                    }
                }
                closed
            };
            if !closed.is_empty() {
                tracing::debug!(count = closed.len(), "closing idle upstream connections");
            }
        }
        next
    }

    fn idle_count(&self) -> usize {
        self.endpoints
            .iter()
            .filter_map(|e| e.idle.lock().ok().map(|s| s.len()))
            .sum()
    }
}
