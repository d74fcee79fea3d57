//! `trellis demo`: validates the flags and environment, then serves the demo application on
//! a current-thread runtime until SIGTERM or SIGINT, and drains.

use std::process::ExitCode;

use anyhow::Context as _;
use trellis_demo::DemoServer;

use crate::cli::DemoArgs;

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    // Before any runtime exists, so a bad value exits 2 with the flag or variable named.
    let config = trellis_demo::config_from(&args.flags(), |name| std::env::var(name).ok())?;
    // One thread: a demo service does little work per request, and `trellis up` runs a
    // handful of them next to their sidecars on one machine. Upstream calls still run
    // concurrently; name resolution uses the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .thread_name("trellis-demo")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: trellis_demo::DemoConfig) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    // Handlers are installed before the startup line: a supervisor that sends SIGTERM as
    // soon as it sees the line must get a drain and exit 0, not the default abrupt death.
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let server = DemoServer::bind(config).await?;
    let config = server.config();
    eprintln!(
        "trellis demo: {} {} listening on {}",
        config.service,
        config.version,
        server.local_addr()
    );
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    server.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
