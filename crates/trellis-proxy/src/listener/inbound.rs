//! The inbound listener: connections headed for the local workload. With transparent
//! capture the target is the connection's original destination (the pod's own
//! `ip:port`); without it, a configured local application address.
//!
//! Bytes are forwarded as they are, whatever the protocol: HTTP/1.1, h2, WebSocket and
//! opaque TCP reach the application unchanged. Nothing on the inbound side depends on the
//! protocol yet (inbound authorization and request metrics come with capture), so no
//! detection runs: sniffing would only delay server-first protocols by the detection
//! timeout.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::outbound::original_dst;
use super::{ListenerContext, accept_loop};
use crate::tcp::{TcpProxyOptions, TcpStats, proxy_tcp};

/// Accepts connections for the local workload and forwards them to it.
pub struct InboundListener {
    listener: TcpListener,
    app: Option<SocketAddr>,
    opts: Arc<TcpProxyOptions>,
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
        InboundListener {
            listener,
            app,
            opts: Arc::new(TcpProxyOptions::default()),
            ctx,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the context's shutdown signal; connections already accepted continue.
    pub async fn run(self) -> io::Result<()> {
        let app = self.app;
        let opts = self.opts;
        accept_loop(self.listener, self.ctx, move |stream, peer| {
            let opts = Arc::clone(&opts);
            async move {
                let target = match (original_dst(&stream), stream.local_addr()) {
                    (Some(original), Ok(local)) if original != local => original,
                    _ => match app {
                        Some(app) => app,
                        None => {
                            tracing::debug!(target: "trellis::inbound", %peer, "connection was not captured and no application address is set; closing");
                            return;
                        }
                    },
                };
                let stats = TcpStats::default();
                match proxy_tcp(stream, target, &opts, &stats).await {
                    Ok((sent, received)) => {
                        tracing::debug!(target: "trellis::inbound", %peer, %target, sent, received, "connection closed");
                    }
                    Err(error) => {
                        let flags = error.response_flag().map_or("-", crate::telemetry::ResponseFlag::code);
                        tracing::debug!(target: "trellis::inbound", %peer, %target, flags, %error, "connection failed");
                    }
                }
            }
        })
        .await
    }
}
