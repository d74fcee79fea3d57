//! ServiceProfile conditions: request conditions become route match lists, response conditions
//! become status ranges.
//!
//! A request condition is a boolean formula over `pathRegex` and `method` (`all` = AND, `any` =
//! OR, fields set side by side = AND). The model's match list is an OR of ANDs, so the formula is
//! brought into that form. Two things cannot be: `not` (the model has no negated path or method
//! match), and an AND of two different path regexes (one `uri` per match). Two different methods
//! ANDed can never match, so that alternative is dropped.
//!
//! A response condition only tests the status, so it is exactly a set of status ranges:
//! `all` intersects, `any` unites and `not` complements, and everything is representable.

use crate::resources::linkerd::{RequestMatch, ResponseMatch, StatusRange};
use trellis_model::{HttpMatch, StringMatch};

/// Most alternatives one condition may expand into; nested `any` lists multiply.
const MAX_ALTERNATIVES: usize = 64;

/// Why a request condition cannot be carried: the path (relative to the condition) of the
/// offending clause and a sentence for the user.
#[derive(Debug, PartialEq)]
pub(super) struct Unrepresentable {
    pub path: String,
    pub why: String,
}

/// The OR-of-ANDs form of `m`, which sits at `path`. An empty result means the condition can
/// never match.
pub(super) fn request(m: &RequestMatch, path: &str) -> Result<Vec<HttpMatch>, Unrepresentable> {
    if m.not.is_some() {
        return Err(Unrepresentable {
            path: format!("{path}.not"),
            why: "`not` cannot be represented (routes match paths and methods positively)".into(),
        });
    }
    let mut acc = vec![HttpMatch::default()];
    if let Some(re) = m.path_regex.as_ref().filter(|r| !r.0.is_empty()) {
        let leaf = HttpMatch {
            uri: Some(StringMatch::Regex(re.0.clone())),
            ..HttpMatch::default()
        };
        acc = and(acc, vec![leaf], path)?;
    }
    if let Some(method) = m.method.as_ref().filter(|s| !s.is_empty()) {
        let leaf = HttpMatch {
            method: Some(StringMatch::Exact(method.clone())),
            ..HttpMatch::default()
        };
        acc = and(acc, vec![leaf], path)?;
    }
    for (i, sub) in m.all.iter().enumerate() {
        let sub_path = format!("{path}.all[{i}]");
        let alternatives = request(sub, &sub_path)?;
        acc = and(acc, alternatives, &sub_path)?;
    }
    if !m.any.is_empty() {
        let mut alternatives = Vec::new();
        for (i, sub) in m.any.iter().enumerate() {
            alternatives.extend(request(sub, &format!("{path}.any[{i}]"))?);
        }
        acc = and(acc, alternatives, &format!("{path}.any"))?;
    }
    Ok(acc)
}

/// `a AND b` for two OR-lists: every pair merged, pairs that can never match dropped.
fn and(
    a: Vec<HttpMatch>,
    b: Vec<HttpMatch>,
    path: &str,
) -> Result<Vec<HttpMatch>, Unrepresentable> {
    let mut out = Vec::new();
    for x in &a {
        for y in &b {
            if let Some(m) = merge(x, y, path)? {
                out.push(m);
            }
        }
    }
    if out.len() > MAX_ALTERNATIVES {
        return Err(Unrepresentable {
            path: path.to_owned(),
            why: format!("the condition expands into more than {MAX_ALTERNATIVES} alternatives"),
        });
    }
    Ok(out)
}

/// One match requiring both `x` and `y`; `None` when they require different methods.
fn merge(x: &HttpMatch, y: &HttpMatch, path: &str) -> Result<Option<HttpMatch>, Unrepresentable> {
    let uri = match (&x.uri, &y.uri) {
        (Some(p), Some(q)) if p != q => {
            return Err(Unrepresentable {
                path: path.to_owned(),
                why: format!(
                    "two path regexes must both match ({:?} and {:?}); a route matches one path pattern",
                    p.value(),
                    q.value()
                ),
            });
        }
        (p, q) => p.clone().or_else(|| q.clone()),
    };
    let method = match (&x.method, &y.method) {
        (Some(p), Some(q)) if p != q => return Ok(None),
        (p, q) => p.clone().or_else(|| q.clone()),
    };
    Ok(Some(HttpMatch {
        uri,
        method,
        ..HttpMatch::default()
    }))
}

