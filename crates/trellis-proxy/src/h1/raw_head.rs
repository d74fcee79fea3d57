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
//! [`parse_response`] parses a head into this form: names lower-cased in the copy (as
//! `HeaderName` would), values with the whitespace around them trimmed.

mod parse;

pub(crate) use parse::{FieldAt, HeadError, parse_request, parse_response};

use ::http::header::{HeaderMap, HeaderName, HeaderValue};

use bytes::Bytes;

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
    /// The kind of a field named `name` (lower case) with `value`.
    pub(crate) fn of_lowercase(name: &[u8], value: &[u8]) -> FieldKind {
        match name.len() {
            2 if name == b"te" && !value.eq_ignore_ascii_case(b"trailers") => FieldKind::HopByHop,
            4 if name == b"date" => FieldKind::Date,
            7 if name == b"upgrade" => FieldKind::HopByHop,
            10 if name == b"connection" || name == b"keep-alive" => FieldKind::HopByHop,
            11 if name == b"grpc-status" => FieldKind::GrpcStatus,
            14 if name == b"content-length" => FieldKind::ContentLength,
            16 if name == b"proxy-connection" => FieldKind::HopByHop,
            17 if name == b"transfer-encoding" => FieldKind::HopByHop,
            19 if name == b"x-envoy-ratelimited" => FieldKind::RateLimited,
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

impl RawHead {
    /// Every field but dropped ones, hop-by-hop ones included: name (lower case),
    /// value, kind.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8], FieldKind)> {
        self.fields
            .iter()
            .filter(|f| f.kind != FieldKind::Dropped)
            .map(|f| (self.name(f), self.value(f), f.kind))
    }

    /// Leaves every field of `kind` out of the head (its bytes stay).
    pub(crate) fn drop_kind(&mut self, kind: FieldKind) {
        for f in self.fields.iter_mut().filter(|f| f.kind == kind) {
            f.kind = FieldKind::Dropped;
        }
    }

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
    /// `HeaderName`/`HeaderValue` refuse (the parser accepted it, so none should) is left
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

    fn head(fields: &str, dropped: Option<FieldKind>) -> RawHead {
        let mut text = format!("HTTP/1.1 200 OK\r\n{fields}\r\n").into_bytes();
        let mut raw = parse_response(&mut text)
            .expect("valid")
            .expect("complete")
            .fields;
        if let Some(kind) = dropped {
            raw.drop_kind(kind);
        }
        raw
    }

    #[test]
    fn kinds_come_from_lower_case_names() {
        let of = FieldKind::of_lowercase;
        assert_eq!(of(b"content-length", b"5"), FieldKind::ContentLength);
        assert_eq!(of(b"connection", b"close"), FieldKind::HopByHop);
        assert_eq!(of(b"te", b"Trailers"), FieldKind::Other);
        assert_eq!(of(b"te", b"gzip"), FieldKind::HopByHop);
        assert_eq!(of(b"grpc-status", b"0"), FieldKind::GrpcStatus);
        assert_eq!(of(b"x-envoy-ratelimited", b""), FieldKind::RateLimited);
        assert_eq!(of(b"keep-alivf", b""), FieldKind::Other);
        assert_eq!(of(b"server", b"x"), FieldKind::Other);
        // Parsed names are lower-cased first.
        let raw = head("CONNECTION: close\r\nDate: d\r\n", None);
        let kinds: Vec<_> = raw.fields().map(|(_, _, kind)| kind).collect();
        assert_eq!(kinds, [FieldKind::HopByHop, FieldKind::Date]);
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
}
