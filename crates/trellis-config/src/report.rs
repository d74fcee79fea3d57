//! [`Report`]: how checks and the compiler say something about a field of a resource.

use crate::diag::{Code, Diagnostic, Severity};
use crate::resources::Resource;

/// Collects diagnostics, resolving field paths to positions.
#[derive(Debug, Default)]
pub struct Report {
    out: Vec<Diagnostic>,
}

impl Report {
    /// The diagnostics reported.
    pub fn into_diags(self) -> Vec<Diagnostic> {
        self.out
    }

    /// Report `code` at `path` (e.g. `spec.http[0].route[1].destination.host`) of `r`.
    pub fn at(&mut self, r: &Resource, path: &str, code: Code, message: impl Into<String>) {
        self.with_severity(r, path, code, code.default_severity(), message);
    }

    /// Like [`at`](Self::at) with an explicit severity.
    pub fn with_severity(
        &mut self,
        r: &Resource,
        path: &str,
        code: Code,
        severity: Severity,
        message: impl Into<String>,
    ) {
        let pos = r.origin.pos(path);
        self.out.push(Diagnostic {
            severity,
            code,
            kind: r.kind().name().to_owned(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            file: r.origin.file.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }
}
