//! Readiness turns 503 when the search node stops answering, and 200 when it is back, while
//! liveness stays 200 throughout. The service reaches the shared node through a [`Relay`]
//! that the test cuts and restores: the node itself is never stopped. Queries answer 503 while
//! it is cut off. Liveness fails only for what a restart cures: a worker that failed for good
//! (its state is final within the process).

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{
    address_of, client, config, eventually, ready, required_env, send, via, Relay, TestService,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_search_node_and_liveness_does_not() {
    let search = required_env("ELASTICSEARCH_URL");
    let relay = Relay::start(address_of(&search)).await;
    let (config, names) = config();
    let mut config = config;
    config.elasticsearch_url = via(&search, relay.address());
    let service = TestService::start(config).await;
    let http = client();
    let (readiness, liveness) = (
        service.url("/health/readiness"),
        service.url("/health/liveness"),
    );

    ready(&http, &service).await;
    let (_, _, body) = send(http.get(&readiness)).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["postgres"], "ok", "{body}");
    assert_eq!(body["checks"]["search"], "ok", "{body}");
    assert_eq!(body["checks"]["carrier"], "ok", "{body}");
    assert!(
        body["checks"].as_object().expect("checks").len() >= 5,
        "postgres, search and the three workers: {body}"
    );

    relay.cut();
    let down = eventually("readiness 503 with the node cut off", || async {
        let (status, _, body) = send(http.get(&readiness)).await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await;
    assert_eq!(down["status"], "not ready", "{down}");
    assert_ne!(
        down["checks"]["search"], "ok",
        "the failed check is named: {down}"
    );
    assert_eq!(down["checks"]["postgres"], "ok", "{down}");
    let (status, _, body) = send(http.get(&liveness)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    // A query needs the node: 503, as problem+json.
    let (status, _, body) = send(http.get(service.url("/orders/1"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["type"], "/problems/unavailable", "{body}");

    relay.restore();
    ready(&http, &service).await;
    let (status, _, body) = send(http.get(&liveness)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));

    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_fails_once_a_worker_has_failed_for_good_and_names_it() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    let liveness = service.url("/health/liveness");
    ready(&http, &service).await;
    let (status, _, body) = send(http.get(&liveness)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));

    // Someone drops the checkpoints table: the next checkpoint save fails with an error no
    // retry cures, and the worker that meets it stops, failed.
    let pool = sqlx::PgPool::connect(&required_env("DATABASE_URL"))
        .await
        .expect("connect");
    sqlx::query(&format!("DROP TABLE {}.checkpoints", names.schema))
        .execute(&pool)
        .await
        .expect("drop the checkpoints table");
    let body = json!({ "customer": "alice", "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }] });
    let (status, _, _) = send(http.post(service.url("/orders/1")).json(&body)).await;
    assert_eq!(status, StatusCode::CREATED);

    let down = eventually("liveness 503 once a worker failed", || async {
        let (status, _, body) = send(http.get(&liveness)).await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await;
    assert_eq!(down["status"], "failed", "{down}");
    let failed = down["checks"].as_object().expect("the failed workers");
    assert!(
        !failed.is_empty()
            && failed
                .values()
                .all(|check| check.as_str().is_some_and(|c| c.contains("checkpoint"))),
        "each failed worker named with its error: {down}"
    );

    service.stop().await;
    names.clean_up().await;
}
