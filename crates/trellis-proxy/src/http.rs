//! The outbound HTTP listener: accepts HTTP/1.1 and h2c (prior knowledge) connections,
//! routes each request by `Host`/`:authority` (absolute-form URIs too, for `HTTP_PROXY`
//! use) through the current [`Runtime`], picks a destination and an endpoint, and
//! forwards over the backend's upstream connection pool ([`crate::upstream`]).
//!
//! Local outcomes carry a response flag in `x-trellis-flags` and a body naming it:
//! unknown host or no route → 404 `NR`, no endpoint → 503 `UH`, connect failure → 503
//! `UF`, route timeout → 504 `UT`, upstream reset → 503 `UC`, an upstream HTTP/1.1 head
//! that is not valid HTTP → 502 `UPE`, connection-pool limit →
//! 503 `UO`, retries exhausted on a local failure → 503 `URX`. Routes with a retry policy
//! retry (see `attempt`). Route features: fault injection (`fault`, flags `DI`/`FI`),
//! mirroring (`mirror`), rewrites (`rewrite`), CORS (`cors`) and HTTP/1.1 upgrades
//! (`upgrade`).

mod attempt;
mod body;
pub mod cors;
mod exchange;
pub mod fault;
mod forward;
mod guard;
mod h1;
mod inbound;
mod local;
pub mod mirror;
mod observe;
pub mod rewrite;
mod upgrade;

pub use body::{ClientBody, ClientBodyError};
pub use exchange::Exchange;
pub use h1::WireBody;
pub use inbound::InboundTarget;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::http::{Request, Response};
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runtime::Runtime;
use crate::telemetry::Telemetry;

/// Response header naming the response flags of a locally generated response.
pub const FLAGS_HEADER: &str = "x-trellis-flags";

/// Body of every response the listener returns: the upstream's stream, or a local one.
pub type ProxyBody = Either<crate::upstream::UpstreamBody, Full<Bytes>>;

/// Body of every request sent upstream: the client's stream, or bytes already read (a
/// mirrored or retried request).
pub type RequestBody = Either<ClientBody, Full<Bytes>>;

/// Listener settings that are not part of the mesh model.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Upper bound on establishing an upstream TCP connection (failure is `UF`).
    pub connect_timeout: Duration,
    /// How long an idle upstream connection stays pooled when the backend's
    /// `connectionPool.http.idleTimeout` is unset (Istio's default, 1 h; zero: never
    /// closed for idleness).
    pub pool_idle_timeout: Duration,
    /// Upper bound on one request head (HTTP/1 request line + headers; HTTP/2 header
    /// list size): larger heads get 431 (Envoy's limit is 60 KiB). At least 8 KiB.
    pub max_request_header_bytes: usize,
    /// Upper bound on the number of HTTP/1 request headers: more get 431.
    pub max_request_headers: usize,
    /// A client must finish each HTTP/1 request head (and, on any connection, start a
    /// request or get past the 24-byte HTTP/2 preface) within this, or the connection is
    /// closed: slow-loris defence. Under HTTP/1 it also bounds the wait for the next
    /// request on a kept-alive connection (the head timer starts when the server begins
    /// waiting, as hyper's does).
    pub header_read_timeout: Duration,
    /// A connection on which no bytes moved and no request waited for its response for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2: streams a client may have open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Where every request is reported (Istio metrics, proxy counters, access log). The
    /// default has a fresh registry, an `unknown` source and no access log.
    pub telemetry: Arc<Telemetry>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(3600),
            max_request_header_bytes: 64 * 1024,
            max_request_headers: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_concurrent_streams: 100,
            telemetry: Arc::new(Telemetry::default()),
        }
    }
}

