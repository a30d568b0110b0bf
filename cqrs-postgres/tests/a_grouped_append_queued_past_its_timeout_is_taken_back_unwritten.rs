//! A grouped append whose lane does not take it within the group commit's timeout is taken back
//! by its writer: it fails with `AppendTimedOut` at the `Queued` stage and is never written,
//! not even once the lane gets to it.
//!
//! Groups of one (`max_appends(1)`) and a stream whose next version an open transaction holds:
//! two appends to that stream each keep the lane busy for a whole timeout, and an append to
//! another stream queued behind them waits longer than its own.

mod support;

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use cqrs_core::{AppendEvents, Error, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgError, PgEventStore, TimeoutStage};
use serde_json::json;
use sqlx::Connection;

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn event(n: u64) -> Vec<NewEvent> {
    vec![NewEvent::new("Counted", 1, json!({ "n": n }))]
}

/// Polls until a backend waits on a lock that the session `holder` holds.
async fn wait_for_a_lock_wait(store: &PgEventStore, holder: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND $1 = ANY (pg_blocking_pids(pid))",
        )
        .bind(holder)
        .fetch_one(store.pool())
        .await
        .expect("query pg_stat_activity");
        if waiting > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 20 s waiting for the grouped append to wait on the open \
             transaction's lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `AppendTimedOut` stage of `result`, or a panic saying what it was.
fn timed_out_stage(result: Result<cqrs_core::AppendOutcome, Error>) -> TimeoutStage {
    match result {
        // A timed-out append wrote nothing: worth retrying.
        Err(Error::Unavailable(error)) => match error.downcast_ref::<PgError>() {
            Some(PgError::AppendTimedOut { stage, .. }) => *stage,
            _ => panic!("expected AppendTimedOut, got {error:?}"),
        },
        other => panic!("expected AppendTimedOut, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_queued_past_the_timeout_fails_as_queued_and_is_never_written() {
    let timeout = Duration::from_secs(2);
    let store = support::store_with(10).await.with_group_commit(
        GroupCommit::default()
            .alone_below(0)
            .max_appends(1)
            .timeout(timeout),
    );
    let held = stream("held-1");
    store
        .append(&held, ExpectedVersion::NoStream, event(1))
        .await
        .expect("first event");

    // A unit of work appends version 2 of `held` and stays open.
    let mut holder = store.pool().acquire().await.expect("connection");
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *holder)
        .await
        .expect("pid");
    let mut open = holder.begin().await.expect("begin");
    store
        .append_in(
            &mut open,
            &held,
            ExpectedVersion::Exact(Version::new(1)),
            event(2),
        )
        .await
        .expect("append_in");

    // The first stuck append is in its statement: the lane is busy for a timeout.
    let first = {
        let (store, held) = (store.clone(), held.clone());
        tokio::spawn(async move {
            let expected = ExpectedVersion::Exact(Version::new(1));
            store.append(&held, expected, event(98)).await
        })
    };
    wait_for_a_lock_wait(&store, holder_pid).await;

    // The second is queued next: it is in the lane's queue once its first poll returns (an
    // append awaits nothing before it hands its request over).
    let mut second =
        Box::pin(store.append(&held, ExpectedVersion::Exact(Version::new(1)), event(99)));
    let polled =
        std::future::poll_fn(|cx| Poll::Ready(second.as_mut().poll(cx).is_pending())).await;
    assert!(polled, "the second append is waiting in its lane");

    // Behind both: the lane reaches it after two timeouts, past its own.
    let late = stream("late-1");
    let started = tokio::time::Instant::now();
    let result = store
        .append(&late, ExpectedVersion::NoStream, event(3))
        .await;
    assert_eq!(timed_out_stage(result), TimeoutStage::Queued);
    assert!(started.elapsed() >= timeout, "it waited its whole timeout");

    assert_eq!(
        timed_out_stage(first.await.expect("task")),
        TimeoutStage::Statement
    );
    assert_eq!(timed_out_stage(second.await), TimeoutStage::Statement);
    open.rollback().await.expect("rollback");

    // The lane is free again and has dropped the abandoned append: nothing of it lands.
    store
        .append(&stream("after-1"), ExpectedVersion::NoStream, event(4))
        .await
        .expect("the lane works on");
    assert!(
        store
            .read_stream(&late, Version::new(1), 10)
            .await
            .expect("read")
            .is_empty(),
        "the append taken back was never written"
    );
    assert_eq!(
        store
            .read_stream(&held, Version::new(1), 10)
            .await
            .expect("read")
            .len(),
        1,
        "the timed-out appends wrote nothing"
    );
}
