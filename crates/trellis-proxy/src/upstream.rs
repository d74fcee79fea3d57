//! Upstream connections: one pool per [`Backend`](crate::runtime::Backend), enforcing the
//! backend's DestinationRule `connectionPool` on every connection it opens.
//!
//! - HTTP/1.1 ([`h1`], a client of our own): idle keep-alive connections wait in a small
//!   LIFO stack per endpoint; a request takes the most recently used one that is still
//!   usable, else opens a new one. A connection goes back to its stack as soon as its
//!   response body has been read (never after a `101 Switching Protocols`: the upgraded
//!   stream belongs to the caller).
//! - HTTP/2 ([`h2`], ports with protocol HTTP2/gRPC, hyper's client): one multiplexed
//!   connection per endpoint, opened by the first request that needs it (the others wait
//!   for that connect rather than opening their own) and replaced when it closes.
//! - Passthrough (no endpoint index, `Upstream::OriginalDestination`): a fresh connection
//!   per request to the request's authority, closed after the response. Passthrough HTTP
//!   is rare enough in a mesh that a per-authority pool is not worth its state.
//!
//! Limits: `maxConnections` counts every open connection to the backend (a permit from
//! [`ConnectionPoolLimits`] lives as long as the connection). When it is reached, a
//! request waits for an idle connection or a freed slot while it holds one of the
//! `http1MaxPendingRequests` slots, and gets `503 UO` at once when there is none; waiting
//! is bounded by the route timeout, which the caller applies. Idle connections are closed
//! after `idleTimeout` (HTTP/1.1: by the pool's sweeper; HTTP/2: by the connection's
//! driver); `maxRequestsPerConnection` retires a connection after that many requests and
//! `maxConnectionDuration` at that age (it takes no new request and closes once its
//! responses are done); `connectTimeout` and `tcpKeepalive` apply to every connect. A
//! configuration reload builds new pools: the old pool's idle connections close when it
//! is dropped, requests in flight finish on theirs.

pub mod h1;
mod h2;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Request, Response, request};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use trellis_model::ConnectionPool;

use crate::balance::EndpointState;
use crate::http::RequestBody;
use crate::resilience::{ConnectionPermit, ConnectionPoolLimits, Overflow};
use crate::tcp::{TcpError, TcpProxyOptions};

/// Settings a backend's policy may leave unset, taken from the listener's options.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamDefaults {
    /// Connect timeout when `tcp.connectTimeout` is unset.
    pub connect_timeout: Duration,
    /// Idle timeout when `http.idleTimeout` is unset.
    pub idle_timeout: Duration,
}

