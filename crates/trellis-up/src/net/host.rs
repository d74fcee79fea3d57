//! [`HostNetwork`]: the bridge, the host firewall rules letting traffic through it, and
//! the namespaces on it; everything it creates it removes again on
//! [`HostNetwork::teardown`] or drop.

use std::net::Ipv4Addr;

use super::command::{ip, iptables, link_exists, removed};
use super::config::{NetConfig, overlaps};
use super::error::NetError;
use super::hosts;
use super::namespace::{self, Namespace, namespace_name, veth_names};

/// A host firewall rule: chain and match/target, as given to `iptables -I/-C/-D <chain>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostRule {
    /// `FORWARD` or `INPUT` of the `filter` table.
    pub(crate) chain: &'static str,
    /// The rule after the chain name.
    pub(crate) spec: Vec<String>,
}

/// The host rules of `cfg`, each marked with the comment `trellis:<prefix>`:
/// - `FORWARD -i <bridge> -o <bridge> -j ACCEPT`: with `br_netfilter` loaded and
///   `net.bridge.bridge-nf-call-iptables = 1`, frames bridged between two namespaces go
///   through the host's `FORWARD` chain, where a `DROP` policy (Docker sets one) would
///   stop namespace-to-namespace traffic;
/// - `INPUT -i <bridge> -j ACCEPT`: namespaces reach the host's address (control plane,
///   gateway) even behind a host firewall with an `INPUT` policy of `DROP`.
///
/// Both are inserted first in their chain, ahead of rules that would drop the traffic.
pub(crate) fn host_rules(cfg: &NetConfig) -> Vec<HostRule> {
    let comment = cfg.rule_comment();
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let bridge = cfg.bridge.as_str();
    vec![
        HostRule {
            chain: "FORWARD",
            spec: strings(&[
                "-i",
                bridge,
                "-o",
                bridge,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "ACCEPT",
            ]),
        },
        HostRule {
            chain: "INPUT",
            spec: strings(&[
                "-i",
                bridge,
                "-m",
                "comment",
                "--comment",
                &comment,
                "-j",
                "ACCEPT",
            ]),
        },
    ]
}

impl HostRule {
    /// `iptables` arguments applying this rule with `op` (`-I`, `-C`, `-D`).
    pub(crate) fn args(&self, op: &str) -> Vec<String> {
        let mut args = vec![op.to_owned(), self.chain.to_owned()];
        if op == "-I" {
            args.push("1".to_owned());
        }
        args.extend(self.spec.iter().cloned());
        args
    }

    /// The rule as `iptables -S` prints it, for reports.
    pub(crate) fn describe(&self) -> String {
        format!("-A {} {}", self.chain, self.spec.join(" "))
    }
}

/// The host side of transparent mode: a bridge with the host's address, host firewall
/// rules, and network namespaces attached to it. It owns what it created: call
/// [`teardown`](HostNetwork::teardown) to remove it and see what failed; dropping it
/// without does the same best-effort, logging failures (so a panic unwinding through the
/// launcher cleans up too). After a crash or SIGKILL, [`cleanup_leftovers`](super::cleanup_leftovers)
/// (`trellis down`) finds everything by its names.
#[derive(Debug)]
pub struct HostNetwork {
    cfg: NetConfig,
    bridge_created: bool,
    rules: Vec<HostRule>,
    namespaces: Vec<Namespace>,
    next_veth: u32,
}

