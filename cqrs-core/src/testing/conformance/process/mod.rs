//! Process managers' store: a record is atomic with its timeouts and status row, timeouts
//! fire once when due (however many firers race), cancel and reschedule by key, and status rows
//! are listed and counted by state. One file per concern: `records`, `timeouts`, `instances`;
//! this file holds what they share.

mod instances;
mod records;
mod timeouts;

pub use instances::instances_are_listed_by_state_and_stuck;
pub use records::{
    a_duplicate_record_changes_nothing,
    a_record_whose_time_has_no_utc_form_is_refused_and_writes_nothing,
    record_is_atomic_with_timeouts_and_status,
};
pub use timeouts::{
    a_cancelled_timeout_never_fires, racing_firers_fire_each_timeout_once,
    rescheduling_a_key_replaces_its_timeout, timeouts_fire_once_when_due,
};

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
