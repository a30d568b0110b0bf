//! End to end with a real Jaeger: the service binary exports over OTLP (http/protobuf) to
//! Jaeger, and Jaeger's query API returns one trace holding the request, the append, the read
//! model's write and the saga's next command. `JAEGER_QUERY_URL` and `JAEGER_OTLP_ENDPOINT`
//! name the Jaeger (scripts/test.sh starts one with scripts/jaeger.sh).

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;

use cqrs_core::telemetry::TRACEPARENT;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client, config, eventually, required_env, send, PATIENCE};
use tokio::io::{AsyncBufReadExt, BufReader};
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
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_order-service"))
        .env("DATABASE_URL", required_env("DATABASE_URL"))
        .env("ELASTICSEARCH_URL", required_env("ELASTICSEARCH_URL"))
        .env("ORDER_SERVICE_SCHEMA", &names.schema)
        .env("ORDER_SERVICE_INDEX", &names.index)
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp)
        .env("OTEL_SERVICE_NAME", "order-service-jaeger-test")
        // Export every 200 ms rather than every 5 s, so the trace shows up soon.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("a line") {
            if let Some(address) = line.strip_prefix("listening on ") {
                return format!("http://{address}");
            }
        }
        panic!("the binary exited before listening");
    })
    .await
    .expect("the binary listens in time");

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

    let pid = child.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.expect("kill runs").success());
    let exit = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the binary exits in time")
        .expect("an exit status");
    assert!(exit.success(), "exit 0, not {exit}");
    names.clean_up().await;
}
