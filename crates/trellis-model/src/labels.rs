//! Label maps and selectors.
//!
//! Kubernetes-style `matchLabels` selection is how subsets pick endpoints, how policies
//! pick workloads and how gateways pick their proxies; keeping one definition here means
//! every one of those agrees on what "selected" means.

use std::collections::BTreeMap;

/// Labels of a workload or endpoint, or the `matchLabels` of a selector. A `BTreeMap`
/// so that dumps and comparisons are deterministic.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` satisfy `selector`: every selector key is present with an equal
/// value. An empty selector selects everything, as in Kubernetes `matchLabels`.
pub fn selector_matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether an optional selector (Istio's `selector`/`workloadSelector`) selects `labels`.
/// `None` and an empty selector both mean "every workload in scope".
pub fn optional_selector_matches(selector: Option<&Labels>, labels: &Labels) -> bool {
    selector.is_none_or(|s| selector_matches(s, labels))
}

/// Whether a policy selector is workload-specific: set and non-empty. Istio treats an
/// empty `matchLabels` like no selector at all (a namespace-wide policy).
pub fn is_workload_selector(selector: Option<&Labels>) -> bool {
    selector.is_some_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors() {
        let pod = labels(&[("app", "reviews"), ("version", "v1")]);
        assert!(selector_matches(&Labels::new(), &pod));
        assert!(selector_matches(&labels(&[("version", "v1")]), &pod));
        assert!(!selector_matches(&labels(&[("version", "v2")]), &pod));
        assert!(!selector_matches(&labels(&[("tier", "web")]), &pod));
        assert!(optional_selector_matches(None, &pod));
        assert!(!is_workload_selector(Some(&Labels::new())));
        assert!(is_workload_selector(Some(&pod)));
    }
}
