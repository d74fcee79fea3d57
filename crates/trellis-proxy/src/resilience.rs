//! Resilience: the pieces that keep a failing backend from taking its clients down with
//! it, each usable and tested on its own and composed by the HTTP proxy per request:
//!
//! - [`outlier`]: passive health checking — endpoints with consecutive errors are ejected
//!   from balancing for a growing time (Istio `outlierDetection`);
//! - [`pool`]: circuit breaking — non-blocking admission against connection, pending,
//!   request and retry limits (Istio `connectionPool`), failing fast with `UO`;
//! - [`retry`]: whether a failed attempt may be tried again (Istio `retries`, Envoy
//!   `retry_on`), including the idempotency rule;
//! - [`budget`]: Linkerd's retry budget, capping retries to a share of regular traffic;
//! - [`backoff`]: Envoy's fully jittered exponential backoff between tries.
//!
//! None of them reads a clock or a global random source: the caller passes `Instant`s and
//! a random generator, so behaviour is deterministic under test and nothing hidden runs on
//! the hot path. Per-request operations use atomics only.
//!
//! A retry is allowed when all of these agree, in this order: [`retry::RetryClassifier`]
//! says the outcome is retriable, the [`budget::RetryBudget`] (if configured) has a
//! token, and [`pool::ConnectionPoolLimits::try_acquire_retry`] admits it; the wait before
//! it comes from [`backoff::Backoff`].

pub mod backoff;
pub mod budget;
pub mod outlier;
pub mod pool;
pub mod retry;

pub use backoff::Backoff;
pub use budget::{BudgetError, RetryBudget};
pub use outlier::{EndpointOutlier, LocalFailure, Outcome, OutlierDetector};
pub use pool::{ConnectionPermit, ConnectionPoolLimits, Limit, Overflow, Permit};
pub use retry::{AttemptOutcome, NoRetry, RetryClassifier, RetryDecision};
