//! VirtualService: decoding a full example, and each validation rule firing (or not).

use super::*;
use crate::diag::{Code, Diagnostic, Severity};
use crate::load::{LoadOptions, load_str};
use crate::resources::Spec;
use crate::resources::common::StringMatch;

/// Load a VirtualService whose `spec` is `spec` (written without indentation).
fn load(spec: &str) -> (Option<VirtualService>, Vec<Diagnostic>) {
    let body: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: t\nspec:\n{body}"
    );
    let loaded = load_str("vs.yaml", &text, &LoadOptions::default());
    let vs = loaded.resources.into_iter().find_map(|r| match r.spec {
        Spec::VirtualService(vs) => Some(*vs),
        _ => None,
    });
    (vs, loaded.diagnostics)
}

fn messages(diags: &[Diagnostic], sev: Severity) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.severity == sev)
        .map(|d| d.message.clone())
        .collect()
}

#[track_caller]
fn assert_clean(spec: &str) -> VirtualService {
    let (vs, diags) = load(spec);
    assert!(diags.is_empty(), "expected no diagnostics, got: {diags:#?}");
    vs.expect("resource loads")
}

#[track_caller]
fn assert_error(spec: &str, needle: &str) {
    let (_, diags) = load(spec);
    let errs = messages(&diags, Severity::Error);
    assert!(
        errs.iter().any(|m| m.contains(needle)),
        "expected an error containing {needle:?}, got: {diags:#?}"
    );
}

#[track_caller]
fn assert_warning(spec: &str, code: Code, needle: &str) {
    let (_, diags) = load(spec);
    assert!(
        diags.iter().any(|d| d.severity == Severity::Warning
            && d.code == code
            && d.message.contains(needle)),
        "expected a {code} warning containing {needle:?}, got: {diags:#?}"
    );
}

/// A valid HTTP rule for tests that only vary one thing.
const ROUTE: &str = "route:\n  - destination:\n      host: reviews";

const FULL: &str = r#"hosts:
- reviews.prod.svc.cluster.local
- "*.bookinfo.com"
gateways:
- mesh
- istio-system/bookinfo-gateway
exportTo: [".", istio-system]
http:
- name: canary
  match:
  - name: jason
    uri: {prefix: /reviews}
    scheme: {exact: https}
    method: {exact: GET}
    authority: {regex: "reviews(\\.prod)?"}
    headers:
      end-user: {exact: jason}
      x-canary: {}
    port: 9080
    sourceLabels: {app: productpage}
    gateways: [mesh]
    queryParams:
      debug: {exact: "1"}
    ignoreUriCase: true
    withoutHeaders:
      x-skip: {prefix: "y"}
    sourceNamespace: frontend
    statPrefix: jason
  route:
  - destination:
      host: reviews.prod.svc.cluster.local
      subset: v2
      port: {number: 9080}
    weight: 90
    headers:
      request:
        set: {x-route: v2}
      response:
        remove: [x-internal]
  - destination: {host: reviews.prod.svc.cluster.local, subset: v3}
    weight: 10
  rewrite:
    uriRegexRewrite:
      match: ^/reviews/(.*)$
      rewrite: /v2/\1
  timeout: 2s
  retries:
    attempts: 3
    perTryTimeout: 500ms
    retryOn: 5xx,reset,503
    retryRemoteLocalities: true
    retryIgnorePreviousHosts: false
    backoff: 50ms
  fault:
    delay:
      fixedDelay: 5s
      percentage: {value: 0.1}
    abort:
      httpStatus: 503
      percentage: {value: 1.5}
  mirrors:
  - destination: {host: reviews-shadow}
    percentage: {value: 25}
  corsPolicy:
    allowOrigins:
    - exact: https://example.com
    - regex: "https://.*\\.example\\.com"
    allowMethods: [GET, POST]
    allowHeaders: [x-custom]
    exposeHeaders: [x-exposed]
    maxAge: 24h
    allowCredentials: true
    unmatchedPreflights: IGNORE
  headers:
    request:
      add: {x-added: "on"}
      remove: [x-remove]
    response:
      set: {x-served-by: trellis}
- name: legacy-redirect
  match:
  - uri: {prefix: /old}
  redirect:
    prefixRewrite: /new
    authority: new.bookinfo.com
    derivePort: FROM_REQUEST_PORT
    scheme: https
    redirectCode: 308
