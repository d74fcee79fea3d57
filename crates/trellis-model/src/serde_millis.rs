//! Durations on the wire as whole milliseconds.
//!
//! Every timeout, interval and TTL in the model is a [`std::time::Duration`], but the
//! serialized form (what `/config_dump` shows and what the control plane ships) is a plain
//! integer of milliseconds: it is what Istio/Linkerd users read in dashboards and what a
//! proxy on another version can parse without agreeing on a duration string format.
//! Sub-millisecond precision is dropped on serialization, which no mesh setting needs.
//!
//! Use with `#[serde(with = "crate::serde_millis")]` for `Duration` fields and
//! `#[serde(with = "crate::serde_millis::option")]` for `Option<Duration>` fields.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Milliseconds in `d`, saturating instead of wrapping: a duration too long for `u64`
/// milliseconds (half a billion years) means "forever" either way.
fn to_millis(d: &Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Writes a `Duration` as integer milliseconds.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(to_millis(d))
}

/// Reads integer milliseconds into a `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// The same for `Option<Duration>`: `None` is written as `null`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(d)` as integer milliseconds and `None` as `null`.
    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_some(&super::to_millis(d)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads integer milliseconds or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(with = "crate::serde_millis")]
        d: Duration,
        #[serde(with = "crate::serde_millis::option", default)]
        o: Option<Duration>,
    }

    #[test]
    fn millis_round_trip() -> Result<(), serde_json::Error> {
        let t = T {
            d: Duration::from_millis(1500),
            o: Some(Duration::from_secs(2)),
        };
        let json = serde_json::to_string(&t)?;
        assert_eq!(json, r#"{"d":1500,"o":2000}"#);
        assert_eq!(serde_json::from_str::<T>(&json)?, t);
        let t: T = serde_json::from_str(r#"{"d":0}"#)?;
        assert_eq!(
            t,
            T {
                d: Duration::ZERO,
                o: None
            }
        );
        let t: T = serde_json::from_str(r#"{"d":1,"o":null}"#)?;
        assert_eq!(t.o, None);
        Ok(())
    }

    #[test]
    fn huge_duration_saturates() {
        assert_eq!(super::to_millis(&Duration::MAX), u64::MAX);
    }
}
