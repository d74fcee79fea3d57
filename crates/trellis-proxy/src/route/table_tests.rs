//! Tests of the table as a whole: order, catch-all, compile errors, weighted choice and
//! robustness against arbitrary requests.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use trellis_model::{
    Destination, HeaderMatch, HttpMatch, HttpRoute, QueryMatch, RouteAction, StringMatch,
    WeightedDestination,
};

use super::match_tests::Req;
use super::{RequestView, RouteError, RouteTable};

fn route(name: &str, matches: Vec<HttpMatch>) -> HttpRoute {
    HttpRoute {
        name: Some(name.to_owned()),
        matches,
        ..HttpRoute::default()
    }
}

fn prefix(p: &str) -> HttpMatch {
    HttpMatch {
        uri: Some(StringMatch::Prefix(p.to_owned())),
        ..HttpMatch::default()
    }
}

fn found(table: &RouteTable, req: &Req) -> Option<(usize, String)> {
    table
        .find(&req.view())
        .map(|(i, r)| (i, r.name.clone().unwrap_or_default()))
}

#[test]
fn first_match_wins_and_catch_all() {
    let header = HttpMatch {
        headers: vec![HeaderMatch {
            name: "end-user".into(),
            value: Some(StringMatch::Exact("jason".into())),
            invert: false,
        }],
        ..HttpMatch::default()
    };
    let table = RouteTable::compile(&[
        route("jason", vec![header]),
        route("api", vec![prefix("/api/v2"), prefix("/api/v1")]),
        route("api-broad", vec![prefix("/api")]),
        route("default", vec![]),
    ])
    .expect("routes compile");
    assert_eq!(table.len(), 4);
    let cases = [
        (Req::get("/api/v1").header("end-user", "jason"), 0, "jason"),
        (Req::get("/api/v1"), 1, "api"),
        (Req::get("/api/v2/x"), 1, "api"),
        (Req::get("/api/v3"), 2, "api-broad"),
        (Req::get("/"), 3, "default"),
    ];
    for (req, index, name) in cases {
        assert_eq!(
            found(&table, &req),
            Some((index, name.to_owned())),
            "{}",
            req.uri
        );
    }

    let no_default = RouteTable::compile(&[route("api", vec![prefix("/api")])]).expect("compiles");
    assert_eq!(found(&no_default, &Req::get("/web")), None);
    assert!(RouteTable::default().is_empty());
    assert_eq!(RouteTable::default().find(&Req::get("/").view()), None);
}

fn header(name: &str, value: Option<&str>, invert: bool) -> HttpMatch {
    HttpMatch {
        headers: vec![HeaderMatch {
            name: name.into(),
            value: value.map(|v| StringMatch::Exact(v.into())),
            invert,
        }],
        ..HttpMatch::default()
    }
}

/// The table skips a route whose one match needs a header the request lacks without
/// checking it in full; inverted conditions, routes with several matches and headers past
/// the cache's slots are never skipped that way.
#[test]
fn header_guards_skip_only_routes_that_cannot_match() {
    let mut routes = vec![
        route("needs-a", vec![header("x-a", Some("1"), false)]),
        route("without-b", vec![header("x-b", None, true)]),
        route("a-or-path", vec![header("x-a", None, false), prefix("/p")]),
    ];
    // Eight more names fill the header cache; the ninth has no slot.
    for i in 0..9 {
        let name = format!("x-fill-{i}");
        routes.push(route(&name, vec![header(&name, Some("on"), false)]));
    }
    routes.push(route("default", vec![]));
    let table = RouteTable::compile(&routes).expect("routes compile");
    let cases = [
        (
            Req::get("/").header("x-a", "1").header("x-b", "1"),
            "needs-a",
        ),
        (
            Req::get("/").header("x-a", "2").header("x-b", "1"),
            "a-or-path",
        ),
        (Req::get("/p").header("x-b", "1"), "a-or-path"),
        (Req::get("/").header("x-b", "1"), "default"),
        (Req::get("/"), "without-b"),
        (
            Req::get("/").header("x-b", "1").header("x-fill-3", "on"),
            "x-fill-3",
        ),
        (
            Req::get("/").header("x-b", "1").header("x-fill-8", "on"),
            "x-fill-8",
        ),
        (
            Req::get("/").header("x-b", "1").header("x-fill-8", "off"),
            "default",
        ),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let got = found(&table, &req).map(|(_, n)| n);
        assert_eq!(got.as_deref(), Some(want), "case {i}");
    }
}

