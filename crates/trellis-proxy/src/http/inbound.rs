//! The server side of a sidecar's HTTP: requests that arrived on the inbound listener for a
//! port the local application serves. No routing happens here (the client's proxy routed);
//! each request goes to the application over a pooled connection in the protocol the
//! client spoke, and is reported with `reporter="destination"`: the caller named by its
//! peer header ([`peer_header`](crate::telemetry::peer_header)), this workload as the
//! destination. The peer header is taken off before the application sees the request.
//!
//! Local failures carry flags as on the outbound side: the application refuses the
//! connection → 503 `UF`, resets it mid-request → 503 `UC`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use ::http::header;
use ::http::{Request, Response, Version};
use http_body_util::Either;
use trellis_model::ConnectionPool;

use super::body::ClientBody;
use super::exchange::Inbound;
use super::forward::{detach_values, strip_hop_by_hop, upstream_response};
use super::{Exchange, HttpProxy, ProxyBody, attempt, guard, local, upgrade};
use crate::balance::EndpointState;
use crate::resilience::ConnectionPoolLimits;
use crate::telemetry::{RequestId, ResponseFlag, peer_header, request_id};
use crate::upstream::{UpstreamError, UpstreamPool};

/// Application addresses (per HTTP version) whose connection pools are kept; a sidecar's
/// application has a few ports, so reaching this means captured traffic to many addresses,
/// whose extra pools then live only as long as their connection.
const MAX_POOLS: usize = 256;

/// Where one inbound connection's requests go, resolved once per connection.
#[derive(Debug)]
pub struct InboundTarget {
    /// The application's `ip:port`, for the access log.
    app: Arc<str>,
    /// The service whose port this is, when the address belongs to one.
    service: Option<Arc<str>>,
    /// `inbound|<port>||<service>`, Envoy's name for the inbound cluster, as the route.
    route: Arc<str>,
    /// Whether the application is spoken to in HTTP/2 (the client spoke it).
    http2: bool,
    pool: Arc<UpstreamPool>,
}

/// The inbound side's connection pools, one per (application address, HTTP/2).
#[derive(Debug, Default)]
pub(super) struct InboundPools {
    pools: Mutex<HashMap<(SocketAddr, bool), Arc<UpstreamPool>>>,
}

impl InboundPools {
    fn get(&self, app: SocketAddr, http2: bool) -> Arc<UpstreamPool> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = pools.get(&(app, http2)) {
            return Arc::clone(pool);
        }
        // Istio's defaults for the inbound cluster: no limits, 1 h idle timeout.
        let settings = ConnectionPool::default();
        let endpoint = [EndpointState::new(app.to_string(), 1)];
        let limits = ConnectionPoolLimits::new(&settings);
        let pool = Arc::new(UpstreamPool::new(&settings, limits, &endpoint, http2));
        if pools.len() < MAX_POOLS {
            pools.insert((app, http2), Arc::clone(&pool));
        }
        pool
    }
}

impl HttpProxy {
    /// The target of an inbound connection to the application at `app`, on `port` of
    /// `service` when the address is a service's endpoint, served in HTTP/2 when `http2`.
    pub fn inbound_target(
        &self,
        app: SocketAddr,
        service: Option<Arc<str>>,
        port: u16,
        http2: bool,
    ) -> Arc<InboundTarget> {
        let route = format!("inbound|{port}||{}", service.as_deref().unwrap_or(""));
        Arc::new(InboundTarget {
            app: app.to_string().into(),
            service,
            route: route.into(),
            http2,
            pool: self.inbound_pools.get(app, http2),
        })
    }
}

/// Hands one inbound request to the application; never fails (errors become flagged local
/// responses). Fills `ex` for telemetry.
pub(super) async fn handle(
    proxy: &HttpProxy,
    mut req: Request<ClientBody>,
    ex: &mut Exchange,
    target: &InboundTarget,
) -> Response<ProxyBody> {
    let caller = req.headers_mut().remove(&peer_header::HEADER);
    ex.inbound = Some(Inbound {
        caller,
        app: Arc::clone(&target.app),
    });
    ex.service.clone_from(&target.service);
    ex.route = Some(Arc::clone(&target.route));
    if let Some(refused) = guard::check(&req) {
        return refused;
    }
    let id = RequestId::from_request(req.headers());
    req.headers_mut()
        .insert(&request_id::HEADER, id.header_value().clone());
    let downstream_h2 = req.version() == Version::HTTP_2;
    if !req.headers().contains_key(header::HOST)
        && let Some(a) = req.uri().authority()
        && let Ok(v) = header::HeaderValue::from_str(a.as_str())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    let upgrade = if target.http2 {
        None
    } else {
        upgrade::Pending::take(&mut req)
    };
    strip_hop_by_hop(req.headers_mut());
    if let Some(u) = &upgrade {
        u.restore(req.headers_mut());
    }
    *req.version_mut() = if target.http2 {
        detach_values(req.headers_mut());
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    ex.attempts = 1;
    let sent = target
        .pool
        .send(Some(0), req.map(Either::Left), &proxy.upstream)
        .await;
    let mut resp = match sent {
        Ok(resp) => resp,
        Err(UpstreamError::Overflow(o)) => return attempt::overflow(o),
        Err(e) if e.is_connect_failure() => {
            tracing::debug!(app = %target.app, error = %e, "cannot connect to the application");
            return local::error(
                ResponseFlag::UpstreamConnectionFailure,
                "connect to the application failed",
            );
        }
        Err(e) => {
            tracing::debug!(app = %target.app, error = %e, "application request failed");
            return local::error(
                ResponseFlag::UpstreamConnectionTermination,
                "the application reset the request",
            );
        }
    };
    upstream_response(&mut resp, upgrade, downstream_h2, true);
    resp.map(Either::Left)
}
