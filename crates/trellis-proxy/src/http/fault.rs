//! Fault injection (`HttpRoute::fault`): hold a share of a route's requests for a fixed
//! delay before forwarding (flag `DI`), and answer another share locally with an error
//! instead of forwarding (flag `FI`), as Envoy's fault filter does for Istio.
//!
//! Everything that does not depend on the request is prepared by [`FaultRuntime::compile`]
//! when the runtime is built: percentages become integer thresholds, the abort status and
//! its headers are parsed once. Per request, sampling is one comparison of a random
//! number the caller already has against a threshold.

use std::time::Duration;

use ::http::header::CONTENT_TYPE;
use ::http::{HeaderValue, Response, StatusCode};
use trellis_model::{AbortKind, Fault};

use super::{ProxyBody, local};
use crate::telemetry::ResponseFlag;

/// Body of an injected HTTP abort, and `grpc-message` of an injected gRPC abort (Envoy's
/// text, so clients and tests written against Istio see the same answer).
const ABORT_MESSAGE: &str = "fault filter abort";

/// A share of requests, 0–100 %, as a threshold on a uniformly random `u32`: a request is
/// selected when its random number is below the threshold. 100 % is `2^32`, so it always
/// holds; 0 % never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(u64);

impl Percent {
    /// The threshold for `percent`; values outside 0–100 (and NaN) are clamped.
    pub fn new(percent: f64) -> Percent {
        let share = if percent.is_nan() {
            0.0
        } else {
            percent.clamp(0.0, 100.0) / 100.0
        };
        // At most 2^32, which fits u64 exactly; the cast saturates by definition.
        Percent((share * 4_294_967_296.0).round() as u64)
    }

    /// Whether the request with random number `random` is in the share.
    pub fn selects(self, random: u32) -> bool {
        u64::from(random) < self.0
    }

    /// Whether no request can be selected (the feature can be skipped entirely).
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Why a route's fault settings cannot be applied; the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// An HTTP abort status outside 200–599 (Envoy's range).
    #[error("fault abort status {0} is not an HTTP status in 200..=599")]
    HttpStatus(u16),
    /// A gRPC abort status that is neither a gRPC code name nor a number.
    #[error("fault abort gRPC status {0:?} is neither a gRPC code name nor a number")]
    GrpcStatus(String),
}

/// How an aborted request is answered, prepared.
#[derive(Debug, Clone)]
enum Abort {
    /// A local HTTP response with this status.
    Http(StatusCode),
    /// A gRPC trailers-only response (HTTP 200) with this `grpc-status` value.
    Grpc(HeaderValue),
}

/// A route's fault injection, prepared for the request path.
#[derive(Debug, Clone)]
pub struct FaultRuntime {
    delay: Option<(Duration, Percent)>,
    abort: Option<(Abort, Percent)>,
}

/// What fault injection decided for one request.
#[derive(Debug)]
pub enum Injected {
    /// Nothing: forward at once.
    None,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Answer with this response (possibly after a delay) instead of forwarding.
    Abort(Option<Duration>, Response<ProxyBody>),
}

impl FaultRuntime {
    /// Prepares `fault`. Returns `None` when no request could ever be affected (both
    /// shares 0 %), so the request path does not even draw a random number. An
    /// `AbortKind::Http2Error` abort is not applied (answering it needs a stream reset,
    /// which the listener cannot produce yet): it is logged here and documented.
    pub fn compile(fault: &Fault) -> Result<Option<FaultRuntime>, FaultError> {
        let delay = fault
            .delay
            .as_ref()
            .map(|d| (d.fixed, Percent::new(d.percent)))
            .filter(|(_, p)| !p.is_zero());
        let abort = match &fault.abort {
            None => None,
            Some(a) => {
                let abort = match &a.kind {
                    AbortKind::HttpStatus(s) => Some(Abort::Http(http_status(*s)?)),
                    AbortKind::GrpcStatus(g) => Some(Abort::Grpc(grpc_status(g)?)),
                    AbortKind::Http2Error => {
                        tracing::warn!(
                            "fault abort with an HTTP/2 stream error is not supported; not injected"
                        );
                        None
                    }
                };
                abort
                    .map(|k| (k, Percent::new(a.percent)))
                    .filter(|(_, p)| !p.is_zero())
            }
        };
        Ok((delay.is_some() || abort.is_some()).then_some(FaultRuntime { delay, abort }))
    }

