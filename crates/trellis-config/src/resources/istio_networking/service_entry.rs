//! placeholder (temporary stubs so the crate compiles; being written)
pub type ServiceEntry = crate::resources::common::Opaque;
pub type WorkloadEntry = crate::resources::common::Opaque;
pub type WorkloadGroup = crate::resources::common::Opaque;
