//! A migration that alters a busy table asks for its exclusive lock, and PostgreSQL queues every
//! later request on that table behind the request: while another session holds any lock on it
//! (a `pg_dump`, a transaction left open), a migration waiting without bound stalled every
//! append and read of the store, from every process, for as long as that session ran, and no
//! caller could stop it. A migration now waits at most a few seconds for a table's lock, then
//! fails as transient (retry it later), and the store goes on meanwhile.

mod support;

use std::time::{Duration, Instant};

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_waits_a_bounded_time_for_a_table_another_session_holds() {
    let store = support::store_with(4).await;
    let quoted = format!("\"{}\"", store.schema().as_str());
    // Migration 8 alters the events table; it is run again (with the ones after it).
    sqlx::query(&format!(
        "DELETE FROM {quoted}.schema_migrations WHERE version >= 8"
    ))
    .execute(store.pool())
    .await
    .expect("forget migration 8");
    // Another session reads the events in a transaction it keeps open (a dump's lock).
    let mut holder = sqlx::PgConnection::connect(&support::database_url())
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query(&format!("SELECT 1 FROM {quoted}.events LIMIT 1"))
        .execute(&mut holder)
        .await
        .expect("read in the open transaction");

    let started = Instant::now();
    let migrating = tokio::spawn({
        let store = store.clone();
        async move { store.migrate().await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let appending = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append(
                    &StreamId::new("order-1").expect("id"),
                    ExpectedVersion::Any,
                    vec![NewEvent::new("Placed", 1, serde_json::json!({}))],
                )
                .await
        }
    });

    let migrated = tokio::time::timeout(Duration::from_secs(20), migrating)
        .await
        .expect("the migration gives up waiting for the table")
        .expect("task");
    let error = migrated.expect_err("the table stays locked by the other session");
    assert!(error.is_transient(), "retry later: {error}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    tokio::time::timeout(Duration::from_secs(20), appending)
        .await
        .expect("the append goes through once the migration gave up")
        .expect("task")
        .expect("appended");

    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("rollback");
    assert_eq!(
        store
            .migrate()
            .await
            .expect("migrates once the table is free"),
        [8, 9]
    );
    sqlx::query(&format!("DROP SCHEMA {quoted} CASCADE"))
        .execute(store.pool())
        .await
        .expect("drop the schema");
}
