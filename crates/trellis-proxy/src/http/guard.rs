//! Defences against hostile or broken downstream clients that hyper does not provide on
//! its own (hyper already answers 400 to malformed heads and differing `Content-Length`s,
//! 431 to oversized heads, and bounds head reading with `header_read_timeout`):
//!
//! - [`check`]: request heads that hyper accepts but a proxy must not forward — a
//!   transfer coding other than exactly `chunked` (hyper decodes the chunking and we drop
//!   `Transfer-Encoding` as hop-by-hop, so a `gzip, chunked` body would reach the upstream
//!   silently re-framed; RFC 9112 §6.1 says 501) and more than one `Host` (RFC 9112 §3.2
//!   says 400; the router and the upstream could otherwise disagree on the target);
//! - [`IdleIo`]: closes a connection on which nothing moved for the idle timeout while
//!   no request waits for its response, and one that neither started a request nor got
//!   past the first 24 bytes (the HTTP/2 preface) within the header-read timeout:
//!   hyper's own head timer starts only after its HTTP/1 vs HTTP/2 sniffing, which
//!   waits forever. A connected HTTP/2 client that is merely quiet (a pre-connected
//!   gRPC channel) is left to the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::http::header::{HOST, TRANSFER_ENCODING};
use ::http::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{ClientBody, ProxyBody, ServeOptions};

/// Rejects a request head that must not be forwarded; `None` lets it through. Costs two
/// header-map probes for ordinary requests hyper read; none for those the HTTP/1.1 server
/// read, which hands such heads to hyper instead (`h1::head`).
pub(super) fn check(req: &Request<ClientBody>) -> Option<Response<ProxyBody>> {
    if let ClientBody::Wire(_) = req.body() {
        return None;
    }
    let headers = req.headers();
    let mut te = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(first) = te.next()
        && (te.next().is_some() || !first.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Some(reject(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported transfer-encoding\n",
        ));
    }
    let mut host = headers.get_all(HOST).iter();
    if host.next().is_some() && host.next().is_some() {
        return Some(reject(
            StatusCode::BAD_REQUEST,
            "more than one host header\n",
        ));
    }
    None
}

/// A local refusal; the connection is closed after it (the client is misbehaving, and
/// what follows on the connection cannot be trusted).
fn reject(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Right(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        ::http::header::CONNECTION,
        ::http::HeaderValue::from_static("close"),
    );
    h.insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Requests of one connection still waiting for their response head; shared by the
/// connection's service (which counts) and its [`IdleIo`] (which must not time out
/// while a request is in flight).
#[derive(Debug, Default)]
pub(super) struct InFlight {
    active: AtomicUsize,
    started: AtomicBool,
}

impl InFlight {
    /// Counts a request until the returned guard drops (its response head is ready).
    pub(super) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        if !self.started.load(Ordering::Relaxed) {
            self.started.store(true, Ordering::Relaxed);
        }
        InFlightGuard(Arc::clone(self))
    }

    fn busy(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }
}

/// Releases one in-flight request on drop.
pub(super) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A downstream connection that fails with `TimedOut` once it has been idle (no bytes
/// read or written, no request in flight) for `idle`, or has not started its first
/// request within `first`. Activity only records a timestamp; the timer is re-armed at
/// most once per idle period.
pub(super) struct IdleIo<I> {
    inner: I,
    in_flight: Arc<InFlight>,
    idle: Duration,
    last_activity: Instant,
    /// Until the first request or the 24th byte arrives: the deadline for it.
    first_deadline: Option<Instant>,
    /// Bytes read while `first_deadline` is set.
    first_bytes: usize,
    timer: Pin<Box<Sleep>>,
}

impl<I> IdleIo<I> {
    /// Wraps `inner`; both timeouts start now.
    pub(super) fn new(inner: I, in_flight: Arc<InFlight>, idle: Duration, first: Duration) -> Self {
        let now = Instant::now();
        let first_deadline = now + first;
        IdleIo {
            inner,
            in_flight,
            idle,
            last_activity: now,
            first_deadline: Some(first_deadline),
            first_bytes: 0,
            timer: Box::pin(tokio::time::sleep_until(first_deadline.min(now + idle))),
        }
    }

    /// Called when the inner I/O is not ready: `Err` once a timeout has expired.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let now = Instant::now();
            if self.in_flight.started() {
                self.first_deadline = None;
            }
            if self.in_flight.busy() {
                // A request waiting for its response counts as activity.
                self.last_activity = now;
            }
            if let Some(first) = self.first_deadline
                && now >= first
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                ));
            }
            let idle_end = self.last_activity + self.idle;
            if now >= idle_end {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle timeout",
                ));
            }
            let next = self.first_deadline.map_or(idle_end, |f| f.min(idle_end));
            self.timer.as_mut().reset(next);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for IdleIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    this.last_activity = Instant::now();
                    if this.first_deadline.is_some() {
                        this.first_bytes += n;
                        if this.first_bytes >= PREFACE_LEN {
                            this.first_deadline = None;
                        }
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                this.poll_expired(cx)?;
                Poll::Pending
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.last_activity = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => {
                // A client that stops reading stalls writes: that is idleness too.
                this.poll_expired(cx)?;
                Poll::Pending
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.last_activity = Instant::now();
                Poll::Ready(r)
            }
            Poll::Pending => {
                this.poll_expired(cx)?;
                Poll::Pending
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}

/// The connection-level timeouts of [`ServeOptions`], applied by [`IdleIo`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    idle: Duration,
    first_request: Duration,
}

impl From<&ServeOptions> for Timeouts {
    fn from(opts: &ServeOptions) -> Self {
        Timeouts {
            idle: opts.idle_timeout,
            first_request: opts.header_read_timeout,
        }
    }
}

impl Timeouts {
    /// Wraps a downstream connection so that it times out as configured.
    pub(super) fn wrap<I>(&self, io: I, in_flight: Arc<InFlight>) -> IdleIo<I> {
        IdleIo::new(io, in_flight, self.idle, self.first_request)
    }
}

/// The downstream server with the client limits of `opts`: head size and header count
/// (431 beyond), the HTTP/1 head read timeout (needs hyper's timer), and the HTTP/2
/// stream and header-list limits.
pub(super) fn server_builder(opts: &ServeOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper refuses (panics on) read buffers below 8 KiB; a partial head that fills the
    // buffer is answered with 431.
    let head = head_limit(opts);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        // One buffer, one write(2): for the small messages a mesh carries, copying the
        // body behind the head costs less than writev's bookkeeping in hyper and the
        // kernel (-1.5 % instructions per request, ~-10 % CPU in alternating wrk runs;
        // docs/performance.md). Large bodies pay one extra copy per chunk.
        .writev(false)
        .max_buf_size(head)
        .max_headers(opts.max_request_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(opts.max_concurrent_streams)
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX));
    builder
}

/// The longest request head accepted (at least hyper's smallest read buffer).
pub(super) fn head_limit(opts: &ServeOptions) -> usize {
    opts.max_request_header_bytes.max(MIN_HEAD_BYTES)
}

/// Length of the HTTP/2 connection preface: past it, hyper's protocol sniffing is over.
const PREFACE_LEN: usize = 24;

/// hyper's smallest accepted HTTP/1 read buffer.
const MIN_HEAD_BYTES: usize = 8 * 1024;
