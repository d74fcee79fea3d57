//! Load-balancer settings of a DestinationRule traffic policy: the algorithm, consistent hashing
//! and slow start (warmup). Locality- and zone-aware balancing are in `locality.rs`.

use super::super::virtual_service::checks;
use super::{LocalityLoadBalancerSetting, ZoneAwareLoadBalancerSetting};
use crate::diag::{Code, Severity};
use crate::resources::common::Duration;
use crate::validate::{Cx, Validate};
use serde::Deserialize;

/// How requests are spread over endpoints (`LoadBalancerSettings`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadBalancerSettings {
    pub simple: Option<SimpleLb>,
    pub consistent_hash: Option<ConsistentHashLb>,
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    pub zone_aware_lb_setting: Option<ZoneAwareLoadBalancerSetting>,
    /// Slow-start window for new endpoints (a duration, despite the name).
    pub warmup_duration_secs: Option<Duration>,
    pub warmup: Option<WarmupConfiguration>,
}

/// A simple balancing algorithm (`LoadBalancerSettings.SimpleLB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// Let the proxy choose (Istio picks LEAST_REQUEST).
    Unspecified,
    /// Deprecated alias of LEAST_REQUEST.
    LeastConn,
    Random,
    /// Forward to the address the caller asked for, no balancing.
    Passthrough,
    RoundRobin,
    LeastRequest,
}

impl SimpleLb {
    /// LEAST_CONN means LEAST_REQUEST; everything else is itself.
    pub fn canonical(self) -> SimpleLb {
        match self {
            SimpleLb::LeastConn => SimpleLb::LeastRequest,
            other => other,
        }
    }
}

/// Session affinity by hashing a request property (`ConsistentHashLB`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsistentHashLb {
    pub http_header_name: Option<String>,
    pub http_cookie: Option<HttpCookie>,
    pub use_source_ip: Option<bool>,
    pub http_query_parameter_name: Option<String>,
    pub ring_hash: Option<RingHash>,
    pub maglev: Option<Maglev>,
    /// Deprecated; use `ringHash.minimumRingSize`.
    pub minimum_ring_size: Option<u64>,
}

/// Ketama ring hashing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RingHash {
    pub minimum_ring_size: Option<u64>,
}

/// Maglev hashing; the table size must be prime.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Maglev {
    pub table_size: Option<u64>,
}

/// Hash on a cookie; the proxy sets it when absent (`HTTPCookie`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpCookie {
    pub name: String,
    pub path: Option<String>,
    pub ttl: Option<Duration>,
    pub attributes: Vec<HttpCookieAttribute>,
}

/// An extra attribute of a generated cookie (`SameSite=Strict`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpCookieAttribute {
    pub name: String,
    pub value: Option<String>,
}

/// Slow start for new endpoints (`WarmupConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WarmupConfiguration {
    pub duration: Option<Duration>,
    pub minimum_percent: Option<f64>,
    pub aggression: Option<f64>,
}

impl Validate for LoadBalancerSettings {
    fn validate(&self, cx: &mut Cx) {
        self.validate_with(cx, true);
    }
}

impl LoadBalancerSettings {
    /// `has_outlier`: the same policy has outlier detection, without which failover never fires.
    pub(super) fn validate_with(&self, cx: &mut Cx, has_outlier: bool) {
        cx.one_of(
            &["simple", "consistentHash"],
            &[self.simple.is_some(), self.consistent_hash.is_some()],
            false,
        );
        if self.simple == Some(SimpleLb::LeastConn) {
            cx.report_at(
                "simple",
                Severity::Warning,
                Code::DeprecatedField,
                "`LEAST_CONN` is deprecated; use LEAST_REQUEST",
            );
        }
        cx.opt("consistentHash", &self.consistent_hash);
        cx.one_of(
            &["localityLbSetting", "zoneAwareLbSetting"],
            &[
                self.locality_lb_setting.is_some(),
                self.zone_aware_lb_setting.is_some(),
            ],
            false,
        );
        if let Some(l) = &self.locality_lb_setting {
            cx.field("localityLbSetting", |cx| l.validate_with(cx, has_outlier));
        }
        if let Some(z) = &self.zone_aware_lb_setting {
            cx.field("zoneAwareLbSetting", |cx| z.validate_with(cx, has_outlier));
        }
        cx.one_of(
            &["warmupDurationSecs", "warmup"],
            &[self.warmup_duration_secs.is_some(), self.warmup.is_some()],
            false,
        );
        checks::duration(cx, "warmupDurationSecs", &self.warmup_duration_secs);
        cx.opt("warmup", &self.warmup);
    }
}

