//! `append_in` cut off midway (a caller's timeout, an aborted task, a request whose client
//! went away) leaves the connection as it found it. sqlx 0.8's `begin()` is not cancel-safe:
//! cut off while its `SAVEPOINT` was on its way, it rolled the caller's whole transaction back
//! and forgot it, so the caller's later statements committed alone and its `commit()` answered
//! `Ok` for nothing; on a plain connection, it left a transaction open that the pool handed on.

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cqrs_core::{ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::PgConnection;

/// Polls `future` once (which sends its first statement) and drops it.
fn cut_off_after_one_poll<F: Future>(future: F) {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    assert!(
        matches!(future.as_mut().poll(&mut context), Poll::Pending),
        "the call finished in one poll: nothing to cut off"
    );
}

fn event() -> Vec<NewEvent> {
    vec![NewEvent::new("Flagged", 1, json!({}))]
}

async fn marks(store: &PgEventStore) -> Vec<i32> {
    sqlx::query_scalar(&format!(
        "SELECT n FROM \"{}\".marks ORDER BY n",
        store.schema().as_str()
    ))
    .fetch_all(store.pool())
    .await
    .expect("marks")
}

async fn mark(conn: &mut PgConnection, store: &PgEventStore, n: i32) {
    sqlx::query(&format!(
        "INSERT INTO \"{}\".marks VALUES ($1)",
        store.schema().as_str()
    ))
    .bind(n)
    .execute(conn)
    .await
    .expect("mark");
}

#[tokio::test]
async fn the_caller_s_transaction_still_commits_all_its_work_after_an_append_in_was_cut_off() {
    // One connection, which the first transaction readies for the cut-off append's.
    let store = support::store_with(1).await;
    sqlx::query(&format!(
        "CREATE TABLE \"{}\".marks (n int)",
        store.schema().as_str()
    ))
    .execute(store.pool())
    .await
    .expect("create marks");
    let stream = StreamId::new("account-1").expect("a stream id");
    // Once in full: the store's checks of the connection are done, so the next one's first
    // poll sends what opens the append.
    let mut tx = store.pool().begin().await.expect("begin");
    store
        .append_in(&mut tx, &stream, ExpectedVersion::NoStream, event())
        .await
        .expect("append_in");
    tx.commit().await.expect("commit");

    let mut tx = store.pool().begin().await.expect("begin");
    mark(&mut tx, &store, 1).await;
    cut_off_after_one_poll(store.append_in(&mut tx, &stream, ExpectedVersion::Any, event()));
    mark(&mut tx, &store, 2).await;
    tx.commit().await.expect("commit");

    assert_eq!(
        marks(&store).await,
        [1, 2],
        "the transaction's work, all of it"
    );
    // And the same transaction appends as usual after a cut-off one.
    let mut tx = store.pool().begin().await.expect("begin");
    cut_off_after_one_poll(store.append_in(&mut tx, &stream, ExpectedVersion::Any, event()));
    let outcome = store
        .append_in(&mut tx, &stream, ExpectedVersion::Any, event())
        .await
        .expect("append_in after a cut-off one");
    tx.commit().await.expect("commit");
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    // The cut-off appends may have sent their statement before they were dropped.
    assert_eq!(events.len() as u64, outcome.last_version.get());
}

#[tokio::test]
async fn a_plain_connection_is_left_outside_any_transaction_after_an_append_in_was_cut_off() {
    let store = support::store_with(4).await;
    let stream = StreamId::new("account-1").expect("a stream id");
    let mut conn = store.pool().acquire().await.expect("acquire");
    // Once in full: the store's checks of the connection are done, so the next one's first
    // poll sends what opens the append.
    store
        .append_in(&mut conn, &stream, ExpectedVersion::NoStream, event())
        .await
        .expect("append_in on a plain connection");

    cut_off_after_one_poll(store.append_in(&mut conn, &stream, ExpectedVersion::Any, event()));

    // PostgreSQL takes a savepoint only inside a transaction (25P01 outside).
    let probe = sqlx::raw_sql("SAVEPOINT probe; RELEASE SAVEPOINT probe")
        .execute(&mut *conn)
        .await;
    let outside = probe
        .as_ref()
        .err()
        .and_then(|error| error.as_database_error())
        .and_then(|db| db.code())
        .is_some_and(|code| code == "25P01");
    assert!(
        outside,
        "the session was left inside a transaction: {probe:?}"
    );
    // A plain connection still appends, on its own.
    store
        .append_in(&mut conn, &stream, ExpectedVersion::Any, event())
        .await
        .expect("append_in on a plain connection");
}
