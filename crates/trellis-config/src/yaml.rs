//! YAML (and JSON) parsed into a tree that remembers where every value was written.
//!
//! `saphyr-parser` produces events; [`parse_stream`] builds [`Node`]s from them, enforcing the input
//! limits documented in `docs/analyzer.md` (depth, node count incl. alias expansion, documents per
//! file), resolving YAML 1.1 merge keys (`<<`) as kubectl does and reporting duplicate keys.
//! `de` deserializes typed resources from the tree with positions on every error.

pub mod de;

use crate::diag::{Code, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// Deepest nesting accepted. Real resources nest fewer than 20 levels.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one document may hold, counting every alias expansion (stops "billion laughs").
pub const MAX_NODES_PER_DOCUMENT: usize = 2_000_000;
/// Most documents one file may hold.
pub const MAX_DOCUMENTS: usize = 100_000;

/// How a scalar was written. Quoted and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
}

/// A scalar as written: its text is kept exactly, so `1.10` stays `1.10` in a string field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
    /// `!!str` and friends; `None` when untagged.
    pub tag: Option<String>,
}

impl Scalar {
    /// Plain `~`, `null` or empty: YAML's null.
    pub fn is_null(&self) -> bool {
        self.style == Style::Plain
            && self.tag.is_none()
            && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    /// Written as a string: quoted, block, or tagged `!!str`.
    pub fn is_string(&self) -> bool {
        self.style == Style::Quoted || self.tag.as_deref() == Some("str")
    }
}

/// A value in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in the order written; keys are nodes so their positions are known.
    Map(Vec<(Node, Node)>),
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

impl Node {
    pub fn null(pos: Pos) -> Node {
        Node {
            pos,
            value: Value::Scalar(Scalar {
                text: String::new(),
                style: Style::Plain,
                tag: None,
            }),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if !s.is_null() => Some(&s.text),
            _ => None,
        }
    }

    /// The value and key node under `key`, if this is a mapping that has it.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.get_entry(key).map(|(_, v)| v)
    }

    /// Follow a path such as `spec.http[0].route` (keys may themselves contain dots, as annotation and
    /// header names do). Empty path is this node.
    pub fn lookup(&self, path: &str) -> Option<&Node> {
        let (node, rest) = self.walk(path);
        rest.is_empty().then_some(node)
    }

    /// The key node of the mapping entry at `path` (e.g. the `consecutiveErrors` key of
    /// `spec.trafficPolicy.outlierDetection.consecutiveErrors`), when the path ends in a key.
    pub fn lookup_key(&self, path: &str) -> Option<&Node> {
        // Keys may contain dots, so try every split point from the right.
        path.char_indices()
            .rev()
            .filter(|(_, c)| *c == '.')
            .map(|(i, _)| i)
            .chain([0])
            .find_map(|i| {
                let (parent, key) = if i == 0 && !path.starts_with('.') {
                    ("", path)
                } else {
                    (&path[..i], &path[i + 1..])
                };
                self.lookup(parent)?.get_entry(key).map(|(k, _)| k)
            })
    }

    /// Like [`lookup`](Self::lookup) but returns the deepest node that exists on the way.
    pub fn lookup_closest(&self, path: &str) -> &Node {
        self.walk(path).0
    }

    fn walk<'a, 'b>(&'a self, path: &'b str) -> (&'a Node, &'b str) {
        let mut node = self;
        let mut rest = path.strip_prefix('.').unwrap_or(path);
        while !rest.is_empty() {
            let next = if let Some(after) = rest.strip_prefix('[') {
                let Some((idx, tail)) = after.split_once(']') else {
                    break;
                };
                match (&node.value, idx.parse::<usize>()) {
                    (Value::Seq(items), Ok(i)) if i < items.len() => Some((&items[i], tail)),
                    _ => None,
                }
            } else {
                match &node.value {
                    // Longest key that is a prefix of the rest and ends at a separator.
                    Value::Map(entries) => entries
                        .iter()
                        .filter_map(|(k, v)| {
                            let k = k.as_str()?;
                            let tail = rest.strip_prefix(k)?;
                            (tail.is_empty() || tail.starts_with('.') || tail.starts_with('['))
                                .then_some((k.len(), v, tail))
                        })
                        .max_by_key(|(len, _, _)| *len)
                        .map(|(_, v, tail)| (v, tail)),
                    _ => None,
                }
            };
            match next {
                Some((n, tail)) => {
                    node = n;
                    rest = tail.strip_prefix('.').unwrap_or(tail);
                }
                None => break,
            }
        }
        (node, rest)
    }

