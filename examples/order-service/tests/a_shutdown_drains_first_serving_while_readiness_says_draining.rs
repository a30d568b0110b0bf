//! Told to stop, the service first drains for `ORDER_SERVICE_DRAIN_MS`: readiness answers 503
//! `draining`, so the load balancer stops sending, while every request that still comes is
//! served. Only then does it stop accepting connections. Before, it stopped accepting at once,
//! and the requests a balancer still sent while the instance's removal spread were refused.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, ready, send, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_drains_first_serving_while_readiness_says_draining() {
    // Long enough for the checks below on a loaded machine; they run well within it.
    const DRAIN: Duration = Duration::from_secs(5);
    let (config, names) = config();
    let mut service = TestService::start(config.with_drain(DRAIN)).await;
    let client = client();
    ready(&client, &service).await;

    let told = Instant::now();
    service.begin_shutdown();
    let readiness = service.url("/health/readiness");
    let body = eventually("readiness says draining", || async {
        let (status, _, body) = send(client.get(&readiness)).await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await;
    assert_eq!(body["status"], "draining", "{body}");

    // Still served meanwhile: a new connection, a command, a query, liveness.
    let fresh = support::client();
    let (status, _, body) = send(fresh.post(service.url("/orders/drain-1")).json(&json!({
        "customer": "alice",
        "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 250 }]
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, _) = send(fresh.get(service.url("/health/liveness"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        told.elapsed() < DRAIN,
        "the checks above ran within the drain"
    );

    service.stop().await;
    assert!(told.elapsed() >= DRAIN, "it served for the whole drain");
    names.clean_up().await;
}
