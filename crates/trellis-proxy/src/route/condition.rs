//! Compiled [`HttpMatch`]es and the per-lookup state that makes evaluating a hundred of
//! them cheap.
//!
//! Two things dominate a lookup in a large table: rules that cannot match the path, and
//! repeated lookups of the same header. A [`PathGuard`] states the first as literals the
//! path's first eight bytes must start with (the table indexes them, `super::prefilter`);
//! a [`Probe`] keeps each header the table asks about, looked up at most once per request,
//! in a fixed array on the stack.

use http::{HeaderMap, HeaderName};
use trellis_model::{HeaderMatch, HttpMatch, Labels, QueryMatch, StringMatch, selector_matches};

use super::matcher::{MAX_PREFIXES, MatchError, StringMatcher};
use super::view::RequestView;

/// How many distinct header names a table caches per lookup; conditions on further names
/// look the header up each time.
pub(crate) const HEADER_SLOTS: usize = 8;

/// The distinct header names of a table, interned at compile time into cache slots.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderSlots(Vec<HeaderName>);

impl HeaderSlots {
    /// The name interned in `slot`.
    pub(crate) fn name(&self, slot: usize) -> Option<&HeaderName> {
        self.0.get(slot)
    }

    fn slot(&mut self, name: &HeaderName) -> Option<usize> {
        if let Some(i) = self.0.iter().position(|n| n == name) {
            return Some(i);
        }
        (self.0.len() < HEADER_SLOTS).then(|| {
            self.0.push(name.clone());
            self.0.len() - 1
        })
    }
}

/// A header as the request carries it, as far as matching cares.
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    /// Not looked up yet in this request.
    Unknown,
    Absent,
    /// Sent once; `None` when the value is not UTF-8 (it can only match presence).
    One(Option<&'a str>),
    /// Sent several times; matched as the values joined with `,`, built on demand.
    Many,
}

/// Per-lookup state: the request, the first bytes of its path as a word, and the headers
/// looked up so far.
pub(crate) struct Probe<'r, 'a> {
    req: &'r RequestView<'a>,
    path_head: u64,
    headers: [Seen<'a>; HEADER_SLOTS],
}

impl<'r, 'a> Probe<'r, 'a> {
    pub(crate) fn new(req: &'r RequestView<'a>) -> Self {
        Probe {
            req,
            path_head: head_word(req.path.as_bytes()),
            headers: [Seen::Unknown; HEADER_SLOTS],
        }
    }

    /// The path's first eight bytes as a word, for [`PathGuard::admits`].
    pub(crate) fn path_head(&self) -> u64 {
        self.path_head
    }

    /// Whether the request carries header `name`, interned in `slot` (looked up once per
    /// request, like every cached header).
    #[inline]
    pub(crate) fn has_header(&mut self, slot: usize, name: &HeaderName) -> bool {
        !matches!(self.header(Some(slot), name), Seen::Absent | Seen::Unknown)
    }

    /// The header interned in `slot` (or, without a slot, looked up every time). The
    /// cached case is inlined; the map lookup is not, so a walk over many routes asking
    /// about the same header stays a few instructions per route.
    #[inline]
    fn header(&mut self, slot: Option<usize>, name: &HeaderName) -> Seen<'a> {
        let Some(slot) = slot else {
            return Self::fetch(self.req.headers, name);
        };
        if let Seen::Unknown = self.headers[slot] {
            self.headers[slot] = Self::fetch(self.req.headers, name);
        }
        self.headers[slot]
    }

    /// Looks `name` up in the request's headers.
    #[inline(never)]
    fn fetch(headers: &'a HeaderMap, name: &HeaderName) -> Seen<'a> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Seen::Absent,
            (Some(v), None) => Seen::One(std::str::from_utf8(v.as_bytes()).ok()),
            (Some(_), Some(_)) => Seen::Many,
        }
    }
}

/// The first (up to) eight bytes of `bytes` as a little-endian word, zero padded.
fn head_word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    for (w, b) in word.iter_mut().zip(bytes) {
        *w = *b;
    }
    u64::from_le_bytes(word)
}

