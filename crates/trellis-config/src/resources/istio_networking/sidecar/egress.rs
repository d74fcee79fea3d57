//! Sidecar egress listeners: the services a workload may reach, and the rules on ports, unix
//! sockets and `namespace/dnsName` hosts.

use super::super::gateway::names::{
    UNIX_PREFIX, check_namespaced_host, check_port, check_unix_address, warn,
};
use super::{CaptureMode, Sidecar, SidecarPort, check_bind_ip};
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// A listener for traffic leaving the workload, and the services it may reach.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioEgressListener {
    pub port: Option<SidecarPort>,
    pub bind: Option<String>,
    pub capture_mode: CaptureMode,
    /// `namespace/dnsName`: `istio-system/*`, `./*`, `*/api.example.com`, `~/*`.
    pub hosts: Vec<String>,
}

impl Sidecar {
    pub(super) fn validate_egress(&self, cx: &mut Cx) {
        let last = self.egress.len().saturating_sub(1);
        let mut catch_all = false;
        let mut ports: Vec<u32> = Vec::new();
        let mut sockets: Vec<&str> = Vec::new();
        cx.field("egress", |cx| {
            for (i, l) in self.egress.iter().enumerate() {
                cx.index(i, |cx| {
                    match &l.port {
                        None if catch_all => cx.error("only one egress listener may omit `port`"),
                        None if i != last => cx.error("the egress listener without `port` (the catch-all) must be the last one"),
                        None => catch_all = true,
                        Some(port) => {
                            let bind = l.bind.as_deref().unwrap_or_default();
                            if port.number == 0 {
                                if sockets.contains(&bind) {
                                    cx.error_at("bind", format!("unix socket {bind:?} is used by another egress listener"));
                                }
                                sockets.push(bind);
                            } else {
                                if ports.contains(&port.number) {
                                    cx.error_at("port.number", format!("port {} is used by another egress listener", port.number));
                                }
                                ports.push(port.number);
                            }
                        }
                    }
                    l.validate(cx);
                });
            }
        });
    }
}

impl Validate for IstioEgressListener {
    fn validate(&self, cx: &mut Cx) {
        let bind = self.bind.as_deref().unwrap_or_default();
        if let Some(port) = &self.port {
            cx.field("port", |cx| port.validate_common(cx));
            if port.number == 0 {
                match bind.strip_prefix(UNIX_PREFIX) {
                    None => cx.error_at(
                        "port.number",
                        "port 0 is only allowed with a unix:// bind address",
                    ),
                    Some(path) => {
                        if let Err(e) = check_unix_address(path) {
                            cx.error_at("bind", e);
                        }
                    }
                }
                if self.capture_mode == CaptureMode::Iptables {
                    cx.error_at(
                        "captureMode",
                        "unix socket listeners need captureMode DEFAULT or NONE",
                    );
                }
            } else {
                cx.field("port", |cx| check_port(cx, "number", port.number));
                check_bind_ip(cx, Some(bind));
            }
        }
        if self.hosts.is_empty() {
            cx.error_at(
                "hosts",
                "an egress listener needs at least one host, e.g. \"./*\" or \"istio-system/*\"",
            );
        }
        cx.field("hosts", |cx| {
            for (i, h) in self.hosts.iter().enumerate() {
                for e in check_namespaced_host(h, false) {
                    cx.index(i, |cx| cx.error(e));
                }
            }
        });
        self.warn_duplicate_hosts(cx);
    }
}

impl IstioEgressListener {
    /// Istio warns about hosts another entry (`ns/*`, `*/*`) already covers.
    fn warn_duplicate_hosts(&self, cx: &mut Cx) {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let Some((ns, name)) = h.split_once('/').filter(|(ns, _)| !ns.starts_with('~')) else {
                continue;
            };
            let same_ns: Vec<&str> = seen
                .iter()
                .filter(|(n, _)| *n == ns)
                .map(|(_, s)| *s)
                .collect();
            let dup = if name == "*" {
                !same_ns.is_empty()
            } else {
                same_ns.contains(&name) || same_ns.contains(&"*")
            };
            if dup {
                cx.field("hosts", |cx| {
                    cx.index(i, |cx| {
                        warn(cx, "", format!("egress host {h:?} is already covered"))
                    })
                });
            }
            seen.push((ns, name));
        }
        if seen.contains(&("*", "*")) && seen.iter().any(|(ns, _)| *ns != "*") {
            warn(
                cx,
                "hosts",
                "`*/*` selects every service; the other hosts add nothing",
            );
        }
    }
}
