//! The store says whether a failure is worth retrying: a database it cannot reach, or a
//! connection cut under it, or a server that cannot write for now, is `Error::Unavailable`
//! (the projection runner retries those); a failure a retry cannot cure (a closed pool, a
//! missing table) is `Error::Backend`. Either way the message says what went wrong.

mod support;

use std::time::Duration;

use cqrs_core::{AppendEvents, Error, ErrorKind, ExpectedVersion, NewEvent, ReadStream, StreamId};
use cqrs_core::{ReadAll, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

fn event() -> Vec<NewEvent> {
    vec![NewEvent::new("E", 1, json!({ "n": 1 }))]
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn a_database_nobody_listens_for_is_unavailable() {
    let url = format!("postgres://cqrs@127.0.0.1:{}/cqrs", closed_port());
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&url)
        .expect("a lazy pool");
    let store = PgEventStore::new(pool);
    let error = store
        .append(
            &StreamId::new("down-1").expect("id"),
            ExpectedVersion::Any,
            event(),
        )
        .await
        .expect_err("nothing to append to");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("database error"), "{error}");
}

#[tokio::test]
async fn a_connection_cut_under_an_append_is_unavailable() {
    let store = support::store_with(3).await;
    let mut conn = store.pool().acquire().await.expect("a connection");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pid");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 10000)")
        .bind(pid)
        .fetch_one(store.pool())
        .await
        .expect("terminate");
    assert!(terminated, "the backend was ended");

    let error = store
        .append_in(
            &mut conn,
            &StreamId::new("cut-1").expect("id"),
            ExpectedVersion::Any,
            event(),
        )
        .await
        .expect_err("the connection is gone");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
}

#[tokio::test]
async fn a_failure_a_retry_cannot_cure_is_a_backend_error_that_names_its_cause() {
    // A store whose tables were never created: every try fails the same way.
    let store = PgEventStore::new(support::pool(2).await).with_schema(support::unique_schema());
    let error = store
        .read_stream(&StreamId::new("none-1").expect("id"), Version::new(1), 10)
        .await
        .expect_err("no tables");
    assert!(matches!(error, Error::Backend(_)), "{error:?}");
    assert!(
        error.to_string().contains("does not exist"),
        "the message carries the database's reason: {error}"
    );

    // A pool closed on purpose stays closed.
    let store = support::store_with(2).await;
    store.pool().close().await;
    let error = store.head().await.expect_err("closed");
    assert_eq!(error.kind(), ErrorKind::Backend, "{error}");
}

#[tokio::test]
async fn a_server_that_cannot_write_for_now_is_unavailable() {
    // A connection left on a primary that was demoted by a failover (or a database set read
    // only for maintenance) refuses writes with 25006: a retry on a new connection, to the
    // new primary, gets through. The runner must retry it, and a service answer 503.
    let store = support::store_with(2).await;
    let read_only = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|connection, _| {
            Box::pin(async move {
                sqlx::query("SET default_transaction_read_only = on")
                    .execute(connection)
                    .await
                    .map(|_| ())
            })
        })
        .connect(&support::database_url())
        .await
        .expect("connect");
    let demoted = PgEventStore::new(read_only).with_schema(store.schema().clone());
    let error = demoted
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            event(),
        )
        .await
        .expect_err("read only");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("read-only"), "{error}");
}

#[tokio::test]
async fn a_connection_to_a_server_that_cannot_write_is_not_used_again() {
    // After a failover, the pool's connections to the demoted primary answer every write with
    // 25006 and every ping as usual: kept, a retry got the same connection, and the same
    // error, until the pool recycled it minutes later. The first connection here is such a
    // one; the next the pool opens writes.
    let store = support::store_with(2).await;
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .after_connect({
            let opened = opened.clone();
            move |connection, _| {
                let first = opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                Box::pin(async move {
                    if first {
                        sqlx::query("SET default_transaction_read_only = on")
                            .execute(connection)
                            .await?;
                    }
                    Ok(())
                })
            }
        })
        .connect(&support::database_url())
        .await
        .expect("connect");
    let failed_over = PgEventStore::new(pool).with_schema(store.schema().clone());
    let stream = StreamId::new("s-1").expect("id");
    let error = failed_over
        .append(&stream, ExpectedVersion::Any, event())
        .await
        .expect_err("read only");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    failed_over
        .append(&stream, ExpectedVersion::Any, event())
        .await
        .expect("the retry writes, on another connection");
}
