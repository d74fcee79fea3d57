//! Where the mesh comes from: a source loads and compiles the configuration, and names the
//! paths whose changes mean "compile again".
//!
//! A directory on a laptop is [`DirectorySource`]; `trellis up` wraps it to add the local
//! workloads it started. A source that refuses a configuration (any analyzer error) leaves
//! the last good mesh serving.

use std::path::PathBuf;

use trellis_config::load::LoadOptions;
use trellis_config::snapshot::{SnapshotError, snapshot};
use trellis_model::Mesh;

/// A compiled configuration.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// The mesh.
    pub mesh: Mesh,
    /// Resources read.
    pub resources: usize,
    /// Warnings the analyzer reported (errors refuse the configuration).
    pub warnings: Vec<String>,
}

/// A refused configuration: every finding, errors first, one line each.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration refused: {}", .diagnostics.first().map(String::as_str).unwrap_or("no details"))]
pub struct Refused {
    /// The analyzer's findings (`Error [IST0101] (VirtualService shop/orders) file:line:col …`).
    pub diagnostics: Vec<String>,
}

impl From<SnapshotError> for Refused {
    fn from(e: SnapshotError) -> Refused {
        let diagnostics = match e {
            SnapshotError::Invalid { diagnostics, .. } => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            other => vec![other.to_string()],
        };
        Refused { diagnostics }
    }
}

/// Produces the mesh the control plane serves.
pub trait MeshSource: Send + Sync + 'static {
    /// Paths to follow: a change under any of them triggers [`MeshSource::compile`].
    fn paths(&self) -> Vec<PathBuf>;

    /// Loads and compiles the configuration. Runs on a blocking thread.
    fn compile(&self) -> Result<Compiled, Refused>;
}

/// Configuration files and directories (read recursively), as `trellis analyze` reads them.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    paths: Vec<PathBuf>,
    load: LoadOptions,
}

impl DirectorySource {
    /// Reads `paths`; resources without a namespace go to `load.default_namespace`.
    pub fn new(paths: Vec<PathBuf>, load: LoadOptions) -> DirectorySource {
        DirectorySource { paths, load }
    }
}

impl MeshSource for DirectorySource {
    fn paths(&self) -> Vec<PathBuf> {
        self.paths.clone()
    }

    fn compile(&self) -> Result<Compiled, Refused> {
        let snap = snapshot(&self.paths, &self.load)?;
        Ok(Compiled {
            mesh: snap.mesh,
            resources: snap.resources,
            warnings: snap.diagnostics.iter().map(ToString::to_string).collect(),
        })
    }
}
