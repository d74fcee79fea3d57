//! `trellis proxy`: one proxy process — the outbound listener (and, for sidecars, the
//! inbound one; for gateways, the gateway ports), the admin endpoint, live configuration
//! and graceful drain.
//!
//! The mesh reaches the listeners as an `Arc<Runtime>` through a `watch` channel, so
//! where the mesh comes from — a directory ([`config_dir`]) or the control plane over
//! xDS ([`xds_source`]) — does not matter to the request path. Only a configuration the
//! runtime can prepare replaces the serving one: an invalid directory edit is logged with
//! the analyzer's diagnostics, an xDS update the proxy cannot use is NACKed; both are
//! counted in `trellis_config_reloads_total{result="rejected"}` and change nothing.

mod admin;
mod config_dir;
mod heap;
mod store;
mod xds_source;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use trellis_config::load::LoadOptions;

use crate::detect::DetectOptions;
use crate::http::{HttpProxy, ServeOptions};
use crate::listener::{
    Connections, GatewayListeners, InboundListener, ListenerContext, OutboundListener, VipListeners,
};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::telemetry::Telemetry;
use crate::telemetry::access_log::{AccessLogConfig, AccessLogError};
use crate::telemetry::metrics::{MetricsConfig, ProxyMetrics};
use crate::telemetry::peers::SourceIdentity;

pub use admin::AdminState;
use admin::Pages;
pub use config_dir::{LoadError, Loaded, load};
pub use store::{Active, ConfigStore, Rejection, StoreView};
pub use xds_source::XdsSettings;

/// Everything `trellis proxy` is told on its command line.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Configuration files or directories (read recursively).
    pub config_paths: Vec<PathBuf>,
    /// The outbound listener (apps use it as `HTTP_PROXY`).
    pub outbound_addr: SocketAddr,
    /// The admin endpoint.
    pub admin_addr: SocketAddr,
    /// The health endpoint for probes (`/healthz/ready` only); `None` disables it.
    pub health_addr: Option<SocketAddr>,
    /// How resources without a namespace are read.
    pub load: LoadOptions,
    /// How the runtime resolves short host names.
    pub runtime: RuntimeOptions,
    /// Listener and upstream settings (its `telemetry` is replaced by one built from the
    /// fields below).
    pub serve: ServeOptions,
    /// Who this proxy reports as (`source_*` metric labels).
    pub source: SourceIdentity,
    /// Access log format and destination.
    pub access_log: AccessLogConfig,
    /// Metric registry settings.
    pub metrics: MetricsConfig,
    /// Bind the loopback VIPs of services (`addresses: [127.x.y.z]`) so clients can dial
    /// them without iptables.
    pub vip_listeners: bool,
    /// On SIGTERM, how long in-flight requests may take before the process exits.
    pub drain_timeout: Duration,
    /// Whether to follow changes of `config_paths`.
    pub watch: bool,
    /// Quiet time after a change before it is loaded (editors write in bursts).
    pub reload_debounce: Duration,
    /// Take the configuration from a control plane instead of `config_paths`.
    pub xds: Option<XdsSettings>,
    /// The inbound listener of a sidecar.
    pub inbound: Option<InboundSettings>,
    /// For a gateway proxy, the address its gateway ports are bound on (the gateways
    /// served are those selecting `runtime.gateway_labels`).
    pub gateway_bind: Option<IpAddr>,
}

/// Where a sidecar accepts connections for its workload, and where it forwards them.
#[derive(Debug, Clone, Copy)]
pub struct InboundSettings {
    /// The inbound listener (Istio's 15006 with capture).
    pub addr: SocketAddr,
    /// The application, for connections that were not captured (explicit mode); captured
    /// ones go to their original destination.
    pub app: Option<SocketAddr>,
}

