//! One proxy's stream: subscriptions, pushes, ACKs and NACKs.
//!
//! Per resource type the stream keeps what it *sent* (name -> version) and what the proxy
//! *acked*. A push sends only resources whose version differs from what was sent, and names
//! removed ones. An ACK moves the response's changes into `acked`; a NACK puts `sent` back to
//! `acked` for those names (the proxy kept its old resources), so the next push offers them
//! again, and the refusal is shown in the registry until the proxy ACKs that type again.
//! A reconnecting proxy's `initial_resource_versions` seed both maps, so it receives only
//! what changed while it was away.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt as _;
use tonic::{Status, Streaming};
use trellis_xds::node::ProxyIdentity;
use trellis_xds::resources::{Encoded, TYPE_URLS, type_short, version_hash};

use super::Shared;
use crate::registry::{Nack, ProxyEntry, unix_seconds};
use crate::snapshot::Snapshot;
use crate::view::View;

type Tx = mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>;

/// The proxy went away (its stream or our sender closed).
struct Closed;

/// Most resources in one response. A first push to a proxy that sees a thousand services is
/// split, so no single message (and no encoding buffer gRPC keeps for the stream afterwards)
/// grows with the mesh; the proxy applies the chunks of one push together.
const MAX_PER_RESPONSE: usize = 100;

/// Per resource: its version hash (see [`trellis_xds::resources::Encoded`]).
type Versions = HashMap<Arc<str>, u64>;

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    sent: Versions,
    acked: Versions,
    pending: VecDeque<Pending>,
}

/// A response not yet answered.
#[derive(Debug)]
struct Pending {
    nonce: String,
    version: u64,
    created: Instant,
    /// Name -> new version hash, `None` for removals.
    changes: Vec<(Arc<str>, Option<u64>)>,
}

struct Conn {
    shared: Arc<Shared>,
    entry: Arc<ProxyEntry>,
    identity: ProxyIdentity,
    tx: Tx,
    snap: Arc<Snapshot>,
    view: View,
    types: HashMap<&'static str, TypeState>,
}

/// Serves one stream until the proxy disconnects or the control plane stops.
pub(super) async fn serve(
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    mut requests: Streaming<DeltaDiscoveryRequest>,
    tx: Tx,
) {
    let first = match requests.next().await {
        Some(Ok(r)) => r,
        _ => return,
    };
    let identity = match first.node.as_ref().map(ProxyIdentity::from_node) {
        Some(Ok(id)) => id,
        Some(Err(e)) => {
            let _ = tx.send(Err(Status::invalid_argument(e.to_string()))).await;
            return;
        }
        None => {
            let _ = tx
                .send(Err(Status::invalid_argument(
                    "the first request of a stream must carry the node identity",
                )))
                .await;
            return;
        }
    };
    let node_id = first
        .node
        .as_ref()
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let (id, entry) = shared
        .registry
        .connect(identity.clone(), node_id.clone(), peer);
    shared.metrics.connected(1);
    tracing::info!(proxy = %node_id, peer = ?peer, "proxy connected");
    let mut snapshots = shared.snapshots.clone();
    let snap = Arc::clone(&snapshots.borrow_and_update());
    let mut conn = Conn {
        view: View::compute(&snap, &identity),
        shared: Arc::clone(&shared),
        entry,
        identity,
        tx,
        snap,
        types: HashMap::new(),
    };
    let _ = conn.run(first, &mut requests, &mut snapshots).await;
    shared.registry.disconnect(id);
    shared.metrics.connected(-1);
    tracing::info!(proxy = %node_id, "proxy disconnected");
}

impl Conn {
    async fn run(
        &mut self,
        first: DeltaDiscoveryRequest,
        requests: &mut Streaming<DeltaDiscoveryRequest>,
        snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    ) -> Result<(), Closed> {
        self.handle(first).await?;
        loop {
            tokio::select! {
                msg = requests.next() => match msg {
                    Some(Ok(req)) => self.handle(req).await?,
                    Some(Err(status)) => {
                        tracing::debug!(proxy = %self.identity.name(), %status, "stream error");
                        return Err(Closed);
                    }
                    None => return Ok(()),
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let snap = Arc::clone(&snapshots.borrow_and_update());
                    self.view = View::compute(&snap, &self.identity);
                    self.snap = snap;
                    for t in TYPE_URLS {
                        if self.types.get(t).is_some_and(|s| s.subscribed) {
                            self.push(t, false).await?;
                        }
                    }
                }
            }
        }
    }

    async fn handle(&mut self, req: DeltaDiscoveryRequest) -> Result<(), Closed> {
        let Some(t) = TYPE_URLS.iter().copied().find(|t| *t == req.type_url) else {
            tracing::debug!(proxy = %self.identity.name(), type_url = %req.type_url, "request for an unknown type ignored");
            return Ok(());
        };
        if !req.response_nonce.is_empty() {
            match req.error_detail {
                None => self.ack(t, &req.response_nonce),
                Some(status) => self.nack(t, &req.response_nonce, status.message),
            }
            return Ok(());
        }
        let state = self.types.entry(t).or_default();
        if !state.subscribed && !req.initial_resource_versions.is_empty() {
            // What the proxy kept from an earlier stream: only differences are sent. A version
            // this control plane did not make cannot match and is sent again.
            let held: Versions = req
                .initial_resource_versions
                .into_iter()
                .filter_map(|(name, v)| Some((Arc::from(name), version_hash(&v)?)))
                .collect();
            state.acked.clone_from(&held);
            state.sent = held;
        }
        state.subscribed = true;
        // A subscription is always answered, even with nothing: the proxy learns it is in
        // sync with this control plane.
        self.push(t, true).await
    }

