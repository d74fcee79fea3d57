//! placeholder (temporary stubs so the crate compiles; being written)
pub type Namespace = crate::resources::common::Opaque;
pub type Service = crate::resources::common::Opaque;
pub type Endpoints = crate::resources::common::Opaque;
pub type Pod = crate::resources::common::Opaque;
pub type ServiceAccount = crate::resources::common::Opaque;
pub type EndpointSlice = crate::resources::common::Opaque;
pub type Deployment = crate::resources::common::Opaque;
pub type StatefulSet = crate::resources::common::Opaque;
