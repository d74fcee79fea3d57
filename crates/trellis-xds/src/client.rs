//! The proxy's side of the Delta ADS stream.
//!
//! [`run`] connects to the control plane, subscribes to every resource type, and hands each
//! complete configuration to the proxy. Each response is ACKed once the proxy has applied it,
//! or NACKed with the reason (a resource that does not decode, or a configuration the proxy
//! cannot prepare), in which case the proxy keeps serving what it had.
//!
//! When the control plane is unreachable the proxy keeps its last good configuration and
//! retries with jittered exponential backoff. On reconnect it reports the versions it holds
//! (`initial_resource_versions`), so the control plane sends only what changed meanwhile.

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use trellis_model::Mesh;

use crate::node::ProxyIdentity;
use crate::resources::{Assembly, TYPE_URLS, type_short};

/// Responses arriving within this window of each other are applied together: the control
/// plane sends one push's types back to back, and a service should not go live before the
/// endpoints sent with it.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// gRPC status code `INVALID_ARGUMENT`, which Envoy also puts in NACKs.
const INVALID_ARGUMENT: i32 = 3;

/// Largest response accepted (a full push to a proxy that sees thousands of services).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Where to connect, as whom, and how patiently.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The control plane's xDS address: `host:port` or `http://host:port`.
    pub address: String,
    /// Who this proxy is.
    pub identity: ProxyIdentity,
    /// First reconnect delay; doubles per failed attempt.
    pub initial_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
}

impl ClientConfig {
    /// Reconnects start after 100 ms and back off to 5 s.
    pub fn new(address: impl Into<String>, identity: ProxyIdentity) -> ClientConfig {
        ClientConfig {
            address: address.into(),
            identity,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    fn uri(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("http://{}", self.address)
        }
    }
}

/// The stream's state, for the proxy's admin pages.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientStatus {
    /// The control plane's address.
    pub control_plane: String,
    /// Whether a stream is open now.
    pub connected: bool,
    /// Streams opened since start.
    pub connects: u64,
    /// Why the last connection attempt or stream failed.
    pub last_error: Option<String>,
    /// The control plane's configuration version last applied.
    pub version: Option<String>,
    /// Updates applied.
    pub updates_applied: u64,
    /// Updates refused (NACKed).
    pub updates_rejected: u64,
    /// Why the last refused update was refused.
    pub last_rejection: Option<String>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("invalid control plane address: {0}")]
    Address(#[from] tonic::codegen::http::uri::InvalidUri),
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("stream failed: {0}")]
    Stream(#[from] tonic::Status),
    #[error("stream closed while sending")]
    Closed,
}

