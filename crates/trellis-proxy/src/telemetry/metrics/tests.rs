use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::*;
use crate::telemetry::flags::{ResponseFlag, ResponseFlags};

fn peer(source: &str, destination: &str) -> PeerLabels {
    PeerLabels {
        source_workload: source.to_owned(),
        source_workload_namespace: "default".to_owned(),
        source_principal: format!("spiffe://cluster.local/ns/default/sa/{source}"),
        source_app: source.to_owned(),
        source_version: "v1".to_owned(),
        destination_workload: format!("{destination}-v1"),
        destination_workload_namespace: "default".to_owned(),
        destination_principal: format!("spiffe://cluster.local/ns/default/sa/{destination}"),
        destination_app: destination.to_owned(),
        destination_version: "v1".to_owned(),
        destination_service: format!("{destination}.default.svc.cluster.local"),
        destination_service_name: destination.to_owned(),
        destination_service_namespace: "default".to_owned(),
    }
}

fn http_set(source: &str, destination: &str) -> LabelSet {
    LabelSet::new(
        peer(source, destination),
        Reporter::Source,
        RequestProtocol::Http,
        SecurityPolicy::MutualTls,
    )
}

/// The label text Istio would print for `peer(source, destination)`.
fn peer_text(source: &str, destination: &str) -> String {
    format!(
        "source_workload=\"{source}\",source_workload_namespace=\"default\",\
         source_principal=\"spiffe://cluster.local/ns/default/sa/{source}\",\
         source_app=\"{source}\",source_version=\"v1\",\
         destination_workload=\"{destination}-v1\",destination_workload_namespace=\"default\",\
         destination_principal=\"spiffe://cluster.local/ns/default/sa/{destination}\",\
         destination_app=\"{destination}\",destination_version=\"v1\",\
         destination_service=\"{destination}.default.svc.cluster.local\",\
         destination_service_name=\"{destination}\",destination_service_namespace=\"default\""
    )
}

const OVERFLOW_PEER: &str = "source_workload=\"overflow\",source_workload_namespace=\"overflow\",\
source_principal=\"overflow\",source_app=\"overflow\",source_version=\"overflow\",\
destination_workload=\"overflow\",destination_workload_namespace=\"overflow\",\
destination_principal=\"overflow\",destination_app=\"overflow\",destination_version=\"overflow\",\
destination_service=\"overflow\",destination_service_name=\"overflow\",\
destination_service_namespace=\"overflow\"";

fn outcome(code: u16, millis_x10: u64, req: u64, resp: u64) -> RequestOutcome {
    RequestOutcome {
        response_code: code,
        grpc_status: None,
        flags: ResponseFlags::default(),
        duration: Duration::from_micros(millis_x10 * 100),
        request_bytes: req,
        response_bytes: resp,
    }
}

pub(super) fn encoded(m: &ProxyMetrics) -> String {
    let mut out = String::new();
    m.encode(&mut out);
    out
}

pub(super) fn assert_lines(out: &str, expected: &[String]) {
    for line in expected {
        assert!(
            out.lines().any(|l| l == line),
            "missing line:\n{line}\nin:\n{out}"
        );
    }
}

/// The value of the single sample whose name and labels are exactly `series`.
fn value(out: &str, series: &str) -> u64 {
    let prefix = format!("{series} ");
    let line = out.lines().find(|l| l.starts_with(&prefix));
    let line = line.unwrap_or_else(|| panic!("no sample {series} in:\n{out}"));
    line[prefix.len()..].parse().expect("integer sample")
}

