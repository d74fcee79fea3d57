//! Transparent-mode networking for `trellis up`: every workload replica runs in its own
//! Linux network namespace, joined to the host by a veth pair on a bridge, with
//! istio-init-style `REDIRECT` rules inside the namespace so an unmodified application is
//! meshed without knowing it.
//!
//! ```text
//!   host: bridge trellis0 10.77.0.1/16 (control plane, gateway)
//!     ├─ trl0h ══ eth0 10.77.0.2  netns trellis-orders-v1-0   (app + sidecar)
//!     └─ trl1h ══ eth0 10.77.0.3  netns trellis-inventory-v1-0
//! ```
//!
//! Everything is done by running `ip`, `iptables` (whichever one is on `PATH`) and
//! `setpriv`, with their stderr carried into [`NetError`], so a failure reads like the
//! command a person would have typed. Every name created starts with the configured
//! prefix, which is how [`cleanup_leftovers`] finds what a killed run left behind.
//!
//! - [`HostNetwork`]: the bridge and host firewall rules, and the namespaces added to it;
//!   [`HostNetwork::teardown`] (also run on drop) removes all of it.
//! - [`install_capture`]: the `nat` rules sending a namespace's TCP to its sidecar.
//! - [`write_hosts`]: per-namespace `/etc/hosts`, so service names resolve.
//! - [`command_in`]: a [`std::process::Command`] running inside a namespace, optionally
//!   as another user (the sidecar runs as uid 1337, whose traffic is never captured).
//! - [`available`]: whether this machine can do any of it (root, tools, a probe).

mod capture;
mod cleanup;
mod command;
mod config;
mod error;
mod host;
mod hosts;
mod namespace;

pub use capture::{Capture, capture_rules, install_capture};
pub use cleanup::{CleanupReport, cleanup_leftovers};
pub use config::{NetConfig, address};
pub use error::NetError;
pub use host::HostNetwork;
pub use hosts::{hosts_file, render_hosts, write_hosts};
pub use namespace::{Namespace, command_in, namespace_name};

/// The tools transparent mode runs, and the Debian package providing each.
const TOOLS: [(&str, &str); 3] = [
    ("ip", "iproute2"),
    ("iptables", "iptables"),
    ("setpriv", "util-linux"),
];

/// Checks that this machine can run transparent mode with `cfg`: the configuration is
/// valid, we are root (effective uid 0), `ip`, `iptables` and `setpriv` are on `PATH`, and
/// a probe namespace can be created, can list its `nat` table with `iptables`, and can be
/// removed again. `Err` says what is missing, in words meant for the user.
pub fn available(cfg: &NetConfig) -> Result<(), String> {
    cfg.validate().map_err(|e| e.to_string())?;
    match effective_uid() {
        Some(0) => {}
        Some(uid) => {
            return Err(format!(
                "transparent mode needs root (the effective uid is {uid}); run as root, or use explicit mode"
            ));
        }
        None => return Err("cannot read the effective uid from /proc/self/status".to_owned()),
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| find_in_path(tool).is_none())
        .map(|(tool, package)| format!("`{tool}` (package {package})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("not found on PATH: {}", missing.join(", ")));
    }
    probe(cfg).map_err(|e| format!("cannot set up a network namespace: {e}"))
}

/// Creates and removes a throw-away namespace named after `cfg.prefix` (so even a probe
/// interrupted halfway is found by [`cleanup_leftovers`]), checking that iptables' `nat`
/// table works inside it: capture needs it, and it is what a missing kernel module breaks.
fn probe(cfg: &NetConfig) -> Result<(), NetError> {
    let name = format!("{}-probe-{}", cfg.prefix, std::process::id());
    command::ip(&["netns", "add", &name])?;
    let checked = command::iptables_in(&name, &["-t", "nat", "-S"]);
    let removed = command::ip(&["netns", "delete", &name]);
    checked?;
    removed.map(drop)
}

/// The effective uid of this process, from `/proc/self/status` (no `libc` call: the crate
/// forbids `unsafe`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_effective_uid(&status)
}

/// The effective uid in the text of `/proc/<pid>/status`: the second number of its
/// `Uid:` line (real, effective, saved, filesystem).
fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The first executable file called `tool` in the directories of `PATH`.
fn find_in_path(tool: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field_of_the_uid_line() {
        let status =
            "Name:\tcat\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Uid:\t5\t7\t7\t7\n"), Some(7));
        assert_eq!(parse_effective_uid("Name:\tcat\n"), None);
        assert_eq!(parse_effective_uid("Uid:\t5\n"), None);
    }

    #[test]
    fn the_shell_is_found_on_path() {
        assert!(find_in_path("sh").is_some());
        assert!(find_in_path("trellis-no-such-tool").is_none());
    }
}
