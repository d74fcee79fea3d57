//! One network namespace per workload replica: its name, its veth pair to the bridge, its
//! removal, and [`command_in`] to run programs inside it.

use std::ffi::{OsStr, OsString};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use super::command::{self, ip, ip_in, removed};
use super::config::{MAX_INTERFACE_NAME, NetConfig};
use super::error::NetError;
use super::hosts;

/// Longest namespace name made by [`namespace_name`].
const MAX_NAMESPACE_NAME: usize = 48;
/// How long processes left in a namespace get to exit on SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// A network namespace created by [`HostNetwork::add_namespace`](super::HostNetwork::add_namespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The namespace's name, as `ip netns` knows it: `<prefix>-<sanitized label>`.
    pub name: String,
    /// Its address on `eth0` (and the bridge's subnet).
    pub ip: Ipv4Addr,
    /// The host end of its veth pair, attached to the bridge: `<veth_prefix><N>h`.
    pub host_veth: String,
}

/// The namespace name for replica label `label`: `<prefix>-` followed by the label in
/// lowercase with every run of other characters than letters and digits turned into one
/// `-` (`Orders_v1.0` -> `orders-v1-0`). Names longer than 48 characters are cut and end
/// with a hash of the whole label, so distinct long labels keep distinct names.
pub fn namespace_name(prefix: &str, label: &str) -> String {
    let mut clean = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            clean.push(c.to_ascii_lowercase());
        } else if !clean.is_empty() && !clean.ends_with('-') {
            clean.push('-');
        }
    }
    while clean.ends_with('-') {
        clean.pop();
    }
    if clean.is_empty() {
        clean.push_str("ns");
    }
    let full = format!("{prefix}-{clean}");
    if full.len() <= MAX_NAMESPACE_NAME {
        return full;
    }
    let hash = format!("{:06x}", fnv1a(label.as_bytes()) & 0xff_ffff);
    // All characters are ASCII here, so byte lengths are character counts.
    let keep = MAX_NAMESPACE_NAME.saturating_sub(prefix.len() + 1 + 1 + hash.len());
    let head = clean[..keep.min(clean.len())].trim_end_matches('-');
    format!("{prefix}-{head}-{hash}")
}

/// 32-bit FNV-1a: a stable hash for shortened names (std's hasher is not stable across
/// releases, and names must be the same in every run).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Names of the host end and the namespace end (before it becomes `eth0`) of veth pair
/// number `n`; `None` if they would exceed Linux's 15 characters.
pub(crate) fn veth_names(veth_prefix: &str, n: u32) -> Option<(String, String)> {
    let host = format!("{veth_prefix}{n}h");
    (host.len() <= MAX_INTERFACE_NAME).then(|| (host, format!("{veth_prefix}{n}p")))
}

