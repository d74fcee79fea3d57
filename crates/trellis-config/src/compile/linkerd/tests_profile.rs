//! Tests of ServiceProfile routes: conditions, response classes, retries, overrides, opaque
//! ports and client-side profiles.

use super::tests_routes::{SERVICES, compile, diags, fq, on, seeds, split, svc};
use crate::diag::Code;
use std::time::Duration;
use trellis_model::{
    Destination, HttpRoute, Protocol, ResponseClass, RetryBudget, RetryCondition, RouteAction,
    WeightedDestination,
};

#[test]
fn seed_order_service_profile_and_split() {
    let Some(text) = seeds(&["004-05", "004-06"]) else {
        return;
    };
    // As written the root service order-service is not in the input: both are reported.
    let c = compile(&text);
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    let at: Vec<(&str, u32, u32)> = missing
        .iter()
        .map(|d| (d.kind.as_str(), d.line, d.column))
        .collect();
    assert_eq!(
        at,
        vec![("ServiceProfile", 4, 9), ("TrafficSplit", 40, 12)],
        "{missing:#?}"
    );
    assert!(
        missing[0]
            .message
            .contains("ServiceProfile names no service in the input"),
        "{}",
        missing[0].message
    );
    assert!(c.mesh.services.iter().all(|s| s.http_routes.is_empty()));
    // With the root service present, the profile's routes forward to the split's backends.
    let root = "---\napiVersion: v1\nkind: Service\nmetadata: {name: order-service}\nspec:\n  selector: {app: order-service}\n  ports: [{port: 8080}]\n";
    let c = compile(&format!("{text}{root}"));
    assert!(
        diags(&c, Code::ReferencedResourceNotFound).is_empty(),
        "{:#?}",
        c.diagnostics
    );
    let order = svc(&c, &fq("order-service"));
    let to = split(&[("order-service-v1", 900_000), ("order-service-v2", 100_000)]);
    let names: Vec<Option<&str>> = order
        .http_routes
        .iter()
        .map(|r| r.name.as_deref())
        .collect();
    assert_eq!(names, vec![Some("list_orders"), Some("create_order"), None]);
    let list = &order.http_routes[0];
    assert_eq!(list.matches, vec![on("/orders", "GET")]);
    assert_eq!(
        list.response_classes,
        vec![
            ResponseClass {
                status_min: 200,
                status_max: 299,
                is_failure: false
            },
            ResponseClass {
                status_min: 500,
                status_max: 599,
                is_failure: true
            },
        ]
    );
    assert_eq!(
        (list.timeout, &list.retry),
        (Some(Duration::from_secs(3)), &None)
    );
    let create = &order.http_routes[1];
    assert_eq!(
        (create.timeout, &create.retry, &create.matches),
        (
            Some(Duration::from_secs(5)),
            &None,
            &vec![on("/orders", "POST")]
        )
    );
    assert!(order.http_routes.iter().all(|r| r.action == to));
    assert_eq!(
        order.tcp_routes.len(),
        1,
        "port 8080 is undeclared, so opaque connections are split too"
    );
    assert_eq!(order.tcp_routes[0].origin.kind, "ServiceProfile");
}

