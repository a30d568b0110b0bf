//! Process managers' store: a record is atomic with its timeouts and status row, timeouts
//! fire once when due (however many firers race), cancel and reschedule by key, and status rows
//! are listed and counted by state.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::process::{
    FiredTimeout, InstanceCounts, InstanceQuery, InstanceRow, InstanceState, ProcessRecord,
    ScheduledTimeout, TimeoutChange, TimeoutFired, TIMEOUT_FIRED,
};
use crate::testing::TestClock;
use crate::{CommandId, Error, EventId, ExpectedVersion, Metadata, NewEvent, Version};

use super::{stream, ConformanceStore};

/// The process type every case uses; `OTHER` checks that processes do not see each other.
const PROCESS: &str = "Order";
const OTHER: &str = "Billing";

/// `TestClock::START` plus `secs` seconds (whole seconds: every store keeps them exactly).
fn at(secs: i64) -> OffsetDateTime {
    TestClock::START + time::Duration::seconds(secs)
}

/// Two journal-like events with fresh ids.
fn journal() -> Vec<NewEvent> {
    vec![
        NewEvent::new("ProcessInputReceived", 1, json!({ "n": 1 })),
        NewEvent::new("ProcessActionsDecided", 1, json!({ "n": 2 })),
    ]
}

fn schedule(key: &str, due_at: OffsetDateTime, payload: Value) -> (Uuid, TimeoutChange) {
    let timeout_id = Uuid::new_v4();
    let change = TimeoutChange::Schedule {
        key: key.to_owned(),
        timeout_id,
        due_at,
        payload,
    };
    (timeout_id, change)
}

fn cancel(key: &str, timeout_id: Uuid) -> TimeoutChange {
    TimeoutChange::Cancel {
        key: key.to_owned(),
        timeout_id,
    }
}

/// A record of `events` to instance `instance`'s stream, expecting `expected`, whose status
/// row is `status` (its version is the stream's after the record).
async fn record<S: ConformanceStore>(
    store: &S,
    process: &str,
    instance: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    timeouts: Vec<TimeoutChange>,
    status: InstanceRow,
) -> crate::Result<crate::AppendOutcome> {
    let stream = stream(&format!("{process}-{instance}"));
    store
        .record(
            process,
            ProcessRecord::new(stream, expected, events, timeouts, status),
        )
        .await
}

/// The row of a running instance at journal version `version`, progressed at `at`.
fn running(instance: &str, version: u64, progressed: OffsetDateTime) -> InstanceRow {
    InstanceRow::new(instance, Version::new(version), progressed)
}

fn keys_of(timeouts: &[ScheduledTimeout]) -> Vec<(&str, Uuid, OffsetDateTime)> {
    timeouts
        .iter()
        .map(|t| (t.key.as_str(), t.timeout_id, t.due_at))
        .collect()
}

/// The events of a fired timeout's stream.
async fn timer_stream<S: ConformanceStore>(
    store: &S,
    timeout_id: Uuid,
) -> Vec<crate::RecordedEvent> {
    let stream = TimeoutFired::stream(PROCESS, timeout_id).expect("timer stream id");
    store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read timer stream")
}

