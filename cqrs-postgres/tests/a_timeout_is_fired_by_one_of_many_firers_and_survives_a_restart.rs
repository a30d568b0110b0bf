//! Timeouts are rows, not timers in a process: scheduled through one store, they are still due
//! after that store (and its pool) is gone, and eight stores on eight pools racing to fire them
//! fire each exactly once.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_core::process::{
    InstanceRow, ProcessRecord, ProcessStore, TimeoutChange, TimeoutFired, TIMEOUT_FIRED,
};
use cqrs_core::testing::TestClock;
use cqrs_core::{EventId, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Barrier;
use uuid::Uuid;

const PROCESS: &str = "Order";
const INSTANCES: i64 = 6;
const KEYS: i64 = 5;
const FIRERS: usize = 8;

fn at(secs: i64) -> OffsetDateTime {
    TestClock::START + time::Duration::seconds(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_is_fired_by_one_of_many_firers_and_survives_a_restart() {
    let store = support::store_with(4).await;
    let schema = store.schema().clone();
    let mut scheduled = Vec::new();
    for instance in 0..INSTANCES {
        let changes = (0..KEYS)
            .map(|k| {
                let timeout_id = Uuid::new_v4();
                scheduled.push(timeout_id);
                TimeoutChange::Schedule {
                    key: format!("k{k}"),
                    timeout_id,
                    due_at: at(instance * KEYS + k),
                    payload: json!({ "instance": instance, "k": k }),
                }
            })
            .collect();
        let id = instance.to_string();
        let record = ProcessRecord::new(
            StreamId::new(format!("{PROCESS}-{id}")).expect("stream id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
            changes,
            InstanceRow::new(id, Version::new(1), at(0)),
        );
        store.record(PROCESS, record).await.expect("record");
    }
    let later = Uuid::new_v4();
    let record = ProcessRecord::new(
        StreamId::new(format!("{PROCESS}-later")).expect("stream id"),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
        vec![TimeoutChange::Schedule {
            key: "k".to_owned(),
            timeout_id: later,
            due_at: at(10_000),
            payload: json!(null),
        }],
        InstanceRow::new("later", Version::new(1), at(0)),
    );
    store.record(PROCESS, record).await.expect("record later");

    // The process that scheduled them goes away: its store and its connections.
    store.pool().close().await;
    drop(store);

    let mut stores = Vec::new();
    for _ in 0..FIRERS {
        let store = PgEventStore::new(support::pool(2).await).with_schema(schema.clone());
        assert_eq!(
            store.migrate().await.expect("migrate"),
            Vec::<i32>::new(),
            "the schema is already current"
        );
        stores.push(store);
    }
    let barrier = Arc::new(Barrier::new(FIRERS));
    let firers: Vec<_> = stores
        .iter()
        .cloned()
        .map(|store| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut fired = Vec::new();
                loop {
                    let batch = store.fire_due(PROCESS, at(1000), 2).await.expect("fire");
                    if batch.is_empty() {
                        return fired;
                    }
                    fired.extend(batch);
                }
            })
        })
        .collect();
    let mut times: HashMap<Uuid, usize> = HashMap::new();
    let mut firers_that_fired = 0;
    for firer in firers {
        let fired = firer.await.expect("firer");
        firers_that_fired += usize::from(!fired.is_empty());
        for timeout in fired {
            *times.entry(timeout.timeout_id).or_default() += 1;
        }
    }
    println!("{firers_that_fired} of {FIRERS} firers fired something");
    let store = &stores[0];
    assert_eq!(
        store.fire_due(PROCESS, at(1000), 100).await.expect("fire"),
        [],
        "nothing due is left"
    );
    assert_eq!(times.len(), scheduled.len(), "every due timeout fired");
    assert!(
        times.values().all(|&n| n == 1),
        "none fired twice: {times:?}"
    );
    for timeout_id in &scheduled {
        let stream = TimeoutFired::stream(PROCESS, *timeout_id).expect("timer stream");
        let events = store
            .read_stream(&stream, Version::new(1), 10)
            .await
            .expect("read");
        assert_eq!(events.len(), 1, "one fired event for {timeout_id}");
        assert_eq!(events[0].event_type, TIMEOUT_FIRED);
        assert_eq!(events[0].metadata.event_id, EventId::from_uuid(*timeout_id));
    }
    assert_eq!(
        store.next_due(PROCESS).await.expect("next"),
        Some(at(10_000)),
        "the timeout not yet due stays"
    );
    let left = store
        .instance_timeouts(PROCESS, "later")
        .await
        .expect("left");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].timeout_id, later);
}
