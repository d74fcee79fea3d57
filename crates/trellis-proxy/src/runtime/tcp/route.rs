//! TCP and TLS routes of one service port, compiled for per-connection matching: the
//! conditions that depend only on the proxy's own identity (port, source namespace and
//! labels, gateway) are decided at build time, so a connection only checks its destination
//! IP against precomputed subnets and, for TLS, its SNI against the route's hosts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use trellis_model::{Destination, L4Match, Service, TlsMatch, WeightedDestination, host_matches};

use super::super::{BackendSet, RuntimeError, backend_set};
use crate::route::MESH_GATEWAY;
use crate::runtime::Backend;
use crate::tcp::TcpProxyOptions;

/// Who the proxy is, for the parts of a match that name the calling workload.
pub(super) struct Caller<'a> {
    /// The client workload's namespace (`RuntimeOptions::client_namespace`).
    pub namespace: &'a str,
}

/// An IP network, `addr/len`; a bare IP is a /32 (or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Cidr> {
        let (ip, len) = match text.split_once('/') {
            Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?),
            None => {
                let ip = text.parse::<IpAddr>().ok()?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Cidr { addr: ip, len })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(n.to_bits()), u128::from(i.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let len = u32::from(self.len);
        if len == 0 {
            return true;
        }
        let shift = bits - len;
        (net >> shift) == (ip >> shift)
    }
}

/// One match of a route after the build-time checks: only the destination subnets remain
/// (empty: any destination IP).
#[derive(Debug)]
struct Condition {
    subnets: Box<[Cidr]>,
}

impl Condition {
    fn matches(&self, ip: IpAddr) -> bool {
        self.subnets.is_empty() || self.subnets.iter().any(|c| c.contains(ip))
    }
}

/// Compiles a match's subnets. A subnet that does not parse matches nothing (the
/// configuration compiler rejects such configs, so this is a defensive fail-closed).
fn condition(subnets: &[String], route: &str) -> Option<Condition> {
    let parsed: Vec<Cidr> = subnets.iter().filter_map(|s| Cidr::parse(s)).collect();
    if parsed.len() < subnets.len() && parsed.is_empty() {
        tracing::warn!(%route, ?subnets, "no destination subnet parses; match never applies");
        return None;
    }
    Some(Condition {
        subnets: parsed.into_boxed_slice(),
    })
}

/// Whether the caller-dependent parts of a match hold for this proxy. The runtime does
/// not know the proxy workload's labels yet, so a match requiring source labels never
/// applies (the same rule the HTTP route matcher uses).
fn caller_matches(
    port: Option<u16>,
    gateways: &[String],
    source_namespace: Option<&str>,
    source_labels_empty: bool,
    service_port: u16,
    caller: &Caller<'_>,
) -> bool {
    port.is_none_or(|p| p == service_port)
        && (gateways.is_empty() || gateways.iter().any(|g| g == MESH_GATEWAY))
        && source_namespace.is_none_or(|ns| ns == caller.namespace)
        && source_labels_empty
}

/// A destination of a TCP/TLS route with everything a connection needs prepared.
#[derive(Debug)]
pub struct L4Destination {
    /// The destination service's host.
    pub host: Arc<str>,
    /// The backend for the destination's (subset, port); `None` when the service or port
    /// is unknown (the connection is closed with `UH`).
    pub backend: Option<Arc<Backend>>,
    /// Connect timeout, idle timeout and keepalive from the backend's `connectionPool`.
    pub options: TcpProxyOptions,
    weight: u32,
}

/// A route of one service port: conditions (any of them), SNI hosts for TLS routes, and
/// weighted destinations.
#[derive(Debug)]
pub struct L4Route {
    /// The resource the route came from, for logs.
    pub name: Arc<str>,
    /// Empty: the route always applies (after build-time checks).
    conditions: Box<[Condition]>,
    /// TLS only: SNI patterns (wildcards allowed); empty means any SNI.
    sni: Box<[Box<str>]>,
    destinations: Box<[L4Destination]>,
    total_weight: u64,
}

