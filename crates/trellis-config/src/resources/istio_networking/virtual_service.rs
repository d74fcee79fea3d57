//! placeholder (temporary stubs so the crate compiles; being written)
pub type VirtualService = crate::resources::common::Opaque;
