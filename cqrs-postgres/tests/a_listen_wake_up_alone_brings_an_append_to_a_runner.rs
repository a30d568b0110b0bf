//! `LISTEN` wake-ups, proven on their own: a runner that polls once an hour applies an append
//! within seconds only if the store's feed signal wakes it. (Every other PostgreSQL runner in
//! the suite also polls every 100 ms, which would hide a deaf signal.)

mod support;

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadAll, RecordedEvent, StreamId};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Polling effectively off: no test lasts this long.
const NO_POLLING: Duration = Duration::from_secs(3600);

/// How long the applied append may take to arrive through wake-ups.
const DEADLINE: Duration = Duration::from_secs(30);

/// Passes on the stream of every event it applies.
struct Applied(mpsc::UnboundedSender<String>);

#[async_trait]
impl Projection for Applied {
    fn name(&self) -> &str {
        "applied"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            // The test may have stopped listening: nothing to tell then.
            let _ = self.0.send(event.stream_id.as_str().to_owned());
        }
        Ok(())
    }
}

/// Waits until a session listens on the store's channel.
async fn wait_for_listener(observer: &PgPool, store: &PgEventStore) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND rtrim(query, ';') = $1",
        )
        .bind(format!("LISTEN \"{}\"", store.channel()))
        .fetch_one(observer)
        .await
        .expect("query pg_stat_activity");
        if listening > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for the runner's LISTEN connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event() -> Vec<NewEvent> {
    vec![NewEvent::new("E", 1, json!({}))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_polling_once_an_hour_applies_an_append_through_its_wake_up() {
    let store = support::store_with(4).await;
    let observer = support::pool(1).await;
    let (applied, mut applies) = mpsc::unbounded_channel();
    let handle = ProjectionRunner::new(Applied(applied), store.clone(), store.clone())
        .with_signal(store.feed_signal())
        .with_options(RunnerOptions::new().poll_interval(NO_POLLING))
        .spawn();

    // Handshake: the runner has read the (empty) feed and idles, and its signal listens, so
    // only a wake-up can bring it anything now.
    let idle = tokio::time::timeout(
        DEADLINE,
        handle.wait_until(|s| s.state == ProjectionState::Running),
    )
    .await
    .unwrap_or_else(|_| panic!("the runner never idled at the head: {:?}", handle.status()));
    assert!(idle.is_some(), "the runner stopped: {:?}", handle.status());
    wait_for_listener(&observer, &store).await;

    let target = StreamId::new("woken-1").expect("id");
    let written = store
        .append(&target, ExpectedVersion::NoStream, event())
        .await
        .expect("append");

    // Another test's open transaction can hold the cluster-wide feed horizon when the wake-up
    // comes, so the runner's read may not see the append yet. Once the feed shows it, each
    // further append (another wake-up) gives the runner a read that must: still wake-ups only.
    let deadline = Instant::now() + DEADLINE;
    let mut nudges = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_secs(2), applies.recv()).await {
            Ok(Some(stream)) if stream == target.as_str() => break,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the projection was dropped: {:?}", handle.status()),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for the runner (polling once an hour) to be \
             woken and apply {target}; {nudges} further appends woke nothing either: {:?}",
            handle.status()
        );
        if store.head().await.expect("head") >= written.position {
            nudges += 1;
            let nudge = StreamId::new(format!("nudge-{nudges}")).expect("id");
            store
                .append(&nudge, ExpectedVersion::NoStream, event())
                .await
                .expect("append a nudge");
        }
    }
    handle.shutdown().await;
}
