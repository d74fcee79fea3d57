//! Configuration from files: load a directory (or files) into a mesh and a runtime, and
//! watch it so a saved change is picked up within the debounce interval.
//!
//! Watching uses the OS's file events (inotify on Linux, through `notify`) on every
//! configured path — directories recursively, files through their parent directory so
//! editors that save by rename are seen — and falls back to polling when events are not
//! available (for example when inotify watches are exhausted).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use trellis_config::load::LoadOptions;
use trellis_config::snapshot::{Snapshot, SnapshotError, snapshot};
use trellis_model::Mesh;

use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};

/// Why a configuration was refused; the previous one (if any) keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading, parsing or analyzing failed (the analyzer's diagnostics are inside).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The mesh compiled but the proxy could not prepare it.
    #[error("the proxy cannot use this configuration: {0}")]
    Runtime(#[from] RuntimeError),
}

impl LoadError {
    /// One line per finding, errors first, for logs and `/config_dump`.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Snapshot(SnapshotError::Invalid { diagnostics, .. }) => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            other => vec![other.to_string()],
        }
    }
}

/// A loaded configuration, ready to serve.
pub struct Loaded {
    /// The compiled mesh (kept for `/config_dump`).
    pub mesh: Mesh,
    /// The proxy's prepared view of it.
    pub runtime: Runtime,
    /// Resources read.
    pub resources: usize,
    /// Warnings the analyzer reported (errors refuse the configuration).
    pub warnings: Vec<String>,
}

/// Loads, analyzes and compiles `paths`, then prepares the runtime.
pub fn load(
    paths: &[PathBuf],
    load: &LoadOptions,
    runtime: &RuntimeOptions,
) -> Result<Loaded, LoadError> {
    let Snapshot {
        mesh,
        diagnostics,
        resources,
    } = snapshot(paths, load)?;
    let rt = Runtime::build(&mesh, runtime)?;
    Ok(Loaded {
        mesh,
        runtime: rt,
        resources,
        warnings: diagnostics.iter().map(ToString::to_string).collect(),
    })
}

/// Keeps the file watcher alive; dropping it stops change notifications.
pub struct DirWatcher {
    _watcher: Box<dyn Watcher + Send>,
}

/// Watches `paths`; every burst of changes sends one `()` on the returned channel (the
/// receiver debounces further). Falls back to polling every `poll` when file events
/// cannot be set up.
pub fn watch(
    paths: &[PathBuf],
    poll: Duration,
) -> notify::Result<(DirWatcher, mpsc::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
            Err(e) => {
                tracing::warn!(error = %e, "watching the configuration failed");
                true
            }
        };
        if relevant {
            // A full channel already holds a pending notification: nothing is lost.
            let _ = tx.try_send(());
        }
    };
    let watcher: Box<dyn Watcher + Send> = match notify::recommended_watcher(handler.clone()) {
        Ok(mut w) => match add_paths(&mut w, paths) {
            Ok(()) => Box::new(w),
            Err(e) => {
                tracing::warn!(error = %e, "file events unavailable, polling the configuration");
                polling(handler, paths, poll)?
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "file events unavailable, polling the configuration");
            polling(handler, paths, poll)?
        }
    };
    Ok((DirWatcher { _watcher: watcher }, rx))
}

fn polling<F>(
    handler: F,
    paths: &[PathBuf],
    every: Duration,
) -> notify::Result<Box<dyn Watcher + Send>>
where
    F: notify::EventHandler,
{
    let config = notify::Config::default()
        .with_poll_interval(every)
        .with_compare_contents(true);
    let mut w = notify::PollWatcher::new(handler, config)?;
    add_paths(&mut w, paths)?;
    Ok(Box::new(w))
}

/// Directories recursively; files through their parent (saves by rename replace the
/// file's inode, which a watch on the file itself would lose).
fn add_paths(w: &mut dyn Watcher, paths: &[PathBuf]) -> notify::Result<()> {
    for p in paths {
        if p.is_dir() {
            w.watch(p, RecursiveMode::Recursive)?;
        } else {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
            w.watch(
                parent.unwrap_or(Path::new(".")),
                RecursiveMode::NonRecursive,
            )?;
        }
    }
    Ok(())
}