/// A necessary condition on the path: it starts with one of up to [`MAX_PREFIXES`]
/// literals, compared on their first eight bytes. It never rejects a path the match
/// would accept; it only lets the table skip the full check for most that it would not.
///
/// Most routes have one literal, so the first entry is checked alone and the others only
/// when there are more; unused entries repeat the first, and an unconstrained guard is all
/// zeros (a zero mask admits any path).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathGuard {
    /// (word, mask) per literal: a path whose head, masked, equals the word may match.
    entries: [(u64, u64); MAX_PREFIXES],
    /// How many entries are distinct literals; 0 means unconstrained.
    len: usize,
}

impl PathGuard {
    fn new(uri: Option<&StringMatcher>) -> PathGuard {
        let prefixes = uri
            .map(StringMatcher::required_prefixes)
            .unwrap_or_default();
        if prefixes.len() > MAX_PREFIXES || prefixes.iter().any(|p| p.is_empty()) {
            return PathGuard::default();
        }
        let entries = prefixes.iter().map(|p| {
            let n = p.len().min(8);
            let mask = if n == 8 { u64::MAX } else { (1 << (8 * n)) - 1 };
            (head_word(&p[..n]), mask)
        });
        PathGuard::from_entries(entries)
    }

    /// A guard admitting paths that start with any of `entries` (word, mask); fills the
    /// unused entries with copies of the first.
    fn from_entries(entries: impl Iterator<Item = (u64, u64)>) -> PathGuard {
        let mut guard = PathGuard::default();
        for (i, entry) in entries.take(MAX_PREFIXES).enumerate() {
            guard.entries[i] = entry;
            guard.len = i + 1;
        }
        let first = guard.entries[0];
        for entry in &mut guard.entries[guard.len.max(1)..] {
            *entry = first;
        }
        guard
    }

    /// The guard of a route with several matches: a path may match if it passes any of
    /// `guards`. Unconstrained when one of them is, or when together they have more
    /// literals than a guard holds.
    pub(crate) fn any_of<'g>(guards: impl IntoIterator<Item = &'g PathGuard>) -> PathGuard {
        let mut entries = Vec::with_capacity(MAX_PREFIXES);
        for g in guards {
            if g.len == 0 {
                return PathGuard::default();
            }
            entries.extend_from_slice(&g.entries[..g.len]);
        }
        if entries.len() > MAX_PREFIXES {
            return PathGuard::default();
        }
        PathGuard::from_entries(entries.into_iter())
    }

    /// The distinct literals as (word, mask) pairs; empty when unconstrained.
    pub(crate) fn literals(&self) -> &[(u64, u64)] {
        &self.entries[..self.len]
    }

    /// Whether a path starting with `head` (see [`Probe::path_head`]) may match.
    #[inline]
    pub(crate) fn admits(&self, head: u64) -> bool {
        let hit = |(word, mask): &(u64, u64)| head & mask == *word;
        hit(&self.entries[0]) || (self.len > 1 && self.entries[1..].iter().any(hit))
    }
}

/// A compiled [`HeaderMatch`].
#[derive(Debug, Clone)]
struct HeaderCond {
    name: HeaderName,
    slot: Option<usize>,
    value: Option<StringMatcher>,
    invert: bool,
}

impl HeaderCond {
    fn compile(h: &HeaderMatch, slots: &mut HeaderSlots) -> Result<Self, MatchError> {
        let name =
            HeaderName::from_bytes(h.name.to_ascii_lowercase().as_bytes()).map_err(|_| {
                MatchError::HeaderName {
                    header: h.name.clone(),
                }
            })?;
        let value = h
            .value
            .as_ref()
            .map(|v| StringMatcher::compile(v, false))
            .transpose()?;
        Ok(HeaderCond {
            slot: slots.slot(&name),
            name,
            value,
            invert: h.invert,
        })
    }

