//! TRL2003: a DestinationRule that defines one subset name twice (Istio's webhook rejects it; which
//! definition a proxy would use is undefined).

use super::{Index, Report};
use crate::diag::Code;
use crate::resources::Spec;

pub fn check(index: &Index<'_>, report: &mut Report) {
    for r in index.resources {
        if let Spec::DestinationRule(dr) = &r.spec {
            for (j, s) in dr.subsets.iter().enumerate() {
                if let Some(i) = dr.subsets[..j]
                    .iter()
                    .position(|p| p.name == s.name && !s.name.is_empty())
                {
                    report.at(
                        r,
                        &format!("spec.subsets[{j}].name"),
                        Code::DuplicateSubset,
                        format!(
                            "subset {:?} is already defined at spec.subsets[{i}]",
                            s.name
                        ),
                    );
                }
            }
        }
    }
}
