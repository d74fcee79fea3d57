//! Route lookup cost on a 100-rule table shaped like a large VirtualService: a mix of
//! path-prefix, exact, regex and header-based rules, each with a weighted split. Requests
//! hit the first, the middle and the last rule, and none (the worst case: every rule is
//! evaluated). The target is at most 1 µs per lookup.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, Uri};
use trellis_model::{
    Destination, HeaderMatch, HttpMatch, HttpRoute, RouteAction, StringMatch, WeightedDestination,
};
use trellis_proxy::route::{RequestView, RouteTable};

/// Rule `i` of the table; the kind rotates so every kind is spread over the table.
fn rule(i: usize) -> HttpRoute {
    let uri = |m: StringMatch| HttpMatch {
        uri: Some(m),
        ..HttpMatch::default()
    };
    let matches = match i % 4 {
        0 => vec![uri(StringMatch::PathPrefix(format!("/svc{i}/api")))],
        1 => vec![HttpMatch {
            method: Some(StringMatch::Exact("GET".into())),
            ..uri(StringMatch::Exact(format!("/exact/{i}/health")))
        }],
        2 => vec![
            uri(StringMatch::Regex(format!(
                "/users/[0-9]+/orders{i}/[a-z0-9-]+"
            ))),
            uri(StringMatch::Regex(format!("/v[12]/items{i}(/.*)?"))),
        ],
        _ => vec![HttpMatch {
            headers: vec![HeaderMatch {
                name: "x-tenant".into(),
                value: Some(StringMatch::Exact(format!("tenant-{i}"))),
                invert: false,
            }],
            ..uri(StringMatch::Prefix("/shop".into()))
        }],
    };
    let destination = |subset: &str, weight| WeightedDestination {
        destination: Destination {
            subset: Some(subset.into()),
            ..Destination::new(format!("svc{i}.default.svc.cluster.local"))
        },
        ..WeightedDestination::new(Destination::default(), weight)
    };
    HttpRoute {
        name: Some(format!("rule-{i}")),
        matches,
        action: RouteAction::Forward(vec![destination("v1", 90), destination("v2", 10)]),
        ..HttpRoute::default()
    }
}

/// Rule `i` of the side-by-side benchmark's table (`bench/configs.py`): a header, a
/// prefix or a regex condition in turn, each on its own service; rule 100 has none.
fn side_by_side_rule(i: usize) -> HttpRoute {
    let matches = match i % 3 {
        _ if i == 100 => vec![],
        0 => vec![HttpMatch {
            headers: vec![HeaderMatch {
                name: "x-bench-route".into(),
                value: Some(StringMatch::Exact(format!("r{i}"))),
                invert: false,
            }],
            ..HttpMatch::default()
        }],
        1 => vec![HttpMatch {
            uri: Some(StringMatch::Prefix(format!("/api/v{i}/"))),
            ..HttpMatch::default()
        }],
        _ => vec![HttpMatch {
            uri: Some(StringMatch::Regex(format!("/svc{i}/[a-z]+/[0-9]+"))),
            ..HttpMatch::default()
        }],
    };
    HttpRoute {
        name: Some(format!("r{i}")),
        matches,
        action: RouteAction::Forward(vec![WeightedDestination::new(
            Destination::new(format!("svc-{i}.bench.svc.cluster.local")),
            100,
        )]),
        ..HttpRoute::default()
    }
}

fn headers(tenant: Option<&'static str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "host",
        HeaderValue::from_static("shop.default.svc.cluster.local"),
    );
    h.insert("user-agent", HeaderValue::from_static("curl/8.5.0"));
    h.insert("accept", HeaderValue::from_static("*/*"));
    if let Some(t) = tenant {
        h.insert("x-tenant", HeaderValue::from_static(t));
    }
    h
}

fn bench(c: &mut Criterion) {
    let routes: Vec<HttpRoute> = (0..100).map(rule).collect();
    let table = RouteTable::compile(&routes).expect("bench routes compile");
    let cases: [(&str, &str, Option<&'static str>, Option<usize>); 4] = [
        ("first", "/svc0/api/orders?id=1", None, Some(0)),
        ("middle", "/users/42/orders50/abc-1", None, Some(50)),
        ("last", "/shop/cart", Some("tenant-99"), Some(99)),
        ("none", "/nothing/here?x=1", Some("tenant-1000"), None),
    ];
    let mut group = c.benchmark_group("route_match");
    for (label, path, tenant, want) in cases {
        let method = Method::GET;
        let uri: Uri = path.parse().expect("bench uri is valid");
        let headers = headers(tenant);
        let view = RequestView::new(&method, &uri, &headers);
        assert_eq!(table.find(&view).map(|(i, _)| i), want, "{label}");
        group.bench_function(label, |b| {
            b.iter(|| black_box(&table).find(black_box(&view)).map(|(i, _)| i))
        });
    }
    // The side-by-side benchmark's request: `GET /` to the last rule of its table.
    let side_by_side: Vec<HttpRoute> = (1..=100).map(side_by_side_rule).collect();
    let side_by_side = RouteTable::compile(&side_by_side).expect("bench routes compile");
    let (method, uri, plain) = (Method::GET, Uri::from_static("/"), headers(None));
    let view = RequestView::new(&method, &uri, &plain);
    assert_eq!(side_by_side.find(&view).map(|(i, _)| i), Some(99));
    group.bench_function("side-by-side-table", |b| {
        b.iter(|| {
            black_box(&side_by_side)
                .find(black_box(&view))
                .map(|(i, _)| i)
        })
    });
    let method = Method::GET;
    let uri: Uri = "/shop/cart".parse().expect("bench uri is valid");
    let headers = headers(Some("tenant-99"));
    group.bench_function("last+view+pick", |b| {
        b.iter(|| {
            let view = RequestView::new(&method, black_box(&uri), black_box(&headers));
            let (i, _) = table.find(&view)?;
            table.pick_destination(i, black_box(0x9000_0000))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
