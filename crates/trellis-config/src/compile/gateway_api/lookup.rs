//! Indexes over the input that the route pass consults for every parent and backend
//! reference, built once so that compiling stays linear in the number of references rather
//! than references times resources (`trellis analyze` compiles untrusted input).

use crate::resources::common::Labels;
use crate::resources::gateway_api::ReferenceGrant;
use crate::resources::{Kind, Resource, Spec};
use std::collections::HashMap;

/// Gateways by `(namespace, name)`, ReferenceGrants by namespace, Namespace labels by name.
pub(in crate::compile) struct Lookup<'a> {
    gateways: HashMap<&'a str, HashMap<&'a str, &'a Resource>>,
    grants: HashMap<&'a str, Vec<&'a ReferenceGrant>>,
    namespaces: HashMap<&'a str, &'a Labels>,
}

impl<'a> Lookup<'a> {
    /// Index `resources`; the first of duplicate Gateways wins, as the loader reports duplicates.
    pub(in crate::compile) fn new(resources: &'a [Resource]) -> Self {
        let mut lk = Lookup {
            gateways: HashMap::new(),
            grants: HashMap::new(),
            namespaces: HashMap::new(),
        };
        for r in resources {
            match (&r.spec, r.kind()) {
                (Spec::K8sGateway(_), _) => {
                    lk.gateways
                        .entry(r.namespace.as_str())
                        .or_default()
                        .entry(r.name.as_str())
                        .or_insert(r);
                }
                (Spec::ReferenceGrant(g), _) => {
                    lk.grants.entry(r.namespace.as_str()).or_default().push(g);
                }
                (_, Kind::Namespace) => {
                    lk.namespaces
                        .entry(r.name.as_str())
                        .or_insert(&r.meta.labels);
                }
                _ => {}
            }
        }
        lk
    }

    /// The Gateway API Gateway `namespace/name`.
    pub(super) fn gateway(&self, namespace: &str, name: &str) -> Option<&'a Resource> {
        self.gateways.get(namespace)?.get(name).copied()
    }

    /// Labels of namespace `name` as written in the input, if it is there.
    pub(super) fn namespace_labels(&self, name: &str) -> Option<&'a Labels> {
        self.namespaces.get(name).copied()
    }

    /// Whether a ReferenceGrant in `to_namespace` lets `from` (group, kind, namespace) refer
    /// to `to` (group, kind, name). Groups use `""` for core.
    pub(in crate::compile) fn granted(
        &self,
        from: (&str, &str, &str),
        to_namespace: &str,
        to: (&str, &str, &str),
    ) -> bool {
        self.grants
            .get(to_namespace)
            .is_some_and(|grants| grants.iter().any(|g| g.allows(from, to)))
    }
}
