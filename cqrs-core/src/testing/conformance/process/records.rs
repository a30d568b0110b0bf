//! A record is atomic with its timeouts and status row, and a duplicate changes nothing.

use super::*;

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
    // Each event under the payload limit, the whole record over the append limit.
    let chunk = "z".repeat(crate::backend::DEFAULT_MAX_PAYLOAD_BYTES - 64);
    let count = crate::backend::DEFAULT_MAX_APPEND_BYTES / chunk.len() + 1;
    let too_large = record(
        &store,
        PROCESS,
        "1",
        ExpectedVersion::Exact(Version::new(2)),
        (0..count)
            .map(|n| NewEvent::new("Chunk", 1, json!({ "n": n, "data": chunk })))
            .collect(),
        vec![TimeoutChange::CancelAll],
        changed.clone(),
    )
    .await;
    assert!(
        matches!(too_large, Err(Error::AppendTooLarge { .. })),
        "a record over the append limit is refused as too large: {:?}",
        too_large.map(|o| o.last_version)
    );
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

/// A time a process holds may have no UTC form (`9999-12-31 23:30 -01:00`, read from an event
/// by `Action::at`): a record holding one is the process's error, and writes nothing, in every
/// store (PostgreSQL's encoder panicked on it; the in-memory store took it).
pub async fn a_record_whose_time_has_no_utc_form_is_refused_and_writes_nothing<
    S: ConformanceStore,
>(
    store: S,
) {
    let last_local = OffsetDateTime::new_in_offset(
        time::Date::from_calendar_date(9999, time::Month::December, 31).expect("a date"),
        time::Time::from_hms(23, 30, 0).expect("a time"),
        time::UtcOffset::from_hms(-1, 0, 0).expect("an offset"),
    );
    let (_, late) = schedule("late", last_local, json!(null));
    let refused = record(
        &store,
        PROCESS,
        "9",
        ExpectedVersion::NoStream,
        journal(),
        vec![late],
        running("9", 2, at(0)),
    )
    .await;
    assert!(
        matches!(refused, Err(crate::Error::Process { .. })),
        "{refused:?}"
    );
    let status_refused = record(
        &store,
        PROCESS,
        "9",
        ExpectedVersion::NoStream,
        journal(),
        Vec::new(),
        running("9", 2, at(0)).next_timeout_at(Some(last_local)),
    )
    .await;
    assert!(
        matches!(status_refused, Err(crate::Error::Process { .. })),
        "{status_refused:?}"
    );
    assert_eq!(store.instance(PROCESS, "9").await.expect("row"), None);
    assert!(store
        .instance_timeouts(PROCESS, "9")
        .await
        .expect("timeouts")
        .is_empty());
    let written = store
        .read_stream(&stream(&format!("{PROCESS}-9")), Version::new(1), 10)
        .await
        .expect("read");
    assert!(written.is_empty(), "{written:?}");
}