impl L4Route {
    /// Whether a connection to `ip` (with `sni` for TLS routes) takes this route.
    pub fn matches(&self, ip: IpAddr, sni: Option<&str>) -> bool {
        let sni_ok = self.sni.is_empty()
            || sni.is_some_and(|name| self.sni.iter().any(|p| host_matches(p, name)));
        sni_ok && (self.conditions.is_empty() || self.conditions.iter().any(|c| c.matches(ip)))
    }

    /// Picks a destination in proportion to the weights, from a random value; `None`
    /// when every weight is zero.
    pub fn pick(&self, random: u64) -> Option<&L4Destination> {
        if self.total_weight == 0 {
            return None;
        }
        let mut point = random % self.total_weight;
        for d in self.destinations.iter() {
            let w = u64::from(d.weight);
            if point < w {
                return Some(d);
            }
            point -= w;
        }
        None
    }

    /// The destinations in configuration order.
    pub fn destinations(&self) -> &[L4Destination] {
        &self.destinations
    }
}

/// Shared state while building the routes of every service port.
pub(super) struct Builder<'m, 'c> {
    pub by_fqdn: &'c HashMap<&'m str, &'m Service>,
    pub sets: &'c mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
    pub caller: Caller<'c>,
}

impl<'m> Builder<'m, '_> {
    /// The TCP routes of `service` that apply to `port`. Routes whose every match is ruled
    /// out at build time are dropped; when none remain (or the service has none) the port
    /// gets one route to the service itself, as Istio does.
    pub fn tcp_routes(
        &mut self,
        service: &'m Service,
        port: u16,
    ) -> Result<Box<[L4Route]>, RuntimeError> {
        let mut out = Vec::new();
        for r in &service.tcp_routes {
            let name = r.origin.to_string();
            let Some(conditions) = self.conditions(&r.matches, port, &name, |m: &L4Match| {
                (
                    m.port,
                    &m.gateways,
                    m.source_namespace.as_deref(),
                    m.source_labels.is_empty(),
                    &m.destination_subnets,
                )
            }) else {
                continue;
            };
            out.push(self.route(name, conditions, Box::new([]), &r.destinations, port)?);
        }
        if out.is_empty() {
            let itself = [WeightedDestination::new(
                Destination::new(service.host.clone()),
                1,
            )];
            out.push(self.route(
                format!("default {}", service.host),
                Vec::new(),
                Box::new([]),
                &itself,
                port,
            )?);
        }
        Ok(out.into_boxed_slice())
    }

    /// The TLS routes of `service` that apply to `port`; empty when none do (SNI routing
    /// is then not used and TLS is proxied like opaque TCP).
    pub fn tls_routes(
        &mut self,
        service: &'m Service,
        port: u16,
    ) -> Result<Box<[L4Route]>, RuntimeError> {
        let mut out = Vec::new();
        for r in &service.tls_routes {
            let name = r.origin.to_string();
            // A TLS route's SNI hosts live in its matches; routes keep any-of semantics by
            // compiling one route per surviving match.
            for m in &r.matches {
                let Some(conditions) =
                    self.conditions(std::slice::from_ref(m), port, &name, |m: &TlsMatch| {
                        (
                            m.port,
                            &m.gateways,
                            m.source_namespace.as_deref(),
                            m.source_labels.is_empty(),
                            &m.destination_subnets,
                        )
                    })
                else {
                    continue;
                };
                let sni = m
                    .sni_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase().into_boxed_str())
                    .collect();
                out.push(self.route(name.clone(), conditions, sni, &r.destinations, port)?);
            }
            if r.matches.is_empty() {
                out.push(self.route(name, Vec::new(), Box::new([]), &r.destinations, port)?);
            }
        }
        Ok(out.into_boxed_slice())
    }

    /// The surviving conditions of `matches` for `port`; `None` when the route has matches
    /// and none survives. `Some(empty)` means "always".
    fn conditions<M>(
        &self,
        matches: &[M],
        port: u16,
        name: &str,
        parts: impl Fn(&M) -> (Option<u16>, &Vec<String>, Option<&str>, bool, &Vec<String>),
    ) -> Option<Vec<Condition>> {
        if matches.is_empty() {
            return Some(Vec::new());
        }
        let mut out = Vec::new();
        for m in matches {
            let (p, gateways, ns, labels_empty, subnets) = parts(m);
            if !caller_matches(p, gateways, ns, labels_empty, port, &self.caller) {
                continue;
            }
            let Some(c) = condition(subnets, name) else {
                continue;
            };
            if c.subnets.is_empty() {
                // An unconditional match makes the whole route unconditional.
                return Some(Vec::new());
            }
            out.push(c);
        }
        (!out.is_empty()).then_some(out)
    }

    fn route(
        &mut self,
        name: String,
        conditions: Vec<Condition>,
        sni: Box<[Box<str>]>,
        destinations: &[WeightedDestination],
        port: u16,
    ) -> Result<L4Route, RuntimeError> {
        let mut out = Vec::with_capacity(destinations.len());
        for wd in destinations {
            out.push(self.destination(wd, port)?);
        }
        let total_weight = out.iter().map(|d| u64::from(d.weight)).sum();
        Ok(L4Route {
            name: name.into(),
            conditions: conditions.into_boxed_slice(),
            sni,
            destinations: out.into_boxed_slice(),
            total_weight,
        })
    }

    /// Resolves a destination's backend: its explicit port, else the port the
    /// connection came in on when the destination service has it, else its only port.
    fn destination(
        &mut self,
        wd: &WeightedDestination,
        port: u16,
    ) -> Result<L4Destination, RuntimeError> {
        let d = &wd.destination;
        let Some(service) = self.by_fqdn.get(d.host.as_str()).copied() else {
            return Ok(L4Destination {
                host: d.host.as_str().into(),
                backend: None,
                options: TcpProxyOptions::default(),
                weight: wd.weight,
            });
        };
        let resolved = d
            .port
            .or_else(|| service.port(port).map(|p| p.number))
            .or_else(|| service.only_http_port().map(|p| p.number));
        let set = backend_set(service, d, self.sets)?;
        let backend = set.for_port(resolved, None).cloned();
        let policy = service.effective_policy(d.subset.as_deref(), resolved);
        Ok(L4Destination {
            host: service.host.as_str().into(),
            backend,
            options: TcpProxyOptions::from_pool(&policy.connection_pool),
            weight: wd.weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_contain_what_they_should() {
        let c = Cidr::parse("10.1.0.0/16").expect("parses");
        assert!(c.contains("10.1.200.3".parse().expect("ip")));
        assert!(!c.contains("10.2.0.1".parse().expect("ip")));
        assert!(!c.contains("::1".parse().expect("ip")));
        let one = Cidr::parse("127.0.0.77").expect("parses");
        assert!(one.contains("127.0.0.77".parse().expect("ip")));
        assert!(!one.contains("127.0.0.78".parse().expect("ip")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("parses")
                .contains("8.8.8.8".parse().expect("ip"))
        );
        assert!(
            Cidr::parse("fd00::/8")
                .expect("parses")
                .contains("fd12::1".parse().expect("ip"))
        );
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("nonsense"), None);
    }

    #[test]
    fn caller_checks() {
        let caller = Caller { namespace: "shop" };
        let none: Vec<String> = Vec::new();
        let mesh = vec!["mesh".to_owned()];
        let gw = vec!["infra/edge".to_owned()];
        assert!(caller_matches(None, &none, None, true, 80, &caller));
        assert!(caller_matches(
            Some(80),
            &mesh,
            Some("shop"),
            true,
            80,
            &caller
        ));
        assert!(!caller_matches(Some(81), &none, None, true, 80, &caller));
        assert!(!caller_matches(None, &gw, None, true, 80, &caller));
        assert!(!caller_matches(
            None,
            &none,
            Some("other"),
            true,
            80,
            &caller
        ));
        assert!(!caller_matches(None, &none, None, false, 80, &caller));
    }
}