impl Validate for ConsistentHashLb {
    fn validate(&self, cx: &mut Cx) {
        cx.one_of(
            &[
                "httpHeaderName",
                "httpCookie",
                "useSourceIp",
                "httpQueryParameterName",
            ],
            &[
                self.http_header_name.is_some(),
                self.http_cookie.is_some(),
                self.use_source_ip.is_some(),
                self.http_query_parameter_name.is_some(),
            ],
            true,
        );
        cx.opt("httpCookie", &self.http_cookie);
        cx.one_of(
            &["ringHash", "maglev"],
            &[self.ring_hash.is_some(), self.maglev.is_some()],
            false,
        );
        if self.minimum_ring_size.is_some() {
            cx.deprecated("minimumRingSize", "`ringHash.minimumRingSize`");
            if self.ring_hash.is_some() || self.maglev.is_some() {
                cx.error_at(
                    "minimumRingSize",
                    "minimumRingSize cannot be combined with ringHash or maglev",
                );
            }
        }
        if let Some(m) = &self.maglev {
            cx.field("maglev", |cx| match m.table_size {
                None | Some(0) => cx.require("tableSize", false),
                Some(n) if n >= 5_000_011 => cx.error_at(
                    "tableSize",
                    format!("tableSize must be below 5000011, got {n}"),
                ),
                Some(n) if !is_prime(n) => cx.error_at(
                    "tableSize",
                    format!("tableSize must be a prime number (e.g. 65537), got {n}"),
                ),
                Some(_) => {}
            });
        }
    }
}

/// Envoy's check (which counts 1 as prime), so that what passes here also passes there.
fn is_prime(x: u64) -> bool {
    if x < 4 {
        return x != 0;
    }
    if x.is_multiple_of(2) {
        return false;
    }
    let mut f = 3u64;
    while f.saturating_mul(f) <= x {
        if x.is_multiple_of(f) {
            return false;
        }
        f += 2;
    }
    true
}

impl ConsistentHashLb {
    /// Ring size in effect: `ringHash.minimumRingSize`, else the deprecated top-level field.
    pub fn effective_minimum_ring_size(&self) -> Option<u64> {
        self.ring_hash
            .as_ref()
            .and_then(|r| r.minimum_ring_size)
            .or(self.minimum_ring_size)
    }
}

impl Validate for HttpCookie {
    fn validate(&self, cx: &mut Cx) {
        cx.require("name", !self.name.is_empty());
        cx.field("attributes", |cx| {
            for (i, a) in self.attributes.iter().enumerate() {
                cx.index(i, |cx| {
                    if a.name.is_empty() {
                        cx.require("name", false);
                    } else if self.attributes[..i].iter().any(|b| b.name == a.name) {
                        cx.error_at("name", format!("duplicate cookie attribute {:?}", a.name));
                    }
                });
            }
        });
    }
}

impl Validate for WarmupConfiguration {
    fn validate(&self, cx: &mut Cx) {
        cx.require("duration", self.duration.is_some());
        checks::duration(cx, "duration", &self.duration);
        if let Some(p) = self.minimum_percent.filter(|p| !(0.0..=100.0).contains(p)) {
            cx.error_at(
                "minimumPercent",
                format!("minimumPercent must be between 0 and 100, got {p}"),
            );
        }
        if let Some(a) = self.aggression.filter(|a| a.is_nan() || *a <= 0.0) {
            cx.error_at(
                "aggression",
                format!("aggression must be greater than 0, got {a}"),
            );
        }
    }
}