/// Why a request could not be sent upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A connection-pool limit was reached (`503 UO`, never retried).
    #[error(transparent)]
    Overflow(#[from] Overflow),
    /// The TCP connection could not be established (`UF`).
    #[error(transparent)]
    Connect(#[from] TcpError),
    /// The endpoint's host name did not resolve (`UF`).
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name looked up.
        host: Box<str>,
        /// What the resolver said.
        source: io::Error,
    },
    /// Another request's connect to this HTTP/2 endpoint, which this one waited for,
    /// failed (`UF`).
    #[error("the shared connect attempt to this endpoint failed")]
    SharedConnectFailed,
    /// The HTTP handshake on a new connection failed (`UF`).
    #[error("upstream handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    /// The request has no usable target (unknown endpoint index, passthrough without an
    /// authority) (`UF`).
    #[error("no upstream address for this request")]
    NoTarget,
    /// An HTTP/2 connection failed while the request was sent or answered (`UC`).
    #[error("upstream request failed: {0}")]
    Request(#[source] hyper::Error),
    /// An HTTP/1.1 exchange failed: the connection, the response, or the request body
    /// (`UC`).
    #[error(transparent)]
    Http1(#[from] h1::Error),
}

impl UpstreamError {
    /// What was wrong with the upstream's response when it was not valid HTTP (`UPE`).
    pub fn protocol_error(&self) -> Option<&'static str> {
        match self {
            UpstreamError::Http1(e) => e.protocol_error(),
            _ => None,
        }
    }

    /// Whether no connection was made, so the request certainly never reached the server.
    pub fn is_connect_failure(&self) -> bool {
        !matches!(
            self,
            UpstreamError::Overflow(_) | UpstreamError::Request(_) | UpstreamError::Http1(_)
        )
    }
}

/// The upstream connections of one backend; built with the backend at configuration time.
#[derive(Debug)]
pub struct UpstreamPool {
    shared: Arc<Shared>,
}

/// Where a connection is dialled.
#[derive(Debug)]
enum Dial {
    /// An address known at configuration time.
    Addr(SocketAddr),
    /// `host:port` resolved at connect time (DNS endpoints).
    Name(Box<str>),
}

/// One endpoint's pooled connections.
#[derive(Debug)]
struct EndpointConns {
    dial: Dial,
    /// Idle HTTP/1.1 connections, most recently used last. Boxed: a connection moves
    /// between this stack and the response body reading from it with every request.
    #[expect(clippy::vec_box, reason = "connections move in and out by pointer")]
    idle: std::sync::Mutex<Vec<Box<h1::Conn>>>,
    /// Wakes requests waiting for a connection of this endpoint.
    available: Notify,
    /// The HTTP/2 connection state.
    h2: h2::Slot,
}

/// State shared by the pool, its connection driver tasks (weakly) and waiting requests.
#[derive(Debug)]
struct Shared {
    /// Prior-knowledge HTTP/2 (one multiplexed connection per endpoint).
    http2: bool,
    /// Connect timeout and keepalive; the timeout is the pool's only when
    /// `connect_timeout_set`, else the listener default replaces it at connect time.
    tcp: TcpProxyOptions,
    connect_timeout_set: bool,
    /// `None`: the listener default; `Some(ZERO)`: never close idle connections.
    idle_timeout: Option<Duration>,
    /// `maxConnectionDuration`: connections take no new request after this age.
    max_age: Option<Duration>,
    limits: ConnectionPoolLimits,
    endpoints: Box<[EndpointConns]>,
    /// Notified (all waiters) whenever a connection slot is given back.
    freed: Notify,
    /// Requests waiting for a connection; checkins only notify when there are some.
    waiting: AtomicUsize,
    /// Whether the HTTP/1.1 idle sweeper runs (`h1::sweep`).
    sweeping: AtomicBool,
    next_id: AtomicU64,
}

impl UpstreamPool {
    /// A pool for `endpoints` (in balancer order) under `pool`'s settings, sharing the
    /// backend's `limits`; `http2` selects prior-knowledge HTTP/2.
    pub fn new(
        pool: &ConnectionPool,
        limits: ConnectionPoolLimits,
        endpoints: &[EndpointState],
        http2: bool,
    ) -> UpstreamPool {
        let endpoints = endpoints
            .iter()
            .map(|e| EndpointConns {
                dial: match e.address().parse() {
                    Ok(addr) => Dial::Addr(addr),
                    Err(_) => Dial::Name(e.address().into()),
                },
                idle: std::sync::Mutex::new(Vec::new()),
                available: Notify::new(),
                h2: h2::Slot::default(),
            })
            .collect();
        UpstreamPool {
            shared: Arc::new(Shared {
                http2,
                tcp: TcpProxyOptions {
                    idle_timeout: None,
                    ..TcpProxyOptions::from_pool(pool)
                },
                connect_timeout_set: pool.connect_timeout.is_some(),
                idle_timeout: pool.idle_timeout,
                max_age: pool.max_connection_duration.filter(|d| !d.is_zero()),
                limits,
                endpoints,
                freed: Notify::new(),
                waiting: AtomicUsize::new(0),
                sweeping: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// Sends `req` to endpoint `endpoint` (an index of the backend's endpoints), or for
    /// passthrough (`None`) to the authority in `req`'s URI, over a pooled connection.
    pub async fn send(
        &self,
        endpoint: Option<usize>,
        req: Request<RequestBody>,
        defaults: &UpstreamDefaults,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let (head, body) = req.into_parts();
        self.send_parts(endpoint, RequestHead::Owned(head), body, defaults)
            .await
    }

    /// As [`UpstreamPool::send`], with the head moved in or lent by a caller that keeps it
    /// (to send it again on a retry): HTTP/1.1 writes it from the borrow, HTTP/2 needs a copy.
    pub(crate) async fn send_parts(
        &self,
        endpoint: Option<usize>,
        head: RequestHead<'_>,
        body: RequestBody,
        defaults: &UpstreamDefaults,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        match (self.shared.http2, endpoint) {
            (false, Some(ep)) => Ok(h1::send(&self.shared, ep, head, body, defaults)
                .await?
                .map(UpstreamBody::Http1)),
            (true, Some(ep)) => {
                let req = Request::from_parts(head.into_owned(), body);
                Ok(h2::send(&self.shared, ep, req, defaults)
                    .await?
                    .map(UpstreamBody::Http2))
            }
            (http2, None) => passthrough(&self.shared, http2, head, body, defaults).await,
        }
    }

    /// Idle HTTP/1.1 connections currently pooled for endpoint `index` (for tests and
    /// admin pages).
    pub fn idle_connections(&self, index: usize) -> usize {
        self.shared
            .endpoints
            .get(index)
            .and_then(|e| e.idle.lock().ok().map(|s| s.len()))
            .unwrap_or(0)
    }
}

/// A request head on its way upstream: moved in, or borrowed from a caller that may send
/// it again.
#[allow(clippy::large_enum_variant)] // Moved once per request: boxing would allocate.
pub(crate) enum RequestHead<'a> {
    Owned(request::Parts),
    Borrowed(&'a request::Parts),
}

impl RequestHead<'_> {
    fn parts(&self) -> &request::Parts {
        match self {
            RequestHead::Owned(p) => p,
            RequestHead::Borrowed(p) => p,
        }
    }

    fn into_owned(self) -> request::Parts {
        match self {
            RequestHead::Owned(p) => p,
            RequestHead::Borrowed(p) => p.clone(),
        }
    }
}

/// A fresh connection for one request to the authority the client addressed.
async fn passthrough(
    shared: &Arc<Shared>,
    http2: bool,
    head: RequestHead<'_>,
    body: RequestBody,
    defaults: &UpstreamDefaults,
) -> Result<Response<UpstreamBody>, UpstreamError> {
    let authority = head
        .parts()
        .uri
        .authority()
        .ok_or(UpstreamError::NoTarget)?;
    let port = authority.port_u16().unwrap_or(80);
    let dial = match authority.host().trim_matches(['[', ']']).parse() {
        Ok(ip) => Dial::Addr(SocketAddr::new(ip, port)),
        Err(_) => Dial::Name(format!("{}:{port}", authority.host()).into()),
    };
    // Nothing to reuse: only a new connection slot (or an overflow) can come back.
    let slot = match obtain(shared, &shared.freed, || None::<Infallible>).await? {
        Obtained::Reused(never) => match never {},
        Obtained::New(slot) => slot,
    };
    let stream = shared.connect(&dial, defaults).await?;
    if http2 {
        let mut req = Request::from_parts(head.into_owned(), body);
        h2::authority_from_host(&mut req);
        let (_, mut sender, _) = h2::handshake(shared, stream, slot, None, defaults).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Request)?;
        return Ok(resp.map(UpstreamBody::Http2));
    }
    let resp = h1::send_once(shared, stream, slot, head.parts(), body).await?;
    Ok(resp.map(UpstreamBody::Http1))
}

/// The body of an upstream response, read from whichever client carried the request.
#[derive(Debug)]
pub enum UpstreamBody {
    /// From an HTTP/1.1 connection of the pool.
    Http1(h1::ResponseBody),
    /// From hyper's HTTP/2 client.
    Http2(Incoming),
}

impl UpstreamBody {
    /// Gives a finished request head's header map to the connection this body reads
    /// from, for its next response head (saves allocating one per response).
    pub fn keep_spare_headers(&mut self, headers: ::http::HeaderMap) {
        match self {
            UpstreamBody::Http1(body) => body.keep_spare_headers(headers),
            UpstreamBody::Http2(_) => {}
        }
    }

    /// Whether the response head's header values may share a connection's read buffer
    /// (hyper's HTTP/2 client: HPACK strings are slices of the frame they came in). An
    /// HTTP/1.1 head's values share one copy of that head alone
    /// ([`h1`]'s parser copies it out of the read buffer).
    pub fn values_share_read_buffer(&self) -> bool {
        matches!(self, UpstreamBody::Http2(_))
    }

    /// An HTTP/1.1 response's header fields while they are still the bytes they came in
    /// (its header map then holds only what was added on the way; see [`full_headers`]).
    pub(crate) fn raw_head(&self) -> Option<&crate::h1::RawHead> {
        match self {
            UpstreamBody::Http1(body) => body.raw_head(),
            UpstreamBody::Http2(_) => None,
        }
    }

    /// The upgraded connection of an HTTP/1.1 `101 Switching Protocols` (once).
    pub fn take_upgrade(&mut self) -> Option<h1::Upgraded> {
        match self {
            UpstreamBody::Http1(body) => body.take_upgrade(),
            UpstreamBody::Http2(_) => None,
        }
    }
}

impl crate::h1::RawHeadSource for UpstreamBody {
    fn take_raw_head(&mut self) -> Option<crate::h1::RawHead> {
        match self {
            UpstreamBody::Http1(body) => body.take_raw_head(),
            UpstreamBody::Http2(_) => None,
        }
    }
}

/// Puts an HTTP/1.1 response's header fields still kept as bytes into its header map
/// (before what was added to it), for code that reads or edits the map: after this the
/// map is the whole head, as the one a parser would have built.
pub fn full_headers(resp: &mut Response<UpstreamBody>) {
    use crate::h1::RawHeadSource;
    if let Some(raw) = resp.body_mut().take_raw_head() {
        raw.append_to(resp.headers_mut(), true);
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Http1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Http2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Http1(body) => body.is_end_stream(),
            UpstreamBody::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Http1(body) => body.size_hint(),
            UpstreamBody::Http2(body) => body.size_hint(),
        }
    }
}

impl Shared {
    /// Opens a TCP connection with the backend's connect timeout and socket options.
    async fn connect(
        &self,
        dial: &Dial,
        defaults: &UpstreamDefaults,
    ) -> Result<TcpStream, UpstreamError> {
        let mut opts = self.tcp.clone();
        if !self.connect_timeout_set {
            opts.connect_timeout = defaults.connect_timeout;
        }
        let addr = match dial {
            Dial::Addr(addr) => *addr,
            Dial::Name(name) => {
                let resolved =
                    tokio::time::timeout(opts.connect_timeout, tokio::net::lookup_host(&**name))
                        .await
                        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
                let resolve_err = |source| UpstreamError::Resolve {
                    host: name.clone(),
                    source,
                };
                resolved
                    .map_err(resolve_err)?
                    .next()
                    .ok_or_else(|| resolve_err(io::ErrorKind::NotFound.into()))?
            }
        };
        Ok(crate::tcp::connect(addr, &opts).await?)
    }

    /// The idle timeout in force; `None` when idle connections are never closed.
    fn idle_timeout(&self, defaults: &UpstreamDefaults) -> Option<Duration> {
        Some(self.idle_timeout.unwrap_or(defaults.idle_timeout)).filter(|d| !d.is_zero())
    }

    /// When a connection opened now must stop taking requests (`maxConnectionDuration`).
    fn expiry(&self) -> Option<Instant> {
        self.max_age.map(|age| Instant::now() + age)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A `maxConnections` slot held by one connection (an HTTP/1.1 [`h1::Conn`], an HTTP/2
/// connection's driver); giving it back wakes the requests waiting for one.
#[derive(Debug)]
struct ConnSlot {
    permit: Option<ConnectionPermit>,
    shared: Weak<Shared>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        if let Some(shared) = self.shared.upgrade() {
            shared.freed.notify_waiters();
        }
    }
}

/// What [`obtain`] found: a reusable connection, or a slot to open a new one with.
enum Obtained<T> {
    Reused(T),
    New(ConnSlot),
}

/// Whether a connection with this expiry must take no new request.
fn expired(expires: Option<Instant>) -> bool {
    expires.is_some_and(|at| Instant::now() >= at)
}

/// When a driver should next look at its connection: the earliest of `base + idle` and
/// the connection's expiry; `None` when neither applies.
fn next_check(base: Instant, idle: Option<Duration>, expires: Option<Instant>) -> Option<Instant> {
    match (idle.map(|d| base + d), expires) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Counts a waiting request while alive.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A reusable connection from `reuse`, else a new connection slot, else (holding a pending
/// slot, `UO` when there is none) waits until `available` or a freed slot lets one of the
/// two succeed.
async fn obtain<T>(
    shared: &Arc<Shared>,
    available: &Notify,
    mut reuse: impl FnMut() -> Option<T>,
) -> Result<Obtained<T>, UpstreamError> {
    if let Some(t) = reuse() {
        return Ok(Obtained::Reused(t));
    }
    let slot = |permit| ConnSlot {
        permit: Some(permit),
        shared: Arc::downgrade(shared),
    };
    if let Ok(permit) = shared.limits.try_acquire_connection() {
        return Ok(Obtained::New(slot(permit)));
    }
    let _pending = shared.limits.try_acquire_pending()?;
    shared.waiting.fetch_add(1, Ordering::SeqCst);
    let _waiting = Waiting(&shared.waiting);
    loop {
        let freed = shared.freed.notified();
        let ready = available.notified();
        tokio::pin!(freed, ready);
        freed.as_mut().enable();
        ready.as_mut().enable();
        if let Some(t) = reuse() {
            return Ok(Obtained::Reused(t));
        }
        if let Ok(permit) = shared.limits.try_acquire_connection() {
            return Ok(Obtained::New(slot(permit)));
        }
        tokio::select! {
            () = freed => {}
            () = ready => {}
        }
    }
}