/// The HTTP side of a listener: state shared by every connection it serves. Build one
/// per listener with [`HttpProxy::new`] and hand it each accepted (or detected)
/// connection with [`HttpProxy::serve_connection`].
pub struct HttpProxy {
    /// The current runtime; each request clones the `Arc` (no lock held across await).
    runtime: watch::Receiver<Arc<Runtime>>,
    /// Upstream settings for backends whose `connectionPool` leaves them unset; the
    /// connections themselves are pooled per backend (`Backend::upstream`).
    upstream: crate::upstream::UpstreamDefaults,
    /// Downstream HTTP/1.1 server settings (`h1`).
    h1: h1::Settings,
    /// hyper's HTTP/1.1 + HTTP/2 server settings, for what `h1` leaves to it.
    server: auto::Builder<TokioExecutor>,
    /// Per-connection idle and first-request timeouts (`guard::IdleIo`).
    conn_timeouts: guard::Timeouts,
    /// Metrics and access log every request is reported to (`observe`).
    telemetry: Arc<Telemetry>,
    /// Set by [`HttpProxy::drain`]: connections finish their current request and close.
    draining: watch::Sender<bool>,
    /// Connections to the local application, for the inbound side (`inbound`).
    inbound_pools: inbound::InboundPools,
}

/// How a connection's requests are handled (cloned per request: free but for inbound).
#[derive(Clone)]
enum Scope {
    /// Routed by service host (a sidecar's outbound side).
    Outbound,
    /// Routed by the virtual hosts of the gateway port it arrived on.
    Gateway(u16),
    /// Handed to the local application (a sidecar's inbound side).
    Inbound(Arc<InboundTarget>),
}

impl HttpProxy {
    /// Prepares the upstream defaults and the downstream server settings. Publish a
    /// new [`Runtime`] through the `watch` sender to change configuration: requests
    /// already routed keep the runtime they started with.
    pub fn new(runtime: watch::Receiver<Arc<Runtime>>, opts: &ServeOptions) -> Arc<HttpProxy> {
        let upstream = crate::upstream::UpstreamDefaults {
            connect_timeout: opts.connect_timeout,
            idle_timeout: opts.pool_idle_timeout,
        };
        let server = guard::server_builder(opts);
        let h1 = h1::Settings {
            limits: h1::Limits {
                head_bytes: guard::head_limit(opts),
                headers: opts.max_request_headers,
            },
            header_read_timeout: opts.header_read_timeout,
        };
        Arc::new(HttpProxy {
            runtime,
            upstream,
            h1,
            server,
            conn_timeouts: guard::Timeouts::from(opts),
            telemetry: Arc::clone(&opts.telemetry),
            draining: watch::Sender::new(false),
            inbound_pools: inbound::InboundPools::default(),
        })
    }

    /// Serves HTTP/1.1 or HTTP/2 (prior knowledge) on one downstream connection until
    /// the client closes it. `io` may already have had bytes peeked (protocol
    /// detection) but none consumed.
    pub async fn serve_connection<I>(self: Arc<Self>, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_scoped(io, peer, Scope::Outbound).await;
    }

