//! Route rules that cannot work as written: weights that do not add up to 100 (TRL2001), rules that
//! say nowhere to send a request (TRL2002), and rules or matches that can never be reached because
//! an earlier one takes every request first (IST0131).

use super::{Index, Report};
use crate::diag::{Code, Severity};
use crate::resources::Resource;
use crate::resources::Spec;
use crate::resources::istio_networking::{HttpMatchRequest, VirtualService};

/// Run every route check.
pub fn check(index: &Index<'_>, report: &mut Report) {
    for r in index.resources {
        if let Spec::VirtualService(vs) = &r.spec {
            weights(report, r, vs);
            actions(report, r, vs);
            reachability(report, r, vs);
        }
    }
}

/// Weights of one rule's destinations as Istio reads them: a lone destination without a weight gets
/// everything; otherwise a missing weight is 0.
fn weight_sum(weights: &[Option<i32>]) -> Option<i64> {
    match weights {
        [] | [None] => None,
        ws => Some(ws.iter().map(|w| i64::from(w.unwrap_or(0))).sum()),
    }
}

fn report_weights(report: &mut Report, r: &Resource, path: &str, weights: &[Option<i32>]) {
    match weight_sum(weights) {
        Some(0) => report.with_severity(
            r,
            path,
            Code::WeightSum,
            Severity::Error,
            "every destination has weight 0: no request can be routed",
        ),
        Some(sum) if sum != 100 => report.at(
            r,
            path,
            Code::WeightSum,
            format!("route weights add up to {sum}, not 100; like Istio, Trellis treats them as proportions of {sum}"),
        ),
        _ => {}
    }
}

fn weights(report: &mut Report, r: &Resource, vs: &VirtualService) {
    for (i, rule) in vs.http.iter().enumerate() {
        let ws: Vec<Option<i32>> = rule.route.iter().map(|d| d.weight).collect();
        report_weights(report, r, &format!("spec.http[{i}].route"), &ws);
    }
    for (i, rule) in vs.tcp.iter().enumerate() {
        let ws: Vec<Option<i32>> = rule.route.iter().map(|d| d.weight).collect();
        report_weights(report, r, &format!("spec.tcp[{i}].route"), &ws);
    }
    for (i, rule) in vs.tls.iter().enumerate() {
        let ws: Vec<Option<i32>> = rule.route.iter().map(|d| d.weight).collect();
        report_weights(report, r, &format!("spec.tls[{i}].route"), &ws);
    }
}

fn actions(report: &mut Report, r: &Resource, vs: &VirtualService) {
    for (i, rule) in vs.http.iter().enumerate() {
        if !rule.has_action() {
            let what: Vec<&str> = [
                ("timeout", rule.timeout.is_some()),
                ("retries", rule.retries.is_some()),
                ("fault", rule.fault.is_some()),
                ("headers", rule.headers.is_some()),
                ("match", !rule.matches.is_empty()),
            ]
            .iter()
            .filter(|(_, set)| *set)
            .map(|(n, _)| *n)
            .collect();
            let hint = if what.is_empty() {
                String::new()
            } else {
                format!(
                    " (it sets {}: these belong in the rule that routes)",
                    what.join(", ")
                )
            };
            report.at(
                r,
                &format!("spec.http[{i}]"),
                Code::RuleWithoutAction,
                format!(
                    "rule spec.http[{i}] has no route, redirect, directResponse or delegate{hint}"
                ),
            );
        }
    }
    for (i, rule) in vs.tcp.iter().enumerate() {
        if rule.route.is_empty() {
            report.at(
                r,
                &format!("spec.tcp[{i}]"),
                Code::RuleWithoutAction,
                format!("rule spec.tcp[{i}] has no route"),
            );
        }
    }
    for (i, rule) in vs.tls.iter().enumerate() {
        if rule.route.is_empty() {
            report.at(
                r,
                &format!("spec.tls[{i}]"),
                Code::RuleWithoutAction,
                format!("rule spec.tls[{i}] has no route"),
            );
        }
    }
}

/// A match that every request satisfies: no condition, or only `uri: {prefix: /}`.
fn matches_everything(m: &HttpMatchRequest) -> bool {
    let plain = HttpMatchRequest {
        name: None,
        stat_prefix: None,
        uri: None,
        ignore_uri_case: false,
        ..m.clone()
    };
    let uri_all = match &m.uri {
        None => true,
        Some(u) => u.prefix.as_deref() == Some("/") && u.exact.is_none() && u.regex.is_none(),
    };
    uri_all && plain == HttpMatchRequest::default()
}

/// The match without the fields that do not change what it matches (name, stat prefix).
fn essence(m: &HttpMatchRequest) -> HttpMatchRequest {
    HttpMatchRequest {
        name: None,
        stat_prefix: None,
        ..m.clone()
    }
}

fn reachability(report: &mut Report, r: &Resource, vs: &VirtualService) {
    // The first rule that matches every request hides all rules after it.
    let catch_all = vs
        .http
        .iter()
        .position(|rule| rule.matches.is_empty() || rule.matches.iter().any(matches_everything));
    if let Some(first) = catch_all {
        for j in first + 1..vs.http.len() {
            report.at(
                r,
                &format!("spec.http[{j}]"),
                Code::IneffectiveMatch,
                format!("rule spec.http[{j}] can never match: spec.http[{first}] before it matches every request"),
            );
        }
    }
    // A match identical to an earlier one (in an earlier rule or the same rule) never decides anything.
    let limit = catch_all.map_or(vs.http.len(), |c| c + 1);
    let mut seen: Vec<(HttpMatchRequest, usize, usize)> = Vec::new();
    for (i, rule) in vs.http.iter().enumerate().take(limit) {
        for (j, m) in rule.matches.iter().enumerate() {
            let e = essence(m);
            if let Some((_, pi, pj)) = seen.iter().find(|(s, _, _)| *s == e) {
                report.at(
                    r,
                    &format!("spec.http[{i}].match[{j}]"),
                    Code::IneffectiveMatch,
                    format!("this match is identical to spec.http[{pi}].match[{pj}], which comes first; it can never match"),
                );
            } else {
                seen.push((e, i, j));
            }
        }
    }
    if let Some(first) = vs.tcp.iter().position(|rule| rule.matches.is_empty()) {
        for j in first + 1..vs.tcp.len() {
            report.at(
                r,
                &format!("spec.tcp[{j}]"),
                Code::IneffectiveMatch,
                format!("rule spec.tcp[{j}] can never match: spec.tcp[{first}] before it matches every connection"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::weight_sum;

    #[test]
    fn weights_follow_istio_defaults() {
        assert_eq!(weight_sum(&[None]), None);
        assert_eq!(weight_sum(&[Some(90), Some(10)]), Some(100));
        assert_eq!(weight_sum(&[Some(90), None]), Some(90));
        assert_eq!(weight_sum(&[Some(100)]), Some(100));
        assert_eq!(weight_sum(&[Some(50)]), Some(50));
    }
}
