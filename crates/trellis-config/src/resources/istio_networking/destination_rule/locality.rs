//! Locality-aware and zone-aware load balancing of a DestinationRule: weighted distribution
//! across localities and failover between regions.

use crate::diag::{Code, Severity};
use crate::validate::Cx;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Locality-weighted distribution or failover (`LocalityLoadBalancerSetting`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityLoadBalancerSetting {
    pub distribute: Vec<LocalityDistribute>,
    pub failover: Vec<LocalityFailover>,
    /// Labels whose equality with the client's orders endpoints into priorities.
    pub failover_priority: Vec<String>,
    pub enabled: Option<bool>,
}

/// Traffic from locality `from` goes to the localities in `to` by weight (summing to 100).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityDistribute {
    pub from: String,
    pub to: BTreeMap<String, u32>,
}

/// When region `from` has no healthy endpoints, use region `to`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalityFailover {
    pub from: String,
    pub to: String,
}

/// Envoy zone-aware routing (`ZoneAwareLoadBalancerSetting`); exclusive with the locality setting.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ZoneAwareLoadBalancerSetting {
    pub enabled: Option<bool>,
    pub failover: Vec<LocalityFailover>,
    pub failover_priority: Vec<String>,
    pub min_cluster_size: Option<u64>,
}

/// Region, zone and subzone are implied by failover; naming them in failoverPriority conflicts.
const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// A locality `region/zone/subzone` may end in one `*`.
fn locality(cx: &mut Cx, field: &str, l: &str) {
    let stars = l.matches('*').count();
    if stars > 1 || (stars == 1 && !l.ends_with('*')) {
        cx.error_at(
            field,
            format!("locality {l:?}: only one `*`, at the end, is allowed"),
        );
    }
    if l.split('/').count() > 3 {
        cx.error_at(
            field,
            format!("locality {l:?} has more than region/zone/subzone"),
        );
    }
}

fn failovers(cx: &mut Cx, list: &[LocalityFailover], priority: &[String], has_outlier: bool) {
    if (!list.is_empty() || !priority.is_empty()) && !has_outlier {
        cx.report(
            Severity::Warning,
            Code::IgnoredSetting,
            "failover needs outlierDetection in the same traffic policy; without it endpoints are never marked unhealthy",
        );
    }
    cx.field("failover", |cx| {
        for (i, f) in list.iter().enumerate() {
            cx.index(i, |cx| {
                if f.from == f.to {
                    cx.error(format!("failover from {:?} to the same region", f.from));
                }
                if f.from.contains('/') || f.to.contains('/') {
                    cx.error("failover names regions only (no zone or subzone after `/`)");
                }
                if f.from.contains('*') || f.to.contains('*') {
                    cx.error("failover regions cannot contain `*`");
                }
            });
        }
    });
}

impl LocalityLoadBalancerSetting {
    pub(super) fn validate_with(&self, cx: &mut Cx, has_outlier: bool) {
        if !self.distribute.is_empty() && !self.failover.is_empty() {
            cx.error("distribute and failover cannot both be set");
        }
        if !self.failover.is_empty()
            && let Some(l) = self
                .failover_priority
                .iter()
                .find(|l| TOPOLOGY_LABELS.contains(&l.as_str()))
        {
            cx.error_at(
                "failoverPriority",
                format!("{l:?} cannot be in failoverPriority when failover is set"),
            );
        }
        cx.field("distribute", |cx| {
            for (i, d) in self.distribute.iter().enumerate() {
                cx.index(i, |cx| {
                    locality(cx, "from", &d.from);
                    cx.field("to", |cx| {
                        for (loc, w) in &d.to {
                            locality(cx, loc, loc);
                            if !(1..=100).contains(w) {
                                cx.error_at(
                                    loc,
                                    format!("locality weight must be between 1 and 100, got {w}"),
                                );
                            }
                        }
                    });
                    let total: u64 = d.to.values().map(|w| u64::from(*w)).sum();
                    if total != 100 {
                        cx.error_at(
                            "to",
                            format!("locality weights must add up to 100, got {total}"),
                        );
                    }
                });
            }
        });
        failovers(cx, &self.failover, &self.failover_priority, has_outlier);
    }
}

impl ZoneAwareLoadBalancerSetting {
    pub(super) fn validate_with(&self, cx: &mut Cx, has_outlier: bool) {
        if let Some(l) = self
            .failover_priority
            .iter()
            .find(|l| TOPOLOGY_LABELS.contains(&l.as_str()))
        {
            cx.error_at(
                "failoverPriority",
                format!("{l:?} cannot be in failoverPriority of zone-aware balancing; region and zone routing is automatic"),
            );
        }
        failovers(cx, &self.failover, &self.failover_priority, has_outlier);
        if self.min_cluster_size == Some(0) {
            cx.error_at("minClusterSize", "minClusterSize must be at least 1");
        }
    }
}