/// Lowest and highest HTTP status the ranges work in.
const STATUS_MIN: u16 = 100;
const STATUS_MAX: u16 = 599;

/// A set of statuses as sorted, disjoint, non-adjacent inclusive ranges.
pub(super) type Ranges = Vec<(u16, u16)>;

/// The statuses a response condition matches.
pub(super) fn response(m: &ResponseMatch) -> Ranges {
    let mut acc: Ranges = vec![(STATUS_MIN, STATUS_MAX)];
    if let Some(s) = &m.status {
        acc = intersect(&acc, &status_range(s));
    }
    for sub in &m.all {
        acc = intersect(&acc, &response(sub));
    }
    if !m.any.is_empty() {
        let any = m
            .any
            .iter()
            .map(response)
            .fold(Vec::new(), |u, r| union(&u, &r));
        acc = intersect(&acc, &any);
    }
    if let Some(not) = &m.not {
        acc = intersect(&acc, &complement(&response(not)));
    }
    acc
}

/// A `status` clause; an unset or zero bound is open, as in Linkerd.
fn status_range(s: &StatusRange) -> Ranges {
    let bound = |v: Option<u32>, open: u16| {
        v.filter(|v| *v != 0)
            .map_or(open, |v| u16::try_from(v).unwrap_or(u16::MAX))
    };
    let lo = bound(s.min, STATUS_MIN).max(STATUS_MIN);
    let hi = bound(s.max, STATUS_MAX).min(STATUS_MAX);
    if lo <= hi { vec![(lo, hi)] } else { Vec::new() }
}