/// Whether `name` is an interface made by [`veth_names`] with `veth_prefix`.
pub(crate) fn is_our_veth(veth_prefix: &str, name: &str) -> bool {
    name.strip_prefix(veth_prefix)
        .and_then(|rest| rest.strip_suffix('h').or_else(|| rest.strip_suffix('p')))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Creates namespace `ns` and wires it: veth pair with the host end on the bridge, the
/// other end moved in and renamed `eth0` with `ns.ip`, `lo` up, default route via the
/// host, a hosts file with only the localhost lines and a `resolv.conf` (see
/// [`hosts`](super::hosts)). Undoes what it did on failure.
pub(crate) fn create(cfg: &NetConfig, ns: &Namespace, peer: &str) -> Result<(), NetError> {
    ip(&["netns", "add", &ns.name])?;
    let wired = wire(cfg, ns, peer);
    if wired.is_err() {
        for error in remove(ns) {
            tracing::warn!(target: "trellis::up::net", namespace = %ns.name, %error, "undoing a half-created namespace");
        }
    }
    wired
}

fn wire(cfg: &NetConfig, ns: &Namespace, peer: &str) -> Result<(), NetError> {
    let name = ns.name.as_str();
    let veth = ns.host_veth.as_str();
    let address = format!("{}/{}", ns.ip, cfg.prefix_len);
    let gateway = cfg.host_ip.to_string();
    ip(&[
        "link", "add", veth, "type", "veth", "peer", "name", peer, "netns", name,
    ])?;
    ip(&["link", "set", veth, "master", &cfg.bridge])?;
    ip(&["link", "set", veth, "up"])?;
    ip_in(name, &["link", "set", peer, "name", "eth0"])?;
    ip_in(name, &["addr", "add", &address, "dev", "eth0"])?;
    ip_in(name, &["link", "set", "eth0", "up"])?;
    ip_in(name, &["link", "set", "lo", "up"])?;
    ip_in(
        name,
        &["route", "add", "default", "via", &gateway, "dev", "eth0"],
    )?;
    // Written now, before any process starts: `ip netns exec` bind-mounts the file over
    // /etc/hosts only if it exists, and later updates are made in place so processes
    // already running see them (see `hosts::write_hosts`).
    hosts::write_hosts(ns, &[])?;
    hosts::write_resolv_conf(ns)
}

/// Removes namespace `ns`: stops processes still inside, deletes the host end of its veth
/// (which deletes the pair even while something still holds the namespace open), the
/// namespace, and its hosts directory. Continues past failures and returns all of them;
/// things already gone are not failures.
pub(crate) fn remove(ns: &Namespace) -> Vec<NetError> {
    let mut errors = Vec::new();
    match stop_processes(&ns.name) {
        Ok(0) => {}
        Ok(count) => {
            tracing::warn!(target: "trellis::up::net", namespace = %ns.name, count, "stopped processes still running in the namespace");
        }
        Err(error) if error.is_not_found() => {}
        Err(error) => errors.push(error),
    }
    for result in [
        removed(ip(&["link", "delete", &ns.host_veth])),
        removed(ip(&["netns", "delete", &ns.name])),
        hosts::remove_dir(&ns.name),
    ] {
        if let Err(error) = result {
            errors.push(error);
        }
    }
    errors
}

/// Stops every process inside namespace `name`: SIGTERM, up to two seconds to exit, then
/// SIGKILL. Returns how many there were. A namespace lives on, with its veth, as long as a
/// process is inside it, so removal must not leave any.
pub(crate) fn stop_processes(name: &str) -> Result<usize, NetError> {
    let pids = pids(name)?;
    if pids.is_empty() {
        return Ok(0);
    }
    signal("TERM", &pids);
    let deadline = Instant::now() + TERM_GRACE;
    let mut left = pids.clone();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = self::pids(name)?;
    }
    if !left.is_empty() {
        signal("KILL", &left);
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self::pids(name)?.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(pids.len())
}

/// Process ids inside namespace `name` (`ip netns pids`).
fn pids(name: &str) -> Result<Vec<String>, NetError> {
    let out = ip(&["netns", "pids", name])?;
    Ok(out
        .split_whitespace()
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .collect())
}

/// Sends `signal` to `pids`; a process that exited meanwhile is not an error.
fn signal(signal: &str, pids: &[String]) {
    let mut args = vec![format!("-{signal}"), "--".to_owned()];
    args.extend(pids.iter().cloned());
    if let Err(error) = command::run("kill", &args) {
        tracing::debug!(target: "trellis::up::net", %error, "signalling processes left in a namespace");
    }
}

/// A [`Command`] running `program args` inside namespace `ns` (`ip netns exec <ns>`, which
/// also puts `/etc/netns/<ns>/hosts` over `/etc/hosts` for it), as `uid`/`gid` when
/// `run_as` is given (`setpriv --reuid U --regid G --clear-groups --`). The caller adds
/// environment and stdio and spawns it. `ip` and `setpriv` exec the program in turn, so
/// the spawned child's pid is the program's own. `program` is looked up on `PATH` by the
/// user it runs as: give an absolute path when that user may not read every directory
/// of `PATH` (e.g. a shim under `/root`).
pub fn command_in(
    ns: &Namespace,
    run_as: Option<(u32, u32)>,
    program: &OsStr,
    args: &[OsString],
) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec"]).arg(&ns.name);
    if let Some((uid, gid)) = run_as {
        command
            .arg("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .args(["--clear-groups", "--"]);
    }
    command.arg(program).args(args);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_short_clean_namespace_names() {
        assert_eq!(
            namespace_name("trellis", "orders-v1-0"),
            "trellis-orders-v1-0"
        );
        assert_eq!(
            namespace_name("trellis", "Orders_V1.0"),
            "trellis-orders-v1-0"
        );
        assert_eq!(namespace_name("trellis", "--a//b  c--"), "trellis-a-b-c");
        assert_eq!(namespace_name("trellis", "é"), "trellis-ns");
        assert_eq!(namespace_name("trellis", ""), "trellis-ns");
    }

    #[test]
    fn long_labels_are_cut_and_keep_distinct_names() {
        let a = namespace_name("trellis", &format!("{}-a", "reviews-v2".repeat(8)));
        let b = namespace_name("trellis", &format!("{}-b", "reviews-v2".repeat(8)));
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert_eq!(name.len(), MAX_NAMESPACE_NAME, "{name}");
            assert!(name.starts_with("trellis-reviews-v2reviews"), "{name}");
            assert!(!name.contains("--"), "{name}");
        }
        assert_eq!(
            a,
            namespace_name("trellis", &format!("{}-a", "reviews-v2".repeat(8)))
        );
    }

    #[test]
    fn veth_names_fit_interface_names() {
        assert_eq!(
            veth_names("trl", 0),
            Some(("trl0h".to_owned(), "trl0p".to_owned()))
        );
        assert!(veth_names("abcdefgh", 999_999).is_some());
        assert_eq!(veth_names("abcdefgh", 1_000_000), None);
        assert!(is_our_veth("trl", "trl12h"));
        assert!(is_our_veth("trl", "trl3p"));
        assert!(!is_our_veth("trl", "trlh"));
        assert!(!is_our_veth("trl", "trl1x"));
        assert!(!is_our_veth("trl", "trt1h"));
        assert!(!is_our_veth("trl", "trl1-2h"));
    }

    #[test]
    fn commands_run_through_ip_netns_exec_and_setpriv() {
        let ns = Namespace {
            name: "trellis-a".to_owned(),
            ip: Ipv4Addr::new(10, 77, 0, 2),
            host_veth: "trl0h".to_owned(),
        };
        let args = |command: &Command| -> Vec<String> {
            std::iter::once(command.get_program())
                .chain(command.get_args())
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        };
        let plain = command_in(
            &ns,
            None,
            OsStr::new("app"),
            &["--port".into(), "80".into()],
        );
        assert_eq!(
            args(&plain),
            ["ip", "netns", "exec", "trellis-a", "app", "--port", "80"]
        );
        let proxy = command_in(&ns, Some((1337, 1337)), OsStr::new("/bin/trellis"), &[]);
        assert_eq!(
            args(&proxy),
            [
                "ip",
                "netns",
                "exec",
                "trellis-a",
                "setpriv",
                "--reuid=1337",
                "--regid=1337",
                "--clear-groups",
                "--",
                "/bin/trellis"
            ]
        );
    }
}