    /// Number of nodes in this subtree (for the alias-expansion budget).
    fn size(&self) -> usize {
        match &self.value {
            Value::Scalar(_) => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

/// A problem found while parsing, before any resource is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    pub code: Code,
    pub pos: Pos,
    pub message: String,
}

/// One document of a stream. `root` is `None` for an empty document (only comments).
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Option<Node>,
    /// Problems inside this document that did not stop parsing (duplicate keys).
    pub problems: Vec<ParseProblem>,
}

/// The result of parsing a file: the documents read, and the errors that stopped a document.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pub documents: Vec<Document>,
    /// A syntax error or limit loses the document it is in (and, for limits, the rest of the file),
    /// never the documents before or, for syntax errors, after it.
    pub errors: Vec<ParseProblem>,
}

fn pos_of(span: &Span, line_offset: u32) -> Pos {
    let m = span.start;
    Pos {
        line: m.line() as u32 + line_offset,
        column: m.col() as u32 + 1,
    }
}

/// Byte ranges of the documents in `text`, with the line each starts on (0-based). A line starting
/// with `---` or `...` followed by a space or the line end is a document marker: YAML forbids such
/// lines inside content, so splitting there is exact, and a syntax error in one document cannot hide
/// the documents after it.
fn split_documents(text: &str) -> Vec<(usize, usize, u32)> {
    let mut chunks = Vec::new();
    let (mut start, mut start_line, mut line, mut offset) = (0usize, 0u32, 0u32, 0usize);
    for l in text.split_inclusive('\n') {
        let is_marker = |m: &str| {
            l.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        };
        if is_marker("---") && offset > start {
            chunks.push((start, offset, start_line));
            start = offset;
            start_line = line;
        }
        offset += l.len();
        line += 1;
        if is_marker("...") {
            chunks.push((start, offset, start_line));
            start = offset;
            start_line = line;
        }
    }
    if offset > start {
        chunks.push((start, offset, start_line));
    }
    chunks
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    problems: Vec<ParseProblem>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            problems: Vec::new(),
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), ParseProblem> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES_PER_DOCUMENT {
            return Err(ParseProblem {
                code: Code::InputLimit,
                pos,
                message: format!(
                    "document has more than {MAX_NODES_PER_DOCUMENT} values (counting alias expansions); refusing to load it"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), ParseProblem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(ParseProblem {
                code: Code::InputLimit,
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels; refusing to load it"),
            });
        }
        self.count(1, pos)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Add a finished node to the current container; returns the root when the stack is empty.
    fn push(&mut self, node: Node, anchor: usize) -> Option<Node> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => Some(node),
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                None
            }
            Some(Frame::Map { entries, key, .. }) => {
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
                None
            }
        }
    }

    /// Close a mapping: apply merge keys and report duplicate keys.
    fn finish_map(&mut self, pos: Pos, entries: Vec<(Node, Node)>) -> Node {
        let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut merges: Vec<Node> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (k, v) in entries {
            let key_text = match &k.value {
                Value::Scalar(s) => Some(s.text.clone()),
                _ => None,
            };
            if let Value::Scalar(s) = &k.value
                && s.text == "<<"
                && s.style == Style::Plain
            {
                merges.push(v);
                continue;
            }
            match key_text.and_then(|t| index.get(&t).copied().map(|i| (t, i))) {
                Some((t, i)) => {
                    self.problems.push(ParseProblem {
                        code: Code::DuplicateKey,
                        pos: k.pos,
                        message: format!(
                            "duplicate key `{t}` (first at line {}); kubectl rejects this, Trellis keeps the last value",
                            out[i].0.pos.line
                        ),
                    });
                    out[i] = (k, v);
                }
                None => {
                    if let Some(t) = k.as_str() {
                        index.insert(t.to_owned(), out.len());
                    }
                    out.push((k, v));
                }
            }
        }
        // Merge keys: entries written explicitly win, earlier merge sources win over later ones.
        for m in merges {
            let sources: Vec<Node> = match m.value {
                Value::Seq(items) => items,
                other => vec![Node {
                    pos: m.pos,
                    value: other,
                }],
            };
            for src in sources {
                match src.value {
                    Value::Map(entries) => {
                        for (k, v) in entries {
                            if let Some(t) = k.as_str()
                                && !index.contains_key(t)
                            {
                                index.insert(t.to_owned(), out.len());
                                out.push((k, v));
                            }
                        }
                    }
                    _ => self.problems.push(ParseProblem {
                        code: Code::SchemaValidation,
                        pos: src.pos,
                        message: "merge key `<<` needs a mapping or a list of mappings".into(),
                    }),
                }
            }
        }
        Node {
            pos,
            value: Value::Map(out),
        }
    }
}

