//! DestinationRule pass: subsets and backend policy (load balancing, connection pools, outlier
//! detection, upstream TLS) of the services found by discovery.
//!
//! Which rules apply to a service follows Istio: the most specific host wins (an exact host beats
//! `*.example.com`, which beats `*.com`), and an exact rule is never merged with a wildcard one.
//! Several rules with the same (best) host are merged as Istio merges them: the first in input order
//! that has a `trafficPolicy` defines it, subsets are merged by name with the first definition
//! winning, and everything later that loses gets an IST0109 warning. A rule whose host matches no
//! service is skipped silently; the analyzer reports dangling references.
//!
//! `trafficPolicy.retryBudget` has no place in [`BackendPolicy`] (the model keeps retry budgets on
//! routes), so the VirtualService pass asks [`HostRules::retry_budget_for`].

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_traffic;
mod traffic;

use super::{Ctx, source_ref};
use crate::diag::{Code, Severity};
use crate::resources::istio_networking::{self as istio, DestinationRule};
use crate::resources::{Kind, Resource, Spec};
use std::collections::{HashMap, HashSet};
use trellis_model::{BackendPolicy, PortPolicy, RetryBudget, Subset, host_match_rank};

/// A DestinationRule with its host made fully qualified in the rule's namespace.
struct HostRule<'a> {
    r: &'a Resource,
    dr: &'a DestinationRule,
    host: String,
}

/// What one DestinationRule contributes, mapped once even when a wildcard host applies it to many
/// services (so its diagnostics are reported once).
#[derive(Debug, Clone, Default)]
struct MappedRule {
    /// Service-level policy and port-level overrides, when the rule has a `trafficPolicy`.
    policy: Option<(BackendPolicy, Vec<PortPolicy>)>,
    subsets: Vec<Subset>,
}

/// Every DestinationRule of the input, in input order, with its host resolved, indexed so that
/// finding the rules for a host costs a hash lookup plus a scan of the wildcard rules only (a mesh
/// has thousands of exact rules and a handful of wildcard ones).
pub(crate) struct HostRules<'a> {
    rules: Vec<HostRule<'a>>,
    exact: HashMap<String, Vec<usize>>,
    wildcards: Vec<usize>,
}

