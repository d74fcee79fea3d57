//! What `trellis up` runs: one instance per replica of every LocalWorkload, each with a stable
//! address, and one gateway proxy per gateway selector.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use trellis_config::Resource;
use trellis_config::local::{local_workloads, working_dir};
use trellis_model::{Labels, Mesh};

/// How the app's traffic reaches its sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `HTTP_PROXY` points the app at its sidecar; each replica has its own loopback
    /// address (127.77.x.y) where its sidecar listens. Any user, any machine.
    Explicit,
    /// Each replica in its own network namespace with iptables capture, as in a pod:
    /// unmodified apps are meshed. Needs root.
    Transparent,
}

impl Mode {
    /// How the table names it.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Explicit => "explicit mode: apps reach their sidecars through HTTP_PROXY",
            Mode::Transparent => {
                "transparent mode: network namespaces with iptables capture, as in a pod"
            }
        }
    }
}

/// One replica of a LocalWorkload: what to run and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Namespace of the LocalWorkload.
    pub namespace: String,
    /// LocalWorkload name.
    pub workload: String,
    /// Replica index.
    pub replica: u32,
    /// Service account (the SPIFFE identity).
    pub service_account: String,
    /// Labels (Services, subsets and policies select on them).
    pub labels: Labels,
    /// Program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment (on top of what `trellis up` sets).
    pub env: BTreeMap<String, String>,
    /// The port the program listens on.
    pub port: u16,
    /// Working directory, resolved against the YAML file's directory.
    pub working_dir: Option<PathBuf>,
}

impl InstanceSpec {
    /// `<workload>-<replica>`: the pod-like name in tables, metrics and node ids.
    pub fn name(&self) -> String {
        format!("{}-{}", self.workload, self.replica)
    }

    /// The key an instance keeps its address under across reloads.
    pub fn key(&self) -> InstanceKey {
        (self.namespace.clone(), self.workload.clone(), self.replica)
    }
}

/// `(namespace, workload, replica)`.
pub type InstanceKey = (String, String, u32);

/// Every replica the resources ask for, in a stable order.
pub fn instances(resources: &[Resource]) -> Vec<InstanceSpec> {
    let mut out = Vec::new();
    for (r, w) in local_workloads(resources) {
        let Some(port) = w.port() else { continue };
        for replica in 0..w.replicas() {
            out.push(InstanceSpec {
                namespace: r.namespace.clone(),
                workload: r.name.clone(),
                replica,
                service_account: w.service_account().to_owned(),
                labels: w.labels.clone(),
                command: w.command.clone(),
                args: w.args.clone(),
                env: w
                    .env
                    .vars()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                port,
                working_dir: working_dir(r, w),
            });
        }
    }
    out.sort_by_key(InstanceSpec::key);
    out
}

/// Gives every instance an address that stays the same while it exists, so endpoints, hosts
/// files and the table do not reshuffle when a replica is added.
#[derive(Debug, Clone)]
pub struct AddressBook {
    base: Ipv4Addr,
    /// Host bits of the range (16 for a /16).
    bits: u8,
    /// Offsets that are not handed out (network, host side, broadcast).
    reserved: Vec<u32>,
    by_key: BTreeMap<InstanceKey, Ipv4Addr>,
}

impl AddressBook {
    /// Addresses from `base/prefix_len`, skipping the network address, `reserved` and the
    /// broadcast address.
    pub fn new(base: Ipv4Addr, prefix_len: u8, reserved: &[Ipv4Addr]) -> AddressBook {
        let bits = 32u8.saturating_sub(prefix_len).min(24);
        let b = u32::from(base);
        AddressBook {
            base,
            bits,
            reserved: reserved
                .iter()
                .map(|a| u32::from(*a).wrapping_sub(b))
                .collect(),
            by_key: BTreeMap::new(),
        }
    }

