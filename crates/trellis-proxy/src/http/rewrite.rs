//! Request rewrites before forwarding (`HttpRoute::rewrite`): the path (whole, the
//! matched prefix, or by regex substitution) and the authority sent upstream. The query
//! string is always kept.
//!
//! [`RewriteRuntime::compile`] compiles the regex and parses its substitution template
//! once per configuration; per request a rewrite builds the new path string, and only
//! routes that rewrite pay for it.

use std::borrow::Cow;

use ::http::HeaderValue;
use ::http::uri::PathAndQuery;
use regex::{Captures, Regex, RegexBuilder, Replacer};
use trellis_model::{HttpMatch, PathRewrite, Rewrite, StringMatch};

use crate::route::REGEX_SIZE_LIMIT;

/// Why a route's rewrite cannot be applied; the configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The regex is invalid RE2 syntax or compiles larger than [`REGEX_SIZE_LIMIT`].
    #[error("invalid rewrite regex {pattern:?}: {source}")]
    Regex {
        /// The pattern as configured.
        pattern: String,
        /// What the regex engine reported.
        #[source]
        source: regex::Error,
    },
    /// The substitution names a capture group the regex does not have.
    #[error("rewrite substitution {0:?} refers to a group the regex does not have")]
    Group(String),
    /// The authority is not a valid header value.
    #[error("rewrite authority {0:?} is not a valid Host value")]
    Authority(String),
}

/// A route's rewrite, prepared for the request path.
#[derive(Debug, Clone)]
pub struct RewriteRuntime {
    path: Option<PathRewriter>,
    /// The `Host`/`:authority` value sent upstream instead of the client's.
    authority: Option<HeaderValue>,
}

#[derive(Debug, Clone)]
enum PathRewriter {
    Full(Box<str>),
    /// The replacement, and the route's URI conditions it replaces the match of.
    Prefix(Box<str>, Box<[StringMatch]>),
    Regex(Box<Regex>, Template),
}

/// A parsed substitution: literal text and capture-group references.
#[derive(Debug, Clone)]
struct Template(Box<[Piece]>);

#[derive(Debug, Clone)]
enum Piece {
    Text(Box<str>),
    Group(usize),
}

impl RewriteRuntime {
    /// Prepares `rewrite`: compiles a regex path rewrite (unanchored; every
    /// non-overlapping match in the path is replaced, as RE2's `GlobalReplace` in Envoy)
    /// and validates the authority. `matches` are the route's conditions: a prefix
    /// rewrite replaces what their URI condition matched.
    pub fn compile(
        rewrite: &Rewrite,
        matches: &[HttpMatch],
    ) -> Result<RewriteRuntime, RewriteError> {
        let path = match &rewrite.path {
            None => None,
            Some(PathRewrite::ReplaceFull(p)) => Some(PathRewriter::Full(p.as_str().into())),
            Some(PathRewrite::ReplacePrefix(p)) => {
                let uris = matches.iter().filter_map(|m| m.uri.clone()).collect();
                Some(PathRewriter::Prefix(p.as_str().into(), uris))
            }
            Some(PathRewrite::Regex {
                pattern,
                substitution,
            }) => {
                let re = RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|source| RewriteError::Regex {
                        pattern: pattern.clone(),
                        source,
                    })?;
                let template = Template::parse(substitution, &re)
                    .ok_or_else(|| RewriteError::Group(substitution.clone()))?;
                Some(PathRewriter::Regex(Box::new(re), template))
            }
        };
        let authority = rewrite
            .authority
            .as_deref()
            .map(|a| HeaderValue::from_str(a).map_err(|_| RewriteError::Authority(a.to_owned())))
            .transpose()?;
        Ok(RewriteRuntime { path, authority })
    }

    /// The authority to send upstream, when the route rewrites it.
    pub fn authority(&self) -> Option<&HeaderValue> {
        self.authority.as_ref()
    }

    /// The rewritten path and query for a request to `path`/`query`,
    /// or `None` when the path is not rewritten (or the result is not a valid URI path,
    /// which is logged and leaves the path unchanged). A result that does not start with
    /// `/` gets one, so the request line stays valid.
    pub fn path(&self, path: &str, query: Option<&str>) -> Option<PathAndQuery> {
        let new: Cow<'_, str> = match self.path.as_ref()? {
            PathRewriter::Full(p) => Cow::Borrowed(p),
            PathRewriter::Prefix(p, uris) => Cow::Owned(replace_prefix(uris.iter(), path, p)),
            PathRewriter::Regex(re, template) => re.replace_all(path, template),
        };
        let slash = if new.starts_with('/') { "" } else { "/" };
        let mut out =
            String::with_capacity(slash.len() + new.len() + query.map_or(0, |q| q.len() + 1));
        out.push_str(slash);
        out.push_str(&new);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        match PathAndQuery::try_from(out) {
            Ok(pq) => Some(pq),
            Err(e) => {
                tracing::debug!(error = %e, "rewritten path is not a valid URI path; not rewritten");
                None
            }
        }
    }
}