/// A record appends its events, applies its timeout changes and upserts the status row
/// together; a conflicting or refused record changes none of them.
pub async fn record_is_atomic_with_timeouts_and_status<S: ConformanceStore>(store: S) {
    let (a, schedule_a) = schedule("a", at(30), json!({ "k": "a" }));
    let (b, schedule_b) = schedule("b", at(60), json!(null));
    let first = running("1", 2, at(0))
        .correlation_id(Some(Uuid::new_v4()))
        .last_input("event OrderPlaced")
        .pending_commands(1)
        .next_timeout_at(Some(at(30)));
    let outcome = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_a, schedule_b],
        first.clone(),
    )
    .await
    .expect("first record");
    assert_eq!(
        (
            outcome.first_version,
            outcome.last_version,
            outcome.duplicate
        ),
        (Version::new(1), Version::new(2), false)
    );
    let timeouts = store
        .instance_timeouts(PROCESS, "1")
        .await
        .expect("timeouts");
    assert_eq!(
        keys_of(&timeouts),
        [("a", a, at(30)), ("b", b, at(60))],
        "both timeouts are live, by key"
    );
    assert_eq!(timeouts[0].payload, json!({ "k": "a" }));
    assert_eq!(
        store.instance(PROCESS, "1").await.expect("row"),
        Some(first.clone())
    );
    assert_eq!(store.next_due(PROCESS).await.expect("next"), Some(at(30)));
    assert_eq!(store.next_due(OTHER).await.expect("next"), None);
    assert!(store
        .instance_timeouts(OTHER, "1")
        .await
        .expect("timeouts")
        .is_empty());
    assert_eq!(store.instance(OTHER, "1").await.expect("row"), None);

    let changed = running("1", 4, at(5)).state(InstanceState::Completed);
    let conflict = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(1)),
        journal(),
        vec![TimeoutChange::CancelAll],
        changed.clone(),
    )
    .await;
    assert!(
        matches!(conflict, Err(Error::Conflict { actual, .. }) if actual == Version::new(2)),
        "a stale expected version conflicts: {conflict:?}"
    );
    let refused = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        vec![NewEvent::new("", 1, json!({}))],
        vec![TimeoutChange::CancelAll],
        changed.clone(),
    )
    .await;
    assert!(refused.is_err(), "a bad event type is refused: {refused:?}");
    let taken = TimeoutChange::Schedule {
        key: "z".to_owned(),
        timeout_id: b,
        due_at: at(99),
        payload: json!(null),
    };
    let clash = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        journal(),
        vec![taken],
        changed.clone(),
    )
    .await;
    assert!(
        clash.is_err(),
        "a timeout id live under another key is refused: {clash:?}"
    );
    assert_eq!(
        keys_of(
            &store
                .instance_timeouts(PROCESS, "1")
                .await
                .expect("timeouts")
        ),
        [("a", a, at(30)), ("b", b, at(60))],
        "a failed record leaves the timeouts"
    );
    assert_eq!(
        store.instance(PROCESS, "1").await.expect("row"),
        Some(first),
        "a failed record leaves the status row"
    );

    let (b2, reschedule_b) = schedule("b", at(90), json!(2));
    let outcome = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        journal(),
        vec![cancel("a", a), reschedule_b],
        changed.clone(),
    )
    .await
    .expect("second record");
    assert_eq!(outcome.last_version, Version::new(4));
    assert_eq!(
        keys_of(
            &store
                .instance_timeouts(PROCESS, "1")
                .await
                .expect("timeouts")
        ),
        [("b", b2, at(90))]
    );
    let row = store
        .instance(PROCESS, "1")
        .await
        .expect("row")
        .expect("kept");
    assert_eq!(row, changed);
    assert_eq!(row.finished_at, Some(at(5)));
    let journal = store
        .read_stream(&stream("Order-1"), Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(journal.len(), 4, "only the two accepted records landed");
}

/// A record whose events were recorded before (by event ids, or by command id) returns the
/// first outcome as a duplicate, whatever it expects, and changes no timeout or status row.
pub async fn a_duplicate_record_changes_nothing<S: ConformanceStore>(store: S) {
    let events = journal();
    let (a, schedule_a) = schedule("a", at(30), json!(1));
    let row = running("1", 2, at(0)).last_input("event OrderPlaced");
    let first = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        events.clone(),
        vec![schedule_a],
        row.clone(),
    )
    .await
    .expect("first record");

    let (_, schedule_c) = schedule("c", at(10), json!(3));
    let again = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        events,
        vec![cancel("a", a), schedule_c],
        running("1", 9, at(7)).state(InstanceState::Failed),
    )
    .await
    .expect("a repeated record is no error");
    assert!(again.duplicate, "the second record is a duplicate");
    assert_eq!(
        (again.first_version, again.last_version, again.position),
        (first.first_version, first.last_version, first.position)
    );

    let command_id = CommandId::new();
    let by_command = |n: u64| {
        vec![NewEvent::new("ProcessInputReceived", 1, json!({ "n": n }))
            .with_metadata(Metadata::new(EventId::new()).with_command_id(command_id))]
    };
    let (d, schedule_d) = schedule("d", at(40), json!(4));
    let landed = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        by_command(1),
        vec![schedule_d],
        running("1", 3, at(1)),
    )
    .await
    .expect("record with a command id");
    let (_, schedule_e) = schedule("e", at(50), json!(5));
    let repeated = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(3)),
        by_command(2),
        vec![schedule_e, TimeoutChange::CancelAll],
        running("1", 4, at(2)).state(InstanceState::Completed),
    )
    .await
    .expect("a repeated command id is no error");
    assert!(repeated.duplicate);
    assert_eq!(repeated.position, landed.position);

    assert_eq!(
        keys_of(
            &store
                .instance_timeouts(PROCESS, "1")
                .await
                .expect("timeouts")
        ),
        [("a", a, at(30)), ("d", d, at(40))],
        "duplicates changed no timeout"
    );
    assert_eq!(
        store.instance(PROCESS, "1").await.expect("row"),
        Some(running("1", 3, at(1))),
        "duplicates changed no status row"
    );
    let journal = store
        .read_stream(&stream("Order-1"), Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(journal.len(), 3);
}