- name: teapot
  match:
  - uri: {exact: /teapot}
  directResponse:
    status: 418
    body: {string: "I'm a teapot"}
- name: delegated
  match:
  - uri: {prefix: /ratings}
  delegate: {name: ratings-routes, namespace: ratings}
- name: default
  route:
  - destination: {host: reviews.prod.svc.cluster.local, subset: v1}
  mirror: {host: reviews-shadow}
  mirrorPercentage: {value: 5}
tls:
- match:
  - sniHosts: [secure.bookinfo.com]
    destinationSubnets: [10.0.0.0/8]
    port: 443
    sourceLabels: {app: web}
    gateways: [mesh]
    sourceNamespace: web
  route:
  - destination:
      host: secure-backend
      port: {number: 8443}
tcp:
- match:
  - destinationSubnets: [10.1.0.0/16]
    port: 27017
    sourceSubnet: 10.2.0.0/16
    sourceLabels: {app: worker}
    gateways: [mesh]
    sourceNamespace: batch
  route:
  - destination:
      host: mongo.backup.svc.cluster.local
      port: {number: 5555}
    weight: 100
"#;

#[test]
fn full_example_decodes_every_field() {
    let vs = assert_clean(FULL);
    assert_eq!(
        vs.hosts,
        ["reviews.prod.svc.cluster.local", "*.bookinfo.com"]
    );
    assert_eq!(vs.gateways, ["mesh", "istio-system/bookinfo-gateway"]);
    assert_eq!(vs.export_to, [".", "istio-system"]);
    assert!(vs.applies_to_mesh() && !vs.is_delegate());

    let canary = &vs.http[0];
    assert_eq!(canary.name.as_deref(), Some("canary"));
    let m = &canary.matches[0];
    assert_eq!(m.name.as_deref(), Some("jason"));
    assert_eq!(
        m.uri.as_ref().and_then(|u| u.prefix.as_deref()),
        Some("/reviews")
    );
    assert_eq!(
        m.scheme.as_ref().and_then(|u| u.exact.as_deref()),
        Some("https")
    );
    assert_eq!(
        m.method.as_ref().and_then(|u| u.exact.as_deref()),
        Some("GET")
    );
    assert_eq!(
        m.authority
            .as_ref()
            .and_then(|u| u.regex.as_ref())
            .map(|r| r.0.as_str()),
        Some(r"reviews(\.prod)?")
    );
    assert_eq!(m.headers["end-user"].exact.as_deref(), Some("jason"));
    assert_eq!(
        m.headers["x-canary"],
        StringMatch::default(),
        "an empty match means present"
    );
    assert_eq!(m.port, Some(9080));
    assert_eq!(m.source_labels["app"], "productpage");
    assert_eq!(m.gateways, ["mesh"]);
    assert_eq!(m.query_params["debug"].exact.as_deref(), Some("1"));
    assert!(m.ignore_uri_case);
    assert_eq!(m.without_headers["x-skip"].prefix.as_deref(), Some("y"));
    assert_eq!(m.source_namespace.as_deref(), Some("frontend"));
    assert_eq!(m.stat_prefix.as_deref(), Some("jason"));

    let d = &canary.route[0];
    let dest = d.destination.as_ref().expect("destination");
    assert_eq!(dest.host, "reviews.prod.svc.cluster.local");
    assert_eq!(dest.subset.as_deref(), Some("v2"));
    assert_eq!(dest.port.as_ref().and_then(|p| p.number), Some(9080));
    assert_eq!(d.weight, Some(90));
    let dh = d.headers.as_ref().expect("headers");
    assert_eq!(
        dh.request.as_ref().map(|r| r.set["x-route"].as_str()),
        Some("v2")
    );
    assert_eq!(
        dh.response.as_ref().map(|r| r.remove.clone()),
        Some(vec!["x-internal".to_owned()])
    );
    assert_eq!(canary.route[1].weight, Some(10));

    let rr = canary
        .rewrite
        .as_ref()
        .and_then(|r| r.uri_regex_rewrite.as_ref())
        .expect("regex rewrite");
    assert_eq!(
        rr.pattern.as_ref().map(|p| p.0.as_str()),
        Some("^/reviews/(.*)$")
    );
    assert_eq!(rr.rewrite.as_deref(), Some(r"/v2/\1"));
    assert_eq!(canary.timeout, Some(Duration::from_millis(2000)));

    let r = canary.retries.as_ref().expect("retries");
    assert_eq!(r.attempts, Some(3));
    assert_eq!(r.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(
        r.retry_on_conditions().collect::<Vec<_>>(),
        ["5xx", "reset", "503"]
    );
    assert_eq!(r.retry_remote_localities, Some(true));
    assert_eq!(r.retry_ignore_previous_hosts, Some(false));
    assert_eq!(r.backoff, Some(Duration::from_millis(50)));
    assert!(r.enabled());

    let f = canary.fault.as_ref().expect("fault");
    let delay = f.delay.as_ref().expect("delay");
    assert_eq!(delay.fixed_delay, Some(Duration::from_millis(5000)));
    assert_eq!(delay.fraction(), 0.1);
    let abort = f.abort.as_ref().expect("abort");
    assert_eq!(abort.http_status, Some(503));
    assert_eq!(abort.fraction(), 1.5);

    assert_eq!(canary.mirrors[0].percentage.map(|p| p.value), Some(25.0));
    let cors = canary.cors_policy.as_ref().expect("cors");
    assert_eq!(cors.allow_origins.len(), 2);
    assert_eq!(cors.allow_methods, ["GET", "POST"]);
    assert_eq!(cors.allow_headers, ["x-custom"]);
    assert_eq!(cors.expose_headers, ["x-exposed"]);
    assert_eq!(cors.max_age, Some(Duration::from_millis(86_400_000)));
    assert_eq!(cors.allow_credentials, Some(true));
    assert_eq!(cors.unmatched_preflights, Some(UnmatchedPreflights::Ignore));
    let h = canary.headers.as_ref().expect("headers");
    assert_eq!(
        h.request.as_ref().map(|r| r.add["x-added"].as_str()),
        Some("on")
    );
    assert_eq!(
        h.response.as_ref().map(|r| r.set["x-served-by"].as_str()),
        Some("trellis")
    );

    let redirect = vs.http[1].redirect.as_ref().expect("redirect");
    assert_eq!(redirect.prefix_rewrite.as_deref(), Some("/new"));
    assert_eq!(redirect.authority.as_deref(), Some("new.bookinfo.com"));
    assert_eq!(
        redirect.derive_port,
        Some(RedirectPortSelection::FromRequestPort)
    );
    assert_eq!(redirect.scheme.as_deref(), Some("https"));
    assert_eq!(redirect.redirect_code, Some(308));

    let dr = vs.http[2].direct_response.as_ref().expect("directResponse");
    assert_eq!(dr.status, Some(418));
    assert_eq!(
        dr.body.as_ref().and_then(|b| b.string.as_deref()),
        Some("I'm a teapot")
    );

    let del = vs.http[3].delegate.as_ref().expect("delegate");
    assert_eq!(
        (del.name.as_str(), del.namespace.as_deref()),
        ("ratings-routes", Some("ratings"))
    );
    assert!(vs.http.iter().all(HttpRoute::has_action));

    let default = &vs.http[4];
    let mirrors = default.effective_mirrors();
    assert_eq!(mirrors.len(), 1);
    assert_eq!(
        (mirrors[0].0.host.as_str(), mirrors[0].1),
        ("reviews-shadow", 5.0)
    );
    assert_eq!(canary.effective_mirrors()[0].1, 25.0);

    let tls = &vs.tls[0].matches[0];
    assert_eq!(tls.sni_hosts, ["secure.bookinfo.com"]);
    assert_eq!(tls.destination_subnets, ["10.0.0.0/8"]);
    assert_eq!(tls.port, Some(443));
    assert_eq!(tls.source_labels["app"], "web");
    assert_eq!(tls.source_namespace.as_deref(), Some("web"));
    assert_eq!(
        vs.tls[0].route[0]
            .destination
            .as_ref()
            .and_then(|d| d.port.as_ref())
            .and_then(|p| p.number),
        Some(8443)
    );

    let tcp = &vs.tcp[0].matches[0];
    assert_eq!(tcp.destination_subnets, ["10.1.0.0/16"]);
    assert_eq!(tcp.port, Some(27017));
    assert_eq!(tcp.source_subnet.as_deref(), Some("10.2.0.0/16"));
    assert_eq!(tcp.gateways, ["mesh"]);
    assert_eq!(tcp.source_namespace.as_deref(), Some("batch"));
    assert_eq!(vs.tcp[0].route[0].weight, Some(100));
}

#[test]
fn hosts_are_required_except_for_delegates() {
    assert_error(
        "tcp:\n- route:\n  - destination: {host: mongo}",
        "missing required field `spec.hosts`",
    );
    assert_error("{}", "at least one http, tls or tcp rule");
    let vs = assert_clean(&format!("http:\n- {ROUTE}"));
    assert!(vs.is_delegate());
    assert_error(
        &format!("gateways: [gw]\nhttp:\n- {ROUTE}"),
        "cannot name gateways",
    );
    assert_error(
        &format!("http:\n- {ROUTE}\ntcp:\n- route:\n  - destination: {{host: mongo}}"),
        "can hold only http rules",
    );
}

#[test]
fn host_values_are_checked() {
    assert_error(
        &format!("hosts: ['*']\nhttp:\n- {ROUTE}"),
        "host `*` is not allowed",
    );
    assert_clean(&format!(
        "hosts: ['*']\ngateways: [istio-system/gw]\nhttp:\n- {ROUTE}"
    ));
    assert_error(
        &format!("hosts: [reviews:9080]\nhttp:\n- {ROUTE}"),
        "not a DNS-1123 label",
    );
    assert_error(
        &format!("hosts: ['*.foo.com', bar.foo.com]\nhttp:\n- {ROUTE}"),
        "overlap",
    );
    assert_clean(&format!("hosts: [10.0.0.1]\nhttp:\n- {ROUTE}"));
}

#[test]
fn destinations_need_a_valid_host_and_weight() {
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - weight: 100",
        "missing required field `spec.http[0].route[0].destination`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {subset: v1}",
        "missing required field `spec.http[0].route[0].destination.host`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: '*'}",
        "cannot be `*`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: 'reviews:9080'}",
        "port.number",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r, subset: v_1}",
        "subset name",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r, port: {}}",
        "`spec.http[0].route[0].destination.port.number`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r, port: {number: 70000}}",
        "1..65535",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: 101",
        "between 0 and 100, got 101",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: -1",
        "got -1",
    );
    assert_clean(
        "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: 0\n  - destination: {host: s}\n    weight: 100",
    );
}

