//! `trellis down`: removing what a killed run left behind, found by the names it gives
//! everything ([`NetConfig::prefix`], [`NetConfig::veth_prefix`], [`NetConfig::bridge`])
//! rather than by a record of what it made: a SIGKILLed run writes nothing on its way out.

use std::fs;
use std::io;
use std::path::Path;

use super::command::{ip, iptables, removed};
use super::config::NetConfig;
use super::error::NetError;
use super::host::host_rules;
use super::hosts::{self, NETNS_ETC};
use super::namespace::{self, is_our_veth};

/// How many copies of one host rule are removed at most (each killed run that found the
/// bridge gone may have inserted another).
const MAX_RULE_COPIES: usize = 64;

/// What [`cleanup_leftovers`] removed, and what it could not.
#[derive(Debug, Default)]
pub struct CleanupReport {
    /// One line per thing removed, for printing: `namespace trellis-orders-v1-0`,
    /// `interface trl0h`, `firewall rule -A FORWARD ...`, `bridge trellis0`,
    /// `hosts directory /etc/netns/trellis-orders-v1-0`, `3 processes in namespace ...`.
    pub removed: Vec<String>,
    /// Failures; cleanup went on past each.
    pub errors: Vec<NetError>,
}

impl CleanupReport {
    /// Whether nothing failed.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    fn outcome(&mut self, what: String, result: Result<bool, NetError>) {
        match result {
            Ok(true) => self.removed.push(what),
            Ok(false) => {}
            Err(error) => self.errors.push(error),
        }
    }
}

/// Removes every network namespace named `<prefix>-*` (stopping the processes still in
/// it), every veth named `<veth_prefix><N>h`/`p`, the host rules marked `trellis:<prefix>`
/// for the bridge, the bridge, and the directories `/etc/netns/<prefix>-*`. Needs no
/// [`HostNetwork`](super::HostNetwork): it is for runs that were killed. Running it with
/// nothing left over removes nothing and reports no error.
pub fn cleanup_leftovers(cfg: &NetConfig) -> CleanupReport {
    let mut report = CleanupReport::default();
    if let Err(error) = cfg.validate() {
        report.errors.push(error);
        return report;
    }
    let ours = format!("{}-", cfg.prefix);

    match ip(&["netns", "list"]) {
        Ok(listing) => {
            for name in parse_netns_list(&listing) {
                if !name.starts_with(&ours) {
                    continue;
                }
                match namespace::stop_processes(&name) {
                    Ok(0) => {}
                    Ok(count) => report
                        .removed
                        .push(format!("{count} process(es) in namespace {name}")),
                    Err(error) => report.errors.push(error),
                }
                let result = removed(ip(&["netns", "delete", &name]));
                report.outcome(format!("namespace {name}"), result);
            }
        }
        Err(error) => report.errors.push(error),
    }

    // Deleting a namespace normally takes its veth pair with it; a pair whose namespace
    // is still held open (or was never moved into one) is deleted here.
    match ip(&["-o", "link", "show", "type", "veth"]) {
        Ok(listing) => {
            for name in parse_link_names(&listing) {
                if is_our_veth(&cfg.veth_prefix, &name) {
                    let result = removed(ip(&["link", "delete", &name]));
                    report.outcome(format!("interface {name}"), result);
                }
            }
        }
        Err(error) => report.errors.push(error),
    }

    for rule in host_rules(cfg) {
        for _ in 0..MAX_RULE_COPIES {
            // `-C` fails when the rule is absent (or iptables cannot run at all, which
            // the `-D` of a previous round or the namespace listing has reported).
            if iptables(&rule.args("-C")).is_err() {
                break;
            }
            let result = iptables(&rule.args("-D")).map(|_| true);
            let failed = result.is_err();
            report.outcome(format!("firewall rule {}", rule.describe()), result);
            if failed {
                break;
            }
        }
    }

    let result = removed(ip(&["link", "delete", &cfg.bridge]));
    report.outcome(format!("bridge {}", cfg.bridge), result);

    match fs::read_dir(NETNS_ETC) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&ours) {
                    let dir = Path::new(NETNS_ETC).join(&name);
                    let result = match fs::remove_dir_all(&dir) {
                        Ok(()) => Ok(true),
                        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
                        Err(error) => Err(NetError::file("remove", &dir, error)),
                    };
                    report.outcome(format!("hosts directory {}", dir.display()), result);
                }
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => report.errors.push(NetError::file("list", NETNS_ETC, error)),
    }

    hosts::remove_etc_netns_if_empty();
    for line in &report.removed {
        tracing::info!(target: "trellis::up::net", "removed {line}");
    }
    report
}

/// Namespace names in the output of `ip netns list`: the first word of each line
/// (`trellis-a (id: 3)` or just `trellis-a`).
pub(crate) fn parse_netns_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Interface names in the output of `ip -o link show`: the second field of each line,
/// without the `@peer` suffix (`5: trl0h@if2: <BROADCAST,...`).
pub(crate) fn parse_link_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?;
            let name = name.split('@').next()?.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_listings_are_parsed_with_or_without_ids() {
        let listing = "trellis-b (id: 1)\ntrellis-a\nother (id: 0)\n\n";
        assert_eq!(
            parse_netns_list(listing),
            ["trellis-b", "trellis-a", "other"]
        );
    }

    #[test]
    fn link_listings_give_names_without_peers() {
        let listing = "5: trl0h@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master trellis0 state UP mode DEFAULT group default qlen 1000\\    link/ether 66:93:c0:8c:0e:3e brd ff:ff:ff:ff:ff:ff link-netns trellis-a\n\
                       9: veth1234: <BROADCAST> mtu 1500\n";
        assert_eq!(parse_link_names(listing), ["trl0h", "veth1234"]);
    }

    #[test]
    fn an_invalid_configuration_removes_nothing() {
        let cfg = NetConfig {
            prefix: String::new(),
            ..NetConfig::default()
        };
        let report = cleanup_leftovers(&cfg);
        assert!(report.removed.is_empty());
        assert!(matches!(report.errors[..], [NetError::InvalidConfig(_)]));
    }
}
