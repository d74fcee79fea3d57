//! The request hash for consistent-hash balancing, computed as Envoy computes it (xxHash64,
//! seed 0, of the raw key bytes) so Envoy and Trellis proxies agree on session affinity.
//!
//! - header: the value; several values are sorted and chained (each hash seeds the next);
//! - cookie: the value from the `Cookie` headers (surrounding quotes removed), parsed
//!   without allocating; when absent and the key has a ttl, a cookie is generated;
//! - source IP: the client IP's text form without port;
//! - query parameter: the first raw (undecoded) value of the parameter.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::{COOKIE, HeaderName};
use trellis_model::HashKey;
use xxhash_rust::xxh64::{Xxh64, xxh64};

use super::BalanceError;

/// Header values sorted on the stack before hashing; more than this allocate.
const INLINE_VALUES: usize = 8;

/// What the hasher needs from a request: its headers, URI and connection addresses.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// Request headers.
    pub headers: &'a http::HeaderMap,
    /// Request URI (only the query is read).
    pub uri: &'a http::Uri,
    /// The downstream client's address.
    pub peer: SocketAddr,
    /// The local address the client connected to (part of a generated cookie's value).
    pub local: SocketAddr,
}

/// A generated cookie value: 16 lowercase hex digits, kept inline (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieValue([u8; 16]);

impl CookieValue {
    fn from_hash(h: u64) -> Self {
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            let nibble = (h >> (60 - 4 * i)) & 0xf;
            *b = b"0123456789abcdef"[nibble as usize];
        }
        CookieValue(out)
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The outcome of hashing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashDecision<'a> {
    /// The request lacks the key: balance without affinity (hash balancers pick at random).
    NoHash,
    /// Balance on this hash.
    Hash(u64),
    /// The affinity cookie is missing and has a ttl: balance on `hash` (the hash of
    /// `value`) and send `Set-Cookie` (see [`HashDecision::set_cookie_header`]) so the
    /// client's next requests carry `value` and reach the same endpoint.
    SetCookie {
        /// Cookie name.
        name: &'a str,
        /// Generated value.
        value: CookieValue,
        /// Path attribute, if configured.
        path: Option<&'a str>,
        /// Lifetime; zero makes a session cookie.
        ttl: Duration,
        /// `xxHash64(value)`, the hash this request is balanced on.
        hash: u64,
    },
}

impl HashDecision<'_> {
    /// The hash to put in [`super::PickContext::hash`].
    pub fn hash(&self) -> Option<u64> {
        match self {
            HashDecision::NoHash => None,
            HashDecision::Hash(h) | HashDecision::SetCookie { hash: h, .. } => Some(*h),
        }
    }

    /// The `Set-Cookie` response header for a generated cookie, formatted as Envoy's:
    /// `name="value"; Max-Age=<s>; Path=<path>; HttpOnly`.
    pub fn set_cookie_header(&self) -> Option<http::HeaderValue> {
        let HashDecision::SetCookie {
            name,
            value,
            path,
            ttl,
            ..
        } = self
        else {
            return None;
        };
        let mut text = format!("{name}=\"{}\"", value.as_str());
        if !ttl.is_zero() {
            text.push_str(&format!("; Max-Age={}", ttl.as_secs()));
        }
        if let Some(path) = path.filter(|p| !p.is_empty()) {
            text.push_str("; Path=");
            text.push_str(path);
        }
        text.push_str("; HttpOnly");
        http::HeaderValue::from_str(&text).ok()
    }
}

/// A [`HashKey`] prepared at config time (header name parsed once).
#[derive(Debug, Clone)]
pub struct RequestHasher {
    key: Key,
}

#[derive(Debug, Clone)]
enum Key {
    Header(HeaderName),
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    Query(String),
}

