//! [`LaneSlot`]: where a lane's sender lives. The lane's task starts on first use, and again
//! after the runtime that ran it went away.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// The sender of one lane (an append lane, or the load lane), once its task is started.
pub(super) struct LaneSlot<T>(Mutex<Option<mpsc::UnboundedSender<T>>>);

impl<T> Default for LaneSlot<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> fmt::Debug for LaneSlot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneSlot").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> LaneSlot<T> {
    /// The lane's sender; if its task is not running, spawns `start(receiver)` on the current
    /// runtime first. `None` outside a runtime.
    pub(super) fn sender<F, Fut>(&self, start: F) -> Option<mpsc::UnboundedSender<T>>
    where
        F: FnOnce(mpsc::UnboundedReceiver<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut sender = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = sender.as_ref().filter(|s| !s.is_closed()) {
            return Some(sender.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(start(rx));
        *sender = Some(tx.clone());
        Some(tx)
    }
}
