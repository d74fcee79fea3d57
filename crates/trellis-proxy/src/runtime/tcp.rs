//! Connection targets: which service port an address (a service VIP or an endpoint
//! `ip:port`) belongs to, with the port's detection plan and its TCP and TLS routes
//! compiled. Listeners that know where a connection was headed (transparent capture,
//! VIP listeners) look the address up here once per connection.

mod route;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use trellis_model::{Mesh, Service};

use super::{BackendSet, Runtime, RuntimeError, RuntimeOptions};
use crate::detect::DetectPlan;

pub use route::{L4Destination, L4Route};

/// One service port as a connection target.
#[derive(Debug)]
pub struct PortTarget {
    service: Arc<str>,
    port: u16,
    plan: DetectPlan,
    tcp: Box<[L4Route]>,
    tls: Box<[L4Route]>,
}

impl PortTarget {
    /// The service's host.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The service port number.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How to detect the protocol of connections to this port (from its declared
    /// protocol, precomputed).
    pub fn plan(&self) -> DetectPlan {
        self.plan
    }

    /// The first TLS route matching a connection to `ip` with `sni`; `None` when the port
    /// has no TLS route for it (the connection is then routed as opaque TCP).
    pub fn tls_route(&self, ip: IpAddr, sni: &str) -> Option<&L4Route> {
        self.tls.iter().find(|r| r.matches(ip, Some(sni)))
    }

    /// The first TCP route matching a connection to `ip`; `None` when the service has TCP
    /// routes for this port and none matches (no route: the connection is closed).
    pub fn tcp_route(&self, ip: IpAddr) -> Option<&L4Route> {
        self.tcp.iter().find(|r| r.matches(ip, None))
    }
}

/// Every service port reachable by address, and the loopback VIPs to listen on when
/// running without traffic capture.
#[derive(Debug, Default)]
pub struct TcpTargets {
    by_addr: HashMap<SocketAddr, usize>,
    ports: Box<[PortTarget]>,
    loopback_vips: Box<[SocketAddr]>,
}

impl TcpTargets {
    /// Indexes every port of every non-wildcard service under each of its VIPs
    /// (`Service.addresses` entries that are IPs; CIDR ranges are skipped) and each of its
    /// endpoints' `ip:targetPort`. VIPs win over endpoint addresses, and the first service
    /// (in mesh order) wins a shared address.
    pub(super) fn build<'m>(
        mesh: &'m Mesh,
        opts: &RuntimeOptions,
        by_fqdn: &HashMap<&'m str, &'m Service>,
        sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
    ) -> Result<TcpTargets, RuntimeError> {
        let mut builder = route::Builder {
            by_fqdn,
            sets,
            caller: route::Caller {
                namespace: &opts.client_namespace,
            },
        };
        let services: Vec<&Service> = mesh
            .services
            .iter()
            .filter(|s| !s.host.starts_with('*'))
            .collect();
        let mut ports = Vec::new();
        // (service index, port index) -> target index, for the address passes below.
        let mut first = Vec::with_capacity(services.len());
        for service in &services {
            first.push(ports.len());
            for port in &service.ports {
                ports.push(PortTarget {
                    service: service.host.as_str().into(),
                    port: port.number,
                    plan: DetectPlan::for_protocol(port.protocol),
                    tcp: builder.tcp_routes(service, port.number)?,
                    tls: builder.tls_routes(service, port.number)?,
                });
            }
        }
        let mut by_addr = HashMap::new();
        let mut loopback_vips = Vec::new();
        for (service, &base) in services.iter().zip(&first) {
            for ip in service
                .addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                for (i, port) in service.ports.iter().enumerate() {
                    let addr = SocketAddr::new(ip, port.number);
                    if by_addr.insert(addr, base + i).is_none() && ip.is_loopback() {
                        loopback_vips.push(addr);
                    }
                }
            }
        }
        for (service, &base) in services.iter().zip(&first) {
            for ep in &service.endpoints {
                let Ok(ip) = ep.address.parse::<IpAddr>() else {
                    continue;
                };
                for (i, port) in service.ports.iter().enumerate() {
                    by_addr
                        .entry(SocketAddr::new(ip, ep.target_port(port)))
                        .or_insert(base + i);
                }
            }
        }
        loopback_vips.sort();
        Ok(TcpTargets {
            by_addr,
            ports: ports.into_boxed_slice(),
            loopback_vips: loopback_vips.into_boxed_slice(),
        })
    }

    /// The service port a connection to `addr` is for, if any.
    pub fn lookup(&self, addr: SocketAddr) -> Option<&PortTarget> {
        let i = *self.by_addr.get(&addr)?;
        self.ports.get(i)
    }

    /// Every `loopback VIP:port` of every service, sorted: the addresses a proxy running
    /// without iptables binds so clients can dial service VIPs directly.
    pub fn loopback_vips(&self) -> &[SocketAddr] {
        &self.loopback_vips
    }
}

impl Runtime {
    /// Connection targets by address (VIPs and endpoints) with their TCP/TLS routes.
    pub fn tcp_targets(&self) -> &TcpTargets {
        &self.tcp
    }
}
