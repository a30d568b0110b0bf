//! The projection runner on the in-memory store: delivery, checkpoints, retries and the circuit
//! breaker, poison policies, leases and crashes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    BreakerState, DeadLetterStore, PoisonPolicy, Projection, ProjectionError, ProjectionHandle,
    ProjectionRunner, ProjectionState, ProjectionStatus, Rejected, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
    RecordedEvent, RetryPolicy, StreamId,
};
use serde_json::json;
use tokio::sync::{oneshot, watch};

/// Per stream: the last version seen, and the sum of `n` (applied only past that version, so
/// replays are idempotent, as a real read model would be). Every event delivered again at or
/// below its stream's applied version is counted in `repeats`, so a double apply shows.
#[derive(Clone, Default)]
struct Totals {
    streams: Arc<Mutex<BTreeMap<String, (u64, i64)>>>,
    calls: Arc<AtomicU32>,
    /// Events delivered again after they were applied.
    repeats: Arc<AtomicU32>,
    /// Fail the first this-many calls with a transient error.
    fail_first: Arc<AtomicU32>,
    /// A crash mid-batch: the apply call with this number (counting from 1) applies the first
    /// half of its events, sends their positions and the rest's, and never returns.
    stall: Arc<Mutex<Option<Stall>>>,
}

/// The apply call to stall (counting from 1), and where to tell that it did.
type Stall = (u32, oneshot::Sender<MidBatch>);

/// Where an apply call stalled: the positions it applied, and those it left.
#[derive(Debug)]
struct MidBatch {
    applied: Vec<Position>,
    left: Vec<Position>,
}

impl Totals {
    fn snapshot(&self) -> BTreeMap<String, (u64, i64)> {
        self.streams.lock().expect("lock").clone()
    }

    fn repeats(&self) -> u32 {
        self.repeats.load(Ordering::SeqCst)
    }

    /// Applies `events` that carry an `n`; the others are returned as rejected.
    fn fold(&self, events: &[RecordedEvent]) -> Vec<Rejected> {
        let mut rejected = Vec::new();
        let mut held: std::collections::HashSet<String> = Default::default();
        let mut streams = self.streams.lock().expect("lock");
        for event in events {
            // The contract: after a rejected event, later events of its key are not applied.
            if held.contains(event.stream_id.as_str()) {
                rejected.push(Rejected::new(
                    event.position,
                    "held back behind a rejected event",
                ));
                continue;
            }
            let Some(n) = event.payload["n"].as_i64() else {
                rejected.push(Rejected::new(event.position, "no n in payload"));
                held.insert(event.stream_id.to_string());
                continue;
            };
            let entry = streams.entry(event.stream_id.to_string()).or_default();
            if event.version.get() > entry.0 {
                *entry = (event.version.get(), entry.1 + n);
            } else {
                self.repeats.fetch_add(1, Ordering::SeqCst);
            }
        }
        rejected
    }
}

/// Waits until `handle`'s status satisfies `condition`; fails saying `what` it waited for if
/// that takes longer than [`WAIT`] or the projection ends first.
async fn until(
    handle: &ProjectionHandle,
    what: &str,
    condition: impl Fn(&ProjectionStatus) -> bool,
) -> ProjectionStatus {
    match tokio::time::timeout(WAIT, handle.wait_until(condition)).await {
        Ok(Some(status)) => status,
        Ok(None) => panic!("the projection ended before {what}: {:?}", handle.status()),
        Err(_) => panic!("waited {WAIT:?} for {what}; status: {:?}", handle.status()),
    }
}

#[async_trait]
impl Projection for Totals {
    fn name(&self) -> &str {
        "totals"
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.to_string())
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ProjectionError::Transient("sink unavailable".into()));
        }
        let stall = {
            let mut stall = self.stall.lock().expect("lock");
            match stall.take() {
                Some((at, crashed)) if at == call => Some(crashed),
                other => {
                    *stall = other;
                    None
                }
            }
        };
        if let Some(crashed) = stall {
            assert!(events.len() >= 2, "a batch of one has no middle");
            let (first, rest) = events.split_at(events.len() / 2);
            assert!(self.fold(first).is_empty(), "crash tests use good events");
            let _ = crashed.send(MidBatch {
                applied: first.iter().map(|e| e.position).collect(),
                left: rest.iter().map(|e| e.position).collect(),
            });
            std::future::pending::<()>().await;
        }
        let rejected = self.fold(events);
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

