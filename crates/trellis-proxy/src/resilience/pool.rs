//! Connection-pool limits (circuit breaking): non-blocking admission of connections,
//! pending requests, concurrent requests and concurrent retries towards one backend.
//!
//! Reaching a limit never queues: the caller gets an [`Overflow`] at once and answers 503
//! with response flag `UO`, as Envoy's circuit breakers do. Admission is a compare-and-swap
//! on one atomic counter, so a limit is never exceeded even under contention, and a
//! [`Permit`] gives its slot back when dropped, whatever path the request takes.
//!
//! Unset limits take Istio's defaults, effectively unlimited (`u32::MAX`). A configured 0
//! also means "unset", because that is how Istio reads its protobuf fields (0 is the
//! proto default and is never sent to Envoy as a limit).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use trellis_model::policy::ConnectionPool;

#[cfg(test)]
mod tests;

/// Istio's default for every connection-pool limit: 2^32 - 1, i.e. no limit.
pub const UNLIMITED: u32 = u32::MAX;

/// Which limit a permit counts against, and which one overflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `max_connections`: connections to all endpoints of the backend.
    Connections,
    /// `http1_max_pending_requests`: requests waiting for a connection.
    PendingRequests,
    /// `http2_max_requests`: requests in flight to the backend.
    Requests,
    /// `max_retries`: retries in flight to the backend.
    Retries,
}

impl Limit {
    const ALL: [Limit; 4] = [
        Limit::Connections,
        Limit::PendingRequests,
        Limit::Requests,
        Limit::Retries,
    ];

    /// The configuration name, used in readable reasons and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::PendingRequests => "http1_max_pending_requests",
            Limit::Requests => "http2_max_requests",
            Limit::Retries => "max_retries",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit was reached; the request (or connection, or retry) must fail fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open: {limit} of {max} reached")]
pub struct Overflow {
    /// The limit that was reached.
    pub limit: Limit,
    /// Its configured value.
    pub max: u32,
}

impl Overflow {
    /// The response flag to log and return with the local 503: upstream overflow / circuit open.
    pub fn response_flag(&self) -> crate::telemetry::ResponseFlag {
        crate::telemetry::ResponseFlag::UpstreamOverflow
    }
}

#[derive(Debug)]
struct Counter {
    max: u32,
    in_use: AtomicU32,
    overflows: AtomicU64,
}

#[derive(Debug)]
struct Limits {
    counters: [Counter; 4],
    max_requests_per_connection: u32,
}

/// The limits of one backend; cheap to clone (clones share the counters).
#[derive(Debug, Clone)]
pub struct ConnectionPoolLimits {
    inner: Arc<Limits>,
}

/// `Some(0)` and `None` both mean Istio's default.
fn limit_or_default(v: Option<u32>) -> u32 {
    v.filter(|&v| v != 0).unwrap_or(UNLIMITED)
}

impl ConnectionPoolLimits {
    /// Limits resolved from the model's pool once, at configuration time.
    pub fn new(pool: &ConnectionPool) -> ConnectionPoolLimits {
        let counter = |max: Option<u32>| Counter {
            max: limit_or_default(max),
            in_use: AtomicU32::new(0),
            overflows: AtomicU64::new(0),
        };
        ConnectionPoolLimits {
            inner: Arc::new(Limits {
                counters: [
                    counter(pool.max_connections),
                    counter(pool.http1_max_pending_requests),
                    counter(pool.http2_max_requests),
                    counter(pool.max_retries),
                ],
                max_requests_per_connection: limit_or_default(pool.max_requests_per_connection),
            }),
        }
    }

    /// Admits a new upstream connection, or reports `max_connections` overflow.
    pub fn try_acquire_connection(&self) -> Result<ConnectionPermit, Overflow> {
        Ok(ConnectionPermit {
            _permit: self.try_acquire(Limit::Connections)?,
            served: AtomicU32::new(0),
            max_requests: self.inner.max_requests_per_connection,
        })
    }

    /// Admits a request that has to wait for a connection.
    pub fn try_acquire_pending(&self) -> Result<Permit, Overflow> {
        self.try_acquire(Limit::PendingRequests)
    }

    /// Admits a request in flight to the backend.
    pub fn try_acquire_request(&self) -> Result<Permit, Overflow> {
        self.try_acquire(Limit::Requests)
    }

    /// Admits a retry in flight to the backend (held for the duration of the retried
    /// attempt).
    pub fn try_acquire_retry(&self) -> Result<Permit, Overflow> {
        self.try_acquire(Limit::Retries)
    }

    /// Admission against any limit.
    pub fn try_acquire(&self, limit: Limit) -> Result<Permit, Overflow> {
        let c = &self.inner.counters[limit.index()];
        let admitted = c
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < c.max).then_some(n + 1)
            });
        match admitted {
            Ok(_) => Ok(Permit {
                limits: Arc::clone(&self.inner),
                limit,
            }),
            Err(_) => {
                c.overflows.fetch_add(1, Ordering::Relaxed);
                Err(Overflow { limit, max: c.max })
            }
        }
    }

    /// Permits of `limit` currently held (a gauge for metrics).
    pub fn in_use(&self, limit: Limit) -> u32 {
        self.inner.counters[limit.index()]
            .in_use
            .load(Ordering::Acquire)
    }

    /// Admissions refused by `limit` so far (Envoy's `*_overflow` counters).
    pub fn overflows(&self, limit: Limit) -> u64 {
        self.inner.counters[limit.index()]
            .overflows
            .load(Ordering::Relaxed)
    }

    /// The configured value of `limit`, after defaults.
    pub fn max(&self, limit: Limit) -> u32 {
        self.inner.counters[limit.index()].max
    }

    /// Requests one connection may carry before it is retired (`u32::MAX`: no limit).
    pub fn max_requests_per_connection(&self) -> u32 {
        self.inner.max_requests_per_connection
    }

    /// Every limit with its value, for `/config_dump`.
    pub fn describe(&self) -> impl Iterator<Item = (Limit, u32)> + '_ {
        Limit::ALL.into_iter().map(|l| (l, self.max(l)))
    }
}

/// One admitted unit (request, pending request, retry or connection); released on drop.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<Limits>,
    limit: Limit,
}

impl Permit {
    /// The limit this permit counts against.
    pub fn limit(&self) -> Limit {
        self.limit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.counters[self.limit.index()]
            .in_use
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// A permit for a request in flight.
pub type RequestPermit = Permit;
/// A permit for a request waiting for a connection.
pub type PendingPermit = Permit;
/// A permit for a retry in flight.
pub type RetryPermit = Permit;

/// An admitted upstream connection; it also enforces `max_requests_per_connection`, so
/// it lives as long as the connection object.
#[derive(Debug)]
pub struct ConnectionPermit {
    _permit: Permit,
    served: AtomicU32,
    max_requests: u32,
}

impl ConnectionPermit {
    /// Counts a request about to be sent on this connection. False when the connection
    /// has already carried its quota and must not be reused (the caller opens a new one
    /// and closes this one when idle).
    pub fn try_begin_request(&self) -> bool {
        self.served
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_requests).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether the connection has carried its quota and should be closed once idle.
    pub fn is_exhausted(&self) -> bool {
        self.served.load(Ordering::Acquire) >= self.max_requests
    }

    /// Requests started on this connection so far.
    pub fn requests_served(&self) -> u32 {
        self.served.load(Ordering::Acquire)
    }
}
