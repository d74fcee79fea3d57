//! Conversions between the mesh model (`trellis-model`) and its protobuf form (`pb::mesh`).
//!
//! Encoding never fails: every model value has a wire form. Decoding checks what the
//! wire cannot (enum values, ports, durations) and names the field that is wrong, so a proxy
//! can NACK a resource with a precise reason and keep its last good configuration.
//!
//! PLACEHOLDER: JSON inside the message until the typed messages land.

use crate::pb::mesh as pb;

/// A message that does not describe a valid model value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DecodeError {
    /// Where, as a dotted path from the top-level message (`http_routes[2].timeout`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

macro_rules! json_placeholder {
    ($($model:ty => $pb:ident),* $(,)?) => {$(
        impl From<&$model> for pb::$pb {
            fn from(v: &$model) -> Self {
                pb::$pb { json: serde_json::to_vec(v).unwrap_or_default() }
            }
        }
        impl TryFrom<pb::$pb> for $model {
            type Error = DecodeError;
            fn try_from(v: pb::$pb) -> Result<Self, DecodeError> {
                serde_json::from_slice(&v.json).map_err(|e| DecodeError {
                    path: String::from(stringify!($pb)),
                    reason: e.to_string(),
                })
            }
        }
    )*};
}

json_placeholder! {
    trellis_model::Service => Service,
    trellis_model::Endpoint => Endpoint,
    trellis_model::Gateway => Gateway,
    trellis_model::Workload => Workload,
    trellis_model::SecurityPolicies => SecurityPolicies,
    trellis_model::TelemetryPolicy => TelemetryPolicy,
}