/// Follows the control plane until the task is dropped. `apply` receives each complete
/// configuration with the control plane's version and returns `Err(reason)` to refuse it.
pub async fn run<F>(config: ClientConfig, mut apply: F, status: watch::Sender<ClientStatus>)
where
    F: FnMut(Mesh, &str) -> Result<(), String> + Send,
{
    status.send_modify(|s| s.control_plane.clone_from(&config.address));
    let mut held = Assembly::default();
    let mut backoff = config.initial_backoff;
    loop {
        let started = Instant::now();
        let result = session(&config, &mut held, &mut apply, &status).await;
        status.send_modify(|s| {
            s.connected = false;
            if let Err(e) = &result {
                s.last_error = Some(e.to_string());
            }
        });
        match &result {
            Ok(()) => {
                tracing::info!(control_plane = %config.address, "xDS stream closed by the control plane; reconnecting")
            }
            Err(e) => {
                tracing::warn!(control_plane = %config.address, error = %e, "xDS stream failed; serving the last good configuration and reconnecting")
            }
        }
        // A stream that lived a while was healthy: try again quickly.
        if started.elapsed() > Duration::from_secs(10) {
            backoff = config.initial_backoff;
        }
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        tokio::time::sleep(jittered).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

async fn session<F>(
    config: &ClientConfig,
    held: &mut Assembly,
    apply: &mut F,
    status: &watch::Sender<ClientStatus>,
) -> Result<(), SessionError>
where
    F: FnMut(Mesh, &str) -> Result<(), String> + Send,
{
    let channel = tonic::transport::Endpoint::from_shared(config.uri())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let mut client = AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (tx, rx) = mpsc::channel(64);
    let node = config.identity.to_node();
    for (i, type_url) in TYPE_URLS.iter().enumerate() {
        let subscribe = DeltaDiscoveryRequest {
            node: (i == 0).then(|| node.clone()),
            type_url: (*type_url).to_owned(),
            resource_names_subscribe: vec!["*".to_owned()],
            initial_resource_versions: held.versions(type_url),
            ..DeltaDiscoveryRequest::default()
        };
        tx.send(subscribe).await.map_err(|_| SessionError::Closed)?;
    }
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await?
        .into_inner();
    status.send_modify(|s| {
        s.connected = true;
        s.connects += 1;
        s.last_error = None;
    });
    tracing::info!(control_plane = %config.address, node = %node.id, "xDS stream open");
    loop {
        let Some(first) = stream.message().await? else {
            return Ok(());
        };
        let mut batch = vec![first];
        let mut ended = None;
        loop {
            match tokio::time::timeout(BATCH_WINDOW, stream.message()).await {
                Ok(Ok(Some(next))) => batch.push(next),
                Ok(Ok(None)) => {
                    ended = Some(Ok(()));
                    break;
                }
                Ok(Err(e)) => {
                    ended = Some(Err(SessionError::from(e)));
                    break;
                }
                Err(_) => break,
            }
        }
        let replies = settle(batch, held, apply, status);
        for r in replies {
            tx.send(r).await.map_err(|_| SessionError::Closed)?;
        }
        if let Some(end) = ended {
            return end;
        }
    }
}

/// Applies a batch of responses and returns the ACKs and NACKs to send.
fn settle<F>(
    batch: Vec<DeltaDiscoveryResponse>,
    held: &mut Assembly,
    apply: &mut F,
    status: &watch::Sender<ClientStatus>,
) -> Vec<DeltaDiscoveryRequest>
where
    F: FnMut(Mesh, &str) -> Result<(), String>,
{
    let mut staged = held.clone();
    let mut replies = Vec::with_capacity(batch.len());
    let mut taken = Vec::with_capacity(batch.len());
    for resp in batch {
        match staged.apply(&resp) {
            Ok(()) => taken.push(resp),
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(type_url = %resp.type_url, nonce = %resp.nonce, %reason, "xDS update refused");
                status.send_modify(|s| {
                    s.updates_rejected += 1;
                    s.last_rejection = Some(reason.clone());
                });
                replies.push(reply(&resp, Some(reason)));
            }
        }
    }
    let Some(last) = taken.last() else {
        return replies;
    };
    let version = last.system_version_info.clone();
    match apply(staged.mesh(), &version) {
        Ok(()) => {
            *held = staged;
            tracing::debug!(%version, responses = taken.len(), "xDS update applied");
            status.send_modify(|s| {
                s.updates_applied += 1;
                s.version = Some(version.clone());
            });
            replies.extend(taken.iter().map(|r| reply(r, None)));
        }
        Err(reason) => {
            let types: Vec<_> = taken.iter().map(|r| type_short(&r.type_url)).collect();
            tracing::warn!(%version, ?types, %reason, "xDS update refused; the last good configuration keeps serving");
            status.send_modify(|s| {
                s.updates_rejected += 1;
                s.last_rejection = Some(reason.clone());
            });
            replies.extend(taken.iter().map(|r| reply(r, Some(reason.clone()))));
        }
    }
    replies
}

/// An ACK (`error: None`) or NACK of `resp`.
fn reply(resp: &DeltaDiscoveryResponse, error: Option<String>) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        error_detail: error.map(|message| Status {
            code: INVALID_ARGUMENT,
            message,
            details: Vec::new(),
        }),
        ..DeltaDiscoveryRequest::default()
    }
}
