//! placeholder (temporary stubs so the crate compiles; being written)
pub type ServiceProfile = crate::resources::common::Opaque;
pub type Server = crate::resources::common::Opaque;
pub type ServerAuthorization = crate::resources::common::Opaque;
pub type AuthorizationPolicy = crate::resources::common::Opaque;
pub type MeshTlsAuthentication = crate::resources::common::Opaque;
pub type NetworkAuthentication = crate::resources::common::Opaque;