#[test]
fn errors_point_at_the_field() {
    let (_, diags) =
        load("hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: 101");
    let d = diags
        .iter()
        .find(|d| d.message.contains("weight"))
        .expect("weight error");
    // Line 1-5 are the envelope; `weight` is the 5th line of the spec.
    assert_eq!(
        (d.line, d.code, d.kind.as_str()),
        (10, Code::SchemaValidation, "VirtualService")
    );
}

#[test]
fn actions_are_exclusive() {
    let redirect = "redirect: {uri: /new}";
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {ROUTE}\n  {redirect}"),
        "both `redirect` and `route`",
    );
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {redirect}\n  directResponse: {{status: 200}}"),
        "both `redirect` and `directResponse`",
    );
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {ROUTE}\n  directResponse: {{status: 200}}"),
        "both `directResponse` and `route`",
    );
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {redirect}\n  rewrite: {{uri: /x}}"),
        "both `redirect` and `rewrite`",
    );
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {redirect}\n  fault: {{abort: {{httpStatus: 500}}}}"),
        "both `redirect` and `fault`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- delegate: {name: d}\n  redirect: {uri: /x}",
        "delegates cannot also have `redirect`",
    );
    assert_error(
        &format!("http:\n- {ROUTE}\n- delegate: {{name: d}}"),
        "cannot delegate again",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- delegate: {}",
        "`spec.http[0].delegate.name`",
    );
    let vs = assert_clean("hosts: [r]\nhttp:\n- name: nothing\n  timeout: 1s");
    assert!(
        !vs.http[0].has_action(),
        "a rule without action is the analyzer's finding"
    );
}

