//! The conformance suite: what every event store must do, as functions over a fresh store.
//!
//! Each case panics on the first broken promise (they are test assertions). Run them all with
//! [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! One file per store role: `streams` (append and read), `feed`, `checkpoints` (and
//! snapshots), `repository` (the command pipeline on the store), `leases`, `dead_letters`, `bus_letters` (a bus consumer's parked messages) and
//! `process` (process managers' timeouts and status rows).
//! This file holds the bound every store meets and the helpers the cases share.

mod bus_letters;
mod checkpoints;
mod dead_letters;
mod feed;
mod leases;
mod process;
mod repository;
mod streams;

pub use bus_letters::{
    a_different_message_parked_at_a_letters_place_is_refused,
    a_message_with_a_long_key_is_parked_and_found_by_it, bus_letter_keys_requests_and_takes,
    bus_letter_requests_are_read_by_partition, bus_letters_round_trip_whole_once_per_message,
};
pub use checkpoints::{
    a_checkpoint_never_moves_back, a_snapshot_and_the_events_after_it_are_read_together,
    a_snapshot_no_reader_could_decode_is_refused_and_the_older_one_stays, checkpoints_round_trip,
    snapshots_keep_the_newest,
};
pub use dead_letters::{
    dead_letter_requests_are_kept_until_carried_out, dead_letters_come_in_pages_and_keys_once,
    dead_letters_round_trip,
};
pub use feed::{
    concurrent_writers_never_skip_a_feed_event, the_feed_filters_by_category_and_event_type,
    the_feed_filters_by_stream_partition, the_feed_is_totally_ordered_and_batched,
};
pub use leases::{
    a_fenced_off_worker_cannot_park, a_lease_ttl_out_of_range_is_refused_with_a_typed_error,
    a_reset_fences_the_holder_and_drops_the_dead_letters, a_stale_epoch_cannot_save,
    lease_epochs_grow_with_each_new_holder, leases_admit_one_owner_at_a_time,
    leases_under_a_prefix_are_listed_while_held,
};
pub use process::{
    a_cancelled_timeout_never_fires, a_duplicate_record_changes_nothing,
    a_record_whose_time_has_no_utc_form_is_refused_and_writes_nothing,
    instances_are_listed_by_state_and_stuck, racing_firers_fire_each_timeout_once,
    record_is_atomic_with_timeouts_and_status, rescheduling_a_key_replaces_its_timeout,
    timeouts_fire_once_when_due,
};
pub use repository::{
    a_load_behind_a_snapshot_folds_every_event_after_it, a_stale_or_broken_snapshot_is_ignored,
    claimed_new_streams_land_once_whether_or_not_they_were_new,
    racing_commands_are_retried_until_each_lands_once,
    the_repository_runs_commands_with_snapshots_and_upcasters,
};
pub use streams::{
    a_repeated_command_id_returns_the_first_outcome, an_absent_stream_reads_as_empty,
    appends_and_reads_back, appends_are_all_or_nothing, bad_input_is_refused_with_typed_errors,
    expected_versions_are_enforced, large_batches_to_new_streams_keep_every_promise,
    racing_writers_get_exactly_one_winner_per_version, repeated_event_ids_return_the_first_outcome,
    replays_fold_what_a_read_returns, stream_reads_are_batched,
};

use std::time::Duration;

use serde_json::json;

use crate::bus::BusDeadLetterStore;
use crate::process::ProcessStore;
use crate::projection::{DeadLetterStore, LeaseStore};
use crate::{
    CheckpointStore, EventFilter, EventStore, NewEvent, Position, RecordedEvent, SnapshotStore,
    StreamId,
};

/// What the suite needs of a store.
pub trait ConformanceStore:
    EventStore
    + SnapshotStore
    + CheckpointStore
    + DeadLetterStore
    + BusDeadLetterStore
    + LeaseStore
    + ProcessStore
    + Clone
    + 'static
{
}

impl<T> ConformanceStore for T where
    T: EventStore
        + SnapshotStore
        + CheckpointStore
        + DeadLetterStore
        + BusDeadLetterStore
        + LeaseStore
        + ProcessStore
        + Clone
        + 'static
{
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("test stream ids are valid")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Numbered", 1, json!({ "n": n }))
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

fn numbers(events: &[RecordedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.payload["n"].as_u64().expect("payload has n"))
        .collect()
}

/// Follows the feed from the start until `expected` events came (or a deadline passed), then
/// reads on until the feed is drained. A store's feed may show a committed event a moment late
/// (the PostgreSQL feed waits for older open transactions, even other tests'), never early.
async fn read_whole_feed<S: ConformanceStore>(
    store: &S,
    filter: &EventFilter,
    expected: usize,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut after = Position::START;
    let mut all = Vec::new();
    loop {
        let batch = store.read_all(after, 7, filter).await.expect("feed read");
        assert!(batch.next >= after, "the feed never moves backwards");
        let drained = batch.events.is_empty();
        after = batch.next;
        all.extend(batch.events);
        if drained {
            if all.len() >= expected || tokio::time::Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
