//! One replica: its application and its sidecar, in either mode.
//!
//! - Explicit: the replica owns a loopback address (127.77.x.y). Its sidecar listens there on
//!   Istio's ports (outbound 15001, admin 15000, health 15021) and on the workload's port
//!   (inbound, forwarding to the app); the app listens on a private port given in `PORT` and
//!   sends its outbound HTTP through `HTTP_PROXY`.
//! - Transparent: the replica owns a network namespace with its own address; the app runs
//!   unmodified on its port, the sidecar runs as uid 1337 with capture rules sending inbound
//!   traffic to 15006 and outbound traffic to 15001.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::net::{self, Capture, HostNetwork, Namespace};
use crate::plan::{InstanceSpec, Mode};
use crate::probe;
use crate::process::Supervised;

use super::{StartCtx, UpError, pdeathsig_wrap};

/// The uid/gid sidecars run as in transparent mode; capture never applies to its traffic.
pub(crate) const PROXY_UID: u32 = 1337;

/// A running replica.
pub(crate) struct Instance {
    pub spec: InstanceSpec,
    pub address: Ipv4Addr,
    pub namespace: Option<Namespace>,
    pub app: Supervised,
    pub sidecar: Supervised,
    /// The sidecar's admin endpoint.
    pub admin: SocketAddr,
    /// Where the app is checked: TCP on its private port (explicit) or an HTTP answer through
    /// the sidecar (transparent).
    probe: SocketAddr,
}

impl Instance {
    pub(crate) fn start(
        ctx: &StartCtx,
        spec: &InstanceSpec,
        address: Ipv4Addr,
        net: Option<&mut HostNetwork>,
        hosts: &[(IpAddr, Vec<String>)],
    ) -> Result<Instance, UpError> {
        match (ctx.mode, net) {
            (Mode::Transparent, Some(net)) => transparent(ctx, spec, address, net, hosts),
            _ => explicit(ctx, spec, address),
        }
    }

    /// Whether the sidecar has its configuration and the app answers.
    pub(crate) async fn ready(&self) -> bool {
        if probe::http_status(self.admin, "/ready").await != Some(200) {
            return false;
        }
        match self.namespace {
            None => probe::accepts(self.probe).await,
            // Through capture: any HTTP answer means the sidecar reached the app.
            Some(_) => probe::http_status(self.probe, "/healthz").await.is_some(),
        }
    }

    /// Stops the app, then its sidecar (so the app's last calls still go through the mesh),
    /// then removes its namespace.
    pub(crate) async fn stop(self, net: Option<&mut HostNetwork>) {
        self.app.stop().await;
        self.sidecar.stop().await;
        if let (Some(ns), Some(net)) = (&self.namespace, net)
            && let Err(e) = net.remove_namespace(ns)
        {
            tracing::warn!(instance = %self.spec.name(), error = %e, "cannot remove the network namespace");
        }
    }
}

fn log_path(logs: &Path, spec: &InstanceSpec, what: &str) -> PathBuf {
    logs.join(format!("{}.{}.{what}.log", spec.namespace, spec.name()))
}

/// `trellis proxy` flags for `spec`'s sidecar, identity first.
fn sidecar_args(ctx: &StartCtx, spec: &InstanceSpec, address: Ipv4Addr) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "proxy".into(),
        "--xds".into(),
        ctx.xds.to_string().into(),
        "--namespace".into(),
        spec.namespace.clone().into(),
        "--workload".into(),
        spec.name().into(),
        "--service-account".into(),
        spec.service_account.clone().into(),
        "--instance-ip".into(),
        address.to_string().into(),
        "--concurrency".into(),
        "1".into(),
    ];
    for (k, v) in &spec.labels {
        a.push("--label".into());
        a.push(format!("{k}={v}").into());
    }
    a.extend(ctx.proxy_flags.iter().cloned());
    a
}

/// What every app gets besides its own `env`, as the downward API gives a pod.
fn base_env(spec: &InstanceSpec, address: Ipv4Addr, port: u16) -> Vec<(String, String)> {
    vec![
        ("PORT".into(), port.to_string()),
        ("POD_NAME".into(), spec.name()),
        ("POD_NAMESPACE".into(), spec.namespace.clone()),
        ("POD_IP".into(), address.to_string()),
        ("SERVICE_ACCOUNT".into(), spec.service_account.clone()),
        ("TRELLIS_DEMO_POD".into(), spec.name()),
    ]
}

