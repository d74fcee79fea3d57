//! Generated protobuf messages (build.rs): [`mesh`] mirrors the model, [`xds`] holds the
//! resources served. The nesting follows the proto packages, as prost's generated paths expect.

/// Proto package `trellis.*`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod trellis {
    /// Proto package `trellis.mesh`.
    pub mod mesh {
        /// Proto package `trellis.mesh.v1`: the mesh model on the wire.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/trellis.mesh.v1.rs"));
        }
    }
    /// Proto package `trellis.xds`.
    pub mod xds {
        /// Proto package `trellis.xds.v1`: the resources of the Delta ADS stream.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/trellis.xds.v1.rs"));
        }
    }
}

pub use trellis::mesh::v1 as mesh;
pub use trellis::xds::v1 as xds;
