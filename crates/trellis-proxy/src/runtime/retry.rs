//! A route's retry policy prepared once per configuration: the compiled classifier, the
//! backoff bounds and the route's shared retry budget, so the request path only reads
//! them.

use std::time::{Duration, Instant};

use trellis_model::retry::RetryPolicy;

use crate::resilience::{Backoff, BudgetError, RetryBudget, RetryClassifier};

/// What the request path needs to retry on one route.
#[derive(Debug)]
pub struct RouteRetry {
    /// Decides whether an attempt's outcome may be retried.
    pub classifier: RetryClassifier,
    /// Jittered wait between attempts.
    pub backoff: Backoff,
    /// The route's retry budget (shared by all its requests), when the policy has one.
    pub budget: Option<RetryBudget>,
    /// Deadline of each attempt; `None` lets each use what is left of the route timeout.
    pub per_try_timeout: Option<Duration>,
}

impl RouteRetry {
    /// Prepares `policy`; fails only when its budget is invalid.
    pub fn new(policy: &RetryPolicy, now: Instant) -> Result<RouteRetry, BudgetError> {
        let budget = policy
            .budget
            .as_ref()
            .map(|b| RetryBudget::new(b, now))
            .transpose()?;
        Ok(RouteRetry {
            classifier: RetryClassifier::new(policy),
            backoff: Backoff::from_policy(policy),
            budget,
            per_try_timeout: policy.per_try_timeout.filter(|t| !t.is_zero()),
        })
    }
}
