//! Test support for store implementations and for users' own tests (feature `testing`).
//!
//! [`conformance`] holds the suite every [`EventStore`](crate::EventStore) must pass;
//! [`store_conformance_tests!`](crate::store_conformance_tests) turns it into one `#[tokio::test]`
//! per case for a store factory. [`Tally`] is a small aggregate the suite uses, handy for
//! examples of your own. [`TestClock`] is a clock a test sets and advances, and [`status`] a
//! projection's status as a worker reports it.

mod clock;
pub mod conformance;
mod status;
mod tally;

#[doc(inline)]
pub use clock::TestClock;
#[doc(inline)]
pub use status::status;
#[doc(inline)]
pub use tally::{Tally, TallyCommand, TallyError, TallyEvent};

/// Generates one `#[tokio::test]` per conformance case for a store.
///
/// The argument is a closure returning a future of a fresh, empty store (each case gets its
/// own). The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features.
///
/// ```text
/// cqrs_core::store_conformance_tests!(|| async { my_store().await });
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            appends_and_reads_back,
            an_absent_stream_reads_as_empty,
            stream_reads_are_batched,
            replays_fold_what_a_read_returns,
            expected_versions_are_enforced,
            racing_writers_get_exactly_one_winner_per_version,
            appends_are_all_or_nothing,
            a_repeated_command_id_returns_the_first_outcome,
            repeated_event_ids_return_the_first_outcome,
            large_batches_to_new_streams_keep_every_promise,
            the_feed_is_totally_ordered_and_batched,
            the_feed_filters_by_category_and_event_type,
            the_feed_filters_by_stream_partition,
            concurrent_writers_never_skip_a_feed_event,
            snapshots_keep_the_newest,
            a_snapshot_no_reader_could_decode_is_refused_and_the_older_one_stays,
            a_snapshot_and_the_events_after_it_are_read_together,
            checkpoints_round_trip,
            a_checkpoint_never_moves_back,
            bad_input_is_refused_with_typed_errors,
            the_repository_runs_commands_with_snapshots_and_upcasters,
            a_load_behind_a_snapshot_folds_every_event_after_it,
            a_stale_or_broken_snapshot_is_ignored,
            racing_commands_are_retried_until_each_lands_once,
            claimed_new_streams_land_once_whether_or_not_they_were_new,
            leases_admit_one_owner_at_a_time,
            lease_epochs_grow_with_each_new_holder,
            a_stale_epoch_cannot_save,
            a_reset_fences_the_holder_and_drops_the_dead_letters,
            a_fenced_off_worker_cannot_park,
            leases_under_a_prefix_are_listed_while_held,
            a_lease_ttl_out_of_range_is_refused_with_a_typed_error,
            dead_letters_round_trip,
            dead_letters_come_in_pages_and_keys_once,
            dead_letter_requests_are_kept_until_carried_out,
            bus_letters_round_trip_whole_once_per_message,
            a_different_message_parked_at_a_letters_place_is_refused,
            a_message_with_a_long_key_is_parked_and_found_by_it,
            bus_letter_keys_requests_and_takes,
            bus_letter_requests_are_read_by_partition,
            record_is_atomic_with_timeouts_and_status,
            a_duplicate_record_changes_nothing,
            a_record_whose_time_has_no_utc_form_is_refused_and_writes_nothing,
            timeouts_fire_once_when_due,
            racing_firers_fire_each_timeout_once,
            a_cancelled_timeout_never_fires,
            rescheduling_a_key_replaces_its_timeout,
            instances_are_listed_by_state_and_stuck,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let make = $make;
                let store = make().await;
                $crate::testing::conformance::$case(store).await;
            }
        )*
    };
}
