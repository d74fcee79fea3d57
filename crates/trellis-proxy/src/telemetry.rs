//! What the proxy tells operators about each request: Envoy-style response flags with readable
//! reasons, Istio's metrics, the access log line, and request ids. [`Telemetry`] bundles what a
//! listener reports into.

pub mod access_log;
pub mod flags;
pub mod metrics;
pub mod peer_header;
pub mod peers;
pub mod request_id;
mod sink;

pub use access_log::{AccessLogConfig, AccessLogDestination, AccessLogFormat, AccessLogRecord};
pub use flags::ResponseFlag;
pub use peers::{BackendLabels, SourceIdentity};
pub use request_id::RequestId;
pub use sink::Telemetry;
