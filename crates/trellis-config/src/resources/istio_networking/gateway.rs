//! placeholder (temporary stubs so the crate compiles; being written)
pub type Gateway = crate::resources::common::Opaque;
