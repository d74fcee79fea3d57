//! The analyzer: cross-resource checks on top of what loading already found.
//!
//! Loading reports what is wrong inside one resource (syntax, schema, unknown fields). The checks
//! here need the whole input: references between resources, routes that conflict or can never be
//! reached, selectors that select nothing, policies that contradict each other. Each check lives in
//! its own module and reports through [`Report`], which resolves a field path to its file position.

mod index;
mod local_ports;
mod mtls;
mod references;
mod routes;
mod selectors;
mod subsets;

use crate::diag::Diagnostic;
use crate::load::Loaded;
pub use crate::report::Report;
pub use index::Index;

/// Everything `trellis analyze` reports for `loaded`: loading diagnostics and every check's
/// findings, sorted by file and position, without duplicates.
pub fn analyze(loaded: &Loaded) -> Vec<Diagnostic> {
    analyze_and_compile(loaded).0
}

/// [`analyze`], also returning the compiled model (the analysis compiles it anyway).
pub fn analyze_and_compile(loaded: &Loaded) -> (Vec<Diagnostic>, crate::compile::Compiled) {
    let index = Index::build(&loaded.resources);
    let mut report = Report::default();
    index.report_duplicates(&mut report);
    references::check(&index, &mut report);
    routes::check(&index, &mut report);
    subsets::check(&index, &mut report);
    selectors::check(&index, &mut report);
    mtls::check(&index, &mut report);
    local_ports::check(&index, &mut report);
    let compiled = crate::compile::compile(
        &loaded.resources,
        &crate::compile::CompileOptions::default(),
    );
    let mut all = loaded.diagnostics.clone();
    all.extend(report.into_diags());
    all.extend(compiled.diagnostics.iter().cloned());
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    all.dedup();
    (all, compiled)
}
