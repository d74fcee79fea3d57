//! placeholder (temporary stubs so the crate compiles; being written)
pub type TrafficSplit = crate::resources::common::Opaque;
