//! An HTTP/1.1 response head kept as the bytes it arrived in, with the position of each
//! field, instead of a header map: what the upstream client hands up when nothing on the
//! way to the client needs to look a header up or change one.
//!
//! Why: building a `HeaderMap` for a response (a name object and a hashed insert per
//! field), stripping its hop-by-hop headers and walking the map again to encode it for an
//! HTTP/1.1 client cost about 2,900 of the 31,900 instructions the proxy spent per request
//! (docs/performance.md). A response that goes to an HTTP/1.1 client untouched is written
//! from these bytes; anything that needs the map asks for it
//! ([`RawHead::append_to`]), and gets exactly the map the parser used to build.
//!
//! Names are lower-cased in the copy (as `HeaderName` would), values are httparse's
//! slices (surrounding whitespace trimmed).

use ::http::header::{HeaderMap, HeaderName, HeaderValue};
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// A response body that may carry its head's fields as bytes ([`RawHead`]): the
/// HTTP/1.1 server writes them from there.
pub(crate) trait RawHeadSource {
    /// The fields kept as bytes, if there are (once).
    fn take_raw_head(&mut self) -> Option<RawHead>;
}

impl<L: RawHeadSource, R> RawHeadSource for http_body_util::Either<L, R> {
    fn take_raw_head(&mut self) -> Option<RawHead> {
        match self {
            http_body_util::Either::Left(body) => body.take_raw_head(),
            http_body_util::Either::Right(_) => None,
        }
    }
}

/// What a field is to the forwarding path, decided once from its name while the head is
/// parsed, so nothing compares names again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Any other header: forwarded as it is.
    Other,
    /// `content-length`.
    ContentLength,
    /// `date`.
    Date,
    /// `grpc-status` (retry decisions and gRPC metrics read it).
    GrpcStatus,
    /// `x-envoy-ratelimited` (retry decisions read it).
    RateLimited,
    /// A connection-specific header (RFC 9110 §7.6.1: `connection`, `keep-alive`,
    /// `proxy-connection`, `transfer-encoding`, `upgrade`, and `te` other than
    /// `te: trailers`): part of the map, never written to the client.
    HopByHop,
    /// Not part of the response at all: a `content-length` next to
    /// `transfer-encoding` (RFC 9112 §6.3: the coding frames the body).
    Dropped,
}

impl FieldKind {
    /// The kind of a field named `name` (any case) with `value`.
    pub(crate) fn of(name: &[u8], value: &[u8]) -> FieldKind {
        let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
        match name.len() {
            2 if is("te") && !value.eq_ignore_ascii_case(b"trailers") => FieldKind::HopByHop,
            4 if is("date") => FieldKind::Date,
            7 if is("upgrade") => FieldKind::HopByHop,
            10 if is("connection") || is("keep-alive") => FieldKind::HopByHop,
            11 if is("grpc-status") => FieldKind::GrpcStatus,
            14 if is("content-length") => FieldKind::ContentLength,
            16 if is("proxy-connection") => FieldKind::HopByHop,
            17 if is("transfer-encoding") => FieldKind::HopByHop,
            19 if is("x-envoy-ratelimited") => FieldKind::RateLimited,
            _ => FieldKind::Other,
        }
    }

    /// Whether the field goes to the client (and into a header map built for it).
    fn forwarded(self) -> bool {
        !matches!(self, FieldKind::HopByHop | FieldKind::Dropped)
    }
}

/// One field: where its name and value are in the head's bytes. A head is at most
/// `MAX_HEAD_BYTES` (60 KiB), so positions fit 16 bits.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: u16,
    name_len: u16,
    value: u16,
    value_len: u16,
    kind: FieldKind,
}

/// A response head's fields, in the bytes they arrived in.
#[derive(Debug)]
pub struct RawHead {
    /// The head's own copy (not the connection's read buffer), names lower-cased.
    bytes: Bytes,
    fields: Vec<Field>,
}

/// Builds a [`RawHead`] from a head's bytes and the positions of its fields.
#[derive(Debug)]
pub(crate) struct RawHeadBuilder {
    bytes: BytesMut,
    fields: Vec<Field>,
}

