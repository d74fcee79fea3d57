//! Client networks as Linkerd policy writes them (`cidr` + `except`), the NetworkAuthentication
//! kind, and a small CIDR parser built on `std::net`.

use crate::validate::{Cx, Validate};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;

/// NetworkAuthentication spec: clients are authenticated by source address.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkAuthentication {
    pub networks: Vec<Network>,
}

/// An IP network with optional holes (`except`), e.g. the pod CIDR minus one node.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Network {
    /// `10.0.0.0/8`, `fd00::/8` or a single address.
    pub cidr: String,
    pub except: Vec<String>,
}

/// A parsed IP network. A bare address is a network of one host, as Linkerd accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    /// Parse `addr/len` or a bare address. Host bits may be set (`10.1.2.3/8`), as in Linkerd.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("invalid network {s:?}: {addr_text:?} is not an IP address; expected e.g. \"10.0.0.0/8\" or \"fd00::/8\"")
        })?;
        let max = Self::width(addr);
        let prefix_len = match len_text {
            None => max,
            Some(l) => {
                let n = if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) {
                    l.parse::<u8>().ok()
                } else {
                    None
                };
                match n {
                    Some(n) if n <= max => n,
                    _ => {
                        return Err(format!(
                            "invalid network {s:?}: prefix length must be 0 to {max}"
                        ));
                    }
                }
            }
        };
        Ok(Cidr { addr, prefix_len })
    }

    fn width(addr: IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    fn bits(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    /// The network part of `addr` under this prefix length.
    fn masked(&self, addr: IpAddr) -> u128 {
        let width = u32::from(Self::width(self.addr));
        let host_bits = width - u32::from(self.prefix_len);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        Self::bits(addr) & mask
    }

    /// Is every address of `other` inside this network? Networks of different families never are.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && other.prefix_len >= self.prefix_len
            && self.masked(self.addr) == self.masked(other.addr)
    }

    /// Is `addr` inside this network?
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        self.contains(&Cidr {
            addr,
            prefix_len: Self::width(addr),
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Validate for NetworkAuthentication {
    fn validate(&self, cx: &mut Cx) {
        if self.networks.is_empty() {
            cx.error_at(
                "networks",
                "at least one network must be specified, e.g. `- cidr: 10.0.0.0/8`",
            );
        }
        cx.list("networks", &self.networks);
    }
}

impl Validate for Network {
    fn validate(&self, cx: &mut Cx) {
        if self.cidr.is_empty() {
            cx.require("cidr", false);
            return;
        }
        let net = match Cidr::parse(&self.cidr) {
            Ok(n) => Some(n),
            Err(e) => {
                cx.error_at("cidr", e);
                None
            }
        };
        cx.field("except", |cx| {
            for (i, text) in self.except.iter().enumerate() {
                let hole = match Cidr::parse(text) {
                    Ok(h) => h,
                    Err(e) => {
                        cx.index(i, |cx| cx.error(e));
                        continue;
                    }
                };
                let Some(net) = net else { continue };
                if hole.contains(&net) {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "exception {text:?} covers the whole network {:?}; nothing is left",
                            self.cidr
                        ))
                    });
                } else if !net.contains(&hole) {
                    cx.index(i, |cx| {
                        cx.error(format!(
                            "exception {text:?} is not inside the network {:?}",
                            self.cidr
                        ))
                    });
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::load::{LoadOptions, load_str};
    use crate::resources::Spec;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_networks_and_addresses() {
        assert_eq!(cidr("10.0.0.0/8").prefix_len, 8);
        assert_eq!(cidr("10.1.2.3").prefix_len, 32);
        assert_eq!(cidr("fd00::/8").prefix_len, 8);
        assert_eq!(cidr("::1").prefix_len, 128);
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "host",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn containment() {
        assert!(cidr("10.0.0.0/8").contains(&cidr("10.1.0.0/16")));
        assert!(cidr("10.0.0.0/8").contains(&cidr("10.255.255.255")));
        assert!(!cidr("10.0.0.0/8").contains(&cidr("11.0.0.0/16")));
        assert!(!cidr("10.1.0.0/16").contains(&cidr("10.0.0.0/8")));
        assert!(cidr("0.0.0.0/0").contains(&cidr("192.168.1.1")));
        assert!(!cidr("0.0.0.0/0").contains(&cidr("::1")));
        assert!(cidr("::/0").contains(&cidr("fd00::1")));
        assert!(
            cidr("fd00::/8").contains_addr("fd12::1".parse().unwrap_or(IpAddr::from([0u8; 4])))
        );
        assert!(
            cidr("10.1.2.3/8").contains(&cidr("10.9.9.9")),
            "host bits are ignored"
        );
    }

    fn load(spec: &str) -> (Option<NetworkAuthentication>, Vec<Diagnostic>) {
        let text = format!(
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata:\n  name: cluster\nspec:\n{spec}"
        );
        let loaded = load_str("test.yaml", &text, &LoadOptions::default());
        let na = loaded.resources.into_iter().find_map(|r| match r.spec {
            Spec::NetworkAuthentication(n) => Some(*n),
            _ => None,
        });
        (na, loaded.diagnostics)
    }

    #[test]
    fn network_authentication_loads() {
        let (na, diags) = load(
            "  networks:\n  - cidr: 10.0.0.0/8\n    except: [10.0.1.0/24, 10.0.2.1]\n  - cidr: fd00::/8\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let na = na.expect("loaded");
        assert_eq!(na.networks[0].except, vec!["10.0.1.0/24", "10.0.2.1"]);
        assert_eq!(na.networks[1].cidr, "fd00::/8");
    }

    #[test]
    fn network_authentication_rules() {
        let (_, diags) = load("  networks: []\n");
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("at least one network")),
            "{diags:?}"
        );
        let (_, diags) = load("  networks:\n  - cidr: 10.0.0.0/33\n  - except: [10.0.0.1]\n");
        assert!(
            diags
                .iter()
                .any(|d| d.line == 7 && d.message.contains("prefix length")),
            "{diags:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.message.contains("`spec.networks[1].cidr`")),
            "{diags:?}"
        );
        let (_, diags) = load(
            "  networks:\n  - cidr: 10.0.0.0/16\n    except:\n    - 192.168.0.0/16\n    - 10.0.0.0/8\n    - nope\n",
        );
        let at = |line: u32, text: &str| {
            diags
                .iter()
                .any(|d| d.line == line && d.message.contains(text))
        };
        assert!(at(9, "not inside"), "{diags:?}");
        assert!(at(10, "covers the whole network"), "{diags:?}");
        assert!(at(11, "not an IP address"), "{diags:?}");
    }
}
