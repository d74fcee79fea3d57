//! The outbound listener: one port for both ways an application's traffic reaches the
//! proxy. A connection redirected by iptables (`REDIRECT`) carries its original
//! destination (`SO_ORIGINAL_DST`) and is served as a connection to that address; any
//! other connection was dialed to the proxy itself, by an application using it as its
//! `HTTP_PROXY`, and is served as HTTP routed by `Host` (absolute-form URIs included).

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use super::{ListenerContext, Unknown, accept_loop};

/// Accepts outbound connections: captured ones are routed by their original destination
/// (unknown destinations are passed through to it, as Istio's PassthroughCluster does),
/// explicit ones are served as an HTTP proxy.
pub struct OutboundListener {
    listener: TcpListener,
    ctx: Arc<ListenerContext>,
}

impl OutboundListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener, ctx: Arc<ListenerContext>) -> OutboundListener {
        OutboundListener { listener, ctx }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the context's shutdown signal; errors only when accepting fails for
    /// good. Connections already accepted keep running after it returns.
    pub async fn run(self) -> io::Result<()> {
        let ctx = Arc::clone(&self.ctx);
        accept_loop(self.listener, self.ctx, move |stream, peer| {
            let ctx = Arc::clone(&ctx);
            async move {
                match captured_target(&stream) {
                    Some(target) => {
                        ctx.serve_target(stream, peer, target, Unknown::Passthrough)
                            .await
                    }
                    None => Arc::clone(&ctx.http).serve_connection(stream, peer).await,
                }
            }
        })
        .await
    }
}

/// The original destination of a transparently captured connection: `None` when the
/// connection was not redirected (no NAT record, or the record names this very socket).
fn captured_target(stream: &TcpStream) -> Option<SocketAddr> {
    let original = original_dst(stream)?;
    let local = stream.local_addr().ok()?;
    (original != local).then_some(original)
}

/// The connection's destination before NAT (`SO_ORIGINAL_DST`, IPv4 or IPv6), as set by
/// an iptables `REDIRECT` rule. `None` when there is none (no conntrack entry) or on
/// platforms other than Linux.
#[cfg(target_os = "linux")]
pub fn original_dst(stream: &TcpStream) -> Option<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    let addr = match stream.local_addr().ok()? {
        SocketAddr::V4(_) => sock.original_dst_v4(),
        SocketAddr::V6(_) => sock.original_dst_v6(),
    };
    let addr = addr.ok()?;
    addr.as_socket().map(|a| match a {
        // An IPv4 client on a dual-stack socket reports a mapped address; unmap it so it
        // matches the runtime's IPv4 VIPs and endpoints.
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
        },
        v4 => v4,
    })
}

/// No transparent capture outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn original_dst(_stream: &TcpStream) -> Option<SocketAddr> {
    None
}