#[test]
fn redirects_and_direct_responses_are_checked() {
    assert_error("hosts: [r]\nhttp:\n- redirect: {}", "at least one of uri");
    assert_error(
        "hosts: [r]\nhttp:\n- redirect: {uri: /a, prefixRewrite: /b}",
        "only one of uri, prefixRewrite",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- redirect: {port: 8080, derivePort: FROM_PROTOCOL_DEFAULT}",
        "only one of port, derivePort",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- redirect: {uri: /a, redirectCode: 200}",
        "expected 3xx",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- redirect: {uri: /a, scheme: ftp}",
        "\"http\" or \"https\"",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- match:\n  - uri: {exact: /old}\n  redirect: {prefixRewrite: /new}",
        "prefixRewrite needs every uri match",
    );
    let (vs, diags) = load("hosts: [r]\nhttp:\n- redirect: {uri: /a, derivePort: SOMETIMES}");
    assert!(vs.is_none(), "an unknown enum value fails the resource");
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("SOMETIMES") && d.line == 8),
        "{diags:#?}"
    );
    assert_error(
        "hosts: [r]\nhttp:\n- directResponse: {status: 600}",
        "not in the range 200..599",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- directResponse: {body: {string: x}}",
        "`spec.http[0].directResponse.status`",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- directResponse: {status: 200, body: {string: a, bytes: YQ==}}",
        "only one of string, bytes",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- directResponse: {status: 200, body: {bytes: 'not base64!'}}",
        "base64",
    );
    assert_clean("hosts: [r]\nhttp:\n- directResponse: {status: 503, body: {bytes: aGVsbG8=}}");
}

