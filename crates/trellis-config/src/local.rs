//! What `trellis up` (the local-mesh launcher) needs from the configuration: the LocalWorkloads
//! to start, and, once it has started replicas at addresses of its choosing, synthetic Pods for
//! them.
//!
//! Why Pods: Services, Endpoints, DestinationRule subsets, metrics labels and identities already
//! work for pods through discovery. A started replica described as a running, ready Pod with the
//! workload's labels, service account and container port is selected exactly as a pod is, so
//! none of that needs a second implementation for local processes.

use crate::load::{LoadOptions, load_str};
use crate::resources::trellis::LocalWorkload;
use crate::resources::{Resource, Spec};
use crate::snapshot::{Snapshot, SnapshotError, snapshot_with};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Label every synthetic Pod carries, naming the LocalWorkload it is a replica of (Istio's
/// `destination_workload` is a pod's owner; this keeps the owner findable from the pod).
pub const LOCAL_WORKLOAD_LABEL: &str = "trellis.dev/local-workload";

/// The `image` of synthetic Pods' container: a Pod needs one, a local process has none.
pub const LOCAL_IMAGE: &str = "trellis.dev/local-process";

/// Name of the one container of a synthetic Pod.
pub const CONTAINER_NAME: &str = "app";

/// One started replica of a LocalWorkload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    pub namespace: String,
    pub workload: String,
    /// 0-based replica index, below the workload's `replicas`.
    pub replica: u32,
    /// Where the replica (its sidecar's inbound side) can be reached.
    pub address: IpAddr,
}

/// Every LocalWorkload in `resources`, in input order: what the launcher starts.
pub fn local_workloads(
    resources: &[Resource],
) -> impl Iterator<Item = (&Resource, &LocalWorkload)> {
    resources.iter().filter_map(|r| match &r.spec {
        Spec::LocalWorkload(w) => Some((r, &**w)),
        _ => None,
    })
}

/// The directory a LocalWorkload's process runs in: `workingDir` when absolute, else resolved
/// against the directory of the file that defines the workload. `None` when `workingDir` is
/// unset (the launcher's choice).
pub fn working_dir(r: &Resource, w: &LocalWorkload) -> Option<PathBuf> {
    let dir = Path::new(w.working_dir.as_deref().filter(|d| !d.is_empty())?);
    if dir.is_absolute() {
        return Some(dir.to_path_buf());
    }
    let base = Path::new(&*r.origin.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Some(base.join(dir))
}

/// Synthetic Pod resources for placed replicas, so Services select them exactly as they select
/// pods. Each Pod is named `<workload>-<replica>`, carries the workload's labels plus
/// [`LOCAL_WORKLOAD_LABEL`], its service account, one container [`CONTAINER_NAME`] with the
/// workload's command, arguments, environment, working directory and `containerPort`, and a
/// status that makes it running and ready at `address`.
///
/// Placements are ignored when they name no LocalWorkload in `resources`, a replica index at or
/// beyond the workload's `replicas`, or a replica already placed (the first placement wins), so
/// the result never holds two Pods of one name.
pub fn pods_for(resources: &[Resource], placements: &[Placement]) -> Vec<Resource> {
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for p in placements {
        let Some((r, w)) = local_workloads(resources)
            .find(|(r, _)| r.namespace == p.namespace && r.name == p.workload)
        else {
            continue;
        };
        if p.replica >= w.replicas() || !placed.insert((&p.namespace, &p.workload, p.replica)) {
            continue;
        }
        let name = format!("{}-{}", r.name, p.replica);
        let text = pod_document(r, w, &name, p.address).to_string();
        // JSON is YAML, so the Pod goes through the same loader (and validation) as a file.
        let file = format!("local:{}/{name}", r.namespace);
        let opts = LoadOptions {
            default_namespace: r.namespace.clone(),
        };
        out.extend(load_str(&file, &text, &opts).resources);
    }
    out
}

/// Load, analyze and compile `paths` together with Pods for the `placements` (see
/// [`pods_for`]): the model the control plane serves while `trellis up` runs.
pub fn snapshot_placed(
    paths: &[PathBuf],
    opts: &LoadOptions,
    placements: &[Placement],
) -> Result<Snapshot, SnapshotError> {
    snapshot_with(paths, opts, |resources| pods_for(resources, placements))
}

/// The Pod for one replica, as a JSON document.
fn pod_document(r: &Resource, w: &LocalWorkload, name: &str, address: IpAddr) -> Value {
    let mut labels = w.labels.clone();
    labels.insert(LOCAL_WORKLOAD_LABEL.to_owned(), r.name.clone());
    let env: Vec<Value> = w
        .env
        .vars()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let ports: Vec<Value> = w
        .port()
        .map(|p| json!({"containerPort": p}))
        .into_iter()
        .collect();
    let mut container = json!({
        "name": CONTAINER_NAME,
        "image": LOCAL_IMAGE,
        "command": [w.command],
        "args": w.args,
        "env": env,
        "ports": ports,
    });
    if let (Some(dir), Some(obj)) = (
        w.working_dir.as_deref().filter(|d| !d.is_empty()),
        container.as_object_mut(),
    ) {
        obj.insert("workingDir".into(), Value::from(dir));
    }
    let ip = address.to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": r.namespace, "labels": labels},
        "spec": {
            "serviceAccountName": w.service_account(),
            "containers": [container],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

#[cfg(test)]
mod tests;