    /// The address of `key`, allocating the lowest free one for a new key. `None` when the
    /// range is full.
    pub fn address(&mut self, key: &InstanceKey) -> Option<Ipv4Addr> {
        if let Some(a) = self.by_key.get(key) {
            return Some(*a);
        }
        let size = 1u32 << self.bits;
        let base = u32::from(self.base);
        let taken: std::collections::BTreeSet<u32> = self
            .by_key
            .values()
            .map(|a| u32::from(*a).wrapping_sub(base))
            .collect();
        let offset = (1..size.saturating_sub(1))
            .find(|o| !taken.contains(o) && !self.reserved.contains(o))?;
        let addr = Ipv4Addr::from(base.wrapping_add(offset));
        self.by_key.insert(key.clone(), addr);
        Some(addr)
    }

    /// Forgets every key `keep` refuses: their addresses may be reused.
    pub fn retain(&mut self, keep: impl Fn(&InstanceKey) -> bool) {
        self.by_key.retain(|k, _| keep(k));
    }

    /// Forgets `key`: its address may be reused later.
    pub fn release(&mut self, key: &InstanceKey) {
        self.by_key.remove(key);
    }
}

/// A gateway proxy to run: the labels it carries (what the gateways' selectors match) and who
/// it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpec {
    /// Workload name (`istio-ingressgateway`, `<gateway>-gateway`).
    pub name: String,
    /// Namespace it runs in.
    pub namespace: String,
    /// Its labels.
    pub labels: Labels,
    /// The gateways it serves (`namespace/name`), for the table.
    pub serves: Vec<String>,
    /// The ports it listens on.
    pub ports: Vec<u16>,
}

/// One gateway proxy per distinct selector of the mesh's gateways. A workload in the
/// configuration that the selector matches (the Deployment an Istio user writes for the
/// ingress gateway) lends its name and namespace.
pub fn gateways(mesh: &Mesh) -> Vec<GatewaySpec> {
    let mut by_selector: BTreeMap<Labels, GatewaySpec> = BTreeMap::new();
    for g in &mesh.gateways {
        let labels = if g.selector.is_empty() {
            Labels::from([("istio".to_owned(), "ingressgateway".to_owned())])
        } else {
            g.selector.clone()
        };
        let spec = by_selector.entry(labels.clone()).or_insert_with(|| {
            let owner = mesh.workloads.iter().find(|w| w.is_selected_by(&labels));
            let (name, namespace) = match owner {
                Some(w) => (w.name.clone(), w.namespace.clone()),
                None => match labels.get("gateway.networking.k8s.io/gateway-name") {
                    Some(n) => (format!("{n}-gateway"), g.namespace.clone()),
                    None => ("istio-ingressgateway".to_owned(), "istio-system".to_owned()),
                },
            };
            GatewaySpec {
                name,
                namespace,
                labels,
                serves: Vec::new(),
                ports: Vec::new(),
            }
        });
        spec.serves.push(format!("{}/{}", g.namespace, g.name));
        for s in &g.servers {
            if !spec.ports.contains(&s.port) {
                spec.ports.push(s.port);
            }
        }
    }
    by_selector
        .into_values()
        .map(|mut g| {
            g.ports.sort_unstable();
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stable_and_reused() {
        let mut book = AddressBook::new(
            Ipv4Addr::new(10, 77, 0, 0),
            16,
            &[Ipv4Addr::new(10, 77, 0, 1)],
        );
        let key = |w: &str, r| ("shop".to_owned(), w.to_owned(), r);
        assert_eq!(
            book.address(&key("a", 0)),
            Some(Ipv4Addr::new(10, 77, 0, 2))
        );
        assert_eq!(
            book.address(&key("b", 0)),
            Some(Ipv4Addr::new(10, 77, 0, 3))
        );
        assert_eq!(
            book.address(&key("a", 0)),
            Some(Ipv4Addr::new(10, 77, 0, 2))
        );
        book.release(&key("a", 0));
        assert_eq!(
            book.address(&key("c", 0)),
            Some(Ipv4Addr::new(10, 77, 0, 2))
        );
        let mut tiny = AddressBook::new(Ipv4Addr::new(127, 77, 0, 0), 30, &[]);
        assert!(tiny.address(&key("x", 0)).is_some());
        assert!(tiny.address(&key("x", 1)).is_some());
        assert_eq!(tiny.address(&key("x", 2)), None);
    }
}
