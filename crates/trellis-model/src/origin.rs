//! Where a piece of the model came from.
//!
//! Every route and policy remembers the resource it was compiled from, so that
//! `/config_dump`, access logs and diagnostics can say "this 503 came from
//! VirtualService default/reviews" instead of pointing at anonymous model entries.

use std::fmt;

/// A reference to the user-written resource a model entry was compiled from, or (in
/// `targetRef`s) to a resource a policy attaches to.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(default)]
pub struct SourceRef {
    /// Resource kind as the user wrote it, e.g. `VirtualService`. Where the kind alone is
    /// ambiguous (Gateway API and Linkerd both have `HTTPRoute`) the compiler qualifies it
    /// with the group, e.g. `HTTPRoute.policy.linkerd.io`.
    pub kind: String,
    /// Namespace of the resource; empty for cluster-scoped resources.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
}

impl SourceRef {
    /// A reference to `kind` `namespace/name`.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        SourceRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// `Kind ns/name`, or `Kind name` for cluster-scoped resources: the form used in logs
/// and diagnostics.
impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SourceRef;

    #[test]
    fn display() {
        assert_eq!(
            SourceRef::new("VirtualService", "default", "reviews").to_string(),
            "VirtualService default/reviews"
        );
        assert_eq!(
            SourceRef::new("GatewayClass", "", "istio").to_string(),
            "GatewayClass istio"
        );
    }
}
