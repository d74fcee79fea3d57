//! Supervised child processes: started with their output appended to a log file, restarted
//! with backoff when they exit on their own (as a kubelet restarts a container), stopped with
//! SIGTERM and, after a grace period, SIGKILL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stopped process may take to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Builds the command for each (re)start.
pub type Build = Arc<dyn Fn() -> std::process::Command + Send + Sync>;

/// A running, supervised process.
pub struct Supervised {
    name: String,
    log: PathBuf,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervised {
    /// Starts `build()` now and keeps it running until [`Supervised::stop`].
    pub fn start(name: String, build: Build, log: PathBuf) -> Supervised {
        let pid = Arc::new(AtomicU32::new(0));
        let restarts = Arc::new(AtomicU32::new(0));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(
            name.clone(),
            build,
            log.clone(),
            Arc::clone(&pid),
            Arc::clone(&restarts),
            stopped,
        ));
        Supervised {
            name,
            log,
            pid,
            restarts,
            stop,
            task,
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    /// How often it was restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its name in logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops it (SIGTERM, then SIGKILL after the grace period) and waits until it exited.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

async fn supervise(
    name: String,
    build: Build,
    log: PathBuf,
    pid: Arc<AtomicU32>,
    restarts: Arc<AtomicU32>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut child = match spawn(&build, &log) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(process = %name, error = %e, "cannot start");
                append(&log, &format!("trellis up: cannot start: {e}\n"));
                if wait_or_stop(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
        let started = std::time::Instant::now();
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = stopped.wait_for(|s| *s) => None,
        };
        let Some(status) = exited else {
            terminate(&name, &mut child).await;
            pid.store(0, Ordering::Relaxed);
            return;
        };
        pid.store(0, Ordering::Relaxed);
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        tracing::warn!(process = %name, %status, "exited; restarting");
        append(
            &log,
            &format!("trellis up: process exited ({status}); restarting in {backoff:?}\n"),
        );
        restarts.fetch_add(1, Ordering::Relaxed);
        // A process that ran a while was healthy: restart it quickly.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        if wait_or_stop(&mut stopped, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sleeps `d`, or returns `true` early when asked to stop.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let early = tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stopped.wait_for(|s| *s) => true,
    };
    early || *stopped.borrow()
}

fn spawn(build: &Build, log: &Path) -> std::io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    let mut cmd = build();
    cmd.stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    // Its own process group: a Ctrl-C in the terminal reaches `trellis up` only, which then
    // stops apps before their sidecars instead of everything dying at once.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut cmd = tokio::process::Command::from(cmd);
    // Should this supervisor die without stopping it, the child must not outlive it.
    cmd.kill_on_drop(true);
    cmd.spawn()
}

/// SIGTERM, then SIGKILL once the grace period is over.
async fn terminate(name: &str, child: &mut Child) {
    if let Some(id) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(id), Signal::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(process = %name, "did not stop within {GRACE:?}; killing");
    }
    let _ = child.kill().await;
}

fn append(log: &Path, line: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Whether process `pid` exists (for `trellis down` on a state file).
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .is_some_and(|p| kill(Pid::from_raw(p), None).is_ok())
}

/// Sends SIGTERM (or SIGKILL with `force`) to `pid`; errors are ignored (it may be gone).
pub fn signal(pid: u32, force: bool) {
    if let Ok(p) = i32::try_from(pid) {
        let sig = if force {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = kill(Pid::from_raw(p), sig);
    }
}
