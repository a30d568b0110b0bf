//! Durable timeouts on the in-memory store, driven by a `TestClock`: a timeout fires once the
//! clock passes its due time (and not before); a cancelled one never fires; scheduling a key
//! again replaces its timeout; and a firing whose timeout is no longer live under its key (it
//! raced a cancel or a reschedule) is dropped, never decided.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::process::{
    Action, CommandDispatcher, Context, DispatchError, Dispatched, Input, ProcessManager,
    ProcessManagerProjection, ProcessOptions, ProcessStore, Processes, Route, TimelineKind,
    TimeoutFired,
};
use cqrs_core::projection::ProjectionHandle;
use cqrs_core::testing::TestClock;
use cqrs_core::{
    AppendEvents, CommandContext, Error, EventFilter, ExpectedVersion, InMemoryEventStore,
    NewEvent, Position, RecordedEvent, SharedClock, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Schedules reminders and sends one command per reminder that fires.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Reminders;

#[derive(Clone, Debug)]
enum Ev {
    Plan,
    DropB,
    MoveC,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Cmd {
    Remind(String),
}

impl ProcessManager for Reminders {
    const TYPE: &'static str = "reminders";
    type Trigger = Ev;
    type Command = Cmd;
    type Rejection = String;
    type Timeout = String;

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("job")
    }

    fn route(event: &RecordedEvent) -> Result<Route<Ev>, Error> {
        let id = event.stream_id.instance();
        Ok(match event.event_type.as_str() {
            "Plan" => Route::start(id, Ev::Plan),
            "DropB" => Route::continue_with(id, Ev::DropB),
            "MoveC" => Route::continue_with(id, Ev::MoveC),
            _ => Route::Ignore,
        })
    }

    fn apply(&mut self, _: &Input<Self>) {}

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        let secs = Duration::from_secs;
        match input {
            Input::Event {
                trigger: Ev::Plan, ..
            } => vec![
                Action::after("a", secs(10), "a".to_owned()),
                Action::after("b", secs(20), "b".to_owned()),
                Action::after("c", secs(30), "c".to_owned()),
            ],
            Input::Event {
                trigger: Ev::DropB, ..
            } => vec![Action::cancel("b")],
            Input::Event {
                trigger: Ev::MoveC, ..
            } => vec![Action::after("c", secs(60), "c moved".to_owned())],
            Input::Timeout { payload, .. } => vec![Action::send(Cmd::Remind(payload.clone()))],
            _ => vec![],
        }
    }
}

/// Accepts every command and remembers it.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<Cmd>>>);

impl Sent {
    fn now(&self) -> Vec<Cmd> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl CommandDispatcher<Cmd> for Sent {
    type Rejection = String;

    async fn dispatch(
        &self,
        command: &Cmd,
        _: CommandContext,
    ) -> Result<Dispatched, DispatchError<String>> {
        self.0.lock().unwrap().push(command.clone());
        Ok(Dispatched::Accepted {
            duplicate: false,
            position: None,
        })
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn append(store: &InMemoryEventStore, event_type: &str) -> Position {
    let stream = StreamId::new("job-1").unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, 1, json!({}))],
        )
        .await
        .unwrap()
        .position
}

