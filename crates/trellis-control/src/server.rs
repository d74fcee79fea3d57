//! `trellis control`: the configuration followed and compiled, snapshots published to the
//! xDS server, and the monitoring endpoint.
//!
//! A change is compiled off the async workers; only a configuration the analyzer accepts
//! becomes a new [`Snapshot`]. A refused change is logged with its diagnostics, counted, shown
//! on `/debug/config`, and changes nothing: proxies keep what they have.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::debug;
use crate::metrics::ControlMetrics;
use crate::registry::{Registry, unix_seconds};
use crate::snapshot::Snapshot;
use crate::source::{Compiled, MeshSource, Refused};
use crate::xds::AdsService;

/// How the control plane runs.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// The xDS server (Istio's plaintext xDS port).
    pub xds_addr: SocketAddr,
    /// Metrics and debug pages (Istio's monitoring port).
    pub monitoring_addr: SocketAddr,
    /// Follow the source's paths.
    pub watch: bool,
    /// Quiet time after a change before compiling (editors write in bursts).
    pub debounce: Duration,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            xds_addr: SocketAddr::from(([127, 0, 0, 1], 15010)),
            monitoring_addr: SocketAddr::from(([127, 0, 0, 1], 15014)),
            watch: true,
            debounce: Duration::from_millis(100),
        }
    }
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The startup configuration was refused.
    #[error(transparent)]
    Config(#[from] Refused),
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot be watched.
    #[error("cannot watch the configuration: {0}")]
    Watch(#[from] trellis_config::watch::WatchError),
}

/// The configuration's history, for `/debug/config`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConfigStatus {
    /// Version being served.
    pub version: u64,
    /// When it was accepted (seconds since the Unix epoch).
    pub applied_at: f64,
    /// Resources read for it.
    pub resources: usize,
    /// Its warnings.
    pub warnings: Vec<String>,
    /// Changes accepted since start (the startup configuration included).
    pub accepted: u64,
    /// Changes refused since start.
    pub rejected: u64,
    /// The last refused change.
    pub last_rejection: Option<Rejection>,
}

/// A refused change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejection {
    /// When (seconds since the Unix epoch).
    pub at: f64,
    /// Every finding, errors first.
    pub diagnostics: Vec<String>,
}

/// What the monitoring pages read.
#[derive(Debug)]
pub struct ControlState {
    /// The snapshot being served.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// Connected proxies.
    pub registry: Arc<Registry>,
    /// Metrics.
    pub metrics: Arc<ControlMetrics>,
    /// Configuration history.
    pub config: RwLock<ConfigStatus>,
}

/// A running control plane.
pub struct ControlPlane {
    xds: SocketAddr,
    monitoring: SocketAddr,
    state: Arc<ControlState>,
    reload: Arc<Notify>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ControlPlane {
    /// Compiles the source, binds the listeners and starts serving; returns once bound.
    pub async fn start(
        source: Arc<dyn MeshSource>,
        settings: ControlSettings,
    ) -> Result<ControlPlane, ControlError> {
        let first = compile(&source).await?;
        for w in &first.warnings {
            tracing::warn!("{w}");
        }
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ControlError::Bind { addr, source })
        };
        let xds_listener = bind(settings.xds_addr).await?;
        let monitoring_listener = bind(settings.monitoring_addr).await?;
        let xds = xds_listener.local_addr().unwrap_or(settings.xds_addr);
        let monitoring = monitoring_listener
            .local_addr()
            .unwrap_or(settings.monitoring_addr);