/// Timeouts fire when due at the `now` given (not the store's clock), earliest first, up to
/// the limit; each fires once, appending its `ProcessTimeoutFired` event to its own stream
/// with the timeout id as the event id.
pub async fn timeouts_fire_once_when_due<S: ConformanceStore>(store: S) {
    let (a, schedule_a) = schedule("a", at(10), json!({ "reason": "shipping" }));
    let (b, schedule_b) = schedule("b", at(20), json!(null));
    let (c, schedule_c) = schedule("c", at(30), json!(null));
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_c, schedule_a],
        running("1", 2, at(0)),
    )
    .await
    .expect("record 1");
    record(
        &store,
        PROCESS,
        "2",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_b],
        running("2", 2, at(0)),
    )
    .await
    .expect("record 2");
    let (other, schedule_other) = schedule("a", at(1), json!(null));
    record(
        &store,
        OTHER,
        "1",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_other],
        running("1", 2, at(0)),
    )
    .await
    .expect("record other");

    assert_eq!(
        store.fire_due(PROCESS, at(9), 10).await.expect("fire"),
        [],
        "nothing is due yet (the store's own clock is not asked)"
    );
    let fired = store.fire_due(PROCESS, at(20), 1).await.expect("fire");
    assert_eq!(ids(&fired), [a], "the earliest first, up to the limit");
    assert_eq!(
        (
            fired[0].instance.as_str(),
            fired[0].key.as_str(),
            fired[0].due_at
        ),
        ("1", "a", at(10))
    );
    let events = timer_stream(&store, a).await;
    assert_eq!(events.len(), 1, "one fired event");
    let event = &events[0];
    assert_eq!(event.event_type, TIMEOUT_FIRED);
    assert_eq!(event.metadata.event_id, EventId::from_uuid(a));
    assert_eq!(event.position, fired[0].position);
    let payload: TimeoutFired = serde_json::from_value(event.payload.clone()).expect("decode");
    assert_eq!(
        payload,
        TimeoutFired {
            instance: "1".to_owned(),
            key: "a".to_owned(),
            timeout_id: a,
            due_at: at(10),
            payload: json!({ "reason": "shipping" }),
        }
    );

    let fired = store.fire_due(PROCESS, at(20), 10).await.expect("fire");
    assert_eq!(ids(&fired), [b], "c is not due");
    assert_eq!(store.fire_due(PROCESS, at(20), 10).await.expect("fire"), []);
    assert_eq!(timer_stream(&store, a).await.len(), 1, "a fired once");
    assert_eq!(store.next_due(PROCESS).await.expect("next"), Some(at(30)));
    assert_eq!(
        keys_of(
            &store
                .instance_timeouts(PROCESS, "1")
                .await
                .expect("timeouts")
        ),
        [("c", c, at(30))]
    );
    assert!(store
        .instance_timeouts(PROCESS, "2")
        .await
        .expect("timeouts")
        .is_empty());
    assert_eq!(
        keys_of(&store.instance_timeouts(OTHER, "1").await.expect("timeouts")),
        [("a", other, at(1))],
        "another process's timeouts are not fired"
    );
    assert_eq!(
        ids(&store.fire_due(PROCESS, at(99), 10).await.expect("fire")),
        [c]
    );
    assert_eq!(store.next_due(PROCESS).await.expect("next"), None);
}

fn ids(fired: &[FiredTimeout]) -> Vec<Uuid> {
    fired.iter().map(|f| f.timeout_id).collect()
}

