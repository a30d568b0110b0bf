//! `decide_input` and replay: fold = replay = snapshot + tail; timeout changes are netted per
//! key; derived ids are stable; completion waits for pending outcomes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::{Decision, Instance, InstanceState, Received};
use crate::process::ids::InputId;
use crate::process::journal::ReceivedKind;
use crate::process::manager::{Action, Context, EventRef, Input, ProcessManager, Route, Step};
use crate::process::store::TimeoutChange;
use crate::{
    AppendEvents, EventFilter, EventId, ExpectedVersion, InMemoryEventStore, Metadata, NewEvent,
    Position, RecordedEvent, SnapshotStore, StreamId, Upcasters, Version,
};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Order {
    lines: u32,
    reserved: u32,
    refused: Vec<String>,
    timed_out: bool,
}

#[derive(Clone, Debug)]
enum Ev {
    Placed { lines: u32 },
    Paid,
    Juggle,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Cmd {
    Reserve(u32),
    Release(u32),
    Cancel,
}

impl ProcessManager for Order {
    const TYPE: &'static str = "order_flow";
    type Trigger = Ev;
    type Command = Cmd;
    type Rejection = String;
    type Timeout = u32;

    fn subscriptions() -> EventFilter {
        EventFilter::all().category("order")
    }

    fn route(event: &RecordedEvent) -> Result<Route<Ev>, crate::Error> {
        let id = event.stream_id.instance().to_owned();
        Ok(match event.event_type.as_str() {
            "Placed" => Route::start(
                id,
                Ev::Placed {
                    lines: event.payload["lines"]
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                },
            ),
            "Paid" => Route::continue_with(id, Ev::Paid),
            "Juggle" => Route::continue_with(id, Ev::Juggle),
            _ => Route::Ignore,
        })
    }

    fn apply(&mut self, input: &Input<Self>) {
        match input {
            Input::Event {
                trigger: Ev::Placed { lines },
                ..
            } => self.lines = *lines,
            Input::Accepted {
                command: Cmd::Reserve(_),
                ..
            } => self.reserved += 1,
            Input::Rejected { error, .. } => self.refused.push(error.clone()),
            Input::Timeout { .. } => self.timed_out = true,
            _ => {}
        }
    }

