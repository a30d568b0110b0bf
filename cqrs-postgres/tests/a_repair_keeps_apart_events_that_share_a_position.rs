//! Logical replication copies rows but not the position sequence: an event appended on the
//! target before the repair takes a position the copied rows already hold, under another
//! transaction id. The repair gives each run of rising positions its own new id; two events
//! with the same position must land in different runs, or both would take the same
//! `(transaction_id, position)` and the repair could never finish.

mod support;

use cqrs_core::{EventFilter, Position, ReadAll};

#[tokio::test]
async fn a_repair_keeps_apart_events_that_share_a_position() {
    let store = support::store().await;
    let schema = store.schema().as_str().to_owned();
    let next = support::dump::next_transaction_id(store.pool()).await;
    // The target's own event at position 5, with an id of its cluster, then one copied in at
    // the same position with an id far ahead of the counter.
    for (stream, transaction_id) in [("own-1", 3), ("copied-1", next + 1_000_000)] {
        sqlx::query(&format!(
            "INSERT INTO {schema}.events (position, transaction_id, stream_id, version, event_id, \
             event_type, schema_version, payload, metadata) OVERRIDING SYSTEM VALUE \
             VALUES (5, $1::text::xid8, $2, 1, gen_random_uuid(), 'Noted', 1, '{{}}', '{{}}')"
        ))
        .bind(transaction_id.to_string())
        .bind(stream)
        .execute(store.pool())
        .await
        .expect("an event at position 5");
    }

    let repair = store
        .repair_transaction_ids()
        .await
        .expect("the repair finishes");

    assert!(repair.repaired);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let streams = loop {
        // Any transaction open in the cluster (another test's) holds the feed back: poll.
        let batch = store
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .expect("read the feed");
        let streams: Vec<String> = batch
            .events
            .iter()
            .map(|e| e.stream_id.as_str().to_owned())
            .collect();
        if streams.len() >= 2 || std::time::Instant::now() > deadline {
            break streams;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(streams, ["own-1", "copied-1"], "the feed order is kept");
}
