//! Stopping on SIGTERM (Kubernetes, `kill`) or SIGINT (Ctrl-C), for every long-running command.

/// Resolves at the first SIGTERM or SIGINT.
pub async fn terminated() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
