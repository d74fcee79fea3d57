//! Tests of the HTTP rule mappings: every match field, weights and per-destination headers,
//! redirects, direct responses, mirrors, rewrites and CORS.

use super::tests::{HELLO, forward, line_of, run, service, svc, with_code};
use crate::diag::Code;
use std::time::Duration;
use trellis_model::{
    CorsPolicy, Destination, HeaderMatch, HeaderOps, HttpMatch, HttpRoute, Mirror, PathRewrite,
    QueryMatch, Redirect, RouteAction, StringMatch,
};

/// The HTTP routes of hello-service for a VirtualService with `http` rules (YAML flow list items).
pub(super) fn routes(http: &str) -> (Vec<HttpRoute>, Vec<crate::diag::Diagnostic>, String) {
    let text = service("hello-service", "default")
        + &format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs}}\nspec:\n  hosts: [hello-service]\n  http:\n{http}"
        );
    let c = run(&text);
    (svc(&c, HELLO).http_routes.clone(), c.diagnostics, text)
}

#[test]
fn http_match_fields() {
    let (r, diags, _) = routes(
        "  - match:
    - uri: {prefix: /api}
      scheme: {exact: https}
      method: {regex: 'GET|HEAD'}
      authority: {exact: shop.example.com}
      headers: {X-User: {exact: alice}, a-present: {}}
      withoutHeaders: {x-debug: {}, x-env: {prefix: test}}
      queryParams: {q: {exact: '1'}, flag: {}}
      port: 8080
      sourceLabels: {app: web}
      gateways: [mesh]
      sourceNamespace: shop
      ignoreUriCase: true
    - uri: {exact: /health}
    route: [{destination: {host: hello-service}}]
",
    );
    let hm = |name: &str, value: Option<StringMatch>, invert| HeaderMatch {
        name: name.into(),
        value,
        invert,
    };
    assert_eq!(
        r[0].matches[0],
        HttpMatch {
            uri: Some(StringMatch::Prefix("/api".into())),
            method: Some(StringMatch::Regex("GET|HEAD".into())),
            authority: Some(StringMatch::Exact("shop.example.com".into())),
            scheme: Some(StringMatch::Exact("https".into())),
            headers: vec![
                hm("a-present", None, false),
                hm("x-debug", None, true),
                hm("x-env", Some(StringMatch::Prefix("test".into())), true),
                hm("x-user", Some(StringMatch::Exact("alice".into())), false),
            ],
            query_params: vec![
                QueryMatch {
                    name: "flag".into(),
                    value: StringMatch::Regex(".*".into())
                },
                QueryMatch {
                    name: "q".into(),
                    value: StringMatch::Exact("1".into())
                },
            ],
            port: Some(8080),
            source_labels: [("app".to_string(), "web".to_string())].into(),
            source_namespace: Some("shop".into()),
            gateways: vec!["mesh".into()],
            ignore_uri_case: true,
        }
    );
    assert_eq!(
        r[0].matches[1],
        HttpMatch {
            uri: Some(StringMatch::Exact("/health".into())),
            ..HttpMatch::default()
        }
    );
    assert!(diags.is_empty(), "{diags:#?}");
}

#[test]
fn weights_destinations_and_headers() {
    let (r, _, _) = routes(
        "  - name: split
    route:
    - destination: {host: hello-service, subset: v1, port: {number: 8080}}
      weight: 70
      headers: {request: {set: {x-version: v1}}, response: {remove: [x-internal]}}
    - destination: {host: other.shop.svc.cluster.local}
      weight: 30
    - destination: {host: api.example.com}
    headers:
      request: {set: {x-a: '1', host: rewritten.example.com}, add: {x-b: '2'}, remove: [x-c]}
      response: {add: {x-served-by: trellis}}
",
    );
    assert_eq!(r[0].name.as_deref(), Some("split"));
    let d = forward(&r[0].action);
    assert_eq!(
        d[0].destination,
        Destination {
            host: HELLO.into(),
            subset: Some("v1".into()),
            port: Some(8080)
        }
    );
    assert_eq!(
        (d[0].weight, d[1].weight, d[2].weight),
        (70, 30, 0),
        "a missing weight among several is 0"
    );
    assert_eq!(
        d[0].request_headers.set,
        [("x-version".to_string(), "v1".to_string())]
    );
    assert_eq!(d[0].response_headers.remove, ["x-internal"]);
    assert_eq!(d[1].destination.host, "other.shop.svc.cluster.local");
    assert_eq!(d[2].destination.host, "api.example.com");
    assert_eq!(
        r[0].request_headers,
        HeaderOps {
            set: vec![("x-a".into(), "1".into())],
            add: vec![("x-b".into(), "2".into())],
            remove: vec!["x-c".into()],
        }
    );
    assert_eq!(
        r[0].response_headers.add,
        [("x-served-by".to_string(), "trellis".to_string())]
    );
    assert_eq!(
        r[0].rewrite.as_ref().and_then(|w| w.authority.as_deref()),
        Some("rewritten.example.com"),
        "host header = authority rewrite"
    );
}

