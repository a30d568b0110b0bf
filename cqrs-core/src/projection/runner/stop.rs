//! [`Stop`]: the worker's stop switch, and pausing for a backoff unless it is thrown.

use std::time::Duration;

use tokio::sync::watch;

/// The receiving end of a runner's stop switch.
#[derive(Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    pub(crate) fn new(switch: watch::Receiver<bool>) -> Self {
        Self(switch)
    }

    /// Whether the runner was asked to stop.
    pub(crate) fn stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Ends when the runner is asked to stop (or the handle is gone).
    pub(super) async fn requested(&mut self) {
        let _ = self.0.changed().await;
    }

    /// Sleeps `duration` unless asked to stop first (or the handle is gone); `false` when
    /// stopping.
    pub(crate) async fn pause(&mut self, duration: Duration) -> bool {
        if self.stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.stopping(),
            _ = self.0.changed() => false,
        }
    }
}
