//! placeholder (temporary stubs so the crate compiles; being written)
pub type GatewayClass = crate::resources::common::Opaque;
pub type Gateway = crate::resources::common::Opaque;
pub type HttpRoute = crate::resources::common::Opaque;
pub type GrpcRoute = crate::resources::common::Opaque;
pub type TcpRoute = crate::resources::common::Opaque;
pub type TlsRoute = crate::resources::common::Opaque;
pub type ReferenceGrant = crate::resources::common::Opaque;