impl RawHeadBuilder {
    /// A copy of `head`, for `n` fields.
    pub(crate) fn new(head: &[u8], n: usize) -> RawHeadBuilder {
        RawHeadBuilder {
            bytes: BytesMut::from(head),
            fields: Vec::with_capacity(n),
        }
    }

    /// Adds the field whose name is at `name` and value at `value` in the head, and
    /// lower-cases its name; returns the name, the value and the field's kind, `None`
    /// (nothing added) when a position is out of range.
    pub(crate) fn push(
        &mut self,
        name: Range<usize>,
        value: Range<usize>,
    ) -> Option<(&[u8], &[u8], FieldKind)> {
        let field = Field {
            name: u16::try_from(name.start).ok()?,
            name_len: u16::try_from(name.len()).ok()?,
            value: u16::try_from(value.start).ok()?,
            value_len: u16::try_from(value.len()).ok()?,
            kind: FieldKind::Other,
        };
        self.bytes.get_mut(name.clone())?.make_ascii_lowercase();
        let bytes = &self.bytes[..];
        let (name, value) = (bytes.get(name)?, bytes.get(value)?);
        let kind = FieldKind::of(name, value);
        self.fields.push(Field { kind, ..field });
        Some((name, value, kind))
    }

    /// The head, with every field of kind `dropped` left out of it (its bytes stay).
    pub(crate) fn finish(mut self, dropped: Option<FieldKind>) -> RawHead {
        if let Some(from) = dropped {
            for f in self.fields.iter_mut().filter(|f| f.kind == from) {
                f.kind = FieldKind::Dropped;
            }
        }
        RawHead {
            bytes: self.bytes.freeze(),
            fields: self.fields,
        }
    }
}

impl RawHead {
    fn name(&self, f: &Field) -> &[u8] {
        let at = usize::from(f.name);
        &self.bytes[at..at + usize::from(f.name_len)]
    }

    fn value(&self, f: &Field) -> &[u8] {
        let at = usize::from(f.value);
        &self.bytes[at..at + usize::from(f.value_len)]
    }

    /// The fields that go to the client, in order: name (lower case), value, kind.
    pub(crate) fn forwarded(&self) -> impl Iterator<Item = (&[u8], &[u8], FieldKind)> {
        self.fields
            .iter()
            .filter(|f| f.kind.forwarded())
            .map(|f| (self.name(f), self.value(f), f.kind))
    }