/// A route with several matches is skipped only when the path starts with none of their
/// literals; with more literals than a guard holds it is always checked in full.
#[test]
fn routes_with_several_matches_are_found_by_any_of_their_paths() {
    let exact = |p: &str| HttpMatch {
        uri: Some(StringMatch::Exact(p.into())),
        ..HttpMatch::default()
    };
    let regex = |p: &str| HttpMatch {
        uri: Some(StringMatch::Regex(p.into())),
        ..HttpMatch::default()
    };
    let table = RouteTable::compile(&[
        route("three", vec![prefix("/a"), regex("/b[0-9]+"), exact("/c")]),
        route(
            "five",
            vec![
                prefix("/d"),
                prefix("/e"),
                prefix("/f"),
                prefix("/g"),
                prefix("/h"),
            ],
        ),
        route("default", vec![]),
    ])
    .expect("routes compile");
    let cases = [
        ("/a/x", "three"),
        ("/b12", "three"),
        ("/c", "three"),
        ("/c/", "default"),
        ("/bx", "default"),
        ("/d", "five"),
        ("/h/1", "five"),
        ("/i", "default"),
    ];
    for (path, want) in cases {
        let got = found(&table, &Req::get(path)).map(|(_, n)| n);
        assert_eq!(got.as_deref(), Some(want), "{path}");
    }
}

#[test]
fn invalid_regex_is_an_error_naming_the_route() {
    let bad = |m: HttpMatch| {
        RouteTable::compile(&[route("ok", vec![prefix("/")]), route("broken", vec![m])])
    };
    let uri = HttpMatch {
        uri: Some(StringMatch::Regex("/api/(v1".into())),
        ..HttpMatch::default()
    };
    match bad(uri) {
        Err(RouteError::InvalidRegex {
            index,
            name,
            pattern,
            ..
        }) => {
            assert_eq!(index, 1);
            assert_eq!(name.as_deref(), Some("broken"));
            assert_eq!(pattern, "/api/(v1");
        }
        other => panic!("expected InvalidRegex, got {other:?}"),
    }
    // Valid once wrapped, but not on its own: it would escape the anchors.
    let escaping = HttpMatch {
        query_params: vec![QueryMatch {
            name: "q".into(),
            value: StringMatch::Regex("a)|(b".into()),
        }],
        ..HttpMatch::default()
    };
    let err = bad(escaping).expect_err("escaping pattern is rejected");
    let text = err.to_string();
    assert!(
        text.contains("route 1 (broken)") && text.contains("a)|(b"),
        "{text}"
    );
    // Over the size limit.
    let huge = HttpMatch {
        method: Some(StringMatch::Regex("(\\w{100}){100}".into())),
        ..HttpMatch::default()
    };
    assert!(matches!(bad(huge), Err(RouteError::InvalidRegex { .. })));
    let header = HttpMatch {
        headers: vec![HeaderMatch {
            name: "bad header".into(),
            value: None,
            invert: false,
        }],
        ..HttpMatch::default()
    };
    assert!(matches!(
        bad(header),
        Err(RouteError::InvalidHeaderName { index: 1, .. })
    ));
}

fn weighted(weights: &[u32]) -> RouteTable {
    let destinations = weights
        .iter()
        .enumerate()
        .map(|(i, w)| WeightedDestination::new(Destination::new(format!("d{i}")), *w))
        .collect();
    let route = HttpRoute {
        action: RouteAction::Forward(destinations),
        ..HttpRoute::default()
    };
    RouteTable::compile(&[route]).expect("compiles")
}

/// Share of picks per destination for `randoms`.
fn shares(table: &RouteTable, n: usize, randoms: impl Iterator<Item = u32>) -> Vec<f64> {
    let mut counts = vec![0u32; n];
    let mut total = 0u32;
    for r in randoms {
        let d = table.pick_destination(0, r).expect("a destination");
        let i: usize = d.destination.host[1..].parse().expect("host is d<i>");
        counts[i] += 1;
        total += 1;
    }
    counts
        .iter()
        .map(|&c| f64::from(c) / f64::from(total))
        .collect()
}

