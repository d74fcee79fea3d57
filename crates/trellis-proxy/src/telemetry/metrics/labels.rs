//! Istio's standard metric labels, split by how often they change: the peer half (who called whom,
//! over what) is fixed per (source workload, destination endpoint/service, route) and built once
//! into a [`LabelSet`]; the outcome half (status, gRPC status, response flags) is a few integers
//! known at the end of each request. Keys are hashed from a precomputed digest plus those integers,
//! so finding a series never formats or hashes a string on the request path.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use xxhash_rust::xxh64::Xxh64;

use crate::telemetry::flags::{ResponseFlag, ResponseFlags};

/// The value that replaces every peer label of the overflow series, so dashboards show plainly
/// that the cardinality bound was hit instead of silently dropping traffic.
pub const OVERFLOW_VALUE: &str = "overflow";

/// Which proxy reported the metric (Istio's `reporter` label); both ends of a call report it, and
/// dashboards pick one side to avoid double counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The client-side proxy (outbound).
    Source,
    /// The server-side proxy (inbound).
    Destination,
    /// A waypoint proxy between the two (ambient mode).
    Waypoint,
}

impl Reporter {
    /// Istio's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
            Reporter::Waypoint => "waypoint",
        }
    }
}

/// The protocol the proxy saw (Istio's `request_protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestProtocol {
    /// HTTP/1.x or HTTP/2 that is not gRPC.
    Http,
    /// gRPC over HTTP/2.
    Grpc,
    /// Opaque TCP.
    Tcp,
}

impl RequestProtocol {
    /// Istio's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestProtocol::Http => "http",
            RequestProtocol::Grpc => "grpc",
            RequestProtocol::Tcp => "tcp",
        }
    }
}

/// Whether the connection was mutually authenticated (Istio's `connection_security_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityPolicy {
    /// mTLS between the two proxies.
    MutualTls,
    /// Plaintext.
    None,
    /// The reporter cannot tell (e.g. the source side of a passthrough connection).
    Unknown,
}

impl SecurityPolicy {
    /// Istio's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityPolicy::MutualTls => "mutual_tls",
            SecurityPolicy::None => "none",
            SecurityPolicy::Unknown => "unknown",
        }
    }
}

/// The peer labels as strings, filled in once from the model (workload, service, identity). Use
/// `"unknown"` for what the reporter cannot know, as Istio does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerLabels {
    /// Workload (deployment) name of the caller.
    pub source_workload: String,
    /// Namespace of the caller's workload.
    pub source_workload_namespace: String,
    /// SPIFFE identity of the caller (`spiffe://…`), when known from mTLS.
    pub source_principal: String,
    /// The caller's `app` label.
    pub source_app: String,
    /// The caller's `version` label.
    pub source_version: String,
    /// Workload name of the endpoint called.
    pub destination_workload: String,
    /// Namespace of the endpoint's workload.
    pub destination_workload_namespace: String,
    /// SPIFFE identity of the endpoint.
    pub destination_principal: String,
    /// The endpoint's `app` label.
    pub destination_app: String,
    /// The endpoint's `version` label.
    pub destination_version: String,
    /// Fully qualified host of the service called (`reviews.default.svc.cluster.local`).
    pub destination_service: String,
    /// Short name of the service called.
    pub destination_service_name: String,
    /// Namespace of the service called.
    pub destination_service_namespace: String,
}

impl PeerLabels {
    /// Every peer label set to [`OVERFLOW_VALUE`]: the stand-in once a family is full.
    pub fn overflow() -> Self {
        let v = || OVERFLOW_VALUE.to_owned();
        PeerLabels {
            source_workload: v(),
            source_workload_namespace: v(),
            source_principal: v(),
            source_app: v(),
            source_version: v(),
            destination_workload: v(),
            destination_workload_namespace: v(),
            destination_principal: v(),
            destination_app: v(),
            destination_version: v(),
            destination_service: v(),
            destination_service_name: v(),
            destination_service_namespace: v(),
        }
    }

    /// Name/value pairs in Istio's label order (source half, then destination half).
    fn pairs(&self) -> [(&'static str, &str); 13] {
        [
            ("source_workload", &self.source_workload),
            ("source_workload_namespace", &self.source_workload_namespace),
            ("source_principal", &self.source_principal),
            ("source_app", &self.source_app),
            ("source_version", &self.source_version),
            ("destination_workload", &self.destination_workload),
            (
                "destination_workload_namespace",
                &self.destination_workload_namespace,
            ),
            ("destination_principal", &self.destination_principal),
            ("destination_app", &self.destination_app),
            ("destination_version", &self.destination_version),
            ("destination_service", &self.destination_service),
            ("destination_service_name", &self.destination_service_name),
            (
                "destination_service_namespace",
                &self.destination_service_namespace,
            ),
        ]
    }

    /// A digest of all values, computed once so keys hash in constant time.
    fn digest(&self) -> u64 {
        let mut h = Xxh64::new(0);
        for (_, v) in self.pairs() {
            h.update(v.as_bytes());
            h.update(&[0xff]); // separator: ("ab","c") and ("a","bc") differ
        }
        h.digest()
    }
}

#[derive(Debug)]
struct PeerInner {
    labels: PeerLabels,
    digest: u64,
}

/// The label set of a (source, destination, route) triple, built once when the proxy learns the
/// route and endpoint, and cloned cheaply (one `Arc`) into every request and connection.
#[derive(Debug, Clone)]
pub struct LabelSet {
    peer: Arc<PeerInner>,
    reporter: Reporter,
    protocol: RequestProtocol,
    security: SecurityPolicy,
}

impl LabelSet {
    /// Builds the handle; this is where the strings are hashed, once.
    pub fn new(
        peer: PeerLabels,
        reporter: Reporter,
        protocol: RequestProtocol,
        security: SecurityPolicy,
    ) -> Self {
        let digest = peer.digest();
        LabelSet {
            peer: Arc::new(PeerInner {
                labels: peer,
                digest,
            }),
            reporter,
            protocol,
            security,
        }
    }

