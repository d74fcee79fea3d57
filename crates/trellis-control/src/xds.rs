//! The Delta ADS server (`envoy.service.discovery.v3.AggregatedDiscoveryService`,
//! `DeltaAggregatedResources`): one task per connected proxy, see [`stream`].
//!
//! State-of-the-world ADS (`StreamAggregatedResources`) is not served: every Trellis proxy
//! speaks delta, and sending only what changed is the point.

mod stream;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::ControlMetrics;
use crate::registry::Registry;
use crate::snapshot::Snapshot;

/// Largest message accepted or sent (a full push to a proxy that sees thousands of services).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// What every stream task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<ControlMetrics>,
    nonce: AtomicU64,
}

impl Shared {
    fn next_nonce(&self) -> String {
        self.nonce.fetch_add(1, Ordering::Relaxed).to_string()
    }
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AdsService {
    shared: Arc<Shared>,
}

impl AdsService {
    /// Serves the snapshots published on `snapshots`.
    pub fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        registry: Arc<Registry>,
        metrics: Arc<ControlMetrics>,
    ) -> AdsService {
        AdsService {
            shared: Arc::new(Shared {
                snapshots,
                registry,
                metrics,
                nonce: AtomicU64::new(1),
            }),
        }
    }

    /// The tonic server for this service, with message limits set.
    pub fn into_server(self) -> AggregatedDiscoveryServiceServer<AdsService> {
        AggregatedDiscoveryServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

type SotwStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = SotwStream;

    async fn stream_aggregated_resources(
        &self,
        _request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<SotwStream>, Status> {
        Err(Status::unimplemented(
            "Trellis serves Delta ADS only: use DeltaAggregatedResources",
        ))
    }

    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let peer = request.remote_addr();
        let requests = request.into_inner();
        // A few responses in flight per stream: enough to keep the connection busy, few enough
        // that a slow proxy cannot make the control plane buffer a whole push for it.
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(stream::serve(Arc::clone(&self.shared), peer, requests, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
