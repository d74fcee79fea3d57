//! Configuration from files: load a directory (or files) into a mesh and a runtime, and
//! watch it so a saved change is picked up within the debounce interval.
//! Watching is [`trellis_config::watch`].

use std::path::PathBuf;

use trellis_config::load::LoadOptions;
use trellis_config::snapshot::{Snapshot, SnapshotError, snapshot};
use trellis_model::Mesh;

use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};

/// Why a configuration was refused; the previous one (if any) keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading, parsing or analyzing failed (the analyzer's diagnostics are inside).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The mesh compiled but the proxy could not prepare it.
    #[error("the proxy cannot use this configuration: {0}")]
    Runtime(#[from] RuntimeError),
}

impl LoadError {
    /// One line per finding, errors first, for logs and `/config_dump`.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Snapshot(SnapshotError::Invalid { diagnostics, .. }) => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            other => vec![other.to_string()],
        }
    }
}

/// A loaded configuration, ready to serve.
pub struct Loaded {
    /// The compiled mesh (kept for `/config_dump`).
    pub mesh: Mesh,
    /// The proxy's prepared view of it.
    pub runtime: Runtime,
    /// Resources read.
    pub resources: usize,
    /// Warnings the analyzer reported (errors refuse the configuration).
    pub warnings: Vec<String>,
}

impl Loaded {
    /// Nothing: what a proxy serves before its control plane has sent anything.
    pub fn empty() -> Loaded {
        Loaded {
            mesh: Mesh::default(),
            runtime: Runtime::default(),
            resources: 0,
            warnings: Vec::new(),
        }
    }
}

/// Loads, analyzes and compiles `paths`, then prepares the runtime.
pub fn load(
    paths: &[PathBuf],
    load: &LoadOptions,
    runtime: &RuntimeOptions,
) -> Result<Loaded, LoadError> {
    let Snapshot {
        mesh,
        diagnostics,
        resources,
    } = snapshot(paths, load)?;
    let rt = Runtime::build(&mesh, runtime)?;
    Ok(Loaded {
        mesh,
        runtime: rt,
        resources,
        warnings: diagnostics.iter().map(ToString::to_string).collect(),
    })
}
