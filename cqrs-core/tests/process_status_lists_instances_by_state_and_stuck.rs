//! Status as data, on a process run by the engine over the in-memory store: counts by state,
//! pages of instances, stuck instances as the process clock moves (one with a timeout due
//! later is waiting, not stuck), and an instance's timeline in journal order.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, InstanceCounts,
    InstanceQuery, InstanceState, ProcessManager, ProcessManagerProjection, ProcessOptions,
    Processes, Route, TimelineKind,
};
use cqrs_core::projection::ProjectionHandle;
use cqrs_core::testing::TestClock;
use cqrs_core::{
    AppendEvents, CommandContext, Error, EventFilter, ExpectedVersion, InMemoryEventStore,
    NewEvent, ReadAll, RecordedEvent, SharedClock, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A job: opened, then finished (completed) or broken (failed). A job whose id starts with
/// `t` gets a one-hour deadline; missing it fails the job.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Job;

#[derive(Clone, Debug)]
enum Ev {
    Open,
    Finish,
    Break,
}

impl ProcessManager for Job {
    const TYPE: &'static str = "job";
    type Trigger = Ev;
    type Command = ();
    type Rejection = ();
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("work")
    }

    fn route(event: &RecordedEvent) -> Result<Route<Ev>, Error> {
        let id = event.stream_id.instance();
        Ok(match event.event_type.as_str() {
            "Open" => Route::start(id, Ev::Open),
            "Finish" => Route::continue_with(id, Ev::Finish),
            "Break" => Route::continue_with(id, Ev::Break),
            _ => Route::Ignore,
        })
    }

    fn apply(&mut self, _: &Input<Self>) {}

    fn decide(&self, input: &Input<Self>, ctx: &Context<'_>) -> Vec<Action<Self>> {
        match input {
            Input::Event {
                trigger: Ev::Open, ..
            } if ctx.instance.starts_with('t') => {
                vec![Action::after("deadline", Duration::from_secs(3600), ())]
            }
            Input::Event {
                trigger: Ev::Finish,
                ..
            } => vec![Action::Complete],
            Input::Event {
                trigger: Ev::Break, ..
            } => vec![Action::fail("broken")],
            Input::Timeout { .. } => vec![Action::fail("deadline passed")],
            _ => vec![],
        }
    }
}

/// The job sends no commands.
struct Nobody;

#[async_trait]
impl CommandDispatcher<()> for Nobody {
    type Rejection = ();

    async fn dispatch(&self, _: &(), _: CommandContext) -> Result<Dispatched, DispatchError<()>> {
        Ok(Dispatched::Forwarded)
    }
}

const WAIT: Duration = Duration::from_secs(10);
const STUCK_AFTER: Duration = Duration::from_secs(300);

async fn append(store: &InMemoryEventStore, job: &str, event_type: &str) {
    store
        .append(
            &StreamId::with_category("work", job).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, 1, json!({}))],
        )
        .await
        .unwrap();
}

async fn caught_up(handle: &ProjectionHandle, store: &InMemoryEventStore) {
    let head = store.head().await.unwrap();
    handle.wait_for(head, WAIT).await.unwrap();
}

fn instances(rows: &[cqrs_core::process::InstanceRow]) -> Vec<(&str, InstanceState)> {
    rows.iter()
        .map(|r| (r.instance.as_str(), r.state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_status_lists_instances_by_state_and_stuck() {
    use InstanceState::{Completed, Failed, Running};

    let store = InMemoryEventStore::new();
    let clock = TestClock::new();
    let options = ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10));
    let handle = ProcessManagerProjection::<Job, _, _>::new(store.clone(), Nobody, options)
        .runner()
        .spawn();
    let processes = Processes::new(store.clone());

    for job in ["j1", "j2", "j3", "j4", "t5"] {
        append(&store, job, "Open").await;
    }
    caught_up(&handle, &store).await;
    clock.advance(Duration::from_secs(60));
    append(&store, "j1", "Finish").await;
    append(&store, "j2", "Break").await;
    caught_up(&handle, &store).await;

    let counts = |now| processes.counts("job", now, STUCK_AFTER);
    assert_eq!(
        counts(clock_now(&clock)).await.unwrap(),
        InstanceCounts::new(3, 1, 1, 0)
    );

    // Pages in instance order, two at a time.
    let all = InstanceQuery::all().limit(2);
    let first = processes.instances("job", &all).await.unwrap();
    assert_eq!(instances(&first), [("j1", Completed), ("j2", Failed)]);
    let second = processes
        .instances("job", &all.clone().after("j2"))
        .await
        .unwrap();
    assert_eq!(instances(&second), [("j3", Running), ("j4", Running)]);
    let third = processes
        .instances("job", &all.clone().after("j4"))
        .await
        .unwrap();
    assert_eq!(instances(&third), [("t5", Running)]);
    assert!(processes
        .instances("job", &all.after("t5"))
        .await
        .unwrap()
        .is_empty());
    let failed = processes
        .instances("job", &InstanceQuery::state(Failed))
        .await
        .unwrap();
    assert_eq!(instances(&failed), [("j2", Failed)]);

    // Ten minutes without progress: j3 and j4 are stuck; t5 waits for its deadline.
    clock.advance(Duration::from_secs(600));
    let now = clock_now(&clock);
    assert_eq!(counts(now).await.unwrap(), InstanceCounts::new(3, 1, 1, 2));
    let stuck = processes
        .instances("job", &InstanceQuery::stuck(now, STUCK_AFTER))
        .await
        .unwrap();
    assert_eq!(instances(&stuck), [("j3", Running), ("j4", Running)]);

    // Past the deadline: it fires, and t5 fails.
    clock.advance(Duration::from_secs(3600));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = clock_now(&clock);
        if counts(now).await.unwrap() == InstanceCounts::new(2, 1, 2, 2) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "t5's deadline did not fail it: {:?}",
            counts(now).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t5 = processes
        .instances("job", &InstanceQuery::all().after("j4"))
        .await
        .unwrap();
    assert_eq!(instances(&t5), [("t5", Failed)]);
    assert_eq!(t5[0].last_input, "timeout deadline");

    // j1's timeline: what it received and decided, in journal order.
    let timeline = processes.timeline("job", "j1").await.unwrap();
    let lines: Vec<String> = timeline
        .iter()
        .map(|e| match &e.kind {
            TimelineKind::Received { what, .. } => what.clone(),
            TimelineKind::Decided { actions, .. } => format!("-> {}", actions.join(", ")),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("event Open from work-j1@1 "),
        "{lines:?}"
    );
    assert_eq!(lines[1], "-> ");
    assert!(
        lines[2].starts_with("event Finish from work-j1@2 "),
        "{lines:?}"
    );
    assert_eq!(lines[3], "-> complete");
    let versions: Vec<u64> = timeline.iter().map(|e| e.version.get()).collect();
    // One journal event per input: its received and decided lines share it.
    assert_eq!(versions, [1, 1, 2, 2]);
    assert!(timeline.windows(2).all(|w| w[0].position <= w[1].position));
    assert_eq!(timeline[0].at, TestClock::START);
    assert_eq!(
        timeline[2].at,
        TestClock::START + time::Duration::seconds(60)
    );
    handle.shutdown().await;
}

fn clock_now(clock: &TestClock) -> time::OffsetDateTime {
    use cqrs_core::Clock;
    clock.now()
}
