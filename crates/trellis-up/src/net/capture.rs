//! Transparent capture: `nat` rules inside a namespace sending the application's TCP
//! through its sidecar, as Istio's istio-init does in a pod.
//!
//! ```text
//! PREROUTING -p tcp -> TRELLIS_INBOUND:  excluded ports RETURN; else TRELLIS_IN_REDIRECT (-> :15006)
//! OUTPUT -p tcp     -> TRELLIS_OUTPUT:   proxy uid RETURN; -o lo RETURN; -d 127.0.0.1 RETURN;
//!                                        else TRELLIS_REDIRECT (-> :15001)
//! ```
//!
//! The proxy recovers where a connection was headed with `SO_ORIGINAL_DST`.
//!
//! Departures from istio-init, and why:
//! - Everything the proxy (uid [`Capture::proxy_uid`]) sends is left alone, including to
//!   the pod's own address. Istio sends the proxy's own-address traffic back through
//!   inbound and breaks the resulting loop by connecting to the application from
//!   127.0.0.6; Trellis' inbound listener connects to the application at the original
//!   destination (the pod's address) from the pod's address, which that rule would loop.
//! - Like Istio, traffic leaving through `lo` is not captured for the application either:
//!   an application calling itself (127.0.0.1, or its own pod address, which Linux routes
//!   through `lo`) reaches itself directly, without sidecar.
//! - IPv4 only (no `ip6tables`): namespaces get no IPv6 address besides `::1`.
//! - No gid match: the proxy is told apart by uid alone.

use super::command::iptables_in;
use super::error::NetError;
use super::namespace::Namespace;

/// Chain for connections arriving at the namespace (from `PREROUTING`).
const INBOUND: &str = "TRELLIS_INBOUND";
/// Chain redirecting to the inbound port.
const IN_REDIRECT: &str = "TRELLIS_IN_REDIRECT";
/// Chain for connections opened inside the namespace (from `OUTPUT`).
const OUTPUT: &str = "TRELLIS_OUTPUT";
/// Chain redirecting to the outbound port.
const REDIRECT: &str = "TRELLIS_REDIRECT";

/// What transparent capture sends where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capture {
    /// The uid the sidecar runs as; its traffic is never captured. Default 1337.
    pub proxy_uid: u32,
    /// Where outbound TCP is redirected: the sidecar's outbound listener. Default 15001.
    pub outbound_port: u16,
    /// Where inbound TCP is redirected: the sidecar's inbound listener. Default 15006.
    pub inbound_port: u16,
    /// Inbound destination ports reaching the namespace directly, uncaptured. Default:
    /// the sidecar's admin 15000, HBONE 15008, 15020 (Istio's merged metrics), health
    /// 15021 and Envoy-style metrics 15090, so probes and scrapers reach the proxy itself.
    pub exclude_inbound_ports: Vec<u16>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            proxy_uid: 1337,
            outbound_port: 15001,
            inbound_port: 15006,
            exclude_inbound_ports: vec![15000, 15008, 15020, 15021, 15090],
        }
    }
}

/// The `iptables` arguments (after `iptables -w 5`) installing `capture`, in order: the
/// chains, their rules, and last the jumps from `PREROUTING` and `OUTPUT`, so no
/// connection meets a half-built chain.
pub fn capture_rules(capture: &Capture) -> Vec<Vec<String>> {
    let mut rules: Vec<Vec<String>> = Vec::new();
    let mut rule = |args: &[&str]| {
        let mut all = vec!["-t".to_owned(), "nat".to_owned()];
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        rules.push(all);
    };
    for chain in [INBOUND, IN_REDIRECT, OUTPUT, REDIRECT] {
        rule(&["-N", chain]);
    }
    let inbound_port = capture.inbound_port.to_string();
    let outbound_port = capture.outbound_port.to_string();
    let uid = capture.proxy_uid.to_string();
    rule(&[
        "-A",
        IN_REDIRECT,
        "-p",
        "tcp",
        "-j",
        "REDIRECT",
        "--to-ports",
        &inbound_port,
    ]);
    rule(&[
        "-A",
        REDIRECT,
        "-p",
        "tcp",
        "-j",
        "REDIRECT",
        "--to-ports",
        &outbound_port,
    ]);

    let mut excluded = capture.exclude_inbound_ports.clone();
    excluded.sort_unstable();
    excluded.dedup();
    for port in excluded {
        rule(&[
            "-A",
            INBOUND,
            "-p",
            "tcp",
            "--dport",
            &port.to_string(),
            "-j",
            "RETURN",
        ]);
    }
    rule(&["-A", INBOUND, "-p", "tcp", "-j", IN_REDIRECT]);

    rule(&[
        "-A",
        OUTPUT,
        "-m",
        "owner",
        "--uid-owner",
        &uid,
        "-j",
        "RETURN",
    ]);
    rule(&["-A", OUTPUT, "-o", "lo", "-j", "RETURN"]);
    rule(&["-A", OUTPUT, "-d", "127.0.0.1/32", "-j", "RETURN"]);
    rule(&["-A", OUTPUT, "-j", REDIRECT]);

    rule(&["-A", "PREROUTING", "-p", "tcp", "-j", INBOUND]);
    rule(&["-A", "OUTPUT", "-p", "tcp", "-j", OUTPUT]);
    rules
}