impl HostNetwork {
    /// Creates the bridge with `host_ip/prefix_len`, brings it up, and inserts the host
    /// rules `FORWARD -i <bridge> -o <bridge> -j ACCEPT` and `INPUT -i <bridge> -j ACCEPT`
    /// (first in their chains, marked `trellis:<prefix>`: with `br_netfilter`, bridged
    /// frames cross the host's `FORWARD` chain, where a `DROP` policy such as Docker's
    /// would stop namespace-to-namespace traffic). Fails with [`NetError::BridgeExists`]
    /// if the bridge is there already (another run, or leftovers: `trellis down`), and
    /// with [`NetError::SubnetInUse`] if a host interface already has an address in the
    /// subnet.
    /// On failure, whatever was created is removed again.
    pub fn create(cfg: NetConfig) -> Result<HostNetwork, NetError> {
        cfg.validate()?;
        if link_exists(&cfg.bridge)? {
            return Err(NetError::BridgeExists {
                bridge: cfg.bridge.clone(),
            });
        }
        check_subnet_free(&cfg)?;
        let mut net = HostNetwork {
            cfg,
            bridge_created: false,
            rules: Vec::new(),
            namespaces: Vec::new(),
            next_veth: 0,
        };
        if let Err(error) = net.build() {
            for undo in net.teardown() {
                tracing::warn!(target: "trellis::up::net", error = %undo, "undoing a half-created host network");
            }
            return Err(error);
        }
        tracing::info!(target: "trellis::up::net", bridge = %net.cfg.bridge, address = %net.cfg.host_ip, subnet = %net.cfg.cidr(), "host network created");
        Ok(net)
    }

