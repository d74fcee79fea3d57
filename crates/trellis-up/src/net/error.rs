//! [`NetError`]: what went wrong, worded for the person running `trellis up`; a failed
//! command carries its command line and stderr, so it can be re-run by hand.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A failure of the networking module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, quoted as a shell would need it.
        command: String,
        /// How it ended, e.g. `exit status: 2`.
        status: String,
        /// Its standard error, trimmed (`(no output)` when it printed nothing).
        stderr: String,
    },
    /// A command could not be started (typically: not installed).
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not be started.
        #[source]
        source: io::Error,
    },
    /// The bridge exists already: another run is using it, or a killed run left it.
    #[error(
        "bridge {bridge} already exists: another `trellis up` is running, or a previous run was killed; \
         run `trellis down` to remove its leftovers"
    )]
    BridgeExists {
        /// The bridge's name.
        bridge: String,
    },
    /// The configured subnet overlaps an address already on one of this host's interfaces.
    #[error(
        "subnet {subnet} overlaps {address} on interface {interface}: choose another subnet, \
         or run `trellis down` if it is left over from a previous run"
    )]
    SubnetInUse {
        /// The configured subnet, `a.b.c.d/len`.
        subnet: String,
        /// The address already in use, `a.b.c.d/len`.
        address: String,
        /// The interface holding it.
        interface: String,
    },
    /// The [`NetConfig`](super::NetConfig) is unusable; the text says which field and why.
    #[error("invalid network configuration: {0}")]
    InvalidConfig(String),
    /// An address given for a namespace cannot be used.
    #[error("cannot give {ip} to a namespace: {reason}")]
    InvalidAddress {
        /// The address.
        ip: Ipv4Addr,
        /// Why not (outside the subnet, the host's address, already used, ...).
        reason: String,
    },
    /// A namespace of that name exists already.
    #[error(
        "network namespace {name} already exists{hint}",
        hint = exists_hint(*.from_this_run)
    )]
    NamespaceExists {
        /// The namespace's name.
        name: String,
        /// Whether this [`HostNetwork`](super::HostNetwork) created it (a duplicate label)
        /// rather than something else (leftovers).
        from_this_run: bool,
    },
    /// A name cannot be written into a hosts file.
    #[error("invalid host name {name:?}: {reason}")]
    InvalidHostName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What was being done, e.g. `write` or `remove`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The end of [`NetError::NamespaceExists`]'s message: what probably happened.
fn exists_hint(from_this_run: bool) -> &'static str {
    if from_this_run {
        " in this run (two replicas with the same label?)"
    } else {
        ": run `trellis down` to remove leftovers of a previous run"
    }
}

impl NetError {
    /// Whether this is a command failing because what it should act on does not exist
    /// (a device, a namespace, a rule), which removal treats as done already.
    pub fn is_not_found(&self) -> bool {
        match self {
            NetError::Command { stderr, .. } => {
                const MISSING: [&str; 4] = [
                    "Cannot find device",
                    "does not exist",
                    "No such file or directory",
                    "Bad rule (does a matching rule exist",
                ];
                MISSING.iter().any(|needle| stderr.contains(needle))
            }
            NetError::File { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// An [`NetError::File`] for `action` on `path`.
    pub(crate) fn file(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        NetError::File {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> NetError {
        NetError::Command {
            command: "ip link del x".to_owned(),
            status: "exit status: 1".to_owned(),
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn missing_things_are_recognised() {
        assert!(failed("Cannot find device \"trl0h\"").is_not_found());
        assert!(failed("Device \"trellis0\" does not exist.").is_not_found());
        assert!(
            failed("Cannot remove namespace file \"/run/netns/x\": No such file or directory")
                .is_not_found()
        );
        assert!(!failed("RTNETLINK answers: Operation not permitted").is_not_found());
        let gone = NetError::file("remove", "/x", io::Error::from(io::ErrorKind::NotFound));
        assert!(gone.is_not_found());
    }

    #[test]
    fn messages_name_the_command_and_the_way_out() {
        let text = failed("RTNETLINK answers: File exists").to_string();
        assert_eq!(
            text,
            "`ip link del x` failed (exit status: 1): RTNETLINK answers: File exists"
        );
        let exists = NetError::BridgeExists {
            bridge: "trellis0".to_owned(),
        };
        assert!(exists.to_string().contains("trellis down"));
        let dup = NetError::NamespaceExists {
            name: "trellis-a".to_owned(),
            from_this_run: true,
        };
        assert!(dup.to_string().contains("same label"));
    }
}
