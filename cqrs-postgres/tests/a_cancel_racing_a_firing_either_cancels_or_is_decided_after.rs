//! A cancel (a record that removes a timeout) racing a firer, both orders forced by a side
//! transaction holding a lock: the cancel that takes the row first removes it and nothing ever
//! fires; the firer that takes it first fires it once, the cancel waiting on the row removes
//! nothing and still lands, and the fired event comes first in the feed, so the instance
//! decides it after the cancel it recorded (and finds it stale).

mod support;

use std::time::Duration;

use cqrs_core::process::{
    FiredTimeout, InstanceRow, ProcessRecord, ProcessStore, TimeoutChange, TimeoutFired,
};
use cqrs_core::testing::TestClock;
use cqrs_core::{
    AppendOutcome, EventId, ExpectedVersion, NewEvent, ReadStream, Result, StreamId, Version,
};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const PROCESS: &str = "Order";

fn at(secs: i64) -> OffsetDateTime {
    TestClock::START + time::Duration::seconds(secs)
}

fn journal() -> StreamId {
    StreamId::new(format!("{PROCESS}-1")).expect("stream id")
}

/// Instance 1 records an input that schedules `shipping`; returns the timeout's id.
async fn schedule_shipping(store: &PgEventStore) -> Uuid {
    let timeout_id = Uuid::new_v4();
    let record = ProcessRecord::new(
        journal(),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({ "n": 1 }))],
        vec![TimeoutChange::Schedule {
            key: "shipping".to_owned(),
            timeout_id,
            due_at: at(30),
            payload: json!(null),
        }],
        InstanceRow::new("1", Version::new(1), at(0)).next_timeout_at(Some(at(30))),
    );
    store.record(PROCESS, record).await.expect("schedule");
    timeout_id
}

/// Instance 1 records an input whose decision cancels `shipping`, in a task.
fn cancel_shipping(
    store: &PgEventStore,
    timeout_id: Uuid,
) -> tokio::task::JoinHandle<Result<AppendOutcome>> {
    let store = store.clone();
    tokio::spawn(async move {
        let record = ProcessRecord::new(
            journal(),
            ExpectedVersion::Exact(Version::new(1)),
            vec![NewEvent::new("ProcessInputReceived", 1, json!({ "n": 2 }))],
            vec![TimeoutChange::Cancel {
                key: "shipping".to_owned(),
                timeout_id,
            }],
            InstanceRow::new("1", Version::new(2), at(40)),
        );
        store.record(PROCESS, record).await
    })
}

/// The backend of the side transaction, whose locks force the order.
async fn backend(side: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(side)
        .await
        .expect("backend pid")
}

/// Waits until `n` backends wait, directly or behind one another, for the side transaction
/// of backend `side` (or fails after 10 s).
async fn until_waiting_behind(store: &PgEventStore, side: i32, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "WITH RECURSIVE behind(pid) AS (
                 SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))
                 UNION
                 SELECT a.pid FROM pg_stat_activity AS a, behind AS b
                 WHERE b.pid = ANY (pg_blocking_pids(a.pid))
             )
             SELECT count(*) FROM behind",
        )
        .bind(side)
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_activity");
        if waiting >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} of {n} statements wait behind the side transaction after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn timer_events(store: &PgEventStore, timeout_id: Uuid) -> Vec<cqrs_core::RecordedEvent> {
    let stream = TimeoutFired::stream(PROCESS, timeout_id).expect("timer stream");
    store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read timer stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_that_takes_the_row_first_removes_it_and_nothing_fires() {
    let store = support::store_with(6).await;
    let timeout_id = schedule_shipping(&store).await;

    // The side transaction holds the row, so the cancel's statement stops at it with its
    // journal events written and not committed.
    let mut side = store.pool().begin().await.expect("side transaction");
    sqlx::query(&format!(
        "SELECT 1 FROM \"{}\".process_timeouts WHERE timeout_id = $1 FOR UPDATE",
        store.schema()
    ))
    .bind(timeout_id)
    .fetch_one(&mut *side)
    .await
    .expect("lock the row");
    let side_pid = backend(&mut side).await;
    let cancel = cancel_shipping(&store, timeout_id);
    until_waiting_behind(&store, side_pid, 1).await;

    // A firer meanwhile does not wait for the row: it skips it.
    let fired = tokio::time::timeout(Duration::from_secs(5), store.fire_due(PROCESS, at(100), 10))
        .await
        .expect("a firer never waits for a locked row")
        .expect("fire");
    assert_eq!(fired, []);

    side.commit().await.expect("release the row");
    let outcome = cancel.await.expect("task").expect("the cancel lands");
    assert_eq!(outcome.last_version, Version::new(2));
    assert!(store
        .instance_timeouts(PROCESS, "1")
        .await
        .expect("timeouts")
        .is_empty());
    assert_eq!(
        store.fire_due(PROCESS, at(100), 10).await.expect("fire"),
        []
    );
    assert!(
        timer_events(&store, timeout_id).await.is_empty(),
        "never fired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_firing_that_takes_the_row_first_fires_once_and_the_cancel_lands_after_it() {
    let store = support::store_with(6).await;
    let timeout_id = schedule_shipping(&store).await;
    let timer = TimeoutFired::stream(PROCESS, timeout_id).expect("timer stream");

    // The side transaction holds version 1 of the timer stream, so the firer stops at its
    // append, having removed the row (locked, not committed).
    let mut side = store.pool().begin().await.expect("side transaction");
    store
        .append_in(
            &mut side,
            &timer,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Placeholder", 1, json!({}))],
        )
        .await
        .expect("hold the timer stream");
    let side_pid = backend(&mut side).await;
    let firer = {
        let store = store.clone();
        tokio::spawn(async move { store.fire_due(PROCESS, at(100), 10).await })
    };
    until_waiting_behind(&store, side_pid, 1).await;
    // The cancel now waits for the firer's row.
    let cancel = cancel_shipping(&store, timeout_id);
    until_waiting_behind(&store, side_pid, 2).await;

    side.rollback().await.expect("let the firer go");
    let fired: Vec<FiredTimeout> = firer.await.expect("task").expect("fire");
    let outcome = cancel.await.expect("task").expect("the cancel still lands");
    assert_eq!(fired.len(), 1, "fired once");
    assert_eq!(fired[0].timeout_id, timeout_id);
    assert!(!outcome.duplicate);
    assert_eq!(outcome.last_version, Version::new(2));

    let events = timer_events(&store, timeout_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].metadata.event_id, EventId::from_uuid(timeout_id));
    assert!(
        events[0].position < outcome.position,
        "the fired event comes before the cancel in the feed: the instance decides it after \
         the cancel, as a timeout no longer live"
    );
    assert!(store
        .instance_timeouts(PROCESS, "1")
        .await
        .expect("timeouts")
        .is_empty());
    assert_eq!(
        store.fire_due(PROCESS, at(100), 10).await.expect("fire"),
        []
    );
    let recorded = store
        .read_stream(&journal(), Version::new(1), 10)
        .await
        .expect("journal");
    assert_eq!(recorded.len(), 2, "the cancel's input is recorded");
}
