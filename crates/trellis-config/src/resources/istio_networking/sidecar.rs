//! placeholder (temporary stubs so the crate compiles; being written)
pub type Sidecar = crate::resources::common::Opaque;
