//! The framework's metrics move with the work: commands by aggregate and outcome with their
//! latency, conflicts and retries, a runner's applied and parked events, the lag in seconds
//! of a stalled projection, and a process manager's inputs, commands and fired timeouts.
//!
//! Each test installs its own `DebuggingRecorder` as the thread's default on a current-thread
//! runtime, so every task it spawns records there and tests do not see each other's metrics.
//!
//! Longer than our files usually are, on purpose: one test binary (one link) for every
//! metric of the core, sharing the snapshot helpers and the small sinks.

mod process_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{ProcessManager, ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::{
    Projection, ProjectionError, ProjectionRunner, ProjectionState, Rejected, RunnerOptions,
};
use cqrs_core::telemetry::metrics::{
    self as names, record_processes, record_projection, COMMANDS, COMMAND_CONFLICTS,
    COMMAND_DURATION, COMMAND_RETRIES, PROCESS_COMMANDS, PROCESS_INPUTS, PROCESS_INSTANCES,
    PROCESS_TIMEOUTS_FIRED, PROJECTION_BREAKER, PROJECTION_EVENTS_APPLIED,
    PROJECTION_EVENTS_PARKED, PROJECTION_LAG_SECONDS, PROJECTION_STATE,
};
use cqrs_core::testing::{Tally, TallyCommand, TestClock};
use cqrs_core::{
    Aggregate, AppendEvents, CommandContext, CommandError, CommandId, DomainEvent, EventFilter,
    EventId, ExpectedVersion, FeedBatch, InMemoryEventStore, Metadata, NewEvent, Position, ReadAll,
    RecordedEvent, Repository, RetryPolicy, SharedClock, StreamId,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use process_support::{eventually, place, total, Checkout, Probe, Probed, Shop};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(10);

/// What the recorder holds, by name and sorted labels. Taking it resets the counters.
struct Recorded(HashMap<(String, Vec<(String, String)>), DebugValue>);

impl Recorded {
    fn take(snapshotter: &Snapshotter) -> Self {
        let mut values = HashMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let (_, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            values.insert((key.name().to_owned(), labels), value);
        }
        Recorded(values)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.0.get(&(name.to_owned(), labels))
    }

    /// A counter's value; 0 when it was never recorded.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.get(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} {labels:?} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(name, labels) {
            Some(DebugValue::Gauge(v)) => v.into_inner(),
            other => panic!("{name} {labels:?} is not a gauge: {other:?}"),
        }
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.get(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            None => Vec::new(),
            Some(other) => panic!("{name} {labels:?} is not a histogram: {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_command_outcome_moves_its_counter_and_the_latency_histogram() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let tallies = Repository::<Tally, _>::new(InMemoryEventStore::new());

    let once = CommandContext::new().command_id(CommandId::new());
    tallies
        .execute_with("t", &TallyCommand::Add(vec![1]), once.clone())
        .await
        .expect("accepted");
    tallies
        .execute_with("t", &TallyCommand::Add(vec![1]), once)
        .await
        .expect("a duplicate");
    tallies
        .execute("t", &TallyCommand::Nothing)
        .await
        .expect("unchanged");
    tallies
        .execute("t", &TallyCommand::Close)
        .await
        .expect("accepted");
    let refused = tallies.execute("t", &TallyCommand::Add(vec![2])).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(_))),
        "{refused:?}"
    );

    let recorded = Recorded::take(&snapshotter);
    for (outcome, count) in [
        ("accepted", 2),
        ("duplicate", 1),
        ("unchanged", 1),
        ("rejected", 1),
        ("conflict", 0),
        ("error", 0),
    ] {
        let labels = [("aggregate", Tally::TYPE), ("outcome", outcome)];
        assert_eq!(recorded.counter(COMMANDS, &labels), count, "{outcome}");
        let latencies = recorded.histogram(COMMAND_DURATION, &labels);
        assert_eq!(latencies.len() as u64, count, "{outcome}: {latencies:?}");
        assert!(
            latencies.iter().all(|s| *s >= 0.0 && *s < 60.0),
            "{latencies:?}"
        );
    }
    assert_eq!(
        recorded.counter(COMMAND_CONFLICTS, &[("aggregate", Tally::TYPE)]),
        0
    );
}

/// An aggregate whose `handle` never ends: its callers give up.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Endless;

impl Aggregate for Endless {
    const TYPE: &'static str = "endless";
    type Command = ();
    type Event = RacedEvent;
    type Error = Never;
    type Services = ();

    fn apply(&mut self, _: &RacedEvent) {}

