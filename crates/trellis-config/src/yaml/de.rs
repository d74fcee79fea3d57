//! A serde `Deserializer` over [`Node`] trees.
//!
//! Why not an off-the-shelf YAML deserializer: Trellis needs (1) the position of the innermost value
//! on every error, (2) every unknown field, not just the first, without failing the resource, and
//! (3) the exact text of scalars, so `version: 1.10` is `"1.10"` in a string field and YAML 1.1
//! surprises (`on`, `yes`, `010`) are pointed out rather than silently changed.
//!
//! Unknown fields are found through `deserialize_ignored_any`: serde's derived code calls it for the
//! value of a key the struct does not have, and our map access knows that key and the struct's list
//! of fields (for "did you mean").

use super::{Node, Scalar, Style, Value};
use crate::diag::Pos;
use crate::resources::common::ObjectMeta;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// A deserialization error, with the position of the value it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

/// A field present in the input that the type has no place for.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownField {
    pub pos: Pos,
    /// Path of the mapping that holds it, e.g. `spec.http[0]`.
    pub parent: String,
    pub key: String,
    /// The fields the mapping accepts.
    pub expected: &'static [&'static str],
}

/// A plain scalar in a string field that YAML 1.1 (kubectl, go-yaml) would read as something else.
#[derive(Debug, Clone, PartialEq)]
pub struct AmbiguousScalar {
    pub pos: Pos,
    pub path: String,
    pub text: String,
    pub reading: &'static str,
}

/// What deserialization noticed without failing.
#[derive(Debug, Default)]
pub struct Notes {
    pub unknown: Vec<UnknownField>,
    pub ambiguous: Vec<AmbiguousScalar>,
}

/// The path to the value being decoded, as a linked list on the stack (formatted only when needed).
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(r) => f.write_str(r),
            Path::Key(p, k) => {
                let parent = p.to_string();
                if parent.is_empty() {
                    write!(f, "{k}")
                } else {
                    write!(f, "{parent}.{k}")
                }
            }
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// The parent mapping's context for a value: its key and the fields the parent accepts.
#[derive(Clone, Copy)]
struct Parent<'a> {
    key: &'a Node,
    expected: &'static [&'static str],
}

#[derive(Clone, Copy)]
struct De<'de, 'p> {
    node: &'de Node,
    notes: &'p RefCell<Notes>,
    path: &'p Path<'p>,
    parent: Option<Parent<'de>>,
    /// Top-level keys to pass over (for kinds whose content sits next to `metadata`).
    skip: &'static [&'static str],
}

/// Decodes one resource document.
pub struct Decoder<'a> {
    root: &'a Node,
    body_at_top_level: bool,
    notes: RefCell<Notes>,
}

/// Top-level keys every resource may have besides its content.
const ENVELOPE: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const ENVELOPE_NO_SPEC: &[&str] = &["apiVersion", "kind", "metadata", "status"];

impl<'a> Decoder<'a> {
    pub fn new(root: &'a Node, body_at_top_level: bool) -> Self {
        Decoder {
            root,
            body_at_top_level,
            notes: RefCell::new(Notes::default()),
        }
    }

    /// What was noticed while decoding.
    pub fn into_notes(self) -> Notes {
        self.notes.into_inner()
    }

    /// Decode `metadata` and the kind's content (`spec`, or the top level for some core kinds).
    pub fn decode<T: DeserializeOwned>(&mut self) -> Result<(ObjectMeta, T), DeError> {
        let root_path = Path::Root("");
        let meta = match self.root.get_entry("metadata") {
            Some((_, v)) => {
                let path = Path::Key(&root_path, "metadata");
                ObjectMeta::deserialize(De {
                    node: v,
                    notes: &self.notes,
                    path: &path,
                    parent: None,
                    skip: &[],
                })?
            }
            None => ObjectMeta::default(),
        };
        let body = if self.body_at_top_level {
            let de = De {
                node: self.root,
                notes: &self.notes,
                path: &root_path,
                parent: None,
                skip: ENVELOPE_NO_SPEC,
            };
            T::deserialize(de)?
        } else {
            self.report_unknown_top_level();
            match self.root.get("spec") {
                Some(spec) => {
                    let path = Path::Key(&root_path, "spec");
                    T::deserialize(De {
                        node: spec,
                        notes: &self.notes,
                        path: &path,
                        parent: None,
                        skip: &[],
                    })?
                }
                None => {
                    let empty = Node {
                        pos: self.root.pos,
                        value: Value::Map(Vec::new()),
                    };
                    let path = Path::Key(&root_path, "spec");
                    T::deserialize(De {
                        node: &empty,
                        notes: &self.notes,
                        path: &path,
                        parent: None,
                        skip: &[],
                    })?
                }
            }
        };
        Ok((meta, body))
    }

