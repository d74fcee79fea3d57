//! An index over all loaded resources, so checks resolve references without scanning.

use super::Report;
use crate::diag::Code;
use crate::resources::{Kind, Resource, Spec};
use std::collections::{BTreeSet, HashMap};
use trellis_model::{HostResolver, Labels, host_matches};

/// A workload that a selector may pick: where it lives and its labels.
pub struct WorkloadLabels<'a> {
    pub namespace: &'a str,
    pub labels: &'a Labels,
}

/// Lookup tables over the input.
pub struct Index<'a> {
    pub resources: &'a [Resource],
    pub resolver: HostResolver,
    by_key: HashMap<(Kind, &'a str, &'a str), Vec<&'a Resource>>,
    /// FQDNs of Kubernetes Services and ServiceEntry hosts (may be wildcards).
    hosts: BTreeSet<String>,
    /// Subset names by destination FQDN (from every DestinationRule for that host).
    subsets: HashMap<String, BTreeSet<&'a str>>,
    /// Every workload's labels, in input order.
    pub workloads: Vec<WorkloadLabels<'a>>,
    /// Indexes into `workloads` by namespace, so a namespaced selector scans only its namespace.
    by_namespace: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    pub fn build(resources: &'a [Resource]) -> Self {
        let mut namespaces: BTreeSet<String> =
            resources.iter().map(|r| r.namespace.clone()).collect();
        namespaces.extend(
            resources
                .iter()
                .filter(|r| r.kind() == Kind::Namespace)
                .map(|r| r.name.clone()),
        );
        namespaces.insert("default".into());
        namespaces.remove("");
        let resolver = HostResolver::new(trellis_model::DEFAULT_DOMAIN, namespaces);
        let mut by_key: HashMap<_, Vec<&Resource>> = HashMap::new();
        let mut hosts = BTreeSet::new();
        let mut subsets: HashMap<String, BTreeSet<&str>> = HashMap::new();
        let mut workloads = Vec::new();
        for r in resources {
            by_key
                .entry((r.kind(), r.namespace.as_str(), r.name.as_str()))
                .or_default()
                .push(r);
            match &r.spec {
                Spec::Service(_) => {
                    hosts.insert(resolver.fqdn(&r.name, &r.namespace));
                }
                Spec::ServiceEntry(se) => {
                    hosts.extend(se.hosts.iter().map(|h| resolver.fqdn(h, &r.namespace)));
                }
                Spec::DestinationRule(dr) => {
                    subsets
                        .entry(resolver.fqdn(&dr.host, &r.namespace))
                        .or_default()
                        .extend(dr.subsets.iter().map(|s| s.name.as_str()));
                }
                Spec::Pod(_) => workloads.push(WorkloadLabels {
                    namespace: &r.namespace,
                    labels: &r.meta.labels,
                }),
                Spec::Deployment(d) => workloads.push(WorkloadLabels {
                    namespace: &r.namespace,
                    labels: &d.template.metadata.labels,
                }),
                Spec::StatefulSet(s) => workloads.push(WorkloadLabels {
                    namespace: &r.namespace,
                    labels: &s.template.metadata.labels,
                }),
                Spec::WorkloadEntry(we) => workloads.push(WorkloadLabels {
                    namespace: &r.namespace,
                    labels: &we.labels,
                }),
                // Selected as a Deployment is: by the labels its replicas will carry.
                Spec::LocalWorkload(w) => workloads.push(WorkloadLabels {
                    namespace: &r.namespace,
                    labels: &w.labels,
                }),
                _ => {}
            }
        }
        let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, w) in workloads.iter().enumerate() {
            by_namespace.entry(w.namespace).or_default().push(i);
        }
        Index {
            resources,
            resolver,
            by_key,
            hosts,
            subsets,
            workloads,
            by_namespace,
        }
    }

    /// The resource of `kind` named `namespace/name`.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&'a Resource> {
        self.by_key
            .get(&(kind, namespace, name))
            .and_then(|v| v.first().copied())
    }

    /// Is `fqdn` a service in the input (a Kubernetes Service or a ServiceEntry host, wildcards
    /// included)?
    pub fn has_host(&self, fqdn: &str) -> bool {
        self.hosts.contains(fqdn)
            || self
                .hosts
                .iter()
                .any(|h| h.starts_with('*') && host_matches(h, fqdn))
    }

    /// The subsets defined for `fqdn` (None when no DestinationRule exists for it).
    pub fn subsets_of(&self, fqdn: &str) -> Option<&BTreeSet<&'a str>> {
        self.subsets.get(fqdn)
    }

    /// Does any workload in `namespace` (every namespace when None) carry all of `labels`?
    pub fn selects_any(&self, namespace: Option<&str>, labels: &Labels) -> bool {
        let selected =
            |w: &WorkloadLabels<'_>| labels.iter().all(|(k, v)| w.labels.get(k) == Some(v));
        match namespace {
            None => self.workloads.iter().any(selected),
            Some(ns) => self.in_namespace(ns).any(selected),
        }
    }

    /// The workloads of one namespace.
    pub fn in_namespace(&self, namespace: &str) -> impl Iterator<Item = &WorkloadLabels<'a>> {
        self.by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .map(|&i| &self.workloads[i])
    }

    /// TRL0008: the same kind/namespace/name defined twice (the later silently replaces the earlier
    /// in a cluster; here it is almost always a copy-paste mistake).
    pub fn report_duplicates(&self, report: &mut Report) {
        let mut dups: Vec<&Vec<&Resource>> = self.by_key.values().filter(|v| v.len() > 1).collect();
        dups.sort_by_key(|v| (v[0].origin.file.clone(), v[0].origin.pos("").line));
        for group in dups {
            let first = group[0];
            for r in &group[1..] {
                let p = first.origin.pos("metadata.name");
                report.at(
                    r,
                    "metadata.name",
                    Code::DuplicateResource,
                    format!(
                        "{} {} is also defined at {}:{}; the later definition would replace the earlier",
                        r.kind().name(),
                        r.key(),
                        first.origin.file,
                        p.line
                    ),
                );
            }
        }
    }
}
