//! The inbound listener: connections headed for the local workload. With transparent
//! capture the target is the connection's original destination (the pod's own
//! `ip:port`); without it, a configured local application address.
//!
//! The address the client dialed (the original destination, or the listener's own address
//! in explicit mode) names the service port it belongs to, as an endpoint of that service.
//! Ports declared (or detected) as HTTP are served by the HTTP stack's inbound side
//! ([`HttpProxy::serve_inbound_connection`](crate::http::HttpProxy::serve_inbound_connection)):
//! each request is reported with `reporter="destination"` and handed to the application in
//! the client's protocol. Everything else — declared TCP, TLS, a port no service owns — is
//! forwarded byte for byte and counted in the TCP metrics. Ports declared TCP are never
//! sniffed, so server-first protocols pay no detection delay.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use super::outbound::original_dst;
use super::{ListenerContext, accept_loop, l4};
use crate::detect::{DetectPlan, Detected, detect_with_plan};

/// Accepts connections for the local workload and forwards them to it.
pub struct InboundListener {
    listener: TcpListener,
    app: Option<SocketAddr>,
    ctx: Arc<ListenerContext>,
}

impl InboundListener {
    /// Forwards connections that were not captured to `app` (the workload's address,
    /// e.g. `127.0.0.1:8080`); captured ones go to their original destination. Without
    /// `app`, connections that were not captured are closed.
    pub fn new(
        listener: TcpListener,
        app: Option<SocketAddr>,
        ctx: Arc<ListenerContext>,
    ) -> InboundListener {
        InboundListener { listener, app, ctx }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the context's shutdown signal; connections already accepted continue.
    pub async fn run(self) -> io::Result<()> {
        let app = self.app;
        let ctx = Arc::clone(&self.ctx);
        accept_loop(self.listener, self.ctx, move |stream, peer| {
            let ctx = Arc::clone(&ctx);
            async move {
                let local = stream.local_addr().ok();
                let (target, dialed) = match (original_dst(&stream), local) {
                    (Some(original), Some(local)) if original != local => (original, original),
                    _ => match (app, local) {
                        (Some(app), Some(local)) => (app, local),
                        _ => {
                            tracing::debug!(target: "trellis::inbound", %peer, "connection was not captured and no application address is set; closing");
                            return;
                        }
                    },
                };
                serve(&ctx, stream, peer, target, dialed).await;
            }
        })
        .await
    }
}

/// Serves one connection for the application at `target`, dialed by the client as
/// `dialed`: HTTP through the inbound HTTP side when the port is (or sniffs as) HTTP,
/// bytes otherwise.
async fn serve(
    ctx: &Arc<ListenerContext>,
    stream: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    dialed: SocketAddr,
) {
    // Only the port's facts are needed: the connection must not keep this configuration
    // alive after a reload (with keep-alive it may last for hours).
    let (service, port, plan) = {
        let runtime = ctx.runtime.borrow();
        let found = runtime.tcp_targets().lookup(dialed);
        (
            found.map(|p| Arc::<str>::from(p.service())),
            found.map_or(dialed.port(), |p| p.port()),
            found.map_or(DetectPlan::Opaque, |p| p.plan()),
        )
    };
    let detected = match plan {
        DetectPlan::Opaque | DetectPlan::Tls => Detected::Opaque,
        plan => match detect_with_plan(&stream, plan, &ctx.detect).await {
            Ok(d) => d,
            Err(error) => {
                tracing::debug!(target: "trellis::inbound", %peer, %target, %error, "connection failed during detection");
                return;
            }
        },
    };
    let http2 = match detected {
        Detected::Http1 => false,
        Detected::Http2 => true,
        Detected::Tls { .. } | Detected::Opaque => {
            let telemetry = ctx.http.telemetry();
            l4::inbound(stream, peer, target, service.as_ref(), telemetry).await;
            return;
        }
    };
    let http = Arc::clone(&ctx.http);
    let inbound = http.inbound_target(target, service, port, http2);
    http.serve_inbound_connection(stream, peer, inbound).await;
}
