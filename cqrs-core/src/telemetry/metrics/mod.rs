//! The metrics the framework records through the [`metrics`](https://docs.rs/metrics) facade,
//! and the gauges a service refreshes from status data.
//!
//! Counters and histograms are recorded where things happen (commands, retries, group
//! commits, applied events). Gauges that describe state (lag, breaker, dead letters, process
//! instances) are set from status values by [`record_projection`] and [`record_processes`]: a
//! service calls them before it renders a scrape, or on a timer; cqrs-postgres adds
//! `record_feed_horizon(&store.feed_horizon().await?)` for the feed horizon's gauges. Without
//! an installed recorder every call is a no-op.
//!
//! Each name below is a constant, documented with its type and labels. Label values are few and
//! bounded: an aggregate or process type, a projection's name, an outcome, a state; never a
//! stream, instance or command id.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | [`COMMANDS`] | counter | aggregate, outcome | commands run by a `Repository`, by outcome |
//! | [`COMMAND_DURATION`] | histogram | aggregate, outcome | a command's time, load to append and retries |
//! | [`COMMAND_CONFLICTS`] | counter | aggregate | appends refused for a stale version |
//! | [`COMMAND_RETRIES`] | counter | aggregate | attempts made again after a conflict |
//! | [`GROUP_COMMIT_APPENDS`] | histogram | | appends written per group (cqrs-postgres) |
//! | [`GROUP_COMMIT_WAIT`] | histogram | | how long a group's oldest append queued |
//! | [`GROUP_COMMIT_LOADS`] | histogram | | stream loads read per grouped statement |
//! | [`FEED_HORIZON_OLDEST_TRANSACTION`] | gauge | | age of the open transaction holding the feed back |
//! | [`FEED_HORIZON_WAITING_EVENTS`] | gauge | | committed events readers cannot see yet |
//! | [`PROJECTION_EVENTS_APPLIED`] | counter | projection | events applied (rate: events per second) |
//! | [`PROJECTION_EVENTS_PARKED`] | counter | projection | events parked as dead letters |
//! | [`PROJECTION_LAG_EVENTS`] | gauge | projection | events in the feed after the checkpoint |
//! | [`PROJECTION_LAG_SECONDS`] | gauge | projection | age of the oldest event not yet applied |
//! | [`PROJECTION_APPLIED`] | gauge | projection | events applied since the worker started |
//! | [`PROJECTION_PARKED`] | gauge | projection | dead letters written since the worker started |
//! | [`PROJECTION_BREAKER`] | gauge | projection | 0 closed, 1 half-open, 2 open |
//! | [`PROJECTION_STATE`] | gauge | projection, state | 1 for the current state, 0 for the others |
//! | [`PROCESS_INPUTS`] | counter | process, kind | inputs recorded with their decision |
//! | [`PROCESS_COMMANDS`] | counter | process, outcome | commands dispatched, by outcome |
//! | [`PROCESS_TIMEOUTS_FIRED`] | counter | process | timeouts fired by the timer pump |
//! | [`PROCESS_TIMER_FAILURES`] | counter | process | firings of the timer pump that failed (retried) |
//! | [`PROCESS_INSTANCES`] | gauge | process, state | instances by state |
//! | [`GAUGES_REFRESHED`] | gauge | source | 1 when the last refresh of a source's gauges worked, 0 when it failed |
//!
//! A service installs a recorder once (for instance `metrics-exporter-prometheus`), calls
//! [`describe`] once, and refreshes the gauges before each scrape:
//!
//! ```
//! use cqrs_core::telemetry::metrics;
//! # fn statuses() -> Vec<cqrs_core::projection::ProjectionStatus> { Vec::new() }
//!
//! metrics::describe();
//! // Before rendering a scrape:
//! for status in statuses() {
//!     metrics::record_projection(&status);
//! }
//! ```

mod gauges;
pub(crate) mod record;