/// Eight firers racing over the same due timeouts fire each exactly once between them.
pub async fn racing_firers_fire_each_timeout_once<S: ConformanceStore>(store: S) {
    let mut scheduled = Vec::new();
    for instance in 0..10 {
        let changes: Vec<TimeoutChange> = (0..4)
            .map(|k| {
                let (id, change) = schedule(&format!("k{k}"), at(instance * 4 + k), json!(k));
                scheduled.push(id);
                change
            })
            .collect();
        let instance = format!("{instance}");
        record(
            &store,
            PROCESS,
            &instance,
            ExpectedVersion::NoStream,
            journal(),
            changes,
            running(&instance, 2, at(0)),
        )
        .await
        .expect("record");
    }
    let firers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut fired = Vec::new();
                loop {
                    let batch = store.fire_due(PROCESS, at(100), 3).await.expect("fire");
                    if batch.is_empty() {
                        return fired;
                    }
                    fired.extend(batch);
                }
            })
        })
        .collect();
    let mut times: HashMap<Uuid, usize> = HashMap::new();
    for firer in firers {
        for fired in firer.await.expect("firer") {
            *times.entry(fired.timeout_id).or_default() += 1;
        }
    }
    // A firer that found every due row locked by others stops early; the others went on, so
    // nothing is left due once all are done.
    assert_eq!(
        store.fire_due(PROCESS, at(100), 100).await.expect("fire"),
        []
    );
    assert_eq!(store.next_due(PROCESS).await.expect("next"), None);
    assert_eq!(times.len(), scheduled.len(), "every timeout fired");
    assert!(times.values().all(|&n| n == 1), "none twice: {times:?}");
    for id in scheduled {
        assert_eq!(
            timer_stream(&store, id).await.len(),
            1,
            "one event for {id}"
        );
    }
}

/// A cancelled timeout never fires; a cancel naming a replaced id removes nothing; cancelling
/// all of an instance's timeouts leaves other instances' alone.
pub async fn a_cancelled_timeout_never_fires<S: ConformanceStore>(store: S) {
    let (a, schedule_a) = schedule("a", at(10), json!(null));
    let (b, schedule_b) = schedule("b", at(10), json!(null));
    let (c, schedule_c) = schedule("c", at(10), json!(null));
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_a, schedule_b, schedule_c],
        running("1", 2, at(0)),
    )
    .await
    .expect("schedule");
    let (other, schedule_other) = schedule("a", at(10), json!(null));
    record(
        &store,
        PROCESS,
        "2",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_other],
        running("2", 2, at(0)),
    )
    .await
    .expect("schedule other instance");
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        journal(),
        vec![cancel("a", a), cancel("b", Uuid::new_v4())],
        running("1", 4, at(1)),
    )
    .await
    .expect("cancel");
    assert_eq!(
        keys_of(
            &store
                .instance_timeouts(PROCESS, "1")
                .await
                .expect("timeouts")
        ),
        [("b", b, at(10)), ("c", c, at(10))],
        "a cancel with another timeout's id removes nothing"
    );
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(4)),
        journal(),
        vec![TimeoutChange::CancelAll],
        running("1", 6, at(2)).state(InstanceState::Completed),
    )
    .await
    .expect("cancel all");
    assert!(store
        .instance_timeouts(PROCESS, "1")
        .await
        .expect("timeouts")
        .is_empty());
    let fired = store.fire_due(PROCESS, at(1000), 10).await.expect("fire");
    assert_eq!(
        ids(&fired),
        [other],
        "only the other instance's timeout fires"
    );
    for id in [a, b, c] {
        assert!(
            timer_stream(&store, id).await.is_empty(),
            "{id} never fired"
        );
    }
}

