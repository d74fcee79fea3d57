//! Retry budgets for Istio routes. Istio states retries per route (`attempts`) and has no budget
//! on the route; Trellis brings Linkerd-style budgets to Istio routes from two places:
//!
//! - the destination's DestinationRule `trafficPolicy.retryBudget` (an Istio API field), and
//! - the VirtualService annotations `retry.trellis.dev/budget-ratio` (float, e.g. `0.2`),
//!   `retry.trellis.dev/budget-min-per-second` (integer) and `retry.trellis.dev/budget-ttl`
//!   (duration), documented as Trellis' own setting.
//!
//! Annotations are more specific (one VirtualService) and win field by field over the
//! DestinationRule's budget; unset fields come from it, or from Linkerd's defaults.

use crate::compile::Ctx;
use crate::compile::istio_policy::HostRules;
use crate::diag::Code;
use crate::resources::common::Duration;
use crate::resources::{Kind, Resource};
use std::collections::HashMap;
use trellis_model::{HttpRoute, RetryBudget};

/// Annotation: retries allowed per original request (0.2 = 20% extra load).
pub(super) const RATIO: &str = "retry.trellis.dev/budget-ratio";
/// Annotation: retries per second always allowed.
pub(super) const MIN_PER_SECOND: &str = "retry.trellis.dev/budget-min-per-second";
/// Annotation: window over which requests and retries are counted.
pub(super) const TTL: &str = "retry.trellis.dev/budget-ttl";
/// Annotation: `"true"` lets the VirtualService's routes retry non-idempotent requests
/// (POST, PATCH) that may have reached the server.
pub(super) const NON_IDEMPOTENT: &str = "retry.trellis.dev/non-idempotent";

/// Budget fields one VirtualService sets by annotation.
#[derive(Debug, Clone, Default, PartialEq)]
struct Override {
    ratio: Option<f64>,
    min_per_second: Option<u32>,
    ttl: Option<std::time::Duration>,
    non_idempotent: Option<bool>,
}

impl Override {
    /// Whether no annotation was set.
    fn is_empty(&self) -> bool {
        *self == Override::default()
    }

    /// Whether no budget annotation was set, so the DestinationRule's budget (if any)
    /// applies as is.
    fn has_budget(&self) -> bool {
        self.ratio.is_some() || self.min_per_second.is_some() || self.ttl.is_some()
    }
}

/// The annotation overrides of every VirtualService (roots and delegates), parsed once so invalid
/// values are reported once.
pub(super) struct Budgets<'a> {
    by_vs: HashMap<(String, String), Override>,
    rules: HostRules<'a>,
}

impl<'a> Budgets<'a> {
    /// Read the budget annotations of every VirtualService; invalid values get IST0106 at the
    /// annotation and are ignored.
    pub(super) fn parse(cx: &mut Ctx<'a>) -> Budgets<'a> {
        let mut by_vs = HashMap::new();
        for r in cx.of_kind(Kind::VirtualService) {
            let ov = parse_annotations(cx, r);
            if !ov.is_empty() {
                by_vs.insert((r.namespace.clone(), r.name.clone()), ov);
            }
        }
        Budgets {
            by_vs,
            rules: HostRules::new(cx),
        }
    }

    /// Give `route` (when it retries) its budget: the first of `sources` (the VirtualService the
    /// rule is in, then the one delegating to it) with budget annotations overrides, field by
    /// field, the budget of the DestinationRule of the first destination that has one.
    pub(super) fn attach(&self, route: &mut HttpRoute, sources: &[&Resource]) {
        let Some(retry) = route.retry.as_mut() else {
            return;
        };
        let ov = sources
            .iter()
            .find_map(|r| self.by_vs.get(&(r.namespace.clone(), r.name.clone())));
        if let Some(on) = ov.and_then(|o| o.non_idempotent) {
            retry.retry_non_idempotent = on;
        }
        let ov = ov.filter(|o| o.has_budget());
        let from_rule = route.action.destinations().iter().find_map(|d| {
            self.rules
                .retry_budget_for(&d.destination.host, d.destination.subset.as_deref())
        });
        let budget = match (from_rule, ov) {
            (None, None) => return,
            (Some(b), None) => b,
            (base, Some(ov)) => {
                let base = base.unwrap_or_default();
                RetryBudget {
                    retry_ratio: ov.ratio.unwrap_or(base.retry_ratio),
                    min_retries_per_second: ov
                        .min_per_second
                        .unwrap_or(base.min_retries_per_second),
                    ttl: ov.ttl.unwrap_or(base.ttl),
                }
            }
        };
        retry.budget = Some(budget);
    }
}

/// The budget annotations of `r`, reporting the ones that do not parse.
fn parse_annotations(cx: &mut Ctx<'_>, r: &Resource) -> Override {
    let ann = &r.meta.annotations;
    let mut ov = Override::default();
    let bad = |cx: &mut Ctx<'_>, key: &str, what: &str| {
        let value = ann.get(key).map(String::as_str).unwrap_or_default();
        cx.report.at(
            r,
            &format!("metadata.annotations.{key}"),
            Code::SchemaValidation,
            format!("annotation {key}: {value:?} is not {what}; it is ignored"),
        );
    };
    if let Some(v) = ann.get(RATIO) {
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => ov.ratio = Some(x),
            _ => bad(cx, RATIO, "a non-negative number such as 0.2"),
        }
    }
    if let Some(v) = ann.get(MIN_PER_SECOND) {
        match v.trim().parse::<u32>() {
            Ok(n) => ov.min_per_second = Some(n),
            Err(_) => bad(cx, MIN_PER_SECOND, "a non-negative integer"),
        }
    }
    if let Some(v) = ann.get(TTL) {
        match Duration::parse(v) {
            Ok(d) if d.nanos > 0 => ov.ttl = Some(d.as_std()),
            _ => bad(cx, TTL, "a positive duration such as 10s"),
        }
    }
    if let Some(v) = ann.get(NON_IDEMPOTENT) {
        match v.trim() {
            "true" => ov.non_idempotent = Some(true),
            "false" => ov.non_idempotent = Some(false),
            _ => bad(cx, NON_IDEMPOTENT, "\"true\" or \"false\""),
        }
    }
    ov
}
