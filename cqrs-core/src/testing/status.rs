//! [`status`]: a projection's status as a worker would report it, for tests of health checks
//! and dashboards of your own.

use crate::projection::{ProjectionState, ProjectionStatus};

/// The status of projection `name` in `state`, with nothing applied and no error; set the
/// public fields a test needs.
///
/// ```
/// use cqrs_core::projection::ProjectionState;
/// use cqrs_core::testing::status;
///
/// let mut standby = status("orders", ProjectionState::Standby);
/// standby.lag_events = 0;
/// assert!(standby.is_ready());
/// assert!(!status("orders", ProjectionState::Failed).is_live());
/// ```
pub fn status(name: &str, state: ProjectionState) -> ProjectionStatus {
    let mut status = ProjectionStatus::new(name);
    status.state = state;
    status
}
