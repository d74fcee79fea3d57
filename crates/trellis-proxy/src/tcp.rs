//! Opaque TCP proxying: connect to an already chosen upstream address and copy bytes both
//! ways until both sides are done. This is the L4 path for declared `tcp` ports, for traffic
//! detection found opaque, and for TLS passed through by SNI.
//!
//! Choosing the upstream (TCP route weights, load balancing) happens before this module;
//! it takes a resolved [`SocketAddr`]. Settings come from the backend's
//! [`ConnectionPool`] (Istio `connectionPool.tcp`), with Istio's and Envoy's defaults.

mod copy;

use crate::telemetry::ResponseFlag;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpStream;
use trellis_model::{ConnectionPool, TcpKeepalive};

use copy::{PumpError, pump};

/// Connect timeout when the pool sets none: Istio's default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle timeout when the pool sets none: Envoy's TCP proxy default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How to reach and hold one upstream connection; built once per backend from its pool.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxyOptions {
    /// Give up connecting after this long (`UF`).
    pub connect_timeout: Duration,
    /// Close the connection after this long without a byte in either direction; `None`
    /// disables the limit.
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive probing on the upstream socket; `None` leaves the OS default (off).
    pub keepalive: Option<TcpKeepalive>,
}

impl Default for TcpProxyOptions {
    fn default() -> Self {
        TcpProxyOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            keepalive: None,
        }
    }
}

impl TcpProxyOptions {
    /// Options from a backend's connection pool, unset fields taking the defaults. An idle
    /// timeout of zero disables it, as in Envoy.
    pub fn from_pool(pool: &ConnectionPool) -> Self {
        TcpProxyOptions {
            connect_timeout: pool.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            idle_timeout: match pool.idle_timeout {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => Some(DEFAULT_IDLE_TIMEOUT),
            },
            keepalive: pool.tcp_keepalive.clone(),
        }
    }
}

/// The model's keepalive settings as socket parameters; unset fields keep OS defaults.
fn keepalive_params(ka: &TcpKeepalive) -> socket2::TcpKeepalive {
    let mut params = socket2::TcpKeepalive::new();
    if let Some(time) = ka.time {
        params = params.with_time(time);
    }
    if let Some(interval) = ka.interval {
        params = params.with_interval(interval);
    }
    if let Some(probes) = ka.probes {
        params = params.with_retries(probes);
    }
    params
}

/// Live byte counters of one proxied connection, shared (in an `Arc`) with metrics so
/// `istio_tcp_sent_bytes_total` / `istio_tcp_received_bytes_total` advance while long
/// connections are still open. Named from the proxy's point of view towards the client,
/// as Istio's metrics are.
#[derive(Debug, Default)]
pub struct TcpStats {
    sent: AtomicU64,
    received: AtomicU64,
}

impl TcpStats {
    /// Bytes delivered to the client (upstream -> downstream) so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes received from the client and delivered upstream so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Why a proxied connection ended abnormally. Byte counts up to that point stay in the
/// connection's [`TcpStats`].
#[derive(Debug, Error)]
pub enum TcpError {
    /// The upstream refused or could not be reached (`UF`).
    #[error("connect to {addr} failed: {source}")]
    ConnectFailed {
        /// The upstream address.
        addr: SocketAddr,
        /// The OS error (refused, unreachable, ...).
        source: io::Error,
    },
    /// The upstream did not accept within the connect timeout (`UF`).
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The upstream address.
        addr: SocketAddr,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The upstream connection failed mid-stream, typically a reset (`UC`).
    #[error("upstream connection reset: {0}")]
    UpstreamReset(io::Error),
    /// The client connection failed mid-stream (`DC`).
    #[error("downstream disconnected: {0}")]
    DownstreamDisconnect(io::Error),
    /// Nothing moved in either direction for the idle timeout; both sides were closed.
    #[error("connection idle for {0:?}")]
    IdleTimeout(Duration),
}

impl TcpError {
    /// The Envoy response flag for access logs and the `response_flags` label. An idle
    /// timeout is the configured policy closing a quiet connection, not a failure, so it
    /// carries none.
    pub fn response_flag(&self) -> Option<ResponseFlag> {
        match self {
            TcpError::ConnectFailed { .. } | TcpError::ConnectTimeout { .. } => {
                Some(ResponseFlag::UpstreamConnectionFailure)
            }
            TcpError::UpstreamReset(_) => Some(ResponseFlag::UpstreamConnectionTermination),
            TcpError::DownstreamDisconnect(_) => {
                Some(ResponseFlag::DownstreamConnectionTermination)
            }
            TcpError::IdleTimeout(_) => None,
        }
    }

    /// Whether the failure happened before any byte was proxied, so another endpoint may be
    /// tried (and outlier detection may count a connect failure).
    pub fn is_connect_failure(&self) -> bool {
        matches!(
            self,
            TcpError::ConnectFailed { .. } | TcpError::ConnectTimeout { .. }
        )
    }
}

/// Connects to `upstream_addr` and proxies `downstream` to it until both directions have
/// ended. Each side's end of stream is passed on as a write shutdown, so half-closed
/// protocols work; counters in `stats` advance as bytes are written. On success returns
/// `(sent, received)` totals; on error both sockets are closed when they drop.
pub async fn proxy_tcp(
    mut downstream: TcpStream,
    upstream_addr: SocketAddr,
    opts: &TcpProxyOptions,
    stats: &TcpStats,
) -> Result<(u64, u64), TcpError> {
    let mut upstream = connect(upstream_addr, opts).await?;
    let outcome = pump(
        &mut downstream,
        &mut upstream,
        &stats.received,
        &stats.sent,
        opts.idle_timeout,
    )
    .await;
    match outcome {
        Ok(()) => Ok((stats.sent(), stats.received())),
        Err(PumpError::Upstream(e)) => Err(TcpError::UpstreamReset(e)),
        Err(PumpError::Downstream(e)) => Err(TcpError::DownstreamDisconnect(e)),
        Err(PumpError::Idle) => Err(TcpError::IdleTimeout(opts.idle_timeout.unwrap_or_default())),
    }
}

/// Opens the upstream connection with the connect timeout and socket options applied.
/// Socket options are best effort: failing to set one is logged, not fatal, since the
/// connection works without them.
pub async fn connect(addr: SocketAddr, opts: &TcpProxyOptions) -> Result<TcpStream, TcpError> {
    let stream = match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(TcpError::ConnectFailed { addr, source }),
        Err(_elapsed) => {
            return Err(TcpError::ConnectTimeout {
                addr,
                timeout: opts.connect_timeout,
            });
        }
    };
    // Proxied bytes should leave as soon as they arrive; the client already batched them.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%addr, %error, "cannot set TCP_NODELAY on upstream");
    }
    if let Some(ka) = &opts.keepalive
        && let Err(error) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive_params(ka))
    {
        tracing::warn!(%addr, %error, "cannot set TCP keepalive on upstream");
    }
    Ok(stream)
}