#[test]
fn rewrites_are_checked() {
    assert_error(
        "hosts: [r]\nhttp:\n- rewrite: {}\n  route:\n  - destination: {host: r}",
        "uri, uriRegexRewrite or authority",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- rewrite: {uri: /a, uriRegexRewrite: {match: a, rewrite: b}}\n  route:\n  - destination: {host: r}",
        "only one of uri, uriRegexRewrite",
    );
    assert_error(
        "hosts: [r]\nhttp:\n- rewrite: {uriRegexRewrite: {match: ^/a}}\n  route:\n  - destination: {host: r}",
        "uriRegexRewrite.rewrite",
    );
    let (_, diags) = load(
        "hosts: [r]\nhttp:\n- rewrite: {uriRegexRewrite: {match: '(unclosed', rewrite: /x}}\n  route:\n  - destination: {host: r}",
    );
    assert!(
        diags.iter().any(|d| d.code == Code::InvalidRegex),
        "{diags:#?}"
    );
    assert_error(
        "hosts: [r]\nhttp:\n- rewrite: {authority: a.example.com}\n  headers: {request: {set: {host: b.example.com}}}\n  route:\n  - destination: {host: r}",
        "authority is set twice",
    );
}

#[test]
fn retries_are_checked() {
    let rule = |retries: &str| format!("hosts: [r]\nhttp:\n- {ROUTE}\n  retries: {retries}");
    assert_error(&rule("{attempts: -1}"), "attempts must not be negative");
    assert_error(&rule("{retryOn: 5xx}"), "retries are disabled");
    assert_error(
        &rule("{attempts: 2, retryOn: '5xx,teapot'}"),
        "\"teapot\" is not a valid retryOn condition",
    );
    assert_error(
        &rule("{attempts: 2, retryOn: '5xx, reset'}"),
        "remove the spaces",
    );
    assert_error(&rule("{attempts: 2, retryOn: '599'}"), "\"599\"");
    assert_error(&rule("{attempts: 2, perTryTimeout: 0s}"), "at least 1ms");
    assert_clean(&rule(
        "{attempts: 2, retryOn: 'gateway-error,connect-failure,refused-stream,retriable-4xx,retriable-status-codes,503,cancelled,deadline-exceeded,unavailable,resource-exhausted,internal'}",
    ));
    assert_clean(&rule("{attempts: 0}"));
    let vs = assert_clean(&rule("{attempts: 1}"));
    let r = vs.http[0].retries.as_ref().expect("retries");
    assert_eq!(
        r.retry_on_conditions().collect::<Vec<_>>(),
        DEFAULT_RETRY_ON.split(',').collect::<Vec<_>>()
    );
}

