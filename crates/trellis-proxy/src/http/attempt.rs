//! Sending a prepared request upstream: one attempt, or several under the route's retry
//! policy, with per-try timeouts, jittered backoff, the route's retry budget and the
//! backend's retry permits. The route timeout is applied by the caller around all of it.

use std::time::{Duration, Instant};

use ::http::{Request, Response, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Body;

use super::{Exchange, ProxyBody, RequestBody, local, observe};
use crate::balance::{EndpointState, PickContext};
use crate::h1::FieldKind;
use crate::resilience::{AttemptOutcome, LocalFailure, Outcome, Overflow, Permit, RetryDecision};
use crate::runtime::{Backend, RouteRetry, Upstream};
use crate::telemetry::ResponseFlag;
use crate::upstream::{RequestHead, UpstreamBody, UpstreamDefaults, UpstreamError};

/// Request bodies up to this size are kept so a retry can send them again; larger (or
/// unknown-length) bodies stream through and are never retried.
const MAX_REPLAY_BODY: u64 = 64 * 1024;

/// Why an attempt got no response: a retry-relevant failure, or a connection-pool
/// overflow (503 `UO` at once, never retried, not an endpoint failure).
#[derive(Debug, Clone, Copy)]
enum Failed {
    Attempt(AttemptOutcome),
    Overflow(Overflow),
}

/// How sending ended: the upstream's response, or a flagged local response.
pub(super) type Sent = Result<Response<UpstreamBody>, Response<ProxyBody>>;

/// Sends `req` to endpoint `ex.endpoint` of `backend` (already in `req`'s URI),
/// retrying under `retry` when the route has a policy; `ex` follows the attempts.
/// `hash` is the request's consistent-hash value, reused when a retry picks again.
pub(super) async fn send(
    defaults: &UpstreamDefaults,
    req: Request<RequestBody>,
    backend: &Backend,
    retry: Option<&RouteRetry>,
    hash: Option<u64>,
    ex: &mut Exchange,
) -> Sent {
    let endpoint = ex.endpoint;
    ex.attempts = 1;
    let Some(retry) = retry else {
        let (head, body) = req.into_parts();
        return once(
            defaults,
            RequestHead::Owned(head),
            body,
            backend,
            endpoint,
            None,
        )
        .await
        .map_err(local_for);
    };
    if let Some(budget) = &retry.budget {
        budget.deposit(Instant::now());
    }
    let (mut parts, body) = req.into_parts();
    let body = match replayable(body).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(body)) => {
            return once(
                defaults,
                RequestHead::Owned(parts),
                body,
                backend,
                endpoint,
                retry.per_try_timeout,
            )
            .await
            .map_err(local_for);
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading the request body failed");
            return Err(local::error(
                ResponseFlag::DownstreamConnectionTermination,
                "request body read failed",
            ));
        }
    };
    let mut endpoint = endpoint;
    let mut retries_done = 0;
    let mut _retry_permit: Option<Permit> = None;
    loop {
        // The head is lent, not copied: it stays here for the next attempt.
        let head = RequestHead::Borrowed(&parts);
        let replay = Either::Right(Full::new(body.clone()));
        let result = once(
            defaults,
            head,
            replay,
            backend,
            endpoint,
            retry.per_try_timeout,
        )
        .await;
        let outcome = match &result {
            Ok(resp) => response_outcome(resp),
            Err(Failed::Attempt(o)) => *o,
            Err(Failed::Overflow(o)) => return Err(overflow(*o)),
        };
        let decision = retry
            .classifier
            .decide(outcome, &parts.method, true, retries_done);
        if let RetryDecision::DoNotRetry(reason) = decision {
            return match (result, reason.response_flag()) {
                (Ok(mut resp), _) => {
                    // The lent head is done with: its map serves the connection's next
                    // response.
                    resp.body_mut().keep_spare_headers(parts.headers);
                    Ok(resp)
                }
                (Err(_), Some(flag)) => Err(local::error(flag, "attempts exhausted")),
                (Err(o), None) => Err(local_for(o)),
            };
        }
        if let Some(budget) = &retry.budget
            && !budget.try_withdraw(Instant::now())
        {
            return result.map_err(|_| {
                local::error(
                    ResponseFlag::UpstreamRetryLimitExceeded,
                    "retry budget exhausted",
                )
            });
        }
        match backend.limits().try_acquire_retry() {
            Ok(p) => _retry_permit = Some(p),
            Err(o) => return Err(overflow(o)),
        }
        drop(result);
        retries_done += 1;
        let delay = retry.backoff.delay(retries_done, &mut rand::rng());
        tokio::time::sleep(delay).await;
        endpoint = repick(backend, &mut parts.uri, endpoint, hash);
        ex.attempts += 1;
        ex.endpoint = endpoint;
    }
}

/// The local 503 `UO` for a circuit-breaker overflow.
pub(super) fn overflow(o: Overflow) -> Response<ProxyBody> {
    local::error(o.response_flag(), &o.to_string())
}

