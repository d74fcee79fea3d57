//! Opaque TCP and TLS-by-SNI routing of one connection to a known service port: pick the
//! route and a weighted destination, admit the connection against the backend's
//! `maxConnections`, pick an endpoint with the backend's balancer, and proxy bytes.
//!
//! Every outcome is logged once (`tracing`, target `trellis::tcp`) with its Envoy response
//! flag: no matching route `NR`, unknown destination or no endpoint `UH`, pool limit
//! `UO` (the client connection is closed at once), connect failure `UF`, resets `UC`/`DC`.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpStream;

use crate::balance::PickContext;
use crate::runtime::{PortTarget, Upstream};
use crate::tcp::{TcpProxyOptions, TcpStats, proxy_tcp};
use crate::telemetry::ResponseFlag;

/// Routes `stream` (headed for `target`, a port of a known service) by its TLS routes when
/// `sni` names one, else by its TCP routes, and proxies it until both sides are done.
pub(super) async fn route(
    stream: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    port: &PortTarget,
    sni: Option<&str>,
) {
    let ip = target.ip();
    let route = sni
        .and_then(|name| port.tls_route(ip, name))
        .or_else(|| port.tcp_route(ip));
    let Some(route) = route else {
        closed(
            peer,
            target,
            port.service(),
            ResponseFlag::NoRoute,
            "no TCP route matched",
        );
        return;
    };
    let random = rand::random::<u64>();
    let Some(dest) = route.pick(random) else {
        closed(
            peer,
            target,
            port.service(),
            ResponseFlag::NoHealthyUpstream,
            "no destination with weight",
        );
        return;
    };
    let Some(backend) = dest.backend.as_deref() else {
        closed(
            peer,
            target,
            &dest.host,
            ResponseFlag::NoHealthyUpstream,
            "unknown destination service",
        );
        return;
    };
    let _permit = match backend.limits().try_acquire_connection() {
        Ok(permit) => permit,
        Err(overflow) => {
            tracing::debug!(target: "trellis::tcp", %peer, %target, service = %dest.host, %overflow, flags = ResponseFlag::UpstreamOverflow.code(), "connection refused");
            return;
        }
    };
    let ctx = PickContext {
        random: random.rotate_left(32),
        hash: None,
        now: Instant::now(),
    };
    let (addr, state) = match backend.pick(&ctx) {
        Some(Upstream::Endpoint { index, authority }) => match resolve(authority.as_str()).await {
            Ok(addr) => (addr, backend.endpoints().get(index)),
            Err(error) => {
                tracing::debug!(target: "trellis::tcp", %peer, endpoint = %authority, %error, "cannot resolve endpoint");
                closed(
                    peer,
                    target,
                    &dest.host,
                    ResponseFlag::UpstreamConnectionFailure,
                    "endpoint does not resolve",
                );
                return;
            }
        },
        Some(Upstream::OriginalDestination) => (target, None),
        None => {
            closed(
                peer,
                target,
                &dest.host,
                ResponseFlag::NoHealthyUpstream,
                "no endpoint",
            );
            return;
        }
    };
    if let Some(s) = state {
        s.start_request();
    }
    proxy(stream, peer, addr, &dest.options, &dest.host, &route.name).await;
    if let Some(s) = state {
        s.finish_request(None, Instant::now());
    }
}

/// Istio's PassthroughCluster: captured traffic to an address no service owns goes to
/// that address unchanged, with default TCP settings.
pub(super) async fn passthrough(stream: TcpStream, peer: SocketAddr, target: SocketAddr) {
    proxy(
        stream,
        peer,
        target,
        &TcpProxyOptions::default(),
        "PassthroughCluster",
        "passthrough",
    )
    .await;
}

async fn proxy(
    stream: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    opts: &TcpProxyOptions,
    service: &str,
    route: &str,
) {
    let stats = TcpStats::default();
    match proxy_tcp(stream, upstream, opts, &stats).await {
        Ok((sent, received)) => {
            tracing::debug!(target: "trellis::tcp", %peer, %upstream, %service, %route, sent, received, "connection closed");
        }
        Err(error) => {
            let flags = error.response_flag().map_or("-", ResponseFlag::code);
            tracing::debug!(target: "trellis::tcp", %peer, %upstream, %service, %route, sent = stats.sent(), received = stats.received(), flags, %error, "connection failed");
        }
    }
}

fn closed(peer: SocketAddr, target: SocketAddr, service: &str, flag: ResponseFlag, reason: &str) {
    tracing::debug!(target: "trellis::tcp", %peer, %target, %service, flags = flag.code(), reason, "connection closed by proxy");
}

/// An endpoint authority as a socket address: parsed when it is `ip:port`, resolved
/// through the system resolver when it names a host (DNS-resolved services).
async fn resolve(authority: &str) -> io::Result<SocketAddr> {
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut addrs = tokio::net::lookup_host(authority).await?;
    addrs
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for endpoint"))
}
