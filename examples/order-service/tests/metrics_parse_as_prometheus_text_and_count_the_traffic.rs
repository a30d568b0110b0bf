//! `GET /metrics` is Prometheus text (every line parses), and its counters move with the
//! traffic: the HTTP request counter by route template and status, the latency histogram,
//! and the framework's command counter and gauges.

mod support;

use cqrs_core::telemetry::metrics;
use reqwest::StatusCode;
use serde_json::json;
use support::prometheus::{parse, value, Sample};
use support::{client, config, send, TestService};

async fn scrape(http: &reqwest::Client, service: &TestService) -> Vec<Sample> {
    let response = http
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    parse(&response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_counters_move_with_the_traffic() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    let placed = [
        ("route", "/orders/{id}"),
        ("method", "POST"),
        ("status", "201"),
    ];
    let rejected = [
        ("route", "/orders/{id}"),
        ("method", "POST"),
        ("status", "422"),
    ];

    let before = scrape(&http, &service).await;
    for id in 1..=3 {
        let body = json!({ "customer": "alice", "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }] });
        let (status, _, _) =
            send(http.post(service.url(&format!("/orders/{id}"))).json(&body)).await;
        assert_eq!(status, StatusCode::CREATED);
        if id == 3 {
            let (status, _, _) = send(http.post(service.url("/orders/3")).json(&body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }
    let after = scrape(&http, &service).await;

    let moved = |labels: &[(&str, &str)]| {
        value(&after, "http_requests_total", labels) - value(&before, "http_requests_total", labels)
    };
    assert_eq!(moved(&placed), 3.0);
    assert_eq!(moved(&rejected), 1.0);
    let latencies = |samples: &[Sample]| {
        value(
            samples,
            "http_request_duration_seconds_count",
            &[("route", "/orders/{id}"), ("method", "POST")],
        )
    };
    assert_eq!(latencies(&after) - latencies(&before), 4.0);
    assert!(
        after
            .iter()
            .any(|s| s.name == "http_request_duration_seconds_bucket"),
        "latency is a histogram"
    );
    // The framework's own metrics move with the same traffic (other tests of this binary share
    // the process-wide recorder, hence at least).
    let commands = |labels: &[(&str, &str)]| {
        value(&after, metrics::COMMANDS, labels) - value(&before, metrics::COMMANDS, labels)
    };
    let accepted = commands(&[("aggregate", "order"), ("outcome", "accepted")]);
    let refused = commands(&[("aggregate", "order"), ("outcome", "rejected")]);
    assert!(
        accepted >= 3.0,
        "accepted order commands moved by {accepted}"
    );
    assert!(refused >= 1.0, "rejected order commands moved by {refused}");
    assert!(
        after
            .iter()
            .any(|s| s.name == format!("{}_bucket", metrics::COMMAND_DURATION)),
        "the framework's command latency is a histogram, not a summary"
    );
    for source in [
        order_service::metrics::FEED_HORIZON_SOURCE,
        order_service::metrics::PROCESS_INSTANCES_SOURCE,
    ] {
        assert_eq!(
            value(&after, metrics::GAUGES_REFRESHED, &[("source", source)]),
            1.0,
            "{source} refreshed"
        );
    }
    for gauge in [
        metrics::PROJECTION_LAG_SECONDS,
        metrics::PROJECTION_LAG_EVENTS,
        metrics::PROJECTION_BREAKER,
        metrics::PROCESS_INSTANCES,
        metrics::FEED_HORIZON_WAITING_EVENTS,
    ] {
        assert!(
            after.iter().any(|s| s.name == gauge),
            "the scrape has {gauge}"
        );
    }

    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_outside_http_s_own_count_as_other_so_labels_stay_few() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("BREW{n}").as_bytes()).expect("a token");
        let (status, _, _) = send(http.request(method, service.url("/orders/1"))).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    let after = scrape(&http, &service).await;
    let methods: std::collections::BTreeSet<&str> = after
        .iter()
        .filter(|s| s.name == "http_requests_total")
        .filter_map(|s| s.labels.get("method").map(String::as_str))
        .collect();
    assert!(methods.contains("OTHER"), "{methods:?}");
    assert!(
        methods.iter().all(|m| !m.starts_with("BREW")),
        "{methods:?}"
    );
    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_in_one_process_both_render_metrics() {
    let (first_config, first_names) = config();
    let (second_config, second_names) = config();
    let first = TestService::start(first_config).await;
    let second = TestService::start(second_config).await;
    let http = client();
    assert!(!scrape(&http, &first).await.is_empty());
    assert!(!scrape(&http, &second).await.is_empty());
    first.stop().await;
    second.stop().await;
    first_names.clean_up().await;
    second_names.clean_up().await;
}

#[test]
fn the_parser_reads_samples_and_refuses_what_is_not_prometheus_text() {
    let samples = parse(
        "# HELP x_total a thing\n# TYPE x_total counter\nx_total{route=\"/orders/{id}\",status=\"201\"} 3\ny 1.5\n",
    );
    assert_eq!(value(&samples, "x_total", &[("status", "201")]), 3.0);
    assert_eq!(value(&samples, "y", &[]), 1.5);
    assert!(std::panic::catch_unwind(|| parse("not prometheus")).is_err());
    assert!(std::panic::catch_unwind(|| parse("x{a=b} 1")).is_err());
    assert!(std::panic::catch_unwind(|| parse("# TYPE x_total bogus")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_its_client_gave_up_on_is_counted_as_499() {
    // The slowest requests are the ones a client or a balancer stops waiting for: before, the
    // dropped request was never counted, so the latency and the error rate hid them.
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    let gave_up = [("route", "/orders"), ("method", "GET"), ("status", "499")];
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .expect("a client");
    // A position far ahead: the query waits for the read model (2 s), longer than the client.
    let waited = impatient
        .get(service.url("/orders?min_position=999999999/0"))
        .send()
        .await;
    assert!(waited.is_err(), "the client gave up: {waited:?}");
    support::eventually("the dropped request counted", || async {
        let samples = scrape(&http, &service).await;
        (value(&samples, "http_requests_total", &gave_up) == 1.0).then_some(())
    })
    .await;
    service.stop().await;
    names.clean_up().await;
}
