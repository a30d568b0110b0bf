//! Grouped loads on a real server: loads that meet in one statement each fold exactly what
//! they fold alone (empty, short and long streams, from any version, any limit, a long stream
//! past the group's 100 rows), every grouped statement is measured, and a group whose
//! statement fails (here: its backend terminated) leaves each load to read on its own, after
//! which loads are read in groups again.
//!
//! Each test installs its own `DebuggingRecorder` as the thread's default on a current-thread
//! runtime, so the lane task it starts records there.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use cqrs_core::telemetry::metrics::GROUP_COMMIT_LOADS;
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, Payload, ReadStream, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgEventStore};
use futures_util::future::join_all;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use sqlx::Connection;

/// Streams and their lengths: none, one event, a few, past a group's 1,000 rows.
const STREAMS: [(&str, u64); 4] = [("empty", 0), ("one", 1), ("few", 5), ("long", 2_500)];

/// The loads run together: `(stream, from, max)`. Those from version 1 go to groups; those
/// from a later version read alone, as catch-ups do, beside them.
fn loads() -> Vec<(&'static str, u64, usize)> {
    let mut loads = Vec::new();
    for (stream, _) in STREAMS {
        loads.push((stream, 1, usize::MAX));
        loads.push((stream, 3, 2));
    }
    loads.extend([
        ("long", 1, 1_000),
        ("long", 1, 1_001),
        ("long", 999, 5),
        ("long", 2_400, usize::MAX),
        ("long", 2_501, usize::MAX),
        ("few", 6, 10),
    ]);
    loads
}

/// What one load folds: each event's version, type, schema version and payload text.
async fn fold(
    store: &PgEventStore,
    stream: &str,
    from: u64,
    max: usize,
) -> Vec<(u64, String, u32, String)> {
    let id = StreamId::new(stream).expect("id");
    let mut folded = Vec::new();
    let count = store
        .replay(&id, Version::new(from), max, &mut |event| {
            let payload = match event.payload {
                Payload::Json(text) => text.to_owned(),
                Payload::Value(value) => value.to_string(),
            };
            folded.push((
                event.version.get(),
                event.event_type.to_owned(),
                event.schema_version,
                payload,
            ));
            Ok(())
        })
        .await
        .expect("replay");
    assert_eq!(
        count,
        folded.len(),
        "{stream} from {from}: the count is what was folded"
    );
    folded
}

/// A store whose streams are [`STREAMS`], and the same store with every load grouped.
async fn stores() -> (PgEventStore, PgEventStore) {
    let plain = support::store_with(20).await;
    for (stream, length) in STREAMS {
        let id = StreamId::new(stream).expect("id");
        let events: Vec<NewEvent> = (1..=length)
            .map(|n| {
                let schema_version = if n % 2 == 0 { 1 } else { 2 };
                NewEvent::new("Counted", schema_version, json!({ "n": n, "of": stream }))
            })
            .collect();
        for (k, batch) in events.chunks(500).enumerate() {
            let expected = ExpectedVersion::Exact(Version::new(500 * k as u64));
            plain
                .append(&id, expected, batch.to_vec())
                .await
                .expect("append");
        }
    }
    let grouped = plain.clone().with_group_commit(GroupCommit::default());
    (plain, grouped)
}

/// Every metric recorded, by name. Taking it resets the histograms.
fn take(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect()
}

fn group_sizes(snapshotter: &Snapshotter) -> Vec<f64> {
    match take(snapshotter).remove(GROUP_COMMIT_LOADS) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
        other => panic!("{GROUP_COMMIT_LOADS} is not a recorded histogram: {other:?}"),
    }
}

/// Runs every load of [`loads`] at once on `grouped`, and checks each against `plain` alone.
async fn every_load_folds_what_it_folds_alone(plain: &PgEventStore, grouped: &PgEventStore) {
    let loads = loads();
    let together = join_all(
        loads
            .iter()
            .map(|(stream, from, max)| fold(grouped, stream, *from, *max)),
    )
    .await;
    for ((stream, from, max), folded) in loads.iter().zip(together) {
        let alone = fold(plain, stream, *from, *max).await;
        assert_eq!(
            folded.len(),
            alone.len(),
            "{stream} from {from}, at most {max}: the number of events"
        );
        assert_eq!(folded, alone, "{stream} from {from}, at most {max}");
    }
}

#[tokio::test]
async fn loads_read_together_each_fold_what_they_fold_alone_and_each_group_is_measured() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (plain, grouped) = stores().await;

    every_load_folds_what_it_folds_alone(&plain, &grouped).await;

    let sizes = group_sizes(&snapshotter);
    let loads = loads().len() as f64;
    // On one thread every load queues before the lane's first statement. The sizes count each
    // load at most once (the rest of a long stream is read alone, outside any group).
    assert!(sizes.iter().all(|n| *n >= 1.0), "{sizes:?}");
    assert!(sizes.iter().sum::<f64>() <= loads, "groups: {sizes:?}");
    assert!(
        sizes.iter().any(|n| *n > 1.0),
        "nothing was grouped: {sizes:?}"
    );
}

/// Waits (up to 10 s) for a backend running the statement whose text contains `marker`, on
/// `schema`'s tables, to wait on a lock, and terminates it.
async fn terminate_waiting(admin: &mut sqlx::PgConnection, schema: &str, marker: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND position($1 in query) > 0 \
               AND position($2 in query) > 0 LIMIT 1",
        )
        .bind(marker)
        .bind(schema)
        .fetch_optional(&mut *admin)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = pid {
            let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&mut *admin)
                .await
                .expect("terminate");
            assert!(done, "backend {pid} terminated");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statement with {marker:?} waited on the lock within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_group_whose_statement_fails_leaves_each_load_to_read_alone_and_groups_go_on() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (plain, grouped) = stores().await;

    // A transaction holding the table: the group's statement waits on it. Its backend
    // terminated, each load of the group reads on its own, once the lock is gone.
    let mut admin = sqlx::PgConnection::connect(&support::database_url())
        .await
        .expect("connect");
    let mut locker = sqlx::PgConnection::connect(&support::database_url())
        .await
        .expect("connect");
    let mut lock = locker.begin().await.expect("begin");
    sqlx::query(&format!(
        "LOCK TABLE \"{}\".events IN ACCESS EXCLUSIVE MODE",
        plain.schema().as_str()
    ))
    .execute(&mut *lock)
    .await
    .expect("lock");
    let running: Vec<_> = loads()
        .into_iter()
        .map(|(stream, from, max)| {
            let grouped = grouped.clone();
            tokio::spawn(async move { fold(&grouped, stream, from, max).await })
        })
        .collect();
    terminate_waiting(
        &mut admin,
        plain.schema().as_str(),
        "Several loads in one statement",
    )
    .await;
    lock.commit().await.expect("unlock");

    for ((stream, from, max), running) in loads().into_iter().zip(running) {
        assert_eq!(
            running.await.expect("load task"),
            fold(&plain, stream, from, max).await,
            "{stream} from {from}, at most {max}"
        );
    }
    // The loads went to a group first (its statement was the one terminated), which read
    // nothing: no size is recorded for it.
    assert!(
        !take(&snapshotter).contains_key(GROUP_COMMIT_LOADS),
        "a group whose statement failed records no loads"
    );

    // Loads are grouped again.
    every_load_folds_what_it_folds_alone(&plain, &grouped).await;
    assert!(
        group_sizes(&snapshotter).iter().any(|n| *n > 1.0),
        "loads are read together again"
    );
}
