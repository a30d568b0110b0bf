//! A switch between partitioning by stream and by key, of one count, skips no event. Both
//! layouts named their partitions alike, so the new layout's partition `i` resumed at the
//! checkpoint the old layout's partition `i` had saved: a checkpoint that meant another split.
//! An event the old layout had not applied yet (its partition was behind) but whose new
//! partition's checkpoint was past it was skipped for good. Each layout now names its
//! partitions apart, as each count does: the new layout replays from the start, and a worker
//! of it waits while the old layout's partitions are led.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Lease, PartitionedRunner, Partitions, Projection, ProjectionError, RunnerOptions,
    StreamPartition,
};
use cqrs_core::{
    AppendEvents, EventId, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent,
    RetryPolicy, StreamId,
};

const EVENTS: usize = 60;
const STREAMS: usize = 10;
const DOCS: usize = 7;
/// The event the first layout's sink fails on until told otherwise: its partition stays
/// behind while the others reach the end of the feed.
const STUCK_AT: usize = 20;
const COUNT: u32 = 4;
/// Long enough that no stall of a loaded machine ends a term while the test looks at who
/// leads what.
const TTL: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(20);

fn stream_of(i: usize) -> String {
    format!("s-{}", i % STREAMS)
}

fn doc_of(i: usize) -> String {
    format!("doc-{}", i % DOCS)
}

fn number(event: &RecordedEvent) -> usize {
    event.payload["i"]
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(usize::MAX)
}

/// Applies events keyed by the document they name (not their stream); fails on `STUCK_AT`
/// while `stuck`.
#[derive(Clone, Default)]
struct Tally {
    applied: Arc<Mutex<HashSet<EventId>>>,
    stuck: Arc<AtomicBool>,
}

#[async_trait]
impl Projection for Tally {
    fn name(&self) -> &str {
        "tally"
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(doc_of(number(event)))
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.apply_fenced(events, None).await
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        _lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        if self.stuck.load(Ordering::SeqCst) && events.iter().any(|e| number(e) == STUCK_AT) {
            return Err(ProjectionError::Transient("the sink is down".into()));
        }
        let mut applied = self.applied.lock().unwrap();
        applied.extend(events.iter().map(|e| e.metadata.event_id));
        Ok(())
    }
}

fn options() -> RunnerOptions {
    RunnerOptions::new()
        .lease_ttl(TTL)
        .owner("worker")
        .batch_size(5)
        .poll_interval(Duration::from_millis(50))
        // The stuck partition retries until the sink is healthy: it parks nothing.
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(20)),
        )
}

/// The partition event `i` is in under `layout`.
fn partition_of(layout: Partitions, i: usize) -> u32 {
    let text = match layout.by() {
        cqrs_core::projection::PartitionBy::Stream => stream_of(i),
        _ => doc_of(i),
    };
    StreamPartition::index_of(&text, layout.count())
}

/// Appends the events, `i` in each payload; returns their ids in order.
async fn write(store: &InMemoryEventStore) -> Vec<EventId> {
    let mut ids = Vec::new();
    for i in 0..EVENTS {
        let event = NewEvent::new("Changed", 1, serde_json::json!({ "i": i }));
        ids.push(event.metadata.event_id);
        let stream = StreamId::new(stream_of(i)).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
    ids
}

/// Polls until `tally` applied every one of `ids`, at most `PATIENCE`; the ones missing.
async fn missing_after_patience(tally: &Tally, ids: &[EventId]) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let missing: Vec<usize> = {
            let applied = tally.applied.lock().unwrap();
            (0..EVENTS)
                .filter(|i| !applied.contains(&ids[*i]))
                .collect()
        };
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `first` until every partition but the stuck one reached the end, stops it, then runs
/// `second` with the sink healthy: every event must be applied.
async fn switch(first: Partitions, second: Partitions) {
    let store = InMemoryEventStore::new();
    let ids = write(&store).await;
    let tally = Tally::default();
    tally.stuck.store(true, Ordering::SeqCst);

    let stuck = partition_of(first, STUCK_AT);
    let elsewhere: Vec<EventId> = (0..EVENTS)
        .filter(|i| partition_of(first, *i) != stuck)
        .map(|i| ids[i])
        .collect();
    let worker = PartitionedRunner::for_store(tally.clone(), first, &store)
        .with_options(options())
        .spawn();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !elsewhere
        .iter()
        .all(|id| tally.applied.lock().unwrap().contains(id))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partitions of {first:?} other than {stuck} reach the end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await;
    // The switch is worth testing only if the stuck partition left events behind that the
    // second layout places in partitions the first one ran to the end.
    let behind: Vec<usize> = (0..EVENTS)
        .filter(|i| !tally.applied.lock().unwrap().contains(&ids[*i]))
        .collect();
    assert!(
        behind
            .iter()
            .any(|i| partition_of(second, *i) != partition_of(second, STUCK_AT)),
        "the stuck partition left behind events the second layout splits elsewhere: {behind:?}"
    );

    tally.stuck.store(false, Ordering::SeqCst);
    let worker = PartitionedRunner::for_store(tally.clone(), second, &store)
        .with_options(options())
        .spawn();
    let missing = missing_after_patience(&tally, &ids).await;
    worker.shutdown().await;
    assert!(
        missing.is_empty(),
        "after switching from {first:?} to {second:?}, events never applied: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_from_by_key_to_by_stream_after_a_stop_skips_no_event() {
    switch(Partitions::by_key(COUNT), Partitions::by_stream(COUNT)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_from_by_stream_to_by_key_after_a_stop_skips_no_event() {
    switch(Partitions::by_stream(COUNT), Partitions::by_key(COUNT)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_of_the_other_layout_waits_while_the_old_one_leads() {
    let store = InMemoryEventStore::new();
    let ids = write(&store).await;
    let (old_tally, new_tally) = (Tally::default(), Tally::default());
    let old = PartitionedRunner::for_store(old_tally, Partitions::by_stream(COUNT), &store)
        .with_options(options().owner("old"))
        .spawn();
    old.wait_until(PATIENCE, |s| s.leading().len() == COUNT as usize)
        .await
        .expect("the old layout's worker leads every partition");

    let new = PartitionedRunner::for_store(new_tally.clone(), Partitions::by_key(COUNT), &store)
        .with_options(options().owner("new"))
        .spawn();
    new.wait_until(PATIENCE, |s| {
        s.waiting_for == Some(Partitions::by_stream(COUNT))
    })
    .await
    .expect("the new layout's worker says it waits on the old layout");
    // A lease time, three looks: the old worker would have seen it join and handed it a
    // share by now.
    tokio::time::sleep(TTL).await;
    let (old_now, new_now) = (old.status(), new.status());
    assert_eq!(old_now.members, ["old"], "{old_now:?}");
    assert_eq!(old_now.leading().len(), COUNT as usize, "{old_now:?}");
    assert!(new_now.partitions.is_empty(), "{new_now:?}");
    assert!(new_tally.applied.lock().unwrap().is_empty());

    old.shutdown().await;
    new.wait_until(PATIENCE, |s| s.leading().len() == COUNT as usize)
        .await
        .expect("the new layout runs once the old one was let go");
    assert_eq!(
        missing_after_patience(&new_tally, &ids).await,
        Vec::<usize>::new()
    );
    new.shutdown().await;
}
