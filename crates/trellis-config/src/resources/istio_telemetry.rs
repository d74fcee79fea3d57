//! placeholder (temporary stubs so the crate compiles; being written)
pub type Telemetry = crate::resources::common::Opaque;
