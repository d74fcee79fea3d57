//! Following configuration files: a change to any configured path (directories recursively)
//! is reported on a channel, so the proxy and the control plane reload within their debounce
//! interval of a save.
//!
//! Uses the OS's file events (inotify on Linux, through `notify`) on every configured path —
//! directories recursively, files through their parent directory so editors that save by
//! rename are seen — and falls back to polling when events are not available (for example
//! when inotify watches are exhausted).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// The configuration paths cannot be watched (neither by file events nor by polling).
pub type WatchError = notify::Error;

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
) -> Result<(DirWatcher, mpsc::Receiver<()>), WatchError> {
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            // Only changes that can alter what is loaded: files the loader reads, and
            // directories (a renamed or removed directory takes its files along). A log
            // file written next to the configuration must not trigger reloads.
            Ok(e) => {
                !matches!(e.kind, notify::EventKind::Access(_))
                    && (e.paths.is_empty()
                        || e.paths.iter().any(|p| {
                            crate::load::is_config_file(p) || p.is_dir() || p.extension().is_none()
                        }))
            }
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