        let metrics = Arc::new(ControlMetrics::new());
        metrics.reload(true, 1);
        let snapshot = Snapshot::new(1, first.mesh, first.resources, None);
        let (snap_tx, snap_rx) = watch::channel(Arc::new(snapshot));
        let registry = Arc::new(Registry::default());
        let state = Arc::new(ControlState {
            snapshots: snap_rx.clone(),
            registry: Arc::clone(&registry),
            metrics: Arc::clone(&metrics),
            config: RwLock::new(ConfigStatus {
                version: 1,
                applied_at: unix_seconds(SystemTime::now()),
                resources: first.resources,
                warnings: first.warnings,
                accepted: 1,
                rejected: 0,
                last_rejection: None,
            }),
        });
        let (stop, stopped) = watch::channel(false);
        let ads = AdsService::new(snap_rx, registry, metrics).into_server();
        let mut stop_rx = stopped.clone();
        let xds_task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let served = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .http2_keepalive_interval(Some(Duration::from_secs(20)))
                .add_service(ads)
                .serve_with_incoming_shutdown(TcpListenerStream::new(xds_listener), shutdown)
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "xDS server failed");
            }
        });
        let debug_task = tokio::spawn(debug::serve(monitoring_listener, Arc::clone(&state)));
        let reload = Arc::new(Notify::new());
        let events = if settings.watch {
            let (w, rx) =
                trellis_config::watch::watch(&source.paths(), Duration::from_millis(500))?;
            Some((w, rx))
        } else {
            None
        };
        let reloader = Reloader {
            source,
            state: Arc::clone(&state),
            snapshots: snap_tx,
            debounce: settings.debounce,
        };
        let reload_task = tokio::spawn(reloader.run(events, Arc::clone(&reload)));
        tracing::info!(%xds, %monitoring, "control plane serving");
        Ok(ControlPlane {
            xds,
            monitoring,
            state,
            reload,
            stop,
            tasks: vec![xds_task, debug_task, reload_task],
        })
    }

    /// The bound xDS address.
    pub fn xds_addr(&self) -> SocketAddr {
        self.xds
    }

    /// The bound monitoring address.
    pub fn monitoring_addr(&self) -> SocketAddr {
        self.monitoring
    }

    /// What the monitoring pages read.
    pub fn state(&self) -> &Arc<ControlState> {
        &self.state
    }

    /// Compiles the source again now (for sources whose inputs change outside their paths).
    pub fn reload(&self) {
        self.reload.notify_one();
    }

    /// Stops serving: streams close, proxies keep their configuration and reconnect.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn compile(source: &Arc<dyn MeshSource>) -> Result<Compiled, Refused> {
    let s = Arc::clone(source);
    match tokio::task::spawn_blocking(move || s.compile()).await {
        Ok(r) => r,
        Err(e) => Err(Refused {
            diagnostics: vec![format!("compiling the configuration failed: {e}")],
        }),
    }
}

struct Reloader {
    source: Arc<dyn MeshSource>,
    state: Arc<ControlState>,
    snapshots: watch::Sender<Arc<Snapshot>>,
    debounce: Duration,
}

impl Reloader {
    async fn run(
        self,
        events: Option<(trellis_config::watch::DirWatcher, mpsc::Receiver<()>)>,
        manual: Arc<Notify>,
    ) {
        let (_keep, mut rx) = match events {
            Some((w, rx)) => (Some(w), Some(rx)),
            None => (None, None),
        };
        loop {
            let file_event = async {
                match rx.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = file_event => {
                    if ev.is_none() {
                        rx = None;
                        continue;
                    }
                }
                () = manual.notified() => {}
            }
            tokio::time::sleep(self.debounce).await;
            if let Some(rx) = rx.as_mut() {
                while rx.try_recv().is_ok() {}
            }
            self.reload().await;
        }
    }

    async fn reload(&self) {
        match compile(&self.source).await {
            Ok(c) => {
                for w in &c.warnings {
                    tracing::warn!("{w}");
                }
                let previous = Arc::clone(&self.snapshots.borrow());
                let version = previous.version + 1;
                let snap = Snapshot::new(version, c.mesh, c.resources, Some(&previous));
                drop(previous);
                self.snapshots.send_replace(Arc::new(snap));
                self.state.metrics.reload(true, version);
                let mut cfg = self.state.config.write().unwrap_or_else(|e| e.into_inner());
                cfg.version = version;
                cfg.applied_at = unix_seconds(SystemTime::now());
                cfg.resources = c.resources;
                cfg.warnings = c.warnings;
                cfg.accepted += 1;
                tracing::info!(version, resources = c.resources, "configuration applied");
            }
            Err(refused) => {
                tracing::error!(
                    "configuration change refused; proxies keep the previous configuration"
                );
                for d in &refused.diagnostics {
                    tracing::error!("{d}");
                }
                let version = self.snapshots.borrow().version;
                self.state.metrics.reload(false, version);
                let mut cfg = self.state.config.write().unwrap_or_else(|e| e.into_inner());
                cfg.rejected += 1;
                cfg.last_rejection = Some(Rejection {
                    at: unix_seconds(SystemTime::now()),
                    diagnostics: refused.diagnostics,
                });
            }
        }
    }
}
