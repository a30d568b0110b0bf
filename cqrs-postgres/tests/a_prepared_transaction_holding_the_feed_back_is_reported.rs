//! `feed_horizon()` says what holds the gap-safe feed back. A prepared transaction (two-phase
//! commit) holds the horizon exactly like an open one, but belongs to no session: it is not in
//! `pg_stat_activity`, survives restarts, and only `COMMIT PREPARED` / `ROLLBACK PREPARED` ends
//! it. It must be reported, with its age.
//!
//! Needs a server with `max_prepared_transactions` > 0.

mod support;

use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use cqrs_postgres::{FeedHorizon, HorizonHolder, PgEventStore};
use serde_json::json;
use sqlx::Connection;

fn event() -> NewEvent {
    NewEvent::new("E", 1, json!({}))
}

/// Reads the horizon until the prepared transaction `gid` holds it (other tests' transactions
/// on the shared server may be older for a moment), or a deadline passes.
async fn horizon_held_by(store: &PgEventStore, gid: &str) -> FeedHorizon {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let horizon = store.feed_horizon().await.expect("feed_horizon");
        let ours =
            matches!(&horizon.holder, Some(HorizonHolder::Prepared { gid: g, .. }) if g == gid);
        if ours || tokio::time::Instant::now() >= deadline {
            return horizon;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_prepared_transaction_is_named_with_its_age() {
    let store = support::store().await;
    let enabled: String = sqlx::query_scalar("SHOW max_prepared_transactions")
        .fetch_one(store.pool())
        .await
        .expect("show");
    assert_ne!(
        enabled, "0",
        "this test needs a server with max_prepared_transactions > 0 (scripts/postgres.sh)"
    );
    let gid = format!("{}-feed-horizon", store.schema().as_str());

    let mut conn = store.pool().acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    // An id of its own, as any writing transaction has (an `append_in` cannot be prepared: its
    // statement sends NOTIFY, which PREPARE refuses).
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .expect("take a transaction id");
    sqlx::query(&format!("PREPARE TRANSACTION '{gid}'"))
        .execute(&mut *tx)
        .await
        .expect("prepare");
    // The session's transaction is over; the prepared one lives on without it.
    drop(tx);
    drop(conn);

    store
        .append(
            &StreamId::new("behind-1").expect("id"),
            ExpectedVersion::Any,
            vec![event()],
        )
        .await
        .expect("append");
    let horizon = horizon_held_by(&store, &gid).await;

    // End it before asserting: a prepared transaction left behind would hold back the feed of
    // every store on the server.
    sqlx::query(&format!("ROLLBACK PREPARED '{gid}'"))
        .execute(store.pool())
        .await
        .expect("rollback prepared");

    match &horizon.holder {
        Some(HorizonHolder::Prepared { gid: held, .. }) => assert_eq!(held, &gid),
        other => panic!("the prepared transaction holds the feed back, reported {other:?}"),
    }
    assert!(horizon.oldest_open_transaction.is_some(), "{horizon:?}");
    assert!(horizon.waiting_events >= 1, "{horizon:?}");
}

#[tokio::test]
async fn an_open_session_transaction_is_named_by_its_pid() {
    let store = support::store().await;
    let mut conn = store.pool().acquire().await.expect("connection");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pid");
    let mut tx = conn.begin().await.expect("begin");
    store
        .append_in(
            &mut tx,
            &StreamId::new("open-1").expect("id"),
            ExpectedVersion::Any,
            vec![event()],
        )
        .await
        .expect("append_in");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let horizon = loop {
        let horizon = store.feed_horizon().await.expect("feed_horizon");
        let ours =
            matches!(horizon.holder, Some(HorizonHolder::Session { pid: p, .. }) if p == pid);
        if ours || tokio::time::Instant::now() >= deadline {
            break horizon;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tx.rollback().await.expect("rollback");
    match horizon.holder {
        Some(HorizonHolder::Session { pid: p, age }) => {
            assert_eq!(p, pid);
            assert!(age.is_some(), "this role sees its own sessions' start");
        }
        other => panic!("the open transaction holds the feed back, reported {other:?}"),
    }
    assert!(horizon.oldest_open_transaction.is_some());
}