/// Scheduling a key again replaces its timeout: the old one never fires, the new one fires at
/// its own time.
pub async fn rescheduling_a_key_replaces_its_timeout<S: ConformanceStore>(store: S) {
    let (first, schedule_first) = schedule("shipping", at(10), json!(1));
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::NoStream,
        journal(),
        vec![schedule_first],
        running("1", 2, at(0)),
    )
    .await
    .expect("schedule");
    let (second, schedule_second) = schedule("shipping", at(50), json!(2));
    record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        journal(),
        vec![schedule_second],
        running("1", 4, at(1)),
    )
    .await
    .expect("reschedule");
    let timeouts = store
        .instance_timeouts(PROCESS, "1")
        .await
        .expect("timeouts");
    assert_eq!(keys_of(&timeouts), [("shipping", second, at(50))]);
    assert_eq!(timeouts[0].payload, json!(2));
    assert_eq!(store.next_due(PROCESS).await.expect("next"), Some(at(50)));
    assert_eq!(store.fire_due(PROCESS, at(20), 10).await.expect("fire"), []);
    assert_eq!(
        ids(&store.fire_due(PROCESS, at(50), 10).await.expect("fire")),
        [second]
    );
    assert!(timer_stream(&store, first).await.is_empty());
}

/// Status rows are counted by state, listed by state in pages ordered by instance id, and a
/// running instance is stuck once the clock passed `stuck_after` without progress and no
/// timeout is due later.
pub async fn instances_are_listed_by_state_and_stuck<S: ConformanceStore>(store: S) {
    let rows = [
        running("i01", 2, at(0)),
        running("i02", 2, at(0)).state(InstanceState::Completed),
        running("i03", 2, at(0)).next_timeout_at(Some(at(500))),
        running("i04", 2, at(100)),
        running("i05", 2, at(0)).state(InstanceState::Failed),
        running("i06", 2, at(0)).state(InstanceState::Completed),
        running("i07", 2, at(0)).next_timeout_at(Some(at(50))),
    ];
    for row in &rows {
        record(
            &store,
            PROCESS,
            &row.instance,
            ExpectedVersion::NoStream,
            journal(),
            vec![],
            row.clone(),
        )
        .await
        .expect("record");
    }
    record(
        &store,
        OTHER,
        "i01",
        ExpectedVersion::NoStream,
        journal(),
        vec![],
        running("i01", 2, at(0)).state(InstanceState::Failed),
    )
    .await
    .expect("record other");

    let stuck_after = Duration::from_secs(60);
    let count = |now| {
        let store = store.clone();
        async move {
            store
                .instance_counts(PROCESS, now, stuck_after)
                .await
                .expect("counts")
        }
    };
    assert_eq!(count(at(30)).await, InstanceCounts::new(4, 2, 1, 0));
    assert_eq!(
        count(at(120)).await,
        InstanceCounts::new(4, 2, 1, 2),
        "i01 and i07 (its timeout overdue) are stuck; i03 waits for a timeout, i04 progressed"
    );
    assert_eq!(count(at(1000)).await, InstanceCounts::new(4, 2, 1, 4));
    assert_eq!(
        store
            .instance_counts(PROCESS, at(1000), Duration::MAX)
            .await
            .expect("counts with a stuck_after past the calendar"),
        InstanceCounts::new(4, 2, 1, 0),
        "a stuck_after reaching before the calendar's start makes nothing stuck"
    );
    assert_eq!(
        store
            .instance_counts(OTHER, at(0), stuck_after)
            .await
            .expect("counts"),
        InstanceCounts::new(0, 0, 1, 0)
    );

    let list = |query: InstanceQuery| {
        let store = store.clone();
        async move {
            store
                .instances(PROCESS, &query)
                .await
                .expect("instances")
                .into_iter()
                .map(|row| row.instance)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(InstanceQuery::all().limit(3)).await,
        ["i01", "i02", "i03"]
    );
    assert_eq!(
        list(InstanceQuery::all().after("i03").limit(3)).await,
        ["i04", "i05", "i06"]
    );
    assert_eq!(
        list(InstanceQuery::all().after("i06").limit(3)).await,
        ["i07"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Running)).await,
        ["i01", "i03", "i04", "i07"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Completed).after("i02")).await,
        ["i06"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Failed)).await,
        ["i05"]
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(30), stuck_after)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(120), stuck_after)).await,
        ["i01", "i07"]
    );
    assert_eq!(
        list(
            InstanceQuery::stuck(at(1000), stuck_after)
                .after("i01")
                .limit(2)
        )
        .await,
        ["i03", "i04"]
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(1000), Duration::MAX)).await,
        Vec::<String>::new()
    );
    let rows_back = store
        .instances(PROCESS, &InstanceQuery::all())
        .await
        .expect("instances");
    assert_eq!(rows_back, rows, "rows round trip field by field");
}
