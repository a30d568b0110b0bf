//! `cqrs_postgres::pool_options` hands out a connection used within the last second without
//! sqlx's round trip to check it, and checks one that sat idle longer. Both halves against a
//! real server, whose backend behind the pool's only connection is terminated between uses: a
//! check replaces it unseen; without one, the next append fails as transient, writes nothing,
//! and its retry lands on a new connection.

mod support;

use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::{pool_options_checking_idle, testing, PgEventStore};
use serde_json::json;
use sqlx::PgPool;

/// A migrated store on a pool of one connection checked after `after` idle.
async fn store_on_one_connection(after: Duration) -> (PgEventStore, PgPool) {
    let pool = pool_options_checking_idle(after)
        .max_connections(1)
        .connect(&support::database_url())
        .await
        .expect("connect to DATABASE_URL");
    let store = testing::fresh_store_on(pool.clone())
        .await
        .expect("migrate")
        .keep();
    (store, pool)
}

/// The backend process behind the pool's only connection.
async fn backend(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .expect("the backend's pid")
}

/// Terminates backend `pid` from another connection; the server answers once it has exited
/// (`pg_terminate_backend`'s timeout, 10 s, as `an_unreachable_or_cut_database_...` uses it).
async fn terminate(pid: i32) {
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 10000)")
        .bind(pid)
        .fetch_one(&support::pool(1).await)
        .await
        .expect("terminate");
    assert!(terminated, "backend {pid} did not exit within 10 s");
}

fn opened() -> Vec<NewEvent> {
    vec![NewEvent::new("Opened", 1, json!({"owner": "ada"}))]
}

#[tokio::test]
async fn a_connection_the_server_closed_while_it_sat_idle_is_checked_and_replaced_unseen() {
    let after = Duration::from_millis(200);
    let (store, pool) = store_on_one_connection(after).await;
    let first = backend(&pool).await;
    terminate(first).await;
    // Idle past the threshold, so the next acquire checks the connection.
    tokio::time::sleep(after + Duration::from_millis(100)).await;

    let stream = StreamId::new("account-idle").expect("stream id");
    let outcome = store
        .append(&stream, ExpectedVersion::NoStream, opened())
        .await
        .expect("the check found the closed connection and the pool opened another");

    assert_eq!(outcome.last_version, Version::new(1));
    assert_ne!(backend(&pool).await, first, "a new backend serves the pool");
}

#[tokio::test]
async fn a_connection_the_server_closed_just_after_use_fails_the_next_append_as_transient_and_writes_nothing(
) {
    // Never idle long enough to be checked: the case of a close within the threshold.
    let (store, pool) = store_on_one_connection(Duration::from_secs(3600)).await;
    let first = backend(&pool).await;
    terminate(first).await;

    let stream = StreamId::new("account-unchecked").expect("stream id");
    let error = store
        .append(&stream, ExpectedVersion::NoStream, opened())
        .await
        .expect_err("the unchecked connection was closed by the server");
    assert!(error.is_transient(), "retryable: {error}");

    let retried = store
        .append(&stream, ExpectedVersion::NoStream, opened())
        .await
        .expect("the broken connection was discarded; the retry gets a new one");
    assert_eq!(
        retried.last_version,
        Version::new(1),
        "the failed append wrote nothing: the retry's event is the stream's first"
    );
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 1);
    assert_ne!(backend(&pool).await, first);
}
