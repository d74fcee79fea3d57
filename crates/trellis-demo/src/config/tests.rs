use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn flags() -> DemoFlags {
    DemoFlags::default()
}

#[test]
fn defaults() {
    let config = config_from(&flags(), env(&[("HOSTNAME", "box")])).expect("valid");
    assert_eq!(config.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(config.service, "box");
    assert_eq!(config.version, "v1");
    assert_eq!(config.pod, format!("box-{}", std::process::id()));
    assert!(config.calls.is_empty());
    assert_eq!(config.call_timeout, Duration::from_secs(5));
    assert_eq!(config.fail_rate, 0.0);
    assert_eq!(config.fail_status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(config.latency, Duration::ZERO);
    assert!(config.outbound.proxy().is_none());
    let names: Vec<&str> = config.propagate.iter().map(HeaderName::as_str).collect();
    assert_eq!(&names[..TRACE_HEADERS.len()], TRACE_HEADERS);
    assert_eq!(&names[TRACE_HEADERS.len()..], DEFAULT_PROPAGATE);
}

#[test]
fn environment_fills_in_what_flags_leave_out() {
    let vars = env(&[
        ("PORT", "9001"),
        ("TRELLIS_DEMO_SERVICE", "orders"),
        ("TRELLIS_DEMO_VERSION", "v2"),
        ("TRELLIS_DEMO_POD", "orders-v2-abc"),
        (
            "TRELLIS_DEMO_CALLS",
            "http://inventory:8080/stock, payments:8080 ,",
        ),
        ("TRELLIS_DEMO_FAIL_RATE", "25%"),
        ("TRELLIS_DEMO_FAIL_STATUS", "503"),
        ("TRELLIS_DEMO_LATENCY", "1.5s"),
        ("TRELLIS_DEMO_LATENCY_JITTER", "100ms"),
        ("TRELLIS_DEMO_CALL_TIMEOUT", "1m"),
        ("TRELLIS_DEMO_PROPAGATE", "X-Tenant"),
    ]);
    let config = config_from(&flags(), vars).expect("valid");
    assert_eq!(config.listen.port(), 9001);
    assert_eq!(config.service, "orders");
    assert_eq!(config.version, "v2");
    assert_eq!(config.pod, "orders-v2-abc");
    let calls: Vec<String> = config.calls.iter().map(ToString::to_string).collect();
    assert_eq!(
        calls,
        ["http://inventory:8080/stock", "http://payments:8080/"]
    );
    assert_eq!(config.fail_rate, 0.25);
    assert_eq!(config.fail_status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(config.latency, Duration::from_millis(1500));
    assert_eq!(config.latency_jitter, Duration::from_millis(100));
    assert_eq!(config.call_timeout, Duration::from_secs(60));
    let last = config.propagate.last().map(HeaderName::as_str);
    assert_eq!(last, Some("x-tenant"));
    assert!(!config.propagate.iter().any(|h| h == "canary"));
}

#[test]
fn flags_win_over_environment() {
    let given = DemoFlags {
        listen: Some(":7000".into()),
        service: Some("frontend".into()),
        calls: vec!["http://orders:8080/orders".into()],
        fail_rate: Some("0".into()),
        ..flags()
    };
    let vars = env(&[
        ("PORT", "9001"),
        ("TRELLIS_DEMO_SERVICE", "orders"),
        ("TRELLIS_DEMO_CALLS", "http://elsewhere/"),
        ("TRELLIS_DEMO_FAIL_RATE", "not a number"),
    ]);
    let config = config_from(&given, vars).expect("valid");
    assert_eq!(config.listen, "0.0.0.0:7000".parse().expect("addr"));
    assert_eq!(config.service, "frontend");
    assert_eq!(config.calls.len(), 1);
    assert_eq!(config.fail_rate, 0.0);
}

#[test]
fn errors_name_the_flag_or_the_variable() {
    let bad_flag = DemoFlags {
        fail_rate: Some("2".into()),
        ..flags()
    };
    let e = config_from(&bad_flag, env(&[])).expect_err("refused");
    assert_eq!(e.setting, "--fail-rate");
    assert!(
        e.to_string().starts_with("invalid --fail-rate \"2\": "),
        "{e}"
    );

    let e = config_from(&flags(), env(&[("TRELLIS_DEMO_FAIL_RATE", "-0.1")])).expect_err("no");
    assert_eq!(e.setting, "TRELLIS_DEMO_FAIL_RATE");

    let cases: &[(&str, &str)] = &[
        ("PORT", "http"),
        ("TRELLIS_DEMO_FAIL_STATUS", "200"),
        ("TRELLIS_DEMO_FAIL_STATUS", "5xx"),
        ("TRELLIS_DEMO_LATENCY", "200"),
        ("TRELLIS_DEMO_LATENCY", "2 weeks"),
        ("TRELLIS_DEMO_LATENCY_JITTER", "-1s"),
        ("TRELLIS_DEMO_CALL_TIMEOUT", "0s"),
        ("TRELLIS_DEMO_CALLS", "https://secure/"),
        ("TRELLIS_DEMO_CALLS", "http:///nohost"),
        ("TRELLIS_DEMO_PROPAGATE", "bad header"),
        ("TRELLIS_OUTBOUND", "socks5://127.0.0.1:1080"),
        ("HTTP_PROXY", "http://user:secret@proxy:3128"),
    ];
    for (var, value) in cases {
        let e = config_from(&flags(), env(&[(var, value)])).expect_err(value);
        assert_eq!(e.setting, *var, "{e}");
        assert!(e.to_string().contains(var), "{e}");
    }
    let bad = [
        DemoFlags {
            listen: Some("nowhere".into()),
            ..flags()
        },
        DemoFlags {
            service: Some(String::new()),
            ..flags()
        },
        DemoFlags {
            calls: vec!["http://ok/".into(), "ftp://files/".into()],
            ..flags()
        },
    ];
    for given in bad {
        assert!(config_from(&given, env(&[])).is_err(), "{given:?}");
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let vars = env(&[("TRELLIS_DEMO_VERSION", ""), ("PORT", " ")]);
    let config = config_from(&flags(), vars).expect("valid");
    assert_eq!(config.version, "v1");
    assert_eq!(config.listen.port(), 8080);
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    assert_eq!(parse::duration("100ms"), Ok(ms(100)));
    assert_eq!(parse::duration("2s"), Ok(ms(2000)));
    assert_eq!(parse::duration("1.5s"), Ok(ms(1500)));
    assert_eq!(parse::duration("1m"), Ok(ms(60_000)));
    assert_eq!(parse::duration("0"), Ok(Duration::ZERO));
    for bad in ["", "s", "5", "1.2.3s", "5 parsecs", "1e400s", "NaNs"] {
        assert!(parse::duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn listen_addresses() {
    let addr = |s: &str| parse::listen_addr(s).map(|a| a.to_string());
    assert_eq!(addr(":8080").as_deref(), Ok("0.0.0.0:8080"));
    assert_eq!(addr("localhost:0").as_deref(), Ok("127.0.0.1:0"));
    assert_eq!(addr("[::1]:80").as_deref(), Ok("[::1]:80"));
    assert!(addr("8080").is_err());
    assert!(addr(":99999").is_err());
}
