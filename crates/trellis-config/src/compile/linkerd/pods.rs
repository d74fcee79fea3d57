//! The pods the input declares (Pods, the templates of Deployments and StatefulSets, and
//! LocalWorkloads, whose replicas become pods when started), for the
//! questions Linkerd policy asks of them: which container port a port *name* means, and whether a
//! Server and another selector can select the same pods.

use crate::resources::common::{IntOrString, LabelSelector, Labels};
use crate::resources::core::PodSpec;
use crate::resources::{Resource, Spec};

/// One pod (or pod template): its namespace, labels and spec (none for a LocalWorkload, whose
/// only port has no name).
struct PodShape<'a> {
    namespace: &'a str,
    labels: &'a Labels,
    spec: Option<&'a PodSpec>,
}

/// Every pod shape in the input, read once.
pub(super) struct Pods<'a> {
    list: Vec<PodShape<'a>>,
}

impl<'a> Pods<'a> {
    /// Collect Pods, workload templates and LocalWorkloads. Templates and LocalWorkloads stand
    /// for the pods they create, which is what a Server's `podSelector` selects.
    pub fn new(resources: &'a [Resource]) -> Self {
        let list = resources
            .iter()
            .filter_map(|r| {
                let (labels, spec) = match &r.spec {
                    Spec::Pod(p) => (&r.meta.labels, Some(&**p)),
                    Spec::Deployment(d) => (&d.template.metadata.labels, Some(&d.template.spec)),
                    Spec::StatefulSet(s) => (&s.template.metadata.labels, Some(&s.template.spec)),
                    Spec::LocalWorkload(w) => (&w.labels, None),
                    _ => return None,
                };
                Some(PodShape {
                    namespace: &r.namespace,
                    labels,
                    spec,
                })
            })
            .collect();
        Pods { list }
    }

    /// Pods in `namespace` selected by `selects`.
    fn selected<'s>(
        &'s self,
        namespace: &'s str,
        selects: impl Fn(&Labels) -> bool + 's,
    ) -> impl Iterator<Item = &'s PodShape<'a>> + 's {
        self.list
            .iter()
            .filter(move |p| p.namespace == namespace && selects(p.labels))
    }

    /// The container port numbers `port` means on the pods in `namespace` that `selects` picks:
    /// a number means itself; a name means every container port of that name (pods of different
    /// versions may number it differently). Sorted, without duplicates; empty when a name is
    /// unknown.
    pub fn resolve_port(
        &self,
        namespace: &str,
        selects: impl Fn(&Labels) -> bool,
        port: &IntOrString,
    ) -> Vec<u16> {
        let name = match port {
            IntOrString::Int(n) => {
                return u16::try_from(*n)
                    .ok()
                    .filter(|n| *n != 0)
                    .into_iter()
                    .collect();
            }
            IntOrString::String(s) => s,
        };
        let mut out: Vec<u16> = self
            .selected(namespace, selects)
            .filter_map(|p| p.spec)
            .flat_map(|spec| spec.containers.iter().flat_map(|c| c.ports.iter()))
            .filter(|cp| cp.name.as_deref() == Some(name.as_str()))
            .filter_map(|cp| u16::try_from(cp.container_port).ok())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether a pod selected by `a` may also be selected by `b`. When the input declares pods
    /// that `a` selects, the answer is exact for them; otherwise it is the static test that no
    /// label both selectors require has different values in each.
    pub fn may_overlap(
        &self,
        namespace: &str,
        a: &LabelSelector,
        b_labels: &Labels,
        b: impl Fn(&Labels) -> bool,
    ) -> bool {
        let mut known = self.selected(namespace, |l| a.matches(l)).peekable();
        if known.peek().is_some() {
            return known.any(|p| b(p.labels));
        }
        compatible(&a.match_labels, b_labels)
    }
}

/// Whether some label set could satisfy both `matchLabels` maps: no shared key with different
/// values.
pub(super) fn compatible(a: &Labels, b: &Labels) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
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
    fn compatible_selectors() {
        assert!(compatible(
            &labels(&[("app", "a")]),
            &labels(&[("app", "a"), ("v", "1")])
        ));
        assert!(compatible(&labels(&[]), &labels(&[("app", "a")])));
        assert!(!compatible(
            &labels(&[("app", "a")]),
            &labels(&[("app", "b")])
        ));
    }

    #[test]
    fn named_ports_and_overlap() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web, version: v1}}\n    spec:\n      containers:\n      - name: web\n        image: web\n        ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 9990}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web-v2, labels: {app: web, version: v2}}\nspec:\n  containers:\n  - name: web\n    image: web\n    ports: [{name: http, containerPort: 8081}]\n";
        let loaded = crate::load::load_str("p.yaml", yaml, &crate::load::LoadOptions::default());
        let pods = Pods::new(&loaded.resources);
        let web = |l: &Labels| l.get("app").is_some_and(|a| a == "web");
        assert_eq!(
            pods.resolve_port("default", web, &IntOrString::String("http".into())),
            vec![8080, 8081]
        );
        assert_eq!(
            pods.resolve_port("default", web, &IntOrString::String("grpc".into())),
            Vec::<u16>::new()
        );
        assert_eq!(
            pods.resolve_port("other", web, &IntOrString::String("http".into())),
            Vec::<u16>::new()
        );
        assert_eq!(
            pods.resolve_port("default", web, &IntOrString::Int(7000)),
            vec![7000]
        );
        let sel = |pairs: &[(&str, &str)]| LabelSelector {
            match_labels: labels(pairs),
            ..LabelSelector::default()
        };
        let v2 = labels(&[("version", "v2")]);
        let is_v2 = |l: &Labels| l.get("version").is_some_and(|v| v == "v2");
        // Known pods decide: app=web pods include a v2 pod; app=web,version=v1 pods do not.
        assert!(pods.may_overlap("default", &sel(&[("app", "web")]), &v2, is_v2));
        assert!(!pods.may_overlap(
            "default",
            &sel(&[("app", "web"), ("version", "v1")]),
            &v2,
            is_v2
        ));
        // No known pods: the static test.
        assert!(pods.may_overlap("default", &sel(&[("app", "db")]), &v2, is_v2));
        assert!(!pods.may_overlap("default", &sel(&[("version", "v3")]), &v2, is_v2));
    }
}