    fn build(&mut self) -> Result<(), NetError> {
        let bridge = self.cfg.bridge.clone();
        ip(&["link", "add", "name", &bridge, "type", "bridge"])?;
        self.bridge_created = true;
        let address = format!("{}/{}", self.cfg.host_ip, self.cfg.prefix_len);
        ip(&["addr", "add", &address, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for rule in host_rules(&self.cfg) {
            iptables(&rule.args("-I"))?;
            self.rules.push(rule);
        }
        Ok(())
    }

    /// Creates a namespace for one workload replica labelled `name` (e.g. `orders-v1-0`;
    /// see [`namespace_name`] for the namespace's name) with address `ip`, which must be
    /// a host address of the subnet other than `host_ip` and not used by another
    /// namespace of this network ([`address`](super::address) picks one). The namespace
    /// gets a veth pair (host end on the bridge, the other end `eth0` with
    /// `ip/prefix_len`), `lo` up, a default route via `host_ip`, a hosts file with only
    /// the localhost lines (fill it with [`write_hosts`](super::write_hosts)), and a
    /// `resolv.conf` making names outside the mesh fail at once instead of waiting on
    /// DNS servers the namespace cannot reach.
    pub fn add_namespace(&mut self, name: &str, ip: Ipv4Addr) -> Result<Namespace, NetError> {
        self.cfg.check_namespace_ip(ip)?;
        if let Some(other) = self.namespaces.iter().find(|ns| ns.ip == ip) {
            return Err(NetError::InvalidAddress {
                ip,
                reason: format!("namespace {} has it already", other.name),
            });
        }
        let netns = namespace_name(&self.cfg.prefix, name);
        if self.namespaces.iter().any(|ns| ns.name == netns) {
            return Err(NetError::NamespaceExists {
                name: netns,
                from_this_run: true,
            });
        }
        if std::path::Path::new("/run/netns").join(&netns).exists() {
            return Err(NetError::NamespaceExists {
                name: netns,
                from_this_run: false,
            });
        }
        let (host_veth, peer) = veth_names(&self.cfg.veth_prefix, self.next_veth)
            .ok_or_else(|| NetError::InvalidConfig("out of veth interface names".to_owned()))?;
        self.next_veth += 1;
        let ns = Namespace {
            name: netns,
            ip,
            host_veth,
        };
        namespace::create(&self.cfg, &ns, &peer)?;
        tracing::info!(target: "trellis::up::net", namespace = %ns.name, address = %ns.ip, veth = %ns.host_veth, "namespace created");
        self.namespaces.push(ns.clone());
        Ok(ns)
    }

    /// Removes namespace `ns`: processes still inside are stopped (SIGTERM, then SIGKILL
    /// after two seconds), its veth pair and its hosts directory are deleted (its capture
    /// rules go with it). Things already gone are not errors; of several failures, the
    /// first is returned and the others logged.
    pub fn remove_namespace(&mut self, ns: &Namespace) -> Result<(), NetError> {
        self.namespaces.retain(|known| known.name != ns.name);
        let mut errors = namespace::remove(ns).into_iter();
        let first = errors.next();
        for error in errors {
            tracing::warn!(target: "trellis::up::net", namespace = %ns.name, %error, "removing a namespace");
        }
        match first {
            Some(error) => Err(error),
            None => {
                tracing::info!(target: "trellis::up::net", namespace = %ns.name, "namespace removed");
                Ok(())
            }
        }
    }

    /// Removes every namespace (stopping processes left inside), the host rules, the
    /// bridge and the hosts directories this network created, continuing past failures;
    /// returns them all (empty: everything is gone). Calling it again does nothing.
    pub fn teardown(&mut self) -> Vec<NetError> {
        let mut errors = Vec::new();
        for ns in std::mem::take(&mut self.namespaces) {
            errors.extend(namespace::remove(&ns));
        }
        for rule in std::mem::take(&mut self.rules) {
            if let Err(error) = removed(iptables(&rule.args("-D"))) {
                errors.push(error);
            }
        }
        if std::mem::take(&mut self.bridge_created)
            && let Err(error) = removed(ip(&["link", "delete", &self.cfg.bridge]))
        {
            errors.push(error);
        }
        hosts::remove_etc_netns_if_empty();
        if errors.is_empty() {
            tracing::info!(target: "trellis::up::net", bridge = %self.cfg.bridge, "host network removed");
        }
        errors
    }

    /// The configuration this network was created with.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The namespaces currently on this network, in the order they were added.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }
}

impl Drop for HostNetwork {
    fn drop(&mut self) {
        for error in self.teardown() {
            tracing::error!(target: "trellis::up::net", %error, "tearing down the host network; `trellis down` removes what is left");
        }
    }
}

/// Fails if an address on a host interface overlaps the configured subnet: routes to the
/// namespaces would be ambiguous.
fn check_subnet_free(cfg: &NetConfig) -> Result<(), NetError> {
    let listing = ip(&["-4", "-o", "addr", "show"])?;
    for (interface, address, len) in parse_addresses(&listing) {
        if overlaps(address, len, cfg.subnet, cfg.prefix_len) {
            return Err(NetError::SubnetInUse {
                subnet: cfg.cidr(),
                address: format!("{address}/{len}"),
                interface,
            });
        }
    }
    Ok(())
}

/// `(interface, address, prefix length)` of each line of `ip -4 -o addr show`, e.g.
/// `2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\ ...`.
pub(crate) fn parse_addresses(listing: &str) -> Vec<(String, Ipv4Addr, u8)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let interface = words.nth(1)?.trim_end_matches(':');
            let interface = interface.split('@').next()?.to_owned();
            let cidr = words.skip_while(|w| *w != "inet").nth(1)?;
            let (address, len) = cidr.split_once('/')?;
            Some((interface, address.parse().ok()?, len.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_accept_bridge_traffic_and_are_marked() {
        let rules = host_rules(&NetConfig::default());
        let text: Vec<String> = rules.iter().map(HostRule::describe).collect();
        assert_eq!(
            text,
            [
                "-A FORWARD -i trellis0 -o trellis0 -m comment --comment trellis:trellis -j ACCEPT",
                "-A INPUT -i trellis0 -m comment --comment trellis:trellis -j ACCEPT",
            ]
        );
        assert_eq!(rules[1].args("-I")[..3], ["-I", "INPUT", "1"]);
        assert_eq!(rules[1].args("-D")[..3], ["-D", "INPUT", "-i"]);
    }

    #[test]
    fn addresses_are_read_from_ip_addr_show() {
        let listing = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
                       4: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever\n\
                       7: veth1@if2    inet 172.17.0.1/16 scope global veth1\n\
                       garbage\n";
        assert_eq!(
            parse_addresses(listing),
            [
                ("lo".to_owned(), Ipv4Addr::new(127, 0, 0, 1), 8),
                ("eth0".to_owned(), Ipv4Addr::new(10, 0, 0, 5), 24),
                ("veth1".to_owned(), Ipv4Addr::new(172, 17, 0, 1), 16),
            ]
        );
    }
}
