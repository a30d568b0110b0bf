//! `migrate()` serializes migrations across processes with an advisory lock. A caller that
//! gives up on it (a startup timeout, a cancelled task) drops its future midway; that must not
//! leave the lock held by a pooled connection, or every later migration, from any process,
//! blocks for good.

mod support;

use std::time::Duration;

use cqrs_postgres::PgEventStore;
use sqlx::PgPool;

/// Polls until a backend waits on an advisory lock taken for `schema`'s migrations.
async fn wait_for_a_waiter_on_the_lock(observer: &PgPool, lock_key: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l
             WHERE l.locktype = 'advisory' AND NOT l.granted
               AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)",
        )
        .bind(lock_key)
        .fetch_one(observer)
        .await
        .expect("query pg_locks");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the migration never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_dropped_while_waiting_for_the_lock_does_not_block_the_next_one() {
    let schema = support::unique_schema();
    let lock_key = format!("cqrs-migrate-{}", schema.as_str());
    let observer = support::pool(2).await;

    // Another process is migrating: it holds the lock.
    let mut holder = observer.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&lock_key)
        .execute(&mut *holder)
        .await
        .expect("take the lock");

    // This process starts migrating and gives up while it waits.
    let impatient = PgEventStore::new(support::pool(2).await).with_schema(schema.clone());
    let dropped = {
        let store = impatient.clone();
        tokio::spawn(async move { store.migrate().await })
    };
    wait_for_a_waiter_on_the_lock(&observer, &lock_key).await;
    dropped.abort();
    assert!(dropped.await.is_err_and(|e| e.is_cancelled()));

    // The other process finishes.
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&lock_key)
        .execute(&mut *holder)
        .await
        .expect("release the lock");

    // A third process (and this one, still running) can migrate.
    let other = PgEventStore::new(support::pool(2).await).with_schema(schema.clone());
    let migrated = tokio::time::timeout(Duration::from_secs(20), other.migrate()).await;
    assert!(
        migrated.is_ok(),
        "a later migration blocked on a lock the dropped one left behind"
    );
    migrated
        .unwrap_or_else(|_| unreachable!())
        .expect("migrate");
    let again = tokio::time::timeout(Duration::from_secs(20), impatient.migrate()).await;
    again
        .expect("the impatient process can migrate again")
        .expect("migrate");
}
