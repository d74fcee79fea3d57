//! placeholder (temporary stubs so the crate compiles; being written)
pub type PeerAuthentication = crate::resources::common::Opaque;
pub type AuthorizationPolicy = crate::resources::common::Opaque;
pub type RequestAuthentication = crate::resources::common::Opaque;