async fn append(store: &InMemoryEventStore, stream: &str, payload: serde_json::Value) -> Position {
    store
        .append(
            &StreamId::new(stream).expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, payload)],
        )
        .await
        .expect("append")
        .position
}

fn fast() -> RunnerOptions {
    RunnerOptions::new()
        .batch_size(7)
        .poll_interval(Duration::from_millis(20))
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_applied_and_the_checkpoint_follows() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(fast())
        .spawn();
    let mut last = Position::START;
    for i in 0..50 {
        last = append(&store, &format!("s-{}", i % 5), json!({ "n": i })).await;
    }
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    let totals_now = totals.snapshot();
    assert_eq!(totals_now.len(), 5);
    assert_eq!(
        totals_now.values().map(|(_, sum)| sum).sum::<i64>(),
        (0..50i64).sum::<i64>()
    );
    assert_eq!(totals.repeats(), 0, "no event was applied twice");
    let status = handle.status();
    assert_eq!(status.applied, 50);
    assert!(status.is_live() && status.is_ready(), "{status:?}");
    handle.shutdown().await;
    assert_eq!(
        store.load_checkpoint("totals").await.expect("load"),
        Some(last)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_behind_the_circuit_breaker() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    totals.fail_first.store(6, Ordering::SeqCst);
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        // Open long enough for the test to see it open, however slow the machine: the status
        // shows only the latest state.
        .with_options(fast().breaker(3, Duration::from_millis(500)))
        .spawn();
    let last = append(&store, "s-1", json!({ "n": 5 })).await;
    let open = until(&handle, "the breaker to open", |s| {
        s.breaker == BreakerState::Open
    })
    .await;
    assert_eq!(open.state, ProjectionState::Retrying);
    assert!(open
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("sink unavailable")));
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    let status = handle.status();
    assert_eq!(status.breaker, BreakerState::Closed);
    assert_eq!(totals.snapshot()["s-1"], (1, 5), "applied once in effect");
    assert_eq!(
        totals.calls.load(Ordering::SeqCst),
        7,
        "six failures, then one success"
    );
    assert_eq!(totals.repeats(), 0, "no event was applied twice");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_the_projection_just_before_it() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    let good = append(&store, "s-1", json!({ "n": 1 })).await;
    append(&store, "s-2", json!({ "bad": true })).await;
    append(&store, "s-1", json!({ "n": 2 })).await;
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        .with_options(fast().poison(PoisonPolicy::Stop))
        .spawn();
    let status = until(&handle, "the projection to fail", |s| {
        s.state == ProjectionState::Failed
    })
    .await;
    assert_eq!(status.state, ProjectionState::Failed);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("s-2@1")),
        "{status:?}"
    );
    assert_eq!(
        store.load_checkpoint("totals").await.expect("load"),
        Some(good)
    );
    assert!(!status.is_live());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_poison_holds_back_its_key_and_the_rest_goes_on() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    append(&store, "s-1", json!({ "n": 1 })).await;
    append(&store, "s-2", json!({ "bad": true })).await;
    append(&store, "s-2", json!({ "n": 100 })).await;
    let last = append(&store, "s-1", json!({ "n": 2 })).await;
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(fast().poison(PoisonPolicy::Park))
        .spawn();
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    assert_eq!(totals.snapshot().get("s-1"), Some(&(2, 3)));
    assert_eq!(
        totals.snapshot().get("s-2"),
        None,
        "s-2's later event waits behind the parked one"
    );
    let letters = store
        .dead_letters("totals", Position::START, 1000)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0].error, "no n in payload");
    assert_eq!(letters[0].key.as_deref(), Some("s-2"));
    assert!(letters[1].error.contains("held back"));
    assert_eq!(handle.status().parked, 2);

    // After a restart the key stays parked.
    handle.shutdown().await;
    let later = append(&store, "s-2", json!({ "n": 7 })).await;
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(fast().poison(PoisonPolicy::Park))
        .spawn();
    assert!(handle.wait_for(later, WAIT).await.is_ok());
    assert_eq!(totals.snapshot().get("s-2"), None);
    assert_eq!(
        store
            .dead_letters("totals", Position::START, 1000)
            .await
            .expect("letters")
            .len(),
        3
    );
    handle.shutdown().await;
}

