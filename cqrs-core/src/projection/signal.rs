//! Wake-ups: how a runner learns that new events may be in the feed without polling hard.

use async_trait::async_trait;

/// A source of "new events may have been appended" signals (PostgreSQL `LISTEN`, an in-process
/// channel...). Runners also poll, so a lost or spurious signal costs latency, never events.
pub trait FeedSignal: Send + Sync {
    /// A new subscription; each runner keeps its own.
    fn subscribe(&self) -> Box<dyn FeedWaiter>;
}

/// One subscription to a [`FeedSignal`].
#[async_trait]
pub trait FeedWaiter: Send {
    /// Returns when new events may have been appended since the last call. May return early.
    async fn wait(&mut self);
}
