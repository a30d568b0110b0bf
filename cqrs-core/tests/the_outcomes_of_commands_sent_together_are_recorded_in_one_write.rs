//! Commands an instance has pending go out one at a time, in (input, index) order, and the
//! outcomes of one round are recorded in one write: one journal event per outcome, as if each
//! were recorded alone, in a fraction of the writes. A worker killed half-way through a round
//! (some commands landed, no outcome recorded) leaves the same end state: the next one sends
//! the round again with the same command ids, and each lands once.

mod process_support;

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::process::{
    Action, Context, Input, InstanceState, ProcessManager, ProcessManagerProjection,
    ProcessOptions, ProcessStore, Route, INPUT_RECEIVED,
};
use cqrs_core::projection::{
    DeadLetterStore, ProjectionHandle, ProjectionRunner, ProjectionStore, RunnerOptions,
};
use cqrs_core::testing::TestClock;
use cqrs_core::{Error, EventFilter, InMemoryEventStore, RecordedEvent, SharedClock};
use process_support::{Cmd, Point, Probe, Probed, Refusal, Shop};
use serde::{Deserialize, Serialize};

const ORDERS: u64 = 3;

/// On an order: four amounts to four tallies at once, the last one closed; its refusal
/// refunds the order and completes.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FanOut {
    refused: bool,
}

impl ProcessManager for FanOut {
    const TYPE: &'static str = "fan_out";
    type Trigger = ();
    type Command = Cmd;
    type Rejection = Refusal;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("order")
    }

    fn route(event: &RecordedEvent) -> Result<Route<()>, Error> {
        Ok(Route::start(event.stream_id.instance(), ()))
    }

    fn apply(&mut self, input: &Input<Self>) {
        if let Input::Rejected { .. } = input {
            self.refused = true;
        }
    }

    fn decide(&self, input: &Input<Self>, ctx: &Context<'_>) -> Vec<Action<Self>> {
        let add = |tally: String, amount| Action::send(Cmd::Add { tally, amount });
        match input {
            Input::Event { .. } => {
                let mut sends: Vec<_> = (1..=3)
                    .map(|n| add(format!("fan-{}-{n}", ctx.instance), n))
                    .collect();
                sends.push(add("closed".to_owned(), 4));
                sends
            }
            Input::Rejected { .. } => vec![
                add(format!("refund-{}", ctx.instance), 10),
                Action::Complete,
            ],
            _ => Vec::new(),
        }
    }
}

async fn setup() -> Probed {
    let store = InMemoryEventStore::new();
    process_support::close(&store, "closed").await;
    for n in 0..ORDERS {
        process_support::place(&store, n, 10, 0).await;
    }
    Probed {
        inner: store,
        probe: Arc::new(Probe::default()),
    }
}

fn spawn(store: &Probed) -> ProjectionHandle {
    let options = ProcessOptions::default()
        .clock(SharedClock::new(TestClock::new()))
        .timer_poll(Duration::from_millis(10));
    let shop = Shop::probed(&store.inner, store.probe.clone());
    let projection = ProcessManagerProjection::<FanOut, _, _>::new(store.clone(), shop, options);
    ProjectionRunner::new(projection, store.clone(), store.clone())
        .with_signal(store.signal())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(10)))
        .spawn()
}

async fn completed(store: &Probed) -> bool {
    for n in 0..ORDERS {
        let row = ProcessStore::instance(&store.inner, FanOut::TYPE, &n.to_string()).await;
        if !matches!(row, Ok(Some(row)) if row.state == InstanceState::Completed) {
            return false;
        }
    }
    true
}

/// Every order's journal (six inputs), its tallies (each amount once, in order) and refund.
async fn assert_end_state(store: &InMemoryEventStore) {
    for n in 0..ORDERS {
        let journal = process_support::stream(store, &format!("fan_out-{n}")).await;
        let kinds: Vec<_> = journal
            .iter()
            .map(|e| {
                assert_eq!(e.event_type, INPUT_RECEIVED);
                e.payload["kind"]["type"].as_str().unwrap_or("?").to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            ["event", "accepted", "accepted", "accepted", "rejected", "accepted"],
            "order {n}: {journal:#?}"
        );
        for amount in 1..=3 {
            let tally = format!("fan-{n}-{amount}");
            assert_eq!(process_support::total(store, &tally).await, amount);
            assert_eq!(
                process_support::stream(store, &format!("tally-{tally}"))
                    .await
                    .len(),
                1
            );
        }
        assert_eq!(
            process_support::total(store, &format!("refund-{n}")).await,
            10
        );
    }
    let tallies: Vec<_> = (0..ORDERS)
        .flat_map(|n| {
            let mut tallies: Vec<_> = (1..=3).map(|a| format!("fan-{n}-{a}")).collect();
            tallies.push(format!("refund-{n}"));
            tallies
        })
        .collect();
    process_support::assert_each_command_once(store, &tallies).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_outcomes_of_one_decision_take_one_write_and_journal_four_events() {
    let store = setup().await;
    let worker = spawn(&store);
    process_support::eventually("every order completes", || completed(&store)).await;
    worker.shutdown().await;
    assert_end_state(&store.inner).await;
    // Per order: the event, the round of four outcomes, the round of the refund.
    assert_eq!(store.probe.passes(Point::AfterRecord), 3 * ORDERS);
    assert_eq!(store.probe.passes(Point::AfterDispatch), 5 * ORDERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_half_way_through_a_round_leaves_the_same_end_state() {
    for landed in 1..=4 {
        let store = setup().await;
        // The `landed`-th dispatch returned (its command landed); nothing of the round is
        // recorded yet.
        store.probe.arm(Point::AfterDispatch, landed);
        let crashing = spawn(&store);
        assert!(
            store.probe.wait_tripped(Duration::from_secs(10)).await,
            "dispatch {landed} returned"
        );
        crashing.abort();
        store.probe.disarm();
        let worker = spawn(&store);
        process_support::eventually("every order completes", || completed(&store)).await;
        worker.shutdown().await;
        assert_end_state(&store.inner).await;
    }
}

/// Two workers can overlap on an instance (a leader paused past its lease, and the one that
/// took over): one records part of a round (the outcomes it got before a dispatch failed), the
/// other then records the whole round at the same version, and part of its event ids are
/// stored. That is a race lost, like a version conflict: the worker reloads and records what
/// is still pending, instead of parking the order as poison.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_partly_recorded_by_an_overlapping_worker_is_recorded_again_not_parked() {
    let store = setup().await;
    store.probe.refuse_next_round();
    let worker = spawn(&store);
    process_support::eventually("every order completes", || completed(&store)).await;
    worker.shutdown().await;
    assert_end_state(&store.inner).await;
    let parked = store
        .inner
        .dead_letters(
            &format!("process:{}", FanOut::TYPE),
            cqrs_core::Position::START,
            10,
        )
        .await
        .expect("dead letters");
    assert!(parked.is_empty(), "{parked:?}");
}