/// The in-memory leases run on tokio's clock: paused, a busy machine cannot make a renewal
/// late, and the lease runs out only in virtual time, once the leader is gone.
#[tokio::test(start_paused = true)]
async fn one_worker_leads_and_a_standby_takes_over_when_it_dies() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    let runner = |owner: &str| {
        ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
            .with_leases(store.clone())
            .with_signal(store.clone())
            .with_options(fast().owner(owner).lease_ttl(Duration::from_millis(300)))
            .spawn()
    };
    let first = runner("first");
    until(&first, "the first worker to lead", |s| {
        s.state == ProjectionState::Running
    })
    .await;
    let second = runner("second");
    until(&second, "the second worker to stand by", |s| {
        s.state == ProjectionState::Standby
    })
    .await;
    let p1 = append(&store, "s-1", json!({ "n": 1 })).await;
    assert!(first.wait_for(p1, WAIT).await.is_ok());
    assert_eq!(second.status().state, ProjectionState::Standby);

    // Several lease lifetimes: the leader renews in time, the standby stays a standby.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(second.status().state, ProjectionState::Standby);

    first.abort(); // a crash: no release, the lease must expire
    let crashed_at = tokio::time::Instant::now();
    let p2 = append(&store, "s-1", json!({ "n": 2 })).await;
    assert!(
        second.wait_for(p2, WAIT).await.is_ok(),
        "{:?}",
        second.status()
    );
    // Renewed every third of the 300 ms TTL, the lease outlives the crash by 200 ms at least.
    assert!(
        crashed_at.elapsed() >= Duration::from_millis(200),
        "the standby took over {:?} after the crash, before the lease ran out",
        crashed_at.elapsed()
    );
    assert_eq!(totals.snapshot()["s-1"], (2, 3));
    second.shutdown().await;
}

/// Each run crashes inside an apply call, after half its batch is applied, so that batch's
/// checkpoint is never saved: the next run delivers those events again, and the result is
/// still what one clean run gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_mid_batch_never_change_the_result() {
    let store = InMemoryEventStore::new();
    let totals = Totals::default();
    let mut last = Position::START;
    for i in 0..300 {
        last = append(&store, &format!("s-{}", i % 17), json!({ "n": i })).await;
    }
    let mut half_applied = 0;
    for round in 0..8u32 {
        // This run crashes in its first, second or third apply call.
        let at = totals.calls.load(Ordering::SeqCst) + 1 + round % 3;
        let (crashed, mid_batch) = oneshot::channel();
        *totals.stall.lock().expect("lock") = Some((at, crashed));
        // A save still in flight when the last run crashed may land later: it only moves on.
        let from = store.load_checkpoint("totals").await.expect("load");
        let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
            .with_options(fast().batch_size(5))
            .spawn();
        let mid = tokio::time::timeout(WAIT, mid_batch)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited {WAIT:?} for apply call {at} to stall mid-batch; status: {:?}",
                    handle.status()
                )
            })
            .expect("the stalled apply sends where it stopped");
        handle.abort();
        assert!(
            !mid.applied.is_empty() && !mid.left.is_empty(),
            "the crash is inside the batch: {mid:?}"
        );
        assert!(
            mid.applied.iter().all(|p| Some(*p) > from),
            "round {round}: the crashed batch lies past the checkpoint the run began at ({from:?}): {mid:?}"
        );
        half_applied += mid.applied.len();
    }
    let handle = ProjectionRunner::new(totals.clone(), store.clone(), store.clone())
        .with_options(fast())
        .spawn();
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    handle.shutdown().await;
    assert!(
        totals.repeats() as usize >= 8,
        "each crash left applied events past the checkpoint, delivered again: {} repeats of {half_applied} half-applied",
        totals.repeats()
    );

    let fresh = Totals::default();
    ProjectionRunner::new(fresh.clone(), store.clone(), InMemoryEventStore::new())
        .with_options(fast())
        .catch_up()
        .await
        .expect("catch up");
    assert_eq!(fresh.repeats(), 0, "a clean run applies each event once");
    assert_eq!(
        totals.snapshot(),
        fresh.snapshot(),
        "crashes changed nothing"
    );
}

/// Only `s-…` streams: events of other categories are filtered out in the feed query.
struct OnlyS(Totals);

