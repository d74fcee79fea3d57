//! What the forwarding path learned about one request, handed to telemetry (metrics and
//! the access log) once the response is known. Filled in place by `forward` and
//! `attempt`; cheap to create (no allocation until a backend is chosen).

use std::net::SocketAddr;
use std::sync::Arc;

use ::http::HeaderValue;

use crate::runtime::Backend;
use crate::telemetry::flags::ResponseFlags;

/// The routing and upstream facts of one request.
#[derive(Debug, Default)]
pub struct Exchange {
    /// The downstream client's address (source-IP hashing, access log).
    pub peer: Option<SocketAddr>,
    /// The gateway port the request arrived on; `None` on a sidecar's listeners, where the
    /// `Host` names a service rather than a gateway virtual host.
    pub gateway_port: Option<u16>,
    /// The service the request was routed to (its FQDN), once the `Host` resolved.
    pub service: Option<Arc<str>>,
    /// The matched route's name (`VirtualService shop/orders`, or the rule's own name).
    pub route: Option<Arc<str>>,
    /// The (service, subset, port) backend the request was sent to.
    pub backend: Option<Arc<Backend>>,
    /// Index in `backend.endpoints()` of the endpoint of the last attempt.
    pub endpoint: Option<usize>,
    /// Attempts made upstream (1 + retries); 0 when nothing was sent.
    pub attempts: u32,
    /// Flags raised by the proxy for this request (also set for local replies).
    pub flags: ResponseFlags,
    /// Set when the request arrived on the inbound side: it is reported with
    /// `reporter="destination"`.
    pub inbound: Option<Inbound>,
}

/// What the inbound side knows of a request it hands to the local application.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The caller's peer header (`x-trellis-peer`), as received.
    pub caller: Option<HeaderValue>,
    /// The application's `ip:port` (the access log's upstream host).
    pub app: Arc<str>,
}
