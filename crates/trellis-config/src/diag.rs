//! Diagnostics: what the loader, the validators and the analyzer say about the input.
//!
//! Every diagnostic carries a stable code. Istio's `IST0xxx` codes are used where the meaning matches
//! Istio's analyzer, so people can search for them; everything else has a `TRLxxxx` code. Every code is
//! documented with an example in `docs/analyzer.md`.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// How bad a diagnostic is. Ordered so that `Error > Warning > Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Error => "Error",
        })
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $sev:ident, $title:literal;)*) => {
        /// Every diagnostic code Trellis emits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            /// All codes, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as users see it, e.g. `IST0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// The severity this code has unless a caller overrides it.
            pub fn default_severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev),* }
            }

            /// A one-line title, used in docs and `trellis analyze --list-codes`.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }
        }
    };
}

codes! {
    // Istio analyzer codes, used where the meaning is the same as Istio's.
    ReferencedResourceNotFound = "IST0101", Error, "Referenced resource not found";
    SchemaValidation = "IST0106", Error, "Schema validation error";
    ConflictingHosts = "IST0109", Error, "Conflicting routes for one host";
    MtlsConflict = "IST0113", Error, "mTLS required by policy but disabled by a DestinationRule";
    InvalidRegex = "IST0122", Error, "Invalid regular expression";
    NoMatchingWorkloads = "IST0127", Warning, "Selector matches no workload";
    IneffectiveMatch = "IST0131", Warning, "Rule or match can never be reached";
    // Trellis' own codes.
    NotAResource = "TRL0001", Error, "Document is not a Kubernetes resource";
    YamlSyntax = "TRL0002", Error, "YAML syntax error";
    UnsupportedKind = "TRL0003", Info, "Kind is not used by Trellis and is skipped";
    UnsupportedVersion = "TRL0004", Error, "Unsupported apiVersion for a known kind";
    UnsupportedResource = "TRL0005", Warning, "Resource is recognised but not supported";
    InputLimit = "TRL0006", Error, "Input exceeds a documented limit";
    ReadFailed = "TRL0007", Error, "File could not be read";
    DuplicateResource = "TRL0008", Error, "Two resources have the same kind, namespace and name";
    UnknownField = "TRL1001", Error, "Unknown field";
    AmbiguousScalar = "TRL1002", Warning, "Unquoted value that YAML 1.1 (kubectl) reads differently";
    DeprecatedField = "TRL1003", Warning, "Deprecated field";
    DuplicateKey = "TRL1004", Error, "Duplicate key in a mapping";
    WeightSum = "TRL2001", Warning, "Route weights do not add up to 100";
    RuleWithoutAction = "TRL2002", Error, "Route rule has neither route, redirect nor directResponse";
    DuplicateSubset = "TRL2003", Error, "Duplicate subset name";
    ApiPrecedence = "TRL2004", Warning, "Two APIs configure one host; precedence decides";
    IgnoredSetting = "TRL2005", Info, "Setting has no effect where it is written";
    LocalPortMismatch = "TRL2006", Warning, "Service targets a port the LocalWorkload does not listen on";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A line/column position, both 1-based, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// One finding, with everything a user needs to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    /// Resource kind, e.g. `VirtualService`; empty when the problem is not inside a resource.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    /// Sort key: file, position, then code, so output is stable.
    pub fn sort_key(&self) -> (&str, u32, u32, Code, &str) {
        (&self.file, self.line, self.column, self.code, &self.message)
    }
}

impl fmt::Display for Diagnostic {
    /// `Error [IST0101] (VirtualService default/reviews) reviews.yaml:12:11 Referenced host not found: "x"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.severity, self.code)?;
        if !self.kind.is_empty() {
            write!(f, " ({} {}/{})", self.kind, self.namespace, self.name)?;
        }
        write!(
            f,
            " {}:{}:{} {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A diagnostic about a field of a resource, addressed by its path (`spec.http[0].route`), before the
/// path has been resolved to a file position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDiag {
    pub severity: Severity,
    pub code: Code,
    pub path: String,
    pub message: String,
}
