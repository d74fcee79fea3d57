//! Field-level validation that serde cannot express: required fields, one-of groups, ranges,
//! deprecated fields. Each resource type implements [`Validate`]; findings are addressed by path
//! (`spec.http[0].retries`) and resolved to file positions by the loader.

use crate::diag::{Code, PathDiag, Severity};
use std::fmt::Write as _;

/// Collects findings while walking a resource. Keeps the current path so validators only name the
/// field they are looking at.
#[derive(Debug, Default)]
pub struct Cx {
    path: String,
    out: Vec<PathDiag>,
}

impl Cx {
    /// A context rooted at `root` (usually `spec`).
    pub fn new(root: &str) -> Self {
        Cx {
            path: root.to_owned(),
            out: Vec::new(),
        }
    }

    /// The findings so far.
    pub fn into_diags(self) -> Vec<PathDiag> {
        self.out
    }

    /// The current path, e.g. `spec.http[0]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Run `f` with the path extended by `.name`.
    pub fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut Cx) -> R) -> R {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// Run `f` with the path extended by `[i]`.
    pub fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut Cx) -> R) -> R {
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        let r = f(self);
        self.path.truncate(len);
        r
    }

    /// Validate an optional child field.
    pub fn opt<T: Validate>(&mut self, name: &str, v: &Option<T>) {
        if let Some(v) = v {
            self.field(name, |cx| v.validate(cx));
        }
    }

    /// Validate every element of a list field.
    pub fn list<T: Validate>(&mut self, name: &str, items: &[T]) {
        self.field(name, |cx| {
            for (i, it) in items.iter().enumerate() {
                cx.index(i, |cx| it.validate(cx));
            }
        });
    }

    /// Report at the current path.
    pub fn report(&mut self, severity: Severity, code: Code, message: impl Into<String>) {
        self.out.push(PathDiag {
            severity,
            code,
            path: self.path.clone(),
            message: message.into(),
        });
    }

    /// Report at `current.name`.
    pub fn report_at(
        &mut self,
        name: &str,
        severity: Severity,
        code: Code,
        message: impl Into<String>,
    ) {
        self.field(name, |cx| cx.report(severity, code, message));
    }

    /// Schema error (IST0106) at the current path.
    pub fn error(&mut self, message: impl Into<String>) {
        self.report(Severity::Error, Code::SchemaValidation, message);
    }

    /// Schema error (IST0106) at `current.name`.
    pub fn error_at(&mut self, name: &str, message: impl Into<String>) {
        self.report_at(name, Severity::Error, Code::SchemaValidation, message);
    }

    /// `name` is required but missing or empty.
    pub fn require(&mut self, name: &str, present: bool) {
        if !present {
            let full = if self.path.is_empty() {
                name.to_owned()
            } else {
                format!("{}.{name}", self.path)
            };
            self.report(
                Severity::Error,
                Code::SchemaValidation,
                format!("missing required field `{full}`"),
            );
        }
    }

    /// `name` is deprecated; `instead` says what to use.
    pub fn deprecated(&mut self, name: &str, instead: &str) {
        self.report_at(
            name,
            Severity::Warning,
            Code::DeprecatedField,
            format!("`{name}` is deprecated; use {instead}"),
        );
    }

    /// At most one of `names` may be set; `set` says which are.
    pub fn one_of(&mut self, names: &[&str], set: &[bool], required: bool) {
        let n = set.iter().filter(|b| **b).count();
        if n > 1 {
            let which: Vec<&str> = names
                .iter()
                .zip(set)
                .filter(|(_, s)| **s)
                .map(|(n, _)| *n)
                .collect();
            self.error(format!(
                "only one of {} may be set, found {}",
                names.join(", "),
                which.join(" and ")
            ));
        } else if n == 0 && required {
            self.error(format!("one of {} is required", names.join(", ")));
        }
    }
}

/// Implemented by every resource type and the structures inside it.
pub trait Validate {
    fn validate(&self, cx: &mut Cx);
}

impl<T: Validate> Validate for Vec<T> {
    fn validate(&self, cx: &mut Cx) {
        for (i, it) in self.iter().enumerate() {
            cx.index(i, |cx| it.validate(cx));
        }
    }
}

impl<T: Validate> Validate for Box<T> {
    fn validate(&self, cx: &mut Cx) {
        (**self).validate(cx)
    }
}

/// Free-form content has nothing to validate.
impl Validate for serde_json::Value {
    fn validate(&self, _cx: &mut Cx) {}
}
