//! Types shared by every API family: object metadata, durations, string matches, selectors,
//! percentages, int-or-string and quantities.
//!
//! Conventions for every resource type in this crate (they make positions and unknown-field
//! reporting work, see `yaml::de`):
//! - `#[serde(rename_all = "camelCase", default)]` on structs; required fields are checked by
//!   [`Validate`], so one missing field does not hide the others.
//! - No `deny_unknown_fields` (the loader reports unknown fields itself, with a hint), no
//!   `#[serde(flatten)]`, no `#[serde(untagged)]` and no `IgnoredAny` (they would lose positions).

use crate::validate::{Cx, Validate};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// String-to-string map: labels, annotations, matchLabels.
pub type Labels = BTreeMap<String, String>;

/// A value kept as written, for fields Trellis carries but does not interpret.
pub type Opaque = serde_json::Value;

/// Kubernetes object metadata. Fields written by the API server are accepted so that
/// `kubectl get -o yaml` output loads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Labels,
    pub annotations: Labels,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
    pub creation_timestamp: Option<Opaque>,
    pub deletion_timestamp: Option<Opaque>,
    pub deletion_grace_period_seconds: Option<i64>,
    pub owner_references: Vec<Opaque>,
    pub finalizers: Vec<String>,
    pub managed_fields: Vec<Opaque>,
    pub self_link: Option<String>,
}

/// A duration as Istio, Linkerd and the Gateway API write it: Go syntax (`1h30m`, `1.5s`, `100ms`,
/// `250us`, `0s`). Stored as nanoseconds. Parsed while loading, so a bad value is reported at its line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub nanos: u64,
}

impl Duration {
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos)
    }

    pub fn from_millis(ms: u64) -> Self {
        Duration {
            nanos: ms.saturating_mul(1_000_000),
        }
    }

    /// Parse Go/protobuf duration syntax.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if t.starts_with('-') {
            return Err(format!("invalid duration {s:?}: must not be negative"));
        }
        let t = t.strip_prefix('+').unwrap_or(t);
        if t == "0" {
            return Ok(Duration::default());
        }
        let bytes = t.as_bytes();
        let mut i = 0;
        let mut total: f64 = 0.0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let num: f64 = t[start..i].parse().map_err(|_| {
                format!("invalid duration {s:?}: expected a number followed by a unit (h, m, s, ms, us, ns), e.g. \"1.5s\"")
            })?;
            let ustart = i;
            while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let unit = match &t[ustart..i] {
                "h" => 3_600e9,
                "m" => 60e9,
                "s" => 1e9,
                "ms" => 1e6,
                "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
                "ns" => 1.0,
                "" => {
                    return Err(format!(
                        "invalid duration {s:?}: missing unit (h, m, s, ms, us, ns)"
                    ));
                }
                u => {
                    return Err(format!(
                        "invalid duration {s:?}: unknown unit {u:?} (use h, m, s, ms, us or ns)"
                    ));
                }
            };
            total += num * unit;
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(format!("invalid duration {s:?}: too large"));
        }
        Ok(Duration {
            nanos: total.round() as u64,
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nanos;
        if n.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", n / 1_000_000_000)
        } else if n.is_multiple_of(1_000_000) {
            write!(f, "{}ms", n / 1_000_000)
        } else if n.is_multiple_of(1_000) {
            write!(f, "{}us", n / 1_000)
        } else {
            write!(f, "{n}ns")
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"1.5s\" or \"100ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "invalid duration {v}: missing unit, write e.g. \"{v}s\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "invalid duration {v}: missing unit, write e.g. \"{v}s\""
                    )))
                }
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A regular expression (RE2 syntax, as Envoy uses). Kept as text; [`Validate`] compiles it and
/// reports IST0122 when it is invalid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RegexString(pub String);

/// Largest compiled regex accepted; keeps a hostile pattern from eating memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl RegexString {
    /// Compile, anchored as Envoy's safe_regex does (the whole value must match).
    pub fn compile(&self) -> Result<regex::Regex, regex::Error> {
        regex::RegexBuilder::new(&format!("^(?:{})$", self.0))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    }
}

impl Validate for RegexString {
    fn validate(&self, cx: &mut Cx) {
        if let Err(e) = self.compile() {
            let msg = e
                .to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_owned();
            cx.report(
                crate::diag::Severity::Error,
                crate::diag::Code::InvalidRegex,
                format!("invalid regular expression {:?}: {msg}", self.0),
            );
        }
    }
}

/// Istio `StringMatch`: exactly one of exact, prefix, regex.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StringMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<RegexString>,
}

