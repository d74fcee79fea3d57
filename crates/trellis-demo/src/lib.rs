//! The demo application run by `trellis demo`: every service of the bundled example mesh
//! (`examples/shop`) is one of these processes behind its sidecar.
//!
//! It answers every path with a small JSON document naming itself (`service`, `version`,
//! `pod`), calls its configured upstreams for each request and nests their answers, so one
//! `curl` through the mesh shows which version of every service handled it. Trace and
//! routing headers are propagated the way Istio asks applications to, outbound calls go
//! through `HTTP_PROXY` (how explicit-mode sidecars capture traffic), and failures and
//! latency can be injected to show retries, timeouts and outlier detection at work.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let flags = trellis_demo::DemoFlags {
//!     service: Some("orders".into()),
//!     calls: vec!["http://inventory:8080/stock".into()],
//!     ..Default::default()
//! };
//! let config = trellis_demo::config_from(&flags, |name| std::env::var(name).ok())?;
//! trellis_demo::serve(config, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod answer;
mod config;
mod proxy_env;
mod server;
mod upstream;

pub use config::{
    ConfigError, DEFAULT_PROPAGATE, DemoConfig, DemoFlags, TRACE_HEADERS, config_from,
};
pub use proxy_env::{NoProxy, Outbound};
pub use server::{DemoServer, ServeError, serve};
