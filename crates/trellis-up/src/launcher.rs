//! `trellis up`: the control plane in this process, a gateway proxy per gateway selector, and
//! every LocalWorkload replica with its sidecar, followed live.
//!
//! Start: pick the mode, create the bridge (transparent), start the control plane on the
//! configuration, start what it asks for, wait until every proxy has its configuration and
//! every app answers. Run: each accepted configuration change is reconciled (replicas added,
//! removed or restarted when their spec changed; gateways likewise; hosts files rewritten).
//! Stop: apps, then sidecars, then gateways, then the control plane, then the network.

mod gateway;
mod instance;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trellis_config::load::LoadOptions;
use trellis_control::{ControlError, ControlPlane, ControlSettings, Refused};

use crate::net::{self, HostNetwork, NetConfig, NetError};
use crate::plan::{AddressBook, InstanceKey, Mode};
use crate::source::UpSource;
use crate::state::{self, NetState, ProcessState, UpState};

use gateway::Gateway;
use instance::Instance;

/// How `trellis up` runs.
#[derive(Clone)]
pub struct UpOptions {
    /// Configuration files and directories.
    pub paths: Vec<PathBuf>,
    /// Namespace of resources that name none.
    pub namespace: String,
    /// `None`: transparent when available (root, iptables), else explicit.
    pub mode: Option<Mode>,
    /// The control plane's xDS address (default: 127.0.0.1:15010; the bridge address in
    /// transparent mode, so namespaces reach it).
    pub xds_addr: Option<SocketAddr>,
    /// Its monitoring address.
    pub monitoring_addr: SocketAddr,
    /// Where gateway ports are bound.
    pub gateway_bind: IpAddr,
    /// State file and logs.
    pub state_dir: PathBuf,
    /// The `trellis` binary for sidecars, gateways and `command: trellis`.
    pub trellis_bin: PathBuf,
    /// Replica addresses in explicit mode.
    pub explicit_range: (Ipv4Addr, u8),
    /// Network of transparent mode.
    pub net: NetConfig,
    /// Virtual IPs of services in transparent mode.
    pub vip_range: (Ipv4Addr, u8),
    /// Follow configuration changes.
    pub follow: bool,
    /// How long starting may take.
    pub ready_timeout: Duration,
    /// `--metrics-names` of every sidecar and gateway (`istio`, `linkerd` or `both`); `None`
    /// leaves the proxies' default, which `TRELLIS_METRICS_NAMES` (inherited) can set.
    pub metrics_names: Option<String>,
    /// Receives progress lines.
    pub progress: Arc<dyn Fn(&str) + Send + Sync>,
}

impl UpOptions {
    /// Defaults for `paths`, with `trellis_bin` running the proxies.
    pub fn new(paths: Vec<PathBuf>, trellis_bin: PathBuf) -> UpOptions {
        UpOptions {
            paths,
            namespace: "default".into(),
            mode: None,
            xds_addr: None,
            monitoring_addr: SocketAddr::from(([127, 0, 0, 1], 15014)),
            gateway_bind: IpAddr::from([127, 0, 0, 1]),
            state_dir: state::default_dir(),
            trellis_bin,
            explicit_range: (Ipv4Addr::new(127, 77, 0, 0), 16),
            net: NetConfig::default(),
            vip_range: (Ipv4Addr::new(10, 96, 0, 0), 16),
            follow: true,
            ready_timeout: Duration::from_secs(60),
            metrics_names: None,
            progress: Arc::new(|line| eprintln!("trellis up: {line}")),
        }
    }
}

/// Why `trellis up` could not start.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The configuration has errors.
    #[error("configuration refused")]
    Config(Refused),
    /// Transparent mode was asked for and cannot run here.
    #[error("transparent mode is not available here: {0}")]
    Transparent(String),
    /// The control plane could not start.
    #[error(transparent)]
    Control(ControlError),
    /// The network could not be set up.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A process could not be prepared.
    #[error("cannot start {0}: {1}")]
    Start(String, String),
    /// Something did not become ready in time.
    #[error("not ready after {timeout:?}: {pending}")]
    NotReady {
        /// The limit.
        timeout: Duration,
        /// What was still waiting, with where its log is.
        pending: String,
    },
    /// Another run is active.
    #[error("trellis up is already running (pid {0}); stop it with `trellis down`")]
    AlreadyRunning(u32),
    /// The state directory cannot be written.
    #[error("cannot write the state directory {0}: {1}")]
    State(PathBuf, std::io::Error),
}

