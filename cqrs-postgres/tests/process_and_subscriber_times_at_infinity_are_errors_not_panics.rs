//! A process's timeouts and instances, and a subscriber's checkpoint, are rows of the user's
//! tables: a time set to `infinity` (a common "never") or `-infinity` (a common "now") by hand
//! is data from outside. Reading it is never a panic (the timer pump that reads it is a task
//! nobody awaits, and a panic there stopped every timeout of the process silently): the pump
//! fires a timeout due at `-infinity` and sleeps its longest before one due at `infinity`;
//! listings say the row is wrong.

mod support;

use std::future::Future;

use cqrs_core::process::{InstanceQuery, InstanceRow, ProcessRecord, ProcessStore, TimeoutChange};
use cqrs_core::testing::TestClock;
use cqrs_core::{
    AppendEvents, CheckpointStore, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll,
    StreamId, Version,
};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use uuid::Uuid;

const PROCESS: &str = "Order";

/// Awaits `read` in a task of its own: a panic shows as the task's failure.
async fn in_a_task<T: Send + 'static>(read: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(read).await.expect("the reader does not panic")
}

async fn set(store: &PgEventStore, table: &str, column: &str, value: &str) {
    sqlx::query(&format!(
        "UPDATE {}.{table} SET {column} = '{value}'",
        store.schema().as_str()
    ))
    .execute(store.pool())
    .await
    .expect("the rows set by hand");
}

#[tokio::test]
async fn process_and_subscriber_times_at_infinity_are_errors_not_panics() {
    let store = support::store().await;
    let record = ProcessRecord::new(
        StreamId::new(format!("{PROCESS}-1")).expect("stream id"),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
        vec![TimeoutChange::Schedule {
            key: "pay".into(),
            timeout_id: Uuid::new_v4(),
            due_at: TestClock::START,
            payload: json!({}),
        }],
        InstanceRow::new("1", Version::new(1), TestClock::START)
            .next_timeout_at(Some(TestClock::START)),
    );
    store.record(PROCESS, record).await.expect("record");

    // "Never", set by hand: the pump's look for the next due time reads it, and sleeps as long
    // as it may (the latest time there is); a listing of the timeouts says the row is wrong.
    set(&store, "process_timeouts", "due_at", "infinity").await;
    let next = {
        let s = store.clone();
        in_a_task(async move { s.next_due(PROCESS).await }).await
    };
    let next = next
        .expect("the next due time, clamped")
        .expect("one timeout");
    assert_eq!(next.year(), 9999, "{next}");
    let listed = {
        let s = store.clone();
        in_a_task(async move { s.instance_timeouts(PROCESS, "1").await }).await
    };
    assert!(listed.is_err(), "{listed:?}");

    // "Fire now", set by hand: it fires (as due at the calendar's start). An error here would
    // roll the firing back and hold every timeout of the process behind this row for good.
    set(&store, "process_timeouts", "due_at", "-infinity").await;
    let fired = {
        let s = store.clone();
        in_a_task(async move { s.fire_due(PROCESS, TestClock::START, 10).await }).await
    };
    let fired = fired.expect("it fires");
    assert_eq!(fired.len(), 1, "{fired:?}");

    // The instance's own times: its page, its row, the counts that read parked instances.
    for column in ["next_timeout_at", "started_at", "progressed_at"] {
        set(&store, "process_instances", column, "infinity").await;
        let page = {
            let s = store.clone();
            in_a_task(async move { s.instances(PROCESS, &InstanceQuery::all()).await }).await
        };
        assert!(page.is_err(), "{column}: {page:?}");
        let one = {
            let s = store.clone();
            in_a_task(async move { s.instance(PROCESS, "1").await }).await
        };
        assert!(one.is_err(), "{column}: {one:?}");
        set(
            &store,
            "process_instances",
            column,
            "2026-12-07 00:00:00+00",
        )
        .await;
    }

    // A subscriber's checkpoint saved at infinity, and an unapplied event recorded at -infinity:
    // the console's sampler and `cqrs status` read both.
    let stream = StreamId::new("noted-1").expect("stream id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new("Noted", 1, json!({})),
                NewEvent::new("Noted", 1, json!({})),
            ],
        )
        .await
        .expect("append");
    let first = store
        .read_all(Position::START, 1, &EventFilter::all())
        .await
        .expect("read")
        .events;
    let at = first.first().map(|e| e.position).expect("an event");
    store.save_checkpoint("reader", at).await.expect("save");
    set(&store, "checkpoints", "updated_at", "infinity").await;
    let subscribers = {
        let s = store.clone();
        in_a_task(async move { s.subscribers().await }).await
    };
    assert!(subscribers.is_err(), "{subscribers:?}");
    set(
        &store,
        "checkpoints",
        "updated_at",
        "2026-12-07 00:00:00+00",
    )
    .await;
    set(&store, "events", "recorded_at", "-infinity").await;
    let subscribers = {
        let s = store.clone();
        in_a_task(async move { s.subscribers().await }).await
    };
    assert!(subscribers.is_err(), "{subscribers:?}");
}