impl ProxySettings {
    /// Defaults of the command line: outbound 127.0.0.1:15001, admin 127.0.0.1:15000,
    /// health 127.0.0.1:15021, drain 5 s (Istio's `terminationDrainDuration`), watch on, debounce 100 ms.
    pub fn new(config_paths: Vec<PathBuf>) -> ProxySettings {
        ProxySettings {
            config_paths,
            outbound_addr: SocketAddr::from(([127, 0, 0, 1], 15001)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 15000)),
            health_addr: Some(SocketAddr::from(([127, 0, 0, 1], 15021))),
            load: LoadOptions::default(),
            runtime: RuntimeOptions::default(),
            serve: ServeOptions::default(),
            source: SourceIdentity::default(),
            access_log: AccessLogConfig::default(),
            metrics: MetricsConfig::default(),
            vip_listeners: true,
            drain_timeout: Duration::from_secs(5),
            watch: true,
            reload_debounce: Duration::from_millis(100),
            xds: None,
            inbound: None,
            gateway_bind: None,
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The startup configuration was refused.
    #[error("configuration refused")]
    Config(#[source] LoadError),
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration paths cannot be watched.
    #[error("cannot watch the configuration: {0}")]
    Watch(#[from] trellis_config::watch::WatchError),
    /// The access log cannot be opened.
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
}

/// How to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stop accepting, answer `/ready` with 503, let in-flight requests finish up to the
    /// drain timeout, then exit (SIGTERM).
    Drain,
    /// Exit at once (`/quitquitquit`).
    Now,
}

/// A running proxy.
pub struct ProxyServer {
    outbound: SocketAddr,
    admin: SocketAddr,
    health: Option<SocketAddr>,
    inbound: Option<SocketAddr>,
    stop: watch::Sender<Option<Stop>>,
    done: JoinHandle<()>,
    finished: watch::Receiver<bool>,
    state: Arc<AdminState>,
}

impl ProxyServer {
    /// Loads the configuration, binds the listeners and starts serving. Returns once
    /// everything is bound, so the addresses can be used at once.
    pub async fn start(settings: ProxySettings) -> Result<ProxyServer, ServerError> {
        // From a directory the startup configuration must load (a proxy that cannot read
        // its own files should say so at once); from a control plane it arrives later, and
        // `/ready` says 503 until it has.
        let (loaded, configured) = match &settings.xds {
            None => {
                let s = settings.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    let loaded = load(&s.config_paths, &s.load, &s.runtime);
                    heap::release_free_pages();
                    loaded
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                .map_err(ServerError::Config)?;
                (loaded, true)
            }
            Some(_) => (Loaded::empty(), false),
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })
        };
        let outbound = bind(settings.outbound_addr).await?;
        let admin = bind(settings.admin_addr).await?;
        let health = match settings.health_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let inbound = match settings.inbound {
            Some(i) => Some((bind(i.addr).await?, i.app)),
            None => None,
        };
        let outbound_addr = local_addr(&outbound, settings.outbound_addr);
        let admin_addr = local_addr(&admin, settings.admin_addr);
        let health_addr = health
            .as_ref()
            .zip(settings.health_addr)
            .map(|(l, asked)| local_addr(l, asked));
        let inbound_addr = inbound
            .as_ref()
            .zip(settings.inbound)
            .map(|((l, _), asked)| local_addr(l, asked.addr));

        let metrics = Arc::new(ProxyMetrics::new(settings.metrics));
        let telemetry = Telemetry::new(
            Arc::clone(&metrics),
            settings.source.clone(),
            &settings.access_log,
        )?;
        let mut serve = settings.serve.clone();
        serve.telemetry = Arc::new(telemetry);
        let store = Arc::new(ConfigStore::new(Arc::new(loaded.mesh), loaded.resources));
        let (runtime_tx, runtime_rx) = watch::channel(Arc::new(loaded.runtime));
        let xds_status = settings
            .xds
            .as_ref()
            .map(|_| watch::Sender::new(trellis_xds::client::ClientStatus::default()));
        let state = Arc::new(AdminState {
            store: Arc::clone(&store),
            runtime: runtime_rx.clone(),
            metrics: Arc::clone(&metrics),
            draining: AtomicBool::new(false),
            configured: AtomicBool::new(configured),
            xds: xds_status.as_ref().map(watch::Sender::subscribe),
            quit: Notify::new(),
        });
        let watcher = if settings.watch && settings.xds.is_none() {
            Some(trellis_config::watch::watch(
                &settings.config_paths,
                Duration::from_millis(500),
            )?)
        } else {
            None
        };
        let (stop_tx, stop_rx) = watch::channel(None);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let http = HttpProxy::new(runtime_rx.clone(), &serve);
        let ctx = Arc::new(ListenerContext {
            runtime: runtime_rx,
            http: Arc::clone(&http),
            detect: DetectOptions::default(),
            connections: Connections::new(),
            shutdown: shutdown_rx,
        });
        let mut listeners = vec![tokio::spawn(log_exit(
            "outbound",
            OutboundListener::new(outbound, Arc::clone(&ctx)).run(),
        ))];
        if let Some((listener, app)) = inbound {
            listeners.push(tokio::spawn(log_exit(
                "inbound",
                InboundListener::new(listener, app, Arc::clone(&ctx)).run(),
            )));
        }
        if settings.vip_listeners {
            listeners.push(tokio::spawn(VipListeners::new(Arc::clone(&ctx)).run()));
        }
        if let Some(ip) = settings.gateway_bind {
            listeners.push(tokio::spawn(
                GatewayListeners::new(Arc::clone(&ctx), ip).run(),
            ));
        }
        let admin_task = tokio::spawn(admin::serve(admin, Arc::clone(&state), Pages::Admin));
        let health_task =
            health.map(|l| tokio::spawn(admin::serve(l, Arc::clone(&state), Pages::Health)));
        let config_task = match (&settings.xds, xds_status, watcher) {
            (Some(xds), Some(status), _) => Some(tokio::spawn(xds_source::follow(
                xds.clone(),
                settings.runtime.clone(),
                Arc::clone(&state),
                runtime_tx,
                status,
            ))),
            (None, _, Some((w, events))) => {
                let reloader = Reloader {
                    settings: settings.clone(),
                    store,
                    runtime: runtime_tx,
                    metrics,
                };
                Some(tokio::spawn(async move {
                    let _keep = w;
                    reloader.run(events).await;
                }))
            }
            _ => None,
        };
        tracing::info!(outbound = %outbound_addr, admin = %admin_addr, "proxy serving");
        let (finished_tx, finished) = watch::channel(false);
        let done = tokio::spawn(supervise(Supervisor {
            finished: finished_tx,
            stop: stop_rx,
            state: Arc::clone(&state),
            shutdown: shutdown_tx,
            http,
            connections: ctx.connections.clone(),
            drain_timeout: settings.drain_timeout,
            listeners,
            others: [Some(admin_task), health_task, config_task]
                .into_iter()
                .flatten()
                .collect(),
        }));
        Ok(ProxyServer {
            outbound: outbound_addr,
            admin: admin_addr,
            health: health_addr,
            inbound: inbound_addr,
            stop: stop_tx,
            done,
            finished,
            state,
        })
    }

