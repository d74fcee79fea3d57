use std::collections::HashMap;

use super::*;

fn from(pairs: &[(&str, &str)]) -> Result<Outbound, ConfigError> {
    let map: HashMap<&str, &str> = pairs.iter().copied().collect();
    Outbound::from_env(&|name: &str| map.get(name).map(|v| (*v).to_owned()))
}

fn uri(s: &str) -> Uri {
    s.parse().expect("uri")
}

fn proxy_of(outbound: &Outbound, url: &str) -> Option<String> {
    outbound.proxy_for(&uri(url)).map(ToString::to_string)
}

#[test]
fn no_variables_means_direct() {
    let outbound = from(&[]).expect("valid");
    assert!(outbound.proxy().is_none());
    assert_eq!(proxy_of(&outbound, "http://inventory:8080/"), None);
}

#[test]
fn proxy_variables_and_their_precedence() {
    let outbound = from(&[("HTTP_PROXY", "http://127.0.0.1:15001/")]).expect("valid");
    assert_eq!(
        proxy_of(&outbound, "http://inventory:8080/").as_deref(),
        Some("127.0.0.1:15001")
    );
    let outbound = from(&[
        ("HTTP_PROXY", "upper:1"),
        ("http_proxy", "lower:2"),
        ("TRELLIS_OUTBOUND", "127.0.0.1:15001"),
    ])
    .expect("valid");
    assert_eq!(
        outbound.proxy().map(ToString::to_string).as_deref(),
        Some("127.0.0.1:15001")
    );
    let outbound = from(&[("HTTP_PROXY", "upper:1"), ("http_proxy", "lower:2")]).expect("valid");
    assert_eq!(
        outbound.proxy().map(ToString::to_string).as_deref(),
        Some("lower:2")
    );
    let outbound = from(&[("HTTP_PROXY", "upper:1"), ("TRELLIS_OUTBOUND", "direct")]).expect("ok");
    assert!(outbound.proxy().is_none());
    let outbound = from(&[("HTTP_PROXY", "http://proxy.corp")]).expect("valid");
    assert_eq!(
        outbound.proxy().map(ToString::to_string).as_deref(),
        Some("proxy.corp:80")
    );
}

#[test]
fn bad_proxy_values_name_the_variable() {
    for (var, value) in [
        ("TRELLIS_OUTBOUND", "https://127.0.0.1:15001"),
        ("HTTP_PROXY", "http://user:pw@proxy:3128"),
        ("http_proxy", "not a proxy"),
    ] {
        let e = from(&[(var, value)]).expect_err(value);
        assert_eq!(e.setting, var);
    }
}

#[test]
fn no_proxy_bypasses_matching_hosts() {
    let outbound = from(&[
        ("HTTP_PROXY", "127.0.0.1:15001"),
        (
            "NO_PROXY",
            "localhost, .internal.example, *.corp, 10.0.0.1, payments:9090, [::1]",
        ),
    ])
    .expect("valid");
    let direct = [
        "http://localhost:8080/",
        "http://internal.example/",
        "http://api.internal.example/",
        "http://a.b.corp/",
        "http://10.0.0.1:8080/",
        "http://payments:9090/",
        "http://[::1]:8080/",
        "http://LOCALHOST./",
    ];
    for url in direct {
        assert_eq!(proxy_of(&outbound, url), None, "{url}");
    }
    let proxied = [
        "http://inventory:8080/",
        "http://payments:8080/",
        "http://notlocalhost/",
        "http://example/",
        "http://10.0.0.10/",
    ];
    for url in proxied {
        assert!(proxy_of(&outbound, url).is_some(), "{url}");
    }
}

#[test]
fn no_proxy_star_and_lower_case_variable() {
    let outbound = from(&[("http_proxy", "p:1"), ("no_proxy", "*")]).expect("valid");
    assert_eq!(proxy_of(&outbound, "http://anything:8080/"), None);
    assert_eq!(NoProxy::parse(" , ,"), NoProxy::default());
    assert!(!NoProxy::parse("").matches("localhost", 80));
}
