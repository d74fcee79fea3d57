//! Per-namespace hosts files, so `http://inventory:8080` resolves inside a namespace.
//!
//! `ip netns exec <ns>` bind-mounts `/etc/netns/<ns>/hosts` over `/etc/hosts` for the
//! program it starts. A bind mount pins the file's inode: replacing the file by rename
//! (the usual atomic update) would leave every running program reading the old file
//! forever. So the file is created once (by rename, when the namespace is added, before
//! anything runs in it) and afterwards rewritten in place, in one `pwrite` from offset 0
//! followed by a truncation: a reader sees the old text, the new text, or the new text
//! followed by blank lines, and for files under a page (a few dozen services) the write
//! is a single copy into the page cache, so a torn read needs a reader scanning the page
//! during that copy. Comments and blank lines are ignored by the resolver.
//!
//! Each namespace also gets a `resolv.conf` naming only its own loopback: the host's
//! resolvers are not reachable from a namespace (nothing forwards or NATs its traffic
//! beyond the bridge), and packets to them are dropped silently, so every name missing
//! from the hosts file, and every IPv6 lookup tried before the IPv4 one (`getent hosts`),
//! would wait out DNS timeouts (10 s with glibc's defaults). With nothing listening on
//! port 53 inside the namespace, such a lookup fails at once instead.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::NetError;
use super::namespace::Namespace;

/// Where `ip netns exec` looks for per-namespace replacements of `/etc` files.
pub(crate) const NETNS_ETC: &str = "/etc/netns";

/// Longest host name (RFC 1035).
const MAX_HOST_NAME: usize = 253;

/// The hosts file of namespace `ns`: `/etc/netns/<ns>/hosts`.
pub fn hosts_file(ns: &Namespace) -> PathBuf {
    Path::new(NETNS_ETC).join(&ns.name).join("hosts")
}

/// Writes the hosts file of `ns`: the localhost lines, then one line `ip name name...`
/// per entry (entries without names are skipped). Programs already running in the
/// namespace see the new content: see the module documentation for how it is updated.
/// Host names must be non-empty, at most 253 characters, of letters, digits, `-`, `_`
/// and `.`.
pub fn write_hosts(ns: &Namespace, entries: &[(IpAddr, Vec<String>)]) -> Result<(), NetError> {
    let content = render_hosts(&ns.name, entries)?;
    write_in_place(&hosts_file(ns), content.as_bytes())?;
    tracing::debug!(target: "trellis::up::net", namespace = %ns.name, entries = entries.len(), "hosts file written");
    Ok(())
}

/// The text of a hosts file for namespace `name` with `entries` (see [`write_hosts`]).
pub fn render_hosts(name: &str, entries: &[(IpAddr, Vec<String>)]) -> Result<String, NetError> {
    let mut text = format!(
        "# Written by trellis up for network namespace {name}; rewritten when services change.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    for (ip, names) in entries {
        if names.is_empty() {
            continue;
        }
        for name in names {
            check_host_name(name)?;
        }
        text.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    Ok(text)
}

fn check_host_name(name: &str) -> Result<(), NetError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_HOST_NAME {
        "it is longer than 253 characters"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        "only letters, digits, '-', '_' and '.' are allowed"
    } else {
        return Ok(());
    };
    Err(NetError::InvalidHostName {
        name: name.to_owned(),
        reason,
    })
}

/// Replaces the content of `path` keeping its inode (created by write + rename if it
/// does not exist yet), readable by everyone: programs in the namespace may run as any
/// user. Tried twice if the directory disappears meanwhile: another run's cleanup removes
/// `/etc/netns` when it finds it empty.
pub(crate) fn write_in_place(path: &Path, content: &[u8]) -> Result<(), NetError> {
    match try_write_in_place(path, content) {
        Err(error) if error.is_not_found() => try_write_in_place(path, content),
        result => result,
    }
}