fn evenly_spread(n: u64) -> impl Iterator<Item = u32> {
    (0..n).map(move |i| u32::try_from((i << 32) / n).expect("below 2^32"))
}

fn assert_close(got: &[f64], want: &[f64], tolerance: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tolerance, "got {got:?}, want {want:?}");
    }
}

#[test]
fn weighted_choice_follows_weights() {
    let canary = weighted(&[90, 10]);
    assert_close(
        &shares(&canary, 2, evenly_spread(10_000)),
        &[0.9, 0.1],
        0.01,
    );
    let three = weighted(&[1, 2, 7]);
    assert_close(
        &shares(&three, 3, evenly_spread(10_000)),
        &[0.1, 0.2, 0.7],
        0.01,
    );

    // The same with a real (seeded) random source.
    let mut rng = StdRng::seed_from_u64(7);
    let randoms = (0..10_000).map(|_| rng.next_u32());
    assert_close(&shares(&three, 3, randoms), &[0.1, 0.2, 0.7], 0.02);

    // Zero weights take nothing, extremes stay in range.
    let with_zero = weighted(&[0, 5, 0, 5, 0]);
    assert_close(
        &shares(&with_zero, 5, evenly_spread(10_000)),
        &[0.0, 0.5, 0.0, 0.5, 0.0],
        0.001,
    );
    let big = weighted(&[u32::MAX, u32::MAX, 1]);
    for r in [0, 1, u32::MAX / 2, u32::MAX] {
        assert!(big.pick_destination(0, r).is_some());
    }
    assert_eq!(
        big.pick_destination(0, u32::MAX)
            .map(|d| d.destination.host.as_str()),
        Some("d1")
    );
}

/// The table is shared by every worker without a lock.
#[test]
fn table_is_send_and_sync() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<RouteTable>();
}

#[test]
fn nothing_to_pick() {
    assert!(weighted(&[0, 0]).pick_destination(0, 12345).is_none());
    assert!(weighted(&[]).pick_destination(0, 0).is_none());
    assert!(weighted(&[1]).pick_destination(1, 0).is_none());
    let direct = HttpRoute {
        action: RouteAction::DirectResponse {
            status: 200,
            body: None,
        },
        ..HttpRoute::default()
    };
    let table = RouteTable::compile(&[direct]).expect("compiles");
    assert!(table.pick_destination(0, 0).is_none());
}

fn busy_table() -> RouteTable {
    let regex = |p: &str| Some(StringMatch::Regex(p.to_owned()));
    RouteTable::compile(&[
        route(
            "h",
            vec![HttpMatch {
                headers: vec![HeaderMatch {
                    name: "x-a".into(),
                    value: Some(StringMatch::Regex(".*[ä].*".into())),
                    invert: true,
                }],
                query_params: vec![QueryMatch {
                    name: "q".into(),
                    value: StringMatch::Prefix("é".into()),
                }],
                ..HttpMatch::default()
            }],
        ),
        route(
            "r",
            vec![HttpMatch {
                uri: regex("/(.*)/ü+"),
                method: regex("[A-Z]+"),
                ignore_uri_case: true,
                ..HttpMatch::default()
            }],
        ),
        route(
            "p",
            vec![HttpMatch {
                uri: Some(StringMatch::PathPrefix("/é/".into())),
                ignore_uri_case: true,
                port: Some(80),
                ..HttpMatch::default()
            }],
        ),
    ])
    .expect("compiles")
}

proptest! {
    #[test]
    fn find_never_panics(
        method in "[A-Za-z!#$%&'*+.^_`|~-]{1,12}",
        path in "\\PC*",
        query in proptest::option::of("\\PC*"),
        headers in proptest::collection::vec(("[a-zA-Z0-9-]{1,10}", proptest::collection::vec(any::<u8>(), 0..16)), 0..6),
        authority in "\\PC*",
    ) {
        let table = busy_table();
        let method = Method::from_bytes(method.as_bytes()).expect("token chars form a method");
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                map.append(n, v);
            }
        }
        let uri = Uri::default();
        let mut view = RequestView::new(&method, &uri, &map);
        view.path = &path;
        view.query = query.as_deref();
        view.authority = &authority;
        let _ = table.find(&view);
        let _ = table.pick_destination(0, 0);
    }
}

