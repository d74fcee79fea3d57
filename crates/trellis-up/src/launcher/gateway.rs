//! A gateway proxy on the host: `trellis proxy --gateway` with the labels its gateways select,
//! listening on the gateways' ports at the bind address (127.0.0.1 by default).

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::plan::GatewaySpec;
use crate::probe;
use crate::process::Supervised;

use super::{StartCtx, UpError, pdeathsig_wrap};

/// A running gateway proxy.
pub(crate) struct Gateway {
    pub spec: GatewaySpec,
    pub proc: Supervised,
    pub admin: SocketAddr,
    pub bind: IpAddr,
}

impl Gateway {
    pub(crate) fn start(
        ctx: &StartCtx,
        spec: &GatewaySpec,
        bind: IpAddr,
    ) -> Result<Gateway, UpError> {
        let port =
            |_| probe::free_port().map_err(|e| UpError::Start(spec.name.clone(), e.to_string()));
        let admin = SocketAddr::from(([127, 0, 0, 1], port(())?));
        let outbound = SocketAddr::from(([127, 0, 0, 1], port(())?));
        let mut args: Vec<OsString> = vec![
            "proxy".into(),
            "--xds".into(),
            ctx.xds.to_string().into(),
            "--gateway".into(),
            "--gateway-bind".into(),
            bind.to_string().into(),
            "--namespace".into(),
            spec.namespace.clone().into(),
            "--workload".into(),
            spec.name.clone().into(),
            "--service-account".into(),
            spec.name.clone().into(),
            "--instance-ip".into(),
            bind.to_string().into(),
            "--outbound-addr".into(),
            outbound.to_string().into(),
            "--admin-addr".into(),
            admin.to_string().into(),
            "--health-addr".into(),
            "off".into(),
            "--concurrency".into(),
            "1".into(),
        ];
        for (k, v) in &spec.labels {
            args.push("--label".into());
            args.push(format!("{k}={v}").into());
        }
        args.extend(ctx.proxy_flags.iter().cloned());
        let bin = ctx.trellis_bin.clone();
        let proc = Supervised::start(
            format!("{} gateway", spec.name),
            Arc::new(move || pdeathsig_wrap(bin.as_os_str(), &args)),
            ctx.logs
                .join(format!("{}.{}.gateway.log", spec.namespace, spec.name)),
        );
        Ok(Gateway {
            spec: spec.clone(),
            proc,
            admin,
            bind,
        })
    }

    /// Configured, and listening on every port.
    pub(crate) async fn ready(&self) -> bool {
        if probe::http_status(self.admin, "/ready").await != Some(200) {
            return false;
        }
        for p in &self.spec.ports {
            if !probe::accepts(SocketAddr::new(self.bind, *p)).await {
                return false;
            }
        }
        true
    }

    pub(crate) async fn stop(self) {
        self.proc.stop().await;
    }
}
