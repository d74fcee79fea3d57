//! Configuration from the control plane: the xDS client hands each complete mesh to
//! [`follow`]'s apply step, which prepares a runtime and swaps it in, or refuses it (the
//! client NACKs) and keeps serving the last good one. While the control plane is away the
//! proxy keeps what it has; the client reconnects and resyncs on its own.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use trellis_model::Mesh;
use trellis_xds::client::{ClientConfig, ClientStatus, run};
use trellis_xds::node::ProxyIdentity;

use super::AdminState;
use crate::runtime::{Runtime, RuntimeOptions};

/// Where the control plane is and who this proxy is.
#[derive(Debug, Clone)]
pub struct XdsSettings {
    /// The control plane's xDS address (`host:port`).
    pub address: String,
    /// This proxy's identity, sent when the stream opens.
    pub identity: ProxyIdentity,
}

/// Follows the control plane until the task is aborted.
pub(super) async fn follow(
    xds: XdsSettings,
    opts: RuntimeOptions,
    state: Arc<AdminState>,
    runtime: watch::Sender<Arc<Runtime>>,
    status: watch::Sender<ClientStatus>,
) {
    let apply = move |mesh: Mesh, version: &str| -> Result<(), String> {
        match Runtime::build(&mesh, &opts) {
            Ok(rt) => {
                let services = mesh.services.len();
                runtime.send_replace(Arc::new(rt));
                state.store.accept(Arc::new(mesh), services);
                state.metrics.record_config_reload(true);
                state.configured.store(true, Ordering::Release);
                super::heap::release_free_pages();
                tracing::info!(%version, services, "configuration from the control plane applied");
                Ok(())
            }
            Err(e) => {
                let reason = format!("the proxy cannot use this configuration: {e}");
                state.store.reject(vec![reason.clone()]);
                state.metrics.record_config_reload(false);
                Err(reason)
            }
        }
    };
    run(ClientConfig::new(xds.address, xds.identity), apply, status).await;
}