/// Polls `check` until it holds, failing after [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn caught_up(handle: &ProjectionHandle, store: &InMemoryEventStore) {
    use cqrs_core::ReadAll;
    let head = store.head().await.unwrap();
    handle.wait_for(head, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_fire_on_the_test_clock_and_cancel_by_key() {
    let store = InMemoryEventStore::new();
    let clock = TestClock::new();
    let sent = Sent::default();
    let options = ProcessOptions::default()
        .clock(SharedClock::new(clock.clone()))
        .timer_poll(Duration::from_millis(10));
    let handle =
        ProcessManagerProjection::<Reminders, _, _>::new(store.clone(), sent.clone(), options)
            .runner()
            .spawn();

    append(&store, "Plan").await;
    caught_up(&handle, &store).await;
    let first_c = store
        .instance_timeouts("reminders", "1")
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.key == "c")
        .expect("c is scheduled");

    // Not due yet: the earliest live timeout is "a", at 10 s.
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        store.next_due("reminders").await.unwrap(),
        Some(TestClock::START + time::Duration::seconds(10))
    );

    // Due: "a" fires once the clock passes it.
    clock.advance(Duration::from_secs(2));
    eventually("a to fire", || sent.now() == [Cmd::Remind("a".into())]).await;

    // "b" is cancelled, "c" rescheduled (the new one replaces the old under the key).
    append(&store, "DropB").await;
    append(&store, "MoveC").await;
    caught_up(&handle, &store).await;
    let live = store.instance_timeouts("reminders", "1").await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].key, "c");
    assert_ne!(live[0].timeout_id, first_c.timeout_id);
    assert_eq!(
        live[0].due_at,
        TestClock::START + time::Duration::seconds(11 + 60)
    );

    // A firing of the replaced "c" (as if the store had fired it while the reschedule was
    // being decided) is stale: the instance drops it.
    let stale = TimeoutFired {
        instance: "1".to_owned(),
        key: "c".to_owned(),
        timeout_id: first_c.timeout_id,
        due_at: first_c.due_at,
        payload: first_c.payload.clone(),
    };
    let stale_at = store
        .append(
            &TimeoutFired::stream("reminders", first_c.timeout_id).unwrap(),
            ExpectedVersion::NoStream,
            vec![stale.to_event().unwrap()],
        )
        .await
        .unwrap()
        .position;
    handle.wait_for(stale_at, WAIT).await.unwrap();

    // Past the old due times of "b" and "c": neither fires. Then the moved "c" does.
    clock.advance(Duration::from_secs(40));
    clock.advance(Duration::from_secs(30));
    eventually("the moved c to fire", || sent.now().len() == 2).await;
    assert_eq!(
        sent.now(),
        [Cmd::Remind("a".into()), Cmd::Remind("c moved".into())],
        "a cancelled or replaced timeout never fires, and a stale firing is not decided"
    );
    caught_up(&handle, &store).await;
    assert!(store
        .instance_timeouts("reminders", "1")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due("reminders").await.unwrap(), None);

    // The journal holds exactly the two timeouts that fired, each once.
    let timeline = Processes::new(store.clone())
        .timeline("reminders", "1")
        .await
        .unwrap();
    let fired: Vec<&str> = timeline
        .iter()
        .filter_map(|e| match &e.kind {
            TimelineKind::Received { what, .. } if what.starts_with("timeout ") => {
                Some(what.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(fired[0].starts_with("timeout a "), "{fired:?}");
    assert!(fired[1].starts_with("timeout c "), "{fired:?}");
    handle.shutdown().await;
}

/// A timeout's payload is checked when it is scheduled; its fired event wraps it with the
/// instance, key and ids, and was checked again against the limit: a payload near the limit
/// was refused when it fired, and every later timeout of the process waited behind it.
#[tokio::test]
async fn a_timeout_whose_payload_is_near_the_limit_still_fires() {
    use cqrs_core::process::{InstanceRow, ProcessRecord, TimeoutChange};
    use cqrs_core::Version;

    let store = InMemoryEventStore::with_max_payload_bytes(1_000);
    let at = |secs| TestClock::START + time::Duration::seconds(secs);
    let (near, small) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let record = ProcessRecord::new(
        StreamId::new("reminders-1").unwrap(),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
        vec![
            TimeoutChange::Schedule {
                key: "near".to_owned(),
                timeout_id: near,
                due_at: at(1),
                payload: json!("x".repeat(990)),
            },
            TimeoutChange::Schedule {
                key: "small".to_owned(),
                timeout_id: small,
                due_at: at(2),
                payload: json!("y"),
            },
        ],
        InstanceRow::new("1", Version::new(1), at(0)),
    );
    store.record("reminders", record).await.expect("scheduled");
    let fired = store
        .fire_due("reminders", at(10), 100)
        .await
        .expect("both fire");
    let ids: Vec<uuid::Uuid> = fired.iter().map(|f| f.timeout_id).collect();
    assert_eq!(ids, [near, small]);
}
