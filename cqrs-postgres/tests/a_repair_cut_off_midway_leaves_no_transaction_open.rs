//! `repair_transaction_ids` works in one transaction holding the store's tables locked. A caller
//! that gives up on it (a timeout, an aborted task) must not leave that transaction open on a
//! pooled connection: every later statement on it would run inside it, invisible to others and
//! holding back the feed of the whole server. The repair runs to its end (here: it finds
//! nothing to repair and rolls back) whatever happens to the future that asked for it.

mod support;

use std::time::Duration;

/// Polls until a backend waits on a lock of `table`.
async fn wait_for_a_lock_waiter(observer: &sqlx::PgPool, table: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
        )
        .bind(table)
        .fetch_one(observer)
        .await
        .expect("query pg_locks");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the repair never waited on its lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_cut_off_while_it_waits_for_its_lock_leaves_no_transaction_open() {
    // One connection: the one the repair took is the one every later statement gets.
    let store = support::store_with(1).await;
    let schema = store.schema().as_str().to_owned();
    let observer = support::pool(2).await;

    // Another session reads the events table in an open transaction: the repair's lock waits.
    let mut reader = observer.begin().await.expect("a transaction");
    sqlx::query(&format!("SELECT count(*) FROM {schema}.events"))
        .execute(&mut *reader)
        .await
        .expect("read");
    let cut_off = {
        let store = store.clone();
        tokio::spawn(async move { store.repair_transaction_ids().await })
    };
    wait_for_a_lock_waiter(&observer, &format!("{schema}.events")).await;
    cut_off.abort();
    assert!(cut_off.await.is_err_and(|e| e.is_cancelled()));
    reader
        .rollback()
        .await
        .expect("end the reader's transaction");

    // The pool's one connection (once the repair gave it back) is in no transaction.
    let pid: i32 = tokio::time::timeout(
        Duration::from_secs(20),
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()),
    )
    .await
    .expect("the pool's connection comes back")
    .expect("query");
    let state: String = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(&observer)
        .await
        .expect("pg_stat_activity");
    assert_eq!(
        state, "idle",
        "the pooled connection is inside a transaction"
    );
}
