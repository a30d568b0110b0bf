//! The reader: reads the feed ahead of the projection into a bounded channel (the bulkhead
//! between the store and the sink), waking on the feed signal or polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::projection::{FeedWaiter, ProjectionState, ProjectionStatus};
use crate::{Error, EventFilter, FeedBatch, Position, ReadAll, RetryPolicy};

/// The batches a reader read ahead, each with whether it was full.
pub(super) type Batches = mpsc::Receiver<(FeedBatch, bool)>;

/// Reads the feed ahead of the projection into a bounded channel.
pub(super) struct Reader {
    pub(super) feed: Arc<dyn ReadAll>,
    pub(super) filter: EventFilter,
    pub(super) batch_size: usize,
    pub(super) poll_interval: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) waiter: Option<Box<dyn FeedWaiter>>,
    pub(super) after: Position,
    pub(super) out: mpsc::Sender<(FeedBatch, bool)>,
    /// Where a failed read shows (`Retrying`, with its error) while it is retried.
    pub(super) status: Arc<watch::Sender<ProjectionStatus>>,
}

impl Reader {
    /// Reads until the worker hangs up (`Ok`), or a read fails in a way a retry cannot cure,
    /// or as often as the retry policy allows.
    pub(super) async fn run(mut self) -> Result<(), Error> {
        let mut failures = 0u32;
        // An empty batch goes out once per idle stretch (so the runner can say it is at the
        // head), and whenever the feed moved past filtered events.
        let mut idle_reported = false;
        loop {
            let batch = match self
                .feed
                .read_all(self.after, self.batch_size, &self.filter)
                .await
            {
                Ok(batch) => batch,
                Err(error) if !error.is_transient() => return Err(error),
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, attempt = failures, "feed read failed; retrying");
                    self.status.send_modify(|s| {
                        s.state = ProjectionState::Retrying;
                        s.error(format!("could not read the feed: {error}"));
                    });
                    if failures >= self.retry.max_attempts() {
                        return Err(error);
                    }
                    // Once it reads again, the worker hears of it even at the head.
                    idle_reported = false;
                    tokio::time::sleep(self.retry.delay(failures)).await;
                    continue;
                }
            };
            failures = 0;
            // A batch the store cut short is read on from at once, like a full one.
            let full = batch.events.len() >= self.batch_size || batch.more;
            let empty = batch.events.is_empty();
            let moved = batch.next > self.after;
            self.after = batch.next;
            let send = !empty || moved || !idle_reported;
            idle_reported = empty;
            if send && self.out.send((batch, full)).await.is_err() {
                return Ok(());
            }
            if !full {
                self.idle().await;
            }
        }
    }

    /// Waits for a signal or the poll interval, whichever comes first.
    async fn idle(&mut self) {
        match self.waiter.as_mut() {
            Some(waiter) => {
                let _ = tokio::time::timeout(self.poll_interval, waiter.wait()).await;
            }
            None => tokio::time::sleep(self.poll_interval).await,
        }
    }
}
