//! The state file of a running `trellis up`: what it started, so `trellis down` can stop it
//! (and clean up after a run that was killed) and `trellis up --detach` can show the table.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::plan::Mode;

/// Name of the state file in the state directory.
const FILE: &str = "state.json";

/// What a run started.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UpState {
    /// The `trellis up` process.
    pub pid: u32,
    /// `explicit` or `transparent`.
    pub mode: Option<Mode>,
    /// Set once everything answered its readiness check.
    pub ready: bool,
    /// The configuration followed.
    pub config: Vec<PathBuf>,
    /// The control plane's xDS address.
    pub xds: Option<SocketAddr>,
    /// Its monitoring address (`trellis status --control-plane`).
    pub monitoring: Option<SocketAddr>,
    /// Name prefix and bridge of the network namespaces (transparent mode).
    pub net: Option<NetState>,
    /// Every process started, with its pid (0 when not running).
    pub processes: Vec<ProcessState>,
    /// The table printed when the mesh became ready.
    pub table: String,
}

/// The network objects of a transparent run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NetState {
    /// Prefix of every namespace name.
    pub prefix: String,
    /// The bridge.
    pub bridge: String,
}

/// One started process.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcessState {
    /// `orders-v1-0 app`, `orders-v1-0 sidecar`, `istio-ingressgateway gateway`.
    pub name: String,
    /// Its pid, 0 when not running.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    /// Its command line as the kernel showed it when saved, so `trellis down` never signals
    /// an unrelated process that reused the pid.
    pub cmdline: String,
}

/// The command line of `pid` (`/proc/<pid>/cmdline`, arguments joined by spaces), if it runs.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The default state directory: `$TMPDIR/trellis-up-<uid>`.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("trellis-up-{}", nix::unistd::geteuid()))
}

/// Writes `state` to `dir` (replaced atomically: a reader never sees half a file).
pub fn write(dir: &Path, state: &UpState) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join(FILE))
}

/// Reads the state in `dir`, if a run left one.
pub fn read(dir: &Path) -> Option<UpState> {
    let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Removes the state file.
pub fn remove(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}
