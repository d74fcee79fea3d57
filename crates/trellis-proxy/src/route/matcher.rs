//! Compiled string conditions ([`StringMatch`]).
//!
//! Everything that can be decided once is decided at config time: regexes are compiled
//! to DFAs and anchored, their literal prefixes extracted, ignore-case patterns lowercased
//! and `PathPrefix` trailing slashes trimmed, so evaluating a string condition per request
//! is a comparison or one DFA run, with no allocation and no lock.

use regex::{Regex, RegexBuilder};
use regex_automata::dfa::{Automaton, StartKind, dense, dense::DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::Hir;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use trellis_model::StringMatch;

/// Upper bound on a compiled regex's size, so one route cannot make the proxy allocate
/// without limit; generous for any realistic route pattern.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why one condition failed to compile; [`super::RouteError`] adds which route.
#[derive(Debug)]
pub(crate) enum MatchError {
    /// A regex is invalid or over [`REGEX_SIZE_LIMIT`].
    Regex {
        pattern: String,
        source: regex::Error,
    },
    /// A header name is not a valid HTTP header name.
    HeaderName { header: String },
}

/// A compiled [`StringMatch`].
#[derive(Debug, Clone)]
pub(crate) struct StringMatcher {
    kind: Kind,
    /// Literal patterns are stored lowercase and compared ASCII case-insensitively.
    ignore_case: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact(Box<str>),
    Prefix(Box<str>),
    /// The prefix with trailing `/` already trimmed.
    PathPrefix(Box<str>),
    /// Boxed: a DFA is large, and keeping it out of line keeps a table's conditions
    /// packed in cache.
    Regex(Box<AnchoredRegex>),
}

impl StringMatcher {
    /// Compiles `m`. A regex is anchored to the whole value (`^(?:..)$`); with
    /// `ignore_case` it uses the regex engine's case-insensitive mode, which folds ASCII
    /// letters as the literal kinds do (and, being Unicode-aware, a few non-ASCII ones).
    pub(crate) fn compile(m: &StringMatch, ignore_case: bool) -> Result<Self, MatchError> {
        let literal = |s: &str| -> Box<str> {
            if ignore_case {
                s.to_ascii_lowercase().into()
            } else {
                s.into()
            }
        };
        let kind = match m {
            StringMatch::Exact(s) => Kind::Exact(literal(s)),
            StringMatch::Prefix(s) => Kind::Prefix(literal(s)),
            StringMatch::PathPrefix(s) => Kind::PathPrefix(literal(s.trim_end_matches('/'))),
            StringMatch::Regex(p) => Kind::Regex(Box::new(AnchoredRegex::compile(p, ignore_case)?)),
        };
        Ok(StringMatcher { kind, ignore_case })
    }

    /// Literal prefixes one of which every matching value starts with; empty when there
    /// is no such set (or case is ignored). Lets the table reject most routes from the
    /// first bytes of the path alone.
    pub(crate) fn required_prefixes(&self) -> Vec<&[u8]> {
        if self.ignore_case {
            return Vec::new();
        }
        match &self.kind {
            Kind::Exact(s) | Kind::Prefix(s) | Kind::PathPrefix(s) if !s.is_empty() => {
                vec![s.as_bytes()]
            }
            Kind::Regex(re) => re.prefixes.iter().map(|p| &p[..]).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether every value whose first eight bytes agree with [`Self::required_prefixes`]
    /// matches, so a [`super::condition::PathGuard`] that admitted the value has already
    /// decided it: a case-sensitive `Prefix` of one to eight bytes (without NUL, which
    /// the guard uses to pad short values).
    pub(crate) fn decided_by_prefix(&self) -> bool {
        matches!(&self.kind, Kind::Prefix(p)
            if !self.ignore_case && (1..=8).contains(&p.len()) && !p.contains('\0'))
    }

    /// Whether `value` matches.
    pub(crate) fn matches(&self, value: &str) -> bool {
        match &self.kind {
            Kind::Exact(s) => self.eq(value.as_bytes(), s.as_bytes()),
            Kind::Prefix(p) => self.starts_with(value, p),
            Kind::PathPrefix(p) => {
                self.starts_with(value, p)
                    && (value.len() == p.len() || value.as_bytes()[p.len()] == b'/')
            }
            Kind::Regex(re) => re.is_match(value),
        }
    }

    fn eq(&self, a: &[u8], b: &[u8]) -> bool {
        if self.ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            bytes_eq(a, b)
        }
    }

    fn starts_with(&self, value: &str, prefix: &str) -> bool {
        value
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| self.eq(head, prefix.as_bytes()))
    }
}

/// Byte equality that returns at the first differing word. Route patterns are short and
/// a table's patterns mostly differ from a request within the first few bytes, where a
/// library `memcmp` call costs more than the comparison itself.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    a8.by_ref()
        .zip(b8.by_ref())
        .all(|(x, y)| word(x) == word(y))
        && a8
            .remainder()
            .iter()
            .zip(b8.remainder())
            .all(|(x, y)| x == y)
}