fn try_write_in_place(path: &Path, content: &[u8]) -> Result<(), NetError> {
    let dir = path
        .parent()
        .ok_or_else(|| NetError::file("write", path, io::ErrorKind::InvalidInput.into()))?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| NetError::file("create", dir, e))?;
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return create(path, content),
        Err(error) => return Err(NetError::file("open", path, error)),
    };
    let old_len = file
        .metadata()
        .map_err(|e| NetError::file("read the size of", path, e))?
        .len();
    // Never shrink before writing: pad with newlines over the old tail, write everything
    // in one call, then cut the padding off.
    let mut padded = content.to_vec();
    let new_len = padded.len() as u64;
    if let Some(pad) = old_len
        .checked_sub(new_len)
        .and_then(|n| usize::try_from(n).ok())
    {
        padded.resize(padded.len() + pad, b'\n');
    }
    file.write_all_at(&padded, 0)
        .and_then(|()| file.set_len(new_len))
        .map_err(|e| NetError::file("write", path, e))
}

/// Creates `path` with `content` atomically: a temporary file in the same directory,
/// renamed over it.
fn create(path: &Path, content: &[u8]) -> Result<(), NetError> {
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut file| file.write_all(content));
    if let Err(error) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(NetError::file("write", path, error));
    }
    Ok(())
}

/// The `resolv.conf` of every namespace (see the module documentation).
const RESOLV_CONF: &str = "# Written by trellis up. Names of the mesh are in /etc/hosts; the host's resolvers are\n\
# not reachable from this network namespace, so other names fail at once.\n\
nameserver 127.0.0.1\n\
options timeout:1 attempts:1\n";

/// Writes `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` puts over
/// `/etc/resolv.conf`.
pub(crate) fn write_resolv_conf(ns: &Namespace) -> Result<(), NetError> {
    let path = Path::new(NETNS_ETC).join(&ns.name).join("resolv.conf");
    write_in_place(&path, RESOLV_CONF.as_bytes())
}

/// Removes `/etc/netns/<name>` and what is in it; `Ok(false)` if it did not exist.
pub(crate) fn remove_dir(name: &str) -> Result<bool, NetError> {
    let dir = Path::new(NETNS_ETC).join(name);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(NetError::file("remove", dir, error)),
    }
}

/// Removes `/etc/netns` if it is empty (our hosts directories made it; `ip` does not
/// need it). Anything else, including a failure, leaves it alone.
pub(crate) fn remove_etc_netns_if_empty() {
    if fs::remove_dir(NETNS_ETC).is_ok() {
        tracing::debug!(target: "trellis::up::net", "removed the empty {NETNS_ETC}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ip: [u8; 4], names: &[&str]) -> (IpAddr, Vec<String>) {
        (
            IpAddr::from(ip),
            names.iter().map(|n| (*n).to_owned()).collect(),
        )
    }

    #[test]
    fn hosts_files_have_localhost_then_one_line_per_address() {
        let text = render_hosts(
            "trellis-a",
            &[
                entry(
                    [10, 77, 0, 3],
                    &["inventory", "inventory.default.svc.cluster.local"],
                ),
                entry([10, 77, 0, 4], &[]),
                entry([10, 77, 0, 5], &["ratings"]),
            ],
        )
        .expect("valid names");
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "127.0.0.1\tlocalhost",
                "::1\tlocalhost ip6-localhost ip6-loopback",
                "10.77.0.3\tinventory inventory.default.svc.cluster.local",
                "10.77.0.5\tratings",
            ]
        );
    }

    #[test]
    fn names_that_would_break_the_file_are_refused() {
        for bad in [
            "",
            "two words",
            "a#comment",
            "line\nbreak",
            &"a".repeat(254),
        ] {
            let result = render_hosts("n", &[entry([10, 0, 0, 1], &[bad])]);
            assert!(
                matches!(result, Err(NetError::InvalidHostName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rewrites_keep_the_inode_and_leave_no_padding() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("trellis-up-hosts-{}", std::process::id()));
        let path = dir.join("sub").join("hosts");
        write_in_place(&path, b"first version, long enough\n").expect("create");
        let inode = fs::metadata(&path).expect("created").ino();
        write_in_place(&path, b"short\n").expect("shrink");
        assert_eq!(fs::read(&path).expect("read"), b"short\n");
        write_in_place(&path, b"a longer third version\n").expect("grow");
        assert_eq!(fs::read(&path).expect("read"), b"a longer third version\n");
        let meta = fs::metadata(&path).expect("still there");
        assert_eq!(meta.ino(), inode);
        assert_eq!(meta.mode() & 0o777, 0o644);
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
