//! Messages for unknown fields: where a misplaced field really belongs, or which field was meant.
//!
//! The table below holds the mistakes people actually make when copying from guides (the seeds in
//! `shared/fixtures/seed-configs` have several): route settings written at `spec` level, Linkerd's
//! retry budget inside a route, DestinationRule policies outside `trafficPolicy`.

use crate::resources::Kind;
use crate::yaml::de::UnknownField;

/// (kind, where the field was found, field, where it belongs). `where found` is a path pattern where
/// `[]` stands for any index; `None` kind means any kind.
const MISPLACED: &[(Option<Kind>, &str, &str, &str)] = &[
    // VirtualService: everything of a route rule written directly under spec.
    (
        Some(Kind::VirtualService),
        "spec",
        "timeout",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "retries",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "fault",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "mirror",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "mirrors",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "corsPolicy",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "headers",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "rewrite",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "redirect",
        "each rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "route",
        "a rule under `spec.http[]` (or `spec.tcp[]`/`spec.tls[]`)",
    ),
    (
        Some(Kind::VirtualService),
        "spec",
        "match",
        "a rule under `spec.http[]`",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[]",
        "host",
        "`spec.http[].route[].destination.host`",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[]",
        "subset",
        "`spec.http[].route[].destination.subset`",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[]",
        "destination",
        "`spec.http[].route[]` (a list of {destination, weight})",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[]",
        "weight",
        "`spec.http[].route[]` next to `destination`",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[].route[]",
        "timeout",
        "the rule (`spec.http[]`), not the destination",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[].route[]",
        "retries",
        "the rule (`spec.http[]`), not the destination",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[].route[].destination",
        "weight",
        "`spec.http[].route[]` next to `destination`",
    ),
    (
        Some(Kind::VirtualService),
        "spec.http[].retries",
        "timeout",
        "the rule (`spec.http[].timeout`); retries take `perTryTimeout`",
    ),
    // DestinationRule: policies belong under trafficPolicy.
    (
        Some(Kind::DestinationRule),
        "spec",
        "loadBalancer",
        "`spec.trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec",
        "connectionPool",
        "`spec.trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec",
        "outlierDetection",
        "`spec.trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec",
        "tls",
        "`spec.trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy",
        "subsets",
        "`spec.subsets`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.subsets[]",
        "loadBalancer",
        "`spec.subsets[].trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.subsets[]",
        "connectionPool",
        "`spec.subsets[].trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.subsets[]",
        "outlierDetection",
        "`spec.subsets[].trafficPolicy`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy",
        "maxConnections",
        "`spec.trafficPolicy.connectionPool.tcp`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy.connectionPool",
        "maxConnections",
        "`spec.trafficPolicy.connectionPool.tcp`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy.connectionPool",
        "http1MaxPendingRequests",
        "`spec.trafficPolicy.connectionPool.http`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy.connectionPool",
        "http2MaxRequests",
        "`spec.trafficPolicy.connectionPool.http`",
    ),
    (
        Some(Kind::DestinationRule),
        "spec.trafficPolicy.connectionPool",
        "maxRequestsPerConnection",
        "`spec.trafficPolicy.connectionPool.http`",
    ),
    // Linkerd ServiceProfile: one retry budget per service; routes only say whether they are retryable.
    (
        Some(Kind::ServiceProfile),
        "spec.routes[]",
        "retryBudget",
        "`spec.retryBudget` (one budget for the whole service); mark the route `isRetryable: true`",
    ),
    (
        Some(Kind::ServiceProfile),
        "spec.routes[]",
        "retries",
        "`spec.retryBudget` (ServiceProfile routes have no `retries`; mark the route `isRetryable: true`)",
    ),
    (
        Some(Kind::ServiceProfile),
        "spec.routes[]",
        "pathRegex",
        "`spec.routes[].condition.pathRegex`",
    ),
    (
        Some(Kind::ServiceProfile),
        "spec.routes[]",
        "method",
        "`spec.routes[].condition.method`",
    ),
    (
        Some(Kind::ServiceProfile),
        "spec",
        "timeout",
        "each route under `spec.routes[]`",
    ),
    (
        Some(Kind::ServiceProfile),
        "spec",
        "isRetryable",
        "each route under `spec.routes[]`",
    ),
    // Gateway API routes.
    (
        Some(Kind::HttpRoute),
        "spec",
        "matches",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::HttpRoute),
        "spec",
        "backendRefs",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::HttpRoute),
        "spec",
        "filters",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::HttpRoute),
        "spec",
        "timeouts",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::LinkerdHttpRoute),
        "spec",
        "matches",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::LinkerdHttpRoute),
        "spec",
        "backendRefs",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::GrpcRoute),
        "spec",
        "matches",
        "a rule under `spec.rules[]`",
    ),
    (
        Some(Kind::GrpcRoute),
        "spec",
        "backendRefs",
        "a rule under `spec.rules[]`",
    ),
    // Metadata written in the wrong place, any kind.
    (None, "", "name", "`metadata.name`"),
    (None, "", "namespace", "`metadata.namespace`"),
    (None, "", "labels", "`metadata.labels`"),
    (None, "", "annotations", "`metadata.annotations`"),
    (
        None,
        "spec",
        "labels",
        "`metadata.labels` (or a selector's `matchLabels`)",
    ),
    (None, "spec", "metadata", "the top level, next to `spec`"),
];

/// Replace indexes with `[]` so `spec.http[3]` matches the pattern `spec.http[]`.
fn generalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The message for one unknown field.
pub fn unknown_field_message(kind: Kind, u: &UnknownField) -> String {
    let at = if u.parent.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `{}`", u.parent)
    };
    let mut msg = format!("unknown field `{}` {at}", u.key);
    let general = generalize(&u.parent);
    if let Some((_, _, _, belongs)) = MISPLACED
        .iter()
        .find(|(k, p, f, _)| k.is_none_or(|k| k == kind) && *p == general && *f == u.key)
    {
        msg.push_str(&format!("; it belongs in {belongs}"));
        return msg;
    }
    let best = u
        .expected
        .iter()
        .map(|f| (distance(f, &u.key), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4) && *d < u.key.len())
        .min();
    match best {
        Some((_, f)) => msg.push_str(&format!("; did you mean `{f}`?")),
        None if !u.expected.is_empty() && u.expected.len() <= 12 => {
            msg.push_str(&format!("; expected one of: {}", u.expected.join(", ")));
        }
        None => {}
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    fn unknown(parent: &str, key: &str, expected: &'static [&'static str]) -> UnknownField {
        UnknownField {
            pos: Pos::default(),
            parent: parent.into(),
            key: key.into(),
            expected,
        }
    }

    #[test]
    fn misplaced_fields_say_where_they_belong() {
        let m = unknown_field_message(
            Kind::VirtualService,
            &unknown("spec", "retries", &["hosts", "http"]),
        );
        assert!(m.contains("`spec.http[]`"), "{m}");
        let m = unknown_field_message(
            Kind::ServiceProfile,
            &unknown("spec.routes[1]", "retryBudget", &["name"]),
        );
        assert!(m.contains("`spec.retryBudget`"), "{m}");
    }

    #[test]
    fn typos_get_a_suggestion() {
        let m = unknown_field_message(
            Kind::DestinationRule,
            &unknown(
                "spec",
                "trafficPolicyy",
                &["host", "trafficPolicy", "subsets"],
            ),
        );
        assert!(m.ends_with("did you mean `trafficPolicy`?"), "{m}");
    }
}
