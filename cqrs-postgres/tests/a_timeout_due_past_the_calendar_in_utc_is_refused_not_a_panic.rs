//! A process manager may schedule a timeout at a time it read from an event (`Action::at`):
//! data from outside. `9999-12-31 23:30 -01:00` is a valid time, but in UTC, as PostgreSQL
//! stores it, it is past year 9999, which `time` cannot hold: encoding it panicked the task
//! recording the input. It is refused with a typed error, and nothing is written.

mod support;

use cqrs_core::process::{InstanceRow, ProcessRecord, ProcessStore, TimeoutChange};
use cqrs_core::testing::TestClock;
use cqrs_core::{Error, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

#[tokio::test]
async fn a_timeout_due_past_the_calendar_in_utc_is_refused_not_a_panic() {
    let store = support::store().await;
    let stream = StreamId::new("Order-1").expect("stream id");
    let last_local_minute =
        OffsetDateTime::parse("9999-12-31T23:30:00-01:00", &Rfc3339).expect("a valid time");
    let record = ProcessRecord::new(
        stream.clone(),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("ProcessInputReceived", 1, json!({}))],
        vec![TimeoutChange::Schedule {
            key: "deliver".into(),
            timeout_id: Uuid::new_v4(),
            due_at: last_local_minute,
            payload: json!({}),
        }],
        InstanceRow::new("1", Version::new(1), TestClock::START)
            .next_timeout_at(Some(last_local_minute)),
    );

    let recorded = {
        let store = store.clone();
        tokio::spawn(async move { store.record("Order", record).await })
            .await
            .expect("recording does not panic")
    };

    let error = recorded.expect_err("the time is refused");
    assert!(matches!(error, Error::Process { .. }), "{error:?}");
    assert!(error.to_string().contains("9999"), "{error}");
    let written = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read");
    assert!(written.is_empty(), "nothing is written: {written:?}");
}