    fn report_unknown_top_level(&self) {
        if let Value::Map(entries) = &self.root.value {
            for (k, _) in entries {
                let key = k.as_str().unwrap_or_default();
                if !ENVELOPE.contains(&key) {
                    self.notes.borrow_mut().unknown.push(UnknownField {
                        pos: k.pos,
                        parent: String::new(),
                        key: key.to_owned(),
                        expected: ENVELOPE,
                    });
                }
            }
        }
    }
}

/// Deserialize any type from a node, collecting notes (used by tests and for sub-documents).
pub fn from_node<T: DeserializeOwned>(node: &Node) -> (Result<T, DeError>, Notes) {
    let notes = RefCell::new(Notes::default());
    let path = Path::Root("");
    let r = T::deserialize(De {
        node,
        notes: &notes,
        path: &path,
        parent: None,
        skip: &[],
    });
    (r, notes.into_inner())
}

/// How YAML 1.1 (what kubectl uses) would read a plain scalar, when that differs from the text.
fn yaml11_reading(text: &str) -> Option<&'static str> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Some("the boolean true");
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Some("the boolean false");
        }
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some("an octal number");
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some("a number");
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
        && text.bytes().any(|b| b.is_ascii_digit())
    {
        return Some("a number");
    }
    None
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_owned()),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i128>().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ if text.bytes().any(|b| b.is_ascii_digit()) => text.replace('_', "").parse().ok(),
        _ => None,
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            Some(false)
        }
        _ => None,
    }
}

impl<'de> De<'de, '_> {
    fn scalar(&self) -> Option<&'de Scalar> {
        match &self.node.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn unexpected(&self) -> de::Unexpected<'de> {
        match &self.node.value {
            Value::Scalar(s) if s.is_null() => de::Unexpected::Unit,
            Value::Scalar(s) => de::Unexpected::Str(&s.text),
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
        }
    }

    fn invalid<V>(&self, exp: &dyn de::Expected) -> Result<V, DeError> {
        Err(<DeError as de::Error>::invalid_type(self.unexpected(), exp).at(self.node.pos))
    }

    fn visit_int<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) if !s.is_null() => match parse_int(&s.text) {
                Some(v) => {
                    if s.style == Style::Plain
                        && s.text.len() > 1
                        && s.text.trim_start_matches(['-', '+']).starts_with('0')
                        && s.text
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
                    {
                        self.note_ambiguous(s, "an octal number");
                    }
                    if let Ok(u) = u64::try_from(v) {
                        visitor.visit_u64(u)
                    } else if let Ok(i) = i64::try_from(v) {
                        visitor.visit_i64(i)
                    } else {
                        Err(de::Error::custom(format!(
                            "integer {} is out of range",
                            s.text
                        )))
                    }
                }
                None => match parse_float(&s.text) {
                    Some(f) if s.style == Style::Plain => Err(
                        <DeError as de::Error>::invalid_type(de::Unexpected::Float(f), &visitor),
                    ),
                    _ => self.invalid(&visitor),
                },
            },
            _ => self.invalid(&visitor),
        }
        .map_err(|e: DeError| e.at(self.node.pos))
    }

    fn note_ambiguous(&self, s: &Scalar, reading: &'static str) {
        self.notes.borrow_mut().ambiguous.push(AmbiguousScalar {
            pos: self.node.pos,
            path: self.path.to_string(),
            text: s.text.clone(),
            reading,
        });
    }
}