    /// The bound outbound address (useful with port 0).
    pub fn outbound_addr(&self) -> SocketAddr {
        self.outbound
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The bound health address, when enabled.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health
    }

    /// The bound inbound address, for sidecars.
    pub fn inbound_addr(&self) -> Option<SocketAddr> {
        self.inbound
    }

    /// The configuration store (what `/config_dump` shows).
    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.state.store
    }

    /// Asks the proxy to stop; `wait` returns when it has.
    pub fn stop(&self, how: Stop) {
        self.stop.send_replace(Some(how));
    }

    /// Waits until the proxy stopped (by [`ProxyServer::stop`] or `/quitquitquit`).
    pub async fn wait(self) {
        let _ = self.done.await;
    }

    /// Resolves once the proxy has stopped, without consuming the handle.
    pub async fn stopped(&self) {
        let mut rx = self.finished.clone();
        let _ = rx.wait_for(|done| *done).await;
    }
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(asked)
}

/// Logs how a listener ended (only a broken listener socket ends it before shutdown).
async fn log_exit(name: &'static str, run: impl std::future::Future<Output = std::io::Result<()>>) {
    if let Err(e) = run.await {
        tracing::error!(listener = name, error = %e, "listener failed");
    }
}

struct Supervisor {
    finished: watch::Sender<bool>,
    stop: watch::Receiver<Option<Stop>>,
    state: Arc<AdminState>,
    /// Tells every listener to stop accepting.
    shutdown: watch::Sender<bool>,
    /// Told to close connections after their current request.
    http: Arc<HttpProxy>,
    connections: Connections,
    drain_timeout: Duration,
    listeners: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// Waits for a stop request (API or `/quitquitquit`), then drains or stops at once.
async fn supervise(mut s: Supervisor) {
    let how = tokio::select! {
        how = wait_for_stop(&mut s.stop) => how,
        () = s.state.quit.notified() => Stop::Now,
    };
    s.state.draining.store(true, Ordering::Relaxed);
    // Stop accepting: listener sockets close, new connections are refused.
    s.shutdown.send_replace(true);
    if how == Stop::Drain {
        s.http.drain();
        tracing::info!(
            open = s.connections.open(),
            timeout = ?s.drain_timeout,
            "draining"
        );
        if !s.connections.wait_idle(s.drain_timeout).await {
            tracing::warn!(
                open = s.connections.open(),
                "drain timeout reached with connections still open"
            );
        }
    }
    for t in &s.listeners {
        t.abort();
    }
    for t in &s.others {
        t.abort();
    }
    tracing::info!("proxy stopped");
    s.finished.send_replace(true);
}

async fn wait_for_stop(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(how) = *rx.borrow_and_update() {
            return how;
        }
        if rx.changed().await.is_err() {
            // The handle is gone: nobody can ask for a drain any more; run until quit.
            std::future::pending::<()>().await;
        }
    }
}

