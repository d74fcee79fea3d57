//! A configuration snapshot: everything in a set of files, checked and compiled into the mesh
//! model, or refused as a whole.
//!
//! This is what a running proxy or control plane loads when its configuration directory changes:
//! a snapshot with any error-severity diagnostic is rejected, so the caller keeps serving the last
//! good model instead of a half-valid one.

use crate::analyze::analyze_and_compile;
use crate::diag::{Diagnostic, Severity};
use crate::load::{LoadError, LoadOptions, load_paths};
use crate::resources::Resource;
use std::path::PathBuf;
use trellis_model::Mesh;

/// A valid configuration, compiled.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub mesh: Mesh,
    /// Warnings and infos (no errors: a snapshot with errors is refused).
    pub diagnostics: Vec<Diagnostic>,
    /// Resources read from the paths (not counting those `extra` added, see [`snapshot_with`]).
    pub resources: usize,
}

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The paths themselves could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The configuration has errors; `diagnostics` holds all findings, errors first.
    #[error("configuration rejected: {} error(s), first: {}", .errors, .diagnostics.first().map(ToString::to_string).unwrap_or_default())]
    Invalid {
        errors: usize,
        diagnostics: Vec<Diagnostic>,
    },
}

/// Load, analyze and compile `paths`. The compile options' defaults match `trellis analyze`.
pub fn snapshot(paths: &[PathBuf], opts: &LoadOptions) -> Result<Snapshot, SnapshotError> {
    snapshot_with(paths, opts, |_| Vec::new())
}

/// [`snapshot`], with resources that are not in any file analyzed and compiled along: `extra`
/// sees what was loaded and returns the additions (`trellis up` adds Pods for the replicas it
/// started, see [`crate::local::pods_for`]). The analysis covers both, and any error refuses the
/// snapshot.
pub fn snapshot_with(
    paths: &[PathBuf],
    opts: &LoadOptions,
    extra: impl FnOnce(&[Resource]) -> Vec<Resource>,
) -> Result<Snapshot, SnapshotError> {
    let mut loaded = load_paths(paths, opts)?;
    let read = loaded.resources.len();
    let added = extra(&loaded.resources);
    loaded.resources.extend(added);
    let (mut diagnostics, compiled) = analyze_and_compile(&loaded);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        // Errors first, each group in file order, so logs lead with what must be fixed.
        diagnostics.sort_by_key(|d| std::cmp::Reverse(d.severity));
        return Err(SnapshotError::Invalid {
            errors,
            diagnostics,
        });
    }
    Ok(Snapshot {
        mesh: compiled.mesh,
        diagnostics,
        resources: read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "trellis-snap-{}-{}",
            std::process::id(),
            files.len()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
        dir
    }

    #[test]
    fn a_valid_directory_becomes_a_mesh() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
        let snap = snapshot(&[root], &LoadOptions::default()).expect("shop is valid");
        let orders = snap
            .mesh
            .service("orders.shop.svc.cluster.local")
            .expect("orders");
        assert_eq!(orders.http_routes.len(), 2);
        assert_eq!(orders.subsets.len(), 2);
        assert!(snap.resources > 20);
    }

    #[test]
    fn an_error_anywhere_refuses_the_whole_snapshot() {
        let dir = dir_with(&[
            (
                "good.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n",
            ),
            (
                "bad.yaml",
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    timeout: soon\n",
            ),
        ]);
        let err =
            snapshot(std::slice::from_ref(&dir), &LoadOptions::default()).expect_err("invalid");
        std::fs::remove_dir_all(&dir).ok();
        match err {
            SnapshotError::Invalid {
                errors,
                diagnostics,
            } => {
                assert_eq!(errors, 1);
                assert_eq!(diagnostics[0].line, 8);
                assert!(diagnostics[0].message.contains("soon"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_missing_directory_is_a_load_error() {
        assert!(matches!(
            snapshot(&["/nonexistent/trellis".into()], &LoadOptions::default()),
            Err(SnapshotError::Load(_))
        ));
    }
}