macro_rules! forward_int {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.visit_int(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Scalar(s) if s.is_string() => visitor.visit_str(&s.text),
            Value::Scalar(s) if s.is_null() => visitor.visit_unit(),
            Value::Scalar(s) => match s.text.as_str() {
                "true" | "True" | "TRUE" => visitor.visit_bool(true),
                "false" | "False" | "FALSE" => visitor.visit_bool(false),
                t => match parse_int(t) {
                    Some(v) if u64::try_from(v).is_ok() => visitor.visit_u64(v as u64),
                    Some(v) if i64::try_from(v).is_ok() => visitor.visit_i64(v as i64),
                    _ => match parse_float(t) {
                        Some(f) => visitor.visit_f64(f),
                        None => visitor.visit_str(t),
                    },
                },
            },
            Value::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                de: self,
            }),
            Value::Map(entries) => visitor.visit_map(MapAccess::new(self, entries, &[])),
        };
        r.map_err(|e: DeError| e.at(self.node.pos))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().and_then(|s| parse_bool(&s.text)) {
            Some(b) => visitor
                .visit_bool(b)
                .map_err(|e: DeError| e.at(self.node.pos)),
            None => self.invalid(&visitor),
        }
    }

    forward_int!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self
            .scalar()
            .filter(|s| !s.is_null())
            .and_then(|s| parse_float(&s.text))
        {
            Some(f) => visitor
                .visit_f64(f)
                .map_err(|e: DeError| e.at(self.node.pos)),
            None => self.invalid(&visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) => {
                if s.style == Style::Plain
                    && s.tag.is_none()
                    && let Some(reading) = yaml11_reading(&s.text)
                {
                    self.note_ambiguous(s, reading);
                }
                let text = if s.is_null() { "" } else { s.text.as_str() };
                visitor
                    .visit_str(text)
                    .map_err(|e: DeError| e.at(self.node.pos))
            }
            None => self.invalid(&visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor
                .visit_none()
                .map_err(|e: DeError| e.at(self.node.pos))
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            self.invalid(&visitor)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(SeqAccess {
                    items: items.iter().enumerate(),
                    de: self,
                })
                .map_err(|e: DeError| e.at(self.node.pos)),
            // Kubernetes reads null as the empty list.
            Value::Scalar(s) if s.is_null() => visitor
                .visit_seq(SeqAccess {
                    items: [].iter().enumerate(),
                    de: self,
                })
                .map_err(|e: DeError| e.at(self.node.pos)),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(MapAccess::new(self, entries, fields))
                .map_err(|e: DeError| e.at(self.node.pos)),
            Value::Scalar(s) if s.is_null() => visitor
                .visit_map(MapAccess::new(self, &[], fields))
                .map_err(|e: DeError| e.at(self.node.pos)),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) if !s.is_null() => {
                let d: de::value::StrDeserializer<'_, DeError> =
                    s.text.as_str().into_deserializer();
                visitor
                    .visit_enum(d)
                    .map_err(|e: DeError| e.at(self.node.pos))
            }
            _ => self.invalid(&"a string naming one of the allowed values"),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Some(s) => visitor
                .visit_str(&s.text)
                .map_err(|e: DeError| e.at(self.node.pos)),
            None => self.invalid(&visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Serde's derived code asks to ignore exactly the values of keys the type does not have.
        if let Some(parent) = self.parent {
            let parent_path = match self.path {
                Path::Key(p, _) => p.to_string(),
                other => other.to_string(),
            };
            self.notes.borrow_mut().unknown.push(UnknownField {
                pos: parent.key.pos,
                parent: parent_path,
                key: parent.key.as_str().unwrap_or_default().to_owned(),
                expected: parent.expected,
            });
        }
        visitor.visit_unit()
    }
}

struct SeqAccess<'de, 'p, I> {
    items: I,
    de: De<'de, 'p>,
}

impl<'de, I: Iterator<Item = (usize, &'de Node)>> de::SeqAccess<'de> for SeqAccess<'de, '_, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = Path::Index(self.de.path, i);
                let de = De {
                    node,
                    notes: self.de.notes,
                    path: &path,
                    parent: None,
                    skip: &[],
                };
                seed.deserialize(de)
                    .map(Some)
                    .map_err(|e: DeError| e.at(node.pos))
            }
        }
    }
}

struct MapAccess<'de, 'p> {
    de: De<'de, 'p>,
    entries: std::slice::Iter<'de, (Node, Node)>,
    fields: &'static [&'static str],
    value: Option<(&'de Node, &'de Node)>,
}

