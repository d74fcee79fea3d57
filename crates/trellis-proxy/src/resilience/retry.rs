//! The retry decision: may a failed attempt be tried again under a route's
//! [`RetryPolicy`]?
//!
//! Which outcomes each `retry_on` condition covers follows Envoy:
//!
//! | condition | retries |
//! |---|---|
//! | `5xx` | any 5xx response, and every reset, connect failure, refused stream and per-try timeout |
//! | `gateway-error` | 502/503/504, and the same resets, connect failures and timeouts as `5xx` |
//! | `reset` | every reset, connect failure, refused stream and per-try timeout |
//! | `reset-before-request` | resets before the request was written: connect failure, refused stream, early reset |
//! | `connect-failure` | connect failures |
//! | `refused-stream` | HTTP/2 `REFUSED_STREAM` |
//! | `retriable-4xx` | 409 |
//! | `retriable-status-codes` | the statuses listed in the policy |
//! | `envoy-ratelimited` | responses carrying `x-envoy-ratelimited` (and such responses are retried under no other condition, as in Envoy) |
//! | `cancelled`, `deadline-exceeded`, `resource-exhausted`, `internal`, `unavailable` | `grpc-status` 1, 4, 8, 13, 14 |
//! | `retriable-headers`, `http3-post-connect-failure` | nothing: the model carries no header matchers and the proxy speaks no HTTP/3 |
//!
//! The idempotency rule: an attempt that may have reached the application — a response
//! was received, the stream was reset after the request was written, or the per-try
//! timeout fired — is retried only for idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
//! DELETE, per RFC 9110) or when the policy sets `retry_non_idempotent`. An attempt the
//! application cannot have seen (connect failure, refused stream, reset before the request
//! was written) is safe to retry for any method. A request whose body could not be kept
//! for replay is never retried.

use http::Method;
use trellis_model::retry::{RetryCondition, RetryPolicy};

#[cfg(test)]
mod tests;

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered.
    Response {
        /// HTTP status.
        status: u16,
        /// `grpc-status` from the headers of a trailers-only gRPC response, if any.
        grpc_status: Option<u32>,
        /// Whether the response carried `x-envoy-ratelimited`.
        rate_limited: bool,
    },
    /// The connection could not be established.
    ConnectFailure,
    /// The HTTP/2 stream was refused (`REFUSED_STREAM`), so it was never processed.
    RefusedStream,
    /// The connection or stream was reset before the request was written.
    ResetBeforeRequest,
    /// The connection or stream was reset after (part of) the request was written.
    Reset,
    /// The upstream's response was not valid HTTP (what was wrong with it); retried as a
    /// reset is.
    ProtocolError(&'static str),
    /// The per-try timeout fired before a response arrived.
    PerTryTimeout,
}

impl AttemptOutcome {
    /// A plain HTTP response with `status`.
    pub fn status(status: u16) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            grpc_status: None,
            rate_limited: false,
        }
    }

    /// Whether the application may have received (and acted on) the request.
    pub fn may_have_reached_server(self) -> bool {
        match self {
            AttemptOutcome::Response { .. }
            | AttemptOutcome::Reset
            | AttemptOutcome::ProtocolError(_)
            | AttemptOutcome::PerTryTimeout => true,
            AttemptOutcome::ConnectFailure
            | AttemptOutcome::RefusedStream
            | AttemptOutcome::ResetBeforeRequest => false,
        }
    }
}

/// The verdict on one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again (subject to the budget, the retry limit of the pool and backoff).
    Retry,
    /// Return this outcome to the client.
    DoNotRetry(NoRetry),
}

/// Why an attempt is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRetry {
    /// The route does not retry at all (`attempts: 0`).
    Disabled,
    /// No configured condition covers this outcome (including success).
    NotRetriable,
    /// The request may have reached the application and its method is not idempotent.
    NonIdempotent,
    /// The request body was not kept, so it cannot be sent again.
    BodyNotReplayable,
    /// The outcome is retriable but every allowed retry was used.
    AttemptsExhausted,
}

impl NoRetry {
    /// Envoy's response flag for this reason: `URX` when retries ran out, none otherwise.
    pub fn response_flag(self) -> Option<crate::telemetry::ResponseFlag> {
        matches!(self, NoRetry::AttemptsExhausted)
            .then_some(crate::telemetry::ResponseFlag::UpstreamRetryLimitExceeded)
    }
}

/// Statuses below this are representable in the status bitmap; HTTP statuses stop at 599.
const STATUS_BITS: usize = 640;

