//! Waiting for conditions with a deadline (never a bare sleep): poll, or follow the runner's
//! status, and panic with what was awaited and what was seen when the time is up.

use std::future::Future;
use std::time::Duration;

use cqrs_core::projection::{ProjectionHandle, ProjectionState, ProjectionStatus};
use cqrs_core::{Position, ReadAll};
use cqrs_postgres::PgEventStore;
use tokio::time::Instant;

/// How long a test waits for something that should happen within a second or two.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it yields a value, for at most `timeout`; panics naming
/// `what` when it does not.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Follows `handle`'s status until `condition` holds, for at most `timeout`; panics naming
/// `what`, with the last status, on timeout or when the projection stops first.
pub async fn wait_for_status(
    handle: &ProjectionHandle,
    timeout: Duration,
    what: &str,
    condition: impl Fn(&ProjectionStatus) -> bool,
) -> ProjectionStatus {
    match tokio::time::timeout(timeout, handle.wait_until(condition)).await {
        Ok(Some(status)) => status,
        Ok(None) => panic!(
            "the projection stopped while waiting for {what}: {:?}",
            handle.status()
        ),
        Err(_) => panic!(
            "timed out after {timeout:?} waiting for {what}: {:?}",
            handle.status()
        ),
    }
}

/// The feed's head once every transaction committed before this call is on it.
///
/// The feed shows an event once no transaction older than its own is still open, and the
/// tests share one server: right after a test's writes, another test's open transaction may
/// hold a bare `head()` short of them. This waits (for at most [`PATIENCE`]) until the
/// horizon passes every transaction id given out before the call, then reads the head.
pub async fn settled_head(store: &PgEventStore) -> Position {
    let (issued,): (String,) =
        sqlx::query_as("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
            .fetch_one(store.pool())
            .await
            .expect("the next transaction id");
    eventually(PATIENCE, "the feed's horizon to pass this moment", || {
        let issued = issued.clone();
        async move {
            let (passed,): (bool,) =
                sqlx::query_as("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8")
                    .bind(issued)
                    .fetch_one(store.pool())
                    .await
                    .expect("the feed's horizon");
            passed.then_some(())
        }
    })
    .await;
    store.head().await.expect("the feed's head")
}

/// Waits until `handle` has applied every event committed before the call, and is idle
/// there (`Running`).
pub async fn wait_caught_up(handle: &ProjectionHandle, store: &PgEventStore) -> ProjectionStatus {
    let head = settled_head(store).await;
    wait_caught_up_to(handle, head).await
}

/// Waits until `handle` has checkpointed `position` and is idle (`Running`).
pub async fn wait_caught_up_to(handle: &ProjectionHandle, position: Position) -> ProjectionStatus {
    wait_for_status(
        handle,
        PATIENCE,
        &format!("the projection to reach {position} and idle"),
        |s| s.position >= position && s.state == ProjectionState::Running,
    )
    .await
}