    async fn handle(&self, (): &(), (): &()) -> Result<Vec<RacedEvent>, Never> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_command_its_caller_gave_up_on_is_counted_as_cancelled() {
    // A client or a load balancer that stops waiting, or a shutdown past its grace, drops the
    // command's future: the slowest commands, which the latency must show, were not counted.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let endless = Repository::<Endless, _>::new(InMemoryEventStore::new());
    let gave_up = tokio::time::timeout(Duration::from_millis(20), endless.execute("s", &())).await;
    assert!(gave_up.is_err());

    let recorded = Recorded::take(&snapshotter);
    let labels = [("aggregate", Endless::TYPE), ("outcome", "cancelled")];
    assert_eq!(recorded.counter(COMMANDS, &labels), 1);
    let latencies = recorded.histogram(COMMAND_DURATION, &labels);
    assert!(
        latencies.len() == 1 && latencies[0] >= 0.02,
        "{latencies:?}"
    );
}

/// An aggregate whose `handle` lets a rival write to its stream first, `races` times: each
/// such attempt's append meets a conflict.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Raced {
    bumps: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
enum RacedEvent {
    Bumped,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// The store the rival writes to, and how many races are left.
struct Rival {
    store: InMemoryEventStore,
    races: AtomicU32,
}

impl Aggregate for Raced {
    const TYPE: &'static str = "raced";
    type Command = String;
    type Event = RacedEvent;
    type Error = Never;
    type Services = Arc<Rival>;

    fn apply(&mut self, _: &RacedEvent) {
        self.bumps += 1;
    }

    async fn handle(&self, id: &String, rival: &Arc<Rival>) -> Result<Vec<RacedEvent>, Never> {
        let left = rival.races.load(Ordering::SeqCst);
        if left > 0 {
            rival.races.store(left - 1, Ordering::SeqCst);
            let stream = StreamId::with_category(Self::TYPE, id).expect("id");
            let event = NewEvent::from_domain(&RacedEvent::Bumped, Metadata::new(EventId::new()))
                .expect("encode");
            rival
                .store
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .expect("the rival's append");
        }
        Ok(vec![RacedEvent::Bumped])
    }
}

#[tokio::test]
async fn conflicts_count_each_time_and_retries_only_when_another_attempt_follows() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    let rival = Arc::new(Rival {
        store: store.clone(),
        races: AtomicU32::new(1),
    });
    let raced = Repository::<Raced, _>::with_services(store, rival.clone())
        .with_retry(RetryPolicy::new(3).delays(Duration::from_millis(1), Duration::from_millis(1)));

    // One race: a conflict, a retry, then accepted.
    let outcome = raced.execute("a", &"a".to_owned()).await.expect("accepted");
    assert_eq!(outcome.attempts, 2);
    let recorded = Recorded::take(&snapshotter);
    let aggregate = [("aggregate", Raced::TYPE)];
    assert_eq!(recorded.counter(COMMAND_CONFLICTS, &aggregate), 1);
    assert_eq!(recorded.counter(COMMAND_RETRIES, &aggregate), 1);
    let accepted = [("aggregate", Raced::TYPE), ("outcome", "accepted")];
    assert_eq!(recorded.counter(COMMANDS, &accepted), 1);

