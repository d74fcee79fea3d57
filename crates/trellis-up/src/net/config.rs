//! [`NetConfig`]: the names and addresses of everything transparent mode creates, and
//! [`address`], the deterministic placement of replicas in the subnet.

use std::net::Ipv4Addr;

use super::error::NetError;

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub(crate) const MAX_INTERFACE_NAME: usize = 15;
/// Longest [`NetConfig::prefix`]: namespace names stay readable in `ip netns list`.
const MAX_PREFIX: usize = 24;
/// Longest [`NetConfig::veth_prefix`]: room for six digits and the `h`/`p` suffix.
const MAX_VETH_PREFIX: usize = 8;

/// Names and addresses of the host network of one `trellis up` run. Two runs (or a run
/// and the integration tests) coexist only with distinct prefixes, bridges and subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Start of every namespace name (`<prefix>-<label>`), of the hosts directories
    /// (`/etc/netns/<prefix>-<label>`) and of the firewall rule comments
    /// (`trellis:<prefix>`); default `trellis`. Lowercase letters, digits and `-`.
    pub prefix: String,
    /// Start of the host ends of veth pairs, `<veth_prefix><N>h` (the namespace end is
    /// created as `<veth_prefix><N>p`, then renamed `eth0`); default `trl`. At most 8
    /// lowercase letters or digits, so names fit Linux's 15 characters.
    pub veth_prefix: String,
    /// The bridge joining the namespaces to the host; default `trellis0`.
    pub bridge: String,
    /// Network address of the subnet; default `10.77.0.0`.
    pub subnet: Ipv4Addr,
    /// Length of the subnet's prefix, 8 to 30; default 16.
    pub prefix_len: u8,
    /// The host's address on the bridge, reachable from every namespace (control plane,
    /// gateway) and their default gateway; default `10.77.0.1`.
    pub host_ip: Ipv4Addr,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            prefix: "trellis".to_owned(),
            veth_prefix: "trl".to_owned(),
            bridge: "trellis0".to_owned(),
            subnet: Ipv4Addr::new(10, 77, 0, 0),
            prefix_len: 16,
            host_ip: Ipv4Addr::new(10, 77, 0, 1),
        }
    }
}

impl NetConfig {
    /// Checks names and addresses; the error names the field and what is wrong.
    pub fn validate(&self) -> Result<(), NetError> {
        let invalid = |text: String| Err(NetError::InvalidConfig(text));
        let name_ok = |name: &str, dash: bool| {
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || (dash && c == '-'))
        };
        if self.prefix.len() > MAX_PREFIX || !name_ok(&self.prefix, true) {
            return invalid(format!(
                "prefix {:?} must start with a lowercase letter, hold only lowercase letters, digits and '-', and be at most {MAX_PREFIX} characters",
                self.prefix
            ));
        }
        if self.veth_prefix.len() > MAX_VETH_PREFIX || !name_ok(&self.veth_prefix, false) {
            return invalid(format!(
                "veth_prefix {:?} must start with a lowercase letter, hold only lowercase letters and digits, and be at most {MAX_VETH_PREFIX} characters",
                self.veth_prefix
            ));
        }
        let bridge_ok = !self.bridge.is_empty()
            && self.bridge.len() <= MAX_INTERFACE_NAME
            && self
                .bridge
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !bridge_ok {
            return invalid(format!(
                "bridge {:?} must be 1 to {MAX_INTERFACE_NAME} letters, digits, '-', '_' or '.'",
                self.bridge
            ));
        }
        if !(8..=30).contains(&self.prefix_len) {
            return invalid(format!(
                "prefix_len {} must be between 8 and 30",
                self.prefix_len
            ));
        }
        let (network, broadcast) = self.bounds();
        if u32::from(self.subnet) != network {
            return invalid(format!(
                "subnet {}/{} has host bits set (the network address is {})",
                self.subnet,
                self.prefix_len,
                Ipv4Addr::from(network)
            ));
        }
        let host = u32::from(self.host_ip);
        if host <= network || host >= broadcast {
            return invalid(format!(
                "host_ip {} is not a host address of {}",
                self.host_ip,
                self.cidr()
            ));
        }
        Ok(())
    }

    /// The subnet as `a.b.c.d/len`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.subnet, self.prefix_len)
    }

    /// The comment marking this run's host firewall rules, `trellis:<prefix>`.
    pub(crate) fn rule_comment(&self) -> String {
        format!("trellis:{}", self.prefix)
    }

    /// Network and broadcast addresses of the subnet, as numbers.
    pub(crate) fn bounds(&self) -> (u32, u32) {
        let mask = mask(self.prefix_len);
        let network = u32::from(self.subnet) & mask;
        (network, network | !mask)
    }

    /// Why `ip` cannot be a namespace's address, if it cannot: outside the subnet, its
    /// network or broadcast address, or the host's.
    pub(crate) fn check_namespace_ip(&self, ip: Ipv4Addr) -> Result<(), NetError> {
        let (network, broadcast) = self.bounds();
        let n = u32::from(ip);
        let reason = if n & mask(self.prefix_len) != network {
            format!("it is outside {}", self.cidr())
        } else if n == network || n == broadcast {
            format!("it is the network or broadcast address of {}", self.cidr())
        } else if ip == self.host_ip {
            "it is the host's address on the bridge".to_owned()
        } else {
            return Ok(());
        };
        Err(NetError::InvalidAddress { ip, reason })
    }
}