#[async_trait]
impl Projection for OnlyS {
    fn name(&self) -> &str {
        "only-s"
    }
    fn filter(&self) -> cqrs_core::EventFilter {
        cqrs_core::EventFilter::all().category("s")
    }
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.0.apply(events).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_checkpoint_moves_past_filtered_out_events() {
    let store = InMemoryEventStore::new();
    let handle = ProjectionRunner::new(OnlyS(Totals::default()), store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(fast())
        .spawn();
    append(&store, "s-1", json!({ "n": 1 })).await;
    let other = append(&store, "other-1", json!({ "n": 2 })).await;
    // A reader in another process waits on the saved checkpoint, not on this status.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let saved = store.load_checkpoint("only-s").await.expect("load");
        if saved.is_some_and(|p| p >= other) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "saved checkpoint stuck at {saved:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown().await;
}

/// How long a handshake waits for the overlap it expects before it records that none came.
const OVERLAP_WAIT: Duration = Duration::from_secs(5);

/// Records what its applies have finished, and the first position of the newest apply begun.
#[derive(Clone)]
struct WatchedSink {
    applied_up_to: Arc<Mutex<Position>>,
    begun: Arc<watch::Sender<Position>>,
}

impl Default for WatchedSink {
    fn default() -> Self {
        Self {
            applied_up_to: Arc::default(),
            begun: Arc::new(watch::channel(Position::START).0),
        }
    }
}

/// Marks that an apply of `events` began (the highest first position of any begun apply).
fn mark_begun(begun: &watch::Sender<Position>, events: &[RecordedEvent]) {
    if let Some(first) = events.first() {
        begun.send_modify(|p| *p = (*p).max(first.position));
    }
}

/// Whether an apply of events past `position` begins (or already began) within
/// [`OVERLAP_WAIT`].
async fn an_apply_past(begun: &watch::Sender<Position>, position: Position) -> bool {
    let mut begun = begun.subscribe();
    tokio::time::timeout(OVERLAP_WAIT, begun.wait_for(|p| *p > position))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[async_trait]
impl Projection for WatchedSink {
    fn name(&self) -> &str {
        "watched-sink"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        mark_begun(&self.begun, events);
        let last = events.iter().map(|e| e.position).max();
        let mut up_to = self.applied_up_to.lock().expect("lock");
        *up_to = (*up_to).max(last.unwrap_or(Position::START));
        Ok(())
    }
}

/// Checkpoints as saved, each with what the sink had applied when the save began and whether
/// the next batch's apply began while the save was held open (a handshake: the save waits for
/// it, so a runner that saved in line with its applies would show `false`).
#[derive(Clone)]
struct WatchedCheckpoints {
    sink: WatchedSink,
    /// The feed's last position: its save has no next batch to wait for.
    head: Position,
    saves: Arc<Mutex<Vec<(Position, Position, bool)>>>,
    inner: InMemoryEventStore,
}

#[async_trait]
impl CheckpointStore for WatchedCheckpoints {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        let applied = *self.sink.applied_up_to.lock().expect("lock");
        let beside = position >= self.head || an_apply_past(&self.sink.begun, position).await;
        self.saves
            .lock()
            .expect("lock")
            .push((position, applied, beside));
        self.inner.save_checkpoint(name, position).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_saved_after_its_batch_and_beside_the_next_one() {
    let store = InMemoryEventStore::new();
    let mut last = Position::START;
    for i in 0..140 {
        last = append(&store, &format!("s-{}", i % 3), json!({ "n": i })).await;
    }
    let sink = WatchedSink::default();
    let checkpoints = WatchedCheckpoints {
        sink: sink.clone(),
        head: last,
        saves: Arc::default(),
        inner: store.clone(),
    };
    // Every batch settles on its own, so that each save can be seen beside the next apply.
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), checkpoints.clone())
        .with_options(fast().checkpoint_interval(Duration::ZERO))
        .spawn();
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    handle.shutdown().await;

    let saves = checkpoints.saves.lock().expect("lock").clone();
    assert!(saves.len() >= 2, "{} saves", saves.len());
    for (position, applied, _) in &saves {
        assert!(
            applied >= position,
            "checkpoint {position} saved when only {applied} was applied"
        );
    }
    assert!(
        saves.windows(2).all(|w| w[0].0 < w[1].0),
        "checkpoints moved back"
    );
    assert_eq!(saves.last().map(|s| s.0), Some(last));
    // Catching up, each save is held open until the next batch's apply has begun: a runner
    // that waited for the save before applying on would leave it waiting in vain.
    let alone: Vec<_> = saves.iter().filter(|s| !s.2).map(|s| s.0).collect();
    assert!(
        alone.is_empty(),
        "no apply began beside the saves of {alone:?} within {OVERLAP_WAIT:?}"
    );
    assert_eq!(
        store.load_checkpoint("watched-sink").await.expect("load"),
        Some(last)
    );
}

/// A sink whose writes are durable at once but visible only after `make_visible` (a search
/// index and its refresh), which is slower than an apply and can fail.
#[derive(Clone, Default)]
struct Revealed {
    applied: Arc<Mutex<Position>>,
    visible: Arc<Mutex<Position>>,
    revealing: Arc<AtomicU32>,
    most_revealing: Arc<AtomicU32>,
    applies_while_revealing: Arc<AtomicU32>,
    reveals: Arc<AtomicU32>,
    /// Fail the first this-many `make_visible` calls.
    fail_first: Arc<AtomicU32>,
    /// When set, the first `make_visible` call is held open until a second one has begun
    /// (or `WAIT` passed): a handshake that proves batches are made visible at once.
    hold_first: Arc<std::sync::atomic::AtomicBool>,
    /// How many `make_visible` calls have begun.
    begun: Arc<watch::Sender<u32>>,
    /// Whether the held first call saw a second one begin.
    overlapped: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Projection for Revealed {
    fn name(&self) -> &str {
        "revealed"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.revealing.load(Ordering::SeqCst) > 0 {
            self.applies_while_revealing.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let last = events.iter().map(|e| e.position).max();
        let mut applied = self.applied.lock().expect("lock");
        *applied = (*applied).max(last.unwrap_or(Position::START));
        Ok(())
    }

    async fn make_visible(&self) -> Result<(), cqrs_core::BoxError> {
        self.reveals.fetch_add(1, Ordering::SeqCst);
        // What was applied before the call is what this call reveals.
        let covered = *self.applied.lock().expect("lock");
        let now = self.revealing.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_revealing.fetch_max(now, Ordering::SeqCst);
        let mut order = 0;
        self.begun.send_modify(|begun| {
            *begun += 1;
            order = *begun;
        });
        if order == 1 && self.hold_first.load(Ordering::SeqCst) {
            let mut begun = self.begun.subscribe();
            let second = tokio::time::timeout(WAIT, begun.wait_for(|n| *n >= 2)).await;
            self.overlapped
                .store(matches!(second, Ok(Ok(_))), Ordering::SeqCst);
        } else {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        self.revealing.fetch_sub(1, Ordering::SeqCst);
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("refresh failed".into());
        }
        let mut visible = self.visible.lock().expect("lock");
        *visible = (*visible).max(covered);
        Ok(())
    }
}

/// Checkpoints as saved, each with what readers could see when it was saved.
#[derive(Clone)]
struct RevealedCheckpoints {
    sink: Revealed,
    saves: Arc<Mutex<Vec<(Position, Position)>>>,
    inner: InMemoryEventStore,
}

#[async_trait]
impl CheckpointStore for RevealedCheckpoints {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        let visible = *self.sink.visible.lock().expect("lock");
        self.saves.lock().expect("lock").push((position, visible));
        self.inner.save_checkpoint(name, position).await
    }
}

/// Runs `sink` over `events` appended events, each batch settling on its own, until the
/// checkpoint reaches the last one; returns the saves.
async fn reveal(sink: &Revealed, events: usize, batch: usize) -> Vec<(Position, Position)> {
    reveal_with(
        sink,
        events,
        fast().batch_size(batch).checkpoint_interval(Duration::ZERO),
    )
    .await
    .0
}

/// Runs `sink` over `events` appended events with `options` until the checkpoint reaches the
/// last one, checking every save against what was visible; returns the saves and the store.
async fn reveal_with(
    sink: &Revealed,
    events: usize,
    options: RunnerOptions,
) -> (Vec<(Position, Position)>, InMemoryEventStore) {
    let store = InMemoryEventStore::new();
    let mut last = Position::START;
    for i in 0..events {
        last = append(&store, &format!("s-{}", i % 3), json!({ "n": i })).await;
    }
    let checkpoints = RevealedCheckpoints {
        sink: sink.clone(),
        saves: Arc::default(),
        inner: store.clone(),
    };
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), checkpoints.clone())
        .with_options(options)
        .spawn();
    assert!(
        handle.wait_for(last, WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    handle.shutdown().await;
    let saves = checkpoints.saves.lock().expect("lock").clone();
    for (position, visible) in &saves {
        assert!(
            visible >= position,
            "checkpoint {position} saved when only {visible} was visible"
        );
    }
    assert!(
        saves.windows(2).all(|w| w[0].0 < w[1].0),
        "checkpoints moved back: {saves:?}"
    );
    assert_eq!(saves.last().map(|s| s.0), Some(last));
    assert_eq!(
        store.load_checkpoint("revealed").await.expect("load"),
        Some(last)
    );
    (saves, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_made_visible_before_their_checkpoint_while_later_ones_apply() {
    let sink = Revealed::default();
    // The first batch's `make_visible` is held open until another one begins: only a runner
    // that applies the next batches and starts making them visible meanwhile gets past it.
    sink.hold_first.store(true, Ordering::SeqCst);
    let saves = reveal(&sink, 140, 5).await;
    assert!(saves.len() >= 2, "{} saves", saves.len());
    assert!(
        sink.overlapped.load(Ordering::SeqCst),
        "no second batch began to be made visible while the first was (waited {WAIT:?})"
    );
    assert!(
        sink.applies_while_revealing.load(Ordering::SeqCst) >= 1,
        "no apply ran while a batch was made visible"
    );
    assert!(
        sink.most_revealing.load(Ordering::SeqCst) > 1,
        "batches were made visible one at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_make_visible_holds_the_checkpoint_until_one_succeeds() {
    // One batch: its own failures are retried in line.
    let sink = Revealed::default();
    sink.fail_first.store(3, Ordering::SeqCst);
    let saves = reveal(&sink, 4, 10).await;
    assert_eq!(saves.len(), 1, "{saves:?}");
    assert_eq!(sink.reveals.load(Ordering::SeqCst), 4);

    // Many batches: a failure is made good by a later batch's success, or retried.
    let sink = Revealed::default();
    sink.fail_first.store(6, Ordering::SeqCst);
    reveal(&sink, 60, 4).await;
    assert_eq!(sink.fail_first.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_settles_batches_together_and_the_head_at_once() {
    // 40 full batches, then the head. With an interval no test outlives, only the first batch
    // (nothing settled before it) and the one reaching the head may settle: the 38 between
    // settle with the last, one refresh and one save for all.
    let sink = Revealed::default();
    let options = fast()
        .batch_size(5)
        .checkpoint_interval(Duration::from_secs(3600));
    let (saves, store) = reveal_with(&sink, 200, options.clone()).await;
    assert!(saves.len() <= 3, "{} saves: {saves:?}", saves.len());
    assert!(
        sink.reveals.load(Ordering::SeqCst) <= 3,
        "{} refreshes for 40 batches",
        sink.reveals.load(Ordering::SeqCst)
    );

    // Live: a batch that is not full settles at once, however long the interval.
    let checkpoints = RevealedCheckpoints {
        sink: sink.clone(),
        saves: Arc::default(),
        inner: store.clone(),
    };
    let handle = ProjectionRunner::new(sink.clone(), store.clone(), checkpoints)
        .with_options(options)
        .spawn();
    for i in 0..3 {
        let position = append(&store, "live", json!({ "n": i })).await;
        assert!(
            handle.wait_for(position, WAIT).await.is_ok(),
            "{:?}",
            handle.status()
        );
        assert!(*sink.visible.lock().expect("lock") >= position);
    }
    handle.shutdown().await;
}

/// A feed that answers its first `answers` reads and then never again (a stalled database).
#[derive(Clone)]
struct StallingFeed {
    inner: InMemoryEventStore,
    answers: Arc<AtomicU32>,
}

#[async_trait]
impl cqrs_core::ReadAll for StallingFeed {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &cqrs_core::EventFilter,
    ) -> cqrs_core::Result<cqrs_core::FeedBatch> {
        if self
            .answers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            std::future::pending::<()>().await;
        }
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.inner.head().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_held_back_while_catching_up_settle_when_the_feed_stalls() {
    let store = InMemoryEventStore::new();
    let mut positions = Vec::new();
    for i in 0..50 {
        positions.push(append(&store, &format!("s-{}", i % 3), json!({ "n": i })).await);
    }
    // Four full batches of 5, then the feed answers no more: no batch reaches the head, so
    // the three held back after the first settle when the interval is up.
    let feed = StallingFeed {
        inner: store.clone(),
        answers: Arc::new(AtomicU32::new(4)),
    };
    let totals = Totals::default();
    let handle = ProjectionRunner::new(totals.clone(), feed, store.clone())
        .with_options(
            fast()
                .batch_size(5)
                .checkpoint_interval(Duration::from_millis(50)),
        )
        .spawn();
    assert!(
        handle.wait_for(positions[19], WAIT).await.is_ok(),
        "{:?}",
        handle.status()
    );
    assert_eq!(
        store.load_checkpoint("totals").await.expect("load"),
        Some(positions[19])
    );
    assert_eq!(handle.status().applied, 20);
    handle.shutdown().await;
}
