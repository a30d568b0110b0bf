//! Every failure answers `application/problem+json` with its status: malformed input 400,
//! unknown order 404, conflict after the retries 409, rejected by the aggregate 422 (with its
//! error's code and message), the database down 503, the read model behind past the read
//! wait 504.
//!
//! How each is made to happen: 409, with one attempt per command: the service's stock
//! repository caches item states, and a writer beside it (a repository of its own on the same
//! schema) moves the stream on, so the cached state is stale and the append conflicts. 503:
//! the service reaches PostgreSQL through a [`Relay`] that the test cuts. 504: a
//! `min_position` far past the feed's head, with a read wait of 200 ms.

mod support;

use std::time::Duration;

use cqrs_core::{ReadStream as _, Repository};
use quickstart::inventory::{Inventory, InventoryCommand};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{address_of, client, config, required_env, send, via, Relay, TestService};

/// Asserts a problem body of `status` and `type`.
fn assert_problem(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    expected: u16,
    kind: &str,
) {
    assert_eq!(status.as_u16(), expected, "{body}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["status"], expected, "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

/// Posts a body past the 2 MiB limit on a connection of its own and reads the answer as text.
/// The service answers before it has read the whole body and closes the connection, so the
/// body is written beside the read (a client that writes first may fail on the closed socket
/// before it reads the answer, and a pooled connection would be reused closed).
async fn too_large(service: &TestService) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = service.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(address.as_str())
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    let size = 3 << 20;
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST /orders/4 HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             content-length: {size}\r\n\r\n"
        );
        // Fails once the service closed the connection: what it answered is read below.
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&vec![b' '; size]).await;
    });
    let mut answer = Vec::new();
    let read_all = read.read_to_end(&mut answer);
    let _ = tokio::time::timeout(Duration::from_secs(10), read_all).await;
    writer.abort();
    String::from_utf8_lossy(&answer).to_ascii_lowercase()
}