impl<'de, 'p> MapAccess<'de, 'p> {
    fn new(de: De<'de, 'p>, entries: &'de [(Node, Node)], fields: &'static [&'static str]) -> Self {
        MapAccess {
            de,
            entries: entries.iter(),
            fields,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (k, v) in self.entries.by_ref() {
            if self.de.skip.iter().any(|s| k.as_str() == Some(s)) {
                continue;
            }
            self.value = Some((k, v));
            let path = Path::Key(self.de.path, k.as_str().unwrap_or("?"));
            let kd = De {
                node: k,
                notes: self.de.notes,
                path: &path,
                parent: None,
                skip: &[],
            };
            return seed
                .deserialize(KeyDe(kd))
                .map(Some)
                .map_err(|e: DeError| e.at(k.pos));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((k, v)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = Path::Key(self.de.path, k.as_str().unwrap_or("?"));
        let de = De {
            node: v,
            notes: self.de.notes,
            path: &path,
            parent: Some(Parent {
                key: k,
                expected: self.fields,
            }),
            skip: &[],
        };
        seed.deserialize(de).map_err(|e: DeError| e.at(v.pos))
    }
}

/// Keys are read as strings whatever their YAML type (`80: x` has the key "80"), with no
/// YAML 1.1 notes: a key's text is what the user meant.
struct KeyDe<'de, 'p>(De<'de, 'p>);

impl<'de> de::Deserializer<'de> for KeyDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.scalar() {
            Some(s) => visitor.visit_str(&s.text),
            None => self.0.invalid(&"a scalar key"),
        }
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.0.visit_int(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.0.visit_int(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.0.visit_int(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.0.visit_int(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.0.visit_int(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i128 u8 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_stream;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Inner {
        port: u16,
        version: String,
        enabled: bool,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", default)]
    struct Outer {
        name: String,
        inner: Vec<Inner>,
        weight: Option<u32>,
    }

    fn decode(text: &str) -> (Result<Outer, DeError>, Notes) {
        let s = parse_stream(text);
        let root = s
            .documents
            .into_iter()
            .next()
            .and_then(|d| d.root)
            .expect("doc");
        from_node::<Outer>(&root)
    }

    #[test]
    fn strings_keep_their_text_and_ambiguity_is_noted() {
        let (r, notes) = decode("name: x\ninner:\n- version: 1.10\n  enabled: yes\n  port: 80\n");
        let o = r.expect("decodes");
        assert_eq!(o.inner[0].version, "1.10");
        assert!(o.inner[0].enabled);
        assert_eq!(notes.ambiguous.len(), 1);
        assert_eq!(notes.ambiguous[0].path, "inner[0].version");
        assert_eq!(
            notes.ambiguous[0].pos,
            Pos {
                line: 3,
                column: 12
            }
        );
    }

    #[test]
    fn errors_carry_the_innermost_position() {
        let (r, _) = decode("name: x\ninner:\n- port: 99999\n");
        let e = r.expect_err("out of range");
        assert_eq!(e.pos, Some(Pos { line: 3, column: 9 }));
        assert!(e.message.contains("99999"), "{}", e.message);
        let (r, _) = decode("name: x\ninner:\n- port: http\n");
        assert!(r.expect_err("bad type").message.contains("invalid type"));
    }

    #[test]
    fn every_unknown_field_is_noted_with_its_parent() {
        let (r, notes) = decode("name: x\nretries: 3\ninner:\n- prot: 80\n  vesion: v1\n");
        assert!(r.is_ok());
        let keys: Vec<(&str, &str, u32)> = notes
            .unknown
            .iter()
            .map(|u| (u.parent.as_str(), u.key.as_str(), u.pos.line))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("", "retries", 2),
                ("inner[0]", "prot", 4),
                ("inner[0]", "vesion", 5)
            ]
        );
        assert!(notes.unknown[1].expected.contains(&"port"));
    }

    #[test]
    fn null_reads_as_empty() {
        let (r, _) = decode("name: x\ninner:\nweight: ~\n");
        let o = r.expect("decodes");
        assert!(o.inner.is_empty());
        assert_eq!(o.weight, None);
    }

    #[test]
    fn leading_zero_ints_are_noted() {
        let (r, notes) = decode("inner:\n- port: 010\n");
        assert_eq!(r.expect("decodes").inner[0].port, 10);
        assert_eq!(notes.ambiguous[0].reading, "an octal number");
    }
}
