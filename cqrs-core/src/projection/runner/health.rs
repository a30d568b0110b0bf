//! Recording the breaker's state in the store, for operators outside the runner's process.

use crate::projection::BreakerRecord;

use super::worker::Worker;

impl Worker {
    /// Records the breaker's state in the store when it differs from what was last recorded
    /// (the first call records it anyway, replacing what a dead process may have left), with
    /// `error` as the reason when it is not closed. Best effort: a store that cannot record it
    /// now is told again at the next change, and the projection goes on either way.
    pub(super) async fn record_breaker(&mut self, error: Option<&str>) {
        let state = self.breaker.state();
        if self.recorded_breaker == Some(state) {
            return;
        }
        let record = BreakerRecord::new(state, error.map(str::to_owned));
        let name = self.runner.checkpoint_name();
        match self.runner.checkpoints.record_breaker(&name, &record).await {
            Ok(()) => self.recorded_breaker = Some(state),
            Err(error) => tracing::warn!(%error, breaker = %state, "could not record the breaker"),
        }
    }
}
