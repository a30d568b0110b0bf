//! `cqrs streams show`, `events tail` (filters, `--from`, `--follow`), `feed horizon`,
//! `correlation` and `processes list` print what the store holds, and `--json` parses into the
//! data types.

mod support;

use cqrs_admin::inspect::{
    Correlation, EventView, HorizonView, InstanceView, StreamView, TailPage,
};
use cqrs_postgres::testing::fresh_store;
use support::{append, cqrs};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_feed_horizon_and_correlation_commands_show_the_stored_events() {
    let store = fresh_store().await.expect("a fresh schema");
    let request = Uuid::new_v4();
    let other = Uuid::new_v4();
    let placed = append(&store, "order-1", "OrderPlaced", request).await;
    append(&store, "payment-1", "PaymentAuthorized", request).await;
    let paid = append(&store, "order-1", "OrderPaid", request).await;
    append(&store, "order-2", "OrderPlaced", other).await;

    // a stream, with metadata and pretty payloads
    let stream: StreamView = cqrs(&store, &["streams", "show", "order-1", "--json"])
        .await
        .json();
    assert_eq!(stream.events.len(), 2);
    assert_eq!(stream.events[0].position, placed);
    assert_eq!(stream.events[1].event_type, "OrderPaid");
    assert_eq!(stream.events[1].correlation_id, Some(request));
    assert_eq!(stream.next_version, None);
    let page: StreamView = cqrs(
        &store,
        &[
            "streams", "show", "order-1", "--from", "2", "--limit", "1", "--json",
        ],
    )
    .await
    .json();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].version, 2);
    let shown = cqrs(&store, &["streams", "show", "order-1"]).await;
    assert!(
        shown
            .stdout
            .starts_with("order-1@1  OrderPlaced (schema 1)"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains(&format!("  correlation id  {request}")),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("  header source: test"),
        "{}",
        shown.stdout
    );

    // the feed, filtered, from a position
    let tail: TailPage = cqrs(&store, &["events", "tail", "--json"]).await.json();
    assert_eq!(tail.events.len(), 4);
    let orders: TailPage = cqrs(&store, &["events", "tail", "--category", "order", "--json"])
        .await
        .json();
    let types: Vec<&str> = orders
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(types, ["OrderPlaced", "OrderPaid", "OrderPlaced"]);
    let typed: TailPage = cqrs(&store, &["events", "tail", "--type", "OrderPaid", "--json"])
        .await
        .json();
    assert_eq!(typed.events.len(), 1);
    assert_eq!(typed.events[0].position, paid);
    let from = paid.to_string();
    let later: TailPage = cqrs(&store, &["events", "tail", "--from", &from, "--json"])
        .await
        .json();
    assert_eq!(
        later.events[0].position, paid,
        "--from starts at the position given"
    );
    assert_eq!(later.events.len(), 2);
    let table = cqrs(&store, &["events", "tail", "--limit", "2"]).await;
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "header, two rows, next: {}", table.stdout);
    assert!(lines[0].starts_with("POSITION"), "{}", table.stdout);
    assert!(
        lines[3].starts_with("next ") && lines[3].ends_with("(more)"),
        "{}",
        table.stdout
    );

    // follow: one JSON document per line, ending after --limit events
    let followed = cqrs(
        &store,
        &[
            "events",
            "tail",
            "--follow",
            "--category",
            "payment",
            "--limit",
            "1",
            "--json",
        ],
    )
    .await;
    assert_eq!(followed.code, 0, "{followed:?}");
    let lines: Vec<EventView> = followed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one event"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].stream_id, "payment-1");

    // the horizon
    let horizon: HorizonView = cqrs(&store, &["feed", "horizon", "--json"]).await.json();
    let _ = horizon.waiting_events;
    let text = cqrs(&store, &["feed", "horizon"]).await;
    assert!(
        text.stdout.starts_with("oldest open transaction"),
        "{}",
        text.stdout
    );

    // a correlation id: everything it caused, across streams
    let id = request.to_string();
    let caused: Correlation = cqrs(&store, &["correlation", &id, "--json"]).await.json();
    let streams: Vec<&str> = caused.events.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(streams, ["order-1", "payment-1", "order-1"]);

    // no process manager yet: an empty list, and an unknown one is not found
    let none: Vec<InstanceView> = cqrs(&store, &["processes", "list", "--json"]).await.json();
    assert!(none.is_empty());
    let unknown = cqrs(&store, &["processes", "list", "order_saga", "--stuck"]).await;
    assert_eq!(unknown.code, 3, "{unknown:?}");
    let missing = cqrs(&store, &["processes", "show", "order_saga", "order-9"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
}
