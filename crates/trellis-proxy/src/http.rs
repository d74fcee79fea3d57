//! The outbound HTTP listener: accepts HTTP/1.1 and h2c (prior knowledge) connections,
//! routes each request by `Host`/`:authority` (absolute-form URIs too, for `HTTP_PROXY`
//! use) through the current [`Runtime`], picks a destination and an endpoint, and
//! forwards over a shared keep-alive client pool.
//!
//! Local outcomes carry a response flag in `x-trellis-flags` and a body naming it:
//! unknown host or no route → 404 `NR`, no endpoint → 503 `UH`, connect failure → 503
//! `UF`, route timeout → 504 `UT`, upstream reset → 503 `UC`, connection-pool limit →
//! 503 `UO`, retries exhausted on a local failure → 503 `URX`. Routes with a retry policy
//! retry (see `attempt`); fault injection, mirroring and rewrites are not applied yet.

mod attempt;
mod exchange;
mod forward;
mod local;

pub use exchange::Exchange;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runtime::Runtime;
use crate::telemetry::ResponseFlag;

/// Response header naming the response flags of a locally generated response.
pub const FLAGS_HEADER: &str = "x-trellis-flags";

/// Body of every response the listener returns: the upstream's stream, or a local one.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Listener settings that are not part of the mesh model.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Upper bound on establishing an upstream TCP connection (failure is `UF`).
    pub connect_timeout: Duration,
    /// How long an idle upstream connection stays pooled.
    pub pool_idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// The HTTP side of a listener: state shared by every connection it serves. Build one
/// per listener with [`HttpProxy::new`] and hand it each accepted (or detected)
/// connection with [`HttpProxy::serve_connection`].
pub struct HttpProxy {
    /// The current runtime; each request clones the `Arc` (no lock held across await).
    runtime: watch::Receiver<Arc<Runtime>>,
    /// HTTP/1.1 upstreams.
    h1: attempt::UpstreamClient,
    /// HTTP/2 (prior knowledge) upstreams: ports with protocol HTTP2/gRPC.
    h2: attempt::UpstreamClient,
    /// Downstream HTTP/1.1 + HTTP/2 server settings.
    server: auto::Builder<TokioExecutor>,
}

impl HttpProxy {
    /// Prepares the upstream client pools and the downstream server settings. Publish a
    /// new [`Runtime`] through the `watch` sender to change configuration: requests
    /// already routed keep the runtime they started with.
    pub fn new(runtime: watch::Receiver<Arc<Runtime>>, opts: &ServeOptions) -> Arc<HttpProxy> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(opts.connect_timeout));
        let h1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(opts.pool_idle_timeout)
            .build(connector.clone());
        let h2 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(opts.pool_idle_timeout)
            .http2_only(true)
            .build(connector);
        let server = auto::Builder::new(TokioExecutor::new());
        Arc::new(HttpProxy {
            runtime,
            h1,
            h2,
            server,
        })
    }

    /// Serves HTTP/1.1 or HTTP/2 (prior knowledge) on one downstream connection until
    /// the client closes it. `io` may already have had bytes peeked (protocol
    /// detection) but none consumed.
    pub async fn serve_connection<I>(self: Arc<Self>, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let proxy = Arc::clone(&self);
        let svc = service_fn(move |req| {
            let proxy = Arc::clone(&proxy);
            async move {
                let mut exchange = Exchange {
                    peer: Some(peer),
                    ..Exchange::default()
                };
                let resp = forward::handle(&proxy, req, &mut exchange).await;
                if let Some(flag) = resp.extensions().get::<ResponseFlag>() {
                    exchange.flags.insert(*flag);
                }
                Ok::<_, Infallible>(resp)
            }
        });
        if let Err(e) = self.server.serve_connection(TokioIo::new(io), svc).await {
            tracing::debug!(%peer, error = %e, "downstream connection ended with error");
        }
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