    /// The value of the first field of `kind`.
    pub(crate) fn first(&self, kind: FieldKind) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| self.value(f))
    }

    /// The forwarded fields' size as `headers_len` counts a header map's
    /// (`name: value\r\n` each).
    pub(crate) fn forwarded_len(&self) -> u64 {
        self.fields
            .iter()
            .filter(|f| f.kind.forwarded())
            .map(|f| u64::from(f.name_len) + u64::from(f.value_len) + 4)
            .sum()
    }

    /// Puts the fields into `map`, before what `map` already holds: all but
    /// [`FieldKind::Dropped`] ones (as the parser's map had them) with `hop_by_hop`, else
    /// only the forwarded ones. Values share the head's copy. A field
    /// `HeaderName`/`HeaderValue` refuse (httparse accepted it, so none should) is left
    /// out and logged.
    pub(crate) fn append_to(self, map: &mut HeaderMap, hop_by_hop: bool) {
        // An empty map (the usual case: a recycled one) keeps its storage.
        let added = if map.is_empty() {
            map.reserve(self.fields.len());
            HeaderMap::new()
        } else {
            std::mem::replace(map, HeaderMap::with_capacity(self.fields.len() + map.len()))
        };
        let wanted = |f: &&Field| match f.kind {
            FieldKind::Dropped => false,
            FieldKind::HopByHop => hop_by_hop,
            _ => true,
        };
        for f in self.fields.iter().filter(wanted) {
            let at = usize::from(f.value);
            let value = self.bytes.slice(at..at + usize::from(f.value_len));
            match (
                HeaderName::from_bytes(self.name(f)),
                HeaderValue::from_maybe_shared(value),
            ) {
                (Ok(name), Ok(value)) => {
                    map.append(name, value);
                }
                _ => tracing::debug!(
                    name = %String::from_utf8_lossy(self.name(f)),
                    "upstream response header left out: not a valid header"
                ),
            }
        }
        let mut last = None;
        for (name, value) in added {
            if let Some(name) = name {
                last = Some(name);
            }
            if let Some(name) = &last {
                map.append(name.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, dropped: Option<FieldKind>) -> RawHead {
        let mut builder = RawHeadBuilder::new(text.as_bytes(), 4);
        let mut at = 0;
        for line in text.split_inclusive("\r\n") {
            let colon = line.find(':').expect("a colon");
            let value = line[colon + 1..].trim();
            let v = at + line.find(value).expect("value");
            builder
                .push(at..at + colon, v..v + value.len())
                .expect("in range");
            at += line.len();
        }
        builder.finish(dropped)
    }

    #[test]
    fn kinds_come_from_names_in_any_case() {
        assert_eq!(
            FieldKind::of(b"content-length", b"5"),
            FieldKind::ContentLength
        );
        assert_eq!(FieldKind::of(b"CONNECTION", b"close"), FieldKind::HopByHop);
        assert_eq!(FieldKind::of(b"te", b"trailers"), FieldKind::Other);
        assert_eq!(FieldKind::of(b"te", b"gzip"), FieldKind::HopByHop);
        assert_eq!(FieldKind::of(b"Grpc-Status", b"0"), FieldKind::GrpcStatus);
        assert_eq!(
            FieldKind::of(b"x-envoy-ratelimited", b""),
            FieldKind::RateLimited
        );
        assert_eq!(FieldKind::of(b"keep-alivf", b""), FieldKind::Other);
        assert_eq!(FieldKind::of(b"server", b"x"), FieldKind::Other);
    }

    #[test]
    fn names_are_lower_cased_and_forwarded_fields_skip_hop_by_hop_ones() {
        let raw = head(
            "Date: d\r\nConnection: keep-alive\r\nContent-Length: 3\r\nX-A:  1 \r\n",
            None,
        );
        let fields: Vec<_> = raw
            .forwarded()
            .map(|(n, v, _)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(
            fields,
            [
                (b"date".to_vec(), b"d".to_vec()),
                (b"content-length".to_vec(), b"3".to_vec()),
                (b"x-a".to_vec(), b"1".to_vec())
            ]
        );
        assert_eq!(
            raw.forwarded_len(),
            (4 + 1 + 4) + (14 + 1 + 4) + (3 + 1 + 4)
        );
        assert_eq!(raw.first(FieldKind::ContentLength), Some(&b"3"[..]));
        let raw = head(
            "Content-Length: 3\r\nX-A: 1\r\n",
            Some(FieldKind::ContentLength),
        );
        assert_eq!(raw.first(FieldKind::ContentLength), None);
        assert_eq!(raw.forwarded().count(), 1);
    }

    #[test]
    fn the_map_holds_every_field_but_dropped_ones_before_what_was_added() {
        let raw = head(
            "Connection: close\r\nSet-Cookie: a\r\nContent-Length: 3\r\n",
            Some(FieldKind::ContentLength),
        );
        let mut map = HeaderMap::new();
        map.append("set-cookie", HeaderValue::from_static("b"));
        raw.append_to(&mut map, true);
        assert_eq!(map.len(), 3);
        assert_eq!(map["connection"], "close");
        let cookies: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a", "b"]);
        assert!(!map.contains_key("content-length"));

        let raw = head("Connection: close\r\nSet-Cookie: a\r\n", None);
        let mut map = HeaderMap::new();
        raw.append_to(&mut map, false);
        assert_eq!(map.len(), 1, "forwarded fields only: {map:?}");
        assert_eq!(map["set-cookie"], "a");
    }

    #[test]
    fn positions_out_of_range_are_refused() {
        let mut builder = RawHeadBuilder::new(b"a: b", 1);
        assert!(builder.push(0..1, 3..9).is_none());
        assert!(builder.push(0..70_000, 3..4).is_none());
        assert!(builder.push(0..1, 3..4).is_some());
        assert_eq!(builder.finish(None).forwarded().count(), 1);
    }
}