    /// Serves a connection accepted on gateway port `port`: requests are routed by the
    /// gateway's virtual hosts for that port instead of by service host.
    pub async fn serve_gateway_connection<I>(self: Arc<Self>, io: I, peer: SocketAddr, port: u16)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_scoped(io, peer, Scope::Gateway(port)).await;
    }

    /// Serves a connection from the inbound listener: every request goes to `target`'s
    /// application and is reported as the destination (see `inbound`).
    pub async fn serve_inbound_connection<I>(
        self: Arc<Self>,
        io: I,
        peer: SocketAddr,
        target: Arc<InboundTarget>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_scoped(io, peer, Scope::Inbound(target)).await;
    }

    async fn serve_scoped<I>(self: Arc<Self>, io: I, peer: SocketAddr, scope: Scope)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let in_flight = Arc::new(guard::InFlight::default());
        let io: Box<dyn h1::Io> = Box::new(self.conn_timeouts.wrap(io, Arc::clone(&in_flight)));
        let ended = h1::serve(io, self.h1, &self.draining, |req| {
            Arc::clone(&self).respond(req, peer, scope.clone(), in_flight.enter())
        })
        .await;
        if let h1::Ended::Elsewhere(io) = ended {
            self.serve_with_hyper(io, peer, scope, in_flight).await;
        }
    }

    /// Handles one request of any connection: forwards it (or answers locally) and
    /// returns the response with the request's report riding in its body.
    async fn respond(
        self: Arc<Self>,
        mut req: Request<ClientBody>,
        peer: SocketAddr,
        scope: Scope,
        in_flight: guard::InFlightGuard,
    ) -> Response<observe::ObservedBody<ProxyBody>> {
        let _in_flight = in_flight;
        // Reports the request when its response body ends, or with `DC` when the client
        // goes away first (this future or the body dropped).
        let mut obs = observe::Observation::start(self, &mut req, peer);
        let ex = &mut obs.exchange;
        let resp = match &scope {
            Scope::Outbound => forward::handle(&obs.proxy, req, ex).await,
            Scope::Gateway(port) => {
                ex.gateway_port = Some(*port);
                forward::handle(&obs.proxy, req, ex).await
            }
            Scope::Inbound(target) => inbound::handle(&obs.proxy, req, ex, target).await,
        };
        obs.respond(resp)
    }

    /// Serves the rest of a connection with hyper (HTTP/2, and HTTP/1.1 heads the own
    /// server leaves to it, see [`h1`]).
    async fn serve_with_hyper(
        self: Arc<Self>,
        io: h1::Rewind,
        peer: SocketAddr,
        scope: Scope,
        in_flight: Arc<guard::InFlight>,
    ) {
        let proxy = Arc::clone(&self);
        let svc = service_fn(move |req: Request<Incoming>| {
            // Boxed: hyper spawns each HTTP/2 stream's future as a task, and moves it
            // several times on the way (into the task cell, the stage, ...); the request's
            // future is kilobytes, a box is a pointer.
            let respond = Box::pin(Arc::clone(&proxy).respond(
                req.map(ClientBody::Hyper),
                peer,
                scope.clone(),
                in_flight.enter(),
            ));
            async move {
                let mut resp = respond.await;
                // hyper writes the map alone: fields an upstream's response still keeps
                // as bytes (see `h1::RawHead`) go into it, hop-by-hop ones left out.
                if let Some(raw) = crate::h1::RawHeadSource::take_raw_head(resp.body_mut()) {
                    raw.append_to(resp.headers_mut(), false);
                }
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = self
            .server
            .serve_connection_with_upgrades(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let mut draining = self.draining.subscribe();
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = async { drop(draining.wait_for(|d| *d).await) } => {
                // HTTP/1.1: close after the response in progress (idle connections close
                // at once); HTTP/2: GOAWAY, streams in flight finish.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "downstream connection ended with error");
        }
    }

    /// Where requests are reported (shared with the TCP side of the listeners).
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Starts draining: every connection, open or future, finishes the request in progress
    /// and closes (HTTP/2 sends GOAWAY). Listeners stop accepting separately.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }
}

/// Serves `listener` until accepting fails fatally; abort the task to stop it. Every
/// connection is treated as HTTP (no protocol detection).
pub async fn serve(
    listener: TcpListener,
    runtime: watch::Receiver<Arc<Runtime>>,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let proxy = HttpProxy::new(runtime, &opts);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                // Out of descriptors or a connection reset during accept: back off
                // briefly instead of spinning or giving up.
                tracing::warn!(error = %e, "accept failed, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        tokio::spawn(Arc::clone(&proxy).serve_connection(stream, peer));
    }
}

/// Accept errors that concern one connection or a passing resource shortage (e.g. out
/// of descriptors); anything else means the listener itself is broken.
pub fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | OutOfMemory
    ) || matches!(e.raw_os_error(), Some(23 | 24 | 105)) // ENFILE, EMFILE, ENOBUFS
}