#[test]
fn faults_are_checked() {
    let rule = |fault: &str| format!("hosts: [r]\nhttp:\n- {ROUTE}\n  fault: {fault}");
    assert_error(&rule("{}"), "a delay, an abort or both");
    assert_error(
        &rule("{abort: {percentage: {value: 10}}}"),
        "one of httpStatus, grpcStatus, http2Error is required",
    );
    assert_error(
        &rule("{abort: {httpStatus: 500, grpcStatus: UNAVAILABLE}}"),
        "only one of httpStatus, grpcStatus, http2Error",
    );
    assert_error(&rule("{abort: {httpStatus: 100}}"), "httpStatus 100");
    assert_error(&rule("{abort: {grpcStatus: '14'}}"), "write the name");
    assert_error(
        &rule("{abort: {http2Error: REFUSED_STREAM}}"),
        "http2Error aborts are not supported",
    );
    assert_error(
        &rule("{abort: {httpStatus: 500, percentage: {value: 101}}}"),
        "between 0 and 100",
    );
    assert_error(
        &rule("{delay: {percentage: {value: 10}}}"),
        "`spec.http[0].fault.delay.fixedDelay`",
    );
    assert_error(
        &rule("{delay: {exponentialDelay: 1s}}"),
        "exponentialDelay is not supported",
    );
    assert_warning(
        &rule("{delay: {fixedDelay: 1s, percent: 10}}"),
        Code::DeprecatedField,
        "`percent` is deprecated",
    );
    assert_error(
        &rule("{delay: {fixedDelay: 1s, percent: 110}}"),
        "percent must be between 0 and 100",
    );
    let vs = assert_clean(&rule("{abort: {grpcStatus: UNAVAILABLE}}"));
    assert_eq!(
        vs.http[0]
            .fault
            .as_ref()
            .and_then(|f| f.abort.as_ref())
            .map(FaultAbort::fraction),
        Some(0.0)
    );
}

#[test]
fn mirrors_are_checked() {
    let base = format!("hosts: [r]\nhttp:\n- {ROUTE}");
    assert_error(
        &format!("{base}\n  mirror: {{host: a}}\n  mirrors:\n  - destination: {{host: b}}"),
        "only one of mirror, mirrors",
    );
    assert_error(
        &format!("{base}\n  mirrors:\n  - percentage: {{value: 5}}"),
        "`spec.http[0].mirrors[0].destination`",
    );
    assert_warning(
        &format!("{base}\n  mirror: {{host: a}}\n  mirrorPercent: 50"),
        Code::DeprecatedField,
        "mirrorPercent",
    );
    assert_error(
        &format!("{base}\n  mirror: {{host: a}}\n  mirrorPercent: 150"),
        "at most 100",
    );
    assert_error(
        &format!("{base}\n  mirror: {{host: a}}\n  mirrorPercentage: {{value: -1}}"),
        "between 0 and 100",
    );
    let vs = assert_clean(&format!("{base}\n  mirror: {{host: a}}"));
    assert_eq!(vs.http[0].effective_mirrors()[0].1, 100.0);
}

#[test]
fn cors_is_checked() {
    let rule = |cors: &str| format!("hosts: [r]\nhttp:\n- {ROUTE}\n  corsPolicy: {cors}");
    assert_warning(
        &rule("{allowOrigin: ['https://a.com']}"),
        Code::DeprecatedField,
        "allowOrigin",
    );
    assert_error(
        &rule("{allowOrigins: [{exact: ''}]}"),
        "allowed origin needs",
    );
    assert_error(&rule("{allowMethods: [get]}"), "upper case");
    assert_error(
        &rule("{allowHeaders: ['bad header']}"),
        "not a valid header name",
    );
    assert_error(&rule("{maxAge: 1500ms}"), "whole seconds");
    assert_clean(&rule(
        "{allowOrigins: [{prefix: 'https://'}], allowMethods: ['*'], allowHeaders: ['*'], unmatchedPreflights: FORWARD}",
    ));
}

#[test]
fn matches_are_checked() {
    let rule = |m: &str| format!("hosts: [r]\nhttp:\n- match:\n  - {m}\n  {ROUTE}");
    assert_error(
        &rule("headers: {'bad header': {exact: x}}"),
        "not a valid header name",
    );
    assert_clean(&rule(
        "headers: {X-Upper: {exact: x}, ':authority': {prefix: a}}",
    ));
    assert_error(
        &rule("headers: {x: {exact: a, prefix: b}}"),
        "only one of exact, prefix, regex",
    );
    assert_error(
        &rule("headers: {'@request.auth.claims.group': {exact: admin}}"),
        "JWT claims",
    );
    assert_clean(&format!(
        "hosts: [r]\ngateways: [gw]\nhttp:\n- match:\n  - headers: {{'@request.auth.claims.group': {{exact: admin}}}}\n  {ROUTE}"
    ));
    assert_error(&rule("port: 0"), "port number 0");
    assert_error(&rule("port: 70000"), "port number 70000");
    assert_error(&rule("sourceNamespace: Not_A_Namespace"), "sourceNamespace");
    assert_error(&rule("gateways: ['ns/']"), "cannot be empty");
    assert_warning(
        &rule("gateways: [gw.istio-system]"),
        Code::SchemaValidation,
        "\"istio-system/gw\"",
    );
    let (_, diags) = load(&rule("uri: {regex: '[a-'}"));
    let d = diags
        .iter()
        .find(|d| d.code == Code::InvalidRegex)
        .expect("regex error");
    assert_eq!(d.line, 9, "{d:#?}");
    assert_error(
        "hosts: [r]\nhttp:\n- match:\n  - uri: {regex: '/a.*'}\n  delegate: {name: d}",
        "regex matches are not supported in rules that delegate",
    );
    assert_error(
        "http:\n- match:\n  - headers: {x: {regex: 'a.*'}}\n  route:\n  - destination: {host: r}",
        "regex matches are not supported",
    );
}