    // A race on every attempt: three conflicts, two retries, and the outcome is a conflict.
    rival.races.store(10, Ordering::SeqCst);
    let refused = raced.execute("b", &"b".to_owned()).await;
    assert!(
        matches!(&refused, Err(CommandError::Store(e)) if e.is_conflict()),
        "{refused:?}"
    );
    let recorded = Recorded::take(&snapshotter);
    assert_eq!(recorded.counter(COMMAND_CONFLICTS, &aggregate), 3);
    assert_eq!(recorded.counter(COMMAND_RETRIES, &aggregate), 2);
    let conflict = [("aggregate", Raced::TYPE), ("outcome", "conflict")];
    assert_eq!(recorded.counter(COMMANDS, &conflict), 1);
    assert_eq!(recorded.histogram(COMMAND_DURATION, &conflict).len(), 1);
}

/// Keeps the `n`s it applies; refuses an event without one (poison).
#[derive(Clone, Default)]
struct Ns(Arc<Mutex<Vec<i64>>>);

#[async_trait]
impl Projection for Ns {
    fn name(&self) -> &str {
        "metrics-ns"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut rejected = Vec::new();
        let mut ns = self.0.lock().expect("lock");
        for event in events {
            match event.payload["n"].as_i64() {
                Some(n) => ns.push(n),
                None => rejected.push(Rejected::new(event.position, "no n in payload")),
            }
        }
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

fn quick() -> RunnerOptions {
    RunnerOptions::new().poll_interval(Duration::from_millis(10))
}

#[tokio::test]
async fn a_runner_counts_the_events_it_applies_and_the_ones_it_parks() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    append(&store, "s-1", json!({ "n": 1 })).await;
    append(&store, "s-2", json!({ "oops": true })).await;
    append(&store, "s-3", json!({ "n": 3 })).await;
    let last = append(&store, "s-4", json!({ "n": 4 })).await;

    let handle = ProjectionRunner::new(Ns::default(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(quick())
        .spawn();
    handle.wait_for(last, WAIT).await.expect("caught up");
    handle.shutdown().await;

    let recorded = Recorded::take(&snapshotter);
    let projection = [("projection", "metrics-ns")];
    assert_eq!(recorded.counter(PROJECTION_EVENTS_APPLIED, &projection), 3);
    assert_eq!(recorded.counter(PROJECTION_EVENTS_PARKED, &projection), 1);
}

#[tokio::test]
async fn a_runner_under_a_checkpoint_name_of_its_own_is_counted_under_that_name() {
    // A replay beside the live runner (the quick start's `process:...:replay`), a rebuild's
    // fill: the same projection under another checkpoint, whose counts and status must not
    // merge into the live runner's.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    let last = append(&store, "s-1", json!({ "n": 1 })).await;

    let handle = ProjectionRunner::new(Ns::default(), store.clone(), store.clone())
        .with_options(quick().checkpoint_name("metrics-ns:replay"))
        .spawn();
    handle.wait_for(last, WAIT).await.expect("caught up");
    let status = handle.status();
    handle.shutdown().await;

    let recorded = Recorded::take(&snapshotter);
    let replay = [("projection", "metrics-ns:replay")];
    assert_eq!(recorded.counter(PROJECTION_EVENTS_APPLIED, &replay), 1);
    let live = [("projection", "metrics-ns")];
    assert_eq!(recorded.counter(PROJECTION_EVENTS_APPLIED, &live), 0);
    assert_eq!(status.name, "metrics-ns:replay");
}

/// The in-memory feed, with every event recorded an hour earlier than it was.
struct HourOld(InMemoryEventStore);

#[async_trait]
impl ReadAll for HourOld {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        let mut batch = self.0.read_all(after, limit, filter).await?;
        for event in &mut batch.events {
            event.recorded_at -= time::Duration::hours(1);
        }
        Ok(batch)
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        self.0.head().await
    }
}

/// A sink that holds its first apply until released, saying when it is held.
#[derive(Clone, Default)]
struct Stalled {
    held: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl Projection for Stalled {
    fn name(&self) -> &str {
        "metrics-stalled"
    }

    async fn apply(&self, _: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.held.notify_one();
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn the_lag_in_seconds_is_the_age_of_the_oldest_unapplied_event_and_zero_at_the_head() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    let last = append(&store, "s-1", json!({ "n": 1 })).await;
    let sink = Stalled::default();
    let handle = ProjectionRunner::new(sink.clone(), HourOld(store.clone()), store.clone())
        .with_options(quick())
        .spawn();
    let projection = [("projection", "metrics-stalled")];

    // Stalled behind an event recorded an hour ago: the lag is its age.
    sink.held.notified().await;
    let status = handle.status();
    assert!(status.oldest_unapplied_at.is_some(), "{status:?}");
    record_projection(&status);
    let recorded = Recorded::take(&snapshotter);
    let lag = recorded.gauge(PROJECTION_LAG_SECONDS, &projection);
    assert!((3600.0..3700.0).contains(&lag), "lag {lag} s");

    // Released: at the head, nothing waits.
    sink.release.notify_one();
    handle.wait_for(last, WAIT).await.expect("caught up");
    let status = handle.status();
    assert_eq!(status.state, ProjectionState::Running, "{status:?}");
    record_projection(&status);
    let recorded = Recorded::take(&snapshotter);
    assert_eq!(recorded.gauge(PROJECTION_LAG_SECONDS, &projection), 0.0);
    assert_eq!(recorded.gauge(PROJECTION_BREAKER, &projection), 0.0);
    let state = |state| {
        recorded.gauge(
            PROJECTION_STATE,
            &[("projection", "metrics-stalled"), ("state", state)],
        )
    };
    assert_eq!(state("running"), 1.0);
    assert_eq!(state("retrying"), 0.0);
    assert_eq!(recorded.gauge(names::PROJECTION_APPLIED, &projection), 1.0);
    handle.shutdown().await;
}

/// A sink that is down: every apply fails, as a retry may cure.
struct Down;

#[async_trait]
impl Projection for Down {
    fn name(&self) -> &str {
        "metrics-down"
    }

    async fn apply(&self, _: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Err(ProjectionError::Transient("search node unreachable".into()))
    }
}

#[tokio::test]
async fn a_sink_that_stays_down_shows_its_open_breaker_its_state_and_an_old_lag() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    append(&store, "s-1", json!({ "n": 1 })).await;
    let options = quick()
        .retry(RetryPolicy::new(1_000).delays(Duration::from_millis(1), Duration::from_millis(1)))
        .breaker(1, Duration::from_secs(3600));
    let handle = ProjectionRunner::new(Down, HourOld(store.clone()), store.clone())
        .with_options(options)
        .spawn();
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        let status = handle.status();
        if status.state == ProjectionState::Retrying
            && status.breaker == cqrs_core::projection::BreakerState::Open
        {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    record_projection(&status);
    handle.shutdown().await;

    let recorded = Recorded::take(&snapshotter);
    let projection = [("projection", "metrics-down")];
    assert_eq!(recorded.gauge(PROJECTION_BREAKER, &projection), 2.0);
    let lag = recorded.gauge(PROJECTION_LAG_SECONDS, &projection);
    assert!((3600.0..3700.0).contains(&lag), "lag {lag} s");
    assert_eq!(
        recorded.gauge(names::PROJECTION_LAG_EVENTS, &projection),
        1.0
    );
    let state = |state| {
        recorded.gauge(
            PROJECTION_STATE,
            &[("projection", "metrics-down"), ("state", state)],
        )
    };
    assert_eq!(state("retrying"), 1.0);
    assert_eq!(state("running"), 0.0);
    assert_eq!(recorded.counter(PROJECTION_EVENTS_APPLIED, &projection), 0);
}

#[tokio::test]
async fn a_timer_pump_that_fails_is_counted() {
    // The pump retries what fails (a store error, a panic in a store's or a clock's code)
    // without end, out of the runner's status: without a count, an alert had only the fired
    // timeouts staying flat, which looks like a quiet hour.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = Probed {
        inner: InMemoryEventStore::new(),
        probe: Arc::new(Probe::default()),
    };
    store.probe.panic_next_fire();
    let options = ProcessOptions::default()
        .clock(SharedClock::new(TestClock::new()))
        .timer_poll(Duration::from_millis(10));
    let projection = ProcessManagerProjection::<Checkout, _, _>::new(
        store.clone(),
        Shop::new(&store.inner),
        options,
    );
    let handle = ProjectionRunner::new(projection, store.clone(), store.clone()).spawn();
    let failures = [("process", Checkout::TYPE)];
    eventually("the failure counted", || async {
        let recorded = Recorded::take(&snapshotter);
        recorded.counter(names::PROCESS_TIMER_FAILURES, &failures) == 1
    })
    .await;
    handle.shutdown().await;
}

#[tokio::test]
async fn a_process_manager_counts_its_inputs_commands_and_fired_timeouts() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InMemoryEventStore::new();
    let clock = TestClock::new();
    // Stock commands are forwarded and never answered: the order's timeout fires and refunds.
    let shop = Shop {
        forward_stock: true,
        ..Shop::new(&store)
    };
    let options = ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10));
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    place(&store, 0, 25, 7).await;
    eventually("the order is paid", || async {
        total(&store, "pay-0").await == 25
    })
    .await;
    clock.advance(Duration::from_secs(61));
    eventually("the expired order is refunded", || async {
        total(&store, "refund-0").await == 25
    })
    .await;
    handle.shutdown().await;

