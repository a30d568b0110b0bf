//! End to end with a real Jaeger: the service binary exports over OTLP (http/protobuf) to
//! Jaeger, and Jaeger's query API returns one trace holding the request, the append, the read
//! model's write and the saga's next command. `JAEGER_QUERY_URL` and `JAEGER_OTLP_ENDPOINT`
//! name the Jaeger (scripts/test.sh starts one with scripts/jaeger.sh).

mod support;

use std::collections::BTreeSet;

use cqrs_core::telemetry::TRACEPARENT;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client, config, eventually, required_env, send, Binary};
use uuid::Uuid;

/// Each span of the trace Jaeger returns, as (operation, `aggregate` tag or "").
fn operations(trace: &Value) -> BTreeSet<(String, String)> {
    let spans = trace["data"][0]["spans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    spans
        .iter()
        .map(|span| {
            let name = span["operationName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let aggregate = span["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|tag| tag["key"] == "aggregate")
                .and_then(|tag| tag["value"].as_str())
                .unwrap_or_default()
                .to_owned();
            (name, aggregate)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_jaeger_returns_the_whole_trace_of_a_request() {
    let query = required_env("JAEGER_QUERY_URL");
    let otlp = required_env("JAEGER_OTLP_ENDPOINT");
    let (_, names) = config();
    let binary = Binary::start(
        &names,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
            ("OTEL_SERVICE_NAME", "order-service-jaeger-test"),
            // Export every 200 ms rather than every 5 s, so the trace shows up soon.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await;
    let base = binary.base.clone();

    let trace_id = Uuid::new_v4().simple().to_string();
    let (status, _, _) = send(
        client()
            .post(format!("{base}/orders/1"))
            .header(TRACEPARENT, format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .json(&json!({
                "customer": "alice",
                "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }]
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let wanted: BTreeSet<(String, String)> = [
        ("request", ""),
        ("command", "order"),
        ("pg_append", ""),
        ("batch", ""),
        ("es_projector.bulk", ""),
        ("step", ""),
        ("dispatch", ""),
        ("command", "payment"),
    ]
    .into_iter()
    .map(|(name, aggregate)| (name.to_owned(), aggregate.to_owned()))
    .collect();
    let http = client();
    let url = format!("{}/api/traces/{trace_id}", query.trim_end_matches('/'));
    eventually("Jaeger returns the whole flow in one trace", || {
        let request = http.get(&url);
        let wanted = &wanted;
        async move {
            let response = request.send().await.ok()?;
            if !response.status().is_success() {
                return None; // 404 until the first span arrives
            }
            let trace: Value = response.json().await.ok()?;
            wanted.is_subset(&operations(&trace)).then_some(())
        }
    })
    .await;

    binary.terminate().await;
    names.clean_up().await;
}