/// What every process start needs.
pub(crate) struct StartCtx {
    pub mode: Mode,
    pub xds: SocketAddr,
    pub trellis_bin: PathBuf,
    pub logs: PathBuf,
    /// Flags every `trellis proxy` (sidecar or gateway) gets from the options.
    pub proxy_flags: Vec<OsString>,
}

/// A running local mesh.
pub struct Up {
    opts: UpOptions,
    ctx: StartCtx,
    cp: Option<ControlPlane>,
    source: Arc<UpSource>,
    net: Option<HostNetwork>,
    instances: BTreeMap<InstanceKey, Instance>,
    gateways: BTreeMap<String, Gateway>,
}

impl Up {
    /// Starts everything and returns once it is ready (or fails, having stopped what it
    /// started).
    pub async fn start(opts: UpOptions) -> Result<Up, UpError> {
        if let Some(prev) = state::read(&opts.state_dir)
            && prev.pid != std::process::id()
            && crate::process::alive(prev.pid)
        {
            return Err(UpError::AlreadyRunning(prev.pid));
        }
        let say = Arc::clone(&opts.progress);
        let mode = match opts.mode {
            Some(Mode::Transparent) => {
                net::available(&opts.net).map_err(UpError::Transparent)?;
                Mode::Transparent
            }
            Some(Mode::Explicit) => Mode::Explicit,
            None => match net::available(&opts.net) {
                Ok(()) => Mode::Transparent,
                Err(why) => {
                    say(&format!(
                        "transparent mode unavailable ({why}); using explicit mode"
                    ));
                    Mode::Explicit
                }
            },
        };
        say(mode.describe());
        let logs = opts.state_dir.join("logs");
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).map_err(|e| UpError::State(logs.clone(), e))?;
        let net = match mode {
            Mode::Transparent => {
                say(&format!(
                    "creating bridge {} ({}/{})",
                    opts.net.bridge, opts.net.host_ip, opts.net.prefix_len
                ));
                Some(HostNetwork::create(opts.net.clone())?)
            }
            Mode::Explicit => None,
        };
        let (book, vips) = match mode {
            Mode::Explicit => (
                AddressBook::new(opts.explicit_range.0, opts.explicit_range.1, &[]),
                None,
            ),
            Mode::Transparent => (
                AddressBook::new(opts.net.subnet, opts.net.prefix_len, &[opts.net.host_ip]),
                Some(opts.vip_range),
            ),
        };
        let source = Arc::new(UpSource::new(
            opts.paths.clone(),
            LoadOptions {
                default_namespace: opts.namespace.clone(),
            },
            book,
            vips,
        ));
        let xds = opts.xds_addr.unwrap_or(match mode {
            Mode::Explicit => SocketAddr::from(([127, 0, 0, 1], 15010)),
            Mode::Transparent => SocketAddr::new(IpAddr::V4(opts.net.host_ip), 15010),
        });
        say(&format!(
            "starting the control plane (xds {xds}, monitoring {})",
            opts.monitoring_addr
        ));
        let settings = ControlSettings {
            xds_addr: xds,
            monitoring_addr: opts.monitoring_addr,
            watch: opts.follow,
            ..ControlSettings::default()
        };
        let cp = match ControlPlane::start(source.clone(), settings).await {
            Ok(cp) => cp,
            Err(e) => {
                if let Some(mut n) = net {
                    n.teardown();
                }
                return Err(match e {
                    ControlError::Config(r) => UpError::Config(r),
                    other => UpError::Control(other),
                });
            }
        };
        let trellis_bin = match mode {
            Mode::Transparent => proxy_binary(&opts.trellis_bin, &opts.state_dir),
            Mode::Explicit => opts.trellis_bin.clone(),
        };
        let ctx = StartCtx {
            mode,
            xds: cp.xds_addr(),
            trellis_bin,
            logs,
            proxy_flags: proxy_flags(&opts),
        };
        let mut up = Up {
            opts,
            ctx,
            cp: Some(cp),
            source,
            net,
            instances: BTreeMap::new(),
            gateways: BTreeMap::new(),
        };
        up.save(false, String::new());
        let started = async {
            up.reconcile(true).await?;
            up.wait_ready().await
        };
        if let Err(e) = started.await {
            up.stop().await;
            return Err(e);
        }
        let table = crate::table::render(&up);
        up.save(true, table);
        Ok(up)
    }

    /// Follows configuration changes until `shutdown` resolves.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) {
        let Some(mut snaps) = self.cp.as_ref().map(|cp| cp.state().snapshots.clone()) else {
            return;
        };
        snaps.borrow_and_update();
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                changed = snaps.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    snaps.borrow_and_update();
                    if let Err(e) = self.reconcile(false).await {
                        (self.opts.progress)(&format!("{e}"));
                    }
                    let table = crate::table::render(self);
                    self.save(true, table);
                }
                _ = tick.tick() => {
                    let table = crate::table::render(self);
                    self.save(true, table);
                }
                () = &mut shutdown => return,
            }
        }
    }

    /// Stops everything and removes what was created.
    pub async fn stop(mut self) {
        let say = Arc::clone(&self.opts.progress);
        say("stopping");
        let instances = std::mem::take(&mut self.instances);
        for (_, inst) in instances {
            inst.stop(self.net.as_mut()).await;
        }
        for (_, gw) in std::mem::take(&mut self.gateways) {
            gw.stop().await;
        }
        if let Some(cp) = self.cp.take() {
            cp.shutdown().await;
        }
        if let Some(mut n) = self.net.take() {
            for e in n.teardown() {
                say(&format!("cleanup: {e}"));
            }
        }
        state::remove(&self.opts.state_dir);
        say("stopped; nothing left running");
    }

    /// Starts, stops and restarts what the latest configuration asks for. At startup an
    /// error stops everything; later one failing replica is reported and the rest go on.
    async fn reconcile(&mut self, strict: bool) -> Result<(), UpError> {
        let desired = self.source.desired();
        let say = Arc::clone(&self.opts.progress);
        let wanted: BTreeMap<InstanceKey, _> = desired
            .instances
            .iter()
            .map(|(s, a)| (s.key(), (s, *a)))
            .collect();
        let current: Vec<InstanceKey> = self.instances.keys().cloned().collect();
        for key in current {
            let keep = match (wanted.get(&key), self.instances.get(&key)) {
                (Some((spec, addr)), Some(inst)) => inst.spec == **spec && inst.address == *addr,
                _ => false,
            };
            if !keep && let Some(inst) = self.instances.remove(&key) {
                say(&format!(
                    "stopping {}.{}",
                    inst.spec.name(),
                    inst.spec.namespace
                ));
                inst.stop(self.net.as_mut()).await;
            }
        }
        let no_hosts = Vec::new();
        for (key, (spec, addr)) in &wanted {
            let hosts = desired.hosts.get(&spec.namespace).unwrap_or(&no_hosts);
            if let Some(inst) = self.instances.get(key) {
                if let Some(ns) = &inst.namespace
                    && let Err(e) = net::write_hosts(ns, hosts)
                {
                    say(&format!(
                        "{}: cannot update its hosts file: {e}",
                        spec.name()
                    ));
                }
                continue;
            }
            say(&format!(
                "starting {}.{} at {addr}",
                spec.name(),
                spec.namespace
            ));
            match Instance::start(&self.ctx, spec, *addr, self.net.as_mut(), hosts) {
                Ok(inst) => {
                    self.instances.insert(key.clone(), inst);
                }
                Err(e) if strict => return Err(e),
                Err(e) => say(&format!("{e}")),
            }
        }
        let wanted_gw: BTreeMap<String, _> = desired
            .gateways
            .iter()
            .map(|g| (format!("{}/{}", g.namespace, g.name), g))
            .collect();
        let current: Vec<String> = self.gateways.keys().cloned().collect();
        for key in current {
            let keep = matches!((wanted_gw.get(&key), self.gateways.get(&key)), (Some(w), Some(g)) if g.spec == **w);
            if !keep && let Some(gw) = self.gateways.remove(&key) {
                say(&format!("stopping gateway {key}"));
                gw.stop().await;
            }
        }
        for (key, spec) in wanted_gw {
            if self.gateways.contains_key(&key) {
                continue;
            }
            say(&format!(
                "starting gateway {key} on {}",
                ports(self.opts.gateway_bind, &spec.ports)
            ));
            // A port already taken would only show as a gateway that never becomes ready:
            // say which one, at once.
            let bind = self.opts.gateway_bind;
            if let Some(busy) = spec
                .ports
                .iter()
                .map(|p| SocketAddr::new(bind, *p))
                .find(|a| std::net::TcpListener::bind(a).is_err())
            {
                let e = UpError::Start(
                    format!("gateway {key}"),
                    format!(
                        "{busy} is already in use (another trellis up, or another server); change the Gateway's port or use --gateway-bind"
                    ),
                );
                if strict {
                    return Err(e);
                }
                say(&format!("{e}"));
                continue;
            }
            match Gateway::start(&self.ctx, spec, self.opts.gateway_bind) {
                Ok(gw) => {
                    self.gateways.insert(key, gw);
                }
                Err(e) if strict => return Err(e),
                Err(e) => say(&format!("{e}")),
            }
        }
        Ok(())
    }

    /// Waits until every gateway and replica is ready, saying what is still pending.
    async fn wait_ready(&self) -> Result<(), UpError> {
        let start = Instant::now();
        let mut last_report = Instant::now();
        loop {
            let mut pending = Vec::new();
            for gw in self.gateways.values() {
                if !gw.ready().await {
                    pending.push(format!(
                        "gateway {} (log {})",
                        gw.spec.name,
                        gw.proc.log().display()
                    ));
                }
            }
            for inst in self.instances.values() {
                if !inst.ready().await {
                    pending.push(format!(
                        "{}.{} (logs {}, {})",
                        inst.spec.name(),
                        inst.spec.namespace,
                        inst.sidecar.log().display(),
                        inst.app.log().display()
                    ));
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if start.elapsed() > self.opts.ready_timeout {
                return Err(UpError::NotReady {
                    timeout: self.opts.ready_timeout,
                    pending: pending.join("; "),
                });
            }
            if last_report.elapsed() > Duration::from_secs(3) {
                (self.opts.progress)(&format!("waiting for {}", pending.join(", ")));
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn save(&self, ready: bool, table: String) {
        let mut processes = Vec::new();
        let record = |p: &crate::process::Supervised| {
            let pid = p.pid().unwrap_or(0);
            ProcessState {
                name: p.name().to_owned(),
                pid,
                log: p.log().to_path_buf(),
                cmdline: state::cmdline(pid).unwrap_or_default(),
            }
        };
        for inst in self.instances.values() {
            processes.push(record(&inst.app));
            processes.push(record(&inst.sidecar));
        }
        for gw in self.gateways.values() {
            processes.push(record(&gw.proc));
        }
        let s = UpState {
            pid: std::process::id(),
            mode: Some(self.ctx.mode),
            ready,
            config: self.opts.paths.clone(),
            xds: Some(self.ctx.xds),
            monitoring: self.cp.as_ref().map(ControlPlane::monitoring_addr),
            net: self.net.as_ref().map(|n| NetState {
                prefix: n.config().prefix.clone(),
                bridge: n.config().bridge.clone(),
            }),
            processes,
            table,
        };
        if let Err(e) = state::write(&self.opts.state_dir, &s) {
            tracing::warn!(error = %e, "cannot write the state file");
        }
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.ctx.mode
    }

    pub(crate) fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    pub(crate) fn gateways(&self) -> impl Iterator<Item = &Gateway> {
        self.gateways.values()
    }

    /// The control plane's addresses (xDS, monitoring).
    pub fn control_plane(&self) -> (SocketAddr, Option<SocketAddr>) {
        (
            self.ctx.xds,
            self.cp.as_ref().map(ControlPlane::monitoring_addr),
        )
    }

    /// Where the logs are.
    pub fn logs(&self) -> &std::path::Path {
        &self.ctx.logs
    }
}

/// What the options ask of every proxy, as `trellis proxy` flags.
fn proxy_flags(opts: &UpOptions) -> Vec<OsString> {
    match &opts.metrics_names {
        Some(names) => vec!["--metrics-names".into(), names.into()],
        None => Vec::new(),
    }
}

fn ports(bind: IpAddr, ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| SocketAddr::new(bind, *p).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The binary sidecars run from in transparent mode. They run as uid 1337, which cannot
/// execute a binary under a private directory (a checkout in /root): such a binary is copied
/// into the state directory, which is world-readable.
fn proxy_binary(bin: &std::path::Path, state_dir: &std::path::Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let others_may = |p: &std::path::Path, bit: u32| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bit != 0)
    };
    let reachable = bin
        .ancestors()
        .skip(1)
        .all(|d| d.as_os_str().is_empty() || others_may(d, 0o001))
        && others_may(bin, 0o001);
    if reachable {
        return bin.to_path_buf();
    }
    let copy = state_dir.join("bin").join("trellis");
    let copied = std::fs::create_dir_all(state_dir.join("bin"))
        .and_then(|()| std::fs::copy(bin, &copy))
        .and_then(|_| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)));
    match copied {
        Ok(()) => copy,
        Err(e) => {
            tracing::warn!(error = %e, "cannot copy the trellis binary where sidecars (uid 1337) can run it");
            bin.to_path_buf()
        }
    }
}

/// `program args…` under `setpriv --pdeathsig TERM` when setpriv exists, so a child never
/// outlives a `trellis up` that was killed; the plain command otherwise.
pub(crate) fn pdeathsig_wrap(program: &OsStr, args: &[OsString]) -> std::process::Command {
    if have_setpriv() {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--pdeathsig", "TERM", "--"])
            .arg(program)
            .args(args);
        cmd
    } else {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args);
        cmd
    }
}

fn have_setpriv() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("setpriv").is_file()))
    })
}
