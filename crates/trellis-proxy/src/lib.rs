//! The Trellis data plane. The proxy never links Kubernetes crates: it consumes the mesh model
//! (`trellis-model`), from a directory today and over xDS later.
//!
//! Built bottom-up; each module is usable and tested on its own:
//! - [`route`]: the model's routes compiled into a table matched per request;
//! - [`balance`]: endpoint selection (round robin, least request, random, peak EWMA, ring hash,
//!   Maglev);
//! - [`resilience`]: outlier detection, connection-pool limits, retry policy, budgets and backoff;
//! - [`detect`] and [`tcp`]: protocol detection on accepted connections and opaque TCP proxying;
//! - [`telemetry`]: response flags, access-log lines and request ids;
//! - [`runtime`] and [`http`]: the mesh prepared for forwarding, and the HTTP/1.1 + h2c
//!   outbound listener that routes, balances and forwards requests;
//! - [`upstream`]: per-backend upstream connection pools (HTTP/1.1 keep-alive, HTTP/2
//!   multiplexing) enforcing DestinationRule `connectionPool`;
//! - `h1`: the HTTP/1.1 wire format both sides share (header lines, chunked coding, body
//!   decoding);
//! - [`listener`]: outbound (capture or explicit proxy), loopback-VIP and inbound listeners;
//! - [`server`]: `trellis proxy` — a configuration directory served with live reload, the
//!   admin endpoint and graceful drain.
// One exception, `server::heap` (glibc's `malloc_trim`), says why where it is.
#![deny(unsafe_code)]

pub mod balance;
pub mod detect;
mod h1;
pub mod http;
pub mod listener;
pub mod resilience;
pub mod route;
pub mod runtime;
pub mod server;
pub mod tcp;
pub mod telemetry;
pub mod upstream;
