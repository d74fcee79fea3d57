//! Trellis configuration: the resource types people already write for Istio, the Gateway API,
//! Linkerd, SMI and Kubernetes; loading them from YAML/JSON with exact source positions; the
//! analyzer; and compilation into the mesh model (`trellis-model`).
#![forbid(unsafe_code)]

pub mod diag;
pub mod load;
pub mod resources;
pub mod validate;
pub mod yaml;

pub use diag::{Code, Diagnostic, Pos, Severity};
pub use load::{LoadOptions, Loaded, load_paths, load_str};
pub use resources::{Kind, Resource, Spec};
