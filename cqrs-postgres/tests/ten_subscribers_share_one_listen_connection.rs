//! Feed signals: every runner of a store subscribes to its wake-ups. Ten of them on a pool of
//! two connections must neither starve the pool (appends still work) nor go deaf (each is
//! woken by a commit), and the store keeps one `LISTEN` connection for all of them, its own,
//! outside the store's pool: a pool of one still serves every call, and the connection goes
//! when the pool closes.

mod support;

use std::time::Duration;

use cqrs_core::projection::FeedSignal;
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;

const SUBSCRIBERS: usize = 10;

/// How many sessions listen on the store's channel now.
async fn listeners(observer: &PgPool, store: &PgEventStore) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND rtrim(query, ';') = $1",
    )
    .bind(format!("LISTEN \"{}\"", store.channel()))
    .fetch_one(observer)
    .await
    .expect("query pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_subscribers_on_a_pool_of_two_are_woken_and_appends_still_work() {
    let store = support::store_with(2).await;
    let observer = support::pool(1).await;
    let signal = store.feed_signal();

    let (woken, mut wakes) = mpsc::unbounded_channel();
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|n| {
            let mut waiter = signal.subscribe();
            let woken = woken.clone();
            tokio::spawn(async move {
                loop {
                    waiter.wait().await;
                    if woken.send(n).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();

    // Handshake: someone listens before anything is appended.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while listeners(&observer, &store).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody ever listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Wake-ups from before the append (allowed: a wait may return early) do not count.
    while wakes.try_recv().is_ok() {}

    let stream = StreamId::new("wake-1").expect("id");
    tokio::time::timeout(
        Duration::from_secs(10),
        store.append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        ),
    )
    .await
    .expect("an append got no pool connection: the subscribers hold them all")
    .expect("append");

    let mut seen = [false; SUBSCRIBERS];
    while seen.iter().any(|s| !s) {
        let n = tokio::time::timeout(Duration::from_secs(10), wakes.recv())
            .await
            .unwrap_or_else(|_| panic!("not woken: {seen:?}"))
            .expect("subscribers run");
        seen[n] = true;
    }
    assert_eq!(
        listeners(&observer, &store).await,
        1,
        "one LISTEN connection for the whole store"
    );
    for subscriber in subscribers {
        subscriber.abort();
    }
}

/// The pid of the session listening on the store's channel, once there is one.
async fn listener_pid(observer: &PgPool, store: &PgEventStore, not: Option<i32>) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND rtrim(query, ';') = $1
               AND pid IS DISTINCT FROM $2
             LIMIT 1",
        )
        .bind(format!("LISTEN \"{}\"", store.channel()))
        .bind(not)
        .fetch_optional(observer)
        .await
        .expect("query pg_stat_activity");
        if let Some(pid) = pid {
            return pid;
        }
        assert!(tokio::time::Instant::now() < deadline, "nobody listens");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_listener_reconnects_after_its_connection_is_killed() {
    let store = support::store_with(3).await;
    let observer = support::pool(1).await;
    let mut waiter = store.feed_signal().subscribe();
    let (woken, mut wakes) = mpsc::unbounded_channel();
    let subscriber = tokio::spawn(async move {
        loop {
            waiter.wait().await;
            if woken.send(()).is_err() {
                return;
            }
        }
    });
    let first = listener_pid(&observer, &store, None).await;
    sqlx::query("SELECT pg_terminate_backend($1, 10000)")
        .bind(first)
        .execute(&observer)
        .await
        .expect("terminate the listener");
    // A new session listens (its reconnection wakes the subscriber: allowed).
    listener_pid(&observer, &store, Some(first)).await;
    while wakes.try_recv().is_ok() {}

    store
        .append(
            &StreamId::new("wake-2").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");
    tokio::time::timeout(Duration::from_secs(10), wakes.recv())
        .await
        .expect("woken through the new connection")
        .expect("subscriber runs");
    subscriber.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_a_pool_of_one_leaves_the_connection_to_calls() {
    let store = support::store_with(1).await;
    let observer = support::pool(1).await;
    let mut waiter = store.feed_signal().subscribe();
    let (woken, mut wakes) = mpsc::unbounded_channel();
    let subscriber = tokio::spawn(async move {
        loop {
            waiter.wait().await;
            if woken.send(()).is_err() {
                return;
            }
        }
    });
    listener_pid(&observer, &store, None).await;
    while wakes.try_recv().is_ok() {}

    tokio::time::timeout(
        Duration::from_secs(10),
        store.append(
            &StreamId::new("wake-3").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        ),
    )
    .await
    .expect("an append got no connection: the LISTEN connection holds the pool's only one")
    .expect("append");
    tokio::time::timeout(Duration::from_secs(10), wakes.recv())
        .await
        .expect("woken by the append")
        .expect("subscriber runs");
    subscriber.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_connection_goes_when_the_store_s_pool_closes() {
    let store = support::store_with(2).await;
    let observer = support::pool(1).await;
    let waiter = store.feed_signal().subscribe();
    let pid = listener_pid(&observer, &store, None).await;

    store.pool().close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(&observer)
                .await
                .expect("query pg_stat_activity");
        if !open {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the LISTEN connection outlived the store's pool"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(waiter);
}
