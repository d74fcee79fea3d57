//! Request edits, faults, CORS and retries (`filters.proto`).

use std::time::Duration;

use trellis_model as m;

use super::{DecodeError, Wire, field, list, list_to_pb, opt_to_pb, optional, required, wire_enum};
use crate::pb::mesh as pb;

impl Wire for m::HeaderOps {
    type Pb = pb::HeaderOps;

    fn to_pb(&self) -> pb::HeaderOps {
        pb::HeaderOps {
            set: list_to_pb(&self.set),
            add: list_to_pb(&self.add),
            remove: self.remove.clone(),
        }
    }

    fn from_pb(pb: pb::HeaderOps) -> Result<Self, DecodeError> {
        Ok(m::HeaderOps {
            set: list(pb.set, "set")?,
            add: list(pb.add, "add")?,
            remove: pb.remove,
        })
    }
}

impl Wire for m::Rewrite {
    type Pb = pb::Rewrite;

    fn to_pb(&self) -> pb::Rewrite {
        pb::Rewrite {
            path: opt_to_pb(&self.path),
            authority: self.authority.clone(),
        }
    }

    fn from_pb(pb: pb::Rewrite) -> Result<Self, DecodeError> {
        Ok(m::Rewrite {
            path: optional(pb.path, "path")?,
            authority: pb.authority,
        })
    }
}

impl Wire for m::PathRewrite {
    type Pb = pb::PathRewrite;

    fn to_pb(&self) -> pb::PathRewrite {
        use pb::path_rewrite::{Kind, Regex};
        let kind = match self {
            m::PathRewrite::ReplacePrefix(s) => Kind::ReplacePrefix(s.clone()),
            m::PathRewrite::ReplaceFull(s) => Kind::ReplaceFull(s.clone()),
            m::PathRewrite::Regex {
                pattern,
                substitution,
            } => Kind::Regex(Regex {
                pattern: pattern.clone(),
                substitution: substitution.clone(),
            }),
        };
        pb::PathRewrite { kind: Some(kind) }
    }

    fn from_pb(pb: pb::PathRewrite) -> Result<Self, DecodeError> {
        use pb::path_rewrite::Kind;
        match pb.kind {
            Some(Kind::ReplacePrefix(s)) => Ok(m::PathRewrite::ReplacePrefix(s)),
            Some(Kind::ReplaceFull(s)) => Ok(m::PathRewrite::ReplaceFull(s)),
            Some(Kind::Regex(r)) => Ok(m::PathRewrite::Regex {
                pattern: r.pattern,
                substitution: r.substitution,
            }),
            None => Err(DecodeError::here("no PathRewrite kind is set")),
        }
    }
}

impl Wire for m::Mirror {
    type Pb = pb::Mirror;

    fn to_pb(&self) -> pb::Mirror {
        pb::Mirror {
            destination: Some(self.destination.to_pb()),
            percent: self.percent,
        }
    }

    fn from_pb(pb: pb::Mirror) -> Result<Self, DecodeError> {
        Ok(m::Mirror {
            destination: required(pb.destination, "destination")?,
            percent: pb.percent,
        })
    }
}

impl Wire for m::Fault {
    type Pb = pb::Fault;

    fn to_pb(&self) -> pb::Fault {
        pb::Fault {
            delay: opt_to_pb(&self.delay),
            abort: opt_to_pb(&self.abort),
        }
    }

    fn from_pb(pb: pb::Fault) -> Result<Self, DecodeError> {
        Ok(m::Fault {
            delay: optional(pb.delay, "delay")?,
            abort: optional(pb.abort, "abort")?,
        })
    }
}

impl Wire for m::FaultDelay {
    type Pb = pb::FaultDelay;

    fn to_pb(&self) -> pb::FaultDelay {
        pb::FaultDelay {
            fixed_ms: self.fixed.to_pb(),
            percent: self.percent,
        }
    }

    fn from_pb(pb: pb::FaultDelay) -> Result<Self, DecodeError> {
        Ok(m::FaultDelay {
            fixed: field(pb.fixed_ms, "fixed_ms")?,
            percent: pb.percent,
        })
    }
}

impl Wire for m::FaultAbort {
    type Pb = pb::FaultAbort;

    fn to_pb(&self) -> pb::FaultAbort {
        pb::FaultAbort {
            kind: Some(self.kind.to_pb()),
            percent: self.percent,
        }
    }

    fn from_pb(pb: pb::FaultAbort) -> Result<Self, DecodeError> {
        Ok(m::FaultAbort {
            kind: required(pb.kind, "kind")?,
            percent: pb.percent,
        })
    }
}

impl Wire for m::AbortKind {
    type Pb = pb::AbortKind;

    fn to_pb(&self) -> pb::AbortKind {
        use pb::abort_kind::Kind;
        let kind = match self {
            m::AbortKind::HttpStatus(s) => Kind::HttpStatus(s.to_pb()),
            m::AbortKind::GrpcStatus(s) => Kind::GrpcStatus(s.clone()),
            m::AbortKind::Http2Error => Kind::Http2Error(()),
        };
        pb::AbortKind { kind: Some(kind) }
    }