impl Validate for StringMatch {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &["exact", "prefix", "regex"],
            &[
                self.exact.is_some(),
                self.prefix.is_some(),
                self.regex.is_some(),
            ],
            false,
        );
        cx.opt("regex", &self.regex);
    }
}

/// Istio `Percent`: `{value: 12.5}`, 0 to 100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Percent {
    pub value: f64,
}

impl Validate for Percent {
    fn validate(&self, cx: &mut Cx) {
        if !(0.0..=100.0).contains(&self.value) || self.value.is_nan() {
            cx.error_at(
                "value",
                format!("percentage must be between 0 and 100, got {}", self.value),
            );
        }
    }
}

/// Kubernetes int-or-string (`targetPort: 8080` or `targetPort: http`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kubernetes quantity as SMI weights use it (`900m`, `1`, `100`), in thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    pub milli: u64,
}

impl Quantity {
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let t = s.trim();
        let (num, scale) = if let Some(n) = t.strip_suffix('m') {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix('k') {
            (n, 1e6)
        } else {
            (t, 1e3)
        };
        let v: f64 = num
            .parse()
            .map_err(|_| format!("invalid quantity {s:?}: expected e.g. \"900m\" or \"90\""))?;
        if !(v.is_finite() && v >= 0.0) || v * scale > u64::MAX as f64 {
            return Err(format!(
                "invalid quantity {s:?}: must be a non-negative number"
            ));
        }
        Ok(Quantity {
            milli: (v * scale).round() as u64,
        })
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 900m or 90")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity {
                    milli: v.saturating_mul(1000),
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                u64::try_from(v)
                    .map(|v| Quantity {
                        milli: v.saturating_mul(1000),
                    })
                    .map_err(|_| E::custom("quantity must not be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Does this selector select an object with `labels`? An empty selector selects everything.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let got = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => got.is_some_and(|g| e.values.contains(g)),
                    "NotIn" => got.is_none_or(|g| !e.values.contains(g)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    _ => false,
                }
            })
    }
}

impl Validate for LabelSelector {
    fn validate(&self, cx: &mut Cx) {
        cx.field("matchExpressions", |cx| {
            for (i, e) in self.match_expressions.iter().enumerate() {
                cx.index(i, |cx| {
                    cx.require("key", !e.key.is_empty());
                    match e.operator.as_str() {
                        "In" | "NotIn" => {
                            if e.values.is_empty() {
                                cx.error_at("values", format!("operator {} needs at least one value", e.operator));
                            }
                        }
                        "Exists" | "DoesNotExist" => {
                            if !e.values.is_empty() {
                                cx.error_at("values", format!("operator {} takes no values", e.operator));
                            }
                        }
                        other => cx.error_at(
                            "operator",
                            format!("unknown operator {other:?}; expected In, NotIn, Exists or DoesNotExist"),
                        ),
                    }
                })
            }
        });
    }
}

/// Istio `WorkloadSelector`: `matchLabels` only.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    pub match_labels: Labels,
}

impl WorkloadSelector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_syntax() {
        assert_eq!(Duration::parse("1.5s").map(|d| d.nanos), Ok(1_500_000_000));
        assert_eq!(
            Duration::parse("1h30m").map(|d| d.nanos),
            Ok(5_400_000_000_000)
        );
        assert_eq!(Duration::parse("100ms").map(|d| d.nanos), Ok(100_000_000));
        assert_eq!(Duration::parse("0").map(|d| d.nanos), Ok(0));
        assert!(Duration::parse("3").is_err());
        assert!(Duration::parse("3x").is_err());
        assert!(Duration::parse("-1s").is_err());
        assert!(Duration::parse("").is_err());
        assert_eq!(
            Duration::parse("1.5s").map(|d| d.to_string()),
            Ok("1500ms".into())
        );
    }

    #[test]
    fn quantities_parse_milli_units() {
        assert_eq!(Quantity::parse("900m").map(|q| q.milli), Ok(900));
        assert_eq!(Quantity::parse("90").map(|q| q.milli), Ok(90_000));
        assert!(Quantity::parse("ten").is_err());
    }

    #[test]
    fn selectors_match_expressions() {
        let mut labels = Labels::new();
        labels.insert("app".into(), "web".into());
        let sel = LabelSelector {
            match_labels: labels.clone(),
            match_expressions: vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: vec![],
            }],
        };
        assert!(sel.matches(&labels));
        labels.insert("tier".into(), "x".into());
        assert!(!sel.matches(&labels));
    }
}