    let recorded = Recorded::take(&snapshotter);
    let input = |kind| {
        recorded.counter(
            PROCESS_INPUTS,
            &[("process", Checkout::TYPE), ("kind", kind)],
        )
    };
    assert_eq!(input("event"), 1);
    assert_eq!(input("timeout"), 1);
    // The pay and the refund; the stock command was forwarded, never answered.
    assert_eq!(input("accepted"), 2);
    assert_eq!(input("rejected"), 0);
    let command = |outcome| {
        recorded.counter(
            PROCESS_COMMANDS,
            &[("process", Checkout::TYPE), ("outcome", outcome)],
        )
    };
    assert_eq!(command("accepted"), 2);
    assert!(command("forwarded") >= 1);
    assert_eq!(command("rejected") + command("failed"), 0);
    assert_eq!(
        recorded.counter(PROCESS_TIMEOUTS_FIRED, &[("process", Checkout::TYPE)]),
        1
    );
    // The commands ran through the tallies' repository: counted as commands too.
    let accepted = [("aggregate", Tally::TYPE), ("outcome", "accepted")];
    assert_eq!(recorded.counter(COMMANDS, &accepted), 2);

    let counts = store
        .instance_counts(
            Checkout::TYPE,
            cqrs_core::Clock::now(&clock),
            Duration::from_secs(3600),
        )
        .await
        .expect("counts");
    record_processes(Checkout::TYPE, &counts);
    let recorded = Recorded::take(&snapshotter);
    let instances = |state| {
        recorded.gauge(
            PROCESS_INSTANCES,
            &[("process", Checkout::TYPE), ("state", state)],
        )
    };
    assert_eq!(
        instances("running") + instances("completed"),
        1.0,
        "{counts:?}"
    );
    assert_eq!(instances("failed"), 0.0);
}
