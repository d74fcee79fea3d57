//! The protocol between Trellis' control plane and its proxies.
//!
//! - [`pb`] and [`convert`]: the mesh model as protobuf messages (compiled from `proto/` with
//!   protox, so no `protoc` is needed) and the conversions both ways;
//! - [`resources`]: how a mesh is cut into xDS resources (type URLs, names) and put back
//!   together on the proxy side.
//!
//! The transport is Envoy's Delta Aggregated Discovery Service
//! (`envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources`), from
//! the `envoy-types` crate, so standard xDS tooling can read the stream; the resources inside
//! are Trellis' own messages (type URLs `type.googleapis.com/trellis.xds.v1.*`).
#![forbid(unsafe_code)]

pub mod client;
pub mod convert;
pub mod node;
pub mod pb;
pub mod resources;
