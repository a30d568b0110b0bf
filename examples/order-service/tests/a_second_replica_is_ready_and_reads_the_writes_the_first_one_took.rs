//! Two replicas of the service on one schema and read model: the second one's workers stand by
//! while the first one's lead, and it is still ready (it serves the same read model), and a
//! query sent to it with the position of a command the first one took sees the write.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, ready, send, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_does_not_lead_is_ready_and_reads_the_others_writes() {
    let (config, names) = config();
    let first = TestService::start(config.clone()).await;
    let http = client();
    ready(&http, &first).await;
    let second = TestService::start(config).await;

    let body = eventually("the second replica is ready", || async {
        let (status, _, body) = send(http.get(second.url("/health/readiness"))).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(body["status"], "ready", "{body}");

    let (status, _, placed) = send(http.post(first.url("/orders/o-1")).json(&json!({
        "customer": "alice",
        "lines": [{ "sku": "widget", "quantity": 2, "unit_price": 1250 }],
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let position = placed["position"].as_str().expect("a position").to_owned();
    let (status, _, summary) = send(
        http.get(second.url("/orders/o-1"))
            .query(&[("min_position", position.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["customer"], "alice");

    second.stop().await;
    first.stop().await;
    names.clean_up().await;
}