/// An eight-byte chunk as a word (the chunks come from `chunks_exact(8)`).
#[inline]
fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().unwrap_or_default())
}

/// An anchored regex: a fully built DFA when one fits in [`DFA_SIZE_LIMIT`] (searching it
/// needs no mutable cache, hence no pool and no lock, and costs about a nanosecond per
/// byte), with the `regex` crate's engine for patterns whose DFA would be too large or
/// that a DFA cannot run (Unicode word boundaries on non-ASCII input).
#[derive(Debug, Clone)]
struct AnchoredRegex {
    /// Literal prefixes every match starts with (e.g. `/api/v` for `/api/v[0-9]+`), when
    /// the pattern has any: most values a route table sees are rejected by this check
    /// alone, before any automaton runs.
    prefixes: Box<[Box<[u8]>]>,
    dfa: Option<DFA<Vec<u32>>>,
    regex: Regex,
}

/// Upper bound on one route regex's DFA; typical route patterns need a few KiB.
const DFA_SIZE_LIMIT: usize = 256 << 10;

impl AnchoredRegex {
    /// Compiles `pattern` anchored at both ends. The bare pattern is compiled first: a
    /// pattern such as `a)|(b` would otherwise escape the wrapping group and lose its
    /// anchors.
    fn compile(pattern: &str, ignore_case: bool) -> Result<Self, MatchError> {
        let build = |p: &str| {
            RegexBuilder::new(p)
                .case_insensitive(ignore_case)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
        };
        let anchored = format!("^(?:{pattern})$");
        let regex = build(pattern)
            .and_then(|_| build(&anchored))
            .map_err(|source| MatchError::Regex {
                pattern: pattern.to_owned(),
                source,
            })?;
        let syntax_config = syntax::Config::new().case_insensitive(ignore_case);
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .syntax(syntax_config)
            .thompson(thompson::Config::new().nfa_size_limit(Some(REGEX_SIZE_LIMIT)))
            .build(&anchored);
        let prefixes = syntax::parse_with(&anchored, &syntax_config)
            .map(|hir| required_prefixes(&hir))
            .unwrap_or_default();
        if let Err(e) = &dfa {
            tracing::debug!(pattern, error = %e, "route regex runs without a DFA");
        }
        Ok(AnchoredRegex {
            prefixes,
            dfa: dfa.ok(),
            regex,
        })
    }

    fn is_match(&self, value: &str) -> bool {
        let value_bytes = value.as_bytes();
        if !self.prefixes.is_empty()
            && !self.prefixes.iter().any(|p| {
                value_bytes
                    .get(..p.len())
                    .is_some_and(|head| bytes_eq(head, p))
            })
        {
            return false;
        }
        let Some(dfa) = &self.dfa else {
            return self.regex.is_match(value);
        };
        let input = Input::new(value).anchored(Anchored::Yes).earliest(true);
        match dfa.try_search_fwd(&input) {
            Ok(found) => found.is_some(),
            // The DFAs built here have no quit bytes, so a search cannot give up; should
            // one ever, the general engine answers instead of guessing.
            Err(_) => self.regex.is_match(value),
        }
    }
}

/// Literal prefixes one of which every match of `hir` starts with, or none when the
/// pattern has no such finite set (e.g. it starts with `.*`) or it includes the empty
/// string, which would filter nothing. More than [`MAX_PREFIXES`] literals (a character
/// class such as `[0-9]` expands into ten) are reduced to their longest common prefix,
/// so the check stays one or a few short comparisons.
fn required_prefixes(hir: &Hir) -> Box<[Box<[u8]>]> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let Some(lits) = seq.literals() else {
        return Box::default();
    };
    let lits = lits.iter().map(|l| l.as_bytes());
    let Some(first) = lits.clone().next() else {
        return Box::default();
    };
    if lits.len() <= MAX_PREFIXES {
        if lits.clone().any(<[u8]>::is_empty) {
            return Box::default();
        }
        return lits.map(Into::into).collect();
    }
    let common = lits.fold(first.len(), |len, l| {
        first[..len]
            .iter()
            .zip(l)
            .take_while(|(a, b)| a == b)
            .count()
    });
    if common == 0 {
        return Box::default();
    }
    Box::new([first[..common].into()])
}

/// Most literal prefixes kept per regex; see [`required_prefixes`].
pub(crate) const MAX_PREFIXES: usize = 4;
