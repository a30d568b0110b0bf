//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the binary exports its spans over OTLP
//! http/protobuf, and flushes them when it stops on SIGTERM: a small OTLP receiver in the test
//! gets them. (The end-to-end trace through the events, with a real Jaeger, is the lead's test.)

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, send, Binary};

/// What the receiver got: each export's content type and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_otlp_endpoint_by_the_time_the_binary_exits() {
    let received: Received = Arc::default();
    let receiver = axum::Router::new().route(
        "/v1/traces",
        post({
            let received = Arc::clone(&received);
            move |headers: HeaderMap, body: Bytes| async move {
                let kind = (headers.get("content-type"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                received.lock().unwrap().push((kind, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let receiving = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let (_, names) = config();
    let binary = Binary::start(
        &names,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    )
    .await;
    let base = binary.base.clone();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, _) = send(
        client()
            .post(format!("{base}/orders/1"))
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .json(&json!({ "customer": "alice", "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    binary.terminate().await;

    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "no spans were exported");
    assert!(
        received
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf"),
        "{:?}",
        received.iter().map(|(kind, _)| kind).collect::<Vec<_>>()
    );
    let bodies: Vec<u8> = received.iter().flat_map(|(_, body)| body.clone()).collect();
    assert!(
        bodies.windows(b"request".len()).any(|w| w == b"request"),
        "the request span was exported"
    );
    let id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    assert!(
        bodies.windows(16).any(|w| w == id.as_slice()),
        "the spans continue the caller's trace"
    );
    receiving.abort();
    names.clean_up().await;
}