impl<'a> HostRules<'a> {
    pub(crate) fn new(cx: &Ctx<'a>) -> Self {
        let rules: Vec<HostRule<'a>> = cx
            .of_kind(Kind::DestinationRule)
            .filter_map(|r| match &r.spec {
                Spec::DestinationRule(dr) if !dr.host.is_empty() => Some(HostRule {
                    r,
                    dr: dr.as_ref(),
                    host: cx.fqdn(&dr.host, &r.namespace),
                }),
                _ => None,
            })
            .collect();
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcards = Vec::new();
        for (i, hr) in rules.iter().enumerate() {
            if hr.host.starts_with('*') {
                wildcards.push(i);
            }
            exact
                .entry(hr.host.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
        HostRules {
            rules,
            exact,
            wildcards,
        }
    }

    /// Indices (input order) of the rules that apply to `host`: those with the most specific
    /// matching host, as Istio picks one host's rules and does not merge an exact rule with a
    /// wildcard one.
    fn applicable(&self, host: &str) -> Vec<usize> {
        if let Some(same) = self.exact.get(&host.to_ascii_lowercase()) {
            return same.clone();
        }
        let ranked: Vec<(usize, usize)> = self
            .wildcards
            .iter()
            .filter_map(|&i| Some((i, rank(&self.rules[i].host, host)?)))
            .collect();
        let Some(best) = ranked.iter().map(|(_, k)| *k).max() else {
            return Vec::new();
        };
        ranked
            .into_iter()
            .filter(|(_, k)| *k == best)
            .map(|(i, _)| i)
            .collect()
    }

    /// The retry budget the DestinationRules for `host` set (`trafficPolicy.retryBudget`,
    /// overridden by the subset's), for routes sending to `host`/`subset`. Kept here because
    /// [`BackendPolicy`] has no place for it; the same rule selection as [`compile`] applies.
    pub(crate) fn retry_budget_for(&self, host: &str, subset: Option<&str>) -> Option<RetryBudget> {
        let idx = self.applicable(host);
        let top = idx
            .iter()
            .find_map(|&i| self.rules[i].dr.traffic_policy.as_ref())
            .and_then(|tp| tp.retry_budget.as_ref());
        let sub = subset
            .and_then(|name| idx.iter().find_map(|&i| self.rules[i].dr.subset(name)))
            .and_then(|s| s.traffic_policy.as_ref())
            .and_then(|tp| tp.retry_budget.as_ref());
        sub.or(top).map(budget)
    }
}

/// How specifically rule host `pattern` names service `host`. Identical strings rank highest even
/// when both are wildcards (a DestinationRule for a `*.wikipedia.org` ServiceEntry).
fn rank(pattern: &str, host: &str) -> Option<usize> {
    if pattern.eq_ignore_ascii_case(host) {
        Some(usize::MAX)
    } else {
        host_match_rank(pattern, host)
    }
}

/// Attach subsets and backend policies from DestinationRules to the services they name.
pub(crate) fn compile(cx: &mut Ctx<'_>) {
    let index = HostRules::new(cx);
    if index.rules.is_empty() {
        return;
    }
    let rules = &index.rules;
    let hosts: Vec<String> = cx.mesh.services.iter().map(|s| s.host.clone()).collect();
    let mut mapped: Vec<Option<MappedRule>> = vec![None; rules.len()];
    // Conflicts are reported once per (rule, field), however many services a wildcard reaches.
    let mut reported: HashSet<(usize, String)> = HashSet::new();
    for host in hosts {
        let idx = index.applicable(&host);
        if idx.is_empty() {
            continue;
        }
        for &i in &idx {
            if mapped[i].is_none() {
                mapped[i] = Some(traffic::map_rule(cx, rules[i].r, rules[i].dr));
            }
        }
        let (policy, subsets) = merge(cx, rules, &mapped, &idx, &host, &mut reported);
        let origins: Vec<_> = idx.iter().map(|&i| source_ref(rules[i].r)).collect();
        let Some(svc) = cx.service_mut(&host) else {
            continue;
        };
        if let Some((policy, ports)) = policy {
            // Layer over what discovery set (e.g. `sessionAffinity: ClientIP` hashing), so a rule
            // replaces only the settings it makes.
            svc.policy = policy.merge_over(&svc.policy);
            svc.port_policies = ports;
        }
        for s in subsets {
            if svc.subset(&s.name).is_none() {
                svc.subsets.push(s);
            }
        }
        for o in origins {
            if !svc.origins.contains(&o) {
                svc.origins.push(o);
            }
        }
    }
}

type Merged = (Option<(BackendPolicy, Vec<PortPolicy>)>, Vec<Subset>);

/// Merge the rules `idx` for `host` as Istio does (first `trafficPolicy` wins, subsets by name,
/// first wins) and warn about what loses.
fn merge(
    cx: &mut Ctx<'_>,
    rules: &[HostRule<'_>],
    mapped: &[Option<MappedRule>],
    idx: &[usize],
    host: &str,
    reported: &mut HashSet<(usize, String)>,
) -> Merged {
    let mut policy: Option<(usize, (BackendPolicy, Vec<PortPolicy>))> = None;
    let mut subsets: Vec<(usize, Subset)> = Vec::new();
    for &i in idx {
        let Some(m) = &mapped[i] else { continue };
        if let Some(p) = &m.policy {
            match &policy {
                None => policy = Some((i, p.clone())),
                Some((owner, _)) => {
                    let owner = source_ref(rules[*owner].r);
                    let msg = format!(
                        "{owner} already sets the traffic policy for host {host}; this trafficPolicy is ignored for it (the first DestinationRule in input order wins, as Istio merges them)"
                    );
                    warn_once(
                        cx,
                        reported,
                        rules[i].r,
                        i,
                        "spec.trafficPolicy".into(),
                        msg,
                    );
                }
            }
        }
        for (j, s) in m.subsets.iter().enumerate() {
            match subsets.iter().find(|(_, have)| have.name == s.name) {
                None => subsets.push((i, s.clone())),
                // Duplicates inside one rule are the analyzer's (TRL2003).
                Some((owner, _)) if *owner == i => {}
                Some((owner, _)) => {
                    let owner = source_ref(rules[*owner].r);
                    let msg = format!(
                        "subset {:?} of host {host} is already defined by {owner}; this definition is ignored (the first one wins, as Istio merges DestinationRules)",
                        s.name
                    );
                    warn_once(
                        cx,
                        reported,
                        rules[i].r,
                        i,
                        format!("spec.subsets[{j}]"),
                        msg,
                    );
                }
            }
        }
    }
    (
        policy.map(|(_, p)| p),
        subsets.into_iter().map(|(_, s)| s).collect(),
    )
}

/// Report a losing part of a merged DestinationRule, once per rule and field.
fn warn_once(
    cx: &mut Ctx<'_>,
    reported: &mut HashSet<(usize, String)>,
    r: &Resource,
    rule: usize,
    path: String,
    msg: String,
) {
    if reported.insert((rule, path.clone())) {
        cx.report
            .with_severity(r, &path, Code::ConflictingHosts, Severity::Warning, msg);
    }
}

/// Istio's `RetryBudget` in the model: `percent` (default 20) of active requests becomes the
/// ratio, `minRetryConcurrency` (default 3) the floor of retries per second, `budgetInterval`
/// (default 10 s) the window.
fn budget(b: &istio::RetryBudget) -> RetryBudget {
    let d = RetryBudget::default();
    RetryBudget {
        retry_ratio: b
            .percent
            .filter(|p| p.is_finite() && *p >= 0.0)
            .map_or(0.2, |p| p / 100.0),
        min_retries_per_second: b.min_retry_concurrency.unwrap_or(3),
        ttl: b
            .budget_interval
            .map(|i| i.as_std())
            .filter(|t| !t.is_zero())
            .unwrap_or(d.ttl),
    }
}
