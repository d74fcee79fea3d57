//! Opaque TCP and TLS-by-SNI routing of one connection to a known service port: pick the
//! route and a weighted destination, admit the connection against the backend's
//! `maxConnections`, pick an endpoint with the backend's balancer, and proxy bytes.
//!
//! Every outcome is logged once (`tracing`, target `trellis::tcp`) with its Envoy response
//! flag: no matching route `NR`, unknown destination or no endpoint `UH`, pool limit
//! `UO` (the client connection is closed at once), connect failure `UF`, resets `UC`/`DC`.
//! And every connection is counted in Istio's TCP metrics (`istio_tcp_connections_opened`
//! and `_closed` with that flag, `istio_tcp_sent_bytes` / `_received_bytes`), bytes
//! reported every [`REPORT_EVERY`] while it lasts and when it ends.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::balance::PickContext;
use crate::resilience::ConnectionPermit;
use crate::runtime::{Backend, PortTarget, Upstream};
use crate::tcp::{TcpProxyOptions, TcpStats, proxy_tcp};
use crate::telemetry::metrics::{LabelSet, RequestProtocol, TcpConnectionMetrics};
use crate::telemetry::{ResponseFlag, Telemetry};

/// How often a long-lived connection's byte counts reach the metrics (Istio's proxies report
/// open TCP connections periodically as well, so dashboards see a database session's
/// traffic before it ends).
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(5);

/// The name Istio reports captured traffic to addresses outside the mesh under.
const PASSTHROUGH: &str = "PassthroughCluster";

/// A routed connection, holding what proxying it needs and nothing else from the
/// configuration: a long-lived connection (a database session) keeps its backend (pool
/// limits, balancer accounting) but not the whole runtime, which a reload may replace.
pub(super) struct Routed {
    host: Arc<str>,
    route: Arc<str>,
    backend: Arc<Backend>,
    options: TcpProxyOptions,
    /// Counts against the backend's `maxConnections` while the connection lives.
    _permit: ConnectionPermit,
    random: u64,
}

/// Routes a connection headed for `target` (a port of a known service) by the port's TLS
/// routes when `sni` names one, else by its TCP routes. `None` when the proxy refuses it
/// (no route, no destination, pool limit): logged and counted here; drop the stream.
pub(super) fn route(
    peer: SocketAddr,
    target: SocketAddr,
    port: &PortTarget,
    sni: Option<&str>,
    telemetry: &Telemetry,
) -> Option<Routed> {
    let refuse = |service: &str, flag: ResponseFlag, reason: &str| {
        closed(telemetry, peer, target, service, flag, reason);
    };
    let ip = target.ip();
    let route = sni
        .and_then(|name| port.tls_route(ip, name))
        .or_else(|| port.tcp_route(ip));
    let Some(route) = route else {
        refuse(
            port.service(),
            ResponseFlag::NoRoute,
            "no TCP route matched",
        );
        return None;
    };
    let random = rand::random::<u64>();
    let Some(dest) = route.pick(random) else {
        refuse(
            port.service(),
            ResponseFlag::NoHealthyUpstream,
            "no destination with weight",
        );
        return None;
    };
    let Some(backend) = dest.backend.as_ref() else {
        refuse(
            &dest.host,
            ResponseFlag::NoHealthyUpstream,
            "unknown destination service",
        );
        return None;
    };
    let permit = match backend.limits().try_acquire_connection() {
        Ok(permit) => permit,
        Err(overflow) => {
            tracing::debug!(target: "trellis::tcp", %peer, %target, service = %dest.host, %overflow, flags = ResponseFlag::UpstreamOverflow.code(), "connection refused");
            let labels = service_labels(telemetry, &dest.host);
            count_refused(telemetry, &labels, ResponseFlag::UpstreamOverflow);
            return None;
        }
    };
    Some(Routed {
        host: Arc::clone(&dest.host),
        route: Arc::clone(&route.name),
        backend: Arc::clone(backend),
        options: dest.options.clone(),
        _permit: permit,
        random,
    })
}

impl Routed {
    /// Picks an endpoint with the backend's balancer and proxies `stream` to it until both
    /// sides are done.
    pub(super) async fn serve(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        target: SocketAddr,
        telemetry: &Telemetry,
    ) {
        let backend = &self.backend;
        let refuse = |flag: ResponseFlag, reason: &str| {
            closed(telemetry, peer, target, &self.host, flag, reason);
        };
        let ctx = PickContext {
            random: self.random.rotate_left(32),
            hash: None,
            now: Instant::now(),
        };
        let (addr, state, index) = match backend.pick(&ctx) {
            Some(Upstream::Endpoint { index, authority }) => {
                match resolve(authority.as_str()).await {
                    Ok(addr) => (addr, backend.endpoints().get(index), Some(index)),
                    Err(error) => {
                        tracing::debug!(target: "trellis::tcp", %peer, endpoint = %authority, %error, "cannot resolve endpoint");
                        refuse(
                            ResponseFlag::UpstreamConnectionFailure,
                            "endpoint does not resolve",
                        );
                        return;
                    }
                }
            }
            Some(Upstream::OriginalDestination) => (target, None, None),
            None => {
                refuse(ResponseFlag::NoHealthyUpstream, "no endpoint");
                return;
            }
        };
        if let Some(s) = state {
            s.start_request();
        }
        let labels = telemetry.labels(Some(backend.labels()), None, index, RequestProtocol::Tcp);
        let metrics = telemetry.metrics().tcp_opened(&labels);
        let (options, host, route) = (&self.options, &self.host, &self.route);
        proxy(stream, peer, addr, options, host, route, metrics).await;
        if let Some(s) = state {
            s.finish_request(None, Instant::now());
        }
    }
}

