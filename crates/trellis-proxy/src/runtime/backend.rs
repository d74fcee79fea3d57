//! Backends: the endpoints of one (service, subset, port), with their balancer and the
//! upstream authorities precomputed, so forwarding picks an index and clones a prepared
//! [`Authority`].

mod outlier;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::uri::Authority;
use trellis_model::{HashKey, LoadBalancer, Service};

use crate::balance::{
    BalanceError, Balancer, EndpointState, HashDecision, HashInput, Pick, PickContext,
    RequestHasher,
};
use crate::resilience::outlier::OutlierStats;
use crate::resilience::{ConnectionPoolLimits, Outcome};
use crate::telemetry::BackendLabels;
use crate::upstream::UpstreamPool;

use outlier::BackendOutlier;

/// Stands in for an address the caller does not know (the listener's local address in a
/// generated cookie's value, or a missing peer), so hashing still works.
const UNKNOWN_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Why a backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The effective load-balancer settings are invalid.
    #[error(transparent)]
    Balance(#[from] BalanceError),
    /// An endpoint address does not form a valid URI authority.
    #[error("endpoint address {0:?} is not a valid authority")]
    Address(String),
}

/// Where a pick sends the request.
#[derive(Debug, Clone, Copy)]
pub enum Upstream<'a> {
    /// Endpoint `index` of [`Backend::endpoints`], at `authority`.
    Endpoint {
        /// Index into the balancer's endpoint slice (for request accounting).
        index: usize,
        /// `address:port` to connect to.
        authority: &'a Authority,
    },
    /// Passthrough: connect to the host the client addressed.
    OriginalDestination,
}

/// One (service, subset, port): a balancer over the matching endpoints plus what the
/// HTTP client needs to reach them.
#[derive(Debug)]
pub struct Backend {
    balancer: Balancer,
    authorities: Box<[Authority]>,
    http2: bool,
    /// The service is inside the mesh (not a `MESH_EXTERNAL` ServiceEntry): requests carry
    /// the peer header.
    in_mesh: bool,
    limits: ConnectionPoolLimits,
    /// Upstream connections to the endpoints, under the effective `connectionPool`.
    upstream: UpstreamPool,
    /// The endpoints' metric labels and addresses, for telemetry.
    labels: BackendLabels,
    /// The request hasher when the load balancer is consistentHash; the flag says it
    /// keys on the source IP (a request without a known peer then has no key).
    hasher: Option<(RequestHasher, bool)>,
    /// Outlier detection when the effective policy configures it.
    outlier: Option<BackendOutlier>,
}

impl Backend {
    /// Picks an endpoint; `None` when none is usable (`UH`). With outlier detection,
    /// first returns endpoints whose ejection time is over (see `backend/outlier.rs`).
    pub fn pick(&self, ctx: &PickContext) -> Option<Upstream<'_>> {
        if let Some(o) = &self.outlier {
            o.maybe_tick(self.balancer.endpoints(), ctx.now);
        }
        match self.balancer.pick(ctx)? {
            Pick::Endpoint(index) => Some(Upstream::Endpoint {
                index,
                authority: self.authorities.get(index)?,
            }),
            Pick::OriginalDestination => Some(Upstream::OriginalDestination),
        }
    }

    /// The live endpoint states, indexed as in [`Upstream::Endpoint`].
    pub fn endpoints(&self) -> &[EndpointState] {
        self.balancer.endpoints()
    }

    /// The circuit-breaker limits of this backend (effective `connectionPool`), shared by
    /// every request routed to it.
    pub fn limits(&self) -> &ConnectionPoolLimits {
        &self.limits
    }

    /// Whether the upstream speaks HTTP/2 without negotiation (port protocol HTTP2/gRPC).
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Whether the service is inside the mesh, so its proxies may read who is calling
    /// (`MESH_EXTERNAL` ServiceEntries are not).
    pub fn in_mesh(&self) -> bool {
        self.in_mesh
    }

    /// The pooled upstream connections every request to this backend is sent over.
    pub fn upstream(&self) -> &UpstreamPool {
        &self.upstream
    }

    /// The endpoints' metric labels and addresses (indexed as [`Backend::endpoints`]),
    /// prepared here so recording a request builds no label strings.
    pub fn labels(&self) -> &BackendLabels {
        &self.labels
    }

    /// The consistent-hash decision for a request (its hash goes into
    /// [`PickContext::hash`], a generated cookie into the response); `NoHash` when the
    /// balancer does not hash or the request lacks the key. `peer` is the downstream
    /// client's address.
    pub fn hash_request(
        &self,
        headers: &http::HeaderMap,
        uri: &http::Uri,
        peer: Option<SocketAddr>,
    ) -> HashDecision<'_> {
        let Some((hasher, source_ip)) = &self.hasher else {
            return HashDecision::NoHash;
        };
        if *source_ip && peer.is_none() {
            return HashDecision::NoHash;
        }
        hasher.hash(&HashInput {
            headers,
            uri,
            peer: peer.unwrap_or(UNKNOWN_ADDR),
            local: UNKNOWN_ADDR,
        })
    }

    /// Feeds the outcome of one attempt to endpoint `index` into outlier detection (a
    /// no-op without it); an ejected endpoint stops being picked at once.
    pub fn report(&self, index: usize, outcome: Outcome, now: Instant) {
        if let Some(o) = &self.outlier {
            o.report(self.balancer.endpoints(), index, outcome, now);
        }
    }

    /// Outlier-detection counters (ejections total, active, refused), `None` when the
    /// backend has no outlier detection.
    pub fn outlier_stats(&self) -> Option<OutlierStats> {
        self.outlier.as_ref().map(BackendOutlier::stats)
    }

    /// Whether endpoint `index` is currently ejected by outlier detection.
    pub fn is_ejected(&self, index: usize) -> bool {
        self.outlier.as_ref().is_some_and(|o| o.is_ejected(index))
    }

    /// How many times endpoint `index` has been ejected since this backend was built.
    pub fn ejection_count(&self, index: usize) -> u64 {
        self.outlier.as_ref().map_or(0, |o| o.ejection_count(index))
    }
}

