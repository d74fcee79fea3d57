//! `trellis control`: the control plane for a configuration directory, until SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use trellis_config::load::LoadOptions;
use trellis_control::{ControlError, ControlPlane, ControlSettings, DirectorySource};

use crate::cli::ControlArgs;

pub fn run(args: &ControlArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("trellis-control")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: &ControlArgs) -> anyhow::Result<ExitCode> {
    let load = LoadOptions {
        default_namespace: args.namespace.clone(),
    };
    let source = Arc::new(DirectorySource::new(args.config.clone(), load));
    let settings = ControlSettings {
        xds_addr: args.xds_addr,
        monitoring_addr: args.monitoring_addr,
        watch: !args.no_watch,
        ..ControlSettings::default()
    };
    let cp = match ControlPlane::start(source, settings).await {
        Ok(cp) => cp,
        Err(ControlError::Config(refused)) => {
            eprintln!("error: configuration refused");
            for d in &refused.diagnostics {
                eprintln!("  {d}");
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "trellis control: xds {} monitoring {}",
        cp.xds_addr(),
        cp.monitoring_addr()
    );
    crate::signals::terminated()
        .await
        .context("cannot listen for signals")?;
    cp.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
