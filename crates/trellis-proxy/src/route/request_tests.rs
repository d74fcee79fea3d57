//! Table-driven tests of the header, query-parameter, caller and gateway conditions.

use trellis_model::{HeaderMatch, HttpMatch, HttpRoute, Labels, QueryMatch, StringMatch};

use super::RouteTable;
use super::match_tests::{Req, check};
use StringMatch::{Exact, Prefix, Regex};

fn header(name: &str, value: Option<StringMatch>, invert: bool) -> HttpMatch {
    HttpMatch {
        headers: vec![HeaderMatch {
            name: name.to_owned(),
            value,
            invert,
        }],
        ..HttpMatch::default()
    }
}

#[test]
fn headers() {
    let exact = |v: &str| Some(Exact(v.to_owned()));
    check(&[
        (
            header("end-user", exact("jason"), false),
            Req::get("/").header("end-user", "jason"),
            true,
        ),
        // Names compare case-insensitively, values case-sensitively.
        (
            header("End-User", exact("jason"), false),
            Req::get("/").header("end-user", "jason"),
            true,
        ),
        (
            header("end-user", exact("jason"), false),
            Req::get("/").header("end-user", "Jason"),
            false,
        ),
        (
            header("end-user", exact("jason"), false),
            Req::get("/"),
            false,
        ),
        (
            header("x-canary", None, false),
            Req::get("/").header("x-canary", ""),
            true,
        ),
        (header("x-canary", None, false), Req::get("/"), false),
        (
            header("x-canary", Some(Regex("v[12]".into())), false),
            Req::get("/").header("x-canary", "v2"),
            true,
        ),
        (
            header("x-canary", Some(Regex("v[12]".into())), false),
            Req::get("/").header("x-canary", "v22"),
            false,
        ),
        (
            header("x-canary", Some(Prefix("be".into())), false),
            Req::get("/").header("x-canary", "beta"),
            true,
        ),
        // Inverted presence: the header must be absent.
        (header("x-debug", None, true), Req::get("/"), true),
        (
            header("x-debug", None, true),
            Req::get("/").header("x-debug", "1"),
            false,
        ),
        // Inverted value: absent or not matching.
        (
            header("end-user", exact("jason"), true),
            Req::get("/"),
            true,
        ),
        (
            header("end-user", exact("jason"), true),
            Req::get("/").header("end-user", "bob"),
            true,
        ),
        (
            header("end-user", exact("jason"), true),
            Req::get("/").header("end-user", "jason"),
            false,
        ),
        // A repeated header is matched as its values joined with `,`.
        (
            header("x-tags", exact("a,b"), false),
            Req::get("/").header("x-tags", "a").header("x-tags", "b"),
            true,
        ),
        (
            header("x-tags", exact("a"), false),
            Req::get("/").header("x-tags", "a").header("x-tags", "b"),
            false,
        ),
    ]);
}

#[test]
fn query_params() {
    let q = |name: &str, value: StringMatch| HttpMatch {
        query_params: vec![QueryMatch {
            name: name.to_owned(),
            value,
        }],
        ..HttpMatch::default()
    };
    check(&[
        (
            q("version", Exact("v2".into())),
            Req::get("/p?version=v2"),
            true,
        ),
        (
            q("version", Exact("v2".into())),
            Req::get("/p?a=1&version=v2&b"),
            true,
        ),
        (
            q("version", Exact("v2".into())),
            Req::get("/p?version=v3"),
            false,
        ),
        (
            q("version", Exact("v2".into())),
            Req::get("/p?xversion=v2"),
            false,
        ),
        (q("version", Exact("v2".into())), Req::get("/p"), false),
        // The first occurrence decides, as in Envoy.
        (
            q("version", Exact("v2".into())),
            Req::get("/p?version=v1&version=v2"),
            false,
        ),
        (q("flag", Exact(String::new())), Req::get("/p?flag"), true),
        (q("id", Regex("[0-9]+".into())), Req::get("/p?id=42"), true),
        (
            q("id", Regex("[0-9]+".into())),
            Req::get("/p?id=42a"),
            false,
        ),
        (q("id", Prefix("4".into())), Req::get("/p?id=42"), true),
    ]);
}

#[test]
fn source_and_gateway() {
    let labels = |pairs: &[(&str, &str)]| -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let from = |ns: Option<&str>, l: &[(&str, &str)]| {
        let mut r = Req::get("/");
        r.namespace = ns.map(str::to_owned);
        r.labels = labels(l);
        r
    };
    let on = |gateway: &str| {
        let mut r = Req::get("/");
        gateway.clone_into(&mut r.gateway);
        r
    };
    let sel = |l: &[(&str, &str)]| HttpMatch {
        source_labels: labels(l),
        ..HttpMatch::default()
    };
    let ns = |n: &str| HttpMatch {
        source_namespace: Some(n.to_owned()),
        ..HttpMatch::default()
    };
    let gw = |g: &[&str]| HttpMatch {
        gateways: g.iter().map(|s| (*s).to_owned()).collect(),
        ..HttpMatch::default()
    };
    check(&[
        (
            sel(&[("app", "web")]),
            from(None, &[("app", "web"), ("v", "1")]),
            true,
        ),
        (
            sel(&[("app", "web"), ("v", "2")]),
            from(None, &[("app", "web"), ("v", "1")]),
            false,
        ),
        (sel(&[("app", "web")]), from(None, &[]), false),
        (ns("shop"), from(Some("shop"), &[]), true),
        (ns("shop"), from(Some("other"), &[]), false),
        (ns("shop"), from(None, &[]), false),
        (gw(&["mesh"]), on("mesh"), true),
        (gw(&["istio-system/ingress"]), on("mesh"), false),
        (
            gw(&["mesh", "istio-system/ingress"]),
            on("istio-system/ingress"),
            true,
        ),
        (gw(&[]), on("istio-system/ingress"), true),
    ]);
}

/// Many rules asking about the same header (answered from the per-lookup cache) and more
/// distinct header names than the cache holds (looked up directly).
#[test]
fn many_header_rules() {
    let rule = |name: &str, value: Option<&str>, invert: bool| HttpRoute {
        name: Some(format!("{name}={value:?}/{invert}")),
        matches: vec![HttpMatch {
            headers: vec![HeaderMatch {
                name: name.to_owned(),
                value: value.map(|v| Exact(v.to_owned())),
                invert,
            }],
            ..HttpMatch::default()
        }],
        ..HttpRoute::default()
    };
    let mut routes: Vec<HttpRoute> = (0..12)
        .map(|i| rule(&format!("x-h{i}"), None, false))
        .collect();
    routes.extend((0..5).map(|i| rule("x-tenant", Some(&format!("t{i}")), false)));
    routes.push(rule("x-tenant", None, true));
    routes.push(rule("x-tenant", Some("t9"), true));
    let table = RouteTable::compile(&routes).expect("compiles");
    let index = |req: Req| table.find(&req.view()).map(|(i, _)| i);
    for i in 0..12 {
        assert_eq!(
            index(Req::get("/").header(&format!("x-h{i}"), "1")),
            Some(i)
        );
    }
    assert_eq!(
        index(Req::get("/").header("x-h11", "1").header("x-h3", "1")),
        Some(3)
    );
    assert_eq!(index(Req::get("/").header("x-tenant", "t3")), Some(15));
    assert_eq!(index(Req::get("/")), Some(17));
    assert_eq!(index(Req::get("/").header("x-tenant", "t7")), Some(18));
    assert_eq!(index(Req::get("/").header("x-tenant", "t9")), None);
}
