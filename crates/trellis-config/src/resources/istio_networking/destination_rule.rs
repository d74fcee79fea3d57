//! placeholder (temporary stubs so the crate compiles; being written)
pub type DestinationRule = crate::resources::common::Opaque;