/// A route's retry policy compiled for the per-attempt decision: conditions as a bitset,
/// retriable statuses as a bitmap, so deciding allocates nothing and scans no list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryClassifier {
    attempts: u32,
    conditions: u32,
    statuses: [u64; STATUS_BITS / 64],
    retry_non_idempotent: bool,
}

const fn bit(c: RetryCondition) -> u32 {
    1 << (c as u32)
}

const ANY_RESET: u32 =
    bit(RetryCondition::FiveXx) | bit(RetryCondition::GatewayError) | bit(RetryCondition::Reset);
const BEFORE_REQUEST: u32 = ANY_RESET | bit(RetryCondition::ResetBeforeRequest);

impl RetryClassifier {
    /// Compiles `policy` at configuration time.
    pub fn new(policy: &RetryPolicy) -> RetryClassifier {
        let conditions = policy
            .retry_on
            .conditions
            .iter()
            .fold(0, |acc, &c| acc | bit(c));
        let mut statuses = [0u64; STATUS_BITS / 64];
        for &code in &policy.retry_on.status_codes {
            let code = usize::from(code);
            if code < STATUS_BITS {
                statuses[code / 64] |= 1 << (code % 64);
            }
        }
        RetryClassifier {
            attempts: policy.attempts,
            conditions,
            statuses,
            retry_non_idempotent: policy.retry_non_idempotent,
        }
    }

    /// Retries allowed after the first try.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn has(&self, mask: u32) -> bool {
        self.conditions & mask != 0
    }

    fn lists_status(&self, status: u16) -> bool {
        let code = usize::from(status);
        code < STATUS_BITS && self.statuses[code / 64] & (1 << (code % 64)) != 0
    }

    /// Whether a configured condition covers `outcome`, before the idempotency rule and
    /// the attempt count are considered.
    pub fn covers(&self, outcome: AttemptOutcome) -> bool {
        use RetryCondition as C;
        match outcome {
            AttemptOutcome::Response {
                status,
                grpc_status,
                rate_limited,
            } => {
                if rate_limited {
                    return self.has(bit(C::EnvoyRatelimited));
                }
                (self.has(bit(C::FiveXx)) && (500..=599).contains(&status))
                    || (self.has(bit(C::GatewayError)) && matches!(status, 502..=504))
                    || (self.has(bit(C::Retriable4xx)) && status == 409)
                    || (self.has(bit(C::RetriableStatusCodes)) && self.lists_status(status))
                    || grpc_status.is_some_and(|code| self.covers_grpc(code))
            }
            AttemptOutcome::ConnectFailure => self.has(BEFORE_REQUEST | bit(C::ConnectFailure)),
            AttemptOutcome::RefusedStream => self.has(BEFORE_REQUEST | bit(C::RefusedStream)),
            AttemptOutcome::ResetBeforeRequest => self.has(BEFORE_REQUEST),
            AttemptOutcome::Reset
            | AttemptOutcome::ProtocolError(_)
            | AttemptOutcome::PerTryTimeout => self.has(ANY_RESET),
        }
    }

    fn covers_grpc(&self, code: u32) -> bool {
        use RetryCondition as C;
        let condition = match code {
            1 => C::Cancelled,
            4 => C::DeadlineExceeded,
            8 => C::ResourceExhausted,
            13 => C::Internal,
            14 => C::Unavailable,
            _ => return false,
        };
        self.has(bit(condition))
    }

    /// The decision for an attempt that ended with `outcome`, for a request with `method`
    /// whose body is (`body_replayable`) or is not kept for replay, after `retries_done`
    /// retries. The checks run in the order of [`NoRetry`]'s variants, so the reason is
    /// the most fundamental one (`URX` only when a retry was otherwise allowed).
    pub fn decide(
        &self,
        outcome: AttemptOutcome,
        method: &Method,
        body_replayable: bool,
        retries_done: u32,
    ) -> RetryDecision {
        let verdict = if self.attempts == 0 {
            Some(NoRetry::Disabled)
        } else if !self.covers(outcome) {
            Some(NoRetry::NotRetriable)
        } else if outcome.may_have_reached_server()
            && !self.retry_non_idempotent
            && !method.is_idempotent()
        {
            Some(NoRetry::NonIdempotent)
        } else if !body_replayable {
            Some(NoRetry::BodyNotReplayable)
        } else if retries_done >= self.attempts {
            Some(NoRetry::AttemptsExhausted)
        } else {
            None
        };
        verdict.map_or(RetryDecision::Retry, RetryDecision::DoNotRetry)
    }
}