#[test]
fn requests_encode_istio_lines_and_buckets() {
    let m = ProxyMetrics::default();
    let set = http_set("frontend", "reviews");
    // 0.3 ms and 7 ms; request sizes 50 and 5000; response sizes 120 and 0.
    m.record_request(&set, &outcome(200, 3, 50, 5000));
    m.record_request(&set, &outcome(200, 70, 120, 0));
    let mut failed = outcome(503, 20_000, 10, 95);
    failed.flags = ResponseFlag::UpstreamOverflow.into();
    m.record_request(&set, &failed);

    let p = peer_text("frontend", "reviews");
    let ok = format!(
        "reporter=\"source\",{p},request_protocol=\"http\",response_code=\"200\",\
         grpc_response_status=\"\",response_flags=\"-\",connection_security_policy=\"mutual_tls\""
    );
    let uo = format!(
        "reporter=\"source\",{p},request_protocol=\"http\",response_code=\"503\",\
         grpc_response_status=\"\",response_flags=\"UO\",connection_security_policy=\"mutual_tls\""
    );
    let d = "istio_request_duration_milliseconds";
    let mut expected = vec![
        format!("istio_requests_total{{{ok}}} 2"),
        format!("istio_requests_total{{{uo}}} 1"),
        format!("{d}_sum{{{ok}}} 7.3"),
        format!("{d}_count{{{ok}}} 2"),
        format!("{d}_sum{{{uo}}} 2000.0"),
        format!("{d}_count{{{uo}}} 1"),
        format!("{d}_bucket{{le=\"1000.0\",{uo}}} 0"),
        format!("{d}_bucket{{le=\"2500.0\",{uo}}} 1"),
        format!("istio_request_bytes_sum{{{ok}}} 170.0"),
        format!("istio_response_bytes_sum{{{ok}}} 5000.0"),
        format!("istio_response_bytes_count{{{ok}}} 2"),
    ];
    // Cumulative buckets: 0.3 ms in le=0.5, 7 ms in le=10.
    for (le, n) in [
        ("0.5", 1),
        ("1.0", 1),
        ("5.0", 1),
        ("10.0", 2),
        ("3600000.0", 2),
    ] {
        expected.push(format!("{d}_bucket{{le=\"{le}\",{ok}}} {n}"));
    }
    expected.push(format!("{d}_bucket{{le=\"+Inf\",{ok}}} 2"));
    // Request bytes 50 and 120 both land in le=1000; response 0 in le=1, 5000 in le=10000.
    for (le, n) in [("100.0", 1), ("1000.0", 2), ("+Inf", 2)] {
        expected.push(format!(
            "istio_request_bytes_bucket{{le=\"{le}\",{ok}}} {n}"
        ));
    }
    for (le, n) in [("1.0", 1), ("1000.0", 1), ("10000.0", 2)] {
        expected.push(format!(
            "istio_response_bytes_bucket{{le=\"{le}\",{ok}}} {n}"
        ));
    }
    let out = encoded(&m);
    assert_lines(&out, &expected);
    assert!(out.contains("# TYPE istio_request_duration_milliseconds histogram"));
    assert!(out.contains("# TYPE istio_requests counter"));
    assert!(out.ends_with("# EOF\n"));
    // Istio's 19 duration buckets plus +Inf, and 8 + 1 byte buckets, per series.
    let buckets = |name: &str| {
        let labels = format!(",{ok}}}");
        out.lines()
            .filter(|l| l.starts_with(name) && l.contains(&labels))
            .count()
    };
    assert_eq!(buckets(&format!("{d}_bucket{{le=")), 20);
    assert_eq!(buckets("istio_request_bytes_bucket{le="), 9);
}

#[test]
fn grpc_status_and_equal_label_sets_share_a_series() {
    let m = ProxyMetrics::default();
    let a = LabelSet::new(
        peer("web", "api"),
        Reporter::Destination,
        RequestProtocol::Grpc,
        SecurityPolicy::None,
    );
    let b = LabelSet::new(
        peer("web", "api"),
        Reporter::Destination,
        RequestProtocol::Grpc,
        SecurityPolicy::None,
    );
    let mut o = outcome(200, 10, 1, 1);
    o.grpc_status = Some(14);
    m.record_request(&a, &o);
    m.record_request(&b, &o);
    let line = format!(
        "istio_requests_total{{reporter=\"destination\",{},request_protocol=\"grpc\",\
         response_code=\"200\",grpc_response_status=\"14\",response_flags=\"-\",\
         connection_security_policy=\"none\"}} 2",
        peer_text("web", "api")
    );
    assert_lines(&encoded(&m), &[line]);
}

#[test]
fn tcp_connections_count_bytes_and_closes_with_flags() {
    let m = ProxyMetrics::default();
    let set = LabelSet::new(
        peer("client", "db"),
        Reporter::Source,
        RequestProtocol::Tcp,
        SecurityPolicy::MutualTls,
    );
    let first = m.tcp_opened(&set);
    first.sent(100);
    first.received(40);
    first.sent(23);
    drop(first); // counts a clean close
    let second = m.tcp_opened(&set);
    second.close(ResponseFlag::UpstreamConnectionFailure.into());

    let base = format!(
        "reporter=\"source\",{},request_protocol=\"tcp\"",
        peer_text("client", "db")
    );
    let clean = format!("{base},response_flags=\"-\",connection_security_policy=\"mutual_tls\"");
    let uf = format!("{base},response_flags=\"UF\",connection_security_policy=\"mutual_tls\"");
    assert_lines(
        &encoded(&m),
        &[
            format!("istio_tcp_sent_bytes_total{{{clean}}} 123"),
            format!("istio_tcp_received_bytes_total{{{clean}}} 40"),
            format!("istio_tcp_connections_opened_total{{{clean}}} 2"),
            format!("istio_tcp_connections_closed_total{{{clean}}} 1"),
            format!("istio_tcp_connections_closed_total{{{uf}}} 1"),
            format!("istio_tcp_connections_opened_total{{{uf}}} 0"),
        ],
    );
}

