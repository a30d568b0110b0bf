//! Status on the in-memory store: timelines read the journal in order with lines for people;
//! an instance held back by a parked event reads as failed in counts and pages; pages refill
//! around it; `instance` loads the typed state.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::{Processes, TimelineKind};
use crate::backend::dead_letter;
use crate::process::instance::Instance;
use crate::process::journal::ReceivedKind;
use crate::process::{
    Action, Context, EventRef, Input, InputId, InstanceQuery, InstanceState, ProcessManager,
    ProcessStore, Route,
};
use crate::projection::DeadLetterStore;
use crate::testing::TestClock;
use crate::{
    EventFilter, EventId, InMemoryEventStore, Metadata, NewEvent, Position, RecordedEvent,
    StreamId, Version,
};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Shipping {
    booked: bool,
    pings: u32,
}

#[derive(Clone, Debug)]
enum Ev {
    Placed,
    Ping,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Cmd {
    Book(String),
}

impl ProcessManager for Shipping {
    const TYPE: &'static str = "shipping";
    type Trigger = Ev;
    type Command = Cmd;
    type Rejection = String;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("order")
    }

    fn route(event: &RecordedEvent) -> Result<Route<Ev>, crate::Error> {
        let id = event.stream_id.instance();
        Ok(match event.event_type.as_str() {
            "Placed" => Route::start(id, Ev::Placed),
            "Ping" => Route::continue_with(id, Ev::Ping),
            _ => Route::Ignore,
        })
    }

    fn apply(&mut self, input: &Input<Self>) {
        match input {
            Input::Accepted { .. } => self.booked = true,
            Input::Event {
                trigger: Ev::Ping, ..
            } => self.pings += 1,
            _ => {}
        }
    }

    fn decide(&self, input: &Input<Self>, ctx: &Context<'_>) -> Vec<Action<Self>> {
        match input {
            Input::Event {
                trigger: Ev::Placed,
                ..
            } => vec![
                Action::send(Cmd::Book(ctx.instance.to_owned())),
                Action::after("carrier", Duration::from_secs(30), ()),
            ],
            _ => vec![],
        }
    }
}

fn at(seconds: i64) -> OffsetDateTime {
    TestClock::START + time::Duration::seconds(seconds)
}

/// Records inputs of one instance the way the engine does: decide, then `record`.
struct Recorder {
    store: InMemoryEventStore,
    id: String,
    instance: Instance<Shipping>,
    events: u64,
}

impl Recorder {
    fn new(store: &InMemoryEventStore, id: &str) -> Self {
        Self {
            store: store.clone(),
            id: id.to_owned(),
            instance: Instance::default(),
            events: 0,
        }
    }

    async fn event(&mut self, event_type: &str, now: OffsetDateTime) {
        self.events += 1;
        let event = RecordedEvent::new(
            StreamId::with_category("order", &self.id).unwrap(),
            Version::new(self.events),
            Position::from_parts(self.events, 0),
            NewEvent::new(event_type, 1, json!({})).with_metadata(Metadata::new(EventId::new())),
            now,
        );
        let trigger = match Shipping::route(&event).unwrap() {
            Route::Start { trigger, .. } | Route::Continue { trigger, .. } => trigger,
            Route::Ignore => unreachable!(),
        };
        let input = Input::Event {
            trigger,
            source: EventRef::of(&event),
        };
        let id = InputId::of_event(event.metadata.event_id);
        self.record(input, id, ReceivedKind::of_event(&event), now)
            .await;
    }

    async fn accept_first(&mut self, now: OffsetDateTime) {
        let pending = self.instance.books.pending[0].clone();
        let command: Cmd = serde_json::from_value(pending.command).unwrap();
        let step = pending.step;
        let input = Input::Accepted { step, command };
        let id = InputId::of_outcome(step.command_id);
        self.record(input, id, ReceivedKind::Accepted { step }, now)
            .await;
    }

    async fn record(
        &mut self,
        input: Input<Shipping>,
        id: InputId,
        kind: ReceivedKind,
        now: OffsetDateTime,
    ) {
        let decision = self
            .instance
            .decide_input(&self.id, input, id, kind, now)
            .unwrap();
        let stream = Instance::<Shipping>::stream(&self.id).unwrap();
        self.store
            .record(Shipping::TYPE, decision.into_record(stream))
            .await
            .unwrap();
    }
}

async fn park(store: &InMemoryEventStore, instance: &str, position: u64) {
    let letter = dead_letter(
        "process:shipping",
        Position::from_parts(1_000 + position, 0),
        StreamId::with_category("order", instance).unwrap(),
        Version::new(1),
        "Placed",
        Some(format!("shipping-{instance}")),
        "route failed: bad payload",
        at(5),
    );
    store.park(letter).await.unwrap();
}