    async fn push(&mut self, t: &'static str, always: bool) -> Result<(), Closed> {
        let desired = self.view.resources(t);
        let count = desired.len();
        let state = self.types.entry(t).or_default();
        let mut changed: Vec<&Encoded> = Vec::new();
        let mut wanted = HashSet::with_capacity(desired.len());
        for e in desired {
            wanted.insert(&*e.name);
            if state.sent.get(&e.name) != Some(&e.hash) {
                changed.push(e);
            }
        }
        let removed: Vec<Arc<str>> = state
            .sent
            .keys()
            .filter(|n| !wanted.contains(&***n))
            .cloned()
            .collect();
        if changed.is_empty() && removed.is_empty() && !always {
            return Ok(());
        }
        // Removals ride with the first chunk; an empty push is still one response.
        let mut chunks: Vec<&[&Encoded]> = changed.chunks(MAX_PER_RESPONSE).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let short = type_short(t);
        let version = self.snap.version_info();
        let total = chunks.len();
        tracing::debug!(proxy = %self.identity.name(), r#type = short, %version, sent = changed.len(), removed = removed.len(), responses = total, "push");
        // Each response is built only when the previous one was taken by the stream, so a
        // slow proxy holds back at most the channel's few responses, not a whole push.
        for (i, chunk) in chunks.into_iter().enumerate() {
            let gone: &[Arc<str>] = if i == 0 { &removed } else { &[] };
            let mut changes: Vec<(Arc<str>, Option<u64>)> = chunk
                .iter()
                .map(|e| (Arc::clone(&e.name), Some(e.hash)))
                .collect();
            changes.extend(gone.iter().map(|n| (Arc::clone(n), None)));
            let state = self.types.entry(t).or_default();
            for (name, hash) in &changes {
                match hash {
                    Some(h) => state.sent.insert(Arc::clone(name), *h),
                    None => state.sent.remove(name),
                };
            }
            let nonce = self.shared.next_nonce();
            state.pending.push_back(Pending {
                nonce: nonce.clone(),
                version: self.snap.version,
                created: self.snap.created,
                changes,
            });
            let pending = state.pending.len();
            self.entry.update(short, |s| {
                s.resources = count;
                s.version_sent = Some(version.clone());
                s.pending = pending;
            });
            let resp = DeltaDiscoveryResponse {
                system_version_info: version.clone(),
                type_url: t.to_owned(),
                resources: chunk
                    .iter()
                    .map(|e| Resource {
                        name: e.name.to_string(),
                        version: e.version.clone(),
                        resource: Some(e.to_any(t)),
                        ..Resource::default()
                    })
                    .collect(),
                removed_resources: gone.iter().map(ToString::to_string).collect(),
                nonce,
                ..DeltaDiscoveryResponse::default()
            };
            self.shared
                .metrics
                .pushed(short, self.snap.created.elapsed().as_secs_f64());
            self.tx.send(Ok(resp)).await.map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Removes and returns the pending response `nonce` (and any older unanswered ones,
    /// which a proxy answering in order has implicitly superseded).
    fn answered(state: &mut TypeState, nonce: &str) -> Option<Pending> {
        let pos = state.pending.iter().position(|p| p.nonce == nonce)?;
        let mut older: Vec<_> = state.pending.drain(..=pos).collect();
        let this = older.pop();
        for p in older {
            apply_acked(&mut state.acked, &p.changes);
        }
        this
    }

    fn ack(&mut self, t: &'static str, nonce: &str) {
        let state = self.types.entry(t).or_default();
        let Some(p) = Self::answered(state, nonce) else {
            return;
        };
        apply_acked(&mut state.acked, &p.changes);
        let pending = state.pending.len();
        self.shared
            .metrics
            .converged(p.created.elapsed().as_secs_f64());
        self.entry.update(type_short(t), |s| {
            s.version_acked = Some(format!("v{}", p.version));
            s.pending = pending;
            s.nack = None;
        });
    }

    fn nack(&mut self, t: &'static str, nonce: &str, message: String) {
        let state = self.types.entry(t).or_default();
        let Some(p) = Self::answered(state, nonce) else {
            return;
        };
        for (name, _) in &p.changes {
            match state.acked.get(name) {
                Some(v) => state.sent.insert(Arc::clone(name), *v),
                None => state.sent.remove(name),
            };
        }
        let pending = state.pending.len();
        let short = type_short(t);
        self.shared.metrics.rejected(short);
        tracing::warn!(proxy = %self.identity.name(), r#type = short, version = p.version, reason = %message, "proxy refused configuration");
        self.entry.update(short, |s| {
            s.pending = pending;
            s.nack = Some(Nack {
                version: format!("v{}", p.version),
                message,
                at: unix_seconds(SystemTime::now()),
            });
        });
    }
}

fn apply_acked(acked: &mut Versions, changes: &[(Arc<str>, Option<u64>)]) {
    for (name, version) in changes {
        match version {
            Some(v) => acked.insert(Arc::clone(name), *v),
            None => acked.remove(name),
        };
    }
}