    fn from_pb(pb: pb::AbortKind) -> Result<Self, DecodeError> {
        use pb::abort_kind::Kind;
        match pb.kind {
            Some(Kind::HttpStatus(s)) => Ok(m::AbortKind::HttpStatus(field(s, "http_status")?)),
            Some(Kind::GrpcStatus(s)) => Ok(m::AbortKind::GrpcStatus(s)),
            Some(Kind::Http2Error(())) => Ok(m::AbortKind::Http2Error),
            None => Err(DecodeError::here("no AbortKind kind is set")),
        }
    }
}

impl Wire for m::CorsPolicy {
    type Pb = pb::CorsPolicy;

    fn to_pb(&self) -> pb::CorsPolicy {
        pb::CorsPolicy {
            allow_origins: list_to_pb(&self.allow_origins),
            allow_methods: self.allow_methods.clone(),
            allow_headers: self.allow_headers.clone(),
            expose_headers: self.expose_headers.clone(),
            max_age_ms: opt_to_pb(&self.max_age),
            allow_credentials: self.allow_credentials,
        }
    }

    fn from_pb(pb: pb::CorsPolicy) -> Result<Self, DecodeError> {
        Ok(m::CorsPolicy {
            allow_origins: list(pb.allow_origins, "allow_origins")?,
            allow_methods: pb.allow_methods,
            allow_headers: pb.allow_headers,
            expose_headers: pb.expose_headers,
            max_age: optional(pb.max_age_ms, "max_age_ms")?,
            allow_credentials: pb.allow_credentials,
        })
    }
}

impl Wire for m::RetryPolicy {
    type Pb = pb::RetryPolicy;

    fn to_pb(&self) -> pb::RetryPolicy {
        pb::RetryPolicy {
            attempts: self.attempts,
            per_try_timeout_ms: opt_to_pb(&self.per_try_timeout),
            retry_on: Some(self.retry_on.to_pb()),
            budget: opt_to_pb(&self.budget),
            backoff_base_ms: self.backoff_base.to_pb(),
            backoff_max_ms: self.backoff_max.to_pb(),
            retry_non_idempotent: self.retry_non_idempotent,
        }
    }

    fn from_pb(pb: pb::RetryPolicy) -> Result<Self, DecodeError> {
        Ok(m::RetryPolicy {
            attempts: pb.attempts,
            per_try_timeout: optional::<Duration>(pb.per_try_timeout_ms, "per_try_timeout_ms")?,
            retry_on: required(pb.retry_on, "retry_on")?,
            budget: optional(pb.budget, "budget")?,
            backoff_base: field(pb.backoff_base_ms, "backoff_base_ms")?,
            backoff_max: field(pb.backoff_max_ms, "backoff_max_ms")?,
            retry_non_idempotent: pb.retry_non_idempotent,
        })
    }
}

impl Wire for m::RetryOn {
    type Pb = pb::RetryOn;

    fn to_pb(&self) -> pb::RetryOn {
        pb::RetryOn {
            conditions: self.conditions.iter().map(Wire::to_pb).collect(),
            status_codes: list_to_pb(&self.status_codes),
        }
    }

    fn from_pb(pb: pb::RetryOn) -> Result<Self, DecodeError> {
        Ok(m::RetryOn {
            conditions: list::<m::RetryCondition>(pb.conditions, "conditions")?
                .into_iter()
                .collect(),
            status_codes: list(pb.status_codes, "status_codes")?,
        })
    }
}

wire_enum!(RetryCondition => RetryCondition {
    FiveXx <=> FiveXx,
    GatewayError <=> GatewayError,
    Reset <=> Reset,
    ResetBeforeRequest <=> ResetBeforeRequest,
    ConnectFailure <=> ConnectFailure,
    EnvoyRatelimited <=> EnvoyRatelimited,
    Retriable4xx <=> Retriable4xx,
    RefusedStream <=> RefusedStream,
    RetriableStatusCodes <=> RetriableStatusCodes,
    RetriableHeaders <=> RetriableHeaders,
    Http3PostConnectFailure <=> Http3PostConnectFailure,
    Cancelled <=> Cancelled,
    DeadlineExceeded <=> DeadlineExceeded,
    Internal <=> Internal,
    ResourceExhausted <=> ResourceExhausted,
    Unavailable <=> Unavailable,
} unspecified Unspecified);

impl Wire for m::RetryBudget {
    type Pb = pb::RetryBudget;

    fn to_pb(&self) -> pb::RetryBudget {
        pb::RetryBudget {
            retry_ratio: self.retry_ratio,
            min_retries_per_second: self.min_retries_per_second,
            ttl_ms: self.ttl.to_pb(),
        }
    }

    fn from_pb(pb: pb::RetryBudget) -> Result<Self, DecodeError> {
        Ok(m::RetryBudget {
            retry_ratio: pb.retry_ratio,
            min_retries_per_second: pb.min_retries_per_second,
            ttl: field(pb.ttl_ms, "ttl_ms")?,
        })
    }
}
