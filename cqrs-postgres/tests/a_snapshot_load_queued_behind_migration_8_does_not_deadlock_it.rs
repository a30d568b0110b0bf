//! Migration 8 locks the snapshots and the events tables for the length of an index rebuild
//! (seconds at tens of millions of events). A snapshot load queued behind it meanwhile must not
//! deadlock with it: the load reads the snapshots table first, so the migration takes that one
//! first too. Taken the other way, PostgreSQL found the cycle once the rebuild was done and
//! rolled the migration back, every writer having waited for nothing.

mod support;

use cqrs_core::{
    AppendEvents, ExpectedVersion, NewEvent, Snapshot, SnapshotStore, StreamId, Version,
};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::PgPool;

async fn execute(pool: &PgPool, store: &PgEventStore, statement: &str) {
    sqlx::query(&statement.replace("{schema}", &format!("\"{}\"", store.schema().as_str())))
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// The store as migration 7 left it: stream ids in the database's collation.
async fn before_migration_8(pool: &PgPool, store: &PgEventStore) {
    for statement in [
        "ALTER TABLE {schema}.events ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "ALTER TABLE {schema}.snapshots ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "DELETE FROM {schema}.schema_migrations WHERE version >= 8",
    ] {
        execute(pool, store, statement).await;
    }
}

fn event(n: u64) -> Vec<NewEvent> {
    vec![NewEvent::new("Counted", 1, json!({ "n": n }))]
}

/// How many lock requests on the schema's tables wait.
async fn waiting_locks(observer: &PgPool, store: &PgEventStore) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND NOT l.granted",
    )
    .bind(store.schema().as_str())
    .fetch_one(observer)
    .await
    .expect("pg_locks")
}

async fn wait_for_waiting_locks(observer: &PgPool, store: &PgEventStore, count: i64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while waiting_locks(observer, store).await < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} lock requests never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_waiting_on_both_tables_lets_the_migration_finish() {
    let admin = support::pool(3).await;
    let store = PgEventStore::new(support::pool(4).await)
        .with_schema(support::unique_schema())
        .without_group_commit();
    store.migrate().await.expect("migrate");
    before_migration_8(&admin, &store).await;
    let stream = StreamId::new("counter-1").expect("a stream id");
    store
        .append(&stream, ExpectedVersion::NoStream, event(1))
        .await
        .expect("append");
    store
        .save_snapshot(Snapshot::new(stream.clone(), Version::new(1), 1, json!({})))
        .await
        .expect("snapshot");

    // Another session reads the events table in a transaction: the migration will queue.
    let mut reader = admin.begin().await.expect("begin");
    execute_in(&mut reader, &store, "SELECT 1 FROM {schema}.events LIMIT 1").await;
    let migrating = tokio::spawn({
        let store = store.clone();
        async move { store.migrate().await }
    });
    wait_for_waiting_locks(&admin, &store, 1).await;
    // A load (the snapshot, then the events after it) queues too.
    let loading = tokio::spawn({
        let (store, stream) = (store.clone(), stream.clone());
        async move {
            store
                .replay_from_snapshot(&stream, 10, &mut |_| Ok(()))
                .await
        }
    });
    wait_for_waiting_locks(&admin, &store, 2).await;
    // Past the server's one deadlock check of the load's wait, so the migration would be the
    // one to find a cycle.
    let check: String = sqlx::query_scalar("SHOW deadlock_timeout")
        .fetch_one(&admin)
        .await
        .expect("deadlock_timeout");
    assert_eq!(
        check, "1s",
        "the test waits out the default deadlock_timeout"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    reader.rollback().await.expect("rollback");

    let migrated = migrating.await.expect("the migration's task");
    assert_eq!(migrated.expect("the upgrade"), [8, 9]);
    let loaded = loading.await.expect("the load's task");
    assert!(
        loaded.is_ok() || loaded.as_ref().is_err_and(|e| e.is_transient()),
        "{loaded:?}"
    );
}

async fn execute_in(conn: &mut sqlx::PgConnection, store: &PgEventStore, statement: &str) {
    sqlx::query(&statement.replace("{schema}", &format!("\"{}\"", store.schema().as_str())))
        .execute(conn)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}
