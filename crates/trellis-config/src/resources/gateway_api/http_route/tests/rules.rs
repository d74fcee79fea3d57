//! Each HTTPRoute validation rule fires on a bad variant of the full example.

use super::*;

#[test]
fn path_rules() {
    assert_one(&with("value: /api}", "value: api}"), "must start with '/'");
    assert_one(
        &with("value: /api}", "value: /a//b}"),
        "must not contain \"//\"",
    );
    assert_one(
        &with("value: /old}", "value: /old/..}"),
        "must not end with",
    );
    assert_one(
        &with("value: /old}", "value: \"/a b\"}"),
        "not allowed in a path",
    );
    let d = with("\"/legacy/[0-9]+\"", "\"/legacy/[0-9+\"");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, Code::InvalidRegex);
    assert_eq!((d[0].line, d[0].column), (62, 46), "{d:?}");
}

#[test]
fn header_and_query_rules() {
    let d = with("\".*Firefox.*\"", "\"(Firefox\"");
    assert!(d.len() == 1 && d[0].code == Code::InvalidRegex, "{d:?}");
    assert_one(
        &with("name: user-agent", "name: \"user agent\""),
        "not a valid HTTP header name",
    );
    assert_one(
        &with("{name: debug, value: \"1\"}", "{name: debug, value: \"\"}"),
        "value",
    );
    assert_one(
        &with(
            "{name: x-env, value: prod}",
            "{name: \"x:env\", value: prod}",
        ),
        "not a valid HTTP header name",
    );
    assert_one(
        &with(
            "add: [{name: x-trace",
            "add: [{name: X-Trace, value: a}, {name: x-trace",
        ),
        "already listed",
    );
}

#[test]
fn backend_rules() {
    assert_one(
        &with("weight: 95", "weight: 1000001"),
        "weight must be between 0 and 1000000",
    );
    assert_one(
        &with(
            "{name: api-v2, port: 8080, weight: 5}",
            "{name: api-v2, weight: 5}",
        ),
        "needs a `port`",
    );
    assert_one(
        &with(
            "{name: api-v2, port: 8080, weight: 5}",
            "{name: api-v2, port: 0}",
        ),
        "port must be between 1 and 65535",
    );
    assert_one(
        &with("name: api-v1\n", "kind: Service\n      name: \"\"\n"),
        "missing required field",
    );
}

#[test]
fn filter_rules() {
    let d = with(
        "- type: ResponseHeaderModifier",
        "- type: RequestHeaderModifier",
    );
    assert!(
        d.iter().any(|d| d
            .message
            .contains("RequestHeaderModifier filter cannot be repeated")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("needs `requestHeaderModifier`")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("`responseHeaderModifier` is set")),
        "{d:?}"
    );
    assert_eq!(d.len(), 3, "{d:?}");
    let d = with(
        "    - type: CORS\n",
        "    - type: RequestRedirect\n      requestRedirect: {port: 80}\n    - type: CORS\n",
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("RequestRedirect and URLRewrite")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("remove `backendRefs` or the redirect")),
        "{d:?}"
    );
    assert_one(
        &with(
            "fraction: {numerator: 1, denominator: 10}",
            "fraction: {numerator: 11, denominator: 10}",
        ),
        "less than or equal",
    );
    assert_one(
        &with(
            "fraction: {numerator: 1, denominator: 10}",
            "percent: 5\n        fraction: {numerator: 1}",
        ),
        "only one of percent, fraction",
    );
    assert_one(
        &with("statusCode: 301", "statusCode: 304"),
        "statusCode must be one of",
    );
    assert_one(
        &with("allowMethods: [GET, POST]", "allowMethods: [GET, \"*\"]"),
        "cannot contain '*'",
    );
    assert_one(
        &with("\"https://*.example.com\"", "\"example.com\""),
        "not a valid origin",
    );
    let d = with(
        "type: ReplaceFullPath, replaceFullPath",
        "type: ReplacePrefixMatch, replaceFullPath",
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("needs `replacePrefixMatch`")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|d| d.message.contains("only allowed with type ReplaceFullPath")),
        "{d:?}"
    );
    assert_eq!(d.len(), 2, "{d:?}");
    assert_one(
        &with("extensionRef: {group: example.com, ", "extensionRef: {"),
        "core API group",
    );
}

#[test]
fn prefix_rewrite_needs_one_path_prefix_match() {
    let d = with(
        "    - path: {type: PathPrefix, value: /api}\n",
        "    - path: {type: Exact, value: /api}\n",
    );
    assert_one(&d, "replacePrefixMatch needs exactly one match");
}

#[test]
fn rule_level_rules() {
    assert_one(
        &with("backendRequest: 2500ms", "backendRequest: 11s"),
        "cannot be longer than the request timeout",
    );
    assert_one(
        &with("codes: [502, 503]", "codes: [302, 503]"),
        "between 400 and 599",
    );
    assert_one(
        &with("backoff: 100ms", "backoff: 100us"),
        "millisecond precision",
    );
    assert_one(
        &with(
            "cookieConfig: {lifetimeType: Permanent}",
            "header: {name: x-session}",
        ),
        "only be set with type Header",
    );
    assert_one(
        &with(
            "  - matches:\n    - path: {type: Exact",
            "  - name: api\n    matches:\n    - path: {type: Exact",
        ),
        "must be unique",
    );
    assert_one(
        &with("\"*.shop.example.com\"", "\"shop.*.example.com\""),
        "not a valid hostname",
    );
}

#[test]
fn unknown_enum_values_are_reported_by_the_loader() {
    let d = with("{type: Exact, value: /old}", "{type: Prefix, value: /old}");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].message.contains("Prefix"), "{d:?}");
    assert_eq!(d[0].line, 61);
}

#[test]
fn list_limits() {
    let rule = "  - backendRefs: [{name: a, port: 80}]\n";
    let head =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: big}\nspec:\n";
    let parents: String = (0..33).map(|i| format!("  - {{name: gw{i}}}\n")).collect();
    let hosts: String = (0..17).map(|i| format!("  - h{i}.example.com\n")).collect();
    let text = format!(
        "{head}  parentRefs:\n{parents}  hostnames:\n{hosts}  rules:\n{}",
        rule.repeat(17)
    );
    let d = load(&text).diagnostics;
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    for needle in [
        "`parentRefs` has 33",
        "`hostnames` has 17",
        "`rules` has 17",
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(needle)),
            "{needle}: {msgs:?}"
        );
    }
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    let matches: String = (0..65)
        .map(|i| format!("    - path: {{value: /p{i}}}\n"))
        .collect();
    let backends: String = (0..17)
        .map(|i| format!("    - {{name: b{i}, port: 80}}\n"))
        .collect();
    let text = format!("{head}  rules:\n  - matches:\n{matches}    backendRefs:\n{backends}");
    let d = load(&text).diagnostics;
    let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("`matches` has 65")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("`backendRefs` has 17")),
        "{msgs:?}"
    );
    assert_eq!(msgs.len(), 2, "{msgs:?}");
}
