//! The gauges a service sets from status data before a scrape: a projection's (or process
//! manager's) status, and a process manager's instance counts.

use metrics::gauge;
use time::OffsetDateTime;

use crate::process::InstanceCounts;
use crate::projection::{BreakerState, ProjectionState, ProjectionStatus};

use super::{
    GAUGES_REFRESHED, PROCESS_INSTANCES, PROJECTION_APPLIED, PROJECTION_BREAKER,
    PROJECTION_LAG_EVENTS, PROJECTION_LAG_SECONDS, PROJECTION_PARKED, PROJECTION_STATE,
};

/// Every state, in the order of [`ProjectionState`], with its label value.
const STATES: [(ProjectionState, &str); 7] = [
    (ProjectionState::Starting, "starting"),
    (ProjectionState::Standby, "standby"),
    (ProjectionState::CatchingUp, "catching_up"),
    (ProjectionState::Running, "running"),
    (ProjectionState::Retrying, "retrying"),
    (ProjectionState::Stopped, "stopped"),
    (ProjectionState::Failed, "failed"),
];

/// Sets the gauges of one projection (or process manager) from its status: lag in events and
/// in seconds, breaker state, dead letters, state.
///
/// Labelled `projection` = [`ProjectionStatus::name`]. The lag in seconds is the age of the
/// oldest event not applied yet, now ([`ProjectionStatus::unapplied_age`]): it keeps growing
/// while a stalled sink holds that event back, and is 0 at the head. The breaker is 0 closed,
/// 1 half-open, 2 open; the state gauge is 1 for the current state and 0 for the others.
pub fn record_projection(status: &ProjectionStatus) {
    record_projection_at(status, OffsetDateTime::now_utc());
}

/// [`record_projection`] with the lag in seconds computed at `now`.
fn record_projection_at(status: &ProjectionStatus, now: OffsetDateTime) {
    let name = &status.name;
    gauge!(PROJECTION_LAG_EVENTS, "projection" => name.clone()).set(status.lag_events as f64);
    gauge!(PROJECTION_LAG_SECONDS, "projection" => name.clone())
        .set(status.unapplied_age(now).as_secs_f64());
    gauge!(PROJECTION_APPLIED, "projection" => name.clone()).set(status.applied as f64);
    gauge!(PROJECTION_PARKED, "projection" => name.clone()).set(status.parked as f64);
    gauge!(PROJECTION_BREAKER, "projection" => name.clone()).set(breaker_code(status.breaker));
    for (state, label) in STATES {
        let current = if state == status.state { 1.0 } else { 0.0 };
        gauge!(PROJECTION_STATE, "projection" => name.clone(), "state" => label).set(current);
    }
}

/// The breaker's state as a number: 0 closed, 1 half-open, 2 open.
fn breaker_code(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    }
}

/// Sets the gauges of the instances of process manager `process` by state: `running` (stuck
/// ones included), `completed`, `failed`, `stuck`. Pass the process manager's `TYPE` as
/// `process`, the label its counters carry; the counts come from
/// [`ProcessStore::instance_counts`](crate::process::ProcessStore::instance_counts).
pub fn record_processes(process: &str, counts: &InstanceCounts) {
    let by_state = [
        ("running", counts.running),
        ("completed", counts.completed),
        ("failed", counts.failed),
        ("stuck", counts.stuck),
    ];
    for (state, count) in by_state {
        gauge!(PROCESS_INSTANCES, "process" => process.to_owned(), "state" => state)
            .set(count as f64);
    }
}

/// Says whether the gauges of `source` were refreshed before this scrape: 1 if `refreshed`,
/// else 0 (they show the values of the last refresh that worked). See [`GAUGES_REFRESHED`].
///
/// ```
/// use cqrs_core::telemetry::metrics;
/// # async fn feed_horizon() -> Result<u64, ()> { Ok(0) }
///
/// # async fn scrape() {
/// let refreshed = feed_horizon().await.is_ok();
/// metrics::record_refresh("feed_horizon", refreshed);
/// # }
/// ```
pub fn record_refresh(source: &str, refreshed: bool) {
    let value = if refreshed { 1.0 } else { 0.0 };
    gauge!(GAUGES_REFRESHED, "source" => source.to_owned()).set(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_one_label_and_the_breaker_codes_are_ordered_by_severity() {
        let mut labels: Vec<_> = STATES.iter().map(|(_, l)| *l).collect();
        labels.dedup();
        assert_eq!(labels.len(), 7);
        assert!(breaker_code(BreakerState::Closed) < breaker_code(BreakerState::HalfOpen));
        assert!(breaker_code(BreakerState::HalfOpen) < breaker_code(BreakerState::Open));
    }
}
