//! Text the store holds but never checked (a sink's error, a key, an event's headers) is
//! printed with its control characters made visible: a stored escape sequence cannot retitle
//! the operator's terminal or rewrite the lines around it.

mod support;

use cqrs_core::projection::DeadLetterStore;
use cqrs_core::{AppendEvents, EventId, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
use cqrs_postgres::testing::fresh_store;
use serde_json::json;
use support::cqrs;

const HOSTILE: &str = "\u{1b}]0;ok\u{7}\u{1b}[1A\u{1b}[2K\u{9b}2J";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_and_its_event_print_no_control_character() {
    let store = fresh_store().await.expect("a fresh schema");
    let stream = StreamId::new("order-1").expect("a stream id");
    let metadata = Metadata::new(EventId::new()).with_header("note", HOSTILE);
    let event = NewEvent::new("OrderPlaced", 1, json!({ "note": HOSTILE })).with_metadata(metadata);
    let outcome = store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
        .expect("appended");
    let letter = cqrs_core::backend::dead_letter(
        "orders",
        outcome.position,
        stream,
        Version::new(1),
        "OrderPlaced",
        Some(format!("key{HOSTILE}")),
        &format!("the sink said: {HOSTILE}"),
        time::OffsetDateTime::now_utc(),
    );
    store.park(letter).await.expect("parked");

    let run = cqrs(
        &store,
        &[
            "dead-letters",
            "show",
            "orders",
            &outcome.position.to_string(),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let controls: Vec<char> = run
        .stdout
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(controls.is_empty(), "{controls:?} in {}", run.stdout);
    assert!(
        run.stdout.contains("the sink said: \\u{1b}]0;ok"),
        "{}",
        run.stdout
    );
}
