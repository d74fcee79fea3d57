//! Loading: files and directories -> YAML documents -> typed [`Resource`]s plus diagnostics.
//!
//! Loading never fails on bad content: every problem becomes a [`Diagnostic`] naming file, line,
//! column and field, and the rest of the input still loads. Only a path that does not exist (the
//! user's command line is wrong) is an error.

mod hints;

use crate::diag::{Code, Diagnostic, Pos, Severity};
use crate::resources::{self, Kind, Origin, Resource, split_api_version};
use crate::validate::Cx;
use crate::yaml::de::Decoder;
use crate::yaml::{self, Node, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest file read. Bigger files are reported (TRL0006) and skipped.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most files read from one directory tree.
pub const MAX_FILES: usize = 100_000;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Namespace of resources that do not name one (as `kubectl apply -n`).
    pub default_namespace: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_namespace: "default".into(),
        }
    }
}

/// What was loaded: the resources that decoded, and everything worth telling the user.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files read.
    pub files: usize,
}

impl Loaded {
    /// Does any diagnostic have severity error?
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    fn extend(&mut self, other: Loaded) {
        self.resources.extend(other.resources);
        self.diagnostics.extend(other.diagnostics);
        self.files += other.files;
    }
}

/// The command line named something that cannot be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Load files and directories (recursively: `*.yaml`, `*.yml`, `*.json`, in name order). A file
/// named directly is read whatever its extension.
pub fn load_paths(paths: &[PathBuf], opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound { path: p.clone() },
            _ => LoadError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        if meta.is_dir() {
            collect_dir(p, &mut files).map_err(|e| LoadError::Io {
                path: p.clone(),
                source: e,
            })?;
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Loaded::default();
    for f in files.iter().take(MAX_FILES) {
        out.extend(load_file(f, opts));
    }
    if files.len() > MAX_FILES {
        out.diagnostics.push(file_diag(
            &Arc::from(files[MAX_FILES].display().to_string()),
            Code::InputLimit,
            Pos::default(),
            format!("more than {MAX_FILES} files; the rest were not read"),
        ));
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if out.len() > MAX_FILES {
            break;
        }
        let Ok(ft) = std::fs::symlink_metadata(&p).map(|m| m.file_type()) else {
            continue;
        };
        // Symlinked directories are not followed, so a link loop cannot hang the walk.
        if ft.is_dir() {
            collect_dir(&p, out)?;
        } else if is_config_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Whether a file found in a configuration directory is read: `*.yaml`, `*.yml`, `*.json`.
pub fn is_config_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Load one file; problems reading it become diagnostics.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Loaded {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let too_big = |n: u64| {
        let mut l = Loaded {
            files: 1,
            ..Loaded::default()
        };
        l.diagnostics.push(file_diag(
            &name,
            Code::InputLimit,
            Pos { line: 1, column: 1 },
            format!("file is {n} bytes; the limit is {MAX_FILE_BYTES} bytes"),
        ));
        l
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE_BYTES => return too_big(m.len()),
        _ => {}
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let mut l = Loaded {
                files: 1,
                ..Loaded::default()
            };
            l.diagnostics.push(file_diag(
                &name,
                Code::ReadFailed,
                Pos::default(),
                format!("cannot read file: {e}"),
            ));
            return l;
        }
    };
    load_bytes(&name, &bytes, opts)
}

/// Load raw bytes (which may not be UTF-8); `file` names them in diagnostics.
pub fn load_bytes(file: &str, bytes: &[u8], opts: &LoadOptions) -> Loaded {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(file, text, opts),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let column = good.iter().rev().take_while(|b| **b != b'\n').count() as u32 + 1;
            let mut l = Loaded {
                files: 1,
                ..Loaded::default()
            };
            l.diagnostics.push(file_diag(
                &Arc::from(file),
                Code::YamlSyntax,
                Pos { line, column },
                format!("file is not valid UTF-8 (byte offset {})", e.valid_up_to()),
            ));
            l
        }
    }
}

