//! `trellis up`: a whole mesh on one machine.
//!
//! - [`plan`]: what runs (replicas of LocalWorkloads, gateway proxies) and their addresses;
//! - [`source`]: the mesh served — the configuration plus a Pod per replica and service VIPs;
//! - [`net`]: network namespaces, veths, the bridge and iptables capture (transparent mode);
//! - [`process`]: supervised child processes;
//! - [`launcher`]: starting, following and stopping all of it;
//! - [`state`]: the state file `trellis down` and `--detach` read;
//! - [`table`]: what runs where, as printed.
#![forbid(unsafe_code)]

pub mod launcher;
pub mod net;
pub mod plan;
pub mod probe;
pub mod process;
pub mod source;
pub mod state;
pub mod table;

pub use launcher::{Up, UpError, UpOptions};
pub use plan::Mode;