#[test]
fn redirects_and_direct_responses() {
    let (r, diags, text) = routes(
        "  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: new.example.com, port: 8443, scheme: https, redirectCode: 308}
  - match: [{uri: {prefix: /v1}}]
    redirect: {prefixRewrite: /v2}
  - match: [{uri: {prefix: /secure}}]
    redirect: {scheme: https, derivePort: FROM_PROTOCOL_DEFAULT}
  - match: [{uri: {prefix: /same-port}}]
    redirect: {authority: b.example.com, derivePort: FROM_REQUEST_PORT}
  - match: [{uri: {prefix: /unknown-scheme}}]
    redirect: {authority: c.example.com, derivePort: FROM_PROTOCOL_DEFAULT}
  - match: [{uri: {prefix: /text}}]
    directResponse: {status: 503, body: {string: maintenance}}
  - match: [{uri: {prefix: /bytes}}]
    directResponse: {status: 200, body: {bytes: aGVsbG8gd29ybGQ=}}
  - match: [{uri: {prefix: /binary}}]
    directResponse: {status: 200, body: {bytes: /w==}}
  - match: [{uri: {prefix: /empty}}]
    directResponse: {status: 204}
",
    );
    let redirect = |i: usize| match &r[i].action {
        RouteAction::Redirect(rd) => rd.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        redirect(0),
        Redirect {
            scheme: Some("https".into()),
            authority: Some("new.example.com".into()),
            port: Some(8443),
            path: Some(PathRewrite::ReplaceFull("/new".into())),
            code: 308,
        }
    );
    assert_eq!(
        redirect(1),
        Redirect {
            path: Some(PathRewrite::ReplacePrefix("/v2".into())),
            ..Redirect::default()
        }
    );
    assert_eq!((redirect(2).port, redirect(2).code), (Some(443), 301));
    assert_eq!(redirect(3).port, None, "the request's port is kept");
    assert_eq!(redirect(4).port, None);
    let body = |i: usize| match &r[i].action {
        RouteAction::DirectResponse { status, body } => (*status, body.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(body(5), (503, Some("maintenance".into())));
    assert_eq!(body(6), (200, Some("hello world".into())));
    assert_eq!(
        body(7),
        (200, Some("/w==".into())),
        "not UTF-8: kept as written"
    );
    assert_eq!(body(8), (204, None));
    let ignored = with_code(&diags, Code::IgnoredSetting);
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert_eq!(ignored[0].line, line_of(&text, "c.example.com"));
    assert!(ignored[0].message.contains("derivePort"));
    assert_eq!(ignored[1].line, line_of(&text, "bytes: /w=="));
    assert!(ignored[1].message.contains("body.bytes"));
}

#[test]
fn base64() {
    use super::http::base64_decode;
    assert_eq!(base64_decode("aGk=").as_deref(), Some(b"hi".as_slice()));
    assert_eq!(base64_decode("aGk").as_deref(), Some(b"hi".as_slice()));
    assert_eq!(
        base64_decode("-_8").as_deref(),
        Some([0xfb, 0xff].as_slice())
    );
    assert_eq!(base64_decode("").as_deref(), Some([].as_slice()));
    assert_eq!(base64_decode("a"), None);
    assert_eq!(base64_decode("a*bc"), None);
}

#[test]
fn mirrors_rewrite_and_cors() {
    let (r, _, _) = routes(
        "  - route: [{destination: {host: hello-service}}]
    mirror: {host: shadow, subset: v2}
    mirrorPercentage: {value: 12.5}
    rewrite: {uri: /v2, authority: internal}
    corsPolicy:
      allowOrigins: [{exact: 'https://a.example.com'}, {regex: 'https://.*[.]b[.]com'}]
      allowOrigin: ['https://legacy.example.com']
      allowMethods: [GET, POST]
      allowHeaders: [x-token]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
  - route: [{destination: {host: hello-service}}]
    mirror: {host: shadow}
    mirrorPercent: 5
    rewrite: {uriRegexRewrite: {match: '^/old/(.*)$', rewrite: '/new/\\1'}}
  - route: [{destination: {host: hello-service}}]
    mirrors: [{destination: {host: shadow}}, {destination: {host: audit.example.com}, percentage: {value: 1}}]
",
    );
    let shadow = |subset: Option<&str>| Destination {
        host: "shadow.default.svc.cluster.local".into(),
        subset: subset.map(Into::into),
        port: None,
    };
    assert_eq!(
        r[0].mirrors,
        [Mirror {
            destination: shadow(Some("v2")),
            percent: 12.5
        }]
    );
    assert_eq!(
        r[1].mirrors,
        [Mirror {
            destination: shadow(None),
            percent: 5.0
        }]
    );
    assert_eq!(
        r[2].mirrors,
        [
            Mirror {
                destination: shadow(None),
                percent: 100.0
            },
            Mirror {
                destination: Destination::new("audit.example.com"),
                percent: 1.0
            }
        ]
    );
    let rw = r[0].rewrite.clone().expect("rewrite");
    assert_eq!(
        (rw.path, rw.authority.as_deref()),
        (
            Some(PathRewrite::ReplacePrefix("/v2".into())),
            Some("internal")
        )
    );
    assert_eq!(
        r[1].rewrite.clone().and_then(|w| w.path),
        Some(PathRewrite::Regex {
            pattern: "^/old/(.*)$".into(),
            substitution: "/new/\\1".into()
        })
    );
    assert_eq!(
        r[0].cors,
        Some(CorsPolicy {
            allow_origins: vec![
                StringMatch::Exact("https://a.example.com".into()),
                StringMatch::Regex("https://.*[.]b[.]com".into()),
                StringMatch::Exact("https://legacy.example.com".into()),
            ],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["x-token".into()],
            expose_headers: vec!["x-trace".into()],
            max_age: Some(Duration::from_secs(86400)),
            allow_credentials: Some(true),
        })
    );
}
