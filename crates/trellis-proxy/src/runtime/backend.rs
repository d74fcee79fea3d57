//! Backends: the endpoints of one (service, subset, port), with their balancer and the
//! upstream authorities precomputed, so forwarding picks an index and clones a prepared
//! [`Authority`].

use std::sync::Arc;

use http::uri::Authority;
use trellis_model::Service;

use crate::balance::{BalanceError, Balancer, EndpointState, Pick, PickContext};
use crate::resilience::ConnectionPoolLimits;

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
    limits: ConnectionPoolLimits,
}

impl Backend {
    /// Picks an endpoint; `None` when none is usable (`UH`).
    pub fn pick(&self, ctx: &PickContext) -> Option<Upstream<'_>> {
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
                let policy = service.effective_policy(subset, Some(port.number));
                let lb = policy.load_balancer_or_default();
                let balancer = Balancer::new(&lb, states)?.with_panic_mode(true);
                let backend = Backend {
                    balancer,
                    authorities,
                    http2: port.protocol.is_http2(),
                    limits: ConnectionPoolLimits::new(&policy.connection_pool),
                };
                Ok((port.number, Arc::new(backend)))
            })
            .collect::<Result<Box<[_]>, BackendError>>()?;
        Ok(BackendSet {
            ports,
            default_port: service.only_http_port().map(|p| p.number),
        })
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