/// The netmask of a prefix length, as a number.
pub(crate) fn mask(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        len => u32::MAX << (32 - u32::from(len.min(32))),
    }
}

/// Whether `a/a_len` and `b/b_len` share any address.
pub(crate) fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let shorter = mask(a_len.min(b_len));
    u32::from(a) & shorter == u32::from(b) & shorter
}

/// The `index`-th usable host address of the subnet (from 0), skipping the network
/// address, `host_ip` and the broadcast address; `None` past the end of the subnet or for
/// an invalid configuration. The launcher places replica N at `address(cfg, N)`, so the
/// same mesh gets the same addresses on every run.
pub fn address(cfg: &NetConfig, index: u32) -> Option<Ipv4Addr> {
    cfg.validate().ok()?;
    let (network, broadcast) = cfg.bounds();
    let mut candidate = network.checked_add(1)?.checked_add(index)?;
    if candidate >= u32::from(cfg.host_ip) {
        candidate = candidate.checked_add(1)?;
    }
    (candidate < broadcast).then(|| Ipv4Addr::from(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NetConfig {
        NetConfig {
            subnet: Ipv4Addr::new(192, 168, 9, 0),
            prefix_len: 29,
            host_ip: Ipv4Addr::new(192, 168, 9, 3),
            ..NetConfig::default()
        }
    }

    #[test]
    fn addresses_skip_network_host_and_broadcast() {
        let cfg = NetConfig::default();
        assert_eq!(address(&cfg, 0), Some(Ipv4Addr::new(10, 77, 0, 2)));
        assert_eq!(address(&cfg, 253), Some(Ipv4Addr::new(10, 77, 0, 255)));
        assert_eq!(address(&cfg, 254), Some(Ipv4Addr::new(10, 77, 1, 0)));
        assert_eq!(address(&cfg, 65532), Some(Ipv4Addr::new(10, 77, 255, 254)));
        assert_eq!(address(&cfg, 65533), None);
        assert_eq!(address(&cfg, u32::MAX), None);

        // .0 network, .1 .2 usable, .3 host, .4 .5 .6 usable, .7 broadcast.
        let all: Vec<_> = (0..6).map(|i| address(&small(), i)).collect();
        let expected = [1, 2, 4, 5, 6].map(|last| Some(Ipv4Addr::new(192, 168, 9, last)));
        assert_eq!(all[..5], expected);
        assert_eq!(all[5], None);
    }

    #[test]
    fn every_allocated_address_is_accepted_for_a_namespace() {
        let cfg = small();
        for index in 0..5 {
            let ip = address(&cfg, index).expect("usable address");
            assert!(cfg.check_namespace_ip(ip).is_ok(), "{ip}");
        }
        for bad in [
            [192, 168, 9, 0],
            [192, 168, 9, 3],
            [192, 168, 9, 7],
            [10, 0, 0, 1],
        ] {
            assert!(
                cfg.check_namespace_ip(Ipv4Addr::from(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn invalid_configurations_are_explained() {
        assert!(NetConfig::default().validate().is_ok());
        let cases = [
            (
                NetConfig {
                    prefix: "Trellis".into(),
                    ..NetConfig::default()
                },
                "prefix",
            ),
            (
                NetConfig {
                    prefix: "a".repeat(25),
                    ..NetConfig::default()
                },
                "prefix",
            ),
            (
                NetConfig {
                    veth_prefix: "trl-".into(),
                    ..NetConfig::default()
                },
                "veth_prefix",
            ),
            (
                NetConfig {
                    veth_prefix: "abcdefghi".into(),
                    ..NetConfig::default()
                },
                "veth_prefix",
            ),
            (
                NetConfig {
                    bridge: "a-very-long-bridge".into(),
                    ..NetConfig::default()
                },
                "bridge",
            ),
            (
                NetConfig {
                    prefix_len: 31,
                    ..NetConfig::default()
                },
                "prefix_len",
            ),
            (
                NetConfig {
                    subnet: Ipv4Addr::new(10, 77, 0, 1),
                    ..NetConfig::default()
                },
                "host bits",
            ),
            (
                NetConfig {
                    host_ip: Ipv4Addr::new(10, 78, 0, 1),
                    ..NetConfig::default()
                },
                "host_ip",
            ),
            (
                NetConfig {
                    host_ip: Ipv4Addr::new(10, 77, 255, 255),
                    ..NetConfig::default()
                },
                "host_ip",
            ),
        ];
        for (cfg, field) in cases {
            let error = cfg.validate().map_err(|e| e.to_string());
            assert!(
                error.as_ref().is_err_and(|text| text.contains(field)),
                "{cfg:?}: {error:?}"
            );
            assert_eq!(address(&cfg, 0), None);
        }
    }

    #[test]
    fn subnets_overlap_when_the_shorter_prefix_matches() {
        let ip = Ipv4Addr::new;
        assert!(overlaps(ip(10, 77, 0, 0), 16, ip(10, 77, 3, 4), 24));
        assert!(overlaps(ip(10, 0, 0, 1), 8, ip(10, 77, 0, 0), 16));
        assert!(!overlaps(ip(10, 78, 0, 0), 16, ip(10, 77, 0, 0), 16));
        assert!(!overlaps(ip(172, 17, 0, 1), 16, ip(10, 77, 0, 0), 16));
        assert_eq!(mask(16), 0xffff_0000);
        assert_eq!(mask(32), u32::MAX);
        assert_eq!(mask(0), 0);
    }
}
