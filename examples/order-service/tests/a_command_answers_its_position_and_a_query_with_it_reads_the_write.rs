//! Command -> query with read-your-writes: a command answers the feed position of its last
//! event (body and `X-Feed-Position`), with the request's correlation id echoed; a query that
//! asks for that position (`min_position`) sees the write, and search pages through the
//! summaries. A command id sent again gets the first outcome back.

mod support;

use cqrs_core::{ReadStream, StreamId, Version};
use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, send, TestService};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_with_the_commands_position_sees_the_command() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();

    let (status, _, _) = send(
        http.post(service.url("/stock/widget/restock"))
            .json(&json!({ "quantity": 100 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let correlation = "0190d1c4-5a2b-7cc3-9d8e-0123456789ab";
    let (status, headers, placed) = send(
        http.post(service.url("/orders/o-1"))
            .header("X-Correlation-Id", correlation)
            .json(&json!({
                "customer": "alice",
                "lines": [{ "sku": "widget", "quantity": 2, "unit_price": 1250 }],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["events"], json!(["OrderPlaced"]));
    assert_eq!(placed["correlation_id"], correlation);
    assert_eq!(headers["x-correlation-id"], correlation);
    let position = placed["position"].as_str().expect("a position").to_owned();
    assert_eq!(headers["x-feed-position"], position.as_str());

    // The event carries the request's correlation id.
    let stream = StreamId::new("order-o-1").expect("a stream id");
    let events = (service.store.read_stream(&stream, Version::ZERO, 10).await).expect("read");
    let recorded = events[0].metadata.correlation_id.map(|id| id.to_string());
    assert_eq!(recorded.as_deref(), Some(correlation));

    let (status, _, summary) = send(
        http.get(service.url("/orders/o-1"))
            .query(&[("min_position", position.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["id"], "o-1");
    assert_eq!(summary["customer"], "alice");
    assert_eq!(summary["total"], 2500);

    // Two more orders of bob's; then page through them one at a time.
    let mut last = position;
    for id in ["o-2", "o-3"] {
        let (status, _, placed) = send(http.post(service.url(&format!("/orders/{id}"))).json(
            &json!({ "customer": "bob", "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 999 }] }),
        ))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        last = placed["position"].as_str().expect("a position").to_owned();
    }
    let (status, _, first) = send(http.get(service.url("/orders")).query(&[
        ("customer", "bob"),
        ("size", "1"),
        ("min_position", last.as_str()),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["total"], 2);
    assert_eq!(first["orders"][0]["id"], "o-2");
    assert_eq!(first["next_from"], 1);
    let (_, _, second) = send(http.get(service.url("/orders")).query(&[
        ("customer", "bob"),
        ("size", "1"),
        ("from", "1"),
    ]))
    .await;
    assert_eq!(second["orders"][0]["id"], "o-3");
    assert_eq!(second["next_from"], json!(null));

    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_again_with_its_command_id_answers_the_first_outcome() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();
    let restock = || {
        http.post(service.url("/stock/gadget/restock"))
            .header("X-Command-Id", "0190d1c4-5a2b-7cc3-9d8e-00000000c0de")
            .json(&json!({ "quantity": 3 }))
    };

    let (status, _, first) = send(restock()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, _, again) = send(restock()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["position"], first["position"]);
    assert_eq!(
        (again["version"].clone(), first["version"].clone()),
        (json!(1), json!(1))
    );

    let (status, headers, body) = send(
        http.post(service.url("/stock/gadget/restock"))
            .header("X-Command-Id", "twice")
            .json(&json!({ "quantity": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");

    service.stop().await;
    names.clean_up().await;
}
