//! Telemetry policies (`TelemetryPolicy` in `mesh.proto`, its parts in `telemetry.proto`).

use trellis_model as m;

use super::{DecodeError, Wire, map_to_pb, map_values, opt_to_pb, optional, required};
use crate::pb::mesh as pb;

impl Wire for m::TelemetryPolicy {
    type Pb = pb::TelemetryPolicy;

    fn to_pb(&self) -> pb::TelemetryPolicy {
        pb::TelemetryPolicy {
            origin: Some(self.origin.to_pb()),
            namespace: self.namespace.clone(),
            selector: opt_to_pb(&self.selector),
            tracing: opt_to_pb(&self.tracing),
            metrics_disabled: self.metrics_disabled.clone(),
            access_logging: opt_to_pb(&self.access_logging),
        }
    }

    fn from_pb(pb: pb::TelemetryPolicy) -> Result<Self, DecodeError> {
        Ok(m::TelemetryPolicy {
            origin: required(pb.origin, "origin")?,
            namespace: pb.namespace,
            selector: optional(pb.selector, "selector")?,
            tracing: optional(pb.tracing, "tracing")?,
            metrics_disabled: pb.metrics_disabled,
            access_logging: optional(pb.access_logging, "access_logging")?,
        })
    }
}

impl Wire for m::TracingPolicy {
    type Pb = pb::TracingPolicy;

    fn to_pb(&self) -> pb::TracingPolicy {
        pb::TracingPolicy {
            providers: self.providers.clone(),
            sampling_percent: self.sampling_percent,
            custom_tags: map_to_pb(&self.custom_tags),
            disable_span_reporting: self.disable_span_reporting,
        }
    }

    fn from_pb(pb: pb::TracingPolicy) -> Result<Self, DecodeError> {
        Ok(m::TracingPolicy {
            providers: pb.providers,
            sampling_percent: pb.sampling_percent,
            custom_tags: map_values(pb.custom_tags, "custom_tags")?,
            disable_span_reporting: pb.disable_span_reporting,
        })
    }
}

impl Wire for m::CustomTag {
    type Pb = pb::CustomTag;

    fn to_pb(&self) -> pb::CustomTag {
        use pb::custom_tag::{Kind, Lookup};
        let lookup = |name: &String, default: &Option<String>| Lookup {
            name: name.clone(),
            default_value: default.clone(),
        };
        let kind = match self {
            m::CustomTag::Literal(v) => Kind::Literal(v.clone()),
            m::CustomTag::Environment { name, default } => Kind::Environment(lookup(name, default)),
            m::CustomTag::Header { name, default } => Kind::Header(lookup(name, default)),
        };
        pb::CustomTag { kind: Some(kind) }
    }

    fn from_pb(pb: pb::CustomTag) -> Result<Self, DecodeError> {
        use pb::custom_tag::Kind;
        match pb.kind {
            Some(Kind::Literal(v)) => Ok(m::CustomTag::Literal(v)),
            Some(Kind::Environment(l)) => Ok(m::CustomTag::Environment {
                name: l.name,
                default: l.default_value,
            }),
            Some(Kind::Header(l)) => Ok(m::CustomTag::Header {
                name: l.name,
                default: l.default_value,
            }),
            None => Err(DecodeError::here("no CustomTag kind is set")),
        }
    }
}

impl Wire for m::AccessLogPolicy {
    type Pb = pb::AccessLogPolicy;

    fn to_pb(&self) -> pb::AccessLogPolicy {
        pb::AccessLogPolicy {
            providers: self.providers.clone(),
            disabled: self.disabled,
            filter: self.filter.clone(),
        }
    }

    fn from_pb(pb: pb::AccessLogPolicy) -> Result<Self, DecodeError> {
        Ok(m::AccessLogPolicy {
            providers: pb.providers,
            disabled: pb.disabled,
            filter: pb.filter,
        })
    }
}