/// Parse a YAML stream (JSON included) into documents. Never panics. A syntax error loses only the
/// document it is in; a limit (depth, size, count) stops the file, keeping what was read before.
pub fn parse_stream(text: &str) -> Stream {
    let mut stream = Stream::default();
    for (start, end, line_offset) in split_documents(text) {
        let before = stream.documents.len();
        match parse_chunk(&text[start..end], line_offset, &mut stream) {
            Ok(()) => {}
            Err(p) if p.code == Code::YamlSyntax => {
                // Keep nothing half-built from the broken document.
                stream.documents.truncate(before);
                stream.errors.push(p);
            }
            Err(p) => {
                stream.errors.push(p);
                break;
            }
        }
        if stream.documents.len() > MAX_DOCUMENTS {
            stream.documents.truncate(MAX_DOCUMENTS);
            stream.errors.push(ParseProblem {
                code: Code::InputLimit,
                pos: Pos {
                    line: line_offset + 1,
                    column: 1,
                },
                message: format!(
                    "more than {MAX_DOCUMENTS} documents in one file; the rest were not read"
                ),
            });
            break;
        }
    }
    stream
}

fn parse_chunk(text: &str, line_offset: u32, stream: &mut Stream) -> Result<(), ParseProblem> {
    let mut b = Builder::new();
    let mut current: Option<Node> = None;
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, span) = match parser.next_event() {
            None => return Ok(()),
            Some(Ok(e)) => e,
            Some(Err(err)) => {
                let m = err.marker();
                return Err(ParseProblem {
                    code: Code::YamlSyntax,
                    pos: Pos {
                        line: m.line() as u32 + line_offset,
                        column: m.col() as u32 + 1,
                    },
                    message: format!("YAML syntax error: {}", err.info()),
                });
            }
        };
        let pos = pos_of(&span, line_offset);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                b = Builder::new();
                current = None;
            }
            Event::DocumentEnd => {
                stream.documents.push(Document {
                    root: current.take(),
                    problems: std::mem::take(&mut b.problems),
                });
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).cloned().ok_or_else(|| ParseProblem {
                    code: Code::YamlSyntax,
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                b.count(node.size(), pos)?;
                if let Some(root) = b.push(Node { pos, ..node }, 0) {
                    current = Some(root);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.count(1, pos)?;
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    _ => Style::Quoted,
                };
                let tag = tag.map(|t| t.suffix.trim_start_matches("tag:yaml.org,2002:").to_owned());
                let node = Node {
                    pos,
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        tag,
                    }),
                };
                if let Some(root) = b.push(node, anchor) {
                    current = Some(root);
                }
            }
            Event::SequenceStart(anchor, _) => b.open(
                Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                },
                pos,
            )?,
            Event::MappingStart(anchor, _) => b.open(
                Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                },
                pos,
            )?,
            Event::SequenceEnd => {
                if let Some(Frame::Seq { pos, anchor, items }) = b.stack.pop() {
                    let node = Node {
                        pos,
                        value: Value::Seq(items),
                    };
                    if let Some(root) = b.push(node, anchor) {
                        current = Some(root);
                    }
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) = b.stack.pop()
                {
                    let node = b.finish_map(pos, entries);
                    if let Some(root) = b.push(node, anchor) {
                        current = Some(root);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let s = parse_stream(text);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        s.documents
            .into_iter()
            .next()
            .and_then(|d| d.root)
            .expect("a document")
    }

    #[test]
    fn keeps_positions_and_text() {
        let n = one("a:\n  b: 1.10\n  c:\n  - x\n  - 'y'\n");
        let b = n.lookup("a.b").expect("a.b");
        assert_eq!(b.as_str(), Some("1.10"));
        assert_eq!(b.pos, Pos { line: 2, column: 6 });
        assert_eq!(n.lookup("a.c[1]").and_then(Node::as_str), Some("y"));
        assert!(n.lookup("a.c[2]").is_none());
        assert_eq!(n.lookup_closest("a.c[2]").pos.line, 4);
    }

    #[test]
    fn key_positions_are_found() {
        let n = one("spec:\n  outlier:\n    consecutiveErrors: 5\n  a.b: 1\n");
        let k = n.lookup_key("spec.outlier.consecutiveErrors").expect("key");
        assert_eq!(k.pos, Pos { line: 3, column: 5 });
        assert_eq!(n.lookup_key("spec.a.b").map(|k| k.pos.line), Some(4));
        assert_eq!(n.lookup_key("spec").map(|k| k.pos.line), Some(1));
        assert!(n.lookup_key("spec.missing").is_none());
    }

    #[test]
    fn keys_with_dots_are_found() {
        let n = one("annotations:\n  sidecar.istio.io/inject: \"true\"\n");
        assert_eq!(
            n.lookup("annotations.sidecar.istio.io/inject")
                .and_then(Node::as_str),
            Some("true")
        );
    }

    #[test]
    fn duplicate_keys_are_reported_last_wins() {
        let s = parse_stream("spec: 1\nspec: 2\n");
        let d = &s.documents[0];
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].code, Code::DuplicateKey);
        assert_eq!(d.problems[0].pos.line, 2);
        assert_eq!(
            d.root
                .as_ref()
                .and_then(|r| r.get("spec"))
                .and_then(Node::as_str),
            Some("2")
        );
    }

    #[test]
    fn merge_keys_apply() {
        let n = one("base: &b\n  x: 1\n  y: 2\nobj:\n  <<: *b\n  y: 3\n");
        assert_eq!(n.lookup("obj.x").and_then(Node::as_str), Some("1"));
        assert_eq!(n.lookup("obj.y").and_then(Node::as_str), Some("3"));
    }

    #[test]
    fn alias_bomb_is_stopped() {
        let mut t = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            t.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let s = parse_stream(&t);
        assert_eq!(s.errors.first().map(|p| p.code), Some(Code::InputLimit));
    }

    #[test]
    fn deep_nesting_is_stopped() {
        let t = "[".repeat(100_000);
        let s = parse_stream(&t);
        assert!(!s.errors.is_empty());
        let t = "- ".repeat(100_000);
        let s = parse_stream(&t);
        assert!(!s.errors.is_empty());
    }

    #[test]
    fn a_syntax_error_loses_only_its_document() {
        let s = parse_stream("a: 1\n---\nb: [\n---\nc: 3\n");
        assert_eq!(s.documents.len(), 2);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].code, Code::YamlSyntax);
        assert_eq!(s.errors[0].pos.line, 4);
        let c = s.documents[1]
            .root
            .as_ref()
            .and_then(|r| r.get("c"))
            .expect("c");
        assert_eq!(c.pos.line, 5);
    }

    #[test]
    fn document_markers_split_exactly() {
        let text = "a: 1\n--- # x\nb: '---'\n...\n---\n";
        let chunks = split_documents(text);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].2, 1);
    }

    #[test]
    fn json_parses() {
        let n = one("{\"kind\": \"Service\", \"spec\": {\"ports\": [{\"port\": 80}]}}");
        assert_eq!(
            n.lookup("spec.ports[0].port").and_then(Node::as_str),
            Some("80")
        );
    }
}