    /// Decides for one request from one random number: its low half samples the delay,
    /// its high half the abort, so the two shares are independent (as in Envoy).
    pub fn decide(&self, random: u64) -> Injected {
        // Truncation intended: the two halves of the random number.
        let (low, high) = (random as u32, (random >> 32) as u32);
        let delay = self.delay.and_then(|(d, p)| p.selects(low).then_some(d));
        match &self.abort {
            Some((abort, p)) if p.selects(high) => Injected::Abort(delay, abort.response()),
            _ => delay.map_or(Injected::None, Injected::Delay),
        }
    }
}

impl Abort {
    fn response(&self) -> Response<ProxyBody> {
        match self {
            Abort::Http(status) => {
                local::flagged(*status, ResponseFlag::FaultInjected, ABORT_MESSAGE)
            }
            Abort::Grpc(code) => {
                let mut resp = local::flagged(StatusCode::OK, ResponseFlag::FaultInjected, "");
                let h = resp.headers_mut();
                h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                h.insert("grpc-status", code.clone());
                h.insert("grpc-message", HeaderValue::from_static(ABORT_MESSAGE));
                resp
            }
        }
    }
}

fn http_status(status: u16) -> Result<StatusCode, FaultError> {
    if !(200..=599).contains(&status) {
        return Err(FaultError::HttpStatus(status));
    }
    StatusCode::from_u16(status).map_err(|_| FaultError::HttpStatus(status))
}

/// gRPC's status code names (grpc/doc/statuscodes.md), indexed by code.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The `grpc-status` value for a code name (any case) or a number written as text.
fn grpc_status(status: &str) -> Result<HeaderValue, FaultError> {
    let trimmed = status.trim();
    let code = match trimmed.parse::<u32>() {
        Ok(n) => n,
        Err(_) => GRPC_CODES
            .iter()
            .position(|name| name.eq_ignore_ascii_case(trimmed))
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| FaultError::GrpcStatus(status.to_owned()))?,
    };
    HeaderValue::from_str(&code.to_string()).map_err(|_| FaultError::GrpcStatus(status.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_model::{FaultAbort, FaultDelay};

    #[test]
    fn percent_thresholds() {
        assert!(Percent::new(100.0).selects(u32::MAX));
        assert!(!Percent::new(0.0).selects(0));
        assert!(Percent::new(0.0).is_zero());
        assert!(Percent::new(f64::NAN).is_zero());
        assert!(Percent::new(250.0).selects(u32::MAX));
        let half = Percent::new(50.0);
        assert!(half.selects(u32::MAX / 2));
        assert!(!half.selects(u32::MAX / 2 + 2));
    }

    #[test]
    fn grpc_codes() {
        let code = |s: &str| grpc_status(s).map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(code("UNAVAILABLE").ok().as_deref(), Some("14"));
        assert_eq!(code("unavailable").ok().as_deref(), Some("14"));
        assert_eq!(code("8").ok().as_deref(), Some("8"));
        assert!(code("NOPE").is_err());
    }

    #[test]
    fn compile_and_decide() {
        let fault = Fault {
            delay: Some(FaultDelay {
                fixed: Duration::from_millis(5),
                percent: 100.0,
            }),
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(418),
                percent: 0.0,
            }),
        };
        let rt = FaultRuntime::compile(&fault).ok().flatten();
        let rt = rt.expect("delay applies");
        assert!(matches!(rt.decide(7), Injected::Delay(d) if d == Duration::from_millis(5)));

        let bad = Fault {
            delay: None,
            abort: Some(FaultAbort {
                kind: AbortKind::HttpStatus(99),
                percent: 100.0,
            }),
        };
        assert!(FaultRuntime::compile(&bad).is_err());
        assert!(matches!(FaultRuntime::compile(&Fault::default()), Ok(None)));
    }

    #[test]
    fn grpc_abort_is_trailers_only() {
        let fault = Fault {
            delay: None,
            abort: Some(FaultAbort {
                kind: AbortKind::GrpcStatus("UNAVAILABLE".into()),
                percent: 100.0,
            }),
        };
        let rt = FaultRuntime::compile(&fault)
            .ok()
            .flatten()
            .expect("abort applies");
        let Injected::Abort(None, resp) = rt.decide(0) else {
            panic!("expected an abort without delay");
        };
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["grpc-status"], "14");
        assert_eq!(resp.headers()["content-type"], "application/grpc");
        assert_eq!(
            resp.extensions().get::<ResponseFlag>(),
            Some(&ResponseFlag::FaultInjected)
        );
    }
}
