//! The seams that break a group's connection after its commit and fail the lookup after it,
//! and the tests that use them.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

/// Faults a test sets for the next group of a store's lanes.
#[derive(Debug, Default)]
pub(crate) struct Seams {
    /// The next group commits, then its connection is really broken before the reply is read
    /// ([`lose_reply`]).
    pub(crate) lose_next_reply: AtomicBool,
    /// The next lookup of a broken group's events fails, as when no connection comes back
    /// within the timeout (a server still recovering).
    pub(crate) fail_next_lookup: AtomicBool,
    /// How many lookups of a broken group's events began.
    pub(crate) lookups: std::sync::atomic::AtomicUsize,
}

/// The seam behind `lose_next_reply`: the group's statement has committed on `conn`; end
/// that connection's backend for real (`pg_terminate_backend` from another session) and
/// return the error that using it then gives, as if the connection had broken before the
/// reply arrived.
pub(super) async fn lose_reply(pool: &PgPool, conn: &mut PoolConnection<Postgres>) -> sqlx::Error {
    use sqlx::Connection;
    let pid: i32 = match sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **conn)
        .await
    {
        Ok(pid) => pid,
        Err(error) => return error,
    };
    let killer = sqlx::PgConnection::connect_with(&pool.connect_options()).await;
    let terminated = match killer {
        Ok(mut killer) => sqlx::query("SELECT pg_terminate_backend($1, 10000)")
            .bind(pid)
            .execute(&mut killer)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = terminated {
        return error;
    }
    match sqlx::query("SELECT 1").execute(&mut **conn).await {
        Err(error) => error,
        Ok(_) => sqlx::Error::Protocol("the terminated backend still answered".into()),
    }
}

use crate::test_pool::test_pool;
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, Version};

use cqrs_core::StreamId;

use crate::GroupCommit;
use crate::{PgEventStore, PgSchema};

/// A grouped append whose group committed, then lost its reply (and, with `lookup_fails`, the
/// lookup after it failed too): written once, and reported as written, not as a duplicate.
async fn a_lost_reply_is_reported_as_written(lookup_fails: bool) {
    let pool = test_pool(4).await;
    let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
    let store = PgEventStore::new(pool)
        .with_schema(schema)
        .with_group_commit(GroupCommit::default().alone_below(0));
    store.migrate().await.expect("migrate");
    let stream = StreamId::new("lost-reply-1").expect("id");
    let seams = Arc::clone(&store.group.as_ref().expect("grouped").seams);
    seams.lose_next_reply.store(true, SeqCst);
    seams.fail_next_lookup.store(lookup_fails, SeqCst);

    let outcome = store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, serde_json::json!({ "n": 1 }))],
        )
        .await
        .expect("append");
    assert!(
        !seams.lose_next_reply.load(SeqCst),
        "the group's connection was broken after its commit"
    );
    assert!(
        !seams.fail_next_lookup.load(SeqCst),
        "the lookup after it failed, if asked to"
    );
    assert_eq!(
        (outcome.first_version, outcome.last_version),
        (Version::new(1), Version::new(1))
    );
    assert!(
        !outcome.duplicate,
        "this append wrote its events, yet came back as a duplicate: {outcome:?}"
    );
    let events = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 1, "written once");
    assert_eq!(events[0].position, outcome.position);
}

#[tokio::test]
async fn a_grouped_append_whose_reply_was_lost_after_commit_is_reported_as_written_not_duplicate() {
    a_lost_reply_is_reported_as_written(false).await;
}

/// The lookup fails when no connection comes back in time (a server still recovering): the
/// writer appends on its own, finds its own events at its versions, and knows the group may
/// have written them.
#[tokio::test]
async fn a_grouped_append_whose_reply_and_lookup_were_lost_is_reported_as_written_not_duplicate() {
    a_lost_reply_is_reported_as_written(true).await;
}

/// A group whose lane got no connection within the timeout (every one in use) sent nothing:
/// its writers append on their own at once, without a lookup of events never written (which
/// waited for a connection a second time, and took the group for perhaps written).
#[tokio::test]
async fn a_group_that_got_no_connection_is_not_looked_up() {
    let pool = test_pool(1).await;
    let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
    let store = PgEventStore::new(pool.clone())
        .with_schema(schema)
        .with_group_commit(
            GroupCommit::default()
                .alone_below(0)
                .timeout(std::time::Duration::from_millis(200)),
        );
    store.migrate().await.expect("migrate");
    let seams = Arc::clone(&store.group.as_ref().expect("grouped").seams);
    // The pool's one connection, held past the lane's timeout (and a lookup's after it).
    let held = pool.acquire().await.expect("the connection");
    let append = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    &StreamId::new("no-connection-1").expect("id"),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("E", 1, serde_json::json!({}))],
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    drop(held);

    let outcome = append
        .await
        .expect("the append task")
        .expect("written alone");

    assert_eq!(outcome.last_version, Version::new(1));
    assert!(!outcome.duplicate);
    assert_eq!(
        seams.lookups.load(SeqCst),
        0,
        "nothing was sent: nothing to look up"
    );
}

/// A group waiting on a lock past the store's answer timeout (a short one here), but within its
/// own `statement_timeout`, is answered, not given up: given up, its statement would still run
/// and land after the lookup, and the writer, appending on its own, would wait on the same
/// lock, then find its own events and take them for a repeat (or run out of time itself).
#[tokio::test]
async fn a_group_waiting_on_a_lock_past_a_short_answer_timeout_is_answered_not_given_up() {
    use std::time::Duration;

    let pool = test_pool(4).await;
    let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
    let store = PgEventStore::new(pool.clone())
        .with_schema(schema)
        .with_answer_timeout(Duration::from_millis(200))
        .with_group_commit(
            GroupCommit::default()
                .alone_below(0)
                .timeout(Duration::from_secs(5)),
        );
    store.migrate().await.expect("migrate");
    let stream = StreamId::new("locked-1").expect("id");
    let event = |n: i32| vec![NewEvent::new("E", 1, serde_json::json!({ "n": n }))];
    // An open transaction holds the stream's first version for 600 ms, then rolls back.
    let mut held = pool.begin().await.expect("begin");
    store
        .append_in(&mut held, &stream, ExpectedVersion::NoStream, event(0))
        .await
        .expect("the held append");
    let holder = tokio::spawn(async move {
        // The lock's holding time, not a wait for a condition.
        tokio::time::sleep(Duration::from_millis(600)).await;
        held.rollback().await
    });

    let outcome = store
        .append(&stream, ExpectedVersion::NoStream, event(1))
        .await
        .expect("the grouped append, once the lock is let go");
    holder.await.expect("the holder").expect("rolled back");
    assert!(!outcome.duplicate, "{outcome:?}");
    assert_eq!(outcome.first_version, Version::new(1));
    // Read under a bound a busy machine meets.
    let events = (store.clone().with_answer_timeout(Duration::from_secs(30)))
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(events.len(), 1, "written once: {events:?}");
    assert_eq!(events[0].payload, serde_json::json!({ "n": 1 }));
}