/// Statuses in both sets (`all`).
fn intersect(a: &Ranges, b: &Ranges) -> Ranges {
    let mut out = Vec::new();
    for &(a0, a1) in a {
        for &(b0, b1) in b {
            let (lo, hi) = (a0.max(b0), a1.min(b1));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    normalize(out)
}

/// Statuses in either set (`any`).
fn union(a: &Ranges, b: &Ranges) -> Ranges {
    normalize(a.iter().chain(b).copied().collect())
}

/// Statuses 100..=599 not in the set (`not`).
fn complement(a: &Ranges) -> Ranges {
    let mut out = Vec::new();
    let mut next = STATUS_MIN;
    for &(lo, hi) in a {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = next.max(hi.saturating_add(1));
    }
    if next <= STATUS_MAX {
        out.push((next, STATUS_MAX));
    }
    out
}

/// Sort and coalesce overlapping or adjacent ranges.
fn normalize(mut v: Ranges) -> Ranges {
    v.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::common::RegexString;

    fn path(re: &str) -> RequestMatch {
        RequestMatch {
            path_regex: Some(RegexString(re.into())),
            ..RequestMatch::default()
        }
    }
    fn method(m: &str) -> RequestMatch {
        RequestMatch {
            method: Some(m.into()),
            ..RequestMatch::default()
        }
    }
    fn hm(p: Option<&str>, m: Option<&str>) -> HttpMatch {
        HttpMatch {
            uri: p.map(|p| StringMatch::Regex(p.into())),
            method: m.map(|m| StringMatch::Exact(m.into())),
            ..HttpMatch::default()
        }
    }

    #[test]
    fn fields_side_by_side_and_all_are_and() -> Result<(), Unrepresentable> {
        let both = RequestMatch {
            method: Some("GET".into()),
            ..path("/books/[^/]*")
        };
        assert_eq!(
            request(&both, "c")?,
            vec![hm(Some("/books/[^/]*"), Some("GET"))]
        );
        let all = RequestMatch {
            all: vec![method("GET"), path("/x")],
            ..RequestMatch::default()
        };
        assert_eq!(request(&all, "c")?, vec![hm(Some("/x"), Some("GET"))]);
        let same = RequestMatch {
            all: vec![method("GET"), method("GET")],
            ..RequestMatch::default()
        };
        assert_eq!(request(&same, "c")?, vec![hm(None, Some("GET"))]);
        Ok(())
    }

    #[test]
    fn any_is_or_and_distributes() -> Result<(), Unrepresentable> {
        let any = RequestMatch {
            any: vec![method("GET"), method("HEAD")],
            ..path("/a")
        };
        assert_eq!(
            request(&any, "c")?,
            vec![hm(Some("/a"), Some("GET")), hm(Some("/a"), Some("HEAD"))]
        );
        // GET AND (POST OR /b): the GET-and-POST alternative can never match and is dropped.
        let mixed = RequestMatch {
            any: vec![method("POST"), path("/b")],
            ..method("GET")
        };
        assert_eq!(request(&mixed, "c")?, vec![hm(Some("/b"), Some("GET"))]);
        let never = RequestMatch {
            all: vec![method("GET"), method("POST")],
            ..RequestMatch::default()
        };
        assert_eq!(request(&never, "c")?, Vec::<HttpMatch>::new());
        Ok(())
    }

    #[test]
    fn unrepresentable() {
        let not = RequestMatch {
            not: Some(Box::new(method("GET"))),
            ..RequestMatch::default()
        };
        assert_eq!(
            request(&not, "spec.routes[0].condition").map_err(|e| e.path),
            Err("spec.routes[0].condition.not".into())
        );
        let nested = RequestMatch {
            all: vec![RequestMatch {
                not: Some(Box::new(path("/a"))),
                ..RequestMatch::default()
            }],
            ..RequestMatch::default()
        };
        assert_eq!(
            request(&nested, "c").map_err(|e| e.path),
            Err("c.all[0].not".into())
        );
        let two = RequestMatch {
            all: vec![path("/a"), path("/b")],
            ..RequestMatch::default()
        };
        let err = request(&two, "c").err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.path == "c.all[1]" && e.why.contains("two path regexes")),
            "{err:?}"
        );
        let wide = RequestMatch {
            all: (0..4)
                .map(|i| RequestMatch {
                    any: (0..4).map(|j| path(&format!("/{i}{j}"))).collect(),
                    ..RequestMatch::default()
                })
                .collect(),
            ..RequestMatch::default()
        };
        assert!(request(&wide, "c").is_err());
    }

    fn status(min: Option<u32>, max: Option<u32>) -> ResponseMatch {
        ResponseMatch {
            status: Some(StatusRange { min, max }),
            ..ResponseMatch::default()
        }
    }

    #[test]
    fn response_ranges() {
        assert_eq!(response(&status(Some(500), Some(599))), vec![(500, 599)]);
        assert_eq!(response(&status(Some(500), None)), vec![(500, 599)]);
        assert_eq!(response(&status(Some(0), Some(199))), vec![(100, 199)]);
        assert_eq!(
            response(&status(Some(300), Some(200))),
            Vec::<(u16, u16)>::new()
        );
        let not_2xx = ResponseMatch {
            not: Some(Box::new(status(Some(200), Some(299)))),
            ..ResponseMatch::default()
        };
        assert_eq!(response(&not_2xx), vec![(100, 199), (300, 599)]);
        let any = ResponseMatch {
            any: vec![
                status(Some(500), Some(599)),
                status(Some(429), Some(429)),
                status(Some(400), Some(430)),
            ],
            ..ResponseMatch::default()
        };
        assert_eq!(response(&any), vec![(400, 430), (500, 599)]);
        let all = ResponseMatch {
            all: vec![status(Some(400), Some(599)), not_2xx.clone()],
            not: Some(Box::new(status(Some(404), Some(404)))),
            ..ResponseMatch::default()
        };
        assert_eq!(response(&all), vec![(400, 403), (405, 599)]);
        assert_eq!(complement(&vec![(100, 599)]), Vec::<(u16, u16)>::new());
        assert_eq!(response(&ResponseMatch::default()), vec![(100, 599)]);
    }
}