/// Applies configuration changes as they are saved.
struct Reloader {
    settings: ProxySettings,
    store: Arc<ConfigStore>,
    runtime: watch::Sender<Arc<Runtime>>,
    metrics: Arc<ProxyMetrics>,
}

impl Reloader {
    async fn run(self, mut events: tokio::sync::mpsc::Receiver<()>) {
        while events.recv().await.is_some() {
            // Let the burst settle (editors write, rename and chmod in quick succession).
            tokio::time::sleep(self.settings.reload_debounce).await;
            while events.try_recv().is_ok() {}
            self.reload().await;
        }
    }

    async fn reload(&self) {
        let s = self.settings.clone();
        let result = tokio::task::spawn_blocking(move || {
            let loaded = load(&s.config_paths, &s.load, &s.runtime);
            heap::release_free_pages();
            loaded
        })
        .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "configuration reload task failed");
                return;
            }
        };
        match result {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                }
                self.runtime.send_replace(Arc::new(loaded.runtime));
                let version = self.store.accept(Arc::new(loaded.mesh), loaded.resources);
                self.metrics.record_config_reload(true);
                tracing::info!(
                    version,
                    resources = loaded.resources,
                    "configuration applied"
                );
            }
            Err(e) => {
                let lines = e.lines();
                tracing::error!(
                    error = %e,
                    "configuration change refused; the previous configuration keeps serving"
                );
                for l in &lines {
                    tracing::error!("{l}");
                }
                self.store.reject(lines);
                self.metrics.record_config_reload(false);
            }
        }
    }
}