/// Istio's PassthroughCluster: captured traffic to an address no service owns goes to
/// that address unchanged, with default TCP settings.
pub(super) async fn passthrough(
    stream: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    telemetry: &Telemetry,
) {
    let labels = service_labels(telemetry, PASSTHROUGH);
    let metrics = telemetry.metrics().tcp_opened(&labels);
    let opts = TcpProxyOptions::default();
    proxy(
        stream,
        peer,
        target,
        &opts,
        PASSTHROUGH,
        "passthrough",
        metrics,
    )
    .await;
}

/// A connection for the local application at `app` that is not served as HTTP: proxied
/// byte for byte and counted with `reporter="destination"` under `service` (the port's
/// service, when the address belongs to one). Opaque TCP carries no peer header, so the
/// caller is `unknown` (Istio learns it from the mTLS handshake, which comes with mTLS).
pub(super) async fn inbound(
    stream: TcpStream,
    peer: SocketAddr,
    app: SocketAddr,
    service: Option<&Arc<str>>,
    telemetry: &Telemetry,
) {
    let labels = telemetry.inbound_labels(service, None, RequestProtocol::Tcp);
    let metrics = telemetry.metrics().tcp_opened(&labels);
    let opts = TcpProxyOptions::default();
    let service = service.map_or("-", |s| &**s);
    proxy(stream, peer, app, &opts, service, "inbound", metrics).await;
}

async fn proxy(
    stream: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    opts: &TcpProxyOptions,
    service: &str,
    route: &str,
    metrics: TcpConnectionMetrics,
) {
    let stats = TcpStats::default();
    let work = proxy_tcp(stream, upstream, opts, &stats);
    tokio::pin!(work);
    let every = tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
    tokio::pin!(every);
    let mut reported = Reported::default();
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = every.tick() => reported.add(&metrics, &stats),
        }
    };
    reported.add(&metrics, &stats);
    match result {
        Ok((sent, received)) => {
            tracing::debug!(target: "trellis::tcp", %peer, %upstream, %service, %route, sent, received, "connection closed");
            metrics.close(Default::default());
        }
        Err(error) => {
            let flag = error.response_flag();
            let flags = flag.map_or("-", ResponseFlag::code);
            tracing::debug!(target: "trellis::tcp", %peer, %upstream, %service, %route, sent = stats.sent(), received = stats.received(), flags, %error, "connection failed");
            metrics.close(flag.map(Into::into).unwrap_or_default());
        }
    }
}

/// The byte counts of one connection already added to the metrics.
#[derive(Debug, Default)]
struct Reported {
    sent: u64,
    received: u64,
}

impl Reported {
    /// Adds what `stats` counted since the last report.
    fn add(&mut self, metrics: &TcpConnectionMetrics, stats: &TcpStats) {
        let (sent, received) = (stats.sent(), stats.received());
        metrics.sent(sent - self.sent);
        metrics.received(received - self.received);
        (self.sent, self.received) = (sent, received);
    }
}

/// A connection the proxy closed without proxying: logged, and counted as opened and
/// closed with `flag`.
fn closed(
    telemetry: &Telemetry,
    peer: SocketAddr,
    target: SocketAddr,
    service: &str,
    flag: ResponseFlag,
    reason: &str,
) {
    tracing::debug!(target: "trellis::tcp", %peer, %target, %service, flags = flag.code(), reason, "connection closed by proxy");
    let labels = service_labels(telemetry, service);
    count_refused(telemetry, &labels, flag);
}

/// Counts a connection the proxy refused as opened and closed with `flag`.
fn count_refused(telemetry: &Telemetry, labels: &LabelSet, flag: ResponseFlag) {
    telemetry.metrics().tcp_opened(labels).close(flag.into());
}

/// The TCP label set for `service` when no endpoint was chosen (an empty host: unknown).
fn service_labels<'a>(telemetry: &'a Telemetry, service: &str) -> std::borrow::Cow<'a, LabelSet> {
    let host: Option<Arc<str>> = (!service.is_empty()).then(|| service.into());
    telemetry.labels(None, host.as_ref(), None, RequestProtocol::Tcp)
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