/// The backends of one (service, subset), one per service port, so a destination
/// without a port can follow the port the request came in on.
#[derive(Debug)]
pub struct BackendSet {
    ports: Box<[(u16, Arc<Backend>)]>,
    default_port: Option<u16>,
}

impl BackendSet {
    /// Builds a balancer for every port of `service` over the endpoints of `subset`,
    /// using the effective policy's load balancer for that subset and port.
    pub fn build(service: &Service, subset: Option<&str>) -> Result<BackendSet, BackendError> {
        let ports = service
            .ports
            .iter()
            .map(|port| {
                let states: Arc<[EndpointState]> = service
                    .endpoints_for_subset(subset)
                    .map(|ep| EndpointState::from_endpoint(ep, ep.target_port(port)))
                    .collect();
                let authorities = states
                    .iter()
                    .map(|s| {
                        Authority::try_from(s.address())
                            .map_err(|_| BackendError::Address(s.address().to_owned()))
                    })
                    .collect::<Result<Box<[_]>, _>>()?;
                let labels = BackendLabels::new(
                    service,
                    service
                        .endpoints_for_subset(subset)
                        .zip(states.iter().map(|s| s.address())),
                );
                let policy = service.effective_policy(subset, Some(port.number));
                let lb = policy.load_balancer_or_default();
                let hasher = match &lb {
                    LoadBalancer::ConsistentHash(ch) => Some((
                        RequestHasher::new(&ch.key)?,
                        matches!(ch.key, HashKey::SourceIp),
                    )),
                    _ => None,
                };
                let outlier = policy
                    .outlier_detection
                    .as_ref()
                    .map(|od| BackendOutlier::new(od, &states));
                let limits = ConnectionPoolLimits::new(&policy.connection_pool);
                let http2 = port.protocol.is_http2();
                let upstream =
                    UpstreamPool::new(&policy.connection_pool, limits.clone(), &states, http2);
                let balancer = Balancer::new(&lb, states)?.with_panic_mode(true);
                let backend = Backend {
                    balancer,
                    authorities,
                    http2,
                    in_mesh: !service.is_external(),
                    limits,
                    upstream,
                    labels,
                    hasher,
                    outlier,
                };
                Ok((port.number, Arc::new(backend)))
            })
            .collect::<Result<Box<[_]>, BackendError>>()?;
        Ok(BackendSet {
            ports,
            default_port: service.only_http_port().map(|p| p.number),
        })
    }

    /// Every port's backend, in service port order (admin listings).
    pub fn ports(&self) -> impl Iterator<Item = (u16, &Arc<Backend>)> {
        self.ports.iter().map(|(p, b)| (*p, b))
    }

    /// The backend for a destination: its explicit `port`, else the port the request was
    /// addressed to when the service has it, else the service's only (HTTP) port.
    pub fn for_port(&self, port: Option<u16>, request_port: Option<u16>) -> Option<&Arc<Backend>> {
        let find = |n: u16| self.ports.iter().find(|(p, _)| *p == n).map(|(_, b)| b);
        match port {
            Some(n) => find(n),
            None => request_port
                .and_then(find)
                .or_else(|| self.default_port.and_then(find)),
        }
    }
}