/// Installs the rules of [`capture_rules`] in the `nat` table of `ns`, one `iptables`
/// call per rule so an error names the rule that failed. Meant to run once, right after
/// the namespace is created and before anything runs in it; a second call fails (the
/// chains exist).
pub fn install_capture(ns: &Namespace, capture: &Capture) -> Result<(), NetError> {
    for rule in capture_rules(capture) {
        iptables_in(&ns.name, &rule)?;
    }
    tracing::debug!(
        target: "trellis::up::net",
        namespace = %ns.name,
        outbound = capture.outbound_port,
        inbound = capture.inbound_port,
        proxy_uid = capture.proxy_uid,
        "transparent capture installed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_follow_istio_init() {
        let text: Vec<String> = capture_rules(&Capture::default())
            .iter()
            .map(|rule| rule.join(" "))
            .collect();
        let expected = [
            "-t nat -N TRELLIS_INBOUND",
            "-t nat -N TRELLIS_IN_REDIRECT",
            "-t nat -N TRELLIS_OUTPUT",
            "-t nat -N TRELLIS_REDIRECT",
            "-t nat -A TRELLIS_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
            "-t nat -A TRELLIS_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
            "-t nat -A TRELLIS_INBOUND -p tcp --dport 15000 -j RETURN",
            "-t nat -A TRELLIS_INBOUND -p tcp --dport 15008 -j RETURN",
            "-t nat -A TRELLIS_INBOUND -p tcp --dport 15020 -j RETURN",
            "-t nat -A TRELLIS_INBOUND -p tcp --dport 15021 -j RETURN",
            "-t nat -A TRELLIS_INBOUND -p tcp --dport 15090 -j RETURN",
            "-t nat -A TRELLIS_INBOUND -p tcp -j TRELLIS_IN_REDIRECT",
            "-t nat -A TRELLIS_OUTPUT -m owner --uid-owner 1337 -j RETURN",
            "-t nat -A TRELLIS_OUTPUT -o lo -j RETURN",
            "-t nat -A TRELLIS_OUTPUT -d 127.0.0.1/32 -j RETURN",
            "-t nat -A TRELLIS_OUTPUT -j TRELLIS_REDIRECT",
            "-t nat -A PREROUTING -p tcp -j TRELLIS_INBOUND",
            "-t nat -A OUTPUT -p tcp -j TRELLIS_OUTPUT",
        ];
        assert_eq!(text, expected);
    }

    #[test]
    fn ports_uid_and_exclusions_are_taken_from_the_capture() {
        let capture = Capture {
            proxy_uid: 999,
            outbound_port: 7001,
            inbound_port: 7006,
            exclude_inbound_ports: vec![22, 22, 9090],
        };
        let text: Vec<String> = capture_rules(&capture)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert!(
            text.contains(
                &"-t nat -A TRELLIS_REDIRECT -p tcp -j REDIRECT --to-ports 7001".to_owned()
            )
        );
        assert!(text.contains(
            &"-t nat -A TRELLIS_IN_REDIRECT -p tcp -j REDIRECT --to-ports 7006".to_owned()
        ));
        assert!(
            text.contains(
                &"-t nat -A TRELLIS_OUTPUT -m owner --uid-owner 999 -j RETURN".to_owned()
            )
        );
        let returns: Vec<&String> = text.iter().filter(|r| r.contains("--dport")).collect();
        assert_eq!(
            returns,
            [
                "-t nat -A TRELLIS_INBOUND -p tcp --dport 22 -j RETURN",
                "-t nat -A TRELLIS_INBOUND -p tcp --dport 9090 -j RETURN",
            ]
        );
        let none = Capture {
            exclude_inbound_ports: Vec::new(),
            ..Capture::default()
        };
        assert!(
            !capture_rules(&none)
                .iter()
                .any(|r| r.contains(&"--dport".to_owned()))
        );
    }
}