    /// Present (and matching, if a value is required), negated when `invert`. A header
    /// sent several times is matched as its values joined with `,` (as Envoy does); only
    /// that case allocates. A value that is not UTF-8 never matches a value condition.
    fn holds(&self, probe: &mut Probe<'_, '_>) -> bool {
        let seen = probe.header(self.slot, &self.name);
        let positive = match (seen, &self.value) {
            (Seen::Unknown | Seen::Absent, _) => false,
            (_, None) => true,
            (Seen::One(v), Some(m)) => v.is_some_and(|v| m.matches(v)),
            (Seen::Many, Some(m)) => probe
                .req
                .headers
                .get_all(&self.name)
                .iter()
                .map(|v| std::str::from_utf8(v.as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .is_ok_and(|parts| m.matches(&parts.join(","))),
        };
        positive != self.invert
    }
}

/// A compiled [`QueryMatch`]: the first occurrence of the parameter, undecoded, must
/// match.
#[derive(Debug, Clone)]
struct QueryCond {
    name: Box<str>,
    value: StringMatcher,
}

impl QueryCond {
    fn compile(q: &QueryMatch) -> Result<Self, MatchError> {
        Ok(QueryCond {
            name: q.name.as_str().into(),
            value: StringMatcher::compile(&q.value, false)?,
        })
    }

    fn holds(&self, req: &RequestView<'_>) -> bool {
        req.query_param(&self.name)
            .is_some_and(|v| self.value.matches(v))
    }
}

/// A compiled [`HttpMatch`]: all set conditions must hold.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMatch {
    guard: PathGuard,
    gateways: Box<[Box<str>]>,
    port: Option<u16>,
    method: Option<StringMatcher>,
    scheme: Option<StringMatcher>,
    authority: Option<StringMatcher>,
    uri: Option<StringMatcher>,
    headers: Box<[HeaderCond]>,
    query: Box<[QueryCond]>,
    source_namespace: Option<Box<str>>,
    source_labels: Labels,
}

impl CompiledMatch {
    /// Compiles every condition of `m`; `ignore_uri_case` applies to `uri` only.
    pub(crate) fn compile(m: &HttpMatch, slots: &mut HeaderSlots) -> Result<Self, MatchError> {
        let string = |s: &Option<StringMatch>, ignore_case| {
            s.as_ref()
                .map(|s| StringMatcher::compile(s, ignore_case))
                .transpose()
        };
        let uri = string(&m.uri, m.ignore_uri_case)?;
        let guard = PathGuard::new(uri.as_ref());
        // A short literal prefix is checked in full by the guard; no need to compare again.
        let uri = uri.filter(|u| !u.decided_by_prefix());
        Ok(CompiledMatch {
            guard,
            gateways: m.gateways.iter().map(|g| g.as_str().into()).collect(),
            port: m.port,
            method: string(&m.method, false)?,
            scheme: string(&m.scheme, false)?,
            authority: string(&m.authority, false)?,
            uri,
            headers: m
                .headers
                .iter()
                .map(|h| HeaderCond::compile(h, slots))
                .collect::<Result<_, _>>()?,
            query: m
                .query_params
                .iter()
                .map(QueryCond::compile)
                .collect::<Result<_, _>>()?,
            source_namespace: m.source_namespace.as_deref().map(Into::into),
            source_labels: m.source_labels.clone(),
        })
    }

    /// The necessary condition on the path this match carries.
    pub(crate) fn guard(&self) -> &PathGuard {
        &self.guard
    }

    /// A cached header (its slot) this match requires to be present: the first header
    /// condition that is not inverted (with or without a value to match).
    pub(crate) fn required_header(&self) -> Option<usize> {
        self.headers
            .iter()
            .find(|h| !h.invert && h.slot.is_some())
            .and_then(|h| h.slot)
    }

    /// Whether every condition holds; cheap integer and literal checks run before
    /// regexes and header lookups so non-matching rules are rejected early.
    pub(crate) fn holds(&self, probe: &mut Probe<'_, '_>) -> bool {
        self.guard.admits(probe.path_head) && self.holds_past_guard(probe)
    }

    /// [`Self::holds`] for a request whose path [`Self::guard`] has already admitted.
    pub(crate) fn holds_past_guard(&self, probe: &mut Probe<'_, '_>) -> bool {
        let req = probe.req;
        let string = |m: &Option<StringMatcher>, v: &str| m.as_ref().is_none_or(|m| m.matches(v));
        (self.gateways.is_empty() || self.gateways.iter().any(|g| **g == *req.gateway))
            && self.port.is_none_or(|p| req.port == Some(p))
            && string(&self.method, req.method.as_str())
            && string(&self.scheme, req.scheme)
            && string(&self.authority, req.authority)
            && string(&self.uri, req.path)
            && self
                .source_namespace
                .as_deref()
                .is_none_or(|ns| req.source_namespace == Some(ns))
            && (self.source_labels.is_empty()
                || selector_matches(&self.source_labels, req.source_labels))
            && self.headers.iter().all(|h| h.holds(probe))
            && self.query.iter().all(|q| q.holds(req))
    }
}