#[test]
fn fourth_label_set_goes_to_overflow_when_bound_is_three() {
    let m = ProxyMetrics::new(MetricsConfig {
        max_series_per_family: 3,
        ..MetricsConfig::default()
    });
    for dest in ["a", "b", "c", "d", "d", "e"] {
        m.record_request(&http_set("frontend", dest), &outcome(200, 10, 1, 1));
    }
    let tail = "request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\",\
                response_flags=\"-\",connection_security_policy=\"mutual_tls\"";
    let out = encoded(&m);
    let requests = |p: &str| {
        value(
            &out,
            &format!("istio_requests_total{{reporter=\"source\",{p},{tail}}}"),
        )
    };
    for dest in ["a", "b", "c"] {
        assert_eq!(requests(&peer_text("frontend", dest)), 1);
    }
    assert!(!out.contains("destination_app=\"d\""), "{out}");
    assert!(!out.contains("destination_app=\"e\""), "{out}");
    assert_eq!(requests(OVERFLOW_PEER), 3);
    assert_eq!(
        value(&out, "trellis_metrics_overflow_total{group=\"http\"}"),
        3
    );
    assert_eq!(
        value(&out, "trellis_metrics_overflow_total{group=\"tcp\"}"),
        0
    );
    // A known label set keeps recording into its own series.
    m.record_request(&http_set("frontend", "a"), &outcome(200, 10, 1, 1));
    let out = encoded(&m);
    assert_eq!(
        value(&out, "trellis_metrics_overflow_total{group=\"http\"}"),
        3
    );
}

#[test]
fn eight_threads_record_exact_totals() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 5_000;
    // Bound 2 with 4 label sets: two get series, two share the overflow series.
    let m = Arc::new(ProxyMetrics::new(MetricsConfig {
        max_series_per_family: 2,
        ..MetricsConfig::default()
    }));
    let sets: Arc<Vec<LabelSet>> =
        Arc::new(["a", "b", "c", "d"].map(|d| http_set("web", d)).into());
    let tcp_set = LabelSet::new(
        peer("web", "db"),
        Reporter::Source,
        RequestProtocol::Tcp,
        SecurityPolicy::None,
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (m, sets, tcp_set) = (Arc::clone(&m), Arc::clone(&sets), tcp_set.clone());
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let set = &sets[((t + i) % 4) as usize];
                    m.record_request(set, &outcome(200, i % 3 + 1, 7, 11));
                    m.record_retry();
                }
                let conn = m.tcp_opened(&tcp_set);
                for _ in 0..PER_THREAD {
                    conn.sent(3);
                    conn.received(1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("recording thread panicked");
    }
    let out = encoded(&m);
    let total: u64 = out
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, THREADS * PER_THREAD);
    let overflowed = value(&out, "trellis_metrics_overflow_total{group=\"http\"}");
    let tail = "request_protocol=\"http\",response_code=\"200\",grpc_response_status=\"\",\
                response_flags=\"-\",connection_security_policy=\"mutual_tls\"";
    let series = |p: &str| format!("{{reporter=\"source\",{p},{tail}}}");
    // Every record that did not get its own series was counted as overflowed.
    assert_eq!(
        value(
            &out,
            &format!("istio_requests_total{}", series(OVERFLOW_PEER))
        ),
        overflowed
    );
    assert_eq!(overflowed, THREADS * PER_THREAD / 2);
    // Bytes: exact sums over all series.
    let sums: u64 = out
        .lines()
        .filter(|l| l.starts_with("istio_request_bytes_sum{"))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        })
        .sum();
    assert_eq!(sums, 7 * THREADS * PER_THREAD);
    let tcp = format!(
        "{{reporter=\"source\",{},request_protocol=\"tcp\",response_flags=\"-\",\
         connection_security_policy=\"none\"}}",
        peer_text("web", "db")
    );
    assert_eq!(
        value(&out, &format!("istio_tcp_sent_bytes_total{tcp}")),
        3 * THREADS * PER_THREAD
    );
    assert_eq!(
        value(&out, &format!("istio_tcp_received_bytes_total{tcp}")),
        THREADS * PER_THREAD
    );
    assert_eq!(
        value(&out, &format!("istio_tcp_connections_closed_total{tcp}")),
        THREADS
    );
    assert_eq!(value(&out, "trellis_retries_total"), THREADS * PER_THREAD);
}

#[test]
fn own_counters() {
    let m = ProxyMetrics::default();
    m.record_upstream_overflow();
    m.record_outlier_ejection();
    m.record_outlier_ejection();
    m.record_config_reload(true);
    m.record_config_reload(false);
    m.record_config_reload(true);
    let out = encoded(&m);
    assert_eq!(value(&out, "trellis_upstream_overflows_total"), 1);
    assert_eq!(value(&out, "trellis_outlier_ejections_total"), 2);
    assert_eq!(value(&out, "trellis_retries_total"), 0);
    assert_eq!(
        value(&out, "trellis_config_reloads_total{result=\"accepted\"}"),
        2
    );
    assert_eq!(
        value(&out, "trellis_config_reloads_total{result=\"rejected\"}"),
        1
    );
}
