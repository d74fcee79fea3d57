//! Conversions between the mesh model (`trellis-model`) and its protobuf form (`pb::mesh`).
//!
//! Encoding never fails: every model value has a wire form. Decoding checks what the
//! wire cannot (enum values, ports, required sub-messages, oneofs) and names the field that
//! is wrong, so a proxy can NACK a resource with a precise reason and keep its last good
//! configuration.
//!
//! One submodule per area, following the `.proto` files (the shared vocabulary of
//! `common.proto` is here). Every model type converts through the crate-private `Wire`
//! trait; the public `From`/`TryFrom` impls exist only for the six top-level messages.

mod filters;
mod gateway;
mod policy;
mod routes;
mod security;
mod service;
mod telemetry;

use std::collections::BTreeMap;
use std::fmt;

use trellis_model as m;

use crate::pb::mesh as pb;

/// A message that does not describe a valid model value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DecodeError {
    /// Where, as a dotted path from the top-level message (`http_routes[2].retry.per_try_timeout_ms`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl DecodeError {
    /// An error about the value itself; the callers up the tree add the field names.
    fn here(reason: impl Into<String>) -> Self {
        DecodeError {
            path: String::new(),
            reason: reason.into(),
        }
    }

    /// Prepends a field to the path. Errors are built at the failing leaf and gain their
    /// parents' field names on the way up, so a successful decode formats no path at all.
    fn under(mut self, field: impl fmt::Display) -> Self {
        self.path = if self.path.is_empty() {
            field.to_string()
        } else {
            format!("{field}.{}", self.path)
        };
        self
    }
}

/// A model type and the protobuf type it travels as.
pub(crate) trait Wire: Sized {
    /// The generated message, enum number (`i32`) or scalar it is carried as.
    type Pb;
    /// The wire form; total, as every model value has one.
    fn to_pb(&self) -> Self::Pb;
    /// The model value, or what is wrong with the wire form (path relative to `pb`).
    fn from_pb(pb: Self::Pb) -> Result<Self, DecodeError>;
}

/// Ports and statuses: `uint32` on the wire, as protobuf has no 16-bit integer.
impl Wire for u16 {
    type Pb = u32;

    fn to_pb(&self) -> u32 {
        u32::from(*self)
    }

    fn from_pb(pb: u32) -> Result<Self, DecodeError> {
        u16::try_from(pb).map_err(|_| DecodeError::here(format!("{pb} does not fit in 16 bits")))
    }
}

/// Durations are whole milliseconds, as `trellis_model::serde_millis` writes them.
impl Wire for std::time::Duration {
    type Pb = u64;

    fn to_pb(&self) -> u64 {
        // Saturating like serde_millis: u64::MAX milliseconds means "forever" either way.
        u64::try_from(self.as_millis()).unwrap_or(u64::MAX)
    }

    fn from_pb(pb: u64) -> Result<Self, DecodeError> {
        Ok(std::time::Duration::from_millis(pb))
    }
}

/// Maps a model enum onto a generated proto enum, variant by variant, both ways. Unknown
/// numbers (a newer peer, or garbage) and the `_UNSPECIFIED` value fail to decode.
macro_rules! wire_enum {
    ($model:ident => $pb:ident { $($m:ident <=> $p:ident),* $(,)? } $(unspecified $u:ident)?) => {
        impl $crate::convert::Wire for trellis_model::$model {
            type Pb = i32;

            fn to_pb(&self) -> i32 {
                match self {
                    $(trellis_model::$model::$m => $crate::pb::mesh::$pb::$p as i32,)*
                }
            }

            fn from_pb(pb: i32) -> Result<Self, $crate::convert::DecodeError> {
                match $crate::pb::mesh::$pb::try_from(pb) {
                    $(Ok($crate::pb::mesh::$pb::$p) => Ok(trellis_model::$model::$m),)*
                    $(Ok($crate::pb::mesh::$pb::$u) => Err($crate::convert::DecodeError::here(
                        concat!(stringify!($pb), " is unspecified"),
                    )),)?
                    Err(_) => Err($crate::convert::DecodeError::here(format!(
                        concat!("unknown ", stringify!($pb), " value {}"),
                        pb
                    ))),
                }
            }
        }
    };
}
use wire_enum;

/// The wire form of an optional value.
fn opt_to_pb<T: Wire>(v: &Option<T>) -> Option<T::Pb> {
    v.as_ref().map(Wire::to_pb)
}

/// The wire form of a list, order kept.
fn list_to_pb<T: Wire>(v: &[T]) -> Vec<T::Pb> {
    v.iter().map(Wire::to_pb).collect()
}

/// Decodes a value that is always present on the wire (a scalar or enum field).
fn field<T: Wire>(pb: T::Pb, name: &str) -> Result<T, DecodeError> {
    T::from_pb(pb).map_err(|e| e.under(name))
}

/// Decodes a sub-message mirroring a non-`Option` model field: the encoder always writes
/// it, so its absence means the message was not produced by a Trellis control plane.
fn required<T: Wire>(pb: Option<T::Pb>, name: &str) -> Result<T, DecodeError> {
    match pb {
        Some(pb) => field(pb, name),
        None => Err(DecodeError::here("required field is missing").under(name)),
    }
}

/// Decodes an `optional` scalar or a sub-message mirroring an `Option`.
fn optional<T: Wire>(pb: Option<T::Pb>, name: &str) -> Result<Option<T>, DecodeError> {
    pb.map(|pb| field(pb, name)).transpose()
}

/// Decodes a repeated field, naming the failing element `name[i]`.
fn list<T: Wire>(pb: Vec<T::Pb>, name: &str) -> Result<Vec<T>, DecodeError> {
    pb.into_iter()
        .enumerate()
        .map(|(i, pb)| T::from_pb(pb).map_err(|e| e.under(format_args!("{name}[{i}]"))))
        .collect()
}

