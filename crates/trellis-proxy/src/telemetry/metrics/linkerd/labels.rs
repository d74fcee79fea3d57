//! Linkerd's labels, projected from Istio's. The projection drops labels (the caller's identity,
//! the endpoint's version, response flags), so distinct Istio series can share one Linkerd label
//! set: the projected keys here hash and compare, and the views add such series together before
//! printing, since a scrape must not hold two samples with one label set.

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};

use crate::telemetry::metrics::labels::{LabelSet, PeerLabels, Reporter, SecurityPolicy};

/// Linkerd's response classification: a 5xx, or a gRPC status other than OK, is a failure.
pub(crate) fn classification(status_code: u16, grpc_status: Option<u16>) -> &'static str {
    if status_code >= 500 || grpc_status.is_some_and(|s| s != 0) {
        "failure"
    } else {
        "success"
    }
}

/// The Kubernetes name of the service called: Istio labels a ServiceEntry host's
/// `destination_service_name` with the whole host, Linkerd's `dst_service` is the name only.
fn service_name(peer: &PeerLabels) -> &str {
    let name = peer.destination_service_name.as_str();
    let ns = peer.destination_service_namespace.as_str();
    match name.split_once('.') {
        Some((short, rest)) if rest.strip_prefix(ns).is_some_and(|r| r.starts_with(".svc")) => {
            short
        }
        _ => name,
    }
}

/// The `dst_*` labels, known on the client side only (linkerd2-proxy takes them from its
/// destination lookup, which the inbound side does not make).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Destination<'a> {
    namespace: &'a str,
    service: &'a str,
    deployment: &'a str,
}

/// The peer labels of a Linkerd series: `direction`, `authority`, `tls` (and `no_tls_reason`)
/// and, outbound, `dst_namespace`, `dst_service`, `dst_deployment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Peer<'a> {
    outbound: bool,
    authority: &'a str,
    security: SecurityPolicy,
    destination: Option<Destination<'a>>,
}

impl<'a> Peer<'a> {
    /// The Linkerd view of an Istio label set: the source reporter is Linkerd's outbound side,
    /// the destination (and waypoint) reporters its inbound side.
    pub(crate) fn of(set: &'a LabelSet) -> Self {
        let peer = set.peer();
        let outbound = set.reporter() == Reporter::Source;
        Peer {
            outbound,
            authority: &peer.destination_service,
            security: set.security(),
            destination: outbound.then(|| Destination {
                namespace: &peer.destination_service_namespace,
                service: service_name(peer),
                deployment: &peer.destination_workload,
            }),
        }
    }
}

impl EncodeLabelSet for Peer<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let direction = if self.outbound { "outbound" } else { "inbound" };
        [("direction", direction), ("authority", self.authority)]
            .as_slice()
            .encode(encoder)?;
        // No mTLS yet, so no peer identity: linkerd2-proxy's `no_identity` with the reason it
        // gives for a plaintext peer, or `unknown` where the reporter cannot tell.
        let tls: &[(&str, &str)] = match self.security {
            SecurityPolicy::MutualTls => &[("tls", "true")],
            SecurityPolicy::None => &[
                ("tls", "no_identity"),
                ("no_tls_reason", "not_provided_by_remote"),
            ],
            SecurityPolicy::Unknown => &[("tls", "no_identity"), ("no_tls_reason", "unknown")],
        };
        tls.encode(encoder)?;
        if let Some(d) = self.destination {
            [
                ("dst_namespace", d.namespace),
                ("dst_service", d.service),
                ("dst_deployment", d.deployment),
            ]
            .as_slice()
            .encode(encoder)?;
        }
        Ok(())
    }
}

/// `response_total`'s labels: the peer, `status_code`, `classification` and (gRPC only)
/// `grpc_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ResponseLabels<'a> {
    pub peer: Peer<'a>,
    pub status_code: u16,
    pub grpc_status: Option<u16>,
}

impl EncodeLabelSet for ResponseLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.peer.encode(encoder)?;
        let class = classification(self.status_code, self.grpc_status);
        [("status_code", self.status_code)]
            .as_slice()
            .encode(encoder)?;
        [("classification", class)].as_slice().encode(encoder)?;
        if let Some(grpc) = self.grpc_status {
            [("grpc_status", grpc)].as_slice().encode(encoder)?;
        }
        Ok(())
    }
}

/// `response_latency_ms`' labels: the peer and `status_code` (gRPC statuses share one series,
/// as in linkerd2-proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LatencyLabels<'a> {
    pub peer: Peer<'a>,
    pub status_code: u16,
}

impl EncodeLabelSet for LatencyLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.peer.encode(encoder)?;
        [("status_code", self.status_code)]
            .as_slice()
            .encode(encoder)
    }
}

/// `tcp_*` labels: the peer, seen from the downstream side (`peer="src"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TcpLabels<'a>(pub Peer<'a>);

impl EncodeLabelSet for TcpLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)?;
        [("peer", "src")].as_slice().encode(encoder)
    }
}