#[doc(inline)]
pub use gauges::{record_processes, record_projection, record_refresh};

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Counter: commands run by a [`Repository`](crate::Repository). Labels: `aggregate` (the
/// aggregate's `TYPE`), `outcome`: `accepted` (events appended), `unchanged` (the aggregate
/// decided no events), `duplicate` (the command id was handled before), `rejected` (the
/// aggregate's error), `conflict` (retries ran out), `error` (any other failure), `cancelled`
/// (its caller stopped waiting: its events may or may not have landed). An id that is not a
/// valid stream id is refused before the command runs and is not counted.
pub const COMMANDS: &str = "cqrs_commands_total";

/// Histogram, seconds: how long a command took, from its first load to its outcome (retries
/// and their backoff included). Labels: `aggregate`, `outcome` as in [`COMMANDS`].
pub const COMMAND_DURATION: &str = "cqrs_command_duration_seconds";

/// Counter: appends of a command refused because the stream moved (one per attempt that met
/// a conflict). Label: `aggregate`.
pub const COMMAND_CONFLICTS: &str = "cqrs_command_conflicts_total";

/// Counter: attempts a command made again after a conflict (conflicts that were retried;
/// [`COMMAND_CONFLICTS`] minus these ran out of retries or found the command already done).
/// Label: `aggregate`.
pub const COMMAND_RETRIES: &str = "cqrs_command_retries_total";

/// Histogram: how many appends one group-commit statement wrote, recorded once it is answered
/// (cqrs-postgres, with group commit on; a statement that timed out or failed records nothing,
/// one whose connection broke records what the lookup found it wrote, so the samples add up to
/// the appends written through the lanes). No labels.
pub const GROUP_COMMIT_APPENDS: &str = "cqrs_group_commit_appends";

/// Histogram, seconds: how long the oldest append of a group waited in its lane's queue
/// before the group's statement started (cqrs-postgres, with group commit on). No labels.
pub const GROUP_COMMIT_WAIT: &str = "cqrs_group_commit_wait_seconds";

/// Histogram: how many stream loads one grouped statement read, recorded once it is answered
/// (cqrs-postgres, with group commit's grouped loads on; a group that failed records nothing,
/// and its loads read alone). No labels.
pub const GROUP_COMMIT_LOADS: &str = "cqrs_group_commit_loads";

/// Gauge, seconds: how long the oldest open transaction holding the feed back has been open;
/// 0 when none is. Set by cqrs-postgres's `record_feed_horizon`. No labels.
pub const FEED_HORIZON_OLDEST_TRANSACTION: &str = "cqrs_feed_horizon_oldest_transaction_seconds";

/// Gauge: committed events feed readers cannot see yet because of the oldest open
/// transaction. Set by cqrs-postgres's `record_feed_horizon`. No labels.
pub const FEED_HORIZON_WAITING_EVENTS: &str = "cqrs_feed_horizon_waiting_events";

/// Counter: events a projection runner applied, counted when their batch settled (made
/// visible, checkpoint saved). Its rate is the events applied per second. Label: `projection`
/// (the projection's name; `process:{TYPE}` for a process manager).
pub const PROJECTION_EVENTS_APPLIED: &str = "cqrs_projection_events_applied_total";

/// Counter: events a projection runner parked as dead letters (poison, and the later events
/// of its key), counted when their batch settled. Label: `projection`.
pub const PROJECTION_EVENTS_PARKED: &str = "cqrs_projection_events_parked_total";

/// Gauge: events in the feed after the projection's checkpoint
/// ([`ProjectionStatus::lag_events`](crate::projection::ProjectionStatus::lag_events)).
/// Label: `projection`.
pub const PROJECTION_LAG_EVENTS: &str = "cqrs_projection_lag_events";

/// Gauge, seconds: the age of the oldest event the projection has not applied yet (now minus
/// the time it was recorded), 0 at the head. It grows while a stalled sink holds an event back.
/// From [`ProjectionStatus::oldest_unapplied_at`](crate::projection::ProjectionStatus::oldest_unapplied_at),
/// computed when [`record_projection`] is called. Label: `projection`.
pub const PROJECTION_LAG_SECONDS: &str = "cqrs_projection_lag_seconds";

/// Gauge: events applied since this worker started
/// ([`ProjectionStatus::applied`](crate::projection::ProjectionStatus::applied)). For a rate,
/// use the counter [`PROJECTION_EVENTS_APPLIED`]. Label: `projection`.
pub const PROJECTION_APPLIED: &str = "cqrs_projection_applied_since_start";

/// Gauge: events parked as dead letters since this worker started
/// ([`ProjectionStatus::parked`](crate::projection::ProjectionStatus::parked)). Label:
/// `projection`.
pub const PROJECTION_PARKED: &str = "cqrs_projection_parked_since_start";

/// Gauge: the circuit breaker in front of the projection's sink: 0 closed, 1 half-open,
/// 2 open. Label: `projection`.
pub const PROJECTION_BREAKER: &str = "cqrs_projection_breaker_state";

/// Gauge: the projection's state, one series per state, 1 for the current one and 0 for the
/// others. Labels: `projection`, `state`: `starting`, `standby`, `catching_up`, `running`,
/// `retrying`, `stopped`, `failed`.
pub const PROJECTION_STATE: &str = "cqrs_projection_state";

/// Counter: inputs a process manager recorded with its decision. Labels: `process` (the
/// process manager's `TYPE`), `kind`: `event`, `timeout`, `accepted`, `rejected` (the
/// outcome of a command it sent). Inputs skipped (seen before, stale) are not counted.
pub const PROCESS_INPUTS: &str = "cqrs_process_inputs_total";

/// Counter: commands a process manager dispatched. Labels: `process`, `outcome`: `accepted`,
/// `duplicate` (accepted before under the same command id), `forwarded`, `rejected`, `failed`
/// (not delivered).
pub const PROCESS_COMMANDS: &str = "cqrs_process_commands_total";

/// Counter: timeouts the process manager's timer pump fired. Label: `process`.
pub const PROCESS_TIMEOUTS_FIRED: &str = "cqrs_process_timeouts_fired_total";

/// Counter: firings of a process manager's timer pump that failed: a store error, or a panic
/// in a store's or a clock's code. Each is retried with the retry policy's backoff, out of the
/// runner's status, so alert on this rising. Label: `process`.
pub const PROCESS_TIMER_FAILURES: &str = "cqrs_process_timer_failures_total";

/// Gauge: a process manager's instances by state, from the store's counts. Labels: `process`,
/// `state`: `running` (stuck ones included), `completed`, `failed`, `stuck`.
pub const PROCESS_INSTANCES: &str = "cqrs_process_instances";

/// Bucket bounds, in seconds, for the framework's duration histograms: half a millisecond to
/// ten seconds.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for the framework's size histograms (appends or loads per statement).
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Every histogram the framework records, with the bucket bounds that fit it. Register them
/// with an exporter that needs bounds: Prometheus's renders a histogram it has no bounds for
/// as a summary, quantiles of one process that no query can combine across replicas.
///
/// ```
/// use cqrs_core::telemetry::metrics::{COMMAND_DURATION, HISTOGRAMS, SECONDS_BUCKETS};
///
/// // With metrics-exporter-prometheus:
/// // for (name, bounds) in HISTOGRAMS {
/// //     builder = builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)?;
/// // }
/// assert!(HISTOGRAMS.contains(&(COMMAND_DURATION, SECONDS_BUCKETS)));
/// ```
pub const HISTOGRAMS: [(&str, &[f64]); 4] = [
    (COMMAND_DURATION, SECONDS_BUCKETS),
    (GROUP_COMMIT_APPENDS, SIZE_BUCKETS),
    (GROUP_COMMIT_WAIT, SECONDS_BUCKETS),
    (GROUP_COMMIT_LOADS, SIZE_BUCKETS),
];

/// Gauge: 1 when the last refresh of a source's gauges before a scrape worked, 0 when it failed
/// (a database that did not answer in time): the gauges of that source then still show the
/// values of the last refresh that worked, so an alert on them cannot fire; alert on this one
/// too. Set by [`record_refresh`]. Label: `source` (the service's names, e.g. `feed_horizon`,
/// `process_instances`).
pub const GAUGES_REFRESHED: &str = "cqrs_gauges_refreshed";

/// Registers the description and unit of every metric above with the installed recorder
/// (exporters print them as `# HELP` lines). Call it once, after installing the recorder.
pub fn describe() {
    describe_counter!(
        COMMANDS,
        Unit::Count,
        "Commands run, by aggregate and outcome."
    );
    describe_histogram!(
        COMMAND_DURATION,
        Unit::Seconds,
        "Time a command took, retries included, by aggregate and outcome."
    );
    describe_counter!(
        COMMAND_CONFLICTS,
        Unit::Count,
        "Appends refused because the stream moved, by aggregate."
    );
    describe_counter!(
        COMMAND_RETRIES,
        Unit::Count,
        "Command attempts made again after a conflict, by aggregate."
    );
    describe_histogram!(
        GROUP_COMMIT_APPENDS,
        Unit::Count,
        "Appends written per group-commit statement."
    );
    describe_histogram!(
        GROUP_COMMIT_WAIT,
        Unit::Seconds,
        "Time a group's oldest append queued before its statement started."
    );
    describe_histogram!(
        GROUP_COMMIT_LOADS,
        Unit::Count,
        "Stream loads read per grouped statement."
    );
    describe_gauge!(
        FEED_HORIZON_OLDEST_TRANSACTION,
        Unit::Seconds,
        "Age of the oldest open transaction holding the feed back (0: none)."
    );
    describe_gauge!(
        FEED_HORIZON_WAITING_EVENTS,
        Unit::Count,
        "Committed events feed readers cannot see yet."
    );
    describe_counter!(
        PROJECTION_EVENTS_APPLIED,
        Unit::Count,
        "Events applied, by projection."
    );
    describe_counter!(
        PROJECTION_EVENTS_PARKED,
        Unit::Count,
        "Events parked as dead letters, by projection."
    );
    describe_gauge!(
        PROJECTION_LAG_EVENTS,
        Unit::Count,
        "Events in the feed after the projection's checkpoint."
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest event the projection has not applied yet (0 at the head)."
    );
    describe_gauge!(
        PROJECTION_APPLIED,
        Unit::Count,
        "Events applied since the projection's worker started."
    );
    describe_gauge!(
        PROJECTION_PARKED,
        Unit::Count,
        "Dead letters written since the projection's worker started."
    );
    describe_gauge!(
        PROJECTION_BREAKER,
        "Circuit breaker in front of the projection's sink: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(
        PROJECTION_STATE,
        "The projection's state: 1 for the current one, 0 for the others."
    );
    describe_counter!(
        PROCESS_INPUTS,
        Unit::Count,
        "Inputs a process manager recorded, by process and kind."
    );
    describe_counter!(
        PROCESS_COMMANDS,
        Unit::Count,
        "Commands a process manager dispatched, by process and outcome."
    );
    describe_counter!(
        PROCESS_TIMEOUTS_FIRED,
        Unit::Count,
        "Timeouts fired, by process."
    );
    describe_counter!(
        PROCESS_TIMER_FAILURES,
        Unit::Count,
        "Firings of the timer pump that failed and are retried, by process."
    );
    describe_gauge!(
        PROCESS_INSTANCES,
        Unit::Count,
        "Process instances by process and state (running includes stuck)."
    );
    describe_gauge!(
        GAUGES_REFRESHED,
        Unit::Count,
        "1 when the last refresh of a source's gauges worked, 0 when it failed (they are stale)."
    );
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::DebuggingRecorder;
    use metrics_util::MetricKind;

    use super::*;

    /// Every metric, with its type.
    const ALL: [(&str, MetricKind); 23] = [
        (COMMANDS, MetricKind::Counter),
        (COMMAND_DURATION, MetricKind::Histogram),
        (COMMAND_CONFLICTS, MetricKind::Counter),
        (COMMAND_RETRIES, MetricKind::Counter),
        (GROUP_COMMIT_APPENDS, MetricKind::Histogram),
        (GROUP_COMMIT_WAIT, MetricKind::Histogram),
        (GROUP_COMMIT_LOADS, MetricKind::Histogram),
        (FEED_HORIZON_OLDEST_TRANSACTION, MetricKind::Gauge),
        (FEED_HORIZON_WAITING_EVENTS, MetricKind::Gauge),
        (PROJECTION_EVENTS_APPLIED, MetricKind::Counter),
        (PROJECTION_EVENTS_PARKED, MetricKind::Counter),
        (PROJECTION_LAG_EVENTS, MetricKind::Gauge),
        (PROJECTION_LAG_SECONDS, MetricKind::Gauge),
        (PROJECTION_APPLIED, MetricKind::Gauge),
        (PROJECTION_PARKED, MetricKind::Gauge),
        (PROJECTION_BREAKER, MetricKind::Gauge),
        (PROJECTION_STATE, MetricKind::Gauge),
        (PROCESS_INPUTS, MetricKind::Counter),
        (PROCESS_COMMANDS, MetricKind::Counter),
        (PROCESS_TIMEOUTS_FIRED, MetricKind::Counter),
        (PROCESS_TIMER_FAILURES, MetricKind::Counter),
        (PROCESS_INSTANCES, MetricKind::Gauge),
        (GAUGES_REFRESHED, MetricKind::Gauge),
    ];

    #[test]
    fn every_name_follows_the_prometheus_conventions_once() {
        let mut names: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a name is used twice");
        for (name, kind) in ALL {
            assert!(name.starts_with("cqrs_"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            let counter = kind == MetricKind::Counter;
            assert_eq!(
                name.ends_with("_total"),
                counter,
                "{name}: counters end in _total"
            );
        }
    }

    #[test]
    fn every_histogram_has_bucket_bounds_that_fit_its_unit() {
        let histograms: Vec<&str> = ALL
            .iter()
            .filter(|(_, kind)| *kind == MetricKind::Histogram)
            .map(|(name, _)| *name)
            .collect();
        let bounded: Vec<&str> = HISTOGRAMS.iter().map(|(name, _)| *name).collect();
        assert_eq!(bounded, histograms);
        for (name, bounds) in HISTOGRAMS {
            let seconds = name.ends_with("_seconds");
            assert_eq!(bounds == SECONDS_BUCKETS, seconds, "{name}");
            assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{name}: rising");
        }
    }

    #[test]
    fn describe_gives_every_metric_a_description_and_seconds_to_the_durations() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            describe();
            for (name, kind) in ALL {
                match kind {
                    MetricKind::Counter => metrics::counter!(name).increment(1),
                    MetricKind::Gauge => metrics::gauge!(name).set(1.0),
                    MetricKind::Histogram => metrics::histogram!(name).record(1.0),
                }
            }
        });
        let described = snapshotter.snapshot().into_vec();
        assert_eq!(described.len(), ALL.len());
        for (key, unit, description, _) in described {
            let name = key.key().name();
            assert!(description.is_some_and(|d| !d.is_empty()), "{name}");
            assert_eq!(
                unit == Some(Unit::Seconds),
                name.ends_with("_seconds"),
                "{name}: {unit:?}"
            );
        }
    }
}