fn place(customer: &str) -> Value {
    json!({ "customer": customer, "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_rejected_commands_answer_400_404_and_422() {
    let (config, names) = config();
    let service = TestService::start(config).await;
    let http = client();

    let (status, headers, body) = send(
        http.post(service.url("/orders/1"))
            .body("{\"customer\": 7}"),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");

    let (status, headers, body) = send(
        http.post(service.url("/orders/1"))
            .header("X-Correlation-Id", "not-a-uuid")
            .json(&place("alice")),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");

    let (status, headers, body) = send(
        http.get(service.url("/orders"))
            .query(&[("status", "lost")]),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");

    let (status, headers, body) = send(
        http.post(service.url("/orders/nobody/cancel"))
            .json(&json!({ "reason": "changed my mind" })),
    )
    .await;
    assert_problem(status, &headers, &body, 404, "/problems/not-found");

    let (status, headers, body) = send(http.get(service.url("/nowhere"))).await;
    assert_problem(status, &headers, &body, 404, "/problems/not-found");

    let (status, _, _) = send(http.post(service.url("/orders/1")).json(&place("alice"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, body) =
        send(http.post(service.url("/orders/1")).json(&place("alice"))).await;
    assert_problem(status, &headers, &body, 422, "/problems/rejected");
    assert_eq!(body["code"], "AlreadyPlaced");
    assert_eq!(body["message"], "the order was placed already");

    let (status, headers, body) = send(
        http.post(service.url("/orders/2"))
            .json(&json!({ "customer": "bob", "lines": [] })),
    )
    .await;
    assert_problem(status, &headers, &body, 422, "/problems/rejected");
    assert_eq!(body["code"], "NoLines");

    // What the read side, the saga or the inventory could not take is refused at the edge,
    // before anything is recorded.
    let line = |sku: &str, quantity: u64, unit_price: u64| json!({ "sku": sku, "quantity": quantity, "unit_price": unit_price });
    for (lines, code) in [
        (
            json!([line("widget", u64::MAX, 1), line("gadget", 1, 1)]),
            "TooLarge",
        ),
        (json!([line("widget", 1, 1 << 63)]), "TooLarge"),
        (json!([line("", 1, 1)]), "InvalidSku"),
        (json!([line(&"s".repeat(195), 1, 1)]), "InvalidSku"),
    ] {
        let (status, headers, body) = send(
            http.post(service.url("/orders/3"))
                .json(&json!({ "customer": "bob", "lines": lines })),
        )
        .await;
        assert_problem(status, &headers, &body, 422, "/problems/rejected");
        assert_eq!(body["code"], code, "{body}");
    }
    // Pages past the search node's result window are refused here, not by the node (500).
    let (status, headers, body) = send(
        http.get(service.url("/orders"))
            .query(&[("from", "9990"), ("size", "20")]),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");
    let (status, _, body) = send(
        http.get(service.url("/orders"))
            .query(&[("from", "9980"), ("size", "20")]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the last page the window holds: {body}"
    );
    assert_eq!(
        body["next_from"],
        Value::Null,
        "no next page past the window: {body}"
    );

    // What axum refuses before a handler runs answers problem+json too: a body past the 2 MiB
    // limit, a path that is not UTF-8, a method the route does not take (with its Allow).
    let answer = too_large(&service).await;
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(
        answer.contains("content-type: application/problem+json")
            && answer.contains("\"type\":\"/problems/too-large\""),
        "{answer}"
    );
    let (status, headers, body) = send(http.get(service.url("/orders/%FF"))).await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");
    let (status, headers, body) = send(http.delete(service.url("/orders/1"))).await;
    assert_problem(status, &headers, &body, 405, "/problems/method-not-allowed");
    let allowed = headers["allow"].to_str().expect("an Allow header");
    assert!(
        allowed.contains("POST") && allowed.contains("GET"),
        "{allowed}"
    );

    // A command id already used for a command on another order: 422, naming no other order.
    let command_id = uuid::Uuid::new_v4().to_string();
    let (status, _, _) = send(
        http.post(service.url("/orders/5"))
            .header("X-Command-Id", &command_id)
            .json(&place("carol")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, body) = send(
        http.post(service.url("/orders/6"))
            .header("X-Command-Id", &command_id)
            .json(&place("dave")),
    )
    .await;
    assert_problem(status, &headers, &body, 422, "/problems/command-id-reused");
    assert!(!body.to_string().contains("order-5"), "{body}");

    let long_id = "o".repeat(190);
    let (status, headers, body) = send(
        http.post(service.url(&format!("/orders/{long_id}")))
            .json(&place("bob")),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");
    let stream =
        cqrs_core::StreamId::new(format!("order-{long_id}")).expect("a valid order stream");
    let events = service
        .store
        .read_stream(&stream, cqrs_core::Version::ZERO, 10)
        .await;
    assert!(events.expect("read").is_empty(), "nothing recorded");

    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_keeps_conflicting_answers_409() {
    let (config, names) = config();
    let service = TestService::start(config.with_command_attempts(1)).await;
    let http = client();
    let restock = |quantity: u64| json!({ "quantity": quantity });

    let (status, _, _) = send(
        http.post(service.url("/stock/gadget/restock"))
            .json(&restock(1)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Another writer moves the stream on: the service's cached state is one version behind.
    let elsewhere = Repository::<Inventory, _>::new(service.store.clone());
    (elsewhere
        .execute("gadget", &InventoryCommand::Restock { quantity: 2 })
        .await)
        .expect("a restock beside the service");

    let (status, headers, body) = send(
        http.post(service.url("/stock/gadget/restock"))
            .json(&restock(4)),
    )
    .await;
    assert_problem(status, &headers, &body, 409, "/problems/conflict");

    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_while_the_database_is_cut_off_answers_503() {
    let database = required_env("DATABASE_URL");
    let relay = Relay::start(address_of(&database)).await;
    let (config, names) = config();
    let mut config = config.with_dependency_timeout(Duration::from_secs(1));
    config.database_url = via(&database, relay.address());
    let service = TestService::start(config).await;
    let http = client();
    let (status, _, _) = send(http.post(service.url("/orders/1")).json(&place("alice"))).await;
    assert_eq!(status, StatusCode::CREATED);

    relay.cut();
    let (status, headers, body) =
        send(http.post(service.url("/orders/2")).json(&place("bob"))).await;
    assert_problem(status, &headers, &body, 503, "/problems/unavailable");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    let relay_port = relay.address().port().to_string();
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&relay_port),
        "the database's address stays in the log: {body}"
    );

    relay.restore();
    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_while_the_search_node_hangs_answers_503_within_the_dependency_timeout() {
    let search = required_env("ELASTICSEARCH_URL");
    let relay = Relay::start(address_of(&search)).await;
    let (config, names) = config();
    let mut config = config.with_dependency_timeout(Duration::from_secs(1));
    config.elasticsearch_url = via(&search, relay.address());
    let service = TestService::start(config).await;
    let http = client();

    relay.silence();
    for path in ["/orders/1", "/orders?status=placed"] {
        let started = std::time::Instant::now();
        let (status, headers, body) = send(http.get(service.url(path))).await;
        let waited = started.elapsed();
        assert_problem(status, &headers, &body, 503, "/problems/unavailable");
        assert!(headers.contains_key("retry-after"), "{headers:?}");
        // The search client's own timeout is 30 s; the dependency timeout is 1 s.
        assert!(waited < Duration::from_secs(15), "{path} waited {waited:?}");
    }

    relay.restore();
    service.stop().await;
    names.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_for_a_position_the_read_model_does_not_reach_in_time_answers_504() {
    let (config, names) = config();
    let service = TestService::start(config.with_read_wait(Duration::from_millis(200))).await;
    let http = client();

    let (status, headers, body) = send(
        http.get(service.url("/orders/1"))
            .query(&[("min_position", "9000000000000/0")]),
    )
    .await;
    assert_problem(status, &headers, &body, 504, "/problems/read-model-behind");
    let (status, headers, body) = send(
        http.get(service.url("/orders/1"))
            .query(&[("min_position", "soon")]),
    )
    .await;
    assert_problem(status, &headers, &body, 400, "/problems/malformed-request");
    // Without a position it answers what it has: nothing yet.
    let (status, headers, body) = send(http.get(service.url("/orders/1"))).await;
    assert_problem(status, &headers, &body, 404, "/problems/not-found");

    service.stop().await;
    names.clean_up().await;
}
