//! Who called whom, as metric labels: the local workload's identity (the `source_*` half of
//! Istio's labels) and, per backend, the `destination_*` half of every endpoint, taken from the
//! model at configuration time. The full [`LabelSet`]s (both halves, per endpoint and protocol)
//! are built once, on a backend's first recorded request, and reused, so recording a request
//! never formats or hashes a label string.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use trellis_model::{Endpoint, Service, Workload};

use super::metrics::{LabelSet, PeerLabels, Reporter, RequestProtocol, SecurityPolicy};
use super::peer_header::Caller;

/// Istio's value for a label the reporter cannot know.
pub const UNKNOWN: &str = "unknown";

/// The local workload as Istio's `source_*` labels name it. Every field defaults to `unknown`,
/// as Istio reports a caller it knows nothing about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIdentity {
    /// `source_workload`: the workload (deployment) name.
    pub workload: String,
    /// `source_workload_namespace`.
    pub namespace: String,
    /// `source_app`: the workload's `app` label.
    pub app: String,
    /// `source_version`: the workload's `version` label.
    pub version: String,
    /// `source_principal`: the workload's SPIFFE identity.
    pub principal: String,
}

impl Default for SourceIdentity {
    fn default() -> Self {
        let u = || UNKNOWN.to_owned();
        SourceIdentity {
            workload: u(),
            namespace: u(),
            app: u(),
            version: u(),
            principal: u(),
        }
    }
}

impl SourceIdentity {
    /// The identity of a workload from the model, as Istio derives it: canonical name and
    /// revision (`app`/`version` labels) and the SPIFFE ID under `trust_domain`.
    pub fn from_workload(workload: &Workload, trust_domain: &str) -> Self {
        SourceIdentity {
            workload: or_unknown(&workload.name),
            namespace: or_unknown(&workload.namespace),
            app: or_unknown(workload.canonical_name()),
            version: or_unknown(workload.canonical_revision()),
            principal: workload.identity(trust_domain),
        }
    }
}

/// The source identity of one [`Telemetry`](super::Telemetry), with a process-unique id so a
/// backend's cached label sets are known to belong to it.
#[derive(Debug)]
pub(crate) struct Source {
    id: u64,
    identity: SourceIdentity,
}

impl Source {
    pub(crate) fn new(identity: SourceIdentity) -> Source {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Source {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            identity,
        }
    }

    /// Both label sets (HTTP, gRPC) for a destination.
    pub(crate) fn label_sets(&self, dest: &DestinationLabels) -> ProtocolSets {
        let s = &self.identity;
        let peer = PeerLabels {
            source_workload: s.workload.clone(),
            source_workload_namespace: s.namespace.clone(),
            source_principal: s.principal.clone(),
            source_app: s.app.clone(),
            source_version: s.version.clone(),
            destination_workload: dest.workload.clone(),
            destination_workload_namespace: dest.namespace.clone(),
            // Not verified without mTLS: Istio reports `unknown` then too.
            destination_principal: UNKNOWN.to_owned(),
            destination_app: dest.app.clone(),
            destination_version: dest.version.clone(),
            destination_service: dest.service.clone(),
            destination_service_name: dest.service_name.clone(),
            destination_service_namespace: dest.service_namespace.clone(),
        };
        protocol_sets(&peer, Reporter::Source, SecurityPolicy::Unknown)
    }
}

impl Source {
    /// The label sets this proxy reports as the server side (`reporter="destination"`):
    /// `caller` as the source, this workload as the destination, `service` (its FQDN, when
    /// the port belongs to one) as the destination service. Plaintext, so the security
    /// policy is `none` and both principals are `unknown`, as Istio reports without mTLS.
    pub(crate) fn inbound_label_sets(
        &self,
        service: Option<&str>,
        caller: &Caller,
    ) -> ProtocolSets {
        let s = &self.identity;
        let svc = DestinationLabels::service_host(service.unwrap_or(UNKNOWN));
        let peer = PeerLabels {
            source_workload: caller.workload.clone(),
            source_workload_namespace: caller.namespace.clone(),
            source_principal: UNKNOWN.to_owned(),
            source_app: caller.app.clone(),
            source_version: caller.version.clone(),
            destination_workload: s.workload.clone(),
            destination_workload_namespace: s.namespace.clone(),
            destination_principal: UNKNOWN.to_owned(),
            destination_app: s.app.clone(),
            destination_version: s.version.clone(),
            destination_service: svc.service,
            destination_service_name: svc.service_name,
            destination_service_namespace: svc.service_namespace,
        };
        protocol_sets(&peer, Reporter::Destination, SecurityPolicy::None)
    }
}