    /// The same set with its peer half replaced by `overflow` (shared, prebuilt): what a full
    /// family records into. Reporter, protocol and security stay, so per-reporter totals and error
    /// rates remain right even under overflow.
    pub(crate) fn with_peer(&self, overflow: &LabelSet) -> LabelSet {
        LabelSet {
            peer: Arc::clone(&overflow.peer),
            ..self.clone()
        }
    }

    /// The peer labels this set was built from.
    pub fn peer(&self) -> &PeerLabels {
        &self.peer.labels
    }

    /// The protocol recorded in `request_protocol`.
    pub fn protocol(&self) -> RequestProtocol {
        self.protocol
    }

    /// The proxy that reports (`reporter`).
    pub fn reporter(&self) -> Reporter {
        self.reporter
    }

    /// Whether the connection was mutually authenticated (`connection_security_policy`).
    pub fn security(&self) -> SecurityPolicy {
        self.security
    }
}

impl PartialEq for LabelSet {
    fn eq(&self, other: &Self) -> bool {
        self.reporter == other.reporter
            && self.protocol == other.protocol
            && self.security == other.security
            && (Arc::ptr_eq(&self.peer, &other.peer)
                || (self.peer.digest == other.peer.digest && self.peer.labels == other.peer.labels))
    }
}

impl Eq for LabelSet {}

impl Hash for LabelSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.peer.digest);
        self.reporter.hash(state);
        self.protocol.hash(state);
        self.security.hash(state);
    }
}

/// Response flags as a bitmask: `ResponseFlags` has no `Hash`, and the mask is what keys need.
pub(crate) fn flag_bits(flags: ResponseFlags) -> u16 {
    ResponseFlag::ALL
        .iter()
        .enumerate()
        .fold(0, |acc, (i, f)| acc | (u16::from(flags.contains(*f)) << i))
}

/// Key of the HTTP families: the interned peer half plus the outcome integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub labels: LabelSet,
    pub response_code: u16,
    pub grpc_status: Option<u16>,
    pub flags: u16,
}

/// Key of the TCP families: TCP metrics carry no status labels, only flags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TcpKey {
    pub labels: LabelSet,
    pub flags: u16,
}

/// Writes the flag bitmask as Envoy does (`-`, `UF`, `UF,URX`).
fn flags_text(bits: u16) -> String {
    let mut flags = ResponseFlags::default();
    for (i, f) in ResponseFlag::ALL.iter().enumerate() {
        if bits & (1 << i) != 0 {
            flags.insert(*f);
        }
    }
    flags.to_string()
}

/// Encodes all labels in Istio's order; `outcome` is `(response_code, grpc_status)` for HTTP.
fn encode_labels(
    set: &LabelSet,
    outcome: Option<(u16, Option<u16>)>,
    flags: u16,
    encoder: &mut LabelSetEncoder,
) -> Result<(), std::fmt::Error> {
    [("reporter", set.reporter.as_str())]
        .as_slice()
        .encode(encoder)?;
    set.peer.labels.pairs().as_slice().encode(encoder)?;
    [("request_protocol", set.protocol.as_str())]
        .as_slice()
        .encode(encoder)?;
    if let Some((code, grpc)) = outcome {
        [("response_code", code)].as_slice().encode(encoder)?;
        [("grpc_response_status", grpc)]
            .as_slice()
            .encode(encoder)?;
    }
    let flags = flags_text(flags);
    [
        ("response_flags", flags.as_str()),
        ("connection_security_policy", set.security.as_str()),
    ]
    .as_slice()
    .encode(encoder)
}

impl EncodeLabelSet for RequestKey {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        encode_labels(
            &self.labels,
            Some((self.response_code, self.grpc_status)),
            self.flags,
            encoder,
        )
    }
}

impl EncodeLabelSet for TcpKey {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        encode_labels(&self.labels, None, self.flags, encoder)
    }
}

/// The parts of a request key, so the map can be searched with borrowed parts
/// ([`RequestKeyRef`]) instead of a key that would need an `Arc` clone per request.
pub(crate) trait RequestKeyParts {
    fn parts(&self) -> (&LabelSet, u16, Option<u16>, u16);
}

impl RequestKeyParts for RequestKey {
    fn parts(&self) -> (&LabelSet, u16, Option<u16>, u16) {
        (
            &self.labels,
            self.response_code,
            self.grpc_status,
            self.flags,
        )
    }
}

/// A request key made of borrowed parts, for lookups.
pub(crate) struct RequestKeyRef<'a> {
    pub labels: &'a LabelSet,
    pub response_code: u16,
    pub grpc_status: Option<u16>,
    pub flags: u16,
}

impl RequestKeyParts for RequestKeyRef<'_> {
    fn parts(&self) -> (&LabelSet, u16, Option<u16>, u16) {
        (
            self.labels,
            self.response_code,
            self.grpc_status,
            self.flags,
        )
    }
}

impl Hash for dyn RequestKeyParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn RequestKeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn RequestKeyParts + '_ {}

impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must match the `dyn RequestKeyParts` hash for borrowed lookups to find owned keys.
        self.parts().hash(state);
    }
}

impl<'a> Borrow<dyn RequestKeyParts + 'a> for RequestKey {
    fn borrow(&self) -> &(dyn RequestKeyParts + 'a) {
        self
    }
}
