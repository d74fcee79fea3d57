//! Trellis configuration: the resource types people already write for Istio, the Gateway API,
//! Linkerd, SMI and Kubernetes; loading them from YAML/JSON with exact source positions; the
//! analyzer; and compilation into the mesh model (`trellis-model`).
#![forbid(unsafe_code)]

pub mod analyze;
pub mod compile;
pub mod diag;
pub mod load;
pub mod local;
pub mod report;
pub mod resources;
pub mod snapshot;
pub mod validate;
pub mod watch;
pub mod yaml;

pub use diag::{Code, Diagnostic, Pos, Severity};
pub use load::{LoadError, LoadOptions, Loaded, load_bytes, load_paths, load_str};
pub use resources::{Kind, Resource, Spec};

/// Everything `trellis analyze` does to untrusted bytes: load, analyze. The fuzz target and the
/// corpus test call this; it must never panic or hang, whatever the input.
pub fn check_untrusted(bytes: &[u8]) -> Vec<Diagnostic> {
    let loaded = load_bytes("fuzz.yaml", bytes, &LoadOptions::default());
    analyze::analyze(&loaded)
}