fn file_diag(file: &Arc<str>, code: Code, pos: Pos, message: String) -> Diagnostic {
    Diagnostic {
        severity: code.default_severity(),
        code,
        kind: String::new(),
        namespace: String::new(),
        name: String::new(),
        file: file.clone(),
        line: pos.line,
        column: pos.column,
        message,
    }
}

/// Load YAML/JSON text; `file` names it in diagnostics.
pub fn load_str(file: &str, text: &str, opts: &LoadOptions) -> Loaded {
    let file: Arc<str> = Arc::from(file);
    let mut out = Loaded {
        files: 1,
        ..Loaded::default()
    };
    if text.len() as u64 > MAX_FILE_BYTES {
        out.diagnostics.push(file_diag(
            &file,
            Code::InputLimit,
            Pos { line: 1, column: 1 },
            format!(
                "input is {} bytes; the limit is {MAX_FILE_BYTES} bytes",
                text.len()
            ),
        ));
        return out;
    }
    let stream = yaml::parse_stream(text);
    for doc in stream.documents {
        let Some(root) = doc.root else { continue };
        let root = Arc::new(root);
        let who = Who::of(&root, opts);
        for p in doc.problems {
            out.diagnostics.push(who.diag(
                &file,
                p.code,
                p.code.default_severity(),
                p.pos,
                p.message,
            ));
        }
        if root.is_null() {
            continue;
        }
        load_object(&mut out, &file, &root, &root, String::new(), opts);
    }
    for p in stream.errors {
        out.diagnostics
            .push(file_diag(&file, p.code, p.pos, p.message));
    }
    out
}

/// Kind, namespace and name as written, for attributing diagnostics before decoding.
#[derive(Default)]
struct Who {
    kind: String,
    namespace: String,
    name: String,
}

impl Who {
    fn of(node: &Node, opts: &LoadOptions) -> Who {
        let s = |p: &str| node.lookup(p).and_then(Node::as_str).map(str::to_owned);
        match s("kind") {
            Some(kind) => Who {
                kind,
                namespace: s("metadata.namespace")
                    .unwrap_or_else(|| opts.default_namespace.clone()),
                name: s("metadata.name").unwrap_or_default(),
            },
            None => Who::default(),
        }
    }

    fn diag(
        &self,
        file: &Arc<str>,
        code: Code,
        severity: Severity,
        pos: Pos,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            code,
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            file: file.clone(),
            line: pos.line,
            column: pos.column,
            message,
        }
    }
}