#[test]
fn retryable_routes_and_budget() {
    let profile = "---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {name: web.default.svc.cluster.local}\nspec:\n  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 3, ttl: 20s}\n  routes:\n  - name: get\n    condition: {method: GET, pathRegex: /items}\n    isRetryable: true\n  - name: lookup\n    condition: {pathRegex: /lookup/.*}\n    isRetryable: true\n    responseClasses:\n    - condition: {status: {min: 404, max: 404}}\n      isFailure: false\n    - condition: {status: {min: 400, max: 499}}\n      isFailure: true\n";
    let c = compile(&format!("{SERVICES}{profile}"));
    let web = svc(&c, &fq("web"));
    let get = web.http_routes[0].retry.as_ref().expect("retryable");
    assert_eq!(get.attempts, 3);
    assert!(
        get.retry_non_idempotent,
        "isRetryable declares every request of the route safe to retry"
    );
    assert_eq!(
        get.budget,
        Some(RetryBudget {
            retry_ratio: 0.5,
            min_retries_per_second: 3,
            ttl: Duration::from_secs(20)
        })
    );
    for cond in [
        RetryCondition::FiveXx,
        RetryCondition::ConnectFailure,
        RetryCondition::Reset,
        RetryCondition::Unavailable,
    ] {
        assert!(get.retry_on.conditions.contains(&cond), "{cond:?}");
    }
    assert_eq!(
        web.http_routes[0].timeout,
        Some(Duration::from_secs(10)),
        "Linkerd's default route timeout"
    );
    // Failures are what the response classes say: 4xx except 404, and 5xx by default.
    let lookup = web.http_routes[1].retry.as_ref().expect("retryable");
    assert!(
        lookup
            .retry_on
            .conditions
            .contains(&RetryCondition::RetriableStatusCodes)
    );
    assert!(!lookup.retry_on.conditions.contains(&RetryCondition::FiveXx));
    assert!(lookup.retry_on.retries_status(429) && lookup.retry_on.retries_status(503));
    assert!(!lookup.retry_on.retries_status(404) && !lookup.retry_on.retries_status(200));
    // Without a retryBudget, Linkerd's default budget applies.
    let c = compile(&format!(
        "{SERVICES}{}",
        profile.replace(
            "  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 3, ttl: 20s}\n",
            ""
        )
    ));
    let budget = svc(&c, &fq("web")).http_routes[0]
        .retry
        .as_ref()
        .and_then(|r| r.budget.clone());
    assert_eq!(budget, Some(RetryBudget::default()));
}

#[test]
fn conditions_any_all_not() {
    let profile = "---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {name: web.default.svc.cluster.local}\nspec:\n  routes:\n  - name: read\n    condition:\n      pathRegex: /books/[0-9]+\n      any: [{method: GET}, {method: HEAD}]\n  - name: not-admin\n    condition:\n      not: {pathRegex: /admin.*}\n  - name: never\n    condition:\n      all: [{method: GET}, {method: POST}]\n  - name: two-paths\n    condition:\n      all: [{pathRegex: /a}, {pathRegex: /b}]\n";
    let c = compile(&format!("{SERVICES}{profile}"));
    let web = svc(&c, &fq("web"));
    let names: Vec<Option<&str>> = web.http_routes.iter().map(|r| r.name.as_deref()).collect();
    assert_eq!(names, vec![Some("read"), None]);
    assert_eq!(
        web.http_routes[0].matches,
        vec![on("/books/[0-9]+", "GET"), on("/books/[0-9]+", "HEAD")]
    );
    let skipped: Vec<(u32, &str)> = diags(&c, Code::IgnoredSetting)
        .iter()
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
    assert!(
        skipped[0].0 == 26 && skipped[0].1.contains("\"not-admin\" is skipped: `not`"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].1.contains("\"never\" is skipped") && skipped[1].1.contains("never match"),
        "{skipped:?}"
    );
    assert!(
        skipped[2]
            .1
            .contains("\"two-paths\" is skipped: two path regexes"),
        "{skipped:?}"
    );
}