fn explicit(ctx: &StartCtx, spec: &InstanceSpec, address: Ipv4Addr) -> Result<Instance, UpError> {
    let app_port = probe::free_port().map_err(|e| UpError::Start(spec.name(), e.to_string()))?;
    let at = |port: u16| SocketAddr::new(IpAddr::V4(address), port);
    let mut args = sidecar_args(ctx, spec, address);
    for (flag, value) in [
        ("--outbound-addr", at(15001).to_string()),
        ("--inbound-addr", at(spec.port).to_string()),
        ("--inbound-app", format!("127.0.0.1:{app_port}")),
        ("--admin-addr", at(15000).to_string()),
        ("--health-addr", at(15021).to_string()),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    let bin = ctx.trellis_bin.clone();
    let sidecar = Supervised::start(
        format!("{} sidecar", spec.name()),
        Arc::new(move || pdeathsig_wrap(bin.as_os_str(), &args)),
        log_path(&ctx.logs, spec, "sidecar"),
    );
    let proxy = at(15001).to_string();
    let mut env = base_env(spec, address, app_port);
    env.extend([
        ("HTTP_PROXY".into(), format!("http://{proxy}")),
        ("http_proxy".into(), format!("http://{proxy}")),
        ("TRELLIS_OUTBOUND".into(), proxy),
        ("NO_PROXY".into(), "localhost,127.0.0.1".into()),
        ("no_proxy".into(), "localhost,127.0.0.1".into()),
    ]);
    let app = start_app(ctx, spec, env, None);
    Ok(Instance {
        spec: spec.clone(),
        address,
        namespace: None,
        app,
        sidecar,
        admin: at(15000),
        probe: SocketAddr::from(([127, 0, 0, 1], app_port)),
    })
}

fn transparent(
    ctx: &StartCtx,
    spec: &InstanceSpec,
    address: Ipv4Addr,
    net: &mut HostNetwork,
    hosts: &[(IpAddr, Vec<String>)],
) -> Result<Instance, UpError> {
    let ns = net.add_namespace(&spec.name(), address)?;
    let installed =
        net::install_capture(&ns, &Capture::default()).and_then(|()| net::write_hosts(&ns, hosts));
    if let Err(e) = installed {
        let _ = net.remove_namespace(&ns);
        return Err(e.into());
    }
    let mut args = sidecar_args(ctx, spec, address);
    for (flag, value) in [
        ("--outbound-addr", "0.0.0.0:15001"),
        ("--inbound-addr", "0.0.0.0:15006"),
        ("--admin-addr", "0.0.0.0:15000"),
        ("--health-addr", "0.0.0.0:15021"),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    let bin = ctx.trellis_bin.clone();
    let sidecar_ns = ns.clone();
    let sidecar = Supervised::start(
        format!("{} sidecar", spec.name()),
        Arc::new(move || {
            let wrapped = pdeathsig_args(bin.as_os_str(), &args);
            net::command_in(
                &sidecar_ns,
                Some((PROXY_UID, PROXY_UID)),
                "setpriv".as_ref(),
                &wrapped,
            )
        }),
        log_path(&ctx.logs, spec, "sidecar"),
    );
    let env = base_env(spec, address, spec.port);
    let app = start_app(ctx, spec, env, Some(ns.clone()));
    Ok(Instance {
        spec: spec.clone(),
        address,
        namespace: Some(ns),
        app,
        sidecar,
        admin: SocketAddr::new(IpAddr::V4(address), 15000),
        probe: SocketAddr::new(IpAddr::V4(address), spec.port),
    })
}

fn start_app(
    ctx: &StartCtx,
    spec: &InstanceSpec,
    env: Vec<(String, String)>,
    ns: Option<Namespace>,
) -> Supervised {
    let command = resolve_command(&spec.command, &ctx.trellis_bin);
    let args: Vec<OsString> = spec.args.iter().map(OsString::from).collect();
    let user_env = spec.env.clone();
    let dir = spec.working_dir.clone();
    Supervised::start(
        format!("{} app", spec.name()),
        Arc::new(move || {
            let mut cmd = match &ns {
                Some(ns) => net::command_in(
                    ns,
                    None,
                    "setpriv".as_ref(),
                    &pdeathsig_args(&command, &args),
                ),
                None => pdeathsig_wrap(&command, &args),
            };
            // The user's own variables win over what `trellis up` sets.
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            cmd.envs(&user_env);
            if let Some(d) = &dir {
                cmd.current_dir(d);
            }
            cmd
        }),
        log_path(&ctx.logs, spec, "app"),
    )
}

/// `trellis` as a command means this very binary (the demo app is built in), so the example
/// runs from a fresh checkout without installing anything.
fn resolve_command(command: &str, trellis_bin: &Path) -> OsString {
    if command == "trellis" {
        trellis_bin.as_os_str().to_owned()
    } else {
        command.into()
    }
}

/// `setpriv --pdeathsig TERM -- program args…`: the child gets SIGTERM if `trellis up` dies
/// without stopping it.
fn pdeathsig_args(program: &std::ffi::OsStr, args: &[OsString]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--pdeathsig".into(), "TERM".into(), "--".into()];
    v.push(program.to_owned());
    v.extend(args.iter().cloned());
    v
}
