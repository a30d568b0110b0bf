//! `cqrs processes list --stuck` on PostgreSQL: of four instances recorded as a process
//! manager records them (journal, status row and timeouts in one write), only the running one
//! that has not progressed for `--stuck-after` and waits for no timeout is listed; one with a
//! timeout ahead, a completed one and a fresh one are not.

mod support;

use cqrs_admin::inspect::InstanceView;
use cqrs_core::process::{InstanceRow, InstanceState, ProcessRecord, ProcessStore, TimeoutChange};
use cqrs_core::{ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::testing::fresh_store;
use cqrs_postgres::PgEventStore;
use serde_json::json;
use support::cqrs;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const PROCESS: &str = "order_saga";

async fn record(store: &PgEventStore, row: InstanceRow, timeouts: Vec<TimeoutChange>) {
    let stream = StreamId::new(format!("{PROCESS}-{}", row.instance)).expect("a stream id");
    let input = NewEvent::new("InputRecorded", 1, json!({ "input": row.last_input }));
    store
        .record(
            PROCESS,
            ProcessRecord::new(stream, ExpectedVersion::Any, vec![input], timeouts, row),
        )
        .await
        .expect("the record is written");
}

fn listed(run: &support::Run) -> Vec<String> {
    let rows: Vec<InstanceView> = run.json();
    rows.into_iter().map(|r| r.instance).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_running_instance_without_progress_or_a_timeout_ahead_is_stuck() {
    let store = fresh_store().await.expect("a fresh schema");
    let now = OffsetDateTime::now_utc();
    let hour_ago = now - Duration::hours(1);
    let version = Version::new(1);

    // Waiting for a reply that never came: stuck.
    let waiting = InstanceRow::new("o-1", version, hour_ago)
        .last_input("event OrderPlaced")
        .pending_commands(1);
    record(&store, waiting, Vec::new()).await;
    // Quiet as long, but a timeout will wake it: not stuck.
    let due = now + Duration::hours(1);
    let sleeping = InstanceRow::new("o-2", version, hour_ago)
        .last_input("event OrderPlaced")
        .next_timeout_at(Some(due));
    let timeout = TimeoutChange::Schedule {
        key: "shipping".to_owned(),
        timeout_id: Uuid::new_v4(),
        due_at: due,
        payload: json!(null),
    };
    record(&store, sleeping, vec![timeout]).await;
    // Done: not stuck.
    let done = InstanceRow::new("o-3", version, hour_ago)
        .last_input("event OrderShipped")
        .state(InstanceState::Completed);
    record(&store, done, Vec::new()).await;
    // Just progressed: not stuck (yet).
    let fresh = InstanceRow::new("o-4", version, now)
        .last_input("event OrderPlaced")
        .pending_commands(1);
    record(&store, fresh, Vec::new()).await;

    let all = cqrs(&store, &["processes", "list", PROCESS, "--json"]).await;
    assert_eq!(all.code, 0, "{all:?}");
    assert_eq!(listed(&all), ["o-1", "o-2", "o-3", "o-4"]);

    let stuck = cqrs(&store, &["processes", "list", PROCESS, "--stuck", "--json"]).await;
    assert_eq!(stuck.code, 0, "{stuck:?}");
    assert_eq!(listed(&stuck), ["o-1"], "{}", stuck.stdout);

    // With a threshold longer than the hour, nothing is stuck.
    let patient = cqrs(
        &store,
        &[
            "processes",
            "list",
            PROCESS,
            "--stuck",
            "--stuck-after",
            "7200",
            "--json",
        ],
    )
    .await;
    assert_eq!(patient.code, 0, "{patient:?}");
    assert!(listed(&patient).is_empty(), "{}", patient.stdout);

    // The table says the same, one row.
    let table = cqrs(&store, &["processes", "list", PROCESS, "--stuck"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let rows: Vec<&str> = table.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", table.stdout);
    assert!(rows[0].contains("o-1"), "{}", table.stdout);
    println!("{}", table.stdout);
}