/// One label set per [`RequestProtocol`], indexed by [`protocol_index`].
pub(crate) type ProtocolSets = [LabelSet; 3];

/// The label sets of `peer` as `reporter` sees it, one per protocol.
fn protocol_sets(peer: &PeerLabels, reporter: Reporter, security: SecurityPolicy) -> ProtocolSets {
    let set = |protocol| LabelSet::new(peer.clone(), reporter, protocol, security);
    [
        set(RequestProtocol::Http),
        set(RequestProtocol::Grpc),
        set(RequestProtocol::Tcp),
    ]
}

/// Where a protocol's label set sits in [`ProtocolSets`].
pub(crate) fn protocol_index(protocol: RequestProtocol) -> usize {
    match protocol {
        RequestProtocol::Http => 0,
        RequestProtocol::Grpc => 1,
        RequestProtocol::Tcp => 2,
    }
}

/// The `destination_*` label values of one endpoint (or of a service when no endpoint is known).
#[derive(Debug, Clone)]
pub(crate) struct DestinationLabels {
    workload: String,
    namespace: String,
    app: String,
    version: String,
    service: String,
    service_name: String,
    service_namespace: String,
}

impl DestinationLabels {
    /// Nothing known: the request matched no service (`NR`).
    pub(crate) fn unknown() -> Self {
        DestinationLabels::service_host(UNKNOWN)
    }

    /// Only the service's host is known (no backend was chosen, e.g. `UH`): name and namespace
    /// come from a `name.namespace.svc…` host, else the host is the name (as for ServiceEntries).
    pub(crate) fn service_host(host: &str) -> Self {
        let mut parts = host.split('.');
        let (name, namespace) = match (parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(ns), Some("svc")) => (name, ns),
            _ => (host, UNKNOWN),
        };
        DestinationLabels {
            workload: UNKNOWN.to_owned(),
            namespace: UNKNOWN.to_owned(),
            app: UNKNOWN.to_owned(),
            version: UNKNOWN.to_owned(),
            service: host.to_owned(),
            service_name: name.to_owned(),
            service_namespace: namespace.to_owned(),
        }
    }

    fn service(service: &Service) -> Self {
        DestinationLabels {
            workload: UNKNOWN.to_owned(),
            namespace: UNKNOWN.to_owned(),
            app: UNKNOWN.to_owned(),
            version: UNKNOWN.to_owned(),
            service: or_unknown(&service.host),
            service_name: or_unknown(&service.name),
            service_namespace: or_unknown(&service.namespace),
        }
    }

    fn endpoint(service: &Self, ep: &Endpoint) -> Self {
        let label = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| ep.labels.get(*k))
                .map_or_else(|| UNKNOWN.to_owned(), |v| or_unknown(v))
        };
        DestinationLabels {
            workload: ep
                .workload
                .as_deref()
                .map_or_else(|| UNKNOWN.to_owned(), or_unknown),
            namespace: or_unknown(&ep.namespace),
            app: label(&[
                "service.istio.io/canonical-name",
                "app.kubernetes.io/name",
                "app",
            ]),
            version: label(&[
                "service.istio.io/canonical-revision",
                "app.kubernetes.io/version",
                "version",
            ]),
            ..service.clone()
        }
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() { UNKNOWN } else { s }.to_owned()
}

/// The label sets of one source, built on first use.
#[derive(Debug)]
struct Resolved {
    source: u64,
    endpoints: Box<[ProtocolSets]>,
    /// For passthrough requests (no endpoint of ours).
    none: ProtocolSets,
}

/// The telemetry facts of one backend's endpoints: their `destination_*` labels and addresses
/// (the access log's upstream host), aligned with the backend's endpoint indices.
#[derive(Debug)]
pub struct BackendLabels {
    service: DestinationLabels,
    endpoints: Box<[(DestinationLabels, Arc<str>)]>,
    resolved: OnceLock<Resolved>,
}