fn load_object(
    out: &mut Loaded,
    file: &Arc<str>,
    root: &Arc<Node>,
    node: &Node,
    base: String,
    opts: &LoadOptions,
) {
    let who = Who::of(node, opts);
    let mut say = |code: Code, pos: Pos, message: String| {
        out.diagnostics
            .push(who.diag(file, code, code.default_severity(), pos, message));
    };
    if !matches!(node.value, Value::Map(_)) {
        say(
            Code::NotAResource,
            node.pos,
            "document is not a mapping; expected a Kubernetes resource with `apiVersion` and `kind`".into(),
        );
        return;
    }
    let api_version = node.get("apiVersion").and_then(Node::as_str);
    let kind_name = node.get("kind").and_then(Node::as_str);
    let (Some(api_version), Some(kind_name)) = (api_version, kind_name) else {
        let missing: Vec<&str> = [
            ("apiVersion", api_version.is_none()),
            ("kind", kind_name.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        say(
            Code::NotAResource,
            node.pos,
            format!(
                "not a Kubernetes resource: missing `{}`",
                missing.join("` and `")
            ),
        );
        return;
    };
    let (group, version) = split_api_version(api_version);
    if kind_name == "List" && group.is_empty() {
        match node.get("items").map(|n| &n.value) {
            Some(Value::Seq(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let path = if base.is_empty() {
                        format!("items[{i}]")
                    } else {
                        format!("{base}.items[{i}]")
                    };
                    load_object(out, file, root, item, path, opts);
                }
            }
            _ => say(
                Code::SchemaValidation,
                node.pos,
                "a `List` needs an `items` list".into(),
            ),
        }
        return;
    }
    let Some(kind) = Kind::lookup(group, kind_name) else {
        let elsewhere: Vec<String> = Kind::ALL
            .iter()
            .filter(|k| k.name() == kind_name)
            .map(|k| {
                if k.group().is_empty() {
                    k.versions()[0].to_owned()
                } else {
                    format!("{}/{}", k.group(), k.versions()[0])
                }
            })
            .collect();
        let pos = node.get("apiVersion").map(|n| n.pos).unwrap_or(node.pos);
        if elsewhere.is_empty() {
            say(
                Code::UnsupportedKind,
                pos,
                format!("{kind_name} ({api_version}) is not used by Trellis; skipped"),
            );
        } else {
            say(
                Code::UnsupportedVersion,
                pos,
                format!(
                    "{kind_name} is not in API group {group:?}; expected apiVersion {}",
                    elsewhere.join(" or ")
                ),
            );
        }
        return;
    };
    if !kind.versions().contains(&version) {
        let pos = node.get("apiVersion").map(|n| n.pos).unwrap_or(node.pos);
        let accepted: Vec<String> = kind
            .versions()
            .iter()
            .map(|v| format!("{}/{v}", kind.group()))
            .collect();
        say(
            Code::UnsupportedVersion,
            pos,
            format!(
                "{kind_name} {api_version} is not supported; use one of {}",
                accepted.join(", ")
            ),
        );
        return;
    }
    if kind == Kind::EnvoyFilter {
        say(
            Code::UnsupportedResource,
            node.pos,
            "EnvoyFilter patches Envoy's own configuration; Trellis does not run Envoy and ignores it".into(),
        );
        return;
    }
    let mut decoder = Decoder::new(node, kind.body_at_top_level());
    let decoded = resources::decode(kind, &mut decoder);
    let notes = decoder.into_notes();
    for u in &notes.unknown {
        say(
            Code::UnknownField,
            u.pos,
            hints::unknown_field_message(kind, u),
        );
    }
    for a in &notes.ambiguous {
        say(
            Code::AmbiguousScalar,
            a.pos,
            format!(
                "`{}: {}` is unquoted: Trellis reads the string \"{}\", but kubectl (YAML 1.1) reads {}; quote it",
                a.path.rsplit('.').next().unwrap_or(&a.path),
                a.text,
                a.text,
                a.reading
            ),
        );
    }
    let (meta, spec) = match decoded {
        Ok(v) => v,
        Err(e) => {
            say(Code::SchemaValidation, e.pos.unwrap_or(node.pos), e.message);
            return;
        }
    };
    let name = meta.name.clone().unwrap_or_default();
    if name.is_empty() {
        let pos = node.get("metadata").map(|m| m.pos).unwrap_or(node.pos);
        say(
            Code::SchemaValidation,
            pos,
            "missing required field `metadata.name`".into(),
        );
        return;
    }
    let namespace = if kind.is_cluster_scoped() {
        String::new()
    } else {
        meta.namespace
            .clone()
            .unwrap_or_else(|| opts.default_namespace.clone())
    };
    let origin = Origin {
        file: file.clone(),
        root: root.clone(),
        base,
    };
    let mut cx = Cx::new(if kind.body_at_top_level() { "" } else { "spec" });
    spec.validate(&mut cx);
    for d in cx.into_diags() {
        // A deprecated field is about the key; everything else is about the value written.
        let pos = if d.code == Code::DeprecatedField {
            origin.key_pos(&d.path)
        } else {
            origin.pos(&d.path)
        };
        out.diagnostics
            .push(who.diag(file, d.code, d.severity, pos, d.message));
    }
    out.resources.push(Resource {
        api_version: api_version.to_owned(),
        meta,
        namespace,
        name,
        spec,
        origin,
    });
}
