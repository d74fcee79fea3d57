use std::time::Duration;

use crate::telemetry::flags::{ResponseFlag, ResponseFlags};
use crate::telemetry::metrics::tests::{assert_lines, encoded};
use crate::telemetry::metrics::{
    LabelSet, MetricsConfig, MetricsNames, PeerLabels, ProxyMetrics, Reporter, RequestOutcome,
    RequestProtocol, SecurityPolicy,
};

fn metrics(names: MetricsNames) -> ProxyMetrics {
    ProxyMetrics::new(MetricsConfig {
        names,
        ..MetricsConfig::default()
    })
}

fn set(reporter: Reporter, security: SecurityPolicy) -> LabelSet {
    let peer = PeerLabels {
        source_workload: "frontend".into(),
        source_workload_namespace: "shop".into(),
        destination_workload: "orders-v1".into(),
        destination_service: "orders.shop.svc.cluster.local".into(),
        destination_service_name: "orders".into(),
        destination_service_namespace: "shop".into(),
        ..PeerLabels::default()
    };
    LabelSet::new(peer, reporter, RequestProtocol::Http, security)
}

fn outcome(code: u16, grpc_status: Option<u16>, micros: u64) -> RequestOutcome {
    RequestOutcome {
        response_code: code,
        grpc_status,
        flags: ResponseFlags::default(),
        duration: Duration::from_micros(micros),
        request_bytes: 0,
        response_bytes: 0,
    }
}

const OUTBOUND: &str = "direction=\"outbound\",authority=\"orders.shop.svc.cluster.local\",\
tls=\"no_identity\",no_tls_reason=\"not_provided_by_remote\",dst_namespace=\"shop\",\
dst_service=\"orders\",dst_deployment=\"orders-v1\"";

#[test]
fn outbound_requests_responses_and_latency() {
    let m = metrics(MetricsNames::Linkerd);
    let s = set(Reporter::Source, SecurityPolicy::None);
    m.record_request(&s, &outcome(200, None, 300));
    m.record_request(&s, &outcome(200, None, 7_000));
    m.record_request(&s, &outcome(503, None, 1_500));
    // gRPC answers 200 at the HTTP level; a non-OK status is still a failure.
    m.record_request(&s, &outcome(200, Some(14), 2_500));
    m.record_request(&s, &outcome(200, Some(0), 100));
    let out = encoded(&m);
    assert_unique_samples(&out);
    let p = OUTBOUND;
    let ok = format!("{p},status_code=\"200\",classification=\"success\"");
    let l = "response_latency_ms";
    assert_lines(
        &out,
        &[
            // One request counter per peer, whatever the status.
            format!("request_total{{{p}}} 5"),
            format!("response_total{{{ok}}} 2"),
            format!("response_total{{{p},status_code=\"503\",classification=\"failure\"}} 1"),
            format!(
                "response_total{{{p},status_code=\"200\",classification=\"failure\",grpc_status=\"14\"}} 1"
            ),
            format!("response_total{{{ok},grpc_status=\"0\"}} 1"),
            // Every 200, gRPC or not: 0.3, 7, 2.5 and 0.1 ms (Linkerd's first bucket is 1 ms).
            format!("{l}_bucket{{le=\"1.0\",{p},status_code=\"200\"}} 2"),
            format!("{l}_bucket{{le=\"5.0\",{p},status_code=\"200\"}} 3"),
            format!("{l}_bucket{{le=\"10.0\",{p},status_code=\"200\"}} 4"),
            format!("{l}_bucket{{le=\"50000.0\",{p},status_code=\"200\"}} 4"),
            format!("{l}_count{{{p},status_code=\"200\"}} 4"),
            format!("{l}_sum{{{p},status_code=\"200\"}} 9.9"),
            format!("{l}_bucket{{le=\"2.0\",{p},status_code=\"503\"}} 1"),
        ],
    );
    assert!(!out.contains("istio_"), "{out}");
}

#[test]
fn inbound_under_mutual_tls_has_no_destination_labels() {
    let m = metrics(MetricsNames::Linkerd);
    m.record_request(
        &set(Reporter::Destination, SecurityPolicy::MutualTls),
        &outcome(204, None, 10),
    );
    let p = "direction=\"inbound\",authority=\"orders.shop.svc.cluster.local\",tls=\"true\"";
    assert_lines(
        &encoded(&m),
        &[
            format!("request_total{{{p}}} 1"),
            format!("response_total{{{p},status_code=\"204\",classification=\"success\"}} 1"),
        ],
    );
}

#[test]
fn istio_only_exposes_no_linkerd_family_and_both_expose_both() {
    let istio = metrics(MetricsNames::Istio);
    let both = metrics(MetricsNames::Both);
    let s = set(Reporter::Source, SecurityPolicy::None);
    for m in [&istio, &both] {
        m.record_request(&s, &outcome(200, None, 100));
    }
    let out = encoded(&istio);
    assert!(out.contains("istio_requests_total{"), "{out}");
    for family in ["request", "response", "response_latency_ms", "tcp_open"] {
        assert!(
            !out.contains(&format!("# TYPE {family} ")),
            "{family} in {out}"
        );
    }
    let out = encoded(&both);
    assert!(out.contains("istio_requests_total{"), "{out}");
    assert_lines(&out, &[format!("request_total{{{OUTBOUND}}} 1")]);
}