impl RequestHasher {
    /// Prepares `key`; errors if a header key is not a valid header name.
    pub fn new(key: &HashKey) -> Result<Self, BalanceError> {
        let key = match key {
            HashKey::Header(name) => Key::Header(
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| BalanceError::HeaderName(name.clone()))?,
            ),
            HashKey::Cookie { name, path, ttl } => Key::Cookie {
                name: name.clone(),
                path: path.clone(),
                ttl: *ttl,
            },
            HashKey::SourceIp => Key::SourceIp,
            HashKey::QueryParameter(name) => Key::Query(name.clone()),
        };
        Ok(RequestHasher { key })
    }

    /// Hashes one request; allocation-free except for more than eight values of a
    /// hashed header.
    pub fn hash(&self, input: &HashInput<'_>) -> HashDecision<'_> {
        let hash = match &self.key {
            Key::Header(name) => header_hash(input.headers, name),
            Key::Cookie { name, path, ttl } => match cookie_value(input.headers, name) {
                Some(value) => Some(xxh64(value, 0)),
                None => {
                    let Some(ttl) = ttl else {
                        return HashDecision::NoHash;
                    };
                    let value = generated_cookie(input.peer, input.local);
                    return HashDecision::SetCookie {
                        name,
                        value,
                        path: path.as_deref(),
                        ttl: *ttl,
                        hash: xxh64(&value.0, 0),
                    };
                }
            },
            Key::SourceIp => {
                let mut buf = [0u8; 64];
                let mut w = &mut buf[..];
                // An IP address is at most 45 characters, so this cannot run out of room.
                let written = write!(w, "{}", input.peer.ip()).is_ok();
                let len = 64 - w.len();
                written.then(|| xxh64(&buf[..len], 0))
            }
            Key::Query(name) => query_value(input.uri, name).map(|v| xxh64(v, 0)),
        };
        hash.map_or(HashDecision::NoHash, HashDecision::Hash)
    }
}

/// Envoy's header hash: values sorted, each hashed with the previous hash as seed.
fn header_hash(headers: &http::HeaderMap, name: &HeaderName) -> Option<u64> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?.as_bytes();
    let Some(second) = all.next() else {
        return Some(xxh64(first, 0));
    };
    let chain = |values: &mut [&[u8]]| {
        values.sort_unstable();
        values.iter().fold(0, |seed, v| xxh64(v, seed))
    };
    let mut inline: [&[u8]; INLINE_VALUES] = [&[]; INLINE_VALUES];
    inline[0] = first;
    inline[1] = second.as_bytes();
    let mut n = 2;
    while let Some(v) = all.next() {
        if n == INLINE_VALUES {
            let mut spill: Vec<&[u8]> = inline.to_vec();
            spill.push(v.as_bytes());
            spill.extend(all.map(|v| v.as_bytes()));
            return Some(chain(&mut spill));
        }
        inline[n] = v.as_bytes();
        n += 1;
    }
    Some(chain(&mut inline[..n]))
}

/// The first non-empty value of cookie `name` in any `Cookie` header, quotes removed.
fn cookie_value<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|h| h.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let eq = pair.iter().position(|&b| b == b'=')?;
            if &pair[..eq] != name.as_bytes() {
                return None;
            }
            let value = &pair[eq + 1..];
            let value = match value {
                [b'"', inner @ .., b'"'] => inner,
                v => v,
            };
            Some(value).filter(|v| !v.is_empty())
        })
}

/// The first raw value of query parameter `name` (empty when written without `=`).
fn query_value<'u>(uri: &'u http::Uri, name: &str) -> Option<&'u [u8]> {
    uri.query()?.split('&').find_map(|param| {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        (key == name).then_some(value.as_bytes())
    })
}

/// Envoy's generated value: hex of xxHash64 over the client address followed by the
/// local address (`ip:port` each), so it is stable per connection and differs per client.
fn generated_cookie(peer: SocketAddr, local: SocketAddr) -> CookieValue {
    let mut hasher = Xxh64::new(0);
    for addr in [peer, local] {
        let mut buf = [0u8; 128];
        let mut w = &mut buf[..];
        // A socket address (with IPv6 scope id) is well under 128 characters.
        if write!(w, "{addr}").is_ok() {
            let len = 128 - w.len();
            hasher.update(&buf[..len]);
        }
    }
    CookieValue::from_hash(hasher.digest())
}

#[cfg(test)]
mod tests;
