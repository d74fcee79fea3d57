//! Gateway routes: what a gateway proxy serves on each of its ports.
//!
//! A gateway proxy runs the gateways whose selector matches its labels (Istio `Gateway`
//! `selector`, or the Gateway API Gateway it was deployed for). Each HTTP server port gets
//! a listener; a request is matched to the virtual host with the most specific host
//! pattern for its `Host` (exact beats `*.example.com` beats `*`), then routed by that
//! virtual host's routes exactly like a sidecar routes a service's, with `gateways`
//! conditions seeing the gateway's `namespace/name`.

use std::collections::HashMap;
use std::sync::Arc;

use trellis_model::{Labels, Mesh, Protocol, Service, host_match_rank};

use super::{BackendSet, RuntimeError, ServiceRuntime, finish_service};
use crate::route::split_authority;

/// The HTTP virtual hosts of the gateways one proxy serves, by port.
#[derive(Debug, Default)]
pub struct GatewayRoutes {
    ports: Box<[GatewayPort]>,
}

/// One listening port of a gateway proxy.
#[derive(Debug)]
pub struct GatewayPort {
    /// The port.
    pub port: u16,
    /// Its protocol (HTTP, HTTP2 or GRPC).
    pub protocol: Protocol,
    vhosts: Box<[VirtualHostRuntime]>,
}

#[derive(Debug)]
struct VirtualHostRuntime {
    hosts: Box<[String]>,
    /// `namespace/name` of the gateway, what route `gateways` conditions name.
    gateway: Arc<str>,
    routes: ServiceRuntime,
}

impl GatewayRoutes {
    /// Prepares every plaintext HTTP server of the gateways in `mesh` that select `labels`.
    /// Servers of other protocols, and servers with TLS settings (termination, passthrough,
    /// `httpsRedirect`), are skipped with a log line: TLS on gateways comes with certificates
    /// (see docs/configuration.md), and serving them in plaintext would be a silent downgrade.
    pub(super) fn build<'m>(
        mesh: &'m Mesh,
        labels: &Labels,
        by_fqdn: &HashMap<&str, &'m Service>,
        sets: &mut HashMap<(&'m str, Option<&'m str>), Arc<BackendSet>>,
    ) -> Result<GatewayRoutes, RuntimeError> {
        let mut ports: Vec<GatewayPort> = Vec::new();
        for gw in mesh.gateways.iter().filter(|g| g.selects(labels)) {
            let key: Arc<str> = format!("{}/{}", gw.namespace, gw.name).into();
            for server in &gw.servers {
                let http = matches!(
                    server.protocol,
                    Protocol::Http | Protocol::Http2 | Protocol::Grpc
                );
                if !http || server.tls.is_some() {
                    tracing::warn!(gateway = %key, port = server.port, protocol = ?server.protocol, "gateway server not served: only plaintext HTTP servers are served by this version");
                    continue;
                }
                if !ports.iter().any(|p| p.port == server.port) {
                    ports.push(GatewayPort {
                        port: server.port,
                        protocol: server.protocol,
                        vhosts: Box::new([]),
                    });
                }
            }
            for vh in &gw.virtual_hosts {
                let Some(port) = ports.iter_mut().find(|p| p.port == vh.port) else {
                    continue;
                };
                let owner = format!("{key}:{}", vh.port);
                let routes = finish_service(&owner, &vh.http_routes, by_fqdn, sets)?;
                let mut vhosts = std::mem::take(&mut port.vhosts).into_vec();
                vhosts.push(VirtualHostRuntime {
                    hosts: vh.hosts.clone().into_boxed_slice(),
                    gateway: Arc::clone(&key),
                    routes,
                });
                port.vhosts = vhosts.into_boxed_slice();
            }
        }
        ports.sort_by_key(|p| p.port);
        Ok(GatewayRoutes {
            ports: ports.into_boxed_slice(),
        })
    }

    /// The ports to listen on.
    pub fn ports(&self) -> &[GatewayPort] {
        &self.ports
    }

    /// The routes for a request to `authority` received on `port`, with the gateway's
    /// `namespace/name`; `None` when no virtual host admits the host (404 `NR`).
    pub fn lookup(&self, port: u16, authority: &str) -> Option<(&ServiceRuntime, &str)> {
        let p = self.ports.iter().find(|p| p.port == port)?;
        let (host, _) = split_authority(authority);
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        p.vhosts
            .iter()
            .filter_map(|vh| {
                let rank = vh
                    .hosts
                    .iter()
                    .filter_map(|pattern| host_match_rank(pattern, &host))
                    .max()?;
                Some((rank, vh))
            })
            // The first of equally specific virtual hosts wins (older bindings first).
            .rev()
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, vh)| (&vh.routes, &*vh.gateway))
    }
}
