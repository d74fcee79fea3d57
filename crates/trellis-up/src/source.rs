//! The mesh `trellis up` serves: the configuration directory, plus a Pod for every replica it
//! runs (so Services select them as they select pods in a cluster), plus — in transparent
//! mode — a virtual IP for every in-mesh service without one (so `http://inventory:8080`
//! resolves, through each namespace's hosts file, to an address the capture rules send to the
//! sidecar).
//!
//! Each compile also records what the launcher must reconcile: the replicas to run with their
//! addresses, the gateway proxies, and the hosts entries per namespace.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use trellis_config::load::LoadOptions;
use trellis_config::local::{Placement, pods_for};
use trellis_config::snapshot::snapshot_with;
use trellis_control::{Compiled, MeshSource, Refused};
use trellis_model::{Mesh, Resolution, ServiceLocation};

use crate::plan::{self, AddressBook, GatewaySpec, InstanceSpec};

/// What the last accepted compile asks the launcher to run.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Every replica with its address.
    pub instances: Vec<(InstanceSpec, Ipv4Addr)>,
    /// Gateway proxies.
    pub gateways: Vec<GatewaySpec>,
    /// Hosts file entries by namespace (transparent mode).
    pub hosts: BTreeMap<String, Vec<(IpAddr, Vec<String>)>>,
}

/// The configuration directory plus what `trellis up` runs.
pub struct UpSource {
    paths: Vec<PathBuf>,
    load: LoadOptions,
    instances: Mutex<AddressBook>,
    /// Virtual IPs for services without one (transparent mode only).
    vips: Option<Mutex<VipBook>>,
    desired: RwLock<Arc<Desired>>,
}

impl UpSource {
    /// Reads `paths`; replicas get addresses from `instances`; with `vips`, services without
    /// an address get one from that range.
    pub fn new(
        paths: Vec<PathBuf>,
        load: LoadOptions,
        instances: AddressBook,
        vips: Option<(Ipv4Addr, u8)>,
    ) -> UpSource {
        UpSource {
            paths,
            load,
            instances: Mutex::new(instances),
            vips: vips.map(|(base, len)| Mutex::new(VipBook::new(base, len))),
            desired: RwLock::new(Arc::new(Desired::default())),
        }
    }

    /// What the last accepted configuration asks for.
    pub fn desired(&self) -> Arc<Desired> {
        Arc::clone(&self.desired.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl MeshSource for UpSource {
    fn paths(&self) -> Vec<PathBuf> {
        self.paths.clone()
    }

    fn compile(&self) -> Result<Compiled, Refused> {
        let mut placed: Vec<(InstanceSpec, Ipv4Addr)> = Vec::new();
        // Addresses are taken from a copy, kept only if the configuration is accepted: a
        // refused edit must not move the replicas that keep running.
        let mut book = self
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let snap = snapshot_with(&self.paths, &self.load, |resources| {
            let specs = plan::instances(resources);
            book.retain(|k| specs.iter().any(|s| &s.key() == k));
            for s in specs {
                if let Some(addr) = book.address(&s.key()) {
                    placed.push((s, addr));
                } else {
                    tracing::error!(instance = %s.name(), "no address left for this replica; it is not started");
                }
            }
            let placements: Vec<Placement> = placed
                .iter()
                .map(|(s, addr)| Placement {
                    namespace: s.namespace.clone(),
                    workload: s.workload.clone(),
                    replica: s.replica,
                    address: IpAddr::V4(*addr),
                })
                .collect();
            pods_for(resources, &placements)
        })
        .map_err(Refused::from)?;
        *self.instances.lock().unwrap_or_else(|e| e.into_inner()) = book;
        let mut mesh = snap.mesh;
        let hosts = match &self.vips {
            Some(vips) => {
                let mut vips = vips.lock().unwrap_or_else(|e| e.into_inner());
                vips.assign(&mut mesh);
                let namespaces: Vec<&str> =
                    placed.iter().map(|(s, _)| s.namespace.as_str()).collect();
                namespaces
                    .into_iter()
                    .map(|ns| (ns.to_owned(), hosts_entries(&mesh, ns)))
                    .collect()
            }
            None => BTreeMap::new(),
        };
        let desired = Desired {
            instances: placed,
            gateways: plan::gateways(&mesh),
            hosts,
        };
        *self.desired.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(desired);
        Ok(Compiled {
            mesh,
            resources: snap.resources,
            warnings: snap.diagnostics.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Stable virtual IPs for services (like Istio's DNS proxy auto-allocation): a host keeps its
/// address across reloads.
#[derive(Debug)]
struct VipBook {
    base: u32,
    size: u32,
    by_host: BTreeMap<String, Ipv4Addr>,
}

impl VipBook {
    fn new(base: Ipv4Addr, prefix_len: u8) -> VipBook {
        VipBook {
            base: u32::from(base),
            size: 1u32 << (32u8.saturating_sub(prefix_len).min(24)),
            by_host: BTreeMap::new(),
        }
    }

    /// Gives every in-mesh, statically resolved service without an address one.
    fn assign(&mut self, mesh: &mut Mesh) {
        for s in &mut mesh.services {
            let wanted = s.addresses.is_empty()
                && !s.host.starts_with('*')
                && s.location == ServiceLocation::MeshInternal
                && s.resolution == Resolution::Static;
            if !wanted {
                continue;
            }
            let addr = match self.by_host.get(&s.host) {
                Some(a) => *a,
                None => {
                    let taken: std::collections::BTreeSet<Ipv4Addr> =
                        self.by_host.values().copied().collect();
                    let Some(a) = (1..self.size.saturating_sub(1))
                        .map(|o| Ipv4Addr::from(self.base.wrapping_add(o)))
                        .find(|a| !taken.contains(a))
                    else {
                        tracing::error!(host = %s.host, "no virtual IP left for this service");
                        continue;
                    };
                    self.by_host.insert(s.host.clone(), a);
                    a
                }
            };
            s.addresses.push(addr.to_string());
        }
    }
}

/// The hosts file of a workload in `namespace`: every service's address under the names a
/// pod in that namespace may use (`name` only for services of its own namespace, then
/// `name.ns`, `name.ns.svc` and the FQDN; a ServiceEntry host under itself).
fn hosts_entries(mesh: &Mesh, namespace: &str) -> Vec<(IpAddr, Vec<String>)> {
    let resolver = mesh.host_resolver();
    let mut out = Vec::new();
    for s in mesh.visible_to(namespace, &trellis_model::Labels::new()) {
        let Some(addr) = s.addresses.iter().find_map(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        let names = match resolver.split_service_fqdn(&s.host) {
            Some((name, ns)) => {
                let mut n = Vec::new();
                if ns == namespace {
                    n.push(name.to_owned());
                }
                n.push(format!("{name}.{ns}"));
                n.push(format!("{name}.{ns}.svc"));
                n.push(s.host.clone());
                n
            }
            None => vec![s.host.clone()],
        };
        out.push((addr, names));
    }
    out
}
