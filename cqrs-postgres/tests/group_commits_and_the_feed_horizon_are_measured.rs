//! The metrics of the PostgreSQL store on a real server: every group commit records its size
//! (the sizes add up to the appends written, a statement that timed out counting none) and how
//! long its oldest append waited, and
//! `record_feed_horizon` sets the horizon's gauges from `feed_horizon()`.
//!
//! Each test installs its own `DebuggingRecorder` as the thread's default on a current-thread
//! runtime, so the lane tasks it starts record there.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_core::telemetry::metrics::{
    FEED_HORIZON_OLDEST_TRANSACTION, FEED_HORIZON_WAITING_EVENTS, GROUP_COMMIT_APPENDS,
    GROUP_COMMIT_WAIT,
};
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::{record_feed_horizon, GroupCommit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::Barrier;

const WRITERS: u64 = 16;
const APPENDS: u64 = 4;

/// Every metric recorded, by name (these have no labels). Taking it resets the counters.
fn take(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect()
}

fn histogram(recorded: &HashMap<String, DebugValue>, name: &str) -> Vec<f64> {
    match recorded.get(name) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{name} is not a recorded histogram: {other:?}"),
    }
}

fn gauge(recorded: &HashMap<String, DebugValue>, name: &str) -> f64 {
    match recorded.get(name) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{name} is not a recorded gauge: {other:?}"),
    }
}

#[tokio::test]
async fn each_group_records_its_appends_and_its_wait_and_the_sizes_add_up_to_every_append() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = support::store_with(10)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0));

    let barrier = Arc::new(Barrier::new(usize::try_from(WRITERS).expect("small")));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let id = StreamId::new(format!("writer-{w}")).expect("id");
                barrier.wait().await;
                for a in 0..APPENDS {
                    let event = NewEvent::new("Counted", 1, json!({ "a": a }));
                    let expected = ExpectedVersion::Exact(Version::new(a));
                    store
                        .append(&id, expected, vec![event])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }

    let recorded = take(&snapshotter);
    let sizes = histogram(&recorded, GROUP_COMMIT_APPENDS);
    // Every append the lean statement takes goes through a group: the sizes add up to them.
    let appends: f64 = sizes.iter().sum();
    assert_eq!(appends, (WRITERS * APPENDS) as f64, "groups: {sizes:?}");
    assert!(sizes.iter().all(|n| *n >= 1.0), "{sizes:?}");
    assert!(
        sizes.iter().any(|n| *n > 1.0),
        "nothing was grouped: {sizes:?}"
    );
    let waits = histogram(&recorded, GROUP_COMMIT_WAIT);
    assert_eq!(waits.len(), sizes.len(), "one wait per group");
    assert!(waits.iter().all(|s| *s >= 0.0 && *s < 60.0), "{waits:?}");
}

#[tokio::test]
async fn a_group_that_timed_out_records_no_appends_and_the_sizes_still_add_up_to_those_written() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let timeout = std::time::Duration::from_millis(500);
    let store = support::store_with(10)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0).timeout(timeout));
    let held = StreamId::new("held-1").expect("id");
    let event = || NewEvent::new("Counted", 1, json!({}));
    store
        .append(&held, ExpectedVersion::NoStream, vec![event()])
        .await
        .expect("first event");
    // An open unit of work holds the stream's next version: a grouped append to it waits on
    // the lock until its statement times out, and writes nothing.
    let mut holder = store.pool().acquire().await.expect("connection");
    let mut open = holder.begin().await.expect("begin");
    store
        .append_in(
            &mut open,
            &held,
            ExpectedVersion::Exact(Version::new(1)),
            vec![event()],
        )
        .await
        .expect("append_in");
    let blocked = {
        let (store, held) = (store.clone(), held.clone());
        tokio::spawn(async move {
            let expected = ExpectedVersion::Exact(Version::new(1));
            store.append(&held, expected, vec![event()]).await
        })
    };
    let others: Vec<_> = (0..3)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = StreamId::new(format!("free-{n}")).expect("id");
                store
                    .append(&id, ExpectedVersion::NoStream, vec![event()])
                    .await
            })
        })
        .collect();
    let mut written = 1.0;
    for other in others {
        // Each lands, in a group with the blocked one and then alone, or on its own.
        if other.await.expect("task").is_ok() {
            written += 1.0;
        }
    }
    assert!(
        blocked.await.expect("task").is_err(),
        "the blocked append timed out"
    );
    open.rollback().await.expect("rollback");

    let sizes = histogram(&take(&snapshotter), GROUP_COMMIT_APPENDS);
    assert_eq!(
        sizes.iter().sum::<f64>(),
        written,
        "statements' sizes: {sizes:?}"
    );
}

#[tokio::test]
async fn the_horizon_gauges_show_what_an_open_transaction_holds_back() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = support::store().await;

    // An open transaction with an id holds back the event committed after it.
    let mut conn = store.pool().acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .expect("take a transaction id");
    let stream = StreamId::new("held-1").expect("id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");

    let horizon = store.feed_horizon().await.expect("feed_horizon");
    record_feed_horizon(&horizon);
    let recorded = take(&snapshotter);
    let waiting = gauge(&recorded, FEED_HORIZON_WAITING_EVENTS);
    assert!(waiting >= 1.0, "waiting {waiting}: {horizon:?}");
    assert_eq!(waiting, horizon.waiting_events as f64);
    let oldest = horizon
        .oldest_open_transaction
        .expect("an open transaction")
        .as_secs_f64();
    assert_eq!(gauge(&recorded, FEED_HORIZON_OLDEST_TRANSACTION), oldest);
    tx.rollback().await.expect("rollback");
}