#[test]
fn tcp_counters_merge_istio_flag_series() {
    let m = metrics(MetricsNames::Linkerd);
    let mut s = set(Reporter::Source, SecurityPolicy::None);
    s = LabelSet::new(
        s.peer().clone(),
        Reporter::Source,
        RequestProtocol::Tcp,
        SecurityPolicy::None,
    );
    let ok = m.tcp_opened(&s);
    ok.received(100);
    ok.sent(1_000);
    drop(ok);
    let failed = m.tcp_opened(&s);
    failed.close(ResponseFlag::UpstreamConnectionFailure.into());
    let p = format!("{OUTBOUND},peer=\"src\"");
    assert_lines(
        &encoded(&m),
        &[
            format!("tcp_open_total{{{p}}} 2"),
            format!("tcp_close_total{{{p}}} 2"),
            format!("tcp_read_bytes_total{{{p}}} 100"),
            format!("tcp_write_bytes_total{{{p}}} 1000"),
        ],
    );
}

/// Every sample (name and labels) appears once: a scrape holding two samples under one label set
/// is invalid, and Prometheus keeps only one of them.
fn assert_unique_samples(out: &str) {
    let mut seen = std::collections::HashSet::new();
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        assert!(seen.insert(series), "duplicate sample {series} in:\n{out}");
    }
}

#[test]
fn istio_series_that_differ_only_in_labels_linkerd_lacks_are_added_together() {
    let m = metrics(MetricsNames::Both);
    let v1 = set(Reporter::Source, SecurityPolicy::None);
    // Another version of the same deployment, and a locally generated 503 beside an upstream one:
    // distinct Istio series (destination_version, response_flags), one Linkerd series each.
    let mut peer = v1.peer().clone();
    peer.destination_version = "v2".into();
    let v2 = LabelSet::new(
        peer,
        Reporter::Source,
        RequestProtocol::Http,
        SecurityPolicy::None,
    );
    let local_503 = RequestOutcome {
        flags: ResponseFlag::UpstreamConnectionFailure.into(),
        ..outcome(503, None, 2_500)
    };
    m.record_request(&v1, &outcome(200, None, 300));
    m.record_request(&v2, &outcome(200, None, 7_000));
    m.record_request(&v1, &outcome(503, None, 1_500));
    m.record_request(&v1, &local_503);
    // gRPC statuses share one latency series per HTTP status.
    let grpc = LabelSet::new(
        v1.peer().clone(),
        Reporter::Source,
        RequestProtocol::Grpc,
        SecurityPolicy::None,
    );
    m.record_request(&grpc, &outcome(200, Some(0), 100));
    m.record_request(&grpc, &outcome(200, Some(14), 100));
    let out = encoded(&m);
    assert_unique_samples(&out);
    let p = OUTBOUND;
    let l = "response_latency_ms";
    assert_lines(
        &out,
        &[
            format!("request_total{{{p}}} 6"),
            format!("response_total{{{p},status_code=\"200\",classification=\"success\"}} 2"),
            format!("response_total{{{p},status_code=\"503\",classification=\"failure\"}} 2"),
            format!(
                "response_total{{{p},status_code=\"200\",classification=\"success\",grpc_status=\"0\"}} 1"
            ),
            format!(
                "response_total{{{p},status_code=\"200\",classification=\"failure\",grpc_status=\"14\"}} 1"
            ),
            format!("{l}_count{{{p},status_code=\"200\"}} 4"),
            format!("{l}_sum{{{p},status_code=\"200\"}} 7.5"),
            format!("{l}_bucket{{le=\"1.0\",{p},status_code=\"200\"}} 3"),
            format!("{l}_bucket{{le=\"10.0\",{p},status_code=\"200\"}} 4"),
            format!("{l}_count{{{p},status_code=\"503\"}} 2"),
            format!("{l}_bucket{{le=\"2.0\",{p},status_code=\"503\"}} 1"),
            format!("{l}_bucket{{le=\"3.0\",{p},status_code=\"503\"}} 2"),
        ],
    );
    // Istio's families keep them apart.
    let istio = out
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .count();
    assert_eq!(istio, 6, "{out}");
}

#[test]
fn inbound_requests_from_different_callers_share_one_series() {
    let m = metrics(MetricsNames::Linkerd);
    for caller in ["frontend", "checkout"] {
        let mut peer = set(Reporter::Destination, SecurityPolicy::None)
            .peer()
            .clone();
        peer.source_workload = caller.into();
        let s = LabelSet::new(
            peer,
            Reporter::Destination,
            RequestProtocol::Http,
            SecurityPolicy::None,
        );
        m.record_request(&s, &outcome(200, None, 10));
        let conn = m.tcp_opened(&s);
        conn.received(5);
    }
    let out = encoded(&m);
    assert_unique_samples(&out);
    let p = "direction=\"inbound\",authority=\"orders.shop.svc.cluster.local\",\
tls=\"no_identity\",no_tls_reason=\"not_provided_by_remote\"";
    assert_lines(
        &out,
        &[
            format!("request_total{{{p}}} 2"),
            format!("response_total{{{p},status_code=\"200\",classification=\"success\"}} 2"),
            format!("tcp_open_total{{{p},peer=\"src\"}} 2"),
            format!("tcp_read_bytes_total{{{p},peer=\"src\"}} 10"),
        ],
    );
}
