//! Connected proxies and how far each has got: what was sent, what was ACKed, what was
//! refused and why. `/debug/syncz` and `trellis status` read it; only stream tasks write it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use trellis_xds::node::ProxyIdentity;

/// Every connected proxy.
#[derive(Debug, Default)]
pub struct Registry {
    proxies: RwLock<BTreeMap<u64, Arc<ProxyEntry>>>,
    next: AtomicU64,
}

/// One connected proxy (one stream).
#[derive(Debug)]
pub struct ProxyEntry {
    /// The proxy's identity.
    pub identity: ProxyIdentity,
    /// Its node id.
    pub node_id: String,
    /// The stream's peer address.
    pub peer: Option<SocketAddr>,
    /// When the stream opened.
    pub connected_at: SystemTime,
    sync: Mutex<BTreeMap<&'static str, TypeSync>>,
}

/// The state of one resource type on one proxy.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TypeSync {
    /// Resources of this type the proxy should now hold.
    pub resources: usize,
    /// Configuration version of the last response sent.
    pub version_sent: Option<String>,
    /// Configuration version of the last response ACKed.
    pub version_acked: Option<String>,
    /// Responses sent and not yet answered.
    pub pending: usize,
    /// The last refusal, while the proxy has not ACKed anything of this type since.
    pub nack: Option<Nack>,
}

/// A refused response.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nack {
    /// Configuration version refused.
    pub version: String,
    /// The proxy's reason.
    pub message: String,
    /// When (seconds since the Unix epoch).
    pub at: f64,
}

/// Sync state of a type, as `istioctl proxy-status` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SyncStatus {
    /// Everything sent was ACKed.
    Synced,
    /// Sent, not yet ACKed.
    Stale,
    /// The last response was refused.
    Nacked,
    /// Nothing sent yet.
    NotSent,
}

impl TypeSync {
    /// The type's status.
    pub fn status(&self) -> SyncStatus {
        if self.nack.is_some() {
            SyncStatus::Nacked
        } else if self.version_sent.is_none() {
            SyncStatus::NotSent
        } else if self.pending > 0 {
            SyncStatus::Stale
        } else {
            SyncStatus::Synced
        }
    }
}

/// A proxy's status, for `/debug/syncz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyStatus {
    /// `workload.namespace`.
    pub proxy: String,
    /// Node id.
    pub id: String,
    /// `sidecar` or `router`.
    pub kind: &'static str,
    /// Stream peer.
    pub peer: Option<String>,
    /// When the stream opened (seconds since the Unix epoch).
    pub connected_at: f64,
    /// The worst status of any type.
    pub status: SyncStatus,
    /// Per type.
    pub types: BTreeMap<&'static str, TypeSync>,
}

impl Registry {
    /// Records a new stream.
    pub fn connect(
        &self,
        identity: ProxyIdentity,
        node_id: String,
        peer: Option<SocketAddr>,
    ) -> (u64, Arc<ProxyEntry>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(ProxyEntry {
            identity,
            node_id,
            peer,
            connected_at: SystemTime::now(),
            sync: Mutex::new(BTreeMap::new()),
        });
        self.write().insert(id, Arc::clone(&entry));
        (id, entry)
    }

    /// Forgets a stream.
    pub fn disconnect(&self, id: u64) {
        self.write().remove(&id);
    }

    /// Connected streams.
    pub fn len(&self) -> usize {
        self.proxies.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no proxy is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every proxy's status, sorted by name.
    pub fn statuses(&self) -> Vec<ProxyStatus> {
        let proxies: Vec<_> = self
            .proxies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out: Vec<_> = proxies.iter().map(|p| p.status()).collect();
        out.sort_by(|a, b| a.proxy.cmp(&b.proxy).then(a.id.cmp(&b.id)));
        out
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, Arc<ProxyEntry>>> {
        self.proxies.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProxyEntry {
    /// Updates the state of `type_short`.
    pub fn update(&self, type_short: &'static str, f: impl FnOnce(&mut TypeSync)) {
        let mut sync = self.sync.lock().unwrap_or_else(|e| e.into_inner());
        f(sync.entry(type_short).or_default());
    }

    /// A copy of the proxy's status.
    pub fn status(&self) -> ProxyStatus {
        let types = self.sync.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let status = types
            .values()
            .map(TypeSync::status)
            .max_by_key(|s| match s {
                SyncStatus::Synced => 0,
                SyncStatus::NotSent => 1,
                SyncStatus::Stale => 2,
                SyncStatus::Nacked => 3,
            })
            .unwrap_or(SyncStatus::NotSent);
        ProxyStatus {
            proxy: self.identity.name(),
            id: self.node_id.clone(),
            kind: self.identity.kind.as_str(),
            peer: self.peer.map(|p| p.to_string()),
            connected_at: unix_seconds(self.connected_at),
            status,
            types,
        }
    }
}

/// Seconds since the Unix epoch, with fractions.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
