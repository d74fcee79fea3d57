//! Table-driven tests of the request-line conditions (uri, method, scheme, authority,
//! port); `request_tests` covers headers, query and caller. One condition kind per table.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use trellis_model::{HeaderMatch, HttpMatch, HttpRoute, Labels, StringMatch};

use super::{RequestView, RouteTable};
use StringMatch::{Exact, PathPrefix, Prefix, Regex};

/// An owned request to build views from in tests.
pub(super) struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub labels: Labels,
    pub namespace: Option<String>,
    pub gateway: String,
}

impl Req {
    pub fn get(uri: &str) -> Req {
        Req {
            method: Method::GET,
            uri: uri.parse().expect("test uri is valid"),
            headers: HeaderMap::new(),
            labels: Labels::new(),
            namespace: None,
            gateway: super::MESH_GATEWAY.to_owned(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name is valid"),
            HeaderValue::from_str(value).expect("test header value is valid"),
        );
        self
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView::new(&self.method, &self.uri, &self.headers)
            .with_source(&self.labels, self.namespace.as_deref())
            .with_gateway(&self.gateway)
    }
}

/// Whether a one-route table with the single match `m` routes `req`.
pub(super) fn holds(m: &HttpMatch, req: &Req) -> bool {
    let route = HttpRoute {
        matches: vec![m.clone()],
        ..HttpRoute::default()
    };
    let table = RouteTable::compile(&[route]).expect("test match compiles");
    table.find(&req.view()).is_some()
}

fn uri(m: StringMatch, ignore_uri_case: bool) -> HttpMatch {
    HttpMatch {
        uri: Some(m),
        ignore_uri_case,
        ..HttpMatch::default()
    }
}

pub(super) fn check(cases: &[(HttpMatch, Req, bool)]) {
    for (i, (m, req, want)) in cases.iter().enumerate() {
        assert_eq!(holds(m, req), *want, "case {i}: {m:?} vs {}", req.uri);
    }
}

#[test]
fn uri_kinds() {
    let s = |v: &str| v.to_owned();
    check(&[
        (uri(Exact(s("/api")), false), Req::get("/api"), true),
        (uri(Exact(s("/api")), false), Req::get("/api?x=1"), true),
        (uri(Exact(s("/api")), false), Req::get("/api/"), false),
        (uri(Exact(s("/api")), false), Req::get("/API"), false),
        (uri(Exact(s("/api")), true), Req::get("/API"), true),
        (uri(Exact(s("/API")), true), Req::get("/api"), true),
        (uri(Prefix(s("/api")), false), Req::get("/apis"), true),
        (uri(Prefix(s("/api")), false), Req::get("/api/v1"), true),
        (uri(Prefix(s("/api")), false), Req::get("/ap"), false),
        (uri(Prefix(s("/Api")), true), Req::get("/aPIs"), true),
        (uri(PathPrefix(s("/api")), false), Req::get("/api"), true),
        (uri(PathPrefix(s("/api")), false), Req::get("/api/"), true),
        (uri(PathPrefix(s("/api")), false), Req::get("/api/v1"), true),
        (uri(PathPrefix(s("/api")), false), Req::get("/apis"), false),
        (uri(PathPrefix(s("/api/")), false), Req::get("/api"), true),
        (uri(PathPrefix(s("/api/")), false), Req::get("/apis"), false),
        (uri(PathPrefix(s("/API")), true), Req::get("/api/v1"), true),
        (uri(PathPrefix(s("/")), false), Req::get("/anything"), true),
        (
            uri(Regex(s("/api/v[0-9]+")), false),
            Req::get("/api/v12"),
            true,
        ),
        // Anchored at both ends: a substring match is not enough.
        (
            uri(Regex(s("/api/v[0-9]+")), false),
            Req::get("/api/v1/x"),
            false,
        ),
        (uri(Regex(s("v[0-9]+")), false), Req::get("/api/v1"), false),
        // Alternation stays inside the anchors.
        (uri(Regex(s("/a|/b")), false), Req::get("/b"), true),
        (uri(Regex(s("/a|/b")), false), Req::get("/bc"), false),
        (uri(Regex(s("/a|/ab")), false), Req::get("/ab"), true),
        (
            uri(Regex(s("/users/[a-z]+")), false),
            Req::get("/USERS/BOB"),
            false,
        ),
        (
            uri(Regex(s("/users/[a-z]+")), true),
            Req::get("/USERS/BOB"),
            true,
        ),
    ]);
}

/// Non-ASCII values (the HTTP layer may hand over decoded paths) and a Unicode word
/// boundary, which the DFA cannot evaluate on non-ASCII input.
#[test]
fn unicode_values() {
    let cases = [
        (Regex(r"/\w+\b.*".into()), "/été/x", true),
        (Regex(r"/caf\w\b".into()), "/café", true),
        (Regex(r"/caf\w\b".into()), "/cafés", false),
        (Regex("/ÉTÉ".into()), "/été", true),
        (Exact("/ÉTÉ".into()), "/été", false),
        (Prefix("/é".into()), "/été", true),
    ];
    let req = Req::get("/");
    for (m, path, want) in cases {
        let table = RouteTable::compile(&[HttpRoute {
            matches: vec![uri(m.clone(), true)],
            ..HttpRoute::default()
        }])
        .expect("compiles");
        let mut view = req.view();
        view.path = path;
        assert_eq!(table.find(&view).is_some(), want, "{m:?} vs {path:?}");
    }
}

#[test]
fn method_scheme_authority_port() {
    let s = |v: &str| Some(Exact(v.to_owned()));
    let m = |f: fn(&mut HttpMatch)| {
        let mut m = HttpMatch::default();
        f(&mut m);
        m
    };
    let mut post = Req::get("/");
    post.method = Method::POST;
    check(&[
        (
            HttpMatch {
                method: s("GET"),
                ..HttpMatch::default()
            },
            Req::get("/"),
            true,
        ),
        (
            HttpMatch {
                method: s("GET"),
                ..HttpMatch::default()
            },
            post,
            false,
        ),
        (
            HttpMatch {
                method: Some(Regex("GET|HEAD".into())),
                ..HttpMatch::default()
            },
            Req::get("/"),
            true,
        ),
        (
            HttpMatch {
                scheme: s("https"),
                ..HttpMatch::default()
            },
            Req::get("https://shop.example/"),
            true,
        ),
        (
            HttpMatch {
                scheme: s("https"),
                ..HttpMatch::default()
            },
            Req::get("/"),
            false,
        ),
        (
            HttpMatch {
                authority: s("reviews.default.svc.cluster.local"),
                ..HttpMatch::default()
            },
            Req::get("/").header("host", "reviews.default.svc.cluster.local:9080"),
            true,
        ),
        (
            HttpMatch {
                authority: Some(Prefix("reviews.".into())),
                ..HttpMatch::default()
            },
            Req::get("http://reviews.default/x"),
            true,
        ),
        (
            HttpMatch {
                authority: s("reviews"),
                ..HttpMatch::default()
            },
            Req::get("/").header("host", "ratings"),
            false,
        ),
        (
            m(|m| m.port = Some(9080)),
            Req::get("/").header("host", "reviews:9080"),
            true,
        ),
        (
            m(|m| m.port = Some(9080)),
            Req::get("/").header("host", "reviews:9081"),
            false,
        ),
        // No port in the authority: the scheme's default.
        (
            m(|m| m.port = Some(80)),
            Req::get("/").header("host", "reviews"),
            true,
        ),
        (
            m(|m| m.port = Some(443)),
            Req::get("https://reviews/"),
            true,
        ),
    ]);
}

#[test]
fn all_conditions_of_one_match_must_hold() {
    let m = HttpMatch {
        uri: Some(PathPrefix("/api".into())),
        method: Some(Exact("GET".into())),
        headers: vec![HeaderMatch {
            name: "x-user".into(),
            value: None,
            invert: false,
        }],
        ..HttpMatch::default()
    };
    check(&[
        (m.clone(), Req::get("/api/x").header("x-user", "a"), true),
        (m.clone(), Req::get("/api/x"), false),
        (m.clone(), Req::get("/web").header("x-user", "a"), false),
        (HttpMatch::default(), Req::get("/anything"), true),
    ]);
}
