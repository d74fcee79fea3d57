//! The Trellis control plane: compiles the configuration once and streams each proxy exactly
//! what it needs.
//!
//! - [`source`]: where the mesh comes from (a directory; `trellis up` adds its processes);
//! - [`snapshot`]: an accepted configuration with its resources encoded once;
//! - [`view`]: the part of a snapshot one proxy needs;
//! - [`xds`]: the Delta ADS server, with per-proxy ACK/NACK tracking;
//! - [`registry`]: connected proxies and their sync state;
//! - [`metrics`] and [`debug`]: the monitoring endpoint (15014);
//! - [`server`]: `trellis control` — all of the above with live reload.
#![forbid(unsafe_code)]

pub mod debug;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod view;
pub mod xds;

pub use server::{ControlError, ControlPlane, ControlSettings};
pub use source::{Compiled, DirectorySource, MeshSource, Refused};
