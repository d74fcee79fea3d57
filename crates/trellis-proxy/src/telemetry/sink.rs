//! [`Telemetry`]: everything a listener needs to report requests — the metrics registry, the
//! local workload's identity (the `source_*` labels) and the access-log writer — built once at
//! startup and shared (`Arc`) by every connection.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use http::HeaderValue;

use super::access_log::{AccessLogConfig, AccessLogError, AccessLogWriter, LogEntry};
use super::metrics::{LabelSet, ProxyMetrics, RequestProtocol};
use super::peer_header::{self, Caller};
use super::peers::{
    BackendLabels, DestinationLabels, ProtocolSets, Source, SourceIdentity, protocol_index,
};

/// Services whose label sets are cached for requests that reached a service but no backend;
/// beyond it (many reloads with renamed services) such requests build their labels each time.
const MAX_SERVICE_ONLY: usize = 4096;

/// (service, caller) pairs whose inbound label sets are cached; beyond it (a client sending
/// ever new peer headers) requests build their labels each time, and the metric families'
/// own bound turns new series into the overflow series.
const MAX_INBOUND: usize = 4096;

/// Inbound label sets are cached by the destination service and the raw peer header.
type InboundKey = (Option<Arc<str>>, Option<HeaderValue>);

/// The reporting side of a listener: Istio's metrics, the proxy's counters and the access log.
#[derive(Debug)]
pub struct Telemetry {
    metrics: Arc<ProxyMetrics>,
    source: Source,
    access_log: Option<AccessLogWriter>,
    /// Destination unknown (no service matched, `NR`), per protocol.
    unknown: ProtocolSets,
    /// Service known but no backend chosen (e.g. `UH`), by service host.
    service_only: RwLock<HashMap<Arc<str>, ProtocolSets>>,
    /// The peer header this proxy sends upstream (`None`: its identity is unknown).
    peer_header: Option<HeaderValue>,
    /// The server side's label sets (`reporter="destination"`), by service and caller.
    inbound: RwLock<HashMap<InboundKey, ProtocolSets>>,
}

impl Telemetry {
    /// Reports into `metrics` (share the same registry with the admin endpoint) as `source`,
    /// and starts the access-log writer unless `access_log` is off.
    pub fn new(
        metrics: Arc<ProxyMetrics>,
        source: SourceIdentity,
        access_log: &AccessLogConfig,
    ) -> Result<Telemetry, AccessLogError> {
        let peer_header = peer_header::encode(&source);
        let source = Source::new(source);
        let unknown = source.label_sets(&DestinationLabels::unknown());
        Ok(Telemetry {
            metrics,
            source,
            access_log: AccessLogWriter::start(access_log)?,
            unknown,
            service_only: RwLock::new(HashMap::new()),
            peer_header,
            inbound: RwLock::new(HashMap::new()),
        })
    }

    /// The registry requests are recorded into (`/stats/prometheus` encodes it).
    pub fn metrics(&self) -> &Arc<ProxyMetrics> {
        &self.metrics
    }

    /// Whether requests should collect the facts of an access-log line.
    pub fn access_log_enabled(&self) -> bool {
        self.access_log.is_some()
    }

    /// Queues one access-log line; counts it as dropped when the writer is behind.
    pub fn log(&self, entry: LogEntry) {
        if let Some(w) = &self.access_log
            && !w.try_log(entry)
        {
            self.metrics.record_access_log_dropped();
        }
    }

    /// The label set of a request: to `endpoint` of `backend` when one was chosen, else to the
    /// service `service` when the host resolved, else to an unknown destination. Borrowed from
    /// caches built at first use, so the steady state builds no strings.
    pub fn labels<'a>(
        &'a self,
        backend: Option<&'a BackendLabels>,
        service: Option<&Arc<str>>,
        endpoint: Option<usize>,
        protocol: RequestProtocol,
    ) -> Cow<'a, LabelSet> {
        let p = protocol_index(protocol);
        if let Some(b) = backend {
            return b.label_set(&self.source, endpoint, protocol);
        }
        let Some(host) = service else {
            return Cow::Borrowed(&self.unknown[p]);
        };
        let cached = self
            .service_only
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&**host)
            .map(|sets| sets[p].clone());
        if let Some(set) = cached {
            return Cow::Owned(set);
        }
        let sets = self
            .source
            .label_sets(&DestinationLabels::service_host(host));
        let set = sets[p].clone();
        let mut map = self
            .service_only
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_SERVICE_ONLY {
            map.entry(Arc::clone(host)).or_insert(sets);
        }
        Cow::Owned(set)
    }
}

impl Telemetry {
    /// The `x-trellis-peer` value this proxy puts on requests to services in the mesh, so
    /// their proxies can name it in `reporter="destination"` metrics (see
    /// [`peer_header`](super::peer_header)); `None` when its identity is unknown.
    pub fn peer_header(&self) -> Option<&HeaderValue> {
        self.peer_header.as_ref()
    }

    /// The label set of a request (or TCP connection) this proxy served as the destination:
    /// for `service` (the port's service, when known), from the caller named by `caller` (a
    /// peer header; absent or malformed: `unknown`). Cached by both, so the steady state
    /// parses and builds nothing.
    pub fn inbound_labels(
        &self,
        service: Option<&Arc<str>>,
        caller: Option<&HeaderValue>,
        protocol: RequestProtocol,
    ) -> LabelSet {
        let p = protocol_index(protocol);
        let key: InboundKey = (service.cloned(), caller.cloned());
        if let Some(sets) = self
            .inbound
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return sets[p].clone();
        }
        let parsed = caller
            .and_then(Caller::parse)
            .unwrap_or_else(Caller::unknown);
        let sets = self
            .source
            .inbound_label_sets(service.map(|s| &**s), &parsed);
        let set = sets[p].clone();
        let mut map = self.inbound.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() < MAX_INBOUND {
            map.entry(key).or_insert(sets);
        }
        set
    }
}

impl Default for Telemetry {
    /// A fresh registry, an unknown source and no access log: what tests and embedders get
    /// unless they configure it (the CLI configures JSON lines on stdout).
    fn default() -> Self {
        let source = Source::new(SourceIdentity::default());
        let unknown = source.label_sets(&DestinationLabels::unknown());
        Telemetry {
            metrics: Arc::new(ProxyMetrics::default()),
            source,
            access_log: None,
            unknown,
            service_only: RwLock::new(HashMap::new()),
            peer_header: None,
            inbound: RwLock::new(HashMap::new()),
        }
    }
}