#[tokio::test]
async fn a_timeline_reads_the_journal_in_order_with_lines_for_people() {
    let store = InMemoryEventStore::new();
    let mut seven = Recorder::new(&store, "7");
    seven.event("Placed", at(0)).await;
    seven.accept_first(at(1)).await;
    let timeline = Processes::new(store.clone())
        .timeline("shipping", "7")
        .await
        .unwrap();

    let versions: Vec<u64> = timeline.iter().map(|e| e.version.get()).collect();
    assert_eq!(
        versions,
        [1, 1, 2, 2, 1],
        "journal order (each input's event gives a received and a decided line), then the live timeout"
    );
    assert_eq!(
        timeline.iter().map(|e| e.at).collect::<Vec<_>>(),
        [at(0), at(0), at(1), at(1), at(30)]
    );
    match &timeline[0].kind {
        TimelineKind::Received { what, .. } => {
            assert_eq!(what, "event Placed from order-7@1 (1/0)")
        }
        other => panic!("{other:?}"),
    }
    let TimelineKind::Decided { actions, .. } = &timeline[1].kind else {
        panic!("{:?}", timeline[1].kind)
    };
    assert_eq!(actions.len(), 2);
    assert!(
        actions[0].starts_with(r#"send {"Book":"7"} (cmd "#),
        "{actions:?}"
    );
    assert_eq!(actions[1], "after 30s: carrier");
    match &timeline[2].kind {
        TimelineKind::Received { what, payload, .. } => {
            assert!(what.starts_with(r#"accepted {"Book":"7"} (cmd "#), "{what}");
            assert_eq!(payload, &json!({ "Book": "7" }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        timeline[3].kind,
        TimelineKind::Decided {
            input: match &timeline[2].kind {
                TimelineKind::Received { input, .. } => *input,
                _ => unreachable!(),
            },
            actions: vec![],
        }
    );
    assert!(
        matches!(&timeline[4].kind, TimelineKind::Live { key, due_at, .. } if key == "carrier" && *due_at == at(30))
    );
}

#[tokio::test]
async fn a_long_journal_is_read_in_batches_without_a_gap() {
    let store = InMemoryEventStore::new();
    let mut one = Recorder::new(&store, "1");
    one.event("Placed", at(0)).await;
    for n in 0..200 {
        one.event("Ping", at(n)).await;
    }
    let timeline = Processes::new(store)
        .timeline("shipping", "1")
        .await
        .unwrap();
    let journal: Vec<u64> = timeline
        .iter()
        .filter(|e| !matches!(e.kind, TimelineKind::Live { .. }))
        .map(|e| e.version.get())
        .collect();
    // One event per input: a received and a decided line each.
    let expected: Vec<u64> = (1..=201).flat_map(|v| [v, v]).collect();
    assert_eq!(journal, expected);
}

#[tokio::test]
async fn an_instance_held_back_by_a_parked_event_reads_as_failed() {
    let store = InMemoryEventStore::new();
    for id in ["1", "2", "3", "4", "5"] {
        Recorder::new(&store, id).event("Placed", at(0)).await;
    }
    park(&store, "3", 3).await;
    // Parked before it recorded anything.
    park(&store, "9", 9).await;
    let processes = Processes::new(store.clone());

    let counts = processes
        .counts("shipping", at(10), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!((counts.running, counts.failed, counts.stuck), (4, 2, 0));
    // Ten minutes on: no progress, the carrier timeout overdue (nobody fired it): stuck, but
    // not the parked one.
    let later = processes
        .counts("shipping", at(600), Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!((later.running, later.failed, later.stuck), (4, 2, 4));

    let ids = |rows: Vec<crate::process::InstanceRow>| {
        rows.into_iter()
            .map(|r| (r.instance, r.state))
            .collect::<Vec<_>>()
    };
    let running = InstanceQuery::state(InstanceState::Running).limit(2);
    let first = ids(processes.instances("shipping", &running).await.unwrap());
    assert_eq!(
        first,
        [
            ("1".to_owned(), InstanceState::Running),
            ("2".to_owned(), InstanceState::Running)
        ]
    );
    let second = ids(processes
        .instances("shipping", &running.clone().after("2"))
        .await
        .unwrap());
    assert_eq!(
        second,
        [
            ("4".to_owned(), InstanceState::Running),
            ("5".to_owned(), InstanceState::Running)
        ],
        "the parked 3 is left out and the page refilled"
    );
    assert!(processes
        .instances("shipping", &running.after("5"))
        .await
        .unwrap()
        .is_empty());

    let failed = processes
        .instances("shipping", &InstanceQuery::state(InstanceState::Failed))
        .await
        .unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|r| r.instance.as_str())
            .collect::<Vec<_>>(),
        ["3", "9"]
    );
    assert!(failed
        .iter()
        .all(|r| r.state == InstanceState::Failed && r.last_input.starts_with("parked Placed")));
    assert_eq!(failed[1].version, Version::ZERO);

    let all = InstanceQuery::all().limit(4);
    let page = ids(processes.instances("shipping", &all).await.unwrap());
    assert_eq!(
        page.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3", "4"]
    );
    assert_eq!(page[2].1, InstanceState::Failed);
    let rest = ids(processes
        .instances("shipping", &all.after("4"))
        .await
        .unwrap());
    assert_eq!(
        rest,
        [
            ("5".to_owned(), InstanceState::Running),
            ("9".to_owned(), InstanceState::Failed)
        ]
    );

    let timeline = processes.timeline("shipping", "3").await.unwrap();
    assert!(matches!(
        &timeline.last().unwrap().kind,
        TimelineKind::Parked { what, error } if what == "Placed from order-3@1" && error.contains("bad payload")
    ));
}

#[tokio::test]
async fn instance_loads_the_typed_state_and_bookkeeping() {
    let store = InMemoryEventStore::new();
    let mut seven = Recorder::new(&store, "7");
    seven.event("Placed", at(0)).await;
    seven.event("Ping", at(1)).await;
    seven.accept_first(at(2)).await;
    let processes = Processes::new(store);
    let (state, books) = processes.instance::<Shipping>("7").await.unwrap().unwrap();
    assert_eq!(
        state,
        Shipping {
            booked: true,
            pings: 1
        }
    );
    assert_eq!(books.version, Version::new(3));
    assert!(books.pending.is_empty());
    assert_eq!(books.timeouts["carrier"].due_at, at(30));
    assert_eq!(books, seven.instance.books);
    assert!(processes.instance::<Shipping>("8").await.unwrap().is_none());
}
