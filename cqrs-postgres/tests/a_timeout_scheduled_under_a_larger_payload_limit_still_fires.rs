//! A timeout's payload is checked when it is scheduled. Its fired event was checked again
//! against the limit of the store that fires it, in the one transaction that fires a batch: a
//! limit lowered by a later deploy (or a payload near the limit, which the fired event wraps
//! with its instance, key and ids) refused it, the batch rolled back, and the pump tried the
//! same batch again forever: no timeout of the process fired again.

mod support;

use cqrs_core::process::{InstanceRow, ProcessRecord, ProcessStore, TimeoutChange};
use cqrs_core::testing::TestClock;
use cqrs_core::{ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const PROCESS: &str = "Order";

fn at(secs: i64) -> OffsetDateTime {
    TestClock::START + time::Duration::seconds(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_scheduled_under_a_larger_payload_limit_still_fires() {
    let store = support::store_with(2).await;
    let (large, small) = (Uuid::new_v4(), Uuid::new_v4());
    let record = ProcessRecord::new(
        StreamId::new(format!("{PROCESS}-1")).expect("stream id"),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
        vec![
            TimeoutChange::Schedule {
                key: "large".to_owned(),
                timeout_id: large,
                due_at: at(1),
                payload: json!({ "note": "x".repeat(200_000) }),
            },
            TimeoutChange::Schedule {
                key: "small".to_owned(),
                timeout_id: small,
                due_at: at(2),
                payload: json!({ "note": "y" }),
            },
        ],
        InstanceRow::new("1", Version::new(1), at(0)),
    );
    store.record(PROCESS, record).await.expect("scheduled");

    // The next deploy lowers the limit to 100 KB.
    let lowered = PgEventStore::new(store.pool().clone())
        .with_schema(store.schema().clone())
        .with_max_payload_bytes(100_000);
    let fired = lowered
        .fire_due(PROCESS, at(10), 100)
        .await
        .expect("both fire");
    let ids: Vec<Uuid> = fired.iter().map(|f| f.timeout_id).collect();
    assert_eq!(ids, [large, small], "each fired, in due order");
    assert_eq!(lowered.next_due(PROCESS).await.expect("next due"), None);
}
