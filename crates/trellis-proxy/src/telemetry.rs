//! What the proxy tells operators about each request: Envoy-style response flags with readable
//! reasons, the access log line, and request ids.

pub mod access_log;
pub mod flags;
pub mod metrics;
pub mod request_id;

pub use access_log::{AccessLogFormat, AccessLogRecord};
pub use flags::ResponseFlag;
pub use request_id::RequestId;