impl BackendLabels {
    /// Prepares the labels of `endpoints` of `service`, each with the `ip:port` it is reached
    /// at, in the backend's endpoint order.
    pub fn new<'a>(
        service: &Service,
        endpoints: impl IntoIterator<Item = (&'a Endpoint, &'a str)>,
    ) -> BackendLabels {
        let svc = DestinationLabels::service(service);
        let endpoints = endpoints
            .into_iter()
            .map(|(ep, address)| (DestinationLabels::endpoint(&svc, ep), Arc::from(address)))
            .collect();
        BackendLabels {
            service: svc,
            endpoints,
            resolved: OnceLock::new(),
        }
    }

    /// The `ip:port` of endpoint `index`.
    pub fn address(&self, index: usize) -> Option<&Arc<str>> {
        self.endpoints.get(index).map(|(_, a)| a)
    }

    /// The label set of a request from `source` to endpoint `index` (or to no endpoint of ours)
    /// over `protocol`; borrowed from the cache in the steady state.
    pub(crate) fn label_set(
        &self,
        source: &Source,
        index: Option<usize>,
        protocol: RequestProtocol,
    ) -> Cow<'_, LabelSet> {
        let p = protocol_index(protocol);
        let resolved = self.resolved.get_or_init(|| Resolved {
            source: source.id,
            endpoints: self
                .endpoints
                .iter()
                .map(|(d, _)| source.label_sets(d))
                .collect(),
            none: source.label_sets(&self.service),
        });
        if resolved.source == source.id {
            let sets = index
                .and_then(|i| resolved.endpoints.get(i))
                .unwrap_or(&resolved.none);
            return Cow::Borrowed(&sets[p]);
        }
        // Another listener with another identity shares this runtime: build (rare, slow path).
        let dest = index
            .and_then(|i| self.endpoints.get(i))
            .map_or(&self.service, |(d, _)| d);
        let [http, grpc, tcp] = source.label_sets(dest);
        Cow::Owned(match protocol {
            RequestProtocol::Http => http,
            RequestProtocol::Grpc => grpc,
            RequestProtocol::Tcp => tcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        let mut ep = Endpoint {
            address: "10.0.0.1".into(),
            workload: Some("reviews-v2-abc".into()),
            namespace: "shop".into(),
            ..Endpoint::default()
        };
        ep.labels.insert("app".into(), "reviews".into());
        ep.labels.insert("version".into(), "v2".into());
        ep.labels
            .insert("app.kubernetes.io/version".into(), "2.0".into());
        Service {
            host: "reviews.shop.svc.cluster.local".into(),
            name: "reviews".into(),
            namespace: "shop".into(),
            endpoints: vec![ep, Endpoint::default()],
            ..Service::default()
        }
    }

    fn labels(service: &Service) -> BackendLabels {
        BackendLabels::new(
            service,
            service
                .endpoints
                .iter()
                .zip(["10.0.0.1:9080", "10.0.0.2:9080"]),
        )
    }

    #[test]
    fn endpoint_labels_follow_istios_precedence_and_default_to_unknown() {
        let svc = service();
        let b = labels(&svc);
        let source = Source::new(SourceIdentity::default());
        let set = b.label_set(&source, Some(0), RequestProtocol::Http);
        let p = set.peer();
        assert_eq!(p.destination_workload, "reviews-v2-abc");
        assert_eq!(p.destination_app, "reviews");
        // app.kubernetes.io/version outranks version, as in Istio's canonical revision.
        assert_eq!(p.destination_version, "2.0");
        assert_eq!(p.destination_service_name, "reviews");
        assert_eq!(p.source_workload, UNKNOWN);
        assert!(matches!(set, Cow::Borrowed(_)), "cached");
        let bare = b.label_set(&source, Some(1), RequestProtocol::Grpc);
        assert_eq!(bare.peer().destination_version, UNKNOWN);
        assert_eq!(bare.peer().destination_workload_namespace, UNKNOWN);
        assert_eq!(bare.protocol(), RequestProtocol::Grpc);
        assert_eq!(b.address(1).map(|a| &**a), Some("10.0.0.2:9080"));
        let none = b.label_set(&source, None, RequestProtocol::Http);
        assert_eq!(none.peer().destination_workload, UNKNOWN);
        assert_eq!(none.peer().destination_service_namespace, "shop");
    }

    #[test]
    fn another_source_gets_its_own_labels() {
        let svc = service();
        let b = labels(&svc);
        let first = Source::new(SourceIdentity::default());
        let _ = b.label_set(&first, Some(0), RequestProtocol::Http);
        let other = Source::new(SourceIdentity {
            workload: "frontend".into(),
            ..SourceIdentity::default()
        });
        let set = b.label_set(&other, Some(0), RequestProtocol::Http);
        assert_eq!(set.peer().source_workload, "frontend");
        assert_eq!(set.peer().destination_version, "2.0");
    }

    #[test]
    fn service_hosts_split_into_name_and_namespace() {
        let d = DestinationLabels::service_host("ratings.shop.svc.cluster.local");
        assert_eq!(
            (d.service_name.as_str(), d.service_namespace.as_str()),
            ("ratings", "shop")
        );
        let d = DestinationLabels::service_host("api.example.com");
        assert_eq!(
            (d.service_name.as_str(), d.service_namespace.as_str()),
            ("api.example.com", UNKNOWN)
        );
    }
}
