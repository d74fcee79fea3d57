//! Rule filters, per-backend filters, timeouts, retries and the settings reported as not
//! enforced.

use super::*;
use std::time::Duration;
use trellis_model::{PathRewrite, Redirect, RetryCondition, StringMatch};

/// An HTTPRoute on Service `web` in `default` with `rules`, plus the services it uses.
fn web(rules: &str) -> Compiled {
    let yaml = format!(
        "{}{}{}apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: web}}\nspec:\n  parentRefs: [{{name: web, kind: Service}}]\n  rules:\n{rules}",
        service("default", "web", 80),
        service("default", "web-v2", 80),
        service("default", "shadow", 80),
    );
    run(&yaml)
}

fn routes(c: &Compiled) -> &[HttpRoute] {
    &svc(c, &format!("web.default.{H}")).http_routes
}

#[test]
fn header_mirror_rewrite_and_cors() {
    let c = web(r#"  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-env, value: prod}]
        add: [{name: x-trace, value: "1"}]
        remove: [x-debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: cache-control, value: no-store}]
    - type: RequestMirror
      requestMirror:
        backendRef: {name: shadow, port: 80}
        fraction: {numerator: 1, denominator: 4}
    - type: RequestMirror
      requestMirror:
        backendRef: {name: shadow, port: 80}
    - type: URLRewrite
      urlRewrite:
        hostname: internal.example.com
        path: {type: ReplaceFullPath, replaceFullPath: /v2}
    - type: CORS
      cors:
        allowOrigins: ["https://*.example.com", "https://app.example.org"]
        allowMethods: [GET, POST]
        allowHeaders: [x-user]
        allowCredentials: true
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Plugin, name: p}
    backendRefs:
    - name: web-v2
      port: 80
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: x-backend, value: v2}]}
      - type: ResponseHeaderModifier
        responseHeaderModifier: {remove: [server]}
      - type: RequestMirror
        requestMirror: {backendRef: {name: shadow, port: 80}}
"#);
    let r = &routes(&c)[0];
    assert_eq!(
        r.request_headers.set,
        [("x-env".to_owned(), "prod".to_owned())]
    );
    assert_eq!(
        r.request_headers.add,
        [("x-trace".to_owned(), "1".to_owned())]
    );
    assert_eq!(r.request_headers.remove, ["x-debug"]);
    assert_eq!(
        r.response_headers.set,
        [("cache-control".to_owned(), "no-store".to_owned())]
    );
    let mirrors: Vec<(&str, f64)> = r
        .mirrors
        .iter()
        .map(|m| (m.destination.host.as_str(), m.percent))
        .collect();
    let shadow = format!("shadow.default.{H}");
    assert_eq!(mirrors, [(shadow.as_str(), 25.0), (shadow.as_str(), 100.0)]);
    let rewrite = r.rewrite.clone().unwrap_or_default();
    assert_eq!(rewrite.authority.as_deref(), Some("internal.example.com"));
    assert_eq!(rewrite.path, Some(PathRewrite::ReplaceFull("/v2".into())));
    let cors = r.cors.clone().unwrap_or_default();
    assert_eq!(
        cors.allow_origins,
        [
            StringMatch::Regex(r"https://[^/]+\.example\.com".into()),
            StringMatch::Exact("https://app.example.org".into())
        ]
    );
    assert_eq!(cors.allow_methods, ["GET", "POST"]);
    assert_eq!(cors.allow_headers, ["x-user"]);
    assert_eq!(
        (cors.allow_credentials, cors.max_age),
        (Some(true), Some(Duration::from_secs(5)))
    );
    let RouteAction::Forward(d) = &r.action else {
        panic!("{:?}", r.action)
    };
    assert_eq!(
        d[0].request_headers.set,
        [("x-backend".to_owned(), "v2".to_owned())]
    );
    assert_eq!(d[0].response_headers.remove, ["server"]);
    let ignored: Vec<&str> = with_code(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        ignored,
        [
            "the ExtensionRef filter is accepted but not enforced by Trellis",
            "the RequestMirror filter on a single backend is accepted but not enforced by Trellis (put it on the rule)",
        ]
    );
}

#[test]
fn redirects() {
    let c = web(r#"  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        statusCode: 301
  - matches: [{path: {type: Exact, value: /login}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: login.example.com}
"#);
    let rs = routes(&c);
    let redirect = |p: &str| match &rs
        .iter()
        .find(|r| r.matches[0].uri.as_ref().is_some_and(|u| u.value() == p))
        .map(|r| &r.action)
    {
        Some(RouteAction::Redirect(r)) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        redirect("/old"),
        Redirect {
            scheme: None,
            authority: None,
            port: None,
            path: Some(PathRewrite::ReplacePrefix("/new".into())),
            code: 301
        }
    );
    assert_eq!(
        redirect("/login"),
        Redirect {
            scheme: Some("https".into()),
            authority: Some("login.example.com".into()),
            port: Some(443),
            path: None,
            code: 302
        },
        "302 by default, and the scheme's well-known port"
    );
}

#[test]
fn timeouts_and_retries() {
    let c = web(r#"  - matches: [{path: {value: /a}}]
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {codes: [503, 429], attempts: 3, backoff: 100ms}
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /b}}]
    timeouts: {request: 10s, backendRequest: 4s}
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /c}}]
    timeouts: {request: 0s}
    retry: {}
    sessionPersistence: {sessionName: s}
    backendRefs: [{name: web, port: 80}]
"#);
    let rs = routes(&c);
    let by = |p: &str| {
        rs.iter()
            .find(|r| r.matches[0].uri.as_ref().is_some_and(|u| u.value() == p))
            .unwrap_or_else(|| panic!("{p}"))
    };
    let a = by("/a");
    assert_eq!(a.timeout, Some(Duration::from_secs(10)));
    let retry = a.retry.clone().unwrap_or_default();
    assert_eq!(
        (retry.attempts, retry.per_try_timeout),
        (3, Some(Duration::from_secs(2)))
    );
    assert_eq!(retry.retry_on.status_codes, [503, 429]);
    assert!(
        retry
            .retry_on
            .conditions
            .contains(&RetryCondition::RetriableStatusCodes)
    );
    assert!(
        retry
            .retry_on
            .conditions
            .contains(&RetryCondition::ConnectFailure)
    );
    assert_eq!(
        (retry.backoff_base, retry.backoff_max),
        (Duration::from_millis(100), Duration::from_secs(1))
    );
    let b = by("/b");
    assert_eq!(
        (b.timeout, b.retry.as_ref()),
        (Some(Duration::from_secs(4)), None),
        "one try: backendRequest bounds it"
    );
    let c_route = by("/c");
    assert_eq!(c_route.timeout, None, "0s disables the timeout");
    let retry = c_route.retry.clone().unwrap_or_default();
    assert_eq!(retry.attempts, 2, "attempts defaults to 2");
    assert!(
        !retry
            .retry_on
            .conditions
            .contains(&RetryCondition::RetriableStatusCodes)
    );
    let ignored = with_code(&c, Code::IgnoredSetting);
    assert_eq!(ignored.len(), 1, "{ignored:#?}");
    assert!(ignored[0].message.starts_with("sessionPersistence"));
}
