//! `x-request-id`: kept when the client sent a usable one, generated otherwise, and propagated
//! upstream so one id follows a request through every hop (as Envoy does).

use http::{HeaderName, HeaderValue};

/// The header name (a parsed name: lookups with it skip parsing a string each time).
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id accepted from a client; longer ones are replaced (they would bloat every log line).
pub const MAX_LEN: usize = 128;

/// A request id, stored as the header value it is sent as (cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id, when it is 1..=128 visible ASCII characters.
    pub fn from_client(value: &HeaderValue) -> Option<RequestId> {
        let b = value.as_bytes();
        let ok = !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| c.is_ascii_graphic());
        ok.then(|| RequestId(value.clone()))
    }

    /// A random (version 4) UUID built from `random`, in the canonical 8-4-4-4-12 form.
    pub fn from_random(random: u128) -> RequestId {
        // Version 4 and RFC 4122 variant bits.
        let v = (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        // Two hex digits per byte, most significant first, skipping the dashes.
        let mut at = 0;
        for byte in v.to_be_bytes() {
            if matches!(at, 8 | 13 | 18 | 23) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0xF)];
            at += 2;
        }
        // Only hex digits and dashes: always a valid header value.
        RequestId(HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-")))
    }

    /// A fresh random id.
    pub fn generate() -> RequestId {
        RequestId::from_random(rand::random::<u128>())
    }

    /// The client's id when usable, else a fresh one.
    pub fn from_request(headers: &http::HeaderMap) -> RequestId {
        headers
            .get(&HEADER)
            .and_then(RequestId::from_client)
            .unwrap_or_else(RequestId::generate)
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as the header's value (moving it: a clone of a fresh id's bytes would
    /// allocate their shared owner).
    pub fn into_header_value(self) -> HeaderValue {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from visible ASCII.
        self.0.to_str().unwrap_or("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v4_uuids() {
        let id = RequestId::from_random(u128::MAX);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = RequestId::from_random(0);
        assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
    }

    #[test]
    fn client_ids_are_kept_when_sane() {
        let mut h = http::HeaderMap::new();
        h.insert(&HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::from_request(&h).as_str(), "abc-123");
        h.insert(&HEADER, HeaderValue::from_static("has space"));
        assert_ne!(RequestId::from_request(&h).as_str(), "has space");
        let long = "x".repeat(MAX_LEN + 1);
        h.insert(&HEADER, HeaderValue::from_str(&long).expect("ascii"));
        assert_eq!(RequestId::from_request(&h).as_str().len(), 36);
    }
}