/// Replaces the part of `path` matched by the route's prefix (or exact) URI conditions
/// `uris` with `replacement`; the first such condition covering `path` decides. Shared by
/// rewrites and redirects, which Envoy defines the same way (`prefix_rewrite`).
pub(super) fn replace_prefix<'a>(
    uris: impl Iterator<Item = &'a StringMatch>,
    path: &str,
    replacement: &str,
) -> String {
    for uri in uris {
        match uri {
            StringMatch::Exact(e) if e == path => return replacement.to_owned(),
            StringMatch::Prefix(p) | StringMatch::PathPrefix(p) if path.starts_with(p.as_str()) => {
                let p = if matches!(uri, StringMatch::PathPrefix(_)) {
                    p.trim_end_matches('/')
                } else {
                    p.as_str()
                };
                let rest = &path[p.len()..];
                if replacement.ends_with('/') && rest.starts_with('/') {
                    return format!("{replacement}{}", &rest[1..]);
                }
                return format!("{replacement}{rest}");
            }
            _ => {}
        }
    }
    path.to_owned()
}

impl Template {
    /// Parses RE2-style `\N` references (Istio's `uriRegexRewrite`), plus the regex
    /// crate's `$N`, `${N}` and `${name}`; `\\` and `$$` are literal. `None` when a
    /// reference names a group `re` does not have.
    fn parse(text: &str, re: &Regex) -> Option<Template> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let group = match (c, chars.peek().map(|&(_, n)| n)) {
                ('\\', Some(d)) if d.is_ascii_digit() => {
                    chars.next();
                    Some(d as usize - '0' as usize)
                }
                ('\\', Some('\\')) | ('$', Some('$')) => {
                    chars.next();
                    literal.push(c);
                    None
                }
                ('$', Some('{')) => {
                    let rest = &text[i + 2..];
                    let end = rest.find('}')?;
                    let name = &rest[..end];
                    // `{`, the name, `}`.
                    for _ in 0..name.chars().count() + 2 {
                        chars.next();
                    }
                    Some(match name.parse::<usize>() {
                        Ok(n) => n,
                        Err(_) => re.capture_names().position(|g| g == Some(name))?,
                    })
                }
                ('$', Some(d)) if d.is_ascii_digit() => {
                    let mut n = 0usize;
                    while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                        n = n
                            .saturating_mul(10)
                            .saturating_add(d as usize - '0' as usize);
                        chars.next();
                    }
                    Some(n)
                }
                _ => {
                    literal.push(c);
                    None
                }
            };
            if let Some(g) = group {
                if g >= re.captures_len() {
                    return None;
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal).into()));
                }
                pieces.push(Piece::Group(g));
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.into()));
        }
        Some(Template(pieces.into_boxed_slice()))
    }
}

impl Replacer for &Template {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut String) {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => dst.push_str(t),
                Piece::Group(g) => dst.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trellis_model::HttpMatch;

    fn rewrite(prefix: &str, path: PathRewrite) -> RewriteRuntime {
        let matches = [HttpMatch {
            uri: Some(StringMatch::Prefix(prefix.into())),
            ..HttpMatch::default()
        }];
        let rw = Rewrite {
            path: Some(path),
            authority: None,
        };
        RewriteRuntime::compile(&rw, &matches).expect("compiles")
    }

    fn apply(rw: &RewriteRuntime, path: &str, query: Option<&str>) -> String {
        rw.path(path, query)
            .map(|p| p.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn prefix_and_full() {
        let rw = rewrite("/api/", PathRewrite::ReplacePrefix("/v2/".into()));
        assert_eq!(apply(&rw, "/api/items", Some("a=1")), "/v2/items?a=1");
        let rw = rewrite("/api/", PathRewrite::ReplacePrefix(String::new()));
        assert_eq!(apply(&rw, "/api/items", None), "/items");
        let rw = rewrite("/api/", PathRewrite::ReplaceFull("/health".into()));
        assert_eq!(apply(&rw, "/api/items", Some("x")), "/health?x");
    }

    #[test]
    fn regex_groups() {
        let re = |p: &str, s: &str| {
            rewrite(
                "/",
                PathRewrite::Regex {
                    pattern: p.into(),
                    substitution: s.into(),
                },
            )
        };
        let rw = re(r"^/service/([^/]+)(/.*)$", r"\2/instance/\1");
        assert_eq!(
            apply(&rw, "/service/foo/v1/api", Some("q=1")),
            "/v1/api/instance/foo?q=1"
        );
        let rw = re("^/(?P<name>[a-z]+)/(\\d+)$", "/${name}-$2");
        assert_eq!(apply(&rw, "/item/42", None), "/item-42");
        let rw = re("o", "0");
        assert_eq!(apply(&rw, "/foo/boo", None), "/f00/b00");
        let rw = re("^/strip", "");
        assert_eq!(apply(&rw, "/strip", None), "/");
    }

    #[test]
    fn invalid_settings_are_refused() {
        let bad_group = Rewrite {
            path: Some(PathRewrite::Regex {
                pattern: "^/(a)$".into(),
                substitution: r"\2".into(),
            }),
            authority: None,
        };
        assert!(matches!(
            RewriteRuntime::compile(&bad_group, &[]),
            Err(RewriteError::Group(_))
        ));
        let bad_regex = Rewrite {
            path: Some(PathRewrite::Regex {
                pattern: "(".into(),
                substitution: String::new(),
            }),
            authority: None,
        };
        assert!(matches!(
            RewriteRuntime::compile(&bad_regex, &[]),
            Err(RewriteError::Regex { .. })
        ));
        let bad_authority = Rewrite {
            path: None,
            authority: Some("a\nb".into()),
        };
        assert!(matches!(
            RewriteRuntime::compile(&bad_authority, &[]),
            Err(RewriteError::Authority(_))
        ));
    }
}