#[test]
fn header_operations_are_checked() {
    let rule = |h: &str| format!("hosts: [r]\nhttp:\n- {ROUTE}\n  headers: {h}");
    assert_error(&rule("{request: {set: {':path': /x}}}"), "pseudo-headers");
    assert_error(
        &rule("{response: {set: {host: x}}}"),
        "`host` header cannot be changed",
    );
    assert_error(
        &rule("{request: {remove: [host]}}"),
        "`host` header cannot be changed",
    );
    assert_error(
        &rule("{request: {add: {x-a: \"a\\nb\"}}}"),
        "control characters",
    );
    assert_clean(&rule("{request: {set: {':authority': a.example.com}}}"));
}

#[test]
fn tls_and_tcp_rules_are_checked() {
    let tls = |m: &str| {
        format!(
            "hosts: ['*.example.com']\ntls:\n- match:\n  - {m}\n  route:\n  - destination: {{host: b}}"
        )
    };
    assert_clean(&tls("sniHosts: [a.example.com]"));
    assert_error(&tls("port: 443"), "`spec.tls[0].match[0].sniHosts`");
    assert_error(
        &tls("sniHosts: [a.other.com]"),
        "not covered by any of the VirtualService's hosts",
    );
    assert_error(
        &tls("sniHosts: [a.example.com]\n    destinationSubnets: [10.0.0.0/40]"),
        "prefix length",
    );
    assert_warning(
        &tls("sniHosts: [10.0.0.1]"),
        Code::SchemaValidation,
        "IP address",
    );
    assert_error(
        "hosts: [a]\ntls:\n- route:\n  - destination: {host: b}",
        "needs at least one match",
    );
    assert_error(
        "hosts: [a]\ntls:\n- match:\n  - sniHosts: [a]",
        "a TLS rule needs at least one route",
    );
    assert_error(
        "hosts: [a]\ntcp:\n- match:\n  - port: 27017",
        "a TCP rule needs at least one route",
    );
    assert_error(
        "hosts: [a]\ntcp:\n- match:\n  - sourceSubnet: nope\n  route:\n  - destination: {host: b}",
        "\"nope\"",
    );
    assert_error(
        "hosts: [a]\ntcp:\n- route:\n  - destination: {host: b}\n    weight: 200",
        "got 200",
    );
}

#[test]
fn durations_and_export_to_are_checked() {
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {ROUTE}\n  timeout: 0s"),
        "at least 1ms",
    );
    assert_error(
        &format!("hosts: [r]\nhttp:\n- {ROUTE}\n  timeout: 1500us"),
        "whole number of milliseconds",
    );
    assert_error(
        &format!("hosts: [r]\nexportTo: ['.', '.']\nhttp:\n- {ROUTE}"),
        "duplicate exportTo",
    );
    assert_error(
        &format!("hosts: [r]\nexportTo: ['*', ns]\nhttp:\n- {ROUTE}"),
        "cannot be combined",
    );
    assert_error(
        &format!("hosts: [r]\nexportTo: ['~']\nhttp:\n- {ROUTE}"),
        "only allowed on ServiceEntry",
    );
}

#[test]
fn unknown_fields_are_reported_with_a_position() {
    let (vs, diags) = load(&format!(
        "hosts: [r]\nhttp:\n- {ROUTE}\n  retires: {{attempts: 3}}"
    ));
    assert!(vs.is_some());
    let d = diags
        .iter()
        .find(|d| d.code == Code::UnknownField)
        .expect("unknown field");
    assert_eq!(d.line, 11, "{d:#?}");
}
