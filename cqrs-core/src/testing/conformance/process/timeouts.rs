//! Timeouts fire once when due, however many firers race, and cancel and reschedule by key.

use super::*;

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