#[test]
fn dst_overrides_take_the_place_of_the_split() {
    let text = format!(
        "{SERVICES}---\napiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {{name: s}}\nspec:\n  service: web\n  backends: [{{service: web, weight: 50}}, {{service: web-v2, weight: 50}}]\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web.default.svc.cluster.local}}\nspec:\n  dstOverrides:\n  - {{authority: web-v2.default.svc.cluster.local:80, weight: 900m}}\n  - {{authority: web-v3.default.svc.cluster.local:80, weight: 100m}}\n"
    );
    let c = compile(&text);
    let web = svc(&c, &fq("web"));
    let dest = |h: &str, w| {
        WeightedDestination::new(
            Destination {
                host: fq(h),
                subset: None,
                port: Some(80),
            },
            w,
        )
    };
    assert_eq!(web.http_routes.len(), 1);
    assert_eq!(
        web.http_routes[0].action,
        RouteAction::Forward(vec![dest("web-v2", 900), dest("web-v3", 100)])
    );
    let ignored = diags(&c, Code::IgnoredSetting);
    assert!(
        ignored.len() == 1
            && ignored[0].kind == "TrafficSplit"
            && ignored[0].message.contains("dstOverrides"),
        "{ignored:#?}"
    );
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        missing.len() == 1
            && missing[0]
                .message
                .contains("web-v3.default.svc.cluster.local"),
        "{missing:#?}"
    );
}

#[test]
fn client_namespace_profile_comes_first_for_its_clients() {
    let text = format!(
        "{SERVICES}---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web.default.svc.cluster.local}}\nspec:\n  routes: [{{name: own, condition: {{method: GET}}}}]\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web.default.svc.cluster.local, namespace: shop}}\nspec:\n  routes: [{{name: shop, condition: {{method: GET}}, timeout: 2s}}]\n  opaquePorts: [80]\n"
    );
    let c = compile(&text);
    let web = svc(&c, &fq("web"));
    let view: Vec<(Option<&str>, Vec<Option<&str>>)> = web
        .http_routes
        .iter()
        .map(|r: &HttpRoute| {
            (
                r.name.as_deref(),
                r.matches
                    .iter()
                    .map(|m| m.source_namespace.as_deref())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            (Some("shop"), vec![Some("shop")]),
            (None, vec![Some("shop")]),
            (Some("own"), vec![None]),
            (None, vec![])
        ]
    );
    let ignored = diags(&c, Code::IgnoredSetting);
    assert!(
        ignored.len() == 1
            && ignored[0]
                .message
                .contains("opaquePorts of a profile outside"),
        "{ignored:#?}"
    );
    assert_eq!(web.port(80).map(|p| p.protocol), Some(Protocol::Http));
}

#[test]
fn opaque_ports_and_names_that_are_not_fqdns() {
    let text = format!(
        "{SERVICES}---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web-v2.default.svc.cluster.local}}\nspec:\n  opaquePorts: [80, 81]\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web}}\nspec:\n  routes: [{{name: r, condition: {{method: GET}}}}]\n"
    );
    let c = compile(&text);
    assert_eq!(
        svc(&c, &fq("web-v2")).port(80).map(|p| p.protocol),
        Some(Protocol::Tcp)
    );
    let ignored = diags(&c, Code::IgnoredSetting);
    assert!(
        ignored.len() == 1 && ignored[0].message.contains("has no port 81"),
        "{ignored:#?}"
    );
    let missing = diags(&c, Code::ReferencedResourceNotFound);
    assert!(
        missing.len() == 1
            && missing[0]
                .message
                .contains("so name it web.default.svc.cluster.local"),
        "{missing:#?}"
    );
    assert!(svc(&c, &fq("web")).http_routes.is_empty());
}

#[test]
fn bad_override_authority_keeps_the_request_port() {
    let text = format!(
        "{SERVICES}---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: web.default.svc.cluster.local}}\nspec:\n  dstOverrides:\n  - {{authority: 'web-v2:99999', weight: 1}}\n"
    );
    let c = compile(&text);
    let web = svc(&c, &fq("web"));
    let want = RouteAction::Forward(vec![WeightedDestination::new(
        Destination::new(fq("web-v2")),
        1000,
    )]);
    assert_eq!(web.http_routes[0].action, want);
    let ignored = diags(&c, Code::IgnoredSetting);
    assert!(
        ignored.len() == 1 && ignored[0].message.contains("no valid port"),
        "{ignored:#?}"
    );
}
