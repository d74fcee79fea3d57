//! Listeners: the layer between `accept()` and the protocol stacks. Each accepted
//! connection gets a *target* (where the client was headed), its protocol is detected as
//! the target port declares, and it is handed to the HTTP proxy
//! ([`HttpProxy::serve_connection`]) or routed as opaque TCP/TLS ([`crate::tcp`]).
//!
//! - [`OutboundListener`]: transparent capture (`SO_ORIGINAL_DST`) or explicit HTTP proxy;
//! - [`VipListeners`]: binds the loopback VIPs of services, for running without iptables;
//! - [`GatewayListeners`]: binds the HTTP ports of the gateways a gateway proxy serves;
//! - [`InboundListener`]: connections to the local workload, ready for capture.
//!
//! Graceful stop: every listener takes a [`ListenerContext`] whose `shutdown` signal stops
//! accepting, and counts its connections in [`Connections`], whose
//! [`Connections::wait_idle`] the drain awaits with a deadline.

mod dynamic;
mod inbound;
mod l4;
mod outbound;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::detect::{DetectOptions, Detected, detect_with_plan};
use crate::http::{HttpProxy, is_transient};
use crate::runtime::Runtime;

pub use dynamic::{DynamicListeners, GatewayListeners, VipListeners};
pub use inbound::InboundListener;
pub use outbound::{OutboundListener, original_dst};

/// Open connections of one or more listeners, for draining: clones share the count.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    inner: Arc<Counter>,
}

#[derive(Debug, Default)]
struct Counter {
    open: AtomicUsize,
    idle: Notify,
}

impl Connections {
    /// A new, zero count.
    pub fn new() -> Connections {
        Connections::default()
    }

    /// Connections accepted and not yet finished.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Waits until no connection is open or `limit` passes; `true` when idle. The drain
    /// calls this after signalling shutdown.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.inner.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.open() == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Counts one connection until the guard drops.
    fn track(&self) -> ConnectionGuard {
        self.inner.open.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Keeps one connection counted while it is served.
#[derive(Debug)]
struct ConnectionGuard {
    inner: Arc<Counter>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.inner.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

/// What every listener shares: configuration, the HTTP stack, detection settings, the
/// connection count and the shutdown signal. Build one per proxy and give each listener
/// an `Arc` of it.
pub struct ListenerContext {
    /// The current runtime. Connections hold no reference to it: HTTP requests each take
    /// the one current when they arrive; an opaque TCP connection keeps only its backend.
    pub runtime: watch::Receiver<Arc<Runtime>>,
    /// The HTTP stack detected HTTP connections are handed to.
    pub http: Arc<HttpProxy>,
    /// Protocol detection timeout.
    pub detect: DetectOptions,
    /// Open connections of every listener using this context.
    pub connections: Connections,
    /// Send `true` to stop accepting; connections already accepted continue.
    pub shutdown: watch::Receiver<bool>,
}

/// What to do with a connection whose target is not a known service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unknown {
    /// Proxy to the target itself (Istio's PassthroughCluster): captured outbound traffic
    /// to addresses outside the mesh.
    Passthrough,
    /// Close: the target is one of our own listeners (a VIP whose service just left), so
    /// connecting to it would loop.
    Close,
}

impl ListenerContext {
    /// Resolves once `shutdown` is `true` (or its sender is gone, which also means stop).
    async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Serves one connection headed for `target`: a known service port is detected per
    /// its plan, then served as HTTP or routed as TCP/TLS; anything else follows `unknown`.
    async fn serve_target(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        target: SocketAddr,
        unknown: Unknown,
    ) {
        let runtime = Arc::clone(&self.runtime.borrow());
        let Some(port) = runtime.tcp_targets().lookup(target) else {
            drop(runtime);
            match unknown {
                Unknown::Passthrough => {
                    l4::passthrough(stream, peer, target, self.http.telemetry()).await
                }
                Unknown::Close => {
                    tracing::debug!(%peer, %target, "no service at this address; closing")
                }
            }
            return;
        };
        let detected = match detect_with_plan(&stream, port.plan(), &self.detect).await {
            Ok(d) => d,
            Err(error) => {
                tracing::debug!(%peer, %target, %error, "connection failed during detection");
                return;
            }
        };
        let sni = match detected {
            Detected::Http1 | Detected::Http2 => {
                // Each request takes the configuration current when it arrives; holding this
                // one would keep it alive for as long as the client keeps the connection.
                drop(runtime);
                return Arc::clone(&self.http).serve_connection(stream, peer).await;
            }
            Detected::Tls { sni } => sni,
            Detected::Opaque => None,
        };
        let telemetry = self.http.telemetry();
        let routed = l4::route(peer, target, port, sni.as_deref(), telemetry);
        // The connection keeps its backend, not this configuration.
        drop(runtime);
        if let Some(r) = routed {
            r.serve(stream, peer, target, telemetry).await;
        }
    }
}

/// Accepts on `listener` until shutdown, handing each counted connection to `serve`.
/// Transient accept errors (descriptor exhaustion, aborted handshakes) back off briefly;
/// other errors end the loop.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stopped = ctx.stopped();
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut stopped => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "accept failed, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay failed");
        }
        let guard = ctx.connections.track();
        let fut = serve(stream, peer);
        tokio::spawn(async move {
            fut.await;
            drop(guard);
        });
    }
}