    fn decide(&self, input: &Input<Self>, ctx: &Context<'_>) -> Vec<Action<Self>> {
        match input {
            Input::Event {
                trigger: Ev::Placed { .. },
                ..
            } => vec![
                Action::send(Cmd::Reserve(0)),
                Action::after("pay", Duration::from_secs(30), 1),
            ],
            Input::Event {
                trigger: Ev::Juggle,
                ..
            } => vec![
                Action::after("a", Duration::from_secs(5), 2),
                Action::cancel("a"),
                Action::cancel("b"),
                Action::after("b", Duration::from_secs(6), 3),
                Action::after("pay", Duration::from_secs(60), 4),
            ],
            Input::Event {
                trigger: Ev::Paid, ..
            } => vec![Action::cancel("pay"), Action::Complete],
            Input::Accepted {
                command: Cmd::Reserve(n),
                ..
            } if n + 1 < self.lines => vec![Action::send(Cmd::Reserve(n + 1))],
            Input::Accepted { .. } => vec![],
            Input::Rejected { .. } => {
                let mut actions: Vec<_> = (0..self.reserved)
                    .map(|n| Action::send(Cmd::Release(n)))
                    .collect();
                actions.push(Action::send(Cmd::Cancel));
                actions.push(Action::Complete);
                assert!(ctx.pending_commands() == 0);
                actions
            }
            Input::Timeout { .. } => vec![Action::send(Cmd::Cancel), Action::Complete],
        }
    }
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("a valid time")
}

fn event(n: u64, event_type: &str, payload: serde_json::Value) -> RecordedEvent {
    RecordedEvent::new(
        StreamId::new("order-7").expect("valid"),
        Version::new(n),
        Position::from_parts(n, 0),
        NewEvent::new(event_type, 1, payload).with_metadata(Metadata::new(EventId::from_uuid(
            uuid::Uuid::from_u128(u128::from(n)),
        ))),
        start(),
    )
}

fn on_event(
    instance: &mut Instance<Order>,
    event: &RecordedEvent,
    now: OffsetDateTime,
) -> Decision<Order> {
    let Ok(Route::Start { trigger, .. } | Route::Continue { trigger, .. }) = Order::route(event)
    else {
        panic!("routed")
    };
    instance
        .decide_input(
            "7",
            Input::Event {
                trigger,
                source: EventRef::of(event),
            },
            InputId::of_event(event.metadata.event_id),
            ReceivedKind::of_event(event),
            now,
        )
        .expect("decided")
}

fn on_outcome(
    instance: &mut Instance<Order>,
    step: Step,
    command: Cmd,
    rejection: Option<&str>,
    now: OffsetDateTime,
) -> Decision<Order> {
    let id = InputId::of_outcome(step.command_id);
    let (input, kind) = match rejection {
        None => (
            Input::Accepted { step, command },
            ReceivedKind::Accepted { step },
        ),
        Some(error) => (
            Input::Rejected {
                step,
                command,
                error: error.to_owned(),
            },
            ReceivedKind::Rejected {
                step,
                error: json!(error),
            },
        ),
    };
    instance
        .decide_input("7", input, id, kind, now)
        .expect("decided")
}

/// Drives a three-line order whose third reserve is refused; returns the decisions in order.
fn scenario(instance: &mut Instance<Order>) -> Vec<Decision<Order>> {
    let mut decisions = vec![on_event(
        instance,
        &event(1, "Placed", json!({ "lines": 3 })),
        start(),
    )];
    for n in 0..3u32 {
        let (step, command) = decisions
            .last()
            .and_then(|d| d.commands.first().cloned())
            .expect("a reserve");
        let refused = (n == 2).then_some("out of stock");
        let now = start() + Duration::from_secs(u64::from(n) + 1);
        decisions.push(on_outcome(instance, step, command, refused, now));
    }
    let (steps, _): (Vec<_>, Vec<_>) = decisions
        .last()
        .map(|d| d.commands.iter().cloned().unzip())
        .expect("compensations");
    for (i, step) in steps.into_iter().enumerate() {
        let command = instance
            .books
            .pending_command(&step)
            .map(|p| serde_json::from_value(p.command.clone()).expect("a command"))
            .expect("pending");
        let now = start() + Duration::from_secs(10 + i as u64);
        decisions.push(on_outcome(instance, step, command, None, now));
    }
    decisions
}

#[test]
fn a_refused_reserve_compensates_and_completes_once_outcomes_are_in() {
    let mut instance = Instance::<Order>::default();
    let decisions = scenario(&mut instance);
    let compensation = &decisions[3];
    let sent: Vec<_> = compensation
        .commands
        .iter()
        .map(|(_, c)| c.clone())
        .collect();
    assert_eq!(sent, [Cmd::Release(0), Cmd::Release(1), Cmd::Cancel]);
    assert_eq!(compensation.status.state, InstanceState::Running);
    assert!(instance.books.pending.is_empty());
    assert_eq!(instance.books.state, InstanceState::Completed);
    assert!(instance.books.timeouts.is_empty());
    assert_eq!(compensation.timeouts, []);
    let completing = decisions.last().expect("a last decision");
    assert_eq!(completing.timeouts, [TimeoutChange::CancelAll]);
    assert_eq!(completing.status.state, InstanceState::Completed);
    assert!(completing.status.finished_at.is_some());
    assert_eq!(instance.books.version, Version::new(decisions.len() as u64));
    assert_eq!(instance.state.refused, ["out of stock"]);
}

#[test]
fn deciding_the_same_input_again_derives_the_same_ids() {
    let placed = event(1, "Placed", json!({ "lines": 2 }));
    let first = on_event(&mut Instance::default(), &placed, start());
    let again = on_event(&mut Instance::default(), &placed, start());
    let ids = |d: &Decision<Order>| {
        (
            d.events
                .iter()
                .map(|e| e.metadata.event_id)
                .collect::<Vec<_>>(),
            d.commands.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            d.timeouts.clone(),
        )
    };
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(first.events[0].event_type, "ProcessInputReceived");
    assert_eq!(first.events.len(), 1, "one journal event per input");
    assert_ne!(first.events[0].metadata.event_id, placed.metadata.event_id);
    let [TimeoutChange::Schedule { due_at, .. }] = first.timeouts.as_slice() else {
        panic!("one schedule, got {:?}", first.timeouts)
    };
    assert_eq!(*due_at, start() + Duration::from_secs(30));
}

#[test]
fn timeout_changes_are_netted_per_key() {
    let mut instance = Instance::<Order>::default();
    let placed = on_event(
        &mut instance,
        &event(1, "Placed", json!({ "lines": 2 })),
        start(),
    );
    let pay_id = match placed.timeouts.as_slice() {
        [TimeoutChange::Schedule { timeout_id, .. }] => *timeout_id,
        other => panic!("one schedule, got {other:?}"),
    };
    let juggled = on_event(&mut instance, &event(2, "Juggle", json!({})), start());
    // "a" scheduled then cancelled: nothing; "b" cancelled (not live) then scheduled: a
    // schedule; "pay" rescheduled: one schedule replacing it, no cancel.
    let keys: Vec<_> = juggled
        .timeouts
        .iter()
        .map(|c| match c {
            TimeoutChange::Schedule {
                key, timeout_id, ..
            } => {
                assert_ne!(*timeout_id, pay_id);
                format!("schedule {key}")
            }
            TimeoutChange::Cancel { key, .. } => format!("cancel {key}"),
            TimeoutChange::CancelAll => "cancel all".to_owned(),
        })
        .collect();
    assert_eq!(keys, ["schedule b", "schedule pay"]);
    let paid = on_event(&mut instance, &event(3, "Paid", json!({})), start());
    // Complete with a reserve pending: still running, "pay" cancelled by id, "b" still live.
    let pay_now = instance_timeout_id(&juggled, "pay");
    assert_eq!(
        paid.timeouts,
        [TimeoutChange::Cancel {
            key: "pay".to_owned(),
            timeout_id: pay_now
        }]
    );
    assert_eq!(paid.status.state, InstanceState::Running);
    assert!(instance.books.completing);
}

fn instance_timeout_id(decision: &Decision<Order>, key: &str) -> uuid::Uuid {
    decision
        .timeouts
        .iter()
        .find_map(|c| match c {
            TimeoutChange::Schedule {
                key: k, timeout_id, ..
            } if k == key => Some(*timeout_id),
            _ => None,
        })
        .expect("scheduled")
}

#[tokio::test]
async fn fold_equals_replay_equals_snapshot_and_tail() {
    let mut folded = Instance::<Order>::default();
    let decisions = scenario(&mut folded);
    let store = InMemoryEventStore::new();
    let stream = Instance::<Order>::stream("7").expect("a stream");
    let mut halfway = None;
    for (n, decision) in decisions.into_iter().enumerate() {
        let expected = ExpectedVersion::Exact(decision.expected);
        store
            .append(&stream, expected, decision.events)
            .await
            .expect("appended");
        if n == 2 {
            let loaded = Instance::<Order>::load(&store, &stream, &Upcasters::new())
                .await
                .expect("loaded");
            halfway = Some(loaded.snapshot(&stream).expect("a snapshot"));
        }
    }
    let replayed = Instance::<Order>::load(&store, &stream, &Upcasters::new())
        .await
        .expect("replayed");
    assert_eq!(replayed.state, folded.state);
    assert_eq!(replayed.books, folded.books);

    store
        .save_snapshot(halfway.expect("taken"))
        .await
        .expect("saved");
    let from_snapshot = Instance::<Order>::load(&store, &stream, &Upcasters::new())
        .await
        .expect("loaded from a snapshot");
    assert_eq!(from_snapshot.state, folded.state);
    assert_eq!(from_snapshot.books, folded.books);
}

#[tokio::test]
async fn triggers_in_the_journal_are_upcast_on_load() {
    // Written before `Placed` v2 renamed `count` to `lines`: the journal keeps the v1 payload.
    let old = event(1, "Placed", json!({ "count": 4 }));
    let mut instance = Instance::<Order>::default();
    let decision = instance
        .decide_input(
            "7",
            Input::Event {
                trigger: Ev::Placed { lines: 4 },
                source: EventRef::of(&old),
            },
            InputId::of_event(old.metadata.event_id),
            ReceivedKind::of_event(&old),
            start(),
        )
        .expect("decided");
    let store = InMemoryEventStore::new();
    let stream = Instance::<Order>::stream("7").expect("a stream");
    store
        .append(&stream, ExpectedVersion::NoStream, decision.events)
        .await
        .expect("appended");

    let upcasters = Upcasters::new().with_fn("Placed", 1, |mut payload| {
        let count = payload["count"].take();
        Ok(json!({ "lines": count }))
    });
    let plain = Instance::<Order>::load(&store, &stream, &Upcasters::new())
        .await
        .expect("loaded");
    assert_eq!(
        plain.state.lines, 0,
        "without the upcaster, route reads no lines"
    );
    let upcast = Instance::<Order>::load(&store, &stream, &upcasters)
        .await
        .expect("loaded");
    assert_eq!(upcast.state.lines, 4);
    assert_eq!(upcast.books, instance.books);
}

#[test]
fn an_event_carrying_a_pending_commands_id_answers_it() {
    let mut instance = Instance::<Order>::default();
    let placed = on_event(
        &mut instance,
        &event(1, "Placed", json!({ "lines": 1 })),
        start(),
    );
    let (step, _) = placed.commands[0].clone();
    // The reserve was forwarded; the service's event for it carries its command id.
    let mut paid = event(2, "Paid", json!({}));
    paid.metadata.command_id = Some(step.command_id);
    let decision = on_event(&mut instance, &paid, start());
    assert!(instance.books.pending.is_empty());
    // Paid completes, and nothing is left pending to wait for.
    assert_eq!(decision.status.state, InstanceState::Completed);
    assert_eq!(decision.status.pending_commands, 0);
}

/// The inputs of a three-line order whose third reserve is refused, with a juggle of timeouts
/// in the middle, as one worker would take them (all at `start()`).
fn scenario_inputs() -> Vec<Received<Order>> {
    let mut instance = Instance::<Order>::default();
    let mut inputs = Vec::new();
    let mut take = |instance: &mut Instance<Order>, received: Received<Order>| {
        inputs.push(received.clone());
        instance
            .decide_inputs("7", vec![received], start())
            .expect("decided")
    };
    let as_input = |event: &RecordedEvent| {
        let Ok(Route::Start { trigger, .. } | Route::Continue { trigger, .. }) =
            Order::route(event)
        else {
            panic!("routed")
        };
        Received {
            input: Input::Event {
                trigger,
                source: EventRef::of(event),
            },
            id: InputId::of_event(event.metadata.event_id),
            kind: ReceivedKind::of_event(event),
        }
    };
    let outcome = |(step, command): (Step, Cmd), refused: bool| {
        let id = InputId::of_outcome(step.command_id);
        if refused {
            let error = "out of stock".to_owned();
            Received {
                kind: ReceivedKind::Rejected {
                    step,
                    error: json!(error),
                },
                input: Input::Rejected {
                    step,
                    command,
                    error,
                },
                id,
            }
        } else {
            Received {
                input: Input::Accepted { step, command },
                id,
                kind: ReceivedKind::Accepted { step },
            }
        }
    };
    let mut decided = take(
        &mut instance,
        as_input(&event(1, "Placed", json!({ "lines": 3 }))),
    );
    take(&mut instance, as_input(&event(2, "Juggle", json!({}))));
    for n in 0..3 {
        let reserve = decided.commands.first().cloned().expect("a reserve");
        decided = take(&mut instance, outcome(reserve, n == 2));
    }
    for compensation in decided.commands {
        take(&mut instance, outcome(compensation, false));
    }
    inputs
}

/// The live timeouts (key -> id) after a store applied `changes`, in order.
fn apply_timeouts(table: &mut BTreeMap<String, uuid::Uuid>, changes: &[TimeoutChange]) {
    for change in changes {
        match change {
            TimeoutChange::Schedule {
                key, timeout_id, ..
            } => {
                table.insert(key.clone(), *timeout_id);
            }
            TimeoutChange::Cancel { key, timeout_id } => {
                if table.get(key) == Some(timeout_id) {
                    table.remove(key);
                }
            }
            TimeoutChange::CancelAll => table.clear(),
        }
    }
}

#[test]
fn inputs_decided_together_journal_and_fold_what_deciding_each_alone_does() {
    let inputs = scenario_inputs();
    assert_eq!(
        inputs.len(),
        8,
        "placed, juggle, three reserves, three compensations"
    );
    let alone = {
        let mut instance = Instance::<Order>::default();
        let (mut events, mut table, mut status) = (Vec::new(), BTreeMap::new(), None);
        for received in inputs.clone() {
            let decision = instance
                .decide_inputs("7", vec![received], start())
                .expect("decided");
            events.extend(decision.events);
            apply_timeouts(&mut table, &decision.timeouts);
            status = Some(decision.status);
        }
        (instance, events, table, status)
    };
    // Every way to cut the inputs into consecutive groups: bit i set = a cut after input i.
    let cuts = inputs.len() - 1;
    for mask in 0..(1u32 << cuts) {
        let mut groups = vec![Vec::new()];
        for (i, received) in inputs.iter().enumerate() {
            groups.last_mut().expect("a group").push(received.clone());
            if i < cuts && mask & (1 << i) != 0 {
                groups.push(Vec::new());
            }
        }
        let mut instance = Instance::<Order>::default();
        let (mut events, mut table, mut status) = (Vec::new(), BTreeMap::new(), None);
        for group in groups {
            let size = group.len() as u64;
            let decision = instance
                .decide_inputs("7", group, start())
                .expect("decided");
            assert_eq!(
                decision.events.len() as u64,
                size,
                "one journal event per input"
            );
            assert_eq!(decision.expected.advance(size), instance.books.version);
            let keys: Vec<_> = decision.timeouts.iter().map(change_key).collect();
            let mut unique = keys.clone();
            unique.dedup();
            assert_eq!(keys, unique, "at most one change per key, cuts {mask:b}");
            events.extend(decision.events);
            apply_timeouts(&mut table, &decision.timeouts);
            status = Some(decision.status);
        }
        assert_eq!(events, alone.1, "the journal, cuts {mask:b}");
        assert_eq!(instance.books, alone.0.books, "cuts {mask:b}");
        assert_eq!(instance.state, alone.0.state, "cuts {mask:b}");
        assert_eq!(table, alone.2, "the live timeouts, cuts {mask:b}");
        assert_eq!(status, alone.3, "the status row, cuts {mask:b}");
    }
    assert_eq!(alone.0.books.state, InstanceState::Completed);
}

fn change_key(change: &TimeoutChange) -> String {
    match change {
        TimeoutChange::Schedule { key, .. } | TimeoutChange::Cancel { key, .. } => key.clone(),
        TimeoutChange::CancelAll => "*".to_owned(),
    }
}

/// `now + after` past the calendar (year 9999 here; `Duration::MAX` for "never" anywhere) is
/// the process's error for that input, which parks it, not a panic that takes the runner down.
#[test]
fn a_timeout_past_the_calendar_is_the_process_error_not_a_panic() {
    let placed = event(1, "Placed", json!({ "lines": 1 }));
    let Ok(Route::Start { trigger, .. }) = Order::route(&placed) else {
        panic!("routed")
    };
    // 9999-12-31 23:59:59 UTC.
    let end_of_the_calendar =
        OffsetDateTime::from_unix_timestamp(253_402_300_799).expect("the last second");

    let decided = Instance::<Order>::default().decide_input(
        "7",
        Input::Event {
            trigger,
            source: EventRef::of(&placed),
        },
        InputId::of_event(placed.metadata.event_id),
        ReceivedKind::of_event(&placed),
        end_of_the_calendar,
    );

    let Err(error) = decided else {
        panic!("the timeout cannot be scheduled")
    };
    assert!(error.to_string().contains("past the calendar"), "{error}");
}