/// One attempt, counted as in flight on its endpoint while it runs.
async fn once(
    defaults: &UpstreamDefaults,
    head: RequestHead<'_>,
    body: RequestBody,
    backend: &Backend,
    endpoint: Option<usize>,
    per_try: Option<Duration>,
) -> Result<Response<UpstreamBody>, Failed> {
    let mut in_flight = endpoint
        .and_then(|i| backend.endpoints().get(i))
        .map(InFlight::start);
    let sent = backend
        .upstream()
        .send_parts(endpoint, head, body, defaults);
    let result = match per_try {
        Some(t) => match tokio::time::timeout(t, sent).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(index) = endpoint {
                    let timeout = Outcome::LocalFailure(LocalFailure::Timeout);
                    backend.report(index, timeout, Instant::now());
                }
                return Err(Failed::Attempt(AttemptOutcome::PerTryTimeout));
            }
        },
        None => sent.await,
    };
    // One clock read for the attempt's end: its latency and the outlier report.
    let finished = Instant::now();
    let result = match result {
        Ok(resp) => {
            if let Some(f) = in_flight.as_mut() {
                f.answered_at = Some(finished);
            }
            Ok(resp)
        }
        Err(UpstreamError::Overflow(o)) => return Err(Failed::Overflow(o)),
        Err(e) if e.is_connect_failure() => {
            tracing::debug!(error = %e, "upstream connect failed");
            Err(AttemptOutcome::ConnectFailure)
        }
        Err(e) => {
            tracing::debug!(error = %e, "upstream request failed");
            Err(e
                .protocol_error()
                .map_or(AttemptOutcome::Reset, AttemptOutcome::ProtocolError))
        }
    };
    if let Some(index) = endpoint {
        backend.report(index, outlier_outcome(&result), finished);
    }
    result.map_err(Failed::Attempt)
}

/// What outlier detection learns from an attempt: the status, or the local failure.
fn outlier_outcome(result: &Result<Response<UpstreamBody>, AttemptOutcome>) -> Outcome {
    match result {
        Ok(resp) => Outcome::Response(resp.status().as_u16()),
        Err(AttemptOutcome::ConnectFailure) => Outcome::LocalFailure(LocalFailure::ConnectFailure),
        Err(AttemptOutcome::PerTryTimeout) => Outcome::LocalFailure(LocalFailure::Timeout),
        Err(_) => Outcome::LocalFailure(LocalFailure::Reset),
    }
}

/// The local response for a failed attempt that is not retried.
fn local_for(failed: Failed) -> Response<ProxyBody> {
    let outcome = match failed {
        Failed::Attempt(outcome) => outcome,
        Failed::Overflow(o) => return overflow(o),
    };
    match outcome {
        AttemptOutcome::ConnectFailure => {
            local::error(ResponseFlag::UpstreamConnectionFailure, "connect failed")
        }
        AttemptOutcome::PerTryTimeout => {
            local::error(ResponseFlag::UpstreamRequestTimeout, "per-try timeout")
        }
        AttemptOutcome::ProtocolError(what) => {
            local::error(ResponseFlag::UpstreamProtocolError, what)
        }
        _ => local::error(
            ResponseFlag::UpstreamConnectionTermination,
            "upstream reset",
        ),
    }
}

/// The retry-relevant facts of a response.
fn response_outcome(resp: &Response<UpstreamBody>) -> AttemptOutcome {
    let (mut grpc_status, mut rate_limited) = (None, false);
    if let Some(raw) = resp.body().raw_head() {
        // Kinds were decided when the head was parsed: no names compared here.
        grpc_status = raw
            .first(FieldKind::GrpcStatus)
            .and_then(observe::grpc_status_bytes);
        rate_limited = raw.first(FieldKind::RateLimited).is_some();
    }
    // One pass over the names (compared by length, then bytes) costs less than hashing
    // both names for two lookups; most responses have neither header.
    for (name, value) in resp.headers() {
        match name.as_str() {
            "grpc-status" if grpc_status.is_none() => {
                grpc_status = observe::grpc_status_value(value);
            }
            "x-envoy-ratelimited" => rate_limited = true,
            _ => {}
        }
    }
    AttemptOutcome::Response {
        status: resp.status().as_u16(),
        grpc_status,
        rate_limited,
    }
}

/// The whole body when it is empty or of known length up to [`MAX_REPLAY_BODY`]; the
/// untouched stream otherwise.
async fn replayable(
    body: RequestBody,
) -> Result<Result<Bytes, RequestBody>, super::body::ClientBodyError> {
    let body = match body {
        // Already buffered (a mirrored request): replay the same bytes.
        Either::Right(full) => {
            return Ok(Ok(full
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default()));
        }
        Either::Left(body) => body,
    };
    if body.is_end_stream() {
        return Ok(Ok(Bytes::new()));
    }
    match body.size_hint().exact() {
        Some(n) if n <= MAX_REPLAY_BODY => Ok(Ok(body.collect().await?.to_bytes())),
        _ => Ok(Err(Either::Left(body))),
    }
}

/// Picks an endpoint for a retry (as Envoy does, possibly another one) and points `uri`
/// at it; keeps the previous target for passthrough or when nothing can be picked.
fn repick(
    backend: &Backend,
    uri: &mut Uri,
    previous: Option<usize>,
    hash: Option<u64>,
) -> Option<usize> {
    let ctx = PickContext {
        random: rand::random(),
        hash,
        now: Instant::now(),
    };
    let Some(Upstream::Endpoint { index, authority }) = backend.pick(&ctx) else {
        return previous;
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(authority.clone());
    match Uri::from_parts(parts) {
        Ok(u) => {
            *uri = u;
            Some(index)
        }
        Err(_) => previous,
    }
}

/// Counts an attempt as outstanding on its endpoint until dropped, also when the route
/// timeout cancels it; latency is recorded only for answered attempts.
struct InFlight<'a> {
    state: &'a EndpointState,
    started: Instant,
    /// When the response headers arrived (`None`: unanswered, e.g. cancelled or failed).
    answered_at: Option<Instant>,
}

impl<'a> InFlight<'a> {
    fn start(state: &'a EndpointState) -> InFlight<'a> {
        state.start_request();
        InFlight {
            state,
            started: Instant::now(),
            answered_at: None,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let now = self.answered_at.unwrap_or_else(Instant::now);
        let rtt = self
            .answered_at
            .map(|at| at.saturating_duration_since(self.started));
        self.state.finish_request(rtt, now);
    }
}