/// A uri condition from a small alphabet, so generated paths often match it.
fn uri_match() -> impl Strategy<Value = StringMatch> {
    let lit = "[/aAb]{0,10}";
    prop_oneof![
        lit.prop_map(StringMatch::Exact),
        lit.prop_map(StringMatch::Prefix),
        lit.prop_map(StringMatch::PathPrefix),
        (lit, lit).prop_map(|(a, b)| StringMatch::Regex(format!("{a}[ab]+{b}"))),
        (lit, lit).prop_map(|(a, b)| StringMatch::Regex(format!("{a}|{b}/.*"))),
        (lit, "[ab]").prop_map(|(a, c)| StringMatch::Regex(format!("(?:{a})?{c}[0-9]*"))),
    ]
}

proptest! {
    /// The table (with its path guards, literal prefilters and DFAs) agrees with the
    /// model's own evaluation of literal kinds and with the `regex` crate on regexes, for
    /// routes of one match and of several (whose path guards are merged).
    #[test]
    fn uri_matching_agrees_with_reference(
        ms in prop::collection::vec(uri_match(), 1..4),
        ignore_case in any::<bool>(),
        path in "[/aAb0-9]{0,14}",
    ) {
        let want = ms.iter().any(|m| match m {
            StringMatch::Regex(p) => regex::RegexBuilder::new(&format!("^(?:{p})$"))
                .case_insensitive(ignore_case)
                .build()
                .expect("generated regex is valid")
                .is_match(&path),
            other => other.matches(&path, ignore_case).expect("literal kind"),
        });
        let table = RouteTable::compile(&[HttpRoute {
            matches: ms
                .into_iter()
                .map(|m| HttpMatch {
                    uri: Some(m),
                    ignore_uri_case: ignore_case,
                    ..HttpMatch::default()
                })
                .collect(),
            ..HttpRoute::default()
        }])
        .expect("compiles");
        let req = Req::get("/");
        let mut view = req.view();
        view.path = &path;
        prop_assert_eq!(table.find(&view).is_some(), want);
    }
}

/// One generated match: a uri condition (or none) and up to two header conditions on a
/// few names — ten, more than the header cache's slots — some inverted, some without a
/// value.
fn generated_match() -> impl Strategy<Value = HttpMatch> {
    let header = ("x-[0-9]", proptest::option::of("[ab]"), any::<bool>()).prop_map(
        |(name, value, invert)| HeaderMatch {
            name,
            value: value.map(StringMatch::Exact),
            invert,
        },
    );
    (
        proptest::option::of(uri_match()),
        prop::collection::vec(header, 0..3),
        any::<bool>(),
    )
        .prop_map(|(uri, headers, ignore_uri_case)| HttpMatch {
            uri,
            headers,
            ignore_uri_case,
            ..HttpMatch::default()
        })
}

proptest! {
    /// The indexed lookup (literals by length, routes skipped for an absent header)
    /// finds the same route as checking every route in full, in order, on tables of
    /// up to forty routes of zero to three matches each.
    #[test]
    fn indexed_lookup_agrees_with_checking_every_route(
        routes in prop::collection::vec(prop::collection::vec(generated_match(), 0..4), 1..40),
        paths in prop::collection::vec("[/aAb0-9]{0,14}", 1..8),
        headers in prop::collection::vec(("x-[0-9]", "[ab]"), 0..4),
    ) {
        let routes: Vec<HttpRoute> = routes
            .into_iter()
            .map(|matches| HttpRoute { matches, ..HttpRoute::default() })
            .collect();
        let table = RouteTable::compile(&routes).expect("compiles");
        let mut req = Req::get("/");
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        for path in &paths {
            let mut view = req.view();
            view.path = path;
            prop_assert_eq!(table.find(&view).map(|(i, _)| i), table.find_linear(&view));
        }
    }
}