/// The wire form of a map whose values convert.
fn map_to_pb<K: Ord + Clone, T: Wire>(m: &BTreeMap<K, T>) -> BTreeMap<K, T::Pb> {
    m.iter().map(|(k, v)| (k.clone(), v.to_pb())).collect()
}

/// Decodes the values of a map field, naming the failing entry `name[key]`.
fn map_values<K: Ord + fmt::Display, T: Wire>(
    pb: BTreeMap<K, T::Pb>,
    name: &str,
) -> Result<BTreeMap<K, T>, DecodeError> {
    pb.into_iter()
        .map(|(k, v)| match T::from_pb(v) {
            Ok(v) => Ok((k, v)),
            Err(e) => Err(e.under(format_args!("{name}[{k}]"))),
        })
        .collect()
}

/// The public conversions of the top-level messages, which the xDS resources carry.
macro_rules! top_level {
    ($($model:ident),* $(,)?) => {$(
        impl From<&trellis_model::$model> for pb::$model {
            fn from(v: &trellis_model::$model) -> Self {
                v.to_pb()
            }
        }

        impl TryFrom<pb::$model> for trellis_model::$model {
            type Error = DecodeError;

            fn try_from(v: pb::$model) -> Result<Self, DecodeError> {
                Wire::from_pb(v)
            }
        }
    )*};
}

top_level! {
    Service,
    Endpoint,
    Gateway,
    Workload,
    SecurityPolicies,
    TelemetryPolicy,
}

// Shared vocabulary (`common.proto`), used by every area.

impl Wire for m::SourceRef {
    type Pb = pb::SourceRef;

    fn to_pb(&self) -> pb::SourceRef {
        pb::SourceRef {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn from_pb(pb: pb::SourceRef) -> Result<Self, DecodeError> {
        Ok(m::SourceRef {
            kind: pb.kind,
            namespace: pb.namespace,
            name: pb.name,
        })
    }
}

/// Only `Option<Labels>` selectors travel as a [`pb::Selector`] (see common.proto); label
/// maps that are always present are plain map fields.
impl Wire for m::Labels {
    type Pb = pb::Selector;

    fn to_pb(&self) -> pb::Selector {
        pb::Selector {
            match_labels: self.clone(),
        }
    }

    fn from_pb(pb: pb::Selector) -> Result<Self, DecodeError> {
        Ok(pb.match_labels)
    }
}

wire_enum!(Protocol => Protocol {
    Http <=> Http,
    Http2 <=> Http2,
    Grpc <=> Grpc,
    GrpcWeb <=> GrpcWeb,
    Https <=> Https,
    Tls <=> Tls,
    Tcp <=> Tcp,
    Mongo <=> Mongo,
    Unknown <=> Unknown,
});

impl Wire for m::StringMatch {
    type Pb = pb::StringMatch;

    fn to_pb(&self) -> pb::StringMatch {
        use pb::string_match::Kind;
        let kind = match self {
            m::StringMatch::Exact(s) => Kind::Exact(s.clone()),
            m::StringMatch::Prefix(s) => Kind::Prefix(s.clone()),
            m::StringMatch::PathPrefix(s) => Kind::PathPrefix(s.clone()),
            m::StringMatch::Regex(s) => Kind::Regex(s.clone()),
        };
        pb::StringMatch { kind: Some(kind) }
    }

    fn from_pb(pb: pb::StringMatch) -> Result<Self, DecodeError> {
        use pb::string_match::Kind;
        match pb.kind {
            Some(Kind::Exact(s)) => Ok(m::StringMatch::Exact(s)),
            Some(Kind::Prefix(s)) => Ok(m::StringMatch::Prefix(s)),
            Some(Kind::PathPrefix(s)) => Ok(m::StringMatch::PathPrefix(s)),
            Some(Kind::Regex(s)) => Ok(m::StringMatch::Regex(s)),
            None => Err(DecodeError::here("no StringMatch kind is set")),
        }
    }
}

impl Wire for m::Destination {
    type Pb = pb::Destination;

    fn to_pb(&self) -> pb::Destination {
        pb::Destination {
            host: self.host.clone(),
            subset: self.subset.clone(),
            port: opt_to_pb(&self.port),
        }
    }

    fn from_pb(pb: pb::Destination) -> Result<Self, DecodeError> {
        Ok(m::Destination {
            host: pb.host,
            subset: pb.subset,
            port: optional(pb.port, "port")?,
        })
    }
}

/// One `(name, value)` entry of a header edit list.
impl Wire for (String, String) {
    type Pb = pb::HeaderValue;

    fn to_pb(&self) -> pb::HeaderValue {
        pb::HeaderValue {
            name: self.0.clone(),
            value: self.1.clone(),
        }
    }

    fn from_pb(pb: pb::HeaderValue) -> Result<Self, DecodeError> {
        Ok((pb.name, pb.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_the_leaf_up() {
        let e = DecodeError::here("bad")
            .under("per_try_timeout_ms")
            .under("retry")
            .under("http_routes[2]");
        assert_eq!(e.path, "http_routes[2].retry.per_try_timeout_ms");
        assert_eq!(
            e.to_string(),
            "http_routes[2].retry.per_try_timeout_ms: bad"
        );
    }

    #[test]
    fn ports_must_fit_16_bits() {
        assert_eq!(u16::from_pb(65535), Ok(65535));
        let e = list::<u16>(vec![80, 70000], "ports").err();
        assert_eq!(e.map(|e| e.path), Some("ports[1]".to_string()));
    }
}
