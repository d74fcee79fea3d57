//! One accepted configuration, ready to serve: the mesh and every shared resource encoded
//! once, so a push to two hundred proxies encodes each service once, not two hundred times.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use trellis_model::Mesh;
use trellis_xds::resources::{Encoded, encode_endpoints, encode_gateway, encode_service};

/// An accepted configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one per accepted configuration; `0` is the empty mesh before the first.
    pub version: u64,
    /// When it was accepted (push and convergence latencies are measured from here).
    pub created: Instant,
    /// The same, as wall-clock time for status pages.
    pub created_at: SystemTime,
    /// The compiled mesh.
    pub mesh: Arc<Mesh>,
    /// Resources read to build it.
    pub resources: usize,
    /// Encoded services, endpoints and gateways.
    pub cache: Cache,
}

impl Snapshot {
    /// The empty mesh served before the first configuration is accepted.
    pub fn empty() -> Snapshot {
        Snapshot::new(0, Mesh::default(), 0, None)
    }

    /// Encodes `mesh` as version `version`, reusing what `previous` already encoded for
    /// services that did not change.
    pub fn new(
        version: u64,
        mesh: Mesh,
        resources: usize,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let cache = Cache::build(&mesh, previous.map(|p| (&*p.mesh, &p.cache)));
        Snapshot {
            version,
            created: Instant::now(),
            created_at: SystemTime::now(),
            mesh: Arc::new(mesh),
            resources,
            cache,
        }
    }

    /// The version as the xDS `system_version_info`.
    pub fn version_info(&self) -> String {
        format!("v{}", self.version)
    }
}

/// Shared encoded resources, by name.
#[derive(Debug, Default)]
pub struct Cache {
    /// Service configurations by host.
    pub services: HashMap<String, Arc<Encoded>>,
    /// Service endpoints by host.
    pub endpoints: HashMap<String, Arc<Encoded>>,
    /// Gateways by `namespace/name`.
    pub gateways: HashMap<String, Arc<Encoded>>,
}

impl Cache {
    fn build(mesh: &Mesh, previous: Option<(&Mesh, &Cache)>) -> Cache {
        let mut cache = Cache::default();
        for s in &mesh.services {
            // An unchanged service reuses its encoding: an endpoint edit in a mesh of a
            // thousand services re-encodes one service, not a thousand.
            let old = previous.and_then(|(m, c)| {
                let before = m.service(&s.host)?;
                Some((before, c))
            });
            let (config, endpoints) = match old {
                Some((before, c)) if before == s => (
                    c.services.get(&s.host).cloned(),
                    c.endpoints.get(&s.host).cloned(),
                ),
                Some((before, c)) if before.endpoints == s.endpoints => {
                    (None, c.endpoints.get(&s.host).cloned())
                }
                Some((before, c)) if same_config(before, s) => {
                    (c.services.get(&s.host).cloned(), None)
                }
                _ => (None, None),
            };
            cache.services.insert(
                s.host.clone(),
                config.unwrap_or_else(|| Arc::new(encode_service(s))),
            );
            cache.endpoints.insert(
                s.host.clone(),
                endpoints.unwrap_or_else(|| Arc::new(encode_endpoints(s))),
            );
        }
        for g in &mesh.gateways {
            let e = encode_gateway(g);
            cache.gateways.insert(e.name.to_string(), Arc::new(e));
        }
        cache
    }
}

/// Whether two services differ only in their endpoints.
fn same_config(a: &trellis_model::Service, b: &trellis_model::Service) -> bool {
    let strip = |s: &trellis_model::Service| trellis_model::Service {
        endpoints: Vec::new(),
        ..s.clone()
    };
    strip(a) == strip(b)
}
